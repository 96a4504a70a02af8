"""The scheduler over MemoryTransport and a FakeDispatchService, driven by a FakeClock.

Everything runs in process, so `FakeClock.advance()` (which waits until every task is
blocked) is enough to let the stream, the scheduler and the receivers settle: each test
states exactly which changes exist after each step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio
import pytest

from dispatch_client import (
    ChangeKind,
    Client,
    Dispatch,
    DispatchInfo,
    EndCriteria,
    Event,
    Frequency,
    Merge,
    ReceiverStoppedError,
    RecurrenceRule,
    RetryPolicy,
    RunningChange,
    Scheduler,
    ScheduleReceiver,
    TargetIds,
    Unauthenticated,
    Unavailable,
    WallClock,
)
from dispatch_client.testing import FakeClock, FakeDispatchService
from transports import MemoryTransport

pytestmark = pytest.mark.anyio

URL = "grpc://dispatch.test:50051?ssl=false"
MG = 7
T0 = datetime(2030, 1, 7, 14, 0, tzinfo=UTC)  # in the future: create() checks the real time
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
FAST = RetryPolicy(attempts=None, initial=0.001, maximum=0.01, jitter=False)
LIMIT = 10

_T = TypeVar("_T")


class _Live:
    """One relayed stream: whether it was cut, and the scope of its current read."""

    def __init__(self) -> None:
        self.cut = False
        self.scope: anyio.CancelScope | None = None


class Cuttable:
    """The service behind a wrapper that can fail its open streams, as a lost server would."""

    def __init__(self, service: FakeDispatchService) -> None:
        self.service = service
        self.down = False
        self._live: list[_Live] = []

    def __call__(self, method: str, request: bytes, metadata: Any) -> Any:
        if self.down and method.endswith("StreamMicrogridDispatches"):
            raise Unavailable("down (test)")
        inner = self.service(method, request, metadata)
        if isinstance(inner, bytes):
            return inner
        live = _Live()
        self._live.append(live)
        return self._relay(inner, live)

    async def _relay(self, inner: Any, live: _Live) -> AsyncIterator[bytes]:
        try:
            while not live.cut:
                # A scope per read (a scope is entered once); the yield stays outside it.
                with anyio.CancelScope() as live.scope:
                    message = await anext(inner, None)
                live.scope = None
                if live.cut:
                    break
                if message is None:
                    return
                yield message
            raise Unavailable("cut (test)")
        finally:
            self._live.remove(live)
            await inner.aclose()

    def cut(self) -> None:
        """Fail every open stream."""
        for live in self._live:
            live.cut = True
            if live.scope is not None:
                live.scope.cancel()


@asynccontextmanager
async def setup(start: datetime = T0) -> AsyncIterator[tuple[Cuttable, Client, FakeClock]]:
    """A fake clock, a service on that clock behind a `Cuttable`, and a client for it."""
    clock = FakeClock(start)
    with FakeDispatchService(clock=clock.now) as service:
        server = Cuttable(service)
        async with Client(
            server_url=URL, key="k", transport=MemoryTransport(server), stream_retry=FAST
        ) as client:
            yield server, client, clock


async def create(
    client: Client,
    start: datetime,
    duration: timedelta | None,
    *,
    type: str = "CHARGE",
    target: TargetIds | None = None,
    payload: dict[str, Any] | None = None,
    recurrence: RecurrenceRule | None = None,
    microgrid_id: int = MG,
) -> Dispatch:
    """Create a dispatch on the service."""
    return await client.create(
        microgrid_id,
        type,
        start,
        duration,
        target if target is not None else TargetIds(1),
        payload=payload,
        recurrence=recurrence,
    )


def drain(receiver: ScheduleReceiver[_T]) -> list[_T]:
    """Take everything queued in a receiver."""
    items: list[_T] = []
    while (item := receiver.receive_nowait()) is not None:
        items.append(item)
    return items


def kinds(changes: list[RunningChange]) -> list[tuple[str, int]]:
    """Each change as (kind name, dispatch id)."""
    return [(c.kind.name, c.dispatch.id) for c in changes]


# --------------------------------------------------------------------------- mirror


async def test_lifecycle_events_are_delivered_exactly_once() -> None:
    """A receiver sees the listing and each later change once; a later one, later changes only."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock):
            first = await create(client, T0 + HOUR, HOUR)
            scheduler = Scheduler(client, MG, clock=clock)
            early = scheduler.lifecycle_events()
            async with scheduler:
                assert scheduler.initialized
                assert scheduler.resyncs == 1
                late = scheduler.lifecycle_events()
                second = await create(client, T0 + 2 * HOUR, HOUR)
                await client.update(
                    microgrid_id=MG, dispatch_id=first.id, new_fields={"payload": {"p": 1}}
                )
                await client.delete(microgrid_id=MG, dispatch_id=second.id)
                await clock.settle()
                expected = [
                    (Event.CREATED, second.id),
                    (Event.UPDATED, first.id),
                    (Event.DELETED, second.id),
                ]
                seen_early = [(e.event, e.dispatch.id, e.synthesized) for e in drain(early)]
                assert seen_early == [(Event.CREATED, first.id, True)] + [
                    (*pair, False) for pair in expected
                ]
                assert [(e.event, e.dispatch.id) for e in drain(late)] == expected
                assert set(scheduler.dispatches) == {first.id}
                assert scheduler.dispatches[first.id].payload == {"p": 1}
            # Closing the scheduler ends the receivers' iteration.
            assert [e async for e in late] == []
            with pytest.raises(ReceiverStoppedError):
                await early.receive()


async def test_lifecycle_receiver_filters_by_type() -> None:
    """A typed lifecycle receiver sees only dispatches of that type."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            charge = scheduler.lifecycle_events("CHARGE")
            await create(client, T0 + HOUR, HOUR, type="CHARGE")
            await create(client, T0 + HOUR, HOUR, type="DISCHARGE")
            await clock.settle()
            assert [e.dispatch.type for e in drain(charge)] == ["CHARGE"]


async def test_changes_while_the_stream_is_down_are_found_by_the_resync() -> None:
    """After a reconnect the scheduler lists again; changes made in the gap arrive, once each."""
    with anyio.fail_after(LIMIT):
        async with setup() as (server, client, clock):
            kept = await create(client, T0 + HOUR, HOUR)
            gone = await create(client, T0 + HOUR, HOUR)
            async with Scheduler(client, MG, clock=clock) as scheduler:
                events = scheduler.lifecycle_events()
                changes = scheduler.running_state_changes()
                server.down = True
                server.cut()
                await clock.settle()
                # Made while no stream is open: the stream never carries these.
                await client.delete(microgrid_id=MG, dispatch_id=gone.id)
                await client.update(
                    microgrid_id=MG, dispatch_id=kept.id, new_fields={"payload": {"x": 2}}
                )
                new = await create(client, T0 + 2 * HOUR, HOUR)
                server.down = False
                # The reconnect happens after a real (short) backoff pause: wait for it.
                seen = [(e.event, e.dispatch.id, e.synthesized) for e in [await events.receive()]]
                await clock.settle()
                seen += [(e.event, e.dispatch.id, e.synthesized) for e in drain(events)]
                assert scheduler.resyncs == 2
                assert seen == [
                    (Event.DELETED, gone.id, True),
                    (Event.UPDATED, kept.id, True),
                    (Event.CREATED, new.id, True),
                ]
                assert scheduler.dispatches[kept.id].payload == {"x": 2}
                await clock.advance_to(T0 + 2 * HOUR)
                assert kinds(drain(changes)) == [
                    ("STARTED", kept.id),
                    ("STARTED", new.id),
                    ("STOPPED", kept.id),
                ]


async def test_one_scheduler_per_microgrid_over_one_client() -> None:
    """Two schedulers on one client follow their own microgrids and nothing else."""
    with anyio.fail_after(LIMIT):
        async with (
            setup() as (_, client, clock),
            Scheduler(client, MG, clock=clock) as first,
            Scheduler(client, MG + 1, clock=clock) as second,
        ):
            firsts = first.running_state_changes()
            seconds = second.running_state_changes()
            mine = await create(client, T0 + HOUR, HOUR)
            theirs = await create(client, T0 + HOUR, HOUR, microgrid_id=MG + 1)
            await clock.advance(HOUR)
            assert kinds(drain(firsts)) == [("STARTED", mine.id)]
            assert kinds(drain(seconds)) == [("STARTED", theirs.id)]
            assert set(first.dispatches) == {mine.id}
            assert set(second.dispatches) == {theirs.id}


async def test_unrecoverable_stream_error_is_raised_on_entry() -> None:
    """A wrong key makes entering raise `Unauthenticated` itself, not an exception group."""
    with anyio.fail_after(LIMIT):
        clock = FakeClock(T0)
        with FakeDispatchService(keys=["right"], clock=clock.now) as service:
            async with Client(
                server_url=URL, key="wrong", transport=MemoryTransport(service)
            ) as client:
                with pytest.raises(Unauthenticated):
                    async with Scheduler(client, MG, clock=clock):
                        pass


async def test_arguments_are_checked_before_any_io() -> None:
    """Bad arguments raise TypeError/ValueError at once."""
    async with setup() as (_, client, clock):
        with pytest.raises(TypeError, match="client"):
            Scheduler(object(), MG)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="microgrid_id"):
            Scheduler(client, "7")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="microgrid_id"):
            Scheduler(client, -1)
        with pytest.raises(TypeError, match="clock"):
            Scheduler(client, MG, clock=object())  # type: ignore[arg-type]
        scheduler = Scheduler(client, MG, clock=clock)
        with pytest.raises(TypeError, match="type"):
            scheduler.running_state_changes(3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="merge"):
            scheduler.running_state_changes(merge="by_type")  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="enter"):
            scheduler.manage("CHARGE", _noop)
        assert isinstance(Scheduler(client, MG).clock, WallClock)


async def _noop(info: DispatchInfo) -> None:
    """An actor that does nothing."""


# ---------------------------------------------------------------------------- time


async def test_a_run_starts_and_stops_on_time() -> None:
    """A one-hour run is started at its start and stopped at its end, with the clock's times."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            changes = scheduler.running_state_changes()
            dispatch = await create(client, T0 + HOUR, 30 * MIN)
            await clock.advance(HOUR - MIN)
            assert drain(changes) == []
            await clock.advance(MIN)
            [started] = drain(changes)
            assert (started.kind, started.dispatch, started.at) == (
                ChangeKind.STARTED,
                dispatch,
                T0 + HOUR,
            )
            assert scheduler.running == {dispatch.id: dispatch}
            assert scheduler.run_start(dispatch.id) == T0 + HOUR
            await clock.advance(30 * MIN)
            [stopped] = drain(changes)
            assert (stopped.kind, stopped.at, stopped.running) == (
                ChangeKind.STOPPED,
                T0 + 90 * MIN,
                (),
            )
            assert scheduler.running == {}


async def test_recurrence_with_count_fires_every_run_and_then_never() -> None:
    """A daily rule with count 3 starts and stops three times, then stays quiet."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            changes = scheduler.running_state_changes()
            rule = RecurrenceRule(
                frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(count=3)
            )
            await create(client, T0 + HOUR, HOUR, recurrence=rule)
            await clock.advance(timedelta(days=10))
            got = drain(changes)
            assert [(c.kind.name, c.at) for c in got] == [
                (kind, T0 + HOUR * (1 + end) + timedelta(days=day))
                for day in range(3)
                for kind, end in (("STARTED", 0), ("STOPPED", 1))
            ]
            assert scheduler.wakeups == 6


async def test_until_ends_the_series_and_no_duration_runs_forever() -> None:
    """`until` bounds the runs; without duration the dispatch runs from its first run on."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            changes = scheduler.running_state_changes()
            hourly = RecurrenceRule(
                frequency=Frequency.HOURLY,
                interval=2,
                end_criteria=EndCriteria(until=T0 + 5 * HOUR),
            )
            bounded = await create(client, T0 + HOUR, 10 * MIN, recurrence=hourly)
            # No duration; the rule's filter puts the first run at 17:00, not at 15:00.
            at17 = RecurrenceRule(frequency=Frequency.DAILY, interval=1, byhours=[17])
            forever = await create(client, T0 + HOUR, None, recurrence=at17)
            await clock.advance(timedelta(days=3))
            got = [(c.kind.name, c.dispatch.id, c.at) for c in drain(changes)]
            starts = [T0 + HOUR, T0 + 3 * HOUR, T0 + 5 * HOUR]
            expected = [("STARTED", forever.id, T0 + 3 * HOUR)]
            for start in starts:
                expected += [
                    ("STARTED", bounded.id, start),
                    ("STOPPED", bounded.id, start + 10 * MIN),
                ]
            assert sorted(got, key=lambda g: (g[2], g[0] != "STARTED")) == sorted(
                expected, key=lambda g: (g[2], g[0] != "STARTED")
            )
            assert set(scheduler.running) == {forever.id}


async def test_zero_duration_and_inactive_dispatches_never_run() -> None:
    """Duration 0 (an empty run) and an inactive dispatch never start."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            changes = scheduler.running_state_changes()
            await create(client, T0 + HOUR, timedelta(0))
            inactive = await create(client, T0 + HOUR, HOUR)
            await client.update(
                microgrid_id=MG, dispatch_id=inactive.id, new_fields={"active": False}
            )
            await clock.advance(3 * HOUR)
            assert drain(changes) == []


async def test_a_late_wakeup_never_starts_a_run_that_is_over() -> None:
    """After a clock jump past a whole run it never fires; a jump into a run starts it."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            changes = scheduler.running_state_changes()
            missed = await create(client, T0 + HOUR, 10 * MIN)
            caught = await create(client, T0 + 2 * HOUR, HOUR)
            await clock.settle()
            clock.jump(T0 + 2 * HOUR + 30 * MIN)  # asleep through the first, into the second
            await clock.advance(0)
            got = drain(changes)
            assert kinds(got) == [("STARTED", caught.id)]
            assert got[0].at == T0 + 2 * HOUR + 30 * MIN
            assert missed.id not in scheduler.running


async def test_a_clock_that_goes_back_re_evaluates_every_dispatch() -> None:
    """After a backward jump the next wake-up re-evaluates all: a run not yet begun stops."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            changes = scheduler.running_state_changes()
            dispatch = await create(client, T0 + HOUR, HOUR)
            await clock.advance(90 * MIN)
            clock.jump(T0 + 30 * MIN)
            # Any wake-up notices: here, the event of an unrelated dispatch.
            await create(client, T0 + 5 * HOUR, HOUR)
            await clock.settle()
            assert scheduler.running == {}
            await clock.advance_to(T0 + HOUR)
            got = [(c.kind.name, c.dispatch.id, c.at) for c in drain(changes)]
            assert got == [
                ("STARTED", dispatch.id, T0 + HOUR),
                ("STOPPED", dispatch.id, T0 + 30 * MIN),
                ("STARTED", dispatch.id, T0 + HOUR),
            ]


async def test_deleting_a_running_dispatch_stops_it() -> None:
    """Deleting a running dispatch sends STOPPED; the lifecycle receiver gets DELETED."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            changes = scheduler.running_state_changes()
            events = scheduler.lifecycle_events()
            dispatch = await create(client, T0 + HOUR, HOUR)
            await clock.advance(HOUR)
            await client.delete(microgrid_id=MG, dispatch_id=dispatch.id)
            await clock.settle()
            assert kinds(drain(changes)) == [("STARTED", dispatch.id), ("STOPPED", dispatch.id)]
            assert [e.event for e in drain(events)] == [Event.CREATED, Event.DELETED]


async def test_changes_while_running_reconfigure_or_stop() -> None:
    """A payload change while running is RECONFIGURED; a deactivation is STOPPED."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            changes = scheduler.running_state_changes()
            dispatch = await create(client, T0 + HOUR, HOUR, payload={"power": 1})
            await clock.advance(HOUR)
            await client.update(
                microgrid_id=MG, dispatch_id=dispatch.id, new_fields={"payload": {"power": 2}}
            )
            await clock.settle()
            await client.update(
                microgrid_id=MG, dispatch_id=dispatch.id, new_fields={"active": False}
            )
            await clock.settle()
            got = drain(changes)
            assert kinds(got) == [
                ("STARTED", dispatch.id),
                ("RECONFIGURED", dispatch.id),
                ("STOPPED", dispatch.id),
            ]
            assert got[1].dispatch.payload == {"power": 2}


async def test_a_start_comes_before_a_stop_at_the_same_instant() -> None:
    """When one dispatch ends as another starts, STARTED is sent before STOPPED."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            changes = scheduler.running_state_changes()
            first = await create(client, T0 + HOUR, HOUR)
            second = await create(client, T0 + 2 * HOUR, HOUR)
            await clock.advance(2 * HOUR)
            assert kinds(drain(changes)) == [
                ("STARTED", first.id),
                ("STARTED", second.id),
                ("STOPPED", first.id),
            ]


async def test_a_new_receiver_gets_the_current_state_alone() -> None:
    """A receiver that joins gets STARTED for what runs; earlier receivers get no duplicate."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            early = scheduler.running_state_changes()
            dispatch = await create(client, T0 + HOUR, HOUR)
            await clock.advance(HOUR)
            assert kinds(drain(early)) == [("STARTED", dispatch.id)]
            late = scheduler.running_state_changes()
            other = scheduler.running_state_changes("DISCHARGE")
            await clock.settle()
            assert kinds(drain(late)) == [("STARTED", dispatch.id)]
            assert drain(early) == []
            assert drain(other) == []
            await clock.advance(HOUR)
            assert kinds(drain(early)) == kinds(drain(late)) == [("STOPPED", dispatch.id)]


# --------------------------------------------------------------------------- merging


async def test_merge_by_type_puts_the_earlier_payload_back_in_force() -> None:
    """With merging by type, when B ends while A runs, A's payload is in force again."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            merged = scheduler.running_state_changes("CHARGE", merge=Merge.BY_TYPE)
            a = await create(client, T0 + HOUR, 3 * HOUR, payload={"p": "a"})
            b = await create(client, T0 + 2 * HOUR, HOUR, payload={"p": "b"}, target=TargetIds(2))
            await clock.advance(5 * HOUR)
            got = drain(merged)
            assert [(c.kind.name, c.dispatch.payload, c.at - T0) for c in got] == [
                ("STARTED", {"p": "a"}, HOUR),
                ("RECONFIGURED", {"p": "b"}, 2 * HOUR),
                ("RECONFIGURED", {"p": "a"}, 3 * HOUR),
                ("STOPPED", {"p": "a"}, 4 * HOUR),
            ]
            assert [d.id for d in got[1].running] == [a.id, b.id]
            assert got[0].group == "CHARGE"


async def test_merge_by_type_and_target_keeps_targets_apart() -> None:
    """With merging by type and target, dispatches for other targets are separate groups."""
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            merged = scheduler.running_state_changes(merge=Merge.BY_TYPE_AND_TARGET)
            a = await create(client, T0 + HOUR, 2 * HOUR, target=TargetIds(1))
            b = await create(client, T0 + HOUR, HOUR, target=TargetIds(2))
            c = await create(client, T0 + 2 * HOUR, 2 * HOUR, target=TargetIds(1))
            await clock.advance(5 * HOUR)
            got = drain(merged)
            assert [(x.kind.name, x.dispatch.id, x.at - T0) for x in got] == [
                ("STARTED", a.id, HOUR),
                ("STARTED", b.id, HOUR),
                ("RECONFIGURED", c.id, 2 * HOUR),
                ("STOPPED", b.id, 2 * HOUR),
                ("STOPPED", c.id, 4 * HOUR),
            ]
            assert got[0].group == ("CHARGE", TargetIds(1))


# ---------------------------------------------------------------------------- actors


class Hooks:
    """An ActorHooks actor that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail_starts = 0

    async def start(self, info: DispatchInfo) -> None:
        """Record a start (or fail, while `fail_starts` says so)."""
        self.calls.append(("start", info.options))
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("start failed (test)")

    async def reconfigure(self, info: DispatchInfo) -> None:
        """Record a reconfiguration."""
        self.calls.append(("reconfigure", info.options))

    async def stop(self, info: DispatchInfo) -> None:
        """Record a stop."""
        self.calls.append(("stop", info.options))


async def test_function_actor_runs_while_its_dispatch_runs() -> None:
    """A function actor starts with the run, restarts on a change, is cancelled at the end."""
    log: list[tuple[str, Any]] = []

    async def actor(info: DispatchInfo) -> None:
        log.append(("run", (info.options, info.dry_run, info.target)))
        try:
            await anyio.sleep_forever()
        finally:
            log.append(("cancelled", info.options))

    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            scheduler.manage("CHARGE", actor)
            assert scheduler.is_managed("CHARGE")
            assert not scheduler.is_managed("X")
            with pytest.raises(ValueError, match="managed already"):
                scheduler.manage("CHARGE", actor)
            dispatch = await create(client, T0 + HOUR, HOUR, payload={"p": 1})
            await clock.advance(HOUR)
            await client.update(
                microgrid_id=MG, dispatch_id=dispatch.id, new_fields={"payload": {"p": 2}}
            )
            await clock.settle()
            await clock.advance(HOUR)
            assert log == [
                ("run", ({"p": 1}, False, TargetIds(1))),
                ("cancelled", {"p": 1}),
                ("run", ({"p": 2}, False, TargetIds(1))),
                ("cancelled", {"p": 2}),
            ]


async def test_failing_actor_is_restarted_after_the_pause() -> None:
    """An actor that raises is started again after the retry pause, on the scheduler's clock."""
    runs: list[datetime] = []

    async def actor(info: DispatchInfo) -> None:
        runs.append(clock.now())
        if len(runs) < 3:
            raise RuntimeError("boom (test)")
        await anyio.sleep_forever()

    retry = RetryPolicy(attempts=None, initial=10.0, maximum=20.0, jitter=False)
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            scheduler.manage("CHARGE", actor, retry=retry)
            await create(client, T0 + HOUR, HOUR)
            await clock.advance(HOUR + MIN)
            start = T0 + HOUR
            assert runs == [start, start + timedelta(seconds=10), start + timedelta(seconds=30)]


async def test_hooks_actor_with_merging_and_stop_managing() -> None:
    """A hooks actor is started, reconfigured and stopped; a failed start is retried."""
    hooks = Hooks()
    hooks.fail_starts = 1
    retry = RetryPolicy(attempts=None, initial=1.0, maximum=1.0, jitter=False)
    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock), Scheduler(client, MG, clock=clock) as scheduler:
            scheduler.manage("CHARGE", hooks, merge=Merge.BY_TYPE, retry=retry)
            await create(client, T0 + HOUR, 3 * HOUR, payload={"p": "a"})
            await create(client, T0 + 2 * HOUR, HOUR, payload={"p": "b"})
            await clock.advance(3 * HOUR + MIN)
            assert hooks.calls == [
                ("start", {"p": "a"}),
                ("start", {"p": "a"}),
                ("reconfigure", {"p": "b"}),
                ("reconfigure", {"p": "a"}),
            ]
            await scheduler.stop_managing("CHARGE")
            assert hooks.calls[-1] == ("stop", {"p": "a"})
            assert not scheduler.is_managed("CHARGE")
            with pytest.raises(ValueError, match="not managed"):
                await scheduler.stop_managing("CHARGE")


async def test_closing_the_scheduler_stops_every_actor() -> None:
    """Leaving the block stops hooks actors and cancels function actors; nothing hangs."""
    hooks = Hooks()
    cancelled = anyio.Event()

    async def actor(info: DispatchInfo) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock):
            async with Scheduler(client, MG, clock=clock) as scheduler:
                scheduler.manage("CHARGE", hooks)
                scheduler.manage("DISCHARGE", actor)
                await create(client, T0 + HOUR, None)
                await create(client, T0 + HOUR, None, type="DISCHARGE")
                await clock.advance(HOUR)
                assert hooks.calls == [("start", {})]
            assert hooks.calls == [("start", {}), ("stop", {})]
            assert cancelled.is_set()


async def test_nothing_outlives_the_scheduler() -> None:
    """After the block no task of the scheduler, its stream or its actors is left."""

    async def actor(info: DispatchInfo) -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(LIMIT):
        async with setup() as (_, client, clock):
            # A first call makes the client start what it keeps for its own lifetime.
            await create(client, T0 + HOUR, HOUR)
            await clock.settle()
            before = len(anyio.get_running_tasks())
            async with Scheduler(client, MG, clock=clock) as scheduler:
                scheduler.manage("CHARGE", actor)
                scheduler.running_state_changes()
                scheduler.lifecycle_events()
                await create(client, T0 + HOUR, None, target=TargetIds(2))
                await clock.advance(HOUR)
                assert len(scheduler.running) == 2
                assert len(anyio.get_running_tasks()) > before
            await clock.settle()
            assert len(anyio.get_running_tasks()) == before
            assert clock.sleepers == 0


# ------------------------------------------------------------------------ fake clock


async def test_fake_clock_fires_timers_in_order_without_sleeping() -> None:
    """`advance` wakes each sleeper at its deadline, in order, with the clock reading it."""
    clock = FakeClock(T0)
    woke: list[tuple[int, datetime]] = []

    async def sleeper(n: int, after: timedelta) -> None:
        await clock.sleep_until(T0 + after)
        woke.append((n, clock.now()))

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tasks:
            for n, after in enumerate([3 * MIN, MIN, 2 * MIN, 2 * MIN, 10 * MIN]):
                tasks.start_soon(sleeper, n, after)
            await anyio.wait_all_tasks_blocked()
            assert clock.sleepers == 5
            assert clock.next_deadline == T0 + MIN
            await clock.advance(5 * MIN)
            # In time order; sleepers of one instant wake together, in no promised order
            # (trio shuffles its run queue).
            assert [when for _, when in woke] == [
                T0 + MIN,
                T0 + 2 * MIN,
                T0 + 2 * MIN,
                T0 + 3 * MIN,
            ]
            assert sorted(woke) == [
                (0, T0 + 3 * MIN),
                (1, T0 + MIN),
                (2, T0 + 2 * MIN),
                (3, T0 + 2 * MIN),
            ]
            assert clock.now() == T0 + 5 * MIN
            clock.jump(T0 + HOUR)  # wakes nobody
            await anyio.wait_all_tasks_blocked()
            assert len(woke) == 4
            await clock.advance(0)
            assert woke[-1] == (4, T0 + HOUR)
            await clock.sleep_until(T0)  # due already: returns at once


async def test_fake_clock_checks_its_arguments() -> None:
    """Naive times and going back raise ValueError; a cancelled sleeper is forgotten."""
    clock = FakeClock(T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="forward"):
        await clock.advance(-MIN)
    with pytest.raises(ValueError, match="forward"):
        await clock.advance_to(T0 - MIN)
    with pytest.raises(ValueError, match="timezone-aware"):
        await clock.sleep_until(datetime(2027, 1, 1))
    with anyio.move_on_after(0.01):
        await clock.sleep(60)
    assert clock.sleepers == 0
    assert "FakeClock" in repr(clock)


async def test_wall_clock_sleeps_until_its_deadline() -> None:
    """`WallClock.sleep_until` returns only once the wall clock reads the deadline."""
    clock = WallClock()
    with anyio.fail_after(LIMIT):
        deadline = clock.now() + timedelta(milliseconds=20)
        await clock.sleep_until(deadline)
        assert clock.now() >= deadline
        await clock.sleep_until(deadline - HOUR)
    with pytest.raises(ValueError, match="timezone-aware"):
        await clock.sleep_until(datetime(2026, 1, 1))
