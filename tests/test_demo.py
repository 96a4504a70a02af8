"""The demo behind `just demo`: a served fake and a scripted client session."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dispatch_client import _demo
from dispatch_client.testing import FakeDispatchService, serve

pytestmark = pytest.mark.anyio


async def test_the_session_against_a_served_fake() -> None:
    """The scripted session runs every step against a served fake service."""
    lines: list[str] = []
    with FakeDispatchService(keys=[_demo.DEMO_KEY]) as service:
        async with serve(service) as url:
            await _demo.session(url, _demo.DEMO_KEY, lines.append)
    text = "\n".join(lines)
    for step in range(1, 10):
        assert f"\n{step}. " in "\n" + text
    assert "3. list, page size 1: 2 pages" in text
    assert "4. list recurring=True: [1]" in text
    assert "5. updated #1: lasts 0:30:00, on Mon, Wed, Fri" in text
    assert "8. get #2 again: NotFound: get dispatch 2 of microgrid 1" in text
    assert "9. list: [1] left" in text
    assert service.dispatches(1)[0].id == 1


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
    assert done.stdout.startswith("dispatch-cli serve is listening on grpc://127.0.0.1:")
    assert "9. list: [1] left" in done.stdout
    assert "server stopped" in done.stdout
    assert "Next five runs:" in done.stdout
    assert "Traceback" not in done.stderr
