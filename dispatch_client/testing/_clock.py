"""A clock that tests move by hand: timers fire in order, at once, with no real sleep."""

from __future__ import annotations

import heapq
import itertools
from datetime import UTC, datetime, timedelta

import anyio

from dispatch_client._eventloop import running_library

__all__ = ["FakeClock"]


async def _settle() -> None:
    """Return once every other task of the event loop is blocked.

    On trio this is `anyio.wait_all_tasks_blocked()`, which asks trio itself. anyio's
    asyncio version sleeps 0.1 s whenever a task can still run, which makes each timer
    a fake clock fires cost a tenth of a second of real time; this one yields with
    `sleep(0)` instead, with the same test: a task is blocked when it waits for a
    future that is not done.
    """
    if running_library() != "asyncio":
        await anyio.wait_all_tasks_blocked()
        return
    import asyncio

    this = asyncio.current_task()
    spins = 0
    while True:
        await asyncio.sleep(0)
        busy = False
        for task in asyncio.all_tasks():
            waiter = getattr(task, "_fut_waiter", None)
            if task is not this and (waiter is None or waiter.done()):
                busy = True
                break
        if not busy:
            return
        spins += 1
        if spins > 1000:
            # Something keeps running (a busy task): stop spinning the CPU so hard.
            await asyncio.sleep(0.001)


class _Sleeper:
    __slots__ = ("deadline", "event", "gone")

    def __init__(self, deadline: datetime) -> None:
        self.deadline = deadline
        self.event = anyio.Event()
        self.gone = False


class FakeClock:
    """A `dispatch_client.Clock` for tests: time moves only when the test moves it.

    ```python
    clock = FakeClock(datetime(2026, 1, 5, 14, tzinfo=UTC))
    async with Scheduler(client, microgrid_id=1, clock=clock) as scheduler:
        await clock.advance(timedelta(hours=1))  # every timer of the hour fires, in order
    ```

    `advance()` wakes each sleeper whose deadline is reached, one deadline at a time and
    in order, with the clock reading exactly that deadline; after each it waits until
    every task of the event loop is blocked (as `anyio.wait_all_tasks_blocked`), so what the
    woken task did (a change sent, a receiver's consumer run) has happened before the
    next timer fires and before `advance()` returns. It runs on asyncio and trio.

    `jump()` sets the time without waking anyone, as a wall clock that jumps does: the
    sleepers notice at their next wake-up (the next `advance()`).
    """

    def __init__(self, start: datetime | None = None) -> None:
        """Create the clock.

        Args:
            start: The initial time, timezone-aware; defaults to the system time.

        Raises:
            ValueError: If `start` is naive.
        """
        self._now = _utc("start", start if start is not None else datetime.now(UTC))
        self._sleepers: list[tuple[datetime, int, _Sleeper]] = []
        self._order = itertools.count()

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()}, {self.sleepers} sleeping)"

    @property
    def sleepers(self) -> int:
        """How many tasks wait in `sleep_until` right now."""
        return sum(not sleeper.gone for _, _, sleeper in self._sleepers)

    @property
    def next_deadline(self) -> datetime | None:
        """The earliest deadline a task waits for, or None."""
        self._drop_gone()
        return self._sleepers[0][0] if self._sleepers else None

    def now(self) -> datetime:
        """Return the clock's time (UTC)."""
        return self._now

    async def sleep_until(self, deadline: datetime) -> None:
        """Wait until the clock is advanced to `deadline` (at once if it is there already).

        Args:
            deadline: A timezone-aware datetime.

        Raises:
            ValueError: If `deadline` is naive.
        """
        deadline = _utc("deadline", deadline)
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        sleeper = _Sleeper(deadline)
        heapq.heappush(self._sleepers, (deadline, next(self._order), sleeper))
        try:
            await sleeper.event.wait()
        finally:
            sleeper.gone = True  # cancelled or woken: advance() skips it from now on

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` of fake time."""
        await self.sleep_until(self._now + timedelta(seconds=seconds))

    async def advance(self, delta: timedelta | float) -> None:
        """Move the clock forward by `delta`, firing every timer on the way, in order.

        Args:
            delta: A non-negative `timedelta`, or seconds.

        Raises:
            ValueError: If `delta` is negative.
        """
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError(f"a clock only advances forward, got {delta!r}")
        await self.advance_to(self._now + step)

    async def advance_to(self, when: datetime) -> None:
        """Move the clock forward to `when`, firing every timer up to it, in order.

        Args:
            when: A timezone-aware datetime, not before the current time.

        Raises:
            ValueError: If `when` is naive or before the current time.
        """
        when = _utc("when", when)
        if when < self._now:
            raise ValueError(
                f"a clock only advances forward: {when.isoformat()} is before "
                f"{self._now.isoformat()} (use jump() to set it back)"
            )
        # Let everything that can run now settle first, so sleepers that are about to
        # register (a task just started) are there before time moves.
        await _settle()
        while True:
            self._drop_gone()
            if not self._sleepers or self._sleepers[0][0] > when:
                break
            deadline = self._sleepers[0][0]
            # After a forward jump() the deadline may lie behind: time never goes back.
            self._now = max(self._now, deadline)
            # Wake every sleeper of this one instant together, then let them all run.
            while self._sleepers and self._sleepers[0][0] == deadline:
                _, _, sleeper = heapq.heappop(self._sleepers)
                if not sleeper.gone:
                    sleeper.gone = True
                    sleeper.event.set()
            await _settle()
        self._now = when
        await _settle()

    async def settle(self) -> None:
        """Return once every other task is blocked: what is in flight in process has happened.

        Use it after a call whose effects travel through tasks (a stream event reaching
        a scheduler) before looking at them. Faster than `anyio.wait_all_tasks_blocked`
        on asyncio, the same on trio. Network I/O in flight is not waited for.
        """
        await _settle()

    def jump(self, when: datetime) -> None:
        """Set the time to `when`, forward or back, waking nobody (a wall-clock jump).

        Args:
            when: A timezone-aware datetime.

        Raises:
            ValueError: If `when` is naive.
        """
        self._now = _utc("when", when)

    def _drop_gone(self) -> None:
        while self._sleepers and self._sleepers[0][2].gone:
            heapq.heappop(self._sleepers)


def _utc(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)
