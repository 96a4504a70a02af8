"""H2Transport behaviour beyond the shared contract: HTTP/2 specifics, on asyncio and trio.

Two kinds of peer: the real test servers of `peers.py` (grpclib and grpcio), and a tiny
fake HTTP/2 server written with `h2` itself, running in the test's own event loop, for
what a well-behaved server never does (GOAWAY at a chosen moment, no PING answers, a
wrong content-type, garbage frames...).
"""

from __future__ import annotations

import contextlib
import random
import ssl
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import pytest
from anyio.streams.tls import TLSListener

from transports import (
    Cancelled,
    ConnectError,
    DeadlineExceeded,
    GrpcError,
    Internal,
    NotFound,
    ProtocolError,
    ResourceExhausted,
    Transport,
    Unavailable,
    Unimplemented,
)
from transports import _h2 as h2_module
from transports._h2 import H2Transport, _SlotWaiter
from transports._wire import encode_message

from .conftest import TlsFiles
from .fakes import OK_HEAD, OK_TRAILERS, FakeServer, Request, fake_server, goaway, serve_one
from .peers import Peer, grpcio_peer, method

pytestmark = pytest.mark.anyio


async def eventually(predicate: Callable[[], object], timeout: float = 10) -> None:
    """Wait until `predicate()` is true; fail the test after `timeout` seconds."""
    with anyio.fail_after(timeout):
        # Polling: the state lives in server threads and in the transport, with no event.
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.01)


_driver: list[str] = ["auto"]
"""The driver of the running test's transports (set by the `driver` fixture)."""


@pytest.fixture(autouse=True, params=["auto", "anyio"])
def driver(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each H2Transport driver on the test's backend: asyncio's own, and the anyio one."""
    name = str(request.param)
    if name == "anyio" and (
        "anyio_backend" not in request.fixturenames
        or request.getfixturevalue("anyio_backend") != "asyncio"
    ):
        pytest.skip("off asyncio (or without a loop) the anyio driver is the only one")
    _driver[0] = name
    yield name
    _driver[0] = "auto"


def transport(url: str, **options: Any) -> H2Transport:
    """An H2Transport for `url`, on the test's driver."""
    if _driver[0] == "anyio":
        options["_driver"] = "anyio"
    return H2Transport.from_url(url, **options)


# --- against the fake server ---------------------------------------------------------


async def test_early_exit_sends_rst_stream_cancel() -> None:
    """Leaving a stream early sends RST_STREAM(CANCEL) for it."""

    def respond(request: Request) -> None:
        request.conn.send_headers(request.stream_id, OK_HEAD)
        request.conn.send_data(request.stream_id, encode_message(b"a") * 3)

    async with fake_server(respond) as server, transport(server.url) as t:
        async with t.server_stream(method("Endless"), b"") as responses:
            async for message in responses:
                assert message == b"a"
                break
        await eventually(lambda: server.resets)
        assert server.resets == [(1, h2.errors.ErrorCodes.CANCEL)]


@pytest.mark.parametrize(
    ("head", "error", "match"),
    [
        ([(b":status", b"200"), (b"content-type", b"text/html")], ProtocolError, "not gRPC"),
        ([(b":status", b"503")], Unavailable, "HTTP 503"),
        ([(b":status", b"404"), (b"content-type", b"text/plain")], Unimplemented, "HTTP 404"),
        (
            [*OK_HEAD, (b"grpc-status", b"5"), (b"grpc-message", b"no%20such")],
            NotFound,
            "no such",
        ),
    ],
    ids=["bad-content-type", "http-503", "http-404", "trailers-only"],
)
async def test_headers_only_answers(
    head: list[tuple[bytes, bytes]], error: type[Exception], match: str
) -> None:
    """An answer that ends with its first header block maps to the right error."""

    def respond(request: Request) -> None:
        request.conn.send_headers(request.stream_id, head, end_stream=True)

    async with fake_server(respond) as server, transport(server.url) as t:
        with pytest.raises(error, match=match):
            await t.unary(method("Echo"), b"")


async def test_answer_before_the_request_body() -> None:
    """A server may answer before taking the whole request; the call ends with its status."""

    def respond(request: Request) -> None:
        status = [*OK_HEAD, (b"grpc-status", b"8"), (b"grpc-message", b"too big")]
        request.conn.send_headers(request.stream_id, status, end_stream=True)

    async with fake_server(respond, early=True) as server, transport(server.url) as t:
        with anyio.fail_after(10), pytest.raises(ResourceExhausted, match="too big"):
            await t.unary(method("Echo"), b"z" * (4 * 1024 * 1024))
        assert server.requests == 1


async def test_server_reset_mid_stream() -> None:
    """A stream the server resets with INTERNAL_ERROR fails with Internal."""

    def respond(request: Request) -> None:
        request.conn.send_headers(request.stream_id, OK_HEAD)
        request.conn.send_data(request.stream_id, encode_message(b"one"))
        request.conn.reset_stream(request.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)

    async with (
        fake_server(respond) as server,
        transport(server.url) as t,
        t.server_stream(method("Stream"), b"") as responses,
    ):
        with pytest.raises(Internal, match="reset the stream"):
            async for _ in responses:
                pass


async def test_refused_stream_is_retried() -> None:
    """A stream refused with REFUSED_STREAM (not processed) is retried transparently."""

    def respond(request: Request) -> None:
        if request.stream_id == 1:
            request.conn.reset_stream(request.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        else:
            request.answer(b"second try")

    async with fake_server(respond) as server, transport(server.url) as t:
        assert await t.unary(method("Echo"), b"") == b"second try"
        assert server.requests == 2
        assert server.connections == 1


async def test_missing_trailers() -> None:
    """A response that ends after its data without trailers is a protocol error."""

    def respond(request: Request) -> None:
        request.conn.send_headers(request.stream_id, OK_HEAD)
        request.conn.send_data(request.stream_id, encode_message(b"x"), end_stream=True)

    async with fake_server(respond) as server, transport(server.url) as t:
        with pytest.raises(ProtocolError, match="without trailers"):
            await t.unary(method("Echo"), b"")


async def test_truncated_message() -> None:
    """A response that ends inside a message is a protocol error."""

    def respond(request: Request) -> None:
        request.conn.send_headers(request.stream_id, OK_HEAD)
        request.conn.send_data(request.stream_id, encode_message(b"hello")[:-2])
        request.conn.send_headers(request.stream_id, OK_TRAILERS, end_stream=True)

    async with fake_server(respond) as server, transport(server.url) as t:
        with pytest.raises(ProtocolError, match="inside a message"):
            await t.unary(method("Echo"), b"")


async def test_two_messages_for_unary() -> None:
    """A unary call answered with two messages is a protocol error."""

    def respond(request: Request) -> None:
        request.conn.send_headers(request.stream_id, OK_HEAD)
        request.conn.send_data(request.stream_id, encode_message(b"a") + encode_message(b"b"))
        request.conn.send_headers(request.stream_id, OK_TRAILERS, end_stream=True)

    async with fake_server(respond) as server, transport(server.url) as t:
        with pytest.raises(ProtocolError, match="more than one"):
            await t.unary(method("Echo"), b"")


async def test_garbage_frames() -> None:
    """Frames that break HTTP/2 fail the call with ProtocolError, and the next call reconnects."""

    def respond(request: Request) -> None:
        if request.index == 0:
            # A DATA frame on stream 0 is a connection error.
            request.raw += b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"
        else:
            request.answer()

    async with fake_server(respond) as server, transport(server.url) as t:
        with pytest.raises(ProtocolError, match="HTTP/2"):
            await t.unary(method("Echo"), b"")
        assert await t.unary(method("Echo"), b"") == b"ok"
        assert server.connections == 2


async def test_goaway_before_the_stream_is_unavailable_then_reconnects() -> None:
    """A call above GOAWAY's last stream id fails with Unavailable; the next call reconnects."""

    def respond(request: Request) -> None:
        if request.index == 0:
            request.raw += goaway(last_stream_id=0)
            request.then = "close"
        else:
            request.answer(b"second")

    async with fake_server(respond) as server, transport(server.url) as t:
        with pytest.raises(Unavailable, match="did not process") as caught:
            await t.unary(method("Echo"), b"")
        assert caught.value.retryable
        assert await t.unary(method("Echo"), b"") == b"second"
        assert server.connections == 2


async def test_graceful_goaway_lets_accepted_calls_finish() -> None:
    """After a graceful GOAWAY the accepted call still completes; new calls use a new connection."""

    def respond(request: Request) -> None:
        if request.index == 0:
            # GOAWAY first, then the answer to the stream it lets finish.
            request.raw += request.conn.data_to_send()
            request.raw += goaway(last_stream_id=request.stream_id)
            request.answer(b"drained")
            request.raw += request.conn.data_to_send()
        else:
            request.answer(b"fresh")

    async with fake_server(respond) as server, transport(server.url) as t:
        assert await t.unary(method("Echo"), b"") == b"drained"
        assert await t.unary(method("Echo"), b"") == b"fresh"
        assert server.connections == 2


async def test_reconnect_after_goaway_between_calls() -> None:
    """A server that says GOAWAY and closes after a call is replaced by a new connection."""

    def respond(request: Request) -> None:
        request.answer(b"%d" % request.index)
        if request.index == 0:
            request.raw += goaway(last_stream_id=request.stream_id)
            request.then = "close"

    async with fake_server(respond) as server, transport(server.url) as t:
        assert await t.unary(method("Echo"), b"") == b"0"
        # Let the reader see the GOAWAY and the close before the next call.
        await eventually(lambda: t._connection_now is None)
        assert await t.unary(method("Echo"), b"") == b"1"
        assert server.connections == 2


async def test_keepalive_timeout_declares_the_connection_dead() -> None:
    """A server that stops answering PINGs fails the call with ConnectError (no status)."""

    def respond(request: Request) -> None:
        request.then = "hang"

    options = "&keep_alive_interval_s=0.05&keep_alive_timeout_s=0.1"
    async with fake_server(respond, options) as server, transport(server.url) as t:
        with anyio.fail_after(10), pytest.raises(ConnectError, match="keep-alive") as caught:
            await t.unary(method("Echo"), b"")
        assert "may have processed" in str(caught.value)
        assert caught.value.retryable


async def test_no_keepalive_means_the_deadline_decides() -> None:
    """With keep-alive off, a silent server is only given up on at the deadline."""

    def respond(request: Request) -> None:
        request.then = "hang"

    async with fake_server(respond, "&keep_alive=false") as server, transport(server.url) as t:
        with pytest.raises(DeadlineExceeded):
            await t.unary(method("Echo"), b"", timeout=0.2)


async def test_connect_refused() -> None:
    """Nothing listening is a ConnectError."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    async with transport(f"grpc://127.0.0.1:{port}?ssl=false") as t:
        with pytest.raises(ConnectError, match="cannot connect") as caught:
            await t.unary(method("Echo"), b"")
        assert caught.value.retryable


async def test_connect_timeout() -> None:
    """A server that never sends its SETTINGS fails the connect after connect_timeout."""

    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, silent)
        url = f"grpc://127.0.0.1:{port}?ssl=false"
        async with transport(url, connect_timeout=0.1) as t:
            with pytest.raises(ConnectError, match="no connection within"):
                await t.unary(method("Echo"), b"")
        tasks.cancel_scope.cancel()


async def test_aclose_fails_calls_in_flight() -> None:
    """aclose() fails every call in flight with Cancelled and returns promptly."""

    def respond(request: Request) -> None:
        pass  # never answers, but keeps reading

    errors: list[BaseException] = []

    async with fake_server(respond) as server:
        t = transport(server.url)
        async with t:

            async def call() -> None:
                try:
                    await t.unary(method("Echo"), b"")
                except Cancelled as exc:
                    errors.append(exc)

            async with anyio.create_task_group() as tasks:
                for _ in range(3):
                    tasks.start_soon(call)
                await eventually(
                    lambda: len(t._connection_now.streams if t._connection_now else ()) >= 3
                )
                with anyio.fail_after(5):
                    await t.aclose()
        assert len(errors) == 3
        assert all("closed" in str(e) for e in errors)
        with pytest.raises(Cancelled, match="closed"):
            await t.unary(method("Echo"), b"")


async def test_calls_need_async_with() -> None:
    """A transport used without `async with` says so before any I/O."""
    t = transport("grpc://127.0.0.1:1?ssl=false")
    with pytest.raises(RuntimeError, match="async with"):
        await t.unary(method("Echo"), b"")
    await t.aclose()


async def test_max_receive_message_length() -> None:
    """A response message over max_receive_message_length fails with ResourceExhausted."""

    def respond(request: Request) -> None:
        request.answer(b"x" * 101)

    async with (
        fake_server(respond) as server,
        transport(server.url, max_receive_message_length=100) as t,
    ):
        with pytest.raises(ResourceExhausted, match="larger than max"):
            await t.unary(method("Echo"), b"")


# --- against the real servers --------------------------------------------------------


async def test_leaving_a_stream_early_is_seen_by_the_server(peer: Peer) -> None:
    """Leaving a stream early makes the real server see the cancellation."""
    async with transport(peer.url) as t:
        async with t.server_stream(method("Endless"), b"") as responses:
            async for _ in responses:
                break
        await eventually(lambda: peer.cancelled.is_set())


async def test_cancelled_task_resets_its_stream(peer: Peer) -> None:
    """Cancelling the task of a waiting call cancels it on the server too."""
    async with transport(peer.url) as t:
        with anyio.move_on_after(0.3) as scope:
            async with t.server_stream(method("Endless"), b"") as responses:
                async for _ in responses:
                    await anyio.sleep(0.01)
        assert scope.cancelled_caught
        await eventually(lambda: peer.cancelled.is_set())
        assert await t.unary(method("Echo"), b"still") == b"still"


async def test_max_concurrent_streams_respected() -> None:
    """100 concurrent calls against a server allowing 2 streams all succeed on one connection."""
    with grpcio_peer(max_concurrent_streams=2) as limited:
        async with transport(limited.url) as t:
            results: list[bytes] = []

            async def call(i: int) -> None:
                results.append(await t.unary(method("Echo"), b"%d" % i))

            async with anyio.create_task_group() as tasks:
                for i in range(100):
                    tasks.start_soon(call, i)
            assert sorted(results) == sorted(b"%d" % i for i in range(100))
            assert limited.calls == 100


async def test_cancelling_a_call_waiting_for_a_slot() -> None:
    """A call waiting for a stream slot can be cancelled without disturbing the others."""
    with grpcio_peer(max_concurrent_streams=1) as limited:
        async with transport(limited.url) as t:
            async with anyio.create_task_group() as tasks:
                result: list[bytes] = []

                async def sleeper() -> None:
                    result.append(await t.unary(method("Sleep"), b"0.5"))

                tasks.start_soon(sleeper)
                await eventually(lambda: t._connection_now and t._connection_now.streams)
                with anyio.move_on_after(0.05) as waiting:
                    await t.unary(method("Echo"), b"queued")
                assert waiting.cancelled_caught
            assert result == [b"slept"]
            assert await t.unary(method("Echo"), b"after") == b"after"


async def test_big_messages_both_ways_with_a_slow_consumer(peer: Peer) -> None:
    """8 MiB go up and come back, and a slow consumer of big messages gets them all."""
    big = bytes(range(256)) * (8 * 1024 * 1024 // 256)
    async with transport(peer.url, max_receive_message_length=16 * 1024 * 1024) as t:
        assert await t.unary(method("Echo"), big) == big
        async with t.server_stream(method("Stream"), b"6:2097152") as responses:
            count = 0
            async for message in responses:
                assert len(message) == 2097152
                assert message.startswith(b"%d:" % count)
                count += 1
                await anyio.sleep(0.02)
        assert count == 6


async def test_concurrent_answers_survive_the_reused_read_buffer(peer: Peer) -> None:
    """Answers that share reads and span several come back intact.

    The asyncio driver reads into one buffer it keeps; what the core and the calls keep
    of a read must be copies, or the next read overwrites them.
    """
    rng = random.Random(7)
    requests = [rng.randbytes(size) for size in (1, 300, 20_000, 70_000, 150_000) * 4]
    answers: dict[int, bytes] = {}
    async with transport(peer.url) as t:

        async def echo(index: int) -> None:
            answers[index] = await t.unary(method("Echo"), requests[index])

        async with anyio.create_task_group() as tasks:
            for index in range(len(requests)):
                tasks.start_soon(echo, index)
    assert [answers[index] for index in range(len(requests))] == requests


async def test_reads_allocate_no_buffer_of_malloc_mmap_size(
    grpcio_server: Peer, anyio_backend: str
) -> None:
    """Reading small answers allocates no block of 128 KiB or more per read.

    glibc's malloc maps such blocks (unless the process happened to raise its mmap
    threshold) and unmaps them again when the bytes read are shrunk and freed: three
    syscalls and a page fault, about 30 us per small answer.
    """
    if _driver[0] == "anyio" and anyio_backend == "asyncio":
        pytest.skip("anyio's asyncio streams read through asyncio's own 256 KiB reads")
    async with transport(grpcio_server.url) as t:
        for _ in range(10):
            await t.unary(method("Echo"), b"warm")
        tracemalloc.start()
        try:
            for _ in range(50):
                assert await t.unary(method("Echo"), b"x" * 100) == b"x" * 100
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak - current < 128 * 1024


async def test_slow_consumer_applies_backpressure(peer: Peer) -> None:
    """Data the caller has not taken stays within the stream's flow-control window."""
    async with transport(peer.url) as t:
        async with t.server_stream(method("Stream"), b"64:262144") as responses:
            iterator = aiter(responses)
            await anext(iterator)
            # Give the server time to push as much as flow control allows.
            await anyio.sleep(0.3)
            conn = t._connection_now
            assert conn is not None
            (stream,) = conn.streams.values()
            buffered = sum(len(data) for data, _ in stream.chunks)
            assert buffered <= 1024 * 1024
            rest = [message async for message in iterator]
        assert len(rest) == 63


async def test_deadline_is_sent_and_enforced(peer: Peer) -> None:
    """The timeout reaches the server as grpc-timeout, and a slow call fails locally."""
    async with transport(peer.url) as t:
        left = float(await t.unary(method("Deadline"), b"", timeout=5))
        assert 0 < left <= 5
        with pytest.raises(DeadlineExceeded):
            await t.unary(method("Sleep"), b"5", timeout=0.1)


async def test_is_a_transport() -> None:
    """H2Transport implements the Transport protocol."""
    async with transport("grpc://127.0.0.1:1?ssl=false") as t:
        assert isinstance(t, Transport)


async def test_aclose_while_connecting() -> None:
    """aclose() during a connect attempt fails the waiting call with Cancelled at once."""

    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    errors: list[Exception] = []
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, silent)
        async with transport(f"grpc://127.0.0.1:{port}?ssl=false") as t:

            async def call() -> None:
                try:
                    await t.unary(method("Echo"), b"")
                except Cancelled as exc:
                    errors.append(exc)

            async with anyio.create_task_group() as calls:
                calls.start_soon(call)
                calls.start_soon(call)
                await eventually(lambda: t._attempt is not None)
                with anyio.fail_after(5):
                    await t.aclose()
        tasks.cancel_scope.cancel()
    assert len(errors) == 2


async def test_tls_verified(tls_peer: Peer) -> None:
    """TLS with ALPN h2 works with the right CA."""
    async with transport(tls_peer.url) as t:
        assert await t.unary(method("Echo"), b"secure") == b"secure"


async def test_tls_wrong_ca(tls_peer: Peer, tls_ca: TlsFiles) -> None:
    """A server certificate from another CA fails the call with ConnectError."""
    async with transport(tls_peer.url_with(tls_ca.wrong_ca_path)) as t:
        with pytest.raises(ConnectError, match="certificate"):
            await t.unary(method("Echo"), b"")


async def test_tls_to_a_plain_server(peer: Peer) -> None:
    """TLS towards a plain-TCP server fails with ConnectError."""
    async with transport(peer.url.replace("ssl=false", "ssl=true")) as t:
        with pytest.raises(ConnectError):
            await t.unary(method("Echo"), b"", timeout=5)


async def test_keepalive_pings_answered_keep_the_call_alive(grpclib_server: Peer) -> None:
    """A call that outlasts many keep-alive intervals succeeds while the server answers PINGs."""
    url = f"{grpclib_server.url}&keep_alive_interval_s=0.02&keep_alive_timeout_s=0.5"
    async with transport(url) as t:
        assert await t.unary(method("Sleep"), b"0.3") == b"slept"


async def test_too_many_pings_halves_the_ping_rate(grpcio_server: Peer) -> None:
    """A server's too_many_pings GOAWAY doubles the keep-alive interval of later connections."""
    url = f"{grpcio_server.url}&keep_alive_interval_s=0.02&keep_alive_timeout_s=1"
    async with transport(url) as t:
        with pytest.raises(Unavailable, match=r"(?i)too many pings"):
            await t.unary(method("Sleep"), b"5", timeout=5)
        await eventually(lambda: t._connection_now is None)
        assert t._keep_alive_interval == pytest.approx(0.04)
        assert await t.unary(method("Echo"), b"again") == b"again"


async def test_mixed_concurrent_calls_with_cancellations(grpcio_server: Peer) -> None:
    """Many concurrent calls, broken off, timed out or cancelled at random, raise only GrpcError."""
    rng = random.Random(7)
    foreign: list[BaseException] = []

    async def one(t: H2Transport, seed: float) -> None:
        local = random.Random(seed)
        kind = local.randrange(6)
        try:
            if kind == 0:
                assert await t.unary(method("Echo"), b"x") == b"x"
            elif kind == 1:
                async with t.server_stream(method("Endless"), b"") as responses:
                    async for _ in responses:
                        if local.random() < 0.3:
                            break
            elif kind == 2:
                await t.unary(method("Sleep"), b"0.1", timeout=local.uniform(0.001, 0.2))
            elif kind == 3:
                with anyio.move_on_after(local.uniform(0, 0.03)):
                    async with t.server_stream(method("Stream"), b"500:100") as responses:
                        async for _ in responses:
                            pass
            elif kind == 4:
                size = local.randrange(2_000_000)
                assert await t.unary(method("Echo"), b"y" * size) == b"y" * size
            else:
                await t.unary(method("Fail"), b"5:gone")
        except GrpcError:
            pass
        except Exception as exc:
            foreign.append(exc)

    async with transport(grpcio_server.url) as t:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                for _ in range(120):
                    tasks.start_soon(one, t, rng.random())
            assert await t.unary(method("Echo"), b"still fine") == b"still fine"
            async with anyio.create_task_group() as tasks:
                for _ in range(10):
                    tasks.start_soon(one, t, rng.random())
                await anyio.sleep(0.02)
                await t.aclose()
    assert foreign == []


async def test_errors_in_the_block_are_not_wrapped(peer: Peer) -> None:
    """An exception raised inside `async with transport:` comes out as it is, not in a group."""

    async def use() -> None:
        async with transport(peer.url) as t:
            await t.unary(method("Echo"), b"x")
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await use()


async def test_aclose_from_another_task(peer: Peer) -> None:
    """aclose() from a task other than the owner fails the owner's call with Cancelled."""
    async with transport(peer.url) as t, anyio.create_task_group() as tasks:

        async def close_soon() -> None:
            await eventually(lambda: t._connection_now and t._connection_now.streams)
            await t.aclose()

        tasks.start_soon(close_soon)
        with anyio.fail_after(5), pytest.raises(Cancelled, match="closed"):
            await t.unary(method("Sleep"), b"5")


async def test_outer_cancellation_leaves_promptly(peer: Peer) -> None:
    """Cancelling the scope around the transport ends its call and closes it promptly."""
    with anyio.fail_after(5), anyio.move_on_after(0.1) as scope:
        async with transport(peer.url) as t:
            await t.unary(method("Sleep"), b"5")
    assert scope.cancelled_caught


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_receive_message_length": -1}, ValueError),
        ({"max_receive_message_length": 1.5}, ValueError),
        ({"connect_timeout": 0}, ValueError),
        ({"connect_timeout": "5"}, TypeError),
        ({"user_agent": "caf\u00e9"}, ValueError),
        ({"user_agent": b"ua"}, TypeError),
        ({"no_such_option": 1}, TypeError),
    ],
)
def test_bad_options(options: dict[str, Any], error: type[Exception]) -> None:
    """Bad options are caller mistakes, raised when the transport is made."""
    with pytest.raises(error):
        H2Transport.from_url("grpc://localhost:1?ssl=false", **options)


def test_unreadable_tls_files_fail_early(tmp_path: Path) -> None:
    """A CA file that cannot be read is a ValueError when the transport is made."""
    with pytest.raises(ValueError, match="TLS"):
        H2Transport.from_url(f"grpc://localhost:1?ssl_root_certificates_path={tmp_path}/none.pem")


async def test_user_agent_is_sent(grpcio_server: Peer) -> None:
    """The configured user agent reaches the server (grpcio reports it with the metadata)."""
    grpcio_server.reset()
    async with transport(grpcio_server.url, user_agent="my-agent/1.0") as t:
        assert await t.unary(method("Echo"), b"ua") == b"ua"
        assert repr(t) == f"H2Transport(http://127.0.0.1:{grpcio_server.port})"
    assert ("user-agent", "my-agent/1.0") in grpcio_server.last_metadata


async def test_local_deadline_resets_the_stream() -> None:
    """A call that runs out of time fails with DeadlineExceeded and resets its stream."""

    def respond(request: Request) -> None:
        pass  # reads on, never answers

    async with fake_server(respond) as server, transport(server.url) as t:
        with pytest.raises(DeadlineExceeded, match="deadline"):
            await t.unary(method("Echo"), b"", timeout=0.05)
        await eventually(lambda: server.resets)
        assert server.resets == [(1, h2.errors.ErrorCodes.CANCEL)]


async def test_host_name(grpcio_server: Peer) -> None:
    """A host name is resolved (localhost reaches the server on 127.0.0.1)."""
    async with transport(f"grpc://localhost:{grpcio_server.port}?ssl=false") as t:
        assert await t.unary(method("Echo"), b"by name") == b"by name"


async def test_tls_server_without_http2(tls_ca: TlsFiles) -> None:
    """A TLS server that does not speak HTTP/2 (no h2 in its ALPN) fails the connect."""
    context = tls_ca.server_context()
    context.set_alpn_protocols(["http/1.1"])

    async def idle(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                await stream.receive()

    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(anyio.abc.SocketAttribute.local_port)
    listener = TLSListener(tcp, context, standard_compatible=False)
    url = f"grpc://127.0.0.1:{port}?ssl_root_certificates_path={tls_ca.ca_path}"
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, idle)
        async with transport(url) as t:
            with pytest.raises(ConnectError, match="gRPC server"):
                await t.unary(method("Echo"), b"")
        tasks.cancel_scope.cancel()


@pytest.mark.parametrize("with_client_cert", [True, False], ids=["client-cert", "no-client-cert"])
async def test_mutual_tls(tls_ca: TlsFiles, tmp_path: Path, with_client_cert: bool) -> None:
    """The URL's client certificate is presented; without one, such a server refuses us."""
    context = tls_ca.server_context()
    context.verify_mode = ssl.CERT_REQUIRED
    tls_ca.ca.configure_trust(context)
    client = tls_ca.ca.issue_cert("client@example.com")
    key_path, chain_path = tmp_path / "client.key", tmp_path / "client.pem"
    client.private_key_pem.write_to_path(str(key_path))
    chain_path.write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))

    server = FakeServer()

    def respond(request: Request) -> None:
        request.answer(b"mutual")

    async def handle(stream: anyio.abc.ByteStream) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, ssl.SSLError, OSError):
            await serve_one(stream, server, respond)

    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(anyio.abc.SocketAttribute.local_port)
    listener = TLSListener(tcp, context, standard_compatible=False)
    url = f"grpc://127.0.0.1:{port}?ssl_root_certificates_path={tls_ca.ca_path}"
    if with_client_cert:
        url += f"&ssl_private_key_path={key_path}&ssl_certificate_chain_path={chain_path}"
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, handle)
        async with transport(url) as t:
            if with_client_cert:
                assert await t.unary(method("Echo"), b"") == b"mutual"
            else:
                # TLS 1.3 finishes the client's handshake first: the refusal shows as
                # an alert or a closed connection, depending on timing.
                with pytest.raises(ConnectError, match="cannot connect"):
                    await t.unary(method("Echo"), b"", timeout=5)
        tasks.cancel_scope.cancel()


async def test_slot_waiters_are_served_in_order_with_one_wake_up_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300 calls over a 10-stream limit all finish; queued calls get slots first come first
    served, and each queued call is woken exactly once."""
    queued: list[object] = []
    woken: list[tuple[object, bool]] = []

    class CountingWaiter(_SlotWaiter):
        def __init__(self) -> None:
            super().__init__()
            queued.append(self)

        def wake(self, granted: bool) -> None:
            woken.append((self, granted))
            super().wake(granted)

    monkeypatch.setattr(h2_module, "_SlotWaiter", CountingWaiter)
    with grpcio_peer(max_concurrent_streams=10) as limited:
        async with transport(limited.url) as t:
            await t.unary(method("Echo"), b"warm-up")  # one connection, limit known
            results: list[bytes] = []

            async def call(i: int) -> None:
                results.append(await t.unary(method("Echo"), b"%d" % i))

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tasks:
                    for i in range(300):
                        tasks.start_soon(call, i)
    assert sorted(results) == sorted(b"%d" % i for i in range(300))
    assert len(queued) >= 290 - 10  # nearly every call had to queue
    # One wake-up per queued call, each handing it a slot, in the order they queued.
    assert [waiter for waiter, _ in woken] == queued
    assert all(granted for _, granted in woken)
