"""The scheduler over real gRPC (loopback) against the served FakeDispatchService.

The scheduler's client talks gRPC (grpclib on asyncio, H2Transport on trio); a second
client reaches the same service in process (MemoryTransport) to change dispatches, also
while the gRPC server is down. Time is a FakeClock, so runs start and stop exactly when
the test moves it; waiting for the network is bounded by `fail_after`, never asserted.
"""

from __future__ import annotations

import socket
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import anyio
import anyio.abc
import pytest

from dispatch_client import (
    ChangeKind,
    Client,
    EndCriteria,
    Event,
    Frequency,
    Merge,
    RecurrenceRule,
    RetryPolicy,
    Scheduler,
    ScheduleReceiver,
    TargetIds,
)
from dispatch_client.testing import FakeClock, FakeDispatchService, serve
from transports import MemoryTransport

pytestmark = pytest.mark.anyio

MG = 11
KEY = "test-key"
T0 = datetime(2030, 1, 7, 14, 0, tzinfo=UTC)  # in the future: create() checks the real time
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
FAST = RetryPolicy(attempts=None, initial=0.02, maximum=0.1, jitter=False)
TIMEOUT = 20
_T = TypeVar("_T")


def _free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _subscribed(service: FakeDispatchService) -> None:
    """Wait until the server has subscribed the scheduler's stream."""
    with anyio.fail_after(TIMEOUT):
        # The service has no event for it: poll (bounded by the timeout).
        while service.subscriber_count(MG) != 1:  # noqa: ASYNC110
            await anyio.sleep(0.005)


class _Server:
    """The served service in a task of its own, so it can stop and start under a scheduler."""

    def __init__(self, service: FakeDispatchService, port: int) -> None:
        self.service = service
        self.port = port
        self._stop = anyio.Event()
        self._stopped = anyio.Event()

    async def start(self, tasks: anyio.abc.TaskGroup) -> None:
        """Serve until `stop()`."""
        self._stop, self._stopped = anyio.Event(), anyio.Event()
        await tasks.start(self._run)

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            async with serve(self.service, port=self.port):
                task_status.started()
                await self._stop.wait()
        finally:
            self._stopped.set()

    async def stop(self) -> None:
        """Stop serving; return once the server is gone."""
        self._stop.set()
        await self._stopped.wait()


async def test_server_restart_mid_run_with_changes_during_the_gap() -> None:
    """Changes made while the server is down arrive after it is back: each start/stop once."""
    port = _free_port()
    url = f"grpc://127.0.0.1:{port}?ssl=false"
    clock = FakeClock(T0)
    with anyio.fail_after(TIMEOUT), FakeDispatchService(clock=clock.now) as service:
        local = Client(server_url="grpc://local", key=KEY, transport=MemoryTransport(service))
        server = _Server(service, port)
        async with (
            local,
            Client(server_url=url, key=KEY, stream_retry=FAST) as client,
            anyio.create_task_group() as tasks,
        ):
            a = await local.create(MG, "CHARGE", T0 + HOUR, 2 * HOUR, TargetIds(1))
            c = await local.create(
                MG, "CHARGE", T0 + HOUR, 2 * HOUR, TargetIds(2), payload={"p": 1}
            )
            await server.start(tasks)
            async with Scheduler(client, MG, clock=clock) as scheduler:
                changes = scheduler.running_state_changes()
                events = scheduler.lifecycle_events()
                await _subscribed(service)
                await clock.advance(HOUR)
                assert [(x.kind, x.dispatch.id) for x in changes_now(changes)] == [
                    (ChangeKind.STARTED, a.id),
                    (ChangeKind.STARTED, c.id),
                ]
                await server.stop()  # the server goes away mid-run
                # While it is down: delete a running one, change another, add one.
                await local.delete(microgrid_id=MG, dispatch_id=a.id)
                await local.update(
                    microgrid_id=MG, dispatch_id=c.id, new_fields={"payload": {"p": 2}}
                )
                b = await local.create(MG, "CHARGE", T0 + 90 * MIN, HOUR, TargetIds(3))
                await server.start(tasks)
                seen = [await events.receive() for _ in range(3)]
                assert [(e.event, e.dispatch.id, e.synthesized) for e in seen] == [
                    (Event.DELETED, a.id, True),
                    (Event.UPDATED, c.id, True),
                    (Event.CREATED, b.id, True),
                ]
                assert scheduler.resyncs == 2
                await clock.advance(30 * MIN)
                await clock.advance(2 * HOUR)
                got = [(x.kind, x.dispatch.id, x.at) for x in changes_now(changes)]
                gap_end = T0 + HOUR
                assert got == [
                    (ChangeKind.STOPPED, a.id, gap_end),
                    (ChangeKind.RECONFIGURED, c.id, gap_end),
                    (ChangeKind.STARTED, b.id, T0 + 90 * MIN),
                    (ChangeKind.STOPPED, b.id, T0 + 150 * MIN),
                    (ChangeKind.STOPPED, c.id, T0 + 3 * HOUR),
                ]
                assert events.pending() == 0
            await server.stop()


def changes_now(receiver: ScheduleReceiver[_T]) -> list[_T]:
    """Everything queued in a scheduler receiver."""
    items: list[_T] = []
    while (item := receiver.receive_nowait()) is not None:
        items.append(item)
    return items


async def test_a_thousand_dispatches_with_overlapping_recurrences() -> None:
    """1,000 recurring dispatches: each run starts and stops once; merged groups stay consistent."""
    clock = FakeClock(T0)
    port = _free_port()
    with anyio.fail_after(60), FakeDispatchService(clock=clock.now) as service:
        local = Client(server_url="grpc://local", key=KEY, transport=MemoryTransport(service))
        url = f"grpc://127.0.0.1:{port}?ssl=false"
        async with (
            local,
            serve(service, port=port),
            Client(server_url=url, key=KEY, stream_retry=FAST) as client,
        ):
            created = []
            for i in range(1000):
                rule = RecurrenceRule(
                    frequency=Frequency.HOURLY if i % 2 else Frequency.MINUTELY,
                    interval=1 if i % 2 else 40,
                    end_criteria=EndCriteria(count=3),
                )
                created.append(
                    await local.create(
                        MG,
                        f"TYPE{i % 4}",
                        T0 + (5 + 5 * (i % 12)) * MIN,
                        (15 + 10 * (i % 5)) * MIN,
                        TargetIds(i % 7),
                        payload={"i": i},
                        recurrence=rule,
                    )
                )
            async with Scheduler(client, MG, clock=clock) as scheduler:
                assert len(scheduler.dispatches) == 1000
                single = scheduler.running_state_changes()
                merged = scheduler.running_state_changes(merge=Merge.BY_TYPE)
                horizon = T0 + 6 * HOUR
                checks = [T0 + k * 37 * MIN for k in range(1, 6 * 60 // 37, 2)]
                for instant in checks:
                    await clock.advance_to(instant)
                    expected = {d.id for d in created if d.started_at(instant)}
                    assert set(scheduler.running) == expected
                await clock.advance_to(horizon)
                assert scheduler.running == {}
                kinds = Counter(x.kind for x in changes_now(single))
                # Each dispatch runs 3 times within the horizon; runs of one dispatch that
                # overlap (40-minute interval, 45 minutes long) make one running stretch.
                stretches = 0
                for dispatch in created:
                    assert dispatch.duration is not None
                    end = None
                    for run in dispatch.missed_runs(T0, horizon):
                        if end is None or run >= end:
                            stretches += 1
                        end = run + dispatch.duration
                assert 2000 < stretches < 3000
                assert kinds == {ChangeKind.STARTED: stretches, ChangeKind.STOPPED: stretches}
                running: set[object] = set()
                for change in changes_now(merged):
                    if change.kind is ChangeKind.STARTED:
                        assert change.group not in running
                        running.add(change.group)
                    elif change.kind is ChangeKind.STOPPED:
                        running.remove(change.group)
                    else:
                        assert change.group in running
                assert running == set()
