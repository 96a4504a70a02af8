"""The runnable example of docs/scheduler.md runs on asyncio and trio, printing what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).parent.parent / "docs" / "scheduler.md"


def _example(heading: str = "## A runnable example") -> str:
    """The first Python block of a section of the page."""
    text = PAGE.read_text()
    section = text.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_docs_example_runs(
    backend: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example serves the fake, creates a dispatch, and prints its start, actor and stop."""
    monkeypatch.setattr("sys.argv", ["charge.py", backend])
    exec(compile(_example(), str(PAGE), "exec"), {"__name__": "__main__"})
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == [
        "STARTED dispatch 1",
        "STOPPED dispatch 1",
        "charging [1, 2] at 5000 W, dry run False",
    ]
    assert lines[-1] == "STOPPED dispatch 1"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_docs_fake_clock_example_passes(backend: str) -> None:
    """The page's fake-clock test runs and its assertions hold, on both backends."""
    import anyio

    namespace: dict[str, object] = {}
    exec(compile(_example("## Testing with a fake clock"), str(PAGE), "exec"), namespace)
    test = namespace["test_my_actor_runs_for_an_hour"]
    assert callable(test)

    async def bounded() -> None:
        with anyio.fail_after(10):
            await test()

    anyio.run(bounded, backend=backend)
