"""Migration by changing the imports: the official examples run on both clients alike.

Each example is run twice against a fresh `dispatch-client serve` (the fake service
over real gRPC, seeded with the same two dispatches): once as written for the official
frequenz-client-dispatch 1.x, once with only its import lines changed to
`dispatch_client`. What the two runs print, normalised by shape
(`tests/migration_runner.py`), must be equal. The examples are the official README's
(read from the installed distribution's metadata) and those of docs/migrating.md,
whose "with this client" versions must be exactly `change_imports()` of the official
ones.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import pytest

import dispatch_client
from dispatch_client import Client, TargetIds
from tests.cli_process import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
KEY = "migration-key"
RUN_TIMEOUT = 60
"""Seconds one example may take (process start, imports and its calls)."""

_MARKER = re.compile(
    r"<!-- migration: (?P<name>[\w-]+) (?P<side>official|ours) -->\s*```python\n(?P<code>.*?)```",
    re.DOTALL,
)


def change_imports(source: str) -> str:
    """Rewrite `source`'s imports from the official packages to `dispatch_client`.

    Every name imported from `frequenz.client.dispatch...` or `frequenz.client.common...`
    that `dispatch_client` exports is imported from `dispatch_client` instead, in one
    import line where the first such import was; the others (the typed ids, which this
    library accepts as they are) keep their import. Nothing but import lines changes.
    """
    lines: list[str | None] = list(source.splitlines(keepends=True))
    moved: list[str] = []
    first: int | None = None
    for node in ast.parse(source).body:
        if not (
            isinstance(node, ast.ImportFrom)
            and node.module is not None
            and node.module.startswith(("frequenz.client.dispatch", "frequenz.client.common"))
        ):
            continue
        assert node.end_lineno == node.lineno, "examples keep each import on one line"
        ours = [a.name for a in node.names if a.name in dispatch_client.__all__]
        theirs = [a.name for a in node.names if a.name not in dispatch_client.__all__]
        if not ours:
            continue
        moved += ours
        index = node.lineno - 1
        first = index if first is None else first
        lines[index] = f"from {node.module} import {', '.join(theirs)}\n" if theirs else None
    if first is not None:
        names = sorted(set(moved))
        line = f"from dispatch_client import {', '.join(names)}\n"
        if len(line) > 89:  # as a formatter would wrap it
            line = "from dispatch_client import (\n" + "".join(f"    {n},\n" for n in names) + ")\n"
        lines.insert(first, line)
    return "".join(line for line in lines if line is not None)


def _only_imports_differ(official: str, ours: str) -> bool:
    """Whether the two sources differ in import lines only."""

    def body(source: str) -> list[str]:
        return [line for line in source.splitlines() if not line.startswith(("from ", "import "))]

    return body(official) == body(ours)


def _readme_example() -> str:
    """The first Python example of the official client's README, as installed."""
    description = metadata.metadata("frequenz-client-dispatch").get_payload()  # type: ignore[attr-defined]
    match = re.search(r"```python\n(.*?)```", str(description), re.DOTALL)
    assert match, "the official README has a Python example"
    return match.group(1)


def _docs_examples() -> dict[str, dict[str, str]]:
    """docs/migrating.md's examples: name -> {"official": code, "ours": code}."""
    text = (ROOT / "docs" / "migrating.md").read_text()
    examples: dict[str, dict[str, str]] = {}
    for match in _MARKER.finditer(text):
        examples.setdefault(match["name"], {})[match["side"]] = match["code"]
    return examples


async def _seed(url: str) -> None:
    """Create the same two dispatches in microgrid 1 of a fresh server."""
    start = datetime(2031, 3, 4, 5, 0, tzinfo=UTC)
    with anyio.fail_after(TIMEOUT):
        async with Client(server_url=url, key=KEY) as client:
            await client.create(1, "SEEDED_CHARGE", start, timedelta(minutes=20), TargetIds(1, 2))
            await client.create(
                1, "SEEDED_TEST", start + timedelta(days=1), None, TargetIds(3), dry_run=True
            )


@contextmanager
def _fresh_server() -> Iterator[str]:
    """A seeded `dispatch-client serve` process; yield its URL."""
    command = [sys.executable, "-m", "dispatch_client", "serve", "--key", KEY]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().decode().strip()
            assert url.startswith("grpc://127.0.0.1:"), url
            anyio.run(_seed, url)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=TIMEOUT)


def _run(source: str) -> Any:
    """Run an example against a fresh seeded server; return what it printed, normalised."""
    with _fresh_server() as url:
        done = subprocess.run(
            [sys.executable, "-m", "tests.migration_runner", url, KEY],
            input=source,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            cwd=ROOT,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_change_imports_changes_imports_only() -> None:
    """change_imports() moves the names we export and keeps the typed ids' imports."""
    official = (
        "from frequenz.client.common.microgrid import MicrogridId\n"
        "from frequenz.client.dispatch.types import DispatchId, TargetIds\n"
        "x = TargetIds(1)\n"
    )
    assert change_imports(official) == (
        "from frequenz.client.common.microgrid import MicrogridId\n"
        "from dispatch_client import TargetIds\n"
        "from frequenz.client.dispatch.types import DispatchId\n"
        "x = TargetIds(1)\n"
    )


def test_the_official_readme_example() -> None:
    """The official README example prints the same dispatches with only its imports changed."""
    official = _readme_example()
    ours = change_imports(official)
    assert ours != official
    assert _only_imports_differ(official, ours)
    results = _run(official)
    assert len(results) == 2  # it prints each seeded dispatch
    assert _run(ours) == results


def test_docs_examples_are_the_official_ones_with_imports_changed() -> None:
    """Each docs/migrating.md example's version for this client is change_imports() of it."""
    examples = _docs_examples()
    assert len(examples) >= 3
    for name, sides in examples.items():
        assert set(sides) == {"official", "ours"}, name
        assert sides["ours"] == change_imports(sides["official"]), name


@pytest.mark.parametrize("name", sorted(_docs_examples()))
def test_docs_example(name: str) -> None:
    """A docs/migrating.md example gives equal results on the official client and on ours."""
    sides = _docs_examples()[name]
    results = _run(sides["official"])
    assert results, "the example prints something"
    assert _run(sides["ours"]) == results
