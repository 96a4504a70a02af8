"""Client.stream() over MemoryTransport: fan-out, slow receivers, reconnects, resync, closing.

The server is a `FakeDispatchService` behind a small wrapper (`Server`) that counts
the calls, can play a script of stream calls (messages, failures, a call held open)
before it hands streams to the service, can refuse streams while "down", and can cut
the service's open streams, so each test says exactly what the stream call does.
"""

from __future__ import annotations

import enum
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import anyio
import attrs
import pytest

from dispatch_client import (
    Client,
    ConnectError,
    DeadlineExceeded,
    Dispatch,
    DispatchEvent,
    DispatchReceiver,
    Event,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ProtocolError,
    ReceiverStoppedError,
    RetryPolicy,
    RpcError,
    StreamConnected,
    StreamNotice,
    StreamReconnecting,
    TargetIds,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    _stream,
)
from dispatch_client._codec._bridge import decode_stream_request, encode_stream_response
from dispatch_client._demo import example_dispatch
from dispatch_client._methods import LIST, STREAM
from dispatch_client.testing import FakeDispatchService
from transports import MemoryTransport

pytestmark = pytest.mark.anyio

URL = "grpc://dispatch.test:50051?ssl=false"
MICROGRID = 7
FAST = RetryPolicy(attempts=None, initial=0.001, maximum=0.01, jitter=False)
"""Reconnect at once, for tests that do not look at the pauses."""
Meta: TypeAlias = tuple[tuple[str, str | bytes], ...]
Item: TypeAlias = DispatchEvent | StreamNotice
Fatal: TypeAlias = (
    type[Unauthenticated]
    | type[PermissionDenied]
    | type[InvalidArgument]
    | type[Unimplemented]
    | type[NotFound]
)


class Hold(enum.Enum):
    """A step of a scripted stream: keep the call open until it is cancelled."""

    HOLD = "hold"


HOLD = Hold.HOLD
Action: TypeAlias = bytes | BaseException | Hold | float
"""In a scripted stream: send a message, fail, hold the call open, or wait (seconds)."""
Step: TypeAlias = BaseException | Sequence[Action]
"""A scripted stream call: raise at once, or play these actions (then end normally)."""


class _Live:
    """One relayed service stream the test can cut."""

    def __init__(self) -> None:
        self.cut = False
        self.scope: anyio.CancelScope | None = None

    def cancel(self) -> None:
        self.cut = True
        if self.scope is not None:
            self.scope.cancel()


@attrs.define
class Server:
    """The fake service behind a wrapper that counts calls and scripts stream calls."""

    service: FakeDispatchService
    script: list[Step] = attrs.field(factory=list)
    """The next stream calls, in order; once empty, streams come from the service."""
    down: bool = False
    """While True, every stream call fails with `Unavailable` (unary calls still work)."""
    list_failures: list[BaseException] = attrs.field(factory=list)
    """Errors the next listing calls raise, in order (one each)."""
    methods: list[str] = attrs.field(factory=list)
    streams: list[int] = attrs.field(factory=list)
    """The microgrid of every stream call, in order."""
    _live: list[_Live] = attrs.field(factory=list)

    def __call__(self, method: str, request: bytes, metadata: Meta) -> bytes | AsyncIterator[bytes]:
        self.methods.append(method)
        if method != STREAM:
            if method == LIST and self.list_failures:
                raise self.list_failures.pop(0)
            return self.service(method, request, metadata)
        self.streams.append(decode_stream_request(request))
        if self.down:
            raise Unavailable("the server is down (test)")
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, BaseException):
                raise step
            return _scripted(step)
        inner = self.service(method, request, metadata)
        assert not isinstance(inner, bytes)
        # Registered now, not when the generator first runs: a cut before the first read
        # (while the client lists for a resync, say) must reach this stream too.
        live = _Live()
        self._live.append(live)
        return self._relay(inner, live)

    def cut(self) -> None:
        """Fail every open service stream with `Unavailable`, as a lost server would."""
        for live in self._live:
            live.cancel()

    async def _relay(self, inner: AsyncIterator[bytes], live: _Live) -> AsyncIterator[bytes]:
        try:
            while not live.cut:
                # The scope is entered anew for each read (a scope is entered once), and
                # the yield stays outside it (a generator must not yield inside a scope).
                with anyio.CancelScope() as live.scope:
                    message = await anext(inner, None)
                live.scope = None
                if live.cut:
                    break
                if message is None:
                    return
                yield message
            raise Unavailable("the stream was cut (test)")
        finally:
            self._live.remove(live)
            await inner.aclose()  # type: ignore[attr-defined]


async def _scripted(steps: Sequence[Action]) -> AsyncIterator[bytes]:
    for step in steps:
        if step is HOLD:
            await anyio.sleep_forever()
        elif isinstance(step, BaseException):
            raise step
        elif isinstance(step, float):
            await anyio.sleep(step)
        else:
            assert isinstance(step, bytes)
            yield step


def _client(server: Server, **options: Any) -> Client:
    options.setdefault("stream_retry", FAST)
    return Client(server_url=URL, key="test-key", transport=MemoryTransport(server), **options)


def _future() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


async def _create(client: Client, microgrid_id: int = MICROGRID) -> Dispatch:
    return await client.create(
        microgrid_id=microgrid_id,
        type="TEST",
        start_time=_future(),
        duration=timedelta(minutes=5),
        target=TargetIds(1),
    )


async def _update(client: Client, dispatch: Dispatch, minutes: int = 10) -> Dispatch:
    return await client.update(
        microgrid_id=MICROGRID,
        dispatch_id=dispatch.id,
        new_fields={"duration": timedelta(minutes=minutes)},
    )


async def _delete(client: Client, dispatch: Dispatch) -> None:
    await client.delete(microgrid_id=MICROGRID, dispatch_id=dispatch.id)


def _message(event: Event, number: int) -> bytes:
    """An encoded stream message about dispatch `number` (the demo dispatch)."""
    return encode_stream_response(DispatchEvent(event=event, dispatch=_demo(number)))


def _demo(number: int) -> Dispatch:
    return attrs.evolve(example_dispatch(), id=number)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait until `condition()` holds; a guard fails the test if it never does."""
    with anyio.fail_after(2):
        # Polled: the service's subscriber count has no event to wait on.
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.001)


async def _subscribed(server: Server, microgrid_id: int = MICROGRID, count: int = 1) -> None:
    await _until(lambda: server.service.subscriber_count(microgrid_id) == count)


async def _take_down(server: Server, receiver: DispatchReceiver[Any]) -> None:
    """Cut the open stream calls and refuse new ones until `server.down` is reset."""
    server.down = True
    server.cut()
    await _until(lambda: not receiver.connected)


async def _drain(receiver: DispatchReceiver[Any], into: list[Any]) -> None:
    """Iterate the receiver to its end, keeping what it delivers in `into`."""
    async for item in receiver:
        into.append(item)


async def _take(receiver: DispatchReceiver[Any], count: int) -> list[Any]:
    with anyio.fail_after(2):
        return [await receiver.receive() for _ in range(count)]


def _events(items: Sequence[Item]) -> list[tuple[Event, int, bool]]:
    """Events as (kind, dispatch id, synthesized); notices left out."""
    return [
        (item.event, item.dispatch.id, item.synthesized)
        for item in items
        if isinstance(item, DispatchEvent)
    ]


def _apply(view: dict[int, Dispatch], event: DispatchEvent) -> None:
    """Apply an event to a consumer's view, checking that it tells something new."""
    known = view.get(event.dispatch.id)
    if event.event is Event.CREATED:
        assert known is None, f"CREATED of a known dispatch: {event}"
        view[event.dispatch.id] = event.dispatch
    elif event.event is Event.UPDATED:
        assert known is not None, f"UPDATED of an unknown dispatch: {event}"
        assert known != event.dispatch, f"UPDATED that changes nothing: {event}"
        view[event.dispatch.id] = event.dispatch
    else:
        assert event.event is Event.DELETED
        assert known is not None, f"DELETED of an unknown dispatch: {event}"
        del view[event.dispatch.id]


async def _converge(
    receiver: DispatchReceiver[Any], view: dict[int, Dispatch], service: FakeDispatchService
) -> list[DispatchEvent]:
    """Apply the receiver's events to `view` until it equals the server's state."""
    wanted = {dispatch.id: dispatch for dispatch in service.dispatches(MICROGRID)}
    seen: list[DispatchEvent] = []
    with anyio.fail_after(2):
        while view != wanted:
            item = await receiver.receive()
            if isinstance(item, DispatchEvent):
                _apply(view, item)
                seen.append(item)
    return seen


@pytest.fixture
def server() -> Any:
    """A fake service (closed after the test) behind a counting, scriptable wrapper."""
    with FakeDispatchService() as service:
        yield Server(service)


# --- fan-out -------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 10, 1000])
async def test_every_receiver_gets_every_event_in_order(server: Server, count: int) -> None:
    """1, 10 and 1,000 receivers of a microgrid all get its events in order, over one call."""
    async with _client(server) as client:
        receivers = [client.stream(MICROGRID) for _ in range(count)]
        await _subscribed(server)
        created = await _create(client)
        updated = await _update(client, created)
        await _delete(client, updated)
        expected = [
            DispatchEvent(event=Event.CREATED, dispatch=created),
            DispatchEvent(event=Event.UPDATED, dispatch=updated),
            DispatchEvent(event=Event.DELETED, dispatch=updated),
        ]
        for receiver in receivers:
            assert await _take(receiver, 3) == expected
            assert receiver.dropped == 0
    assert server.streams == [MICROGRID]


async def test_one_call_per_client_and_microgrid_until_the_last_receiver_closes(
    server: Server,
) -> None:
    """Receivers share their microgrid's call; it ends with the last one; a new one follows."""
    async with _client(server) as client, _client(server) as other_client:
        first, second = client.stream(MICROGRID), client.stream(MICROGRID)
        elsewhere = client.stream(MICROGRID + 1)
        await _subscribed(server, MICROGRID + 1)
        await _subscribed(server)
        assert sorted(server.streams) == [MICROGRID, MICROGRID + 1]

        # Another client has its own call.
        other = other_client.stream(MICROGRID)
        await _subscribed(server, count=2)
        assert sorted(server.streams) == [MICROGRID, MICROGRID, MICROGRID + 1]
        await other.aclose()
        await _subscribed(server, count=1)

        await first.aclose()
        created = await _create(client)
        assert await _take(second, 1) == [DispatchEvent(event=Event.CREATED, dispatch=created)]
        assert server.service.subscriber_count(MICROGRID) == 1

        await second.aclose()
        await _subscribed(server, count=0)
        assert server.service.subscriber_count(MICROGRID + 1) == 1
        assert not elsewhere.closed

        again = client.stream(MICROGRID)
        await _subscribed(server)
        assert sorted(server.streams) == [MICROGRID] * 3 + [MICROGRID + 1]
        created = await _create(client)
        assert await _take(again, 1) == [DispatchEvent(event=Event.CREATED, dispatch=created)]


# --- slow receivers ------------------------------------------------------------------


def _slow_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        record.name == "dispatch_client"
        and record.levelno == logging.WARNING
        and "too slow" in record.getMessage()
        for record in caplog.records
    )


async def test_a_slow_receiver_drops_the_oldest_events(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A full buffer drops its oldest events, counted and warned once per burst; others get all."""
    async with _client(server) as client:
        slow = client.stream(MICROGRID, buffer_size=2)
        fast = client.stream(MICROGRID)
        await _subscribed(server)
        created = [await _create(client) for _ in range(5)]
        assert _events(await _take(fast, 5)) == [(Event.CREATED, d.id, False) for d in created]
        assert slow.dropped == 3
        assert _slow_warnings(caplog) == 1
        assert _events(await _take(slow, 2)) == [(Event.CREATED, d.id, False) for d in created[3:]]

        # Caught up: the next burst is warned about again.
        more = [await _create(client) for _ in range(3)]
        assert _events(await _take(fast, 3)) == [(Event.CREATED, d.id, False) for d in more]
        assert slow.dropped == 4
        assert _slow_warnings(caplog) == 2
        assert _events(await _take(slow, 2)) == [(Event.CREATED, d.id, False) for d in more[1:]]
        assert fast.dropped == 0


async def test_dropped_counts_events_not_notices(server: Server) -> None:
    """A full buffer of a notices receiver drops its oldest items; `dropped` counts the events."""
    async with _client(server) as client:
        receiver = client.stream(MICROGRID, notices=True, buffer_size=2)
        fast = client.stream(MICROGRID)
        await _subscribed(server)
        created = [await _create(client) for _ in range(3)]
        assert len(await _take(fast, 3)) == 3
        # StreamConnected and the first event made way for the last two events.
        assert receiver.dropped == 1
        assert _events(await _take(receiver, 2)) == [
            (Event.CREATED, d.id, False) for d in created[1:]
        ]


# --- reconnecting --------------------------------------------------------------------


def _reconnecting(item: Item) -> tuple[int, float, type[BaseException] | None]:
    assert isinstance(item, StreamReconnecting), item
    assert item.microgrid_id == MICROGRID
    return item.attempt, item.delay, None if item.cause is None else type(item.cause)


def _connected(item: Item) -> int:
    assert isinstance(item, StreamConnected), item
    assert item.microgrid_id == MICROGRID
    return item.reconnects


PAUSES = RetryPolicy(attempts=None, initial=0.01, maximum=1.0, multiplier=2, jitter=False)
"""Pauses of 0.01, 0.02, 0.04, 0.08 s: short, and exact in binary floating point."""


async def test_reconnects_after_every_kind_of_failure_with_growing_pauses(
    server: Server,
) -> None:
    """Unavailable, a normal end, Internal and a transport error each lead to a reconnect."""
    server.script = [
        Unavailable("busy"),
        [],  # the server ends the stream normally
        [Internal("oops")],
        ConnectError("connection reset"),
    ]
    async with _client(server, stream_retry=PAUSES) as client:
        watcher = client.stream(MICROGRID, notices=True)
        plain = client.stream(MICROGRID)
        notices = await _take(watcher, 7)
        assert _reconnecting(notices[0]) == (1, 0.01, Unavailable)
        assert _connected(notices[1]) == 1
        assert _reconnecting(notices[2]) == (2, 0.02, None)
        assert _connected(notices[3]) == 2
        assert _reconnecting(notices[4]) == (3, 0.04, Internal)
        assert _reconnecting(notices[5]) == (4, 0.08, ConnectError)
        assert _connected(notices[6]) == 4
        for notice in (notices[0], notices[4], notices[5]):
            assert isinstance(notice, StreamReconnecting)
            assert f"microgrid {MICROGRID}" in str(notice.cause)
        assert watcher.connected
        await _subscribed(server)
        created = await _create(client)
        event = DispatchEvent(event=Event.CREATED, dispatch=created)
        assert await _take(watcher, 1) == [event]
        assert await _take(plain, 1) == [event]
    assert server.streams == [MICROGRID] * 5


async def test_the_pauses_start_over_after_a_good_connection(server: Server) -> None:
    """Once a message arrives, the next failure waits the first pause again."""
    server.script = [
        Unavailable("one"),
        Unavailable("two"),
        [_message(Event.CREATED, 1), Unavailable("three")],
        Unavailable("four"),
    ]
    async with _client(server, stream_retry=PAUSES) as client:
        receiver = client.stream(MICROGRID, notices=True)
        items = await _take(receiver, 7)
        assert _reconnecting(items[0]) == (1, 0.01, Unavailable)
        assert _reconnecting(items[1]) == (2, 0.02, Unavailable)
        assert _connected(items[2]) == 2
        assert items[3] == DispatchEvent(event=Event.CREATED, dispatch=_demo(1))
        assert _reconnecting(items[4]) == (1, 0.01, Unavailable)
        assert _reconnecting(items[5]) == (2, 0.02, Unavailable)
        assert _connected(items[6]) == 4


async def test_the_pauses_start_over_after_a_call_that_held(server: Server) -> None:
    """A call that stayed open for the longest pause counts as good, even without messages."""
    server.script = [
        Unavailable("one"),
        Unavailable("two"),
        [0.05],  # open for longer than the policy's maximum pause, then ended
        Unavailable("three"),
    ]
    policy = RetryPolicy(attempts=None, initial=0.01, maximum=0.02, jitter=False)
    async with _client(server, stream_retry=policy) as client:
        receiver = client.stream(MICROGRID, notices=True)
        items = await _take(receiver, 6)
        assert _reconnecting(items[0]) == (1, 0.01, Unavailable)
        assert _reconnecting(items[1]) == (2, 0.02, Unavailable)
        assert _connected(items[2]) == 2
        assert _reconnecting(items[3]) == (1, 0.01, None)
        assert _reconnecting(items[4]) == (2, 0.02, Unavailable)
        assert _connected(items[5]) == 4


@pytest.mark.parametrize(
    ("ending", "error"),
    [(Unavailable("gone"), Unavailable), (None, None)],
    ids=["failure", "normal-end"],
)
async def test_without_a_retry_policy_the_first_end_ends_the_receivers(
    server: Server, ending: BaseException | None, error: type[RpcError] | None
) -> None:
    """With stream_retry=None the receivers end with the call: raising its error, if any."""
    steps: list[Action] = [_message(Event.CREATED, 1)]
    if ending is not None:
        steps.append(ending)
    server.script = [steps]
    async with _client(server, stream_retry=None) as client:
        iterated = client.stream(MICROGRID)
        received = client.stream(MICROGRID)
        got: list[DispatchEvent] = []
        with anyio.fail_after(2):
            if error is None:
                got = [event async for event in iterated]
            else:
                with pytest.raises(error, match=f"microgrid {MICROGRID}"):
                    await _drain(iterated, got)
            assert got == [DispatchEvent(event=Event.CREATED, dispatch=_demo(1))]
            assert await received.receive() == got[0]
            with pytest.raises(error or ReceiverStoppedError):
                await received.receive()
        assert not received.connected
        assert received.closed
    assert server.streams == [MICROGRID]


async def test_a_finite_policy_gives_up_with_the_last_error(server: Server) -> None:
    """After its last attempt, a policy with a limit ends the receivers with the last error."""
    server.script = [Unavailable("first"), [Internal("second")], Unavailable("third")]
    policy = RetryPolicy(attempts=3, initial=0.001, maximum=0.001, jitter=False)
    async with _client(server, stream_retry=policy) as client:
        receiver = client.stream(MICROGRID, notices=True)
        items: list[Item] = []
        with anyio.fail_after(2), pytest.raises(Unavailable, match="third") as caught:
            await _drain(receiver, items)
        assert f"microgrid {MICROGRID}" in str(caught.value)
        assert [_reconnecting(item)[:2] for item in items if not _is_connected(item)] == [
            (1, 0.001),
            (2, 0.001),
        ]
    assert server.streams == [MICROGRID] * 3


def _is_connected(item: Item) -> bool:
    return isinstance(item, StreamConnected)


async def test_a_notices_receiver_joining_a_connected_stream_hears_so_first(
    server: Server,
) -> None:
    """A receiver with notices added to a connected stream gets StreamConnected before events."""
    server.script = [Unavailable("once")]
    async with _client(server) as client:
        plain = client.stream(MICROGRID)
        await _subscribed(server)
        late = client.stream(MICROGRID, notices=True)
        created = await _create(client)
        event = DispatchEvent(event=Event.CREATED, dispatch=created)
        assert await _take(plain, 1) == [event]
        assert await _take(late, 2) == [StreamConnected(MICROGRID, 1), event]


async def test_a_resync_notices_receiver_joining_a_mirrored_stream_hears_so_first(
    server: Server,
) -> None:
    """A resync receiver with notices joining a stream that has its mirror gets the notice first."""
    async with _client(server) as client:
        first = client.stream(MICROGRID, resync=True)
        await _subscribed(server)
        # The resync's listing comes once the server answered the call: created before
        # it, the dispatch would be in the listing and arrive synthesized, not live.
        await _until(lambda: LIST in server.methods)
        created = await _create(client)
        assert await _take(first, 1) == [DispatchEvent(event=Event.CREATED, dispatch=created)]

        late = client.stream(MICROGRID, resync=True, notices=True)
        assert await _take(late, 2) == [
            StreamConnected(MICROGRID, 0),
            DispatchEvent(event=Event.CREATED, dispatch=created, synthesized=True),
        ]


# --- fatal statuses ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fatal", [Unauthenticated, PermissionDenied, InvalidArgument, Unimplemented, NotFound]
)
async def test_a_fatal_status_ends_every_receiver_with_it(server: Server, fatal: Fatal) -> None:
    """A status retrying cannot fix ends every receiver with that error, after its events."""
    server.script = [
        [_message(Event.CREATED, 1), _message(Event.UPDATED, 1), fatal("no way")],
        [_message(Event.CREATED, 2)],  # never reached: no reconnect
    ]
    expected = [
        DispatchEvent(event=Event.CREATED, dispatch=_demo(1)),
        DispatchEvent(event=Event.UPDATED, dispatch=_demo(1)),
    ]
    async with _client(server) as client:
        iterated = [client.stream(MICROGRID) for _ in range(3)]
        received = client.stream(MICROGRID, notices=True)
        for receiver in iterated:
            got: list[DispatchEvent] = []
            with anyio.fail_after(2), pytest.raises(fatal) as caught:
                await _drain(receiver, got)
            assert got == expected
            assert type(caught.value) is fatal
            assert f"microgrid {MICROGRID}" in str(caught.value)
            assert "no way" in str(caught.value)
        items = await _take(received, 3)
        assert _connected(items[0]) == 0
        assert items[1:] == expected
        with pytest.raises(fatal, match=f"microgrid {MICROGRID}"):
            await received.receive()
        with pytest.raises(fatal):
            await received.receive()  # and again: the receiver stays ended
        await anyio.sleep(0.02)  # a reconnect, if one were made, would call by now
        assert server.streams == [MICROGRID]
        assert not received.connected


async def test_a_fatal_status_from_the_real_service(server: Server) -> None:
    """A key the service refuses ends the receivers with Unauthenticated, without retrying."""
    with FakeDispatchService(keys=["another-key"]) as strict:
        server.service = strict
        async with _client(server) as client:
            receiver = client.stream(MICROGRID)
            with (
                anyio.fail_after(2),
                pytest.raises(Unauthenticated, match=f"microgrid {MICROGRID}"),
            ):
                await receiver.receive()
        assert server.streams == [MICROGRID]


# --- deadlines and bad messages ------------------------------------------------------


async def test_a_stream_deadline_renews_the_call_at_once(server: Server) -> None:
    """With stream_timeout, a passed deadline reconnects without a pause, receivers kept."""
    server.script = [
        [_message(Event.CREATED, 1), HOLD],
        [_message(Event.CREATED, 2), HOLD],
        [_message(Event.CREATED, 3), HOLD],
    ]
    async with _client(server, stream_timeout=timedelta(seconds=0.05)) as client:
        watcher = client.stream(MICROGRID, notices=True)
        plain = client.stream(MICROGRID)
        items = await _take(watcher, 8)
        assert _connected(items[0]) == 0
        assert _reconnecting(items[2]) == (1, 0.0, DeadlineExceeded)
        assert _connected(items[3]) == 1
        assert _reconnecting(items[5]) == (1, 0.0, DeadlineExceeded)
        assert _connected(items[6]) == 2
        events = [(Event.CREATED, number, False) for number in (1, 2, 3)]
        assert _events([items[1], items[4], items[7]]) == events
        assert _events(await _take(plain, 3)) == events


async def test_a_deadline_renews_the_call_without_a_retry_policy(server: Server) -> None:
    """The deadline the user asked for is renewed even with stream_retry=None (not a failure)."""
    server.script = [[_message(Event.CREATED, 1), HOLD], [_message(Event.CREATED, 2), HOLD]]
    async with _client(server, stream_retry=None, stream_timeout=timedelta(seconds=0.05)) as client:
        receiver = client.stream(MICROGRID, notices=True)
        items = await _take(receiver, 5)
        assert _events(items) == [(Event.CREATED, 1, False), (Event.CREATED, 2, False)]
        assert _reconnecting(items[2]) == (1, 0.0, DeadlineExceeded)
        assert _connected(items[3]) == 1


async def test_a_quick_deadline_error_from_the_server_is_a_failure(server: Server) -> None:
    """DeadlineExceeded long before the stream_timeout passes is a failure: it waits a pause."""
    server.script = [[DeadlineExceeded("the server's own limit")]]
    async with _client(server, stream_retry=PAUSES, stream_timeout=timedelta(seconds=30)) as client:
        receiver = client.stream(MICROGRID, notices=True)
        items = await _take(receiver, 3)
        assert _connected(items[0]) == 0
        assert _reconnecting(items[1]) == (1, 0.01, DeadlineExceeded)
        assert _connected(items[2]) == 1


async def test_an_undecodable_message_reconnects_with_a_protocol_error(server: Server) -> None:
    """A message that does not decode ends the call with a ProtocolError cause; then it resumes."""
    server.script = [[_message(Event.CREATED, 1), b"\xff\xff\xff", _message(Event.CREATED, 2)]]
    async with _client(server) as client:
        receiver = client.stream(MICROGRID, notices=True)
        items = await _take(receiver, 4)
        assert _connected(items[0]) == 0
        assert _events(items[1:2]) == [(Event.CREATED, 1, False)]
        assert _reconnecting(items[2]) == (1, 0.001, ProtocolError)
        assert isinstance(items[2], StreamReconnecting)
        assert "invalid stream message" in str(items[2].cause)
        assert f"microgrid {MICROGRID}" in str(items[2].cause)
        assert _connected(items[3]) == 1
        await _subscribed(server)
        created = await _create(client)
        assert await _take(receiver, 1) == [DispatchEvent(event=Event.CREATED, dispatch=created)]


# --- resync --------------------------------------------------------------------------


async def test_resync_first_delivers_the_current_dispatches(server: Server) -> None:
    """A resync receiver starts with every current dispatch as synthesized CREATED events."""
    async with _client(server) as client:
        existing = [await _create(client) for _ in range(3)]
        receiver = client.stream(MICROGRID, resync=True)
        assert receiver.resync
        first = await _take(receiver, 3)
        assert first == [
            DispatchEvent(event=Event.CREATED, dispatch=d, synthesized=True) for d in existing
        ]
        await _subscribed(server)
        created = await _create(client)
        assert await _take(receiver, 1) == [DispatchEvent(event=Event.CREATED, dispatch=created)]
    assert server.streams == [MICROGRID]


async def test_resync_fills_a_gap_with_the_differences(server: Server) -> None:
    """After a reconnect, a resync receiver's view is brought to the server's by diffs."""
    async with _client(server) as client:
        kept, removed, _ = [await _create(client) for _ in range(3)]
        watcher = client.stream(MICROGRID, resync=True, notices=True)
        plain = client.stream(MICROGRID)
        view: dict[int, Dispatch] = {}
        items = await _take(watcher, 4)
        assert _connected(items[0]) == 0
        for item in items[1:]:
            assert isinstance(item, DispatchEvent)
            assert item.synthesized
            _apply(view, item)
        await _subscribed(server)

        await _take_down(server, watcher)
        changed = await _update(client, kept)
        await _delete(client, removed)
        added = await _create(client)
        passing = await _create(client)
        await _delete(client, passing)
        server.down = False

        # Reconnecting notices (as many as the outage took), connected, then the diff.
        with anyio.fail_after(2):
            item = await watcher.receive()
            while isinstance(item, StreamReconnecting):
                assert isinstance(item.cause, Unavailable)
                item = await watcher.receive()
        assert _connected(item) > 0
        seen = await _converge(watcher, view, server.service)
        assert seen == [
            DispatchEvent(event=Event.DELETED, dispatch=removed, synthesized=True),
            DispatchEvent(event=Event.UPDATED, dispatch=changed, synthesized=True),
            DispatchEvent(event=Event.CREATED, dispatch=added, synthesized=True),
        ]

        await _subscribed(server)
        live = await _create(client)
        event = DispatchEvent(event=Event.CREATED, dispatch=live)
        assert await _take(watcher, 1) == [event]
        assert await _take(plain, 1) == [event]  # the plain receiver lost the gap, kept going


async def test_a_catch_up_comes_after_the_notices_before_it(server: Server) -> None:
    """Notices queued before a reconnect's catch-up are delivered before its synthesized events."""
    async with _client(server) as client:
        kept, removed = [await _create(client) for _ in range(2)]
        watcher = client.stream(MICROGRID, resync=True, notices=True)
        plain = client.stream(MICROGRID)
        items: list[Item] = await _take(watcher, 3)
        assert _connected(items[0]) == 0
        assert _events(items[1:]) == [(Event.CREATED, d.id, True) for d in (kept, removed)]
        await _subscribed(server)

        await _take_down(server, watcher)
        changed = await _update(client, kept)
        await _delete(client, removed)
        server.down = False
        await _subscribed(server)
        live = await _create(client)
        # The plain receiver has the live event, so the resync has run: all is queued.
        assert await _take(plain, 1) == [DispatchEvent(event=Event.CREATED, dispatch=live)]

        with anyio.fail_after(2):
            while len(_events(items)) < 5:
                items.append(await watcher.receive())
        kinds = [type(item).__name__ for item in items]
        first_reconnecting = kinds.index("StreamReconnecting")
        last_connected = len(kinds) - 1 - kinds[::-1].index("StreamConnected")
        assert kinds[:3] == ["StreamConnected", "DispatchEvent", "DispatchEvent"]
        assert first_reconnecting == 3
        assert set(kinds[3:last_connected]) == {"StreamReconnecting"}
        assert kinds[last_connected + 1 :] == ["DispatchEvent"] * 3
        assert [(e, n, s) for e, n, s in _events(items)][2:4] == [
            (Event.DELETED, removed.id, True),
            (Event.UPDATED, changed.id, True),
        ]
        last = items[-1]
        assert isinstance(last, DispatchEvent)
        # The live dispatch may have made the listing: then the catch-up brought it.
        assert (last.event, last.dispatch) == (Event.CREATED, live)


async def test_resync_never_delivers_what_the_view_holds(server: Server) -> None:
    """Live events that repeat the listing, are older than it, or delete the unknown are skipped."""
    async with _client(server) as client:
        listed = await _create(client)
        stale = attrs.evolve(
            listed, duration=timedelta(minutes=1), update_time=listed.update_time - timedelta(1)
        )
        newer = attrs.evolve(
            listed, duration=timedelta(minutes=2), update_time=listed.update_time + timedelta(1)
        )
        other = attrs.evolve(listed, id=listed.id + 100)
        server.script = [
            [
                encode_stream_response(DispatchEvent(event=Event.CREATED, dispatch=listed)),
                encode_stream_response(DispatchEvent(event=Event.UPDATED, dispatch=listed)),
                encode_stream_response(DispatchEvent(event=Event.UPDATED, dispatch=stale)),
                encode_stream_response(DispatchEvent(event=Event.DELETED, dispatch=other)),
                encode_stream_response(DispatchEvent(event=Event.UPDATED, dispatch=newer)),
                encode_stream_response(DispatchEvent(event=Event.CREATED, dispatch=other)),
                HOLD,
            ]
        ]
        receiver = client.stream(MICROGRID, resync=True)
        plain = client.stream(MICROGRID)
        assert await _take(receiver, 3) == [
            DispatchEvent(event=Event.CREATED, dispatch=listed, synthesized=True),
            DispatchEvent(event=Event.UPDATED, dispatch=newer),
            DispatchEvent(event=Event.CREATED, dispatch=other),
        ]
        assert len(await _take(plain, 6)) == 6  # without resync, everything is delivered


async def test_a_resync_receiver_joins_a_running_stream(server: Server) -> None:
    """A resync receiver added to a running plain stream gets the listing, then live events."""
    async with _client(server) as client:
        plain = client.stream(MICROGRID)
        await _subscribed(server)
        existing = [await _create(client) for _ in range(2)]
        assert _events(await _take(plain, 2)) == [(Event.CREATED, d.id, False) for d in existing]

        late = client.stream(MICROGRID, resync=True)
        assert await _take(late, 2) == [
            DispatchEvent(event=Event.CREATED, dispatch=d, synthesized=True) for d in existing
        ]
        created = await _create(client)
        event = DispatchEvent(event=Event.CREATED, dispatch=created)
        assert await _take(late, 1) == [event]
        assert await _take(plain, 1) == [event]
    assert server.streams == [MICROGRID]


async def test_a_slow_resync_receiver_catches_up_instead_of_losing_state(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A resync receiver whose buffer overflows catches up from the mirror; its view stays right."""
    async with _client(server) as client:
        slow = client.stream(MICROGRID, resync=True, buffer_size=2)
        fast = client.stream(MICROGRID)
        await _subscribed(server)
        await _until(
            lambda: (
                server.methods.count(
                    "/frequenz.api.dispatch.v1.MicrogridDispatchService/ListMicrogridDispatches"
                )
                == 1
            )
        )
        created = [await _create(client) for _ in range(5)]
        first = await _update(client, created[0])
        second = await _update(client, created[1])
        await _delete(client, created[2])
        assert len(await _take(fast, 8)) == 8
        # Two overflows: the two buffered events and the one that did not fit, each time.
        assert slow.dropped == 6
        assert _slow_warnings(caplog) == 1
        view: dict[int, Dispatch] = {}
        seen = await _converge(slow, view, server.service)
        assert seen == [
            DispatchEvent(event=Event.CREATED, dispatch=d, synthesized=True)
            for d in [first, *created[1:]]
        ] + [
            DispatchEvent(event=Event.UPDATED, dispatch=second),
            DispatchEvent(event=Event.DELETED, dispatch=created[2]),
        ]
        assert fast.dropped == 0


async def test_a_failed_late_listing_reconnects_instead_of_starving_the_receiver(
    server: Server,
) -> None:
    """A failed listing for a late resync receiver ends the call; the reconnect lists again."""
    server.list_failures = [Internal("listing failed (test)")]
    async with _client(server, retry=None) as client:
        plain = client.stream(MICROGRID, notices=True)
        await _subscribed(server)
        existing = await _create(client)
        assert (await _take(plain, 2))[1:] == [
            DispatchEvent(event=Event.CREATED, dispatch=existing)
        ]
        late = client.stream(MICROGRID, resync=True)
        items = await _take(plain, 2)
        assert _reconnecting(items[0]) == (1, 0.001, Internal)
        assert isinstance(items[0], StreamReconnecting)
        assert "listing failed" in str(items[0].cause)
        assert _connected(items[1]) == 1
        assert await _take(late, 1) == [
            DispatchEvent(event=Event.CREATED, dispatch=existing, synthesized=True)
        ]
        assert server.methods.count(LIST) == 2  # the failed one, and the reconnect's
        await _subscribed(server)
        created = await _create(client)
        event = DispatchEvent(event=Event.CREATED, dispatch=created)
        assert await _take(plain, 1) == [event]
        assert await _take(late, 1) == [event]
    assert server.streams == [MICROGRID] * 2


@pytest.mark.parametrize(
    ("failure", "fatal"),
    [(Internal("listing failed (test)"), False), (PermissionDenied("not yours"), True)],
    ids=["retried", "fatal"],
)
async def test_a_failed_listing_on_connect_is_a_failed_call(
    server: Server, failure: RpcError, fatal: bool
) -> None:
    """The listing a resync stream makes on connect fails the call: reconnect, or end if fatal."""
    server.list_failures = [failure]
    async with _client(server, retry=None) as client:
        existing = await _create(client)
        receiver = client.stream(MICROGRID, resync=True, notices=True)
        assert _connected(await receiver.receive()) == 0
        if fatal:
            with anyio.fail_after(2), pytest.raises(PermissionDenied, match="not yours"):
                await receiver.receive()
            assert server.streams == [MICROGRID]
            return
        items = await _take(receiver, 3)
        assert _reconnecting(items[0]) == (1, 0.001, Internal)
        assert _connected(items[1]) == 1
        assert items[2] == DispatchEvent(event=Event.CREATED, dispatch=existing, synthesized=True)
    assert server.streams == [MICROGRID] * 2


# --- closing -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["exit", "disconnect"])
async def test_closing_the_client_ends_every_receiver(server: Server, how: str) -> None:
    """Leaving `async with Client` or disconnect() ends every receiver's iteration at once."""
    ended: list[str] = []
    events: list[Any] = []

    async def consume(name: str, receiver: DispatchReceiver[Any]) -> None:
        await _drain(receiver, events)
        ended.append(name)

    async with anyio.create_task_group() as tasks:
        async with _client(server) as client:
            receivers = [
                client.stream(MICROGRID),
                client.stream(MICROGRID, resync=True),
                client.stream(MICROGRID, notices=True),
                client.stream(MICROGRID + 1),
            ]
            for number, receiver in enumerate(receivers):
                tasks.start_soon(consume, f"consumer {number}", receiver)
            await _subscribed(server)
            await _subscribed(server, MICROGRID + 1)
            if how == "disconnect":
                await client.disconnect()
                with pytest.raises(RuntimeError, match="not connected"):
                    client.stream(MICROGRID)
                with anyio.fail_after(1):
                    await _until(lambda: len(ended) == len(receivers))
        with anyio.fail_after(1):
            await _until(lambda: len(ended) == len(receivers))
    assert sorted(ended) == [f"consumer {number}" for number in range(4)]
    assert all(isinstance(item, StreamConnected) for item in events)
    for receiver in receivers:
        assert receiver.closed
        assert not receiver.connected
        with pytest.raises(ReceiverStoppedError):
            await receiver.receive()
    await _until(lambda: server.service.subscriber_count(MICROGRID) == 0)


@pytest.mark.parametrize("how", ["exit", "disconnect"])
async def test_closing_the_client_before_the_call_opened_is_quiet(
    server: Server, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client closed right after `stream()`, before its call opened: no error is logged."""
    async with _client(server) as client:
        receiver = client.stream(MICROGRID)
        if how == "disconnect":
            await client.disconnect()
    with anyio.fail_after(1):
        assert [item async for item in receiver] == []
    assert receiver.closed
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert server.streams == []


@pytest.mark.parametrize("how", ["aclose", "async with"])
async def test_closing_a_receiver_stops_only_that_one(server: Server, how: str) -> None:
    """aclose() or leaving `async with receiver` stops that receiver; the others go on."""
    ended = anyio.Event()
    got: list[Any] = []

    async def consume(receiver: DispatchReceiver[Any]) -> None:
        await _drain(receiver, got)
        ended.set()

    async with _client(server) as client:
        other = client.stream(MICROGRID)
        closing = client.stream(MICROGRID)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume, closing)
            await _subscribed(server)
            if how == "aclose":
                await closing.aclose()
                await closing.aclose()  # idempotent
            else:
                async with closing as entered:
                    assert entered is closing
            with anyio.fail_after(1):
                await ended.wait()
        assert got == []
        assert closing.closed
        with pytest.raises(ReceiverStoppedError):
            await closing.receive()
        created = await _create(client)
        assert await _take(other, 1) == [DispatchEvent(event=Event.CREATED, dispatch=created)]
        assert not other.closed
        assert other.connected
        with pytest.raises(ReceiverStoppedError):
            await closing.receive()  # the event did not reach it either


async def test_cancelling_a_consumer_leaves_its_receiver_working(server: Server) -> None:
    """A consumer cancelled while waiting leaves the receiver, and the others, working."""
    async with _client(server) as client:
        receiver = client.stream(MICROGRID)
        other = client.stream(MICROGRID)
        await _subscribed(server)

        with anyio.CancelScope() as scope:
            scope.cancel()
            await receiver.receive()
        with anyio.move_on_after(0.01) as waited:
            await receiver.receive()
        assert waited.cancelled_caught
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(receiver.receive)
            tasks.start_soon(other.receive)
            await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()

        created = await _create(client)
        event = DispatchEvent(event=Event.CREATED, dispatch=created)
        assert await _take(receiver, 1) == [event]
        assert await _take(other, 1) == [event]
        assert receiver.dropped == 0
    assert server.streams == [MICROGRID]


async def test_no_exception_group_escapes_the_client(server: Server) -> None:
    """An error in the body of `async with Client` leaves it as is, with streams running."""
    with pytest.raises(KeyError, match="from the body"):  # noqa: PT012 -- the exit is tested
        async with _client(server) as client:
            receivers = [client.stream(MICROGRID), client.stream(MICROGRID + 1, resync=True)]
            await _subscribed(server)
            raise KeyError("from the body")
    for receiver in receivers:
        assert receiver.closed
        with pytest.raises(ReceiverStoppedError):
            await receiver.receive()


async def test_stream_needs_an_entered_connected_client(server: Server) -> None:
    """stream() outside `async with`, or while disconnected, raises RuntimeError."""
    client = _client(server)
    with pytest.raises(RuntimeError, match="async with"):
        client.stream(MICROGRID)
    async with _client(server, connect=False) as idle:
        with pytest.raises(RuntimeError, match="not connected"):
            idle.stream(MICROGRID)
        idle.connect()
        receiver = idle.stream(MICROGRID)
        await _subscribed(server)
        await idle.disconnect()
        with pytest.raises(RuntimeError, match="not connected"):
            idle.stream(MICROGRID)
    assert receiver.closed
    with pytest.raises(RuntimeError, match="async with"):
        idle.stream(MICROGRID)
    assert server.streams == [MICROGRID]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"buffer_size": 0}, ValueError),
        ({"buffer_size": -1}, ValueError),
        ({"buffer_size": "3"}, TypeError),
        ({"buffer_size": True}, TypeError),
        ({"buffer_size": 2.0}, TypeError),
        ({"resync": "yes"}, TypeError),
        ({"resync": 1}, TypeError),
        ({"notices": None}, TypeError),
        ({"microgrid_id": -1}, ValueError),
        ({"microgrid_id": 0}, ValueError),
        ({"microgrid_id": "7"}, TypeError),
        ({"microgrid_id": True}, TypeError),
    ],
)
async def test_bad_arguments_raise_at_once(
    server: Server, arguments: dict[str, Any], error: type[Exception]
) -> None:
    """Malformed stream() arguments raise TypeError or ValueError before any call is made."""
    arguments = {"microgrid_id": MICROGRID} | arguments
    async with _client(server) as client:
        with pytest.raises(error):
            client.stream(**arguments)
        await anyio.sleep(0.01)
    assert server.methods == []


async def test_connected_follows_the_call(server: Server) -> None:
    """`connected` is True while the call is open, False while reconnecting and once closed."""
    server.down = True
    async with _client(server) as client:
        receiver = client.stream(MICROGRID, notices=True)
        assert not receiver.connected
        item = await receiver.receive()
        assert _reconnecting(item)[0] == 1
        assert not receiver.connected
        server.down = False
        with anyio.fail_after(2):
            while isinstance(item, StreamReconnecting):
                item = await receiver.receive()
        assert _connected(item) > 0
        assert receiver.connected
        await _subscribed(server)
        await _take_down(server, receiver)
        server.down = False
        await _until(lambda: receiver.connected)
    assert not receiver.connected


async def test_a_closed_receiver_is_not_connected(server: Server) -> None:
    """A closed receiver reports connected False, though the others' call stays open."""
    async with _client(server) as client:
        closing = client.stream(MICROGRID)
        other = client.stream(MICROGRID)
        await _until(lambda: other.connected)
        assert closing.connected
        await closing.aclose()
        assert not closing.connected
        assert other.connected


async def test_a_receiver_tells_what_it_follows(server: Server) -> None:
    """A receiver's microgrid, buffer size, resync flag and repr reflect how it was made."""
    async with _client(server) as client:
        receiver = client.stream(MICROGRID, buffer_size=5, resync=True)
        assert (receiver.microgrid_id, receiver.buffer_size, receiver.resync) == (
            MICROGRID,
            5,
            True,
        )
        plain = client.stream(MICROGRID + 1)
        assert (plain.buffer_size, plain.resync) == (1000, False)
        assert receiver.dropped == 0
        assert repr(receiver) == (
            f"<DispatchReceiver microgrid {MICROGRID} open, 0 buffered, 0 dropped>"
        )
        await receiver.aclose()
        assert "closed" in repr(receiver)


async def test_receivers_dropped_on_a_quiet_microgrid_end_the_call(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no event to notice it by, a periodic check ends a call nobody listens to."""
    monkeypatch.setattr(_stream, "ORPHAN_CHECK_INTERVAL", 0.02)
    async with _client(server) as client:
        kept = client.stream(MICROGRID)
        dropped = client.stream(MICROGRID + 1)
        await _subscribed(server)
        await _subscribed(server, MICROGRID + 1)
        del dropped
        gc.collect()
        await _subscribed(server, MICROGRID + 1, count=0)
        assert server.service.subscriber_count(MICROGRID) == 1  # the kept one's call stays
        assert not kept.closed
        created = await _create(client)
        assert await _take(kept, 1) == [DispatchEvent(event=Event.CREATED, dispatch=created)]


async def test_receivers_dropped_without_closing_end_the_call(server: Server) -> None:
    """When every receiver was dropped unclosed, the next event ends the call; a new one starts."""
    async with _client(server) as client:
        receiver = client.stream(MICROGRID)
        await _subscribed(server)
        del receiver
        gc.collect()
        await _create(client)
        await _subscribed(server, count=0)
        again = client.stream(MICROGRID)
        await _subscribed(server)
        created = await _create(client)
        assert await _take(again, 1) == [DispatchEvent(event=Event.CREATED, dispatch=created)]
    assert server.streams == [MICROGRID] * 2


# --- the decoder switch --------------------------------------------------------------

_CALLS = {  # what each operation below must have gone through, by codec function
    "encode_create_request",
    "encode_update_request",
    "encode_get_request",
    "encode_list_request",
    "encode_stream_request",
    "encode_delete_request",
    "decode_list_response",
    "decode_stream_response",
    "decode_get_response",
    "decode_create_response",
    "decode_update_response",
    "decode_delete_response",
}


def _spied(codec: Any, label: str, used: list[str]) -> Any:
    """`codec` with every function recording `label.name` when called."""

    def spy(name: str) -> Callable[..., Any]:
        original = getattr(codec, name)

        def call(*args: Any) -> Any:
            used.append(f"{label}.{name}")
            return original(*args)

        return call

    return attrs.evolve(
        codec, **{field.name: spy(field.name) for field in attrs.fields(type(codec))}
    )


@pytest.mark.parametrize(
    ("options", "fast"),
    [
        ({}, True),
        ({"fast_codec": True}, True),
        ({"fast_codec": False}, False),
        ({"fast_decode": False}, False),
        ({"fast_codec": False, "fast_decode": False}, False),
    ],
)
async def test_the_codec_switch_picks_the_codec_of_every_call(
    server: Server, options: dict[str, bool], fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request is encoded and every answer decoded by the chosen codec, with equal results."""
    from dispatch_client import _client as client_module
    from dispatch_client import _codec

    used: list[str] = []
    monkeypatch.setattr(client_module, "FAST", _spied(_codec.FAST, "fast", used))
    reference = _spied(_codec.reference(), "reference", used)
    monkeypatch.setattr(client_module, "reference", lambda: reference)
    async with _client(server, **options) as client:
        receiver = client.stream(MICROGRID)
        await _subscribed(server)
        created = await _create(client)
        updated = await _update(client, created)
        assert await client.get(microgrid_id=MICROGRID, dispatch_id=created.id) == updated
        listed = [d async for page in client.list(MICROGRID) for d in page]
        assert listed == [updated]
        assert await _take(receiver, 2) == [
            DispatchEvent(event=Event.CREATED, dispatch=created),
            DispatchEvent(event=Event.UPDATED, dispatch=updated),
        ]
        await client.delete(microgrid_id=MICROGRID, dispatch_id=created.id)
    chosen = "fast" if fast else "reference"
    assert {call.partition(".")[0] for call in used} == {chosen}
    assert {call.partition(".")[2] for call in used} == _CALLS


def test_fast_decode_must_be_a_bool() -> None:
    """fast_codec and fast_decode take True or False only, checked at construction."""
    with pytest.raises(TypeError, match="fast_decode must be a bool"):
        Client(server_url=URL, key="k", fast_decode=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fast_codec must be a bool"):
        Client(server_url=URL, key="k", fast_codec="no")  # type: ignore[arg-type]


def test_fast_codec_and_fast_decode_must_not_contradict() -> None:
    """The two spellings of the codec switch given with different values are a ValueError."""
    with pytest.raises(ValueError, match="contradicts"):
        Client(server_url=URL, key="k", fast_codec=True, fast_decode=False)
