"""`Client.stream()` against a FakeDispatchService served over real gRPC on loopback.

Every test runs with H2Transport (asyncio and trio) and GrpclibTransport (asyncio
only). Events are made by a second client against the same server, so they travel the
whole way: client call, server, the fake's subscribers, the stream call, the upstream's
fan-out and each receiver's buffer.

The fault test stops the server mid-stream, changes the dispatches through another
server over the same SQLite database while the first is down, and brings the first back
on its port: with `resync=True` the consumer's view ends equal to `list()`; without it,
the receivers go on with the live events after the gap. A second fault test stops the
server amid a burst of concurrent changes, so that events it committed are lost to the
stream, and checks that a resync consumer's view still converges to `list()`.

Waits poll with a deadline (`_until`) and fail the test rather than hang; no test
asserts how long anything takes, except the one-second bound on closing the client.
"""

from __future__ import annotations

import itertools
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from dispatch_client import (
    Client,
    ConnectError,
    Dispatch,
    DispatchEvent,
    DispatchReceiver,
    Event,
    GrpcError,
    ReceiverStoppedError,
    RetryPolicy,
    StreamConnected,
    StreamNotice,
    StreamReconnecting,
    TargetIds,
    TransportError,
    Unauthenticated,
    Unavailable,
)
from dispatch_client._client import TransportName
from dispatch_client.testing import FakeDispatchService, serve

pytestmark = pytest.mark.anyio

KEY = "test-key"
MICROGRID = 1
_TIMEOUT = 10
"""Seconds any wait may take for something that should happen at once (never asserted)."""
_FAST_RETRY = RetryPolicy(attempts=None, initial=0.05, maximum=0.2)
"""Reconnect quickly, forever: the fault test's gap then costs fractions of a second."""

Item = DispatchEvent | StreamNotice
Seen = tuple[Event, Dispatch, bool]
"""What a test compares of an event: its kind, its dispatch, whether it was synthesized."""


@pytest.fixture(params=["h2", "grpclib"])
def transport(request: pytest.FixtureRequest, anyio_backend: str) -> TransportName:
    """Name the client transport; GrpclibTransport only on asyncio."""
    name: TransportName = "h2" if request.param == "h2" else "grpclib"
    if name == "grpclib" and anyio_backend != "asyncio":
        pytest.skip("GrpclibTransport runs on asyncio only")
    return name


def _later(hours: float = 1) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


def _seen(event: DispatchEvent) -> Seen:
    return (event.event, event.dispatch, event.synthesized)


def _apply(view: dict[int, Dispatch], event: DispatchEvent) -> None:
    """Apply an event to a consumer's view, as an application would."""
    if event.event is Event.DELETED:
        del view[event.dispatch.id]
    else:
        view[event.dispatch.id] = event.dispatch


def _free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait until `condition()` holds; fail the test if it does not within `_TIMEOUT`."""
    try:
        with anyio.fail_after(_TIMEOUT):
            # Polling: some conditions (the server's subscriber count) have no event.
            while not condition():  # noqa: ASYNC110
                await anyio.sleep(0.005)
    except TimeoutError:
        pytest.fail(f"timed out waiting until {what}")


async def _subscribed(service: FakeDispatchService, count: int = 1) -> None:
    """Wait until the server has subscribed `count` streams of the microgrid."""
    await _until(
        lambda: service.subscriber_count(MICROGRID) == count,
        f"the server has {count} subscriber(s)",
    )


@asynccontextmanager
async def _client(
    url: str, transport: TransportName, *, key: str = KEY, **options: Any
) -> AsyncIterator[Client]:
    """Open a client of the served fake with the given transport (and client options)."""
    async with Client(server_url=url, key=key, transport=transport, **options) as client:
        yield client


@asynccontextmanager
async def _served(
    transport: TransportName,
) -> AsyncIterator[tuple[FakeDispatchService, Client, Client, anyio.abc.TaskGroup]]:
    """Serve a fresh service; yield it, a consumer and a producer client, and a task group."""
    with FakeDispatchService() as service:
        async with (
            serve(service) as url,
            _client(url, transport) as consumer,
            _client(url, transport) as producer,
            anyio.create_task_group() as tasks,
        ):
            yield service, consumer, producer, tasks


class _Collector:
    """Reads one receiver to its end in a task, keeping events and notices apart."""

    def __init__(self, receiver: DispatchReceiver[Any]) -> None:
        self.receiver = receiver
        self.items: list[Item] = []
        self.error: BaseException | None = None
        self.done = anyio.Event()

    @property
    def events(self) -> list[DispatchEvent]:
        """The events received so far, in order."""
        return [i for i in self.items if isinstance(i, DispatchEvent)]

    @property
    def notices(self) -> list[StreamNotice]:
        """The notices received so far, in order."""
        return [i for i in self.items if isinstance(i, StreamNotice)]

    async def run(self) -> None:
        """Iterate the receiver to its end; an error that ends it is kept in `error`."""
        try:
            async for item in self.receiver:
                self.items.append(item)
        except Exception as exc:  # kept for the test to assert on
            self.error = exc
        finally:
            self.done.set()


async def _make_changes(client: Client) -> list[Seen]:
    """Create three dispatches, update one, delete one; return the events they make."""
    first = await client.create(MICROGRID, "ONE", _later(), timedelta(minutes=5), TargetIds(1))
    second = await client.create(MICROGRID, "TWO", _later(2), None, TargetIds(2, 3))
    third = await client.create(
        MICROGRID, "THREE", _later(3), timedelta(hours=1), TargetIds(4), payload={"p": 1.5}
    )
    first_updated = await client.update(
        microgrid_id=MICROGRID, dispatch_id=first.id, new_fields={"active": False}
    )
    await client.delete(microgrid_id=MICROGRID, dispatch_id=second.id)
    return [
        (Event.CREATED, first, False),
        (Event.CREATED, second, False),
        (Event.CREATED, third, False),
        (Event.UPDATED, first_updated, False),
        (Event.DELETED, second, False),
    ]


async def _listed(client: Client) -> dict[int, Dispatch]:
    return {d.id: d async for page in client.list(MICROGRID) for d in page}


# --- fan-out ----------------------------------------------------------------------------


@pytest.mark.parametrize("receivers", [1, 10, 1000])
async def test_every_receiver_gets_every_event_in_order(
    transport: TransportName, receivers: int
) -> None:
    """Each of 1, 10 and 1,000 receivers gets every event another client makes, in order."""
    async with _served(transport) as (service, consumer, producer, tasks):
        collectors = [_Collector(consumer.stream(MICROGRID)) for _ in range(receivers)]
        for collector in collectors:
            tasks.start_soon(collector.run)
        await _subscribed(service)
        expected = await _make_changes(producer)
        # One more event after the others: a receiver that got anything extra, or
        # lost one, shows it in the position of this last one.
        last = await producer.create(MICROGRID, "LAST", _later(4), None, TargetIds(9))
        expected.append((Event.CREATED, last, False))
        await _until(
            lambda: all(len(c.items) >= len(expected) for c in collectors),
            "every receiver has every event",
        )
        for collector in collectors:
            assert [_seen(e) for e in collector.events] == expected
            assert collector.receiver.dropped == 0
            assert collector.receiver.connected
        # One upstream call for all of them.
        assert service.subscriber_count(MICROGRID) == 1
        for collector in collectors:
            await collector.receiver.aclose()
        await _until(lambda: all(c.done.is_set() for c in collectors), "receivers ended")
        # The last receiver out ends the call.
        await _subscribed(service, 0)
    for collector in collectors:
        assert collector.error is None
        assert collector.receiver.closed


async def test_slow_receiver_drops_oldest_while_fast_one_gets_all(
    transport: TransportName, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver that does not read keeps its newest events and counts the dropped ones."""
    caplog.set_level(logging.WARNING, logger="dispatch_client")
    async with _served(transport) as (service, consumer, producer, tasks):
        slow = consumer.stream(MICROGRID, buffer_size=2)
        fast = _Collector(consumer.stream(MICROGRID, buffer_size=2))
        tasks.start_soon(fast.run)
        await _subscribed(service)
        created = []
        for n in range(5):
            created.append(await producer.create(MICROGRID, f"T{n}", _later(), None, TargetIds(n)))
            # The fast receiver keeps up: it reads each event before the next one.
            await _until(lambda: len(fast.items) == len(created), "the fast one has read")
        assert [_seen(e) for e in fast.events] == [(Event.CREATED, d, False) for d in created]
        assert fast.receiver.dropped == 0
        # Both buffers were filled in the same fan-out, so the slow one is complete.
        assert slow.dropped == 3
        with anyio.fail_after(_TIMEOUT):
            kept = [await slow.receive(), await slow.receive()]
        assert [_seen(e) for e in kept] == [(Event.CREATED, d, False) for d in created[3:]]
        await slow.aclose()
        await fast.receiver.aclose()
    too_slow = [r for r in caplog.records if "too slow" in r.getMessage()]
    assert len(too_slow) == 1  # one warning for the whole burst
    assert too_slow[0].levelno == logging.WARNING


async def test_each_microgrid_has_its_own_call(transport: TransportName) -> None:
    """Receivers of two microgrids share a connection but get only their own events."""
    async with _served(transport) as (service, consumer, producer, tasks):
        ones = _Collector(consumer.stream(1))
        twos = [_Collector(consumer.stream(2)) for _ in range(2)]
        for collector in (ones, *twos):
            tasks.start_soon(collector.run)
        await _until(
            lambda: service.subscriber_count(1) == 1 and service.subscriber_count(2) == 1,
            "one call per microgrid",
        )
        a = await producer.create(1, "A", _later(), None, TargetIds(1))
        b = await producer.create(2, "B", _later(), None, TargetIds(1))
        c = await producer.create(1, "C", _later(), None, TargetIds(1))
        await _until(
            lambda: len(ones.items) == 2 and all(len(t.items) == 1 for t in twos),
            "the events arrive",
        )
        assert [_seen(e) for e in ones.events] == [
            (Event.CREATED, a, False),
            (Event.CREATED, c, False),
        ]
        for collector in twos:
            assert [_seen(e) for e in collector.events] == [(Event.CREATED, b, False)]
        # Closing microgrid 2's receivers ends its call only.
        for collector in twos:
            await collector.receiver.aclose()
        await _until(lambda: service.subscriber_count(2) == 0, "microgrid 2's call ends")
        d = await producer.create(1, "D", _later(), None, TargetIds(1))
        await _until(lambda: len(ones.items) == 3, "microgrid 1 goes on")
        assert ones.events[-1] == DispatchEvent(event=Event.CREATED, dispatch=d)
        assert service.subscriber_count(1) == 1
        await ones.receiver.aclose()


async def test_a_resync_receiver_joins_a_running_stream(transport: TransportName) -> None:
    """A resync receiver joining an open call lists beside it, then follows it live."""
    async with _served(transport) as (service, consumer, producer, tasks):
        plain = _Collector(consumer.stream(MICROGRID))
        tasks.start_soon(plain.run)
        await _subscribed(service)
        first = await producer.create(MICROGRID, "FIRST", _later(), None, TargetIds(1))
        await _until(lambda: len(plain.items) == 1, "the plain receiver has the event")
        late = _Collector(consumer.stream(MICROGRID, resync=True, notices=True))
        tasks.start_soon(late.run)
        # Its listing ran over the connection the stream holds open.
        await _until(lambda: len(late.events) == 1, "the listing is delivered")
        second = await producer.create(MICROGRID, "SECOND", _later(), None, TargetIds(2))
        await _until(lambda: len(late.events) == 2, "the live event arrives")
        await _until(lambda: len(plain.items) == 2, "the live event arrives")
        assert [_seen(e) for e in late.events] == [
            (Event.CREATED, first, True),
            (Event.CREATED, second, False),
        ]
        assert [_seen(e) for e in plain.events] == [
            (Event.CREATED, first, False),
            (Event.CREATED, second, False),
        ]
        # Joining an open call, it is told so first; the call is the same one.
        assert late.notices == [StreamConnected(MICROGRID, 0)]
        assert late.items[0] == StreamConnected(MICROGRID, 0)
        assert service.subscriber_count(MICROGRID) == 1
        await late.receiver.aclose()
        await plain.receiver.aclose()


async def test_cancelling_one_consumer_leaves_its_receiver_and_the_others_working(
    transport: TransportName,
) -> None:
    """A consumer cancelled while it waits leaves its receiver usable and the others fed."""
    async with _served(transport) as (service, consumer, producer, tasks):
        other = _Collector(consumer.stream(MICROGRID))
        tasks.start_soon(other.run)
        receiver = consumer.stream(MICROGRID)
        await _subscribed(service)
        with anyio.move_on_after(0.05) as waited:
            await receiver.receive()  # nothing comes: cancelled while it waits
        assert waited.cancelled_caught
        created = await producer.create(MICROGRID, "X", _later(), None, TargetIds(1))
        with anyio.fail_after(_TIMEOUT):
            event = await receiver.receive()
        assert _seen(event) == (Event.CREATED, created, False)
        await _until(lambda: len(other.items) == 1, "the other receiver has it")
        assert [_seen(e) for e in other.events] == [(Event.CREATED, created, False)]
        assert receiver.connected
        assert service.subscriber_count(MICROGRID) == 1
        await receiver.aclose()
        await other.receiver.aclose()


async def test_a_resync_receiver_joining_amid_changes_converges(transport: TransportName) -> None:
    """A resync receiver that joins while changes pour in ends with the view `list()` has."""
    numbers = itertools.count(1)
    stop = anyio.Event()

    async def churn(producer: Client) -> None:
        """Create, update and delete dispatches until told to stop."""
        mine: list[int] = []
        while not stop.is_set():
            n = next(numbers)
            created = await producer.create(MICROGRID, f"C{n}", _later(), None, TargetIds(n))
            mine.append(created.id)
            if n % 3 == 0:
                await producer.update(
                    microgrid_id=MICROGRID, dispatch_id=mine[-2], new_fields={"active": False}
                )
            if n % 4 == 0:
                await producer.delete(microgrid_id=MICROGRID, dispatch_id=mine.pop(0))

    async with _served(transport) as (service, consumer, producer, tasks):
        plain = _Collector(consumer.stream(MICROGRID))
        tasks.start_soon(plain.run)
        await _subscribed(service)
        async with anyio.create_task_group() as producers:
            for _ in range(2):
                producers.start_soon(churn, producer)
            await _until(lambda: len(plain.items) >= 10, "the changes are under way")
            late = _Collector(consumer.stream(MICROGRID, resync=True))
            tasks.start_soon(late.run)
            await _until(lambda: len(late.items) >= 10, "the late one is under way")
            stop.set()
        expected = await _listed(producer)

        def view() -> dict[int, Dispatch]:
            current: dict[int, Dispatch] = {}
            for event in late.events:
                _apply(current, event)
            return current

        await _until(lambda: view() == expected, "the late receiver's view converges")
        assert service.subscriber_count(MICROGRID) == 1
        await late.receiver.aclose()
        await plain.receiver.aclose()
    assert late.error is None
    assert plain.error is None
    assert any(e.synthesized for e in late.events)  # it started from a listing


# --- a fatal status ---------------------------------------------------------------------


async def test_wrong_key_ends_every_receiver_with_unauthenticated(
    transport: TransportName,
) -> None:
    """A key the server refuses ends every receiver with Unauthenticated, without retrying."""
    with FakeDispatchService(keys=["the-right-key"]) as service:
        async with (
            serve(service) as url,
            _client(url, transport, key="a-wrong-key", stream_retry=_FAST_RETRY) as client,
            anyio.create_task_group() as tasks,
        ):
            collectors = [
                _Collector(client.stream(MICROGRID)),
                _Collector(client.stream(MICROGRID, resync=True)),
                _Collector(client.stream(MICROGRID, notices=True)),
            ]
            for collector in collectors:
                tasks.start_soon(collector.run)
            with anyio.fail_after(_TIMEOUT):
                for collector in collectors:
                    await collector.done.wait()
            for collector in collectors:
                assert isinstance(collector.error, Unauthenticated), collector.error
                assert "the-right-key" not in str(collector.error)
                assert collector.events == []
                assert collector.receiver.closed
                assert not collector.receiver.connected
                # Ended for good: receive() raises the same error again at once.
                with anyio.fail_after(_TIMEOUT), pytest.raises(Unauthenticated):
                    await collector.receiver.receive()
            # The server refused the call in its answer, so the stream never counted as
            # connected; no reconnect was tried, or a StreamReconnecting notice would say so.
            assert collectors[2].notices == []
            assert service.subscriber_count(MICROGRID) == 0


# --- closing ----------------------------------------------------------------------------


async def test_leaving_the_client_ends_open_receivers_within_a_second(
    transport: TransportName,
) -> None:
    """Leaving `async with Client` while the stream is open ends every receiver cleanly."""
    received: list[DispatchEvent] = []
    stopped: list[ReceiverStoppedError] = []
    ended = anyio.Event()

    async def receive_forever(receiver: DispatchReceiver[Any]) -> None:
        try:
            while True:
                received.append(await receiver.receive())
        except ReceiverStoppedError as exc:
            stopped.append(exc)
            ended.set()

    with FakeDispatchService() as service:
        async with serve(service) as url, _client(url, transport) as producer:
            async with anyio.create_task_group() as tasks:
                # Its deadline is set just before the client is left: the bound is on
                # the closing, not on the set-up.
                with anyio.CancelScope() as deadline:
                    async with _client(url, transport) as consumer:
                        collectors = [
                            _Collector(consumer.stream(MICROGRID)),
                            _Collector(consumer.stream(MICROGRID, resync=True, notices=True)),
                        ]
                        waiting = consumer.stream(MICROGRID)
                        for collector in collectors:
                            tasks.start_soon(collector.run)
                        tasks.start_soon(receive_forever, waiting)
                        await _subscribed(service)
                        created = await producer.create(
                            MICROGRID, "X", _later(), None, TargetIds(1)
                        )
                        # Every consumer has had the event and waits for the next one.
                        await _until(
                            lambda: (
                                all(len(c.events) == 1 for c in collectors) and len(received) == 1
                            ),
                            "each receiver has the event",
                        )
                        assert waiting.connected
                        deadline.deadline = anyio.current_time() + 1
                    for collector in collectors:
                        await collector.done.wait()
                    await ended.wait()
                if deadline.cancelled_caught:
                    tasks.cancel_scope.cancel()
            assert not deadline.cancelled_caught, "receivers ran on 1 s after the client closed"
            for collector in collectors:
                assert collector.error is None
                assert [_seen(e) for e in collector.events] == [(Event.CREATED, created, False)]
                assert collector.receiver.closed
                assert not collector.receiver.connected
            assert collectors[1].notices == [StreamConnected(MICROGRID, 0)]
            assert [_seen(e) for e in received] == [(Event.CREATED, created, False)]
            assert len(stopped) == 1
            assert waiting.closed
            # The server saw the call end.
            await _subscribed(service, 0)


# --- reconnecting -----------------------------------------------------------------------


async def test_the_server_ending_the_stream_reconnects(transport: TransportName) -> None:
    """A stream the server ends (OK) is reconnected; Unavailable answers are retried too."""
    service = FakeDispatchService()
    try:
        async with (
            serve(service) as url,
            _client(url, transport, stream_retry=_FAST_RETRY) as consumer,
            anyio.create_task_group() as tasks,
        ):
            watcher = _Collector(consumer.stream(MICROGRID, notices=True))
            tasks.start_soon(watcher.run)
            await _subscribed(service)
            # The service ends every stream normally and answers Unavailable from now on.
            service.close()
            await _until(lambda: len(watcher.notices) >= 3, "two reconnect attempts")
            await watcher.receiver.aclose()
    finally:
        service.close()
    assert watcher.error is None
    assert watcher.events == []
    # The closed service answers the next call UNAVAILABLE at once (so it never counts
    # as connected): that is retried as well, with the next, longer pause.
    first, second = watcher.notices[1:3]
    assert watcher.notices[0] == StreamConnected(MICROGRID, 0)
    assert isinstance(first, StreamReconnecting)
    assert (first.attempt, first.cause) == (1, None)  # ended by the server, no error
    assert _FAST_RETRY.initial / 2 <= first.delay <= _FAST_RETRY.initial
    assert isinstance(second, StreamReconnecting)
    assert second.attempt == 2
    assert _FAST_RETRY.initial <= second.delay <= 2 * _FAST_RETRY.initial
    assert isinstance(second.cause, Unavailable)
    assert "the fake dispatch service is closed" in str(second.cause)


async def test_without_stream_retry_a_stopped_server_ends_the_receivers(
    transport: TransportName,
) -> None:
    """With `stream_retry=None`, losing the server ends every receiver with ConnectError."""
    port = _free_port()
    with FakeDispatchService() as service:
        async with (
            _client(f"grpc://127.0.0.1:{port}?ssl=false", transport, stream_retry=None) as client,
            anyio.create_task_group() as tasks,
        ):
            async with serve(service, port=port):
                collectors = [
                    _Collector(client.stream(MICROGRID)),
                    _Collector(client.stream(MICROGRID, notices=True)),
                ]
                for collector in collectors:
                    tasks.start_soon(collector.run)
                await _subscribed(service)
            # The server has stopped mid-stream.
            with anyio.fail_after(_TIMEOUT):
                for collector in collectors:
                    await collector.done.wait()
    for collector in collectors:
        assert isinstance(collector.error, ConnectError), collector.error
        assert f"microgrid {MICROGRID}" in str(collector.error)
        assert collector.events == []
        assert collector.receiver.closed
    assert collectors[1].notices == [StreamConnected(MICROGRID, 0)]


# --- the fault test ---------------------------------------------------------------------


@pytest.mark.parametrize("resync", [True, False], ids=["resync", "no-resync"])
async def test_server_restart_over_the_same_database(
    transport: TransportName, tmp_path: Path, resync: bool
) -> None:
    """Changes made while the server is down reach a resync consumer; live ones reach all."""
    database = tmp_path / "dispatches.sqlite"
    port = _free_port()
    url = f"grpc://127.0.0.1:{port}?ssl=false"

    # Before the stream: a dispatch that only a resync receiver learns of (by listing).
    with FakeDispatchService(db_path=database) as service:
        async with serve(service) as setup_url, _client(setup_url, transport) as producer:
            existing = await producer.create(MICROGRID, "OLD", _later(), None, TargetIds(7))

    async with (
        _client(url, transport, stream_retry=_FAST_RETRY) as consumer,
        anyio.create_task_group() as tasks,
    ):
        expected: list[Seen] = []
        with FakeDispatchService(db_path=database) as first:
            async with serve(first, port=port) as served_url:
                assert served_url == url
                watcher = _Collector(consumer.stream(MICROGRID, resync=resync, notices=True))
                quiet = _Collector(consumer.stream(MICROGRID, resync=resync))
                for collector in (watcher, quiet):
                    tasks.start_soon(collector.run)
                await _subscribed(first)
                if resync:
                    expected.append((Event.CREATED, existing, True))
                    # The listing is done once delivered: later events are all live.
                    await _until(lambda: len(watcher.events) == 1, "the listing is delivered")

                # Live events before the fault.
                async with _client(url, transport) as producer:
                    one = await producer.create(MICROGRID, "ONE", _later(), None, TargetIds(1))
                    two = await producer.create(MICROGRID, "TWO", _later(2), None, TargetIds(2))
                    three = await producer.create(MICROGRID, "THREE", _later(3), None, TargetIds(3))
                    one_off = await producer.update(
                        microgrid_id=MICROGRID, dispatch_id=one.id, new_fields={"active": False}
                    )
                expected += [
                    (Event.CREATED, one, False),
                    (Event.CREATED, two, False),
                    (Event.CREATED, three, False),
                    (Event.UPDATED, one_off, False),
                ]
                await _until(
                    lambda: len(watcher.events) == len(quiet.events) == len(expected),
                    "the live events arrive",
                )
            # The fault: the server stopped mid-stream (its block ended), and its
            # service closes with the `with` block.
        await _until(
            lambda: any(isinstance(n, StreamReconnecting) for n in watcher.notices),
            "the consumer notices",
        )

        # While it is down, another server over the same database takes changes.
        other_port = _free_port()
        while other_port == port:
            other_port = _free_port()
        with FakeDispatchService(db_path=database) as other:
            async with (
                serve(other, port=other_port) as other_url,
                _client(other_url, transport) as producer,
            ):
                four = await producer.create(MICROGRID, "FOUR", _later(4), None, TargetIds(4))
                two_moved = await producer.update(
                    microgrid_id=MICROGRID,
                    dispatch_id=two.id,
                    new_fields={"start_time": _later(5)},
                )
                await producer.delete(microgrid_id=MICROGRID, dispatch_id=three.id)
        # Down long enough for attempts against the closed port to fail too.
        await _until(
            lambda: sum(isinstance(n, StreamReconnecting) for n in watcher.notices) >= 3,
            "three reconnect attempts",
        )
        assert not watcher.receiver.connected
        assert not quiet.receiver.connected
        if resync:
            # The differences, synthesized: deletions, updates, creations.
            expected += [
                (Event.DELETED, three, True),
                (Event.UPDATED, two_moved, True),
                (Event.CREATED, four, True),
            ]

        # The server comes back on its port, over the same database.
        with FakeDispatchService(db_path=database) as second:
            async with serve(second, port=port) as served_again:
                assert served_again == url
                await _subscribed(second)
                await _until(
                    lambda: len(watcher.events) == len(quiet.events) == len(expected),
                    "the catch-up arrives",
                )

                # Live events after the gap.
                async with _client(url, transport) as producer:
                    five = await producer.create(MICROGRID, "FIVE", _later(6), None, TargetIds(5))
                    four_on = await producer.update(
                        microgrid_id=MICROGRID,
                        dispatch_id=four.id,
                        new_fields={"payload": {"a": 1}},
                    )
                    await producer.delete(microgrid_id=MICROGRID, dispatch_id=one.id)
                    final = await _listed(producer)
                expected += [
                    (Event.CREATED, five, False),
                    (Event.UPDATED, four_on, False),
                    (Event.DELETED, one_off, False),
                ]
                await _until(
                    lambda: len(watcher.events) == len(quiet.events) == len(expected),
                    "the last events arrive",
                )
                for collector in (watcher, quiet):
                    assert collector.receiver.connected
                    await collector.receiver.aclose()

    for collector in (watcher, quiet):
        assert collector.error is None
        assert [_seen(e) for e in collector.events] == expected
        assert collector.receiver.dropped == 0
    view: dict[int, Dispatch] = {}
    for event in watcher.events:
        _apply(view, event)
    if resync:
        assert view == final
        assert set(final) == {existing.id, two.id, four.id, five.id}
    else:
        # The gap's changes never reached it: three is still there, four is known
        # only from its later update, two keeps its old start.
        assert view == {two.id: two, three.id: three, four.id: four_on, five.id: five}

    # Notices: connected; one "reconnecting" per attempt, counted 1, 2, ..., each pause
    # as the policy says (doubling from `initial` up to `maximum`, equal jitter);
    # connected again, with the number of attempts. Every cause is a lost or refused
    # connection.
    notices = watcher.notices
    assert notices[0] == StreamConnected(MICROGRID, 0)
    reconnecting = [n for n in notices[1:-1] if isinstance(n, StreamReconnecting)]
    assert len(reconnecting) == len(notices) - 2, notices
    assert len(reconnecting) >= 3, notices  # how many more depends on the machine's pace
    assert [n.attempt for n in reconnecting] == list(range(1, len(reconnecting) + 1))
    for notice in reconnecting:
        assert notice.microgrid_id == MICROGRID
        pause = min(_FAST_RETRY.initial * 2 ** (notice.attempt - 1), _FAST_RETRY.maximum)
        assert pause / 2 <= notice.delay <= pause, notice
        assert isinstance(notice.cause, ConnectError), notice
        assert f"microgrid {MICROGRID}" in str(notice.cause)
    assert notices[-1] == StreamConnected(MICROGRID, len(reconnecting))
    assert quiet.notices == []


async def test_resync_converges_when_the_server_dies_in_a_burst(
    transport: TransportName, tmp_path: Path
) -> None:
    """Events lost while the server dies amid a burst of changes are made up after it returns."""
    database = tmp_path / "dispatches.sqlite"
    port = _free_port()
    url = f"grpc://127.0.0.1:{port}?ssl=false"
    made: list[Dispatch] = []
    numbers = itertools.count(1)
    failures: list[GrpcError] = []

    async def burst(producer: Client) -> None:
        """Create dispatches one after another until the server is gone."""
        try:
            while True:
                n = next(numbers)
                made.append(await producer.create(MICROGRID, f"B{n}", _later(), None, TargetIds(n)))
        except GrpcError as exc:
            failures.append(exc)

    async with (
        _client(url, transport, stream_retry=_FAST_RETRY) as consumer,
        _client(url, transport) as producer,
        anyio.create_task_group() as tasks,
    ):
        with FakeDispatchService(db_path=database) as first:
            async with serve(first, port=port):
                watcher = _Collector(consumer.stream(MICROGRID, resync=True))
                tasks.start_soon(watcher.run)
                await _subscribed(first)
                # Several at once, so the server commits faster than the stream sends.
                for _ in range(4):
                    tasks.start_soon(burst, producer)
                await _until(lambda: len(watcher.events) >= 10, "the burst is under way")
            # The server stopped while the burst went on: events it committed but had
            # not sent yet are lost to the stream (usually a few), and a create may have
            # been committed without its answer reaching the producer.
        await _until(lambda: len(failures) == 4, "the burst ends")

        with FakeDispatchService(db_path=database) as second:
            async with serve(second, port=port):
                await _subscribed(second)
                expected = await _listed(producer)
                # Every dispatch the burst made (and maybe one whose answer was lost).
                assert set(expected) >= {d.id for d in made}

                def view() -> dict[int, Dispatch]:
                    current: dict[int, Dispatch] = {}
                    for event in watcher.events:
                        _apply(current, event)
                    return current

                await _until(lambda: view() == expected, "the consumer's view converges")
                await watcher.receiver.aclose()
    assert watcher.error is None
    # Each dispatch was delivered once, live or synthesized: nothing twice.
    assert sorted(e.dispatch.id for e in watcher.events) == sorted(expected)
    assert all(e.event is Event.CREATED for e in watcher.events)
    assert all(isinstance(f, TransportError | Unavailable) for f in failures), failures
