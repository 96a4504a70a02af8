"""The demo behind `just demo`: `dispatch-client` commands against a served fake."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dispatch_client import _demo
from dispatch_client.testing import FakeDispatchService, serve

pytestmark = pytest.mark.anyio


async def test_the_session_against_a_served_fake(anyio_backend: str) -> None:
    """The scripted CLI session runs every step against a served fake service."""
    lines: list[str] = []
    with FakeDispatchService(keys=[_demo.DEMO_KEY]) as service:
        async with serve(service) as url:
            await _demo.session(url, _demo.DEMO_KEY, lines.append, backend=anyio_backend)
        (left,) = service.dispatches(1)
    text = "\n".join(lines)
    commands = [line.split()[2] for line in lines if line.startswith("$ dispatch-client")]
    assert commands == ["create", "create", "list", "stream", "update", "delete", "get", "--json"]
    assert "Microgrid 1: 2 dispatch(es)" in text
    stream = text.split("(the background stream printed:)\n", 1)[1].splitlines()[:4]
    assert [line.split()[1] for line in stream] == ["CREATED", "CREATED", "UPDATED", "DELETED"]
    assert "synthesized" in stream[0]
    assert "Error: NotFound: get dispatch 2 of microgrid 1" in text
    assert left.type == "BATTERY_CHARGE"
    assert left.duration is not None
    assert left.duration.total_seconds() == 1800
    assert '"id":1,"type":"BATTERY_CHARGE"' in lines[-2]
    assert "Traceback" not in text


def test_the_demo_runs_end_to_end() -> None:
    """`python -m dispatch_client._demo` starts the server, runs the session and stops it."""
    done = subprocess.run(
        [sys.executable, "-m", "dispatch_client._demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dispatch-client serve is listening on grpc://127.0.0.1:")
    assert "Deleted dispatch #2 of microgrid 1" in done.stdout
    assert "server stopped" in done.stdout
    assert "Next five runs:" in done.stdout
    assert "Traceback" not in done.stderr
