"""The scheduler: a live mirror of one microgrid's dispatches and a timer per dispatch.

How it keeps the mirror exact: it subscribes to the client's stream first and waits
until the call is open, then lists every page. Events that arrive during the listing
wait in the stream receiver and are applied after it, newest-wins by `update_time`, so
nothing that happens between the two is lost. After every reconnect (and if the stream
receiver ever dropped events) it lists again and turns the differences into
synthesized events, so changes made while the stream was down are not lost either.

How it keeps time: each dispatch has at most one timer, at its next transition (its
next run's start, or its current run's end). At each wake-up the scheduler reads the
clock and re-evaluates the dispatches whose timers are due *at that reading*, so a late
wake-up (a busy loop, a suspend, a clock jump) fires what is due now, and a run that
ended meanwhile is not started.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Final, Self, SupportsIndex

import anyio
import anyio.abc

from dispatch_client._retry import RetryPolicy
from dispatch_client._stream import DispatchReceiver, StreamConnected, StreamNotice
from dispatch_client._types import Dispatch, DispatchEvent, Event
from transports import (
    GrpcError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unimplemented,
)

from ._changes import Merge, Run, RunningChange, Transition, View
from ._clock import Clock, WallClock
from ._receiver import ScheduleReceiver

if TYPE_CHECKING:
    from dispatch_client._client import Client

    from ._actors import Actor, ActorManager

__all__ = ["Scheduler"]

_log = logging.getLogger("dispatch_client.scheduler")

_UNRECOVERABLE: Final = (
    Unauthenticated,
    PermissionDenied,
    InvalidArgument,
    Unimplemented,
    NotFound,
)
"""Listing errors that trying again cannot fix: they end the scheduler."""

_STREAM_BUFFER: Final = 100_000
"""The stream receiver's buffer; if it ever overflows, the scheduler lists again."""

_RELIST_RETRY: Final = RetryPolicy(attempts=None, initial=0.5, maximum=30.0)
"""How a failed resync listing is repeated (while the stream stays connected)."""

_US: Final = timedelta(microseconds=1)


def _check_type(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"type must be a str or None, got {type(value).__name__}: {value!r}")
    return value


def _check_merge(value: object) -> Merge:
    if not isinstance(value, Merge):
        raise TypeError(f"merge must be a Merge, got {type(value).__name__}: {value!r}")
    return value


class Scheduler:
    """Start, stop and reconfigure work as one microgrid's dispatches run.

    ```python
    async with Client(server_url=url, key=key) as client:
        async with Scheduler(client, microgrid_id=1) as scheduler:
            async with scheduler.running_state_changes("CHARGE") as changes:
                async for change in changes:
                    print(change.kind.name, change.dispatch.id, change.dispatch.payload)
    ```

    Entering it subscribes to the microgrid's stream, lists every dispatch and returns
    once that first listing is applied (frequenz-dispatch's
    `wait_for_initialization()`). Several microgrids: one scheduler each, over one
    client (they share the client's connection). Everything it starts ends when the
    block ends: timers, the stream subscription and managed actors; receivers then end
    their iteration.

    Receivers can be created before entering (they then see the first listing as
    `CREATED` events and the first starts) or any time after; each change reaches each
    receiver exactly once, in order.

    Rules (those of frequenz-dispatch, minus its defects): a dispatch runs in its runs
    `[run, run + duration)` while it is active; without a duration it runs forever from
    its first run on; a duration of zero never runs. A past run is never started late
    once it is over. Deleting a running dispatch stops it first, then reports `DELETED`.
    """

    def __init__(
        self,
        client: Client,
        microgrid_id: SupportsIndex,
        *,
        clock: Clock | None = None,
    ) -> None:
        """Prepare a scheduler; nothing happens until `async with`.

        Args:
            client: The client to stream and list with (entered or not; it must be
                entered before the scheduler is).
            microgrid_id: The microgrid.
            clock: The time source; defaults to the system's wall clock.
                `dispatch_client.testing.FakeClock` drives it in tests.

        Raises:
            TypeError: For a client, microgrid id or clock of the wrong type.
            ValueError: For a negative microgrid id.
        """
        from dispatch_client._client import Client

        if not isinstance(client, Client):
            raise TypeError(f"client must be a Client, got {type(client).__name__}: {client!r}")
        if isinstance(microgrid_id, bool) or not hasattr(microgrid_id, "__index__"):
            raise TypeError(
                f"microgrid_id must be an int, got {type(microgrid_id).__name__}: {microgrid_id!r}"
            )
        mid = microgrid_id.__index__()
        if mid < 0:
            raise ValueError(f"microgrid_id must be >= 0, got {mid}")
        if clock is None:
            clock = WallClock()
        elif not isinstance(clock, Clock):
            raise TypeError(
                f"clock must have now() and sleep_until(), got {type(clock).__name__}: {clock!r}"
            )
        self._client = client
        self._microgrid_id = mid
        self._clock = clock
        # State: the mirror, what runs now, and one timer per dispatch (a heap with
        # lazy deletion: an entry counts only while its sequence number is current).
        self._mirror: dict[int, Dispatch] = {}
        self._running: dict[int, Run] = {}
        self._timers: list[tuple[datetime, int, int]] = []
        self._timer_seq: dict[int, int] = {}
        self._seq = itertools.count()
        # Consumers.
        self._lifecycle: dict[ScheduleReceiver[DispatchEvent], str | None] = {}
        self._changes: dict[ScheduleReceiver[RunningChange], View] = {}
        self._actors: ActorManager | None = None
        # Lifecycle.
        self._tasks: anyio.abc.TaskGroup | None = None
        self._stream: DispatchReceiver[DispatchEvent | StreamNotice] | None = None
        self._ready = anyio.Event()
        self._initialized = False
        self._entered = False
        self._ended = False
        self._error: BaseException | None = None
        self._sleep_scope: anyio.CancelScope | None = None
        self._last_now: datetime | None = None
        self._sleep_target: datetime | None = None
        self.resyncs = 0
        """How many times the scheduler listed the dispatches (1 after entering)."""
        self.wakeups = 0
        """How many timer wake-ups the scheduler had (for benchmarks and curiosity)."""

    def __repr__(self) -> str:
        state = "ended" if self._ended else "running" if self._initialized else "new"
        return (
            f"<Scheduler microgrid {self._microgrid_id} {state}, "
            f"{len(self._mirror)} dispatches, {len(self._running)} running>"
        )

    # --- state ---------------------------------------------------------------------------

    @property
    def microgrid_id(self) -> int:
        """The microgrid."""
        return self._microgrid_id

    @property
    def clock(self) -> Clock:
        """The time source."""
        return self._clock

    @property
    def dispatches(self) -> Mapping[int, Dispatch]:
        """The microgrid's dispatches by id, as the scheduler knows them now (read-only)."""
        return MappingProxyType(self._mirror)

    @property
    def running(self) -> Mapping[int, Dispatch]:
        """The dispatches running now, by id (as of the scheduler's last step; read-only)."""
        return MappingProxyType({i: run.dispatch for i, run in self._running.items()})

    def run_start(self, dispatch_id: SupportsIndex) -> datetime | None:
        """Return when the current run of a running dispatch started, or None."""
        run = self._running.get(dispatch_id.__index__())
        return None if run is None else run.start

    @property
    def initialized(self) -> bool:
        """Whether the first listing has been applied."""
        return self._initialized

    # --- receivers -----------------------------------------------------------------------

    def lifecycle_events(self, type: str | None = None) -> ScheduleReceiver[DispatchEvent]:
        """Receive every change to the dispatches: created, updated, deleted.

        Each change is delivered exactly once, in order; `synthesized` is True for the
        first listing and for changes found by a resync (made while the stream was
        down). A receiver created before entering sees the first listing as `CREATED`
        events; one created later sees the changes from then on (`dispatches` holds
        the rest).

        Args:
            type: Only dispatches of this type (before or after the change); None for all.

        Returns:
            The receiver; close it (or leave the `async with`) when done.

        Raises:
            TypeError: If `type` is not a str or None.
        """
        self._check_open()
        receiver: ScheduleReceiver[DispatchEvent] = ScheduleReceiver(self._forget_lifecycle)
        self._lifecycle[receiver] = _check_type(type)
        return receiver

    def running_state_changes(
        self, type: str | None = None, *, merge: Merge = Merge.NONE
    ) -> ScheduleReceiver[RunningChange]:
        """Receive when dispatches start, stop, or change while running.

        A receiver that joins while dispatches run gets a `STARTED` change for each
        running group first (and only it: earlier receivers get nothing again).

        Args:
            type: Only dispatches of this type; None for all.
            merge: How dispatches that run at the same time are grouped.

        Returns:
            The receiver; close it (or leave the `async with`) when done.

        Raises:
            TypeError: If `type` is not a str or None, or `merge` not a `Merge`.
        """
        self._check_open()
        view = View(_check_type(type), _check_merge(merge))
        receiver: ScheduleReceiver[RunningChange] = ScheduleReceiver(self._forget_changes)
        self._seed(view)
        for change in view.current(self._clock.now()):
            receiver._push(change)
        self._changes[receiver] = view
        return receiver

    def _seed(self, view: View) -> None:
        """Bring a new view up to what runs now, without telling anyone."""
        transitions = [Transition(i, None, run) for i, run in sorted(self._running.items())]
        if transitions:
            view.apply(transitions, self._clock.now())

    def _forget_lifecycle(self, receiver: ScheduleReceiver[DispatchEvent]) -> None:
        self._lifecycle.pop(receiver, None)

    def _forget_changes(self, receiver: ScheduleReceiver[RunningChange]) -> None:
        self._changes.pop(receiver, None)

    def _check_open(self) -> None:
        if self._ended:
            raise RuntimeError("the scheduler has ended; create a new one")

    # --- actors --------------------------------------------------------------------------

    def manage(
        self,
        type: str,
        actor: Actor,
        *,
        merge: Merge = Merge.NONE,
        retry: RetryPolicy | None = None,
    ) -> None:
        """Run `actor` while dispatches of `type` run (frequenz-dispatch `start_managing`).

        `actor` is an async function taking a `DispatchInfo`, or an object with async
        `start(info)`, `reconfigure(info)` and `stop(info)` methods (`ActorHooks`).
        One actor runs per running group (per dispatch with `Merge.NONE`): it starts
        when the group starts and is cancelled (or its `stop` called) when the group
        stops. When the dispatch in force changes, a function actor is cancelled and
        started again with the new info; a hooks actor gets `reconfigure`. An actor
        that fails is started again after the retry policy's pause, as long as its
        group runs. Every actor ends with the scheduler.

        Args:
            type: The dispatch type to manage (one manager per type).
            actor: The async function or hooks object.
            merge: How overlapping dispatches are grouped.
            retry: The pauses between restarts of a failing actor; defaults to
                0.5 s doubling up to 30 s, without limit (jittered).

        Raises:
            TypeError: For a type, actor, merge or retry of the wrong type.
            ValueError: If `type` is already managed.
            RuntimeError: If the scheduler has not been entered or has ended.
        """
        from ._actors import ActorManager

        self._check_open()
        if not self._entered or self._tasks is None:
            raise RuntimeError("enter the scheduler (async with) before managing actors")
        if self._actors is None:
            self._actors = ActorManager(self._tasks, self._clock)
        checked = _check_type(type)
        if checked is None:
            raise TypeError("type must be a str, got None")
        view = View(checked, _check_merge(merge))
        self._seed(view)
        self._actors.manage(checked, actor, view, retry)

    async def stop_managing(self, type: str) -> None:
        """Stop managing `type`: its running actors are stopped; returns when they ended.

        Args:
            type: The dispatch type.

        Raises:
            ValueError: If `type` is not managed.
        """
        if self._actors is None or not self._actors.is_managed(type):
            raise ValueError(f"dispatch type {type!r} is not managed")
        await self._actors.stop_managing(type)

    def is_managed(self, type: str) -> bool:
        """Tell whether actors are managed for dispatches of `type`."""
        return self._actors is not None and self._actors.is_managed(type)

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a Scheduler can be entered only once")
        self._entered = True
        tasks = anyio.create_task_group()
        await tasks.__aenter__()
        self._tasks = tasks
        try:
            self._stream = self._client.stream(
                self._microgrid_id, buffer_size=_STREAM_BUFFER, notices=True
            )
            tasks.start_soon(self._follow)
            tasks.start_soon(self._keep_time)
            await self._ready.wait()
            if self._error is not None:
                raise self._error
            if not self._initialized:
                raise RuntimeError(
                    f"the stream of microgrid {self._microgrid_id} ended before the first "
                    "listing (was the client closed?)"
                )
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        tasks, self._tasks = self._tasks, None
        try:
            if self._actors is not None:
                with anyio.CancelScope(shield=True):
                    await self._actors.aclose()
        finally:
            if self._stream is not None:
                self._stream.close()
            self._end(None)
            if tasks is not None:
                tasks.cancel_scope.cancel()
                # The body's exception is not handed to the task group (it would wrap
                # it in an ExceptionGroup); the background tasks end quietly when cancelled.
                await tasks.__aexit__(None, None, None)

    def _end(self, error: BaseException | None) -> None:
        """End every receiver (with `error`, or cleanly) and release `__aenter__`."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        for receiver in list(self._lifecycle):
            receiver._end(error)
        for changes in list(self._changes):
            changes._end(error)
        self._ready.set()

    # --- the mirror ----------------------------------------------------------------------

    async def _follow(self) -> None:
        """Apply the stream's events; list on every (re)connect and after any drop."""
        stream = self._stream
        assert stream is not None
        error: BaseException | None = None
        drops = 0
        try:
            async for item in stream:
                if isinstance(item, StreamConnected):
                    await self._resync()
                elif isinstance(item, DispatchEvent):
                    self._on_event(item)
                if stream.dropped != drops:
                    drops = stream.dropped
                    await self._resync()
        except GrpcError as exc:
            error = exc
        except Exception as exc:  # a bug: end the receivers with it, never hang them
            _log.error("the scheduler of microgrid %d failed", self._microgrid_id, exc_info=exc)
            error = exc
        self._end(error)

    async def _resync(self) -> None:
        """List every dispatch and apply the differences as synthesized events."""
        pauses = None
        while True:
            try:
                listed: dict[int, Dispatch] = {}
                async for page in self._client.list(self._microgrid_id):
                    for dispatch in page:
                        listed[dispatch.id] = dispatch
                break
            except _UNRECOVERABLE:
                raise
            except GrpcError as exc:
                if pauses is None:
                    pauses = _RELIST_RETRY.pauses()
                delay = next(pauses, 30.0)
                _log.warning(
                    "listing the dispatches of microgrid %d failed (%s); again in %.1f s",
                    self._microgrid_id,
                    exc,
                    delay,
                )
                await anyio.sleep(delay)
        self.resyncs += 1
        events = [
            DispatchEvent(event=Event.DELETED, dispatch=self._mirror[i], synthesized=True)
            for i in sorted(self._mirror.keys() - listed.keys())
        ]
        events += [
            DispatchEvent(event=Event.UPDATED, dispatch=listed[i], synthesized=True)
            for i in sorted(self._mirror.keys() & listed.keys())
            if self._mirror[i] != listed[i]
        ]
        events += [
            DispatchEvent(event=Event.CREATED, dispatch=listed[i], synthesized=True)
            for i in sorted(listed.keys() - self._mirror.keys())
        ]
        for event in events:
            self._on_event(event, trust=True)
        if not self._initialized:
            self._initialized = True
            self._ready.set()

    def _on_event(self, event: DispatchEvent, *, trust: bool = False) -> None:
        """Apply one event to the mirror, tell lifecycle receivers, re-evaluate the dispatch.

        Args:
            event: The event.
            trust: True for a listing's differences, which replace the mirror's state
                even when their `update_time` is older (the listing is the newer truth).
        """
        dispatch = event.dispatch
        current = self._mirror.get(dispatch.id)
        if event.event is Event.DELETED:
            if current is None:
                return  # never known, or already gone: nothing changes
            del self._mirror[dispatch.id]
            # A running dispatch that is deleted stops first, then is reported deleted.
            self._evaluate([dispatch.id], self._now())
            self._tell(event, current)
            return
        if event.event not in (Event.CREATED, Event.UPDATED):
            return  # an event kind this client does not know changes nothing it knows
        if current is not None:
            if current == dispatch:
                return  # a duplicate (a listing and the stream both had it)
            if not trust and current.update_time > dispatch.update_time:
                return  # stale: the mirror already holds a later state
        self._mirror[dispatch.id] = dispatch
        kind = Event.CREATED if current is None else Event.UPDATED
        if kind is not event.event:
            event = DispatchEvent(event=kind, dispatch=dispatch, synthesized=event.synthesized)
        self._tell(event, current)
        self._evaluate([dispatch.id], self._now())

    def _tell(self, event: DispatchEvent, before: Dispatch | None) -> None:
        for receiver, type in list(self._lifecycle.items()):
            if (
                type is None
                or event.dispatch.type == type
                or (before is not None and before.type == type)
            ):
                receiver._push(event)

    # --- time ----------------------------------------------------------------------------

    def _now(self) -> datetime:
        """Read the clock; after a backward jump, re-evaluate every dispatch at the new time.

        Timers are armed at instants; a clock that went back would leave a dispatch
        running (or not) until the old instant came round again.
        """
        now = self._clock.now()
        last, self._last_now = self._last_now, now
        if last is not None and now < last:
            _log.warning(
                "the clock went back from %s to %s: re-evaluating every dispatch",
                last.isoformat(),
                now.isoformat(),
            )
            self._evaluate(sorted(self._mirror.keys() | self._running.keys()), now)
        return now

    def _state_at(
        self, dispatch: Dispatch | None, now: datetime
    ) -> tuple[Run | None, datetime | None]:
        """Return whether `dispatch` runs at `now` (and since when) and its next transition."""
        if dispatch is None or not dispatch.active:
            return None, None
        duration = dispatch.duration
        if duration is None:
            first = dispatch.next_run_after(dispatch.start_time)
            if first is None:
                return None, None
            first = first.astimezone(UTC)
            if first <= now:
                return Run(dispatch, first), None
            return None, first
        if not duration:
            return None, None  # runs [t, t) are empty: such a dispatch never runs
        end = dispatch.until_at(now)
        if end is not None:
            end = end.astimezone(UTC)
            return Run(dispatch, end - duration), end
        following = dispatch.next_run_after(now)
        if following is not None and following <= now:
            # Not running at `now`, so a run at `now` would be a contradiction: never
            # arm a timer that is due already (it would fire forever).
            following = dispatch.next_run_after(now + _US)
        return None, None if following is None else following.astimezone(UTC)

    def _evaluate(self, ids: list[int], now: datetime) -> None:
        """Re-evaluate these dispatches at `now`; tell receivers and actors what changed."""
        transitions: list[Transition] = []
        for dispatch_id in ids:
            run, following = self._state_at(self._mirror.get(dispatch_id), now)
            self._arm(dispatch_id, following)
            old = self._running.get(dispatch_id)
            if run is None:
                if old is not None:
                    del self._running[dispatch_id]
                    transitions.append(Transition(dispatch_id, old, None))
            elif old is None or old.dispatch is not run.dispatch or old.start != run.start:
                self._running[dispatch_id] = run
                if old is None or old.dispatch != run.dispatch or old.start != run.start:
                    transitions.append(Transition(dispatch_id, old, run))
        if not transitions:
            return
        for receiver, view in list(self._changes.items()):
            for change in view.apply(transitions, now):
                receiver._push(change)
        if self._actors is not None:
            self._actors.apply(transitions, now)

    def _arm(self, dispatch_id: int, when: datetime | None) -> None:
        """Set (or clear, with None) the one timer of a dispatch."""
        if when is None:
            self._timer_seq.pop(dispatch_id, None)
            return
        seq = next(self._seq)
        self._timer_seq[dispatch_id] = seq
        heapq.heappush(self._timers, (when, seq, dispatch_id))
        # Lazy deletion leaves stale entries; rebuild when they outnumber the live ones.
        if len(self._timers) > 2 * len(self._timer_seq) + 1024:
            self._timers = [t for t in self._timers if self._timer_seq.get(t[2]) == t[1]]
            heapq.heapify(self._timers)
        if self._sleep_scope is not None and (
            self._sleep_target is None or when < self._sleep_target
        ):
            self._sleep_scope.cancel()  # the timer task sleeps too long now: re-arm it

    def _next_timer(self) -> datetime | None:
        timers = self._timers
        while timers and self._timer_seq.get(timers[0][2]) != timers[0][1]:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    async def _keep_time(self) -> None:
        """Sleep until the next timer, then fire whatever is due at the clock's reading."""
        while True:
            target = self._next_timer()
            with anyio.CancelScope() as scope:
                self._sleep_scope, self._sleep_target = scope, target
                if target is None:
                    await anyio.sleep_forever()
                else:
                    await self._clock.sleep_until(target)
            self._sleep_scope = self._sleep_target = None
            if scope.cancelled_caught:
                continue  # an earlier timer was armed
            self.wakeups += 1
            now = self._now()
            due: list[int] = []
            while True:
                head = self._next_timer()
                if head is None or head > now:
                    break
                _, _, dispatch_id = heapq.heappop(self._timers)
                del self._timer_seq[dispatch_id]
                due.append(dispatch_id)
            if due:
                self._evaluate(due, now)
