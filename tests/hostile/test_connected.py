"""An honest "connected": `stream()` counts only a server's answer, on every transport.

A stream is connected once the server answered the call (response headers with HTTP
200 and a gRPC content type), not when the request went out. A server that takes the
call and never answers is retried after `stream_header_timeout`; a server that answered
and then stays silent keeps the stream (silence is normal); a server gone dark is found
by keep-alive and the stream resumes, a resync receiver losing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

import transports
from dispatch_client import (
    Client,
    ConnectError,
    Dispatch,
    DispatchEvent,
    DispatchReceiver,
    Event,
    RetryPolicy,
    StreamConnected,
    StreamNotice,
    StreamReconnecting,
    TargetIds,
)
from dispatch_client._client import TransportName
from dispatch_client.testing import FakeDispatchService, serve
from transports import MemoryTransport, NotFound, RecordingTransport, ReplayTransport

from .conftest import TransportFactory
from .kit import GRPC_HEAD, OK_TRAILERS, HostileServer, Request, grpc_message
from .proxy import FreezingProxy

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(attempts=None, initial=0.05, maximum=0.2)
MICROGRID = 1


def name(kind: str) -> TransportName:
    """The client's name for a transport kind of the fixtures."""
    return "grpclib" if kind == "grpclib" else "h2"


async def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Wait until `condition()` holds; fail the test if it does not within `timeout`."""
    try:
        with anyio.fail_after(timeout):
            # Polling: the state lives in the client's upstream and the server's threads.
            while not condition():  # noqa: ASYNC110
                await anyio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"timed out waiting until {what}")


class Watcher:
    """Collects what a receiver delivers, in a task of its own."""

    def __init__(self) -> None:
        self.events: list[DispatchEvent] = []
        self.notices: list[StreamNotice] = []

    async def run(self, receiver: DispatchReceiver[DispatchEvent | StreamNotice]) -> None:
        async for item in receiver:
            if isinstance(item, StreamNotice):
                self.notices.append(item)
            else:
                self.events.append(item)

    def count(self, kind: type[StreamNotice]) -> int:
        return sum(isinstance(notice, kind) for notice in self.notices)


async def test_a_stream_without_response_headers_is_retried_not_connected(
    transport_kind: str,
) -> None:
    """A server that takes the stream call but never answers it is never reported
    connected; each call is given up after the header timeout and retried with backoff."""
    with HostileServer(lambda request: None) as server:  # takes every call, answers none
        async with Client(
            server_url=server.url,
            key="k",
            transport=name(transport_kind),
            stream_retry=FAST_RETRY,
            stream_header_timeout=timedelta(seconds=0.2),
        ) as client:
            receiver = client.stream(MICROGRID, notices=True)
            watcher = Watcher()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watcher.run, receiver)
                await until(lambda: watcher.count(StreamReconnecting) >= 3, "three retries")
                assert not receiver.connected
                receiver.close()
    assert watcher.count(StreamConnected) == 0
    reconnecting = [n for n in watcher.notices if isinstance(n, StreamReconnecting)]
    for notice in reconnecting:
        assert isinstance(notice.cause, ConnectError)
        assert "no response headers within 0.2 s" in str(notice.cause)
    # Backoff, not a spin: the pauses follow the policy.
    assert [n.attempt for n in reconnecting[:3]] == [1, 2, 3]
    assert server.requests >= 3


async def test_an_idle_but_alive_server_keeps_the_stream_connected(transport_kind: str) -> None:
    """A server that answered the call and then stays silent (answering PINGs) keeps the
    stream connected well past the header timeout and many keep-alive intervals."""

    def answer_then_be_quiet(request: Request) -> None:
        request.link.headers(request.stream_id, GRPC_HEAD)

    url_options = "&keep_alive_interval_s=0.05&keep_alive_timeout_s=0.5"
    with HostileServer(answer_then_be_quiet, url_options=url_options) as server:
        async with Client(
            server_url=server.url,
            key="k",
            transport=name(transport_kind),
            stream_retry=FAST_RETRY,
            stream_header_timeout=timedelta(seconds=0.2),
        ) as client:
            receiver = client.stream(MICROGRID, notices=True)
            watcher = Watcher()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watcher.run, receiver)
                await until(lambda: receiver.connected, "the stream is connected")
                await until(lambda: server.pings >= 20, "twenty keep-alive PINGs")
                assert receiver.connected
                receiver.close()
    assert watcher.notices == [StreamConnected(MICROGRID, 0)]
    assert server.requests == 1


def _later(hours: float) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


def _apply(view: dict[int, Dispatch], event: DispatchEvent) -> None:
    if event.event is Event.DELETED:
        view.pop(event.dispatch.id, None)
    else:
        view[event.dispatch.id] = event.dispatch


async def test_a_dark_server_is_found_by_keep_alive_and_resync_loses_nothing(
    transport_kind: str,
) -> None:
    """When the path to the server goes dark under an open stream, keep-alive notices,
    the stream reconnects, and a resync receiver's view ends equal to the server's."""
    with FakeDispatchService() as service:
        async with serve(service) as direct_url:
            port = int(direct_url.rpartition(":")[2].partition("?")[0])
            with FreezingProxy(port) as proxy:
                fast = "&keep_alive_interval_s=0.1&keep_alive_timeout_s=0.2"
                async with (
                    Client(
                        server_url=proxy.url(fast),
                        key="k",
                        transport=name(transport_kind),
                        stream_retry=FAST_RETRY,
                    ) as consumer,
                    Client(
                        server_url=direct_url, key="k", transport=name(transport_kind)
                    ) as producer,
                ):
                    receiver = consumer.stream(MICROGRID, resync=True, notices=True)
                    watcher = Watcher()
                    view: dict[int, Dispatch] = {}
                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(watcher.run, receiver)
                        await until(lambda: receiver.connected, "the stream is connected")
                        one = await producer.create(MICROGRID, "ONE", _later(1), None, TargetIds(1))
                        await until(lambda: len(watcher.events) == 1, "the live event")
                        proxy.freeze()  # the consumer's connection goes dark
                        two = await producer.create(MICROGRID, "TWO", _later(2), None, TargetIds(2))
                        await producer.delete(microgrid_id=MICROGRID, dispatch_id=one.id)
                        await until(
                            lambda: watcher.count(StreamConnected) >= 2, "the stream resumes"
                        )
                        await until(
                            lambda: _view(watcher.events, view) == {two.id: two},
                            "the view converges",
                        )
                        listed = {d.id: d async for page in producer.list(MICROGRID) for d in page}
                        receiver.close()
    assert view == listed
    reconnect = next(n for n in watcher.notices if isinstance(n, StreamReconnecting))
    assert isinstance(reconnect.cause, ConnectError)
    assert "keep-alive" in str(reconnect.cause)
    assert proxy.connections >= 2


def _view(events: list[DispatchEvent], view: dict[int, Dispatch]) -> dict[int, Dispatch]:
    view.clear()
    for event in events:
        _apply(view, event)
    return view


async def test_memory_recording_and_replay_report_the_answer(tmp_path: Path) -> None:
    """Memory, recording and replay transports expose `initial_metadata()` too (the answer
    at once), and a recorded stream replays as before."""

    def handler(method: str, request: bytes, metadata: object) -> list[bytes]:
        return [b"a", b"b"]

    cassette = tmp_path / "stream.yaml"
    recording = RecordingTransport(MemoryTransport(handler), cassette, mode="all")
    async with recording, recording.server_stream("/a.B/C", b"") as responses:
        assert isinstance(responses, transports.ResponseStream)
        assert await responses.initial_metadata() == ()
        assert [m async for m in responses] == [b"a", b"b"]
    replay = ReplayTransport(cassette)
    async with replay, replay.server_stream("/a.B/C", b"") as responses:
        assert isinstance(responses, transports.ResponseStream)
        assert await responses.initial_metadata() == ()
        assert [m async for m in responses] == [b"a", b"b"]


async def test_initial_metadata_waits_for_the_answer(
    make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """`initial_metadata()` returns the response headers' metadata once they arrive, waits
    while there are none, and raises the status of a trailers-only refusal."""
    answer_after = 0.3

    def respond(request: Request) -> None:
        if request.path.endswith(b"/Refuse"):
            request.fail(5, "no such stream")
            return
        if request.path.endswith(b"/Never"):
            return

        def answer() -> None:
            request.link.headers(request.stream_id, [*GRPC_HEAD, (b"x-served-by", b"kit")])
            request.link.data(request.stream_id, grpc_message(b"m"))
            request.link.headers(request.stream_id, OK_TRAILERS, end_stream=True)

        request.link.call_later(answer_after, answer)

    with HostileServer(respond) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(10):
                async with transport.server_stream("/a.B/Answer", b"") as responses:
                    assert isinstance(responses, transports.ResponseStream)
                    assert ("x-served-by", "kit") in await responses.initial_metadata()
                    assert [m async for m in responses] == [b"m"]
                async with transport.server_stream("/a.B/Never", b"") as responses:
                    with anyio.move_on_after(0.3) as waiting:
                        await responses.initial_metadata()
                    assert waiting.cancelled_caught
                with pytest.raises(NotFound, match="no such stream"):
                    async with transport.server_stream("/a.B/Refuse", b"") as responses:
                        await responses.initial_metadata()
