"""The soak (`benchmarks/soak.py`, `just soak`) in a 5-second version, on asyncio and trio."""

from __future__ import annotations

import anyio
import pytest

from benchmarks.soak import soak

pytestmark = pytest.mark.anyio


async def test_five_second_soak_with_two_server_restarts() -> None:
    """10 clients making mixed calls and following 50 streams through two server restarts
    see only network errors around the restarts, and every resync view ends complete."""
    with anyio.fail_after(120):
        # RSS is reported but not judged: five seconds are too short for memory to settle.
        result = await soak(5, check_rss=False)
    assert result.restarts == 2
    assert result.unexpected_errors == []
    assert result.lost_events == 0
    assert result.stream_events > 0
    assert sum(result.calls.values()) > 0
    assert result.failures == []
