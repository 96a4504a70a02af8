"""What time it is and how to wait for a time: the scheduler's only view of the clock.

The scheduler never trusts a sleep to end on time. It asks the clock for the time at
every wake-up and decides from that, so a long sleep, a suspended machine or a wall
clock that jumps (NTP, a changed timezone database, a VM restored from a snapshot)
cannot make it drift: it fires what is due *now* and nothing that is already over.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Protocol, runtime_checkable

import anyio

__all__ = ["MAX_NAP", "Clock", "WallClock"]

MAX_NAP: Final = 1.0
"""The longest single sleep of `WallClock.sleep_until`, in seconds.

A monotonic sleep does not follow the wall clock: after a forward jump or a resumed
suspend it would still wait its full length. Re-reading the wall clock at least this
often bounds how late a timer fires after such a jump.
"""


@runtime_checkable
class Clock(Protocol):
    """A source of timezone-aware UTC time that can wait for a given time.

    `WallClock` is the real one; `dispatch_client.testing.FakeClock` is driven by tests.
    """

    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...

    async def sleep_until(self, deadline: datetime) -> None:
        """Return once `now()` is at or after `deadline` (at once if it already is).

        It may return later than `deadline` (the machine was busy or suspended), never
        earlier. Cancelling the waiting task ends the wait.
        """
        ...


class WallClock:
    """The system's wall clock, in UTC; waits in naps of at most `MAX_NAP` seconds."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "WallClock()"

    def now(self) -> datetime:
        """Return the system time in UTC."""
        return datetime.now(UTC)

    async def sleep_until(self, deadline: datetime) -> None:
        """Sleep until the wall clock reads `deadline` or later.

        Args:
            deadline: A timezone-aware datetime.

        Raises:
            ValueError: If `deadline` is naive.
        """
        if deadline.tzinfo is None or deadline.utcoffset() is None:
            raise ValueError(f"deadline must be timezone-aware, got {deadline!r}")
        while True:
            remaining = (deadline - self.now()).total_seconds()
            if remaining <= 0:
                # Even a due deadline lets other tasks run: a loop of due timers
                # must not starve the event loop.
                await anyio.lowlevel.checkpoint()
                return
            await anyio.sleep(min(remaining, MAX_NAP))
