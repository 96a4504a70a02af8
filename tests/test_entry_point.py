"""The installed `dispatch-client` console script: it is ours, and its commands work.

These tests run the script pip installed next to this interpreter (the project's
venv), as a user's shell would, not `python -m`: the point is the name on PATH.
frequenz-client-dispatch, a test dependency, installs a `dispatch-cli` script of its
own, which is why ours has the distribution's name.
"""

from __future__ import annotations

import json
import subprocess
import sysconfig
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

import anyio
import pytest

from tests.cli_process import TIMEOUT, running

_KEY = "entry-point-key"


def _script() -> Path:
    """The path of the `dispatch-client` script installed for this interpreter."""
    path = Path(sysconfig.get_path("scripts")) / "dispatch-client"
    assert path.is_file(), f"no {path}: install the project (pip install -e '.[dev]')"
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed script with `args`; return what it printed."""
    return subprocess.run(
        [str(_script()), *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def test_console_script_is_named_after_the_distribution() -> None:
    """The distribution declares one console script, `dispatch-client`, and no `dispatch-cli`."""
    scripts = {
        entry.name: entry.value
        for entry in metadata.distribution("dispatch-client").entry_points
        if entry.group == "console_scripts"
    }
    assert scripts == {"dispatch-client": "dispatch_client.cli:main"}


def test_installed_script_is_ours() -> None:
    """`dispatch-client --version` and `--help` come from this package, not another's."""
    version = _run("--version")
    assert version.returncode == 0, version.stderr
    expected = f"dispatch-client, version {metadata.version('dispatch-client')}"
    assert version.stdout.strip() == expected
    shown = _run("--help")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Usage: dispatch-client [OPTIONS] COMMAND")
    for command in ("list", "get", "create", "update", "delete", "stream", "serve", "replay"):
        assert f"\n  {command} " in shown.stdout, command


def test_usage_error_names_the_script() -> None:
    """A usage error exits 2 and names `dispatch-client` in its usage line."""
    done = _run("list", "not-a-number")
    assert done.returncode == 2
    assert "Usage: dispatch-client list" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.anyio
async def test_serve_create_list(anyio_backend: str) -> None:
    """`dispatch-client serve` serves; `create` then `list` against it show the dispatch."""
    start = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with running(str(_script()), "serve", "--key", _KEY) as (process, url):
        client = [str(_script()), "--url", url, "--auth-key", _KEY, "--backend", anyio_backend]
        with anyio.fail_after(TIMEOUT):
            created = await anyio.run_process(
                [*client, "--json", "create", "5", "CHARGE", "BATTERY", start, "1h"]
            )
            listed = await anyio.run_process([*client, "--json", "list", "5"])
            table = await anyio.run_process([*client, "list", "5"])
        process.terminate()
        with anyio.fail_after(TIMEOUT):
            await process.wait()
    dispatch = json.loads(created.stdout)
    assert dispatch["type"] == "CHARGE"
    assert [json.loads(line) for line in listed.stdout.decode().splitlines()] == [dispatch]
    assert "Microgrid 5: 1 dispatch(es)" in table.stdout.decode()
    assert process.returncode == 0
