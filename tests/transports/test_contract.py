"""The `Transport` contract, checked for every network transport against both real servers.

Each test runs for every transport kind (`transport_factory`) on every backend it
supports, against a grpclib and a grpcio server (`peer`, `tls_peer`, or a server the
test starts itself).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager
from pathlib import Path

import anyio
import h2.errors
import pytest

from transports import (
    Cancelled,
    ConnectError,
    DeadlineExceeded,
    GrpcError,
    Internal,
    NotFound,
    PermissionDenied,
    ProtocolError,
    ResourceExhausted,
    RpcError,
    StatusCode,
    Transport,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from transports._wire import REFUSED_STREAM_RETRIES, encode_message

from .conftest import TlsFiles, TransportFactory
from .fakes import OK_HEAD, OK_TRAILERS, Request, fake_server, goaway, raw_server
from .peers import Peer, grpcio_peer, grpclib_peer, method, stream_message

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
_HANG = 30.0
"""Generous bound on any test, so a hanging transport fails instead of blocking the run."""


@asynccontextmanager
async def _open(factory: TransportFactory, url: str, **options: object) -> AsyncIterator[Transport]:
    """Build a transport, bound the test's duration, and close the transport at the end."""
    with anyio.fail_after(_HANG):
        async with factory(url, **options) as transport:
            yield transport


async def _wait(event_is_set: Callable[[float], bool], seconds: float = 5.0) -> bool:
    """Wait for a `threading.Event`-like `wait` without blocking the event loop."""
    return await anyio.to_thread.run_sync(event_is_set, seconds)


async def _drain(
    transport: Transport, path: str, request: bytes, *, timeout: float | None = None
) -> list[bytes]:
    """Make a streaming call and return all its messages."""
    async with transport.server_stream(path, request, timeout=timeout) as responses:
        return [message async for message in responses]


def _free_port() -> int:
    """Return a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unary_round_trip(transport_factory: TransportFactory, peer: Peer) -> None:
    """A unary call returns the server's response message."""
    async with _open(transport_factory, peer.url) as transport:
        assert await transport.unary(method("Echo"), b"hello") == b"hello"
        assert await transport.unary(method("Echo"), b"") == b""


async def test_ten_thousand_message_stream(transport_factory: TransportFactory, peer: Peer) -> None:
    """A server stream delivers 10,000 messages, complete and in order."""
    async with (
        _open(transport_factory, peer.url) as transport,
        transport.server_stream(method("Stream"), b"10000:16") as responses,
    ):
        received = [message async for message in responses]
    assert len(received) == 10_000
    assert received == [stream_message(i, 16) for i in range(10_000)]


async def test_eight_mib_each_way(transport_factory: TransportFactory, peer: Peer) -> None:
    """A message of 8 MiB travels to the server and back, on unary and streaming calls."""
    payload = bytes(range(256)) * (8 * MiB // 256)
    async with _open(transport_factory, peer.url, max_receive_message_length=16 * MiB) as transport:
        assert await transport.unary(method("Echo"), payload) == payload
        assert await transport.unary(method("Big"), b"%d" % (8 * MiB)) == b"b" * (8 * MiB)
        async with transport.server_stream(method("Stream"), b"2:%d" % (8 * MiB)) as responses:
            sizes = [len(message) async for message in responses]
    assert sizes == [8 * MiB, 8 * MiB]


async def test_receive_limit(transport_factory: TransportFactory, peer: Peer) -> None:
    """A response larger than `max_receive_message_length` fails with ResourceExhausted."""
    async with _open(transport_factory, peer.url, max_receive_message_length=MiB) as transport:
        assert len(await transport.unary(method("Big"), b"%d" % MiB)) == MiB
        with pytest.raises(ResourceExhausted):
            await transport.unary(method("Big"), b"%d" % (MiB + 1))
        # The connection survives the refused message.
        assert await transport.unary(method("Echo"), b"still here") == b"still here"
    # Every transport accepts the same by default (4 MiB, gRPC's default), whichever the
    # event loop picks, and refuses one byte more.
    async with _open(transport_factory, peer.url) as transport:
        assert len(await transport.unary(method("Big"), b"%d" % (4 * MiB))) == 4 * MiB
        with pytest.raises(ResourceExhausted):
            await transport.unary(method("Big"), b"%d" % (4 * MiB + 1))


async def test_status_message_details_and_trailers(
    transport_factory: TransportFactory, peer: Peer
) -> None:
    """A failed call raises the status's error with message, details and trailing metadata."""
    async with _open(transport_factory, peer.url) as transport:
        with pytest.raises(NotFound) as info:
            await transport.unary(method("Fail"), b"5:no such thing: 100% gone")
    error = info.value
    assert error.status is StatusCode.NOT_FOUND
    assert error.message == "no such thing: 100% gone"
    assert error.details == b"details-no such thing: 100% gone"
    assert ("fail-trailer", "yes") in error.trailing_metadata
    assert not error.retryable


async def test_trailers_only_errors_on_streams(
    transport_factory: TransportFactory, peer: Peer
) -> None:
    """A trailers-only error response fails a streaming call with its status."""
    async with _open(transport_factory, peer.url) as transport:
        with pytest.raises(Unavailable) as info:
            await _drain(transport, method("Fail"), b"14:try later")
        assert info.value.message == "try later"
        assert info.value.details == b"details-try later"
        assert info.value.retryable
        # Every status comes through, not only the common ones.
        with pytest.raises(PermissionDenied):
            await transport.unary(method("Fail"), b"7:")


async def test_unknown_method_is_unimplemented(
    transport_factory: TransportFactory, peer: Peer
) -> None:
    """Calling a method the server does not have raises Unimplemented, unary and streaming."""
    async with _open(transport_factory, peer.url) as transport:
        with pytest.raises(Unimplemented):
            await transport.unary("/peer.Test/Missing", b"")
        with pytest.raises(Unimplemented):
            await _drain(transport, "/no.Such/Service", b"")
        # The connection is still good.
        assert await transport.unary(method("Echo"), b"ok") == b"ok"


async def test_deadline_reaches_the_server(transport_factory: TransportFactory, peer: Peer) -> None:
    """The call's timeout reaches the server as its deadline; without one it sees none."""
    async with _open(transport_factory, peer.url) as transport:
        answer = await transport.unary(method("Deadline"), b"", timeout=20)
        assert peer.last_deadline is not None
        # The wire format rounds up, so allow a little above the timeout.
        assert 0 < peer.last_deadline <= 21
        assert float(answer) == pytest.approx(peer.last_deadline)
        assert await transport.unary(method("Deadline"), b"") == b"none"
        assert peer.last_deadline is None


async def test_local_deadline(transport_factory: TransportFactory, peer: Peer) -> None:
    """A call outliving its timeout raises DeadlineExceeded, unary and streaming."""
    async with _open(transport_factory, peer.url) as transport:
        with pytest.raises(DeadlineExceeded):
            await transport.unary(method("Sleep"), b"10", timeout=0.2)
        with pytest.raises(DeadlineExceeded):
            await _drain(transport, method("Endless"), b"", timeout=0.2)
        assert await transport.unary(method("Echo"), b"after", timeout=10) == b"after"


async def test_leaving_a_stream_early_cancels_it(
    transport_factory: TransportFactory, peer: Peer
) -> None:
    """Breaking out of a stream cancels the call: the server sees the cancellation."""
    async with _open(transport_factory, peer.url) as transport:
        async with transport.server_stream(method("Endless"), b"") as responses:
            async for message in responses:
                assert message == b"tick"
                break
        assert await _wait(peer.cancelled.wait)
        # The transport stays usable.
        assert await transport.unary(method("Echo"), b"next") == b"next"


async def test_an_error_in_the_block_cancels_the_stream(
    transport_factory: TransportFactory, peer: Peer
) -> None:
    """An exception raised in the block cancels the call and passes through unchanged."""

    class Boom(Exception):
        pass

    async def fail_midway(transport: Transport) -> None:
        async with transport.server_stream(method("Endless"), b"") as responses:
            await responses.__anext__()
            raise Boom

    async with _open(transport_factory, peer.url) as transport:
        with pytest.raises(Boom):
            await fail_midway(transport)
        assert await _wait(peer.cancelled.wait)


async def test_cancelling_the_caller_cancels_the_stream(
    transport_factory: TransportFactory, peer: Peer
) -> None:
    """Cancelling the task reading a stream cancels the call on the wire."""
    async with _open(transport_factory, peer.url) as transport:
        got_one = anyio.Event()

        async def read() -> None:
            async with transport.server_stream(method("Endless"), b"") as responses:
                async for _ in responses:
                    got_one.set()

        async with anyio.create_task_group() as group:
            group.start_soon(read)
            await got_one.wait()
            group.cancel_scope.cancel()
        assert await _wait(peer.cancelled.wait)
        assert await transport.unary(method("Echo"), b"next") == b"next"


async def test_cancelling_a_unary_call(transport_factory: TransportFactory, peer: Peer) -> None:
    """Cancelling the task making a unary call cancels the call on the wire."""
    async with _open(transport_factory, peer.url) as transport:
        async with anyio.create_task_group() as group:
            group.start_soon(transport.unary, method("Sleep"), b"30")
            assert await _wait(peer.called.wait)
            group.cancel_scope.cancel()
        assert await _wait(peer.cancelled.wait)
        assert await transport.unary(method("Echo"), b"next") == b"next"


async def test_hundred_concurrent_calls(transport_factory: TransportFactory, peer: Peer) -> None:
    """One transport carries 100 concurrent calls, each getting its own answer."""
    results: dict[int, bytes] = {}
    async with _open(transport_factory, peer.url) as transport:

        async def call(index: int) -> None:
            results[index] = await transport.unary(method("Echo"), b"call %d" % index)

        async def stream(index: int) -> None:
            async with transport.server_stream(method("Stream"), b"5:8") as responses:
                assert [m async for m in responses] == [stream_message(i, 8) for i in range(5)]

        async with anyio.create_task_group() as group:
            for index in range(100):
                group.start_soon(call, index)
            for index in range(10):
                group.start_soon(stream, index)
    assert results == {index: b"call %d" % index for index in range(100)}


async def test_calls_wait_for_a_free_stream(transport_factory: TransportFactory) -> None:
    """Past the server's limit of concurrent streams, calls wait for a free one, not fail."""
    results: list[bytes] = []
    with grpcio_peer(max_concurrent_streams=2) as peer:
        async with _open(transport_factory, peer.url) as transport:

            async def call() -> None:
                results.append(await transport.unary(method("Sleep"), b"0.05"))

            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(call)
    assert results == [b"slept"] * 8


PeerFactory = Callable[..., AbstractContextManager[Peer]]


@pytest.mark.parametrize("server", [grpclib_peer, grpcio_peer], ids=["grpclib", "grpcio"])
async def test_reconnects_after_server_restart(
    transport_factory: TransportFactory, server: PeerFactory
) -> None:
    """After the server restarts on the same port, the next call connects again."""
    with ExitStack() as stack:
        first = stack.enter_context(server())
        async with _open(transport_factory, first.url) as transport:
            assert await transport.unary(method("Echo"), b"one") == b"one"
            assert first.calls == 1
            stack.close()
            with server(port=first.port) as second:
                # Give the client a moment to see the old connection close, as it
                # would between calls in real life.
                await anyio.sleep(0.2)
                assert await transport.unary(method("Echo"), b"two") == b"two"
                assert second.calls == 1


async def test_calls_fail_while_the_server_is_down(transport_factory: TransportFactory) -> None:
    """With its server gone, a call raises ConnectError; once it is back, calls work again."""
    with grpcio_peer() as first:
        port, url = first.port, first.url
    async with _open(transport_factory, url) as transport:
        with pytest.raises(ConnectError) as info:
            await transport.unary(method("Echo"), b"nobody")
        assert info.value.retryable
        with grpcio_peer(port=port):
            assert await transport.unary(method("Echo"), b"back") == b"back"


async def test_tls_with_the_right_ca(
    transport_factory: TransportFactory, tls_peer: Peer, tls_ca: TlsFiles
) -> None:
    """Over TLS, a server whose certificate the given CA signed is accepted."""
    assert "ssl=true" in tls_peer.url
    async with _open(transport_factory, tls_peer.url) as transport:
        assert await transport.unary(method("Echo"), b"secret") == b"secret"
        async with transport.server_stream(method("Stream"), b"3:4") as responses:
            assert [m async for m in responses] == [stream_message(i, 4) for i in range(3)]


async def test_tls_with_a_wrong_ca(
    transport_factory: TransportFactory, tls_peer: Peer, tls_ca: TlsFiles
) -> None:
    """Over TLS, a certificate the trusted CA did not sign fails with ConnectError."""
    async with _open(transport_factory, tls_peer.url_with(tls_ca.wrong_ca_path)) as transport:
        for _ in range(2):
            with pytest.raises(ConnectError):
                await transport.unary(method("Echo"), b"secret")
        # The system store does not know the test CA either.
        async with _open(transport_factory, tls_peer.url_with(None)) as system:
            with pytest.raises(ConnectError):
                await system.unary(method("Echo"), b"secret")
    assert tls_peer.calls == 0


async def test_mutual_tls(
    transport_factory: TransportFactory, tls_ca: TlsFiles, tmp_path: Path
) -> None:
    """The URL's client certificate and key are presented; without them the server refuses."""
    client = tls_ca.ca.issue_cert("client.example")
    key_path = tmp_path / "client-key.pem"
    client.private_key_pem.write_to_path(str(key_path))
    chain_path = tmp_path / "client-chain.pem"
    chain_path.write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
    with grpcio_peer(
        tls=(tls_ca.key_pem, tls_ca.chain_pem),
        root_certificates=tls_ca.ca_path,
        client_ca=tls_ca.ca.cert_pem.bytes(),
    ) as peer:
        url = f"{peer.url}&ssl_private_key_path={key_path}&ssl_certificate_chain_path={chain_path}"
        async with _open(transport_factory, url) as transport:
            assert await transport.unary(method("Echo"), b"mutual") == b"mutual"
        async with _open(transport_factory, peer.url) as anonymous:
            with pytest.raises(ConnectError):
                await anonymous.unary(method("Echo"), b"who am I")


async def test_tls_to_a_plain_server(transport_factory: TransportFactory, peer: Peer) -> None:
    """Speaking TLS to a plain-TCP server fails with ConnectError."""
    url = peer.url.replace("ssl=false", "ssl=true")
    async with _open(transport_factory, url) as transport:
        with pytest.raises(ConnectError):
            await transport.unary(method("Echo"), b"x")


async def test_metadata_reaches_the_server(transport_factory: TransportFactory, peer: Peer) -> None:
    """Request metadata, ASCII and binary (-bin), arrives at the server intact."""
    binary = bytes(range(256))
    metadata: list[tuple[str, str | bytes]] = [
        ("key", "api key 123"),
        ("x-trace-bin", binary),
        ("x-empty-bin", b"\x00"),
    ]
    async with _open(transport_factory, peer.url) as transport:
        await transport.unary(method("Echo"), b"", metadata=metadata)
    for pair in metadata:
        assert pair in peer.last_metadata


async def test_connection_refused(transport_factory: TransportFactory) -> None:
    """No server listening: ConnectError, never an OSError or an ExceptionGroup."""
    url = f"grpc://127.0.0.1:{_free_port()}?ssl=false"
    async with _open(transport_factory, url) as transport:
        for _ in range(2):
            with pytest.raises(ConnectError) as info:
                await transport.unary(method("Echo"), b"")
            assert info.value.__cause__ is not None
        with pytest.raises(ConnectError):
            await _drain(transport, method("Stream"), b"1:1")


async def test_unresolvable_host(transport_factory: TransportFactory) -> None:
    """A host name that does not resolve fails with ConnectError."""
    async with _open(transport_factory, "grpc://no-such-host.invalid:50051?ssl=false") as transport:
        with pytest.raises(ConnectError):
            await transport.unary(method("Echo"), b"")


async def test_bad_arguments_fail_before_io(transport_factory: TransportFactory) -> None:
    """Malformed calls raise ValueError or TypeError without connecting."""
    url = f"grpc://127.0.0.1:{_free_port()}?ssl=false"
    async with _open(transport_factory, url) as transport:
        with pytest.raises(ValueError, match="method"):
            await transport.unary("Echo", b"")
        with pytest.raises(TypeError):
            await transport.unary(method("Echo"), "text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout"):
            await transport.unary(method("Echo"), b"", timeout=0)
        with pytest.raises(TypeError):
            await transport.unary(method("Echo"), b"", metadata=[("x-bin", "text")])
        with pytest.raises(ValueError, match="reserved"):
            async with transport.server_stream(
                method("Stream"), b"", metadata=[("grpc-timeout", "1S")]
            ):
                pass


async def test_every_failure_is_a_grpc_error(
    transport_factory: TransportFactory, peer: Peer
) -> None:
    """Each kind of failure raises a `GrpcError`, with the status where there is one."""
    async with _open(transport_factory, peer.url) as transport:
        for code in (1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 15, 16):
            with pytest.raises(RpcError) as info:
                await transport.unary(method("Fail"), b"%d:code %d" % (code, code))
            assert isinstance(info.value, GrpcError)
            assert info.value.status == code
            assert info.value.message == f"code {code}"


# --- which error when: the same situation raises the same error on every transport -----


async def _collect(transport: Transport, path: str, received: list[bytes]) -> None:
    """Make a streaming call, appending each message to `received` as it arrives."""
    async with transport.server_stream(path, b"") as responses:
        async for message in responses:
            received.append(message)


async def _call(transport: Transport, streaming: bool) -> list[bytes]:
    """Call the fake server's method, streaming or unary; return the messages."""
    if streaming:
        return await _drain(transport, method("Stream"), b"")
    return [await transport.unary(method("Echo"), b"")]


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_connection_lost_mid_call(
    transport_factory: TransportFactory, streaming: bool
) -> None:
    """A connection lost under a call that got no status raises a retryable ConnectError."""

    def respond(request: Request) -> None:
        if streaming:
            request.conn.send_headers(request.stream_id, OK_HEAD)
            request.conn.send_data(request.stream_id, encode_message(b"one"))
        request.then = "close"

    async with fake_server(respond) as server, _open(transport_factory, server.url) as transport:
        with pytest.raises(ConnectError, match="may have processed") as info:
            await _call(transport, streaming)
        assert info.value.retryable
        assert not isinstance(info.value, RpcError)


@pytest.mark.parametrize("server", [grpclib_peer, grpcio_peer], ids=["grpclib", "grpcio"])
async def test_server_gone_mid_call(
    transport_factory: TransportFactory, server: PeerFactory
) -> None:
    """A real server stopping under a call fails it with a retryable error, never a foreign one.

    grpcio ends its calls with status UNAVAILABLE when it stops, if the client reads it
    in time; otherwise the connection is just lost (ConnectError).
    """
    with ExitStack() as stack:
        peer = stack.enter_context(server())
        async with (
            _open(transport_factory, peer.url) as transport,
            anyio.create_task_group() as group,
        ):

            async def stop_when_called() -> None:
                assert await _wait(peer.called.wait)
                await anyio.to_thread.run_sync(stack.close)

            group.start_soon(stop_when_called)
            with pytest.raises((ConnectError, Unavailable)) as info:
                await transport.unary(method("Sleep"), b"30")
            assert info.value.retryable
            if isinstance(info.value, ConnectError):
                assert "may have processed" in str(info.value)


_NOT_HTTP2 = {
    "http1": b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
    "garbage": bytes(range(256)),
}


@pytest.mark.parametrize("answer", ["http1", "garbage", "close"])
async def test_a_server_that_does_not_speak_http2(
    transport_factory: TransportFactory, answer: str
) -> None:
    """A server answering in another protocol, or closing at once, fails with ProtocolError.

    It fails promptly, not at the connect timeout (20 s by default): the hang guard
    (a bound, not a timing assertion) is far below that.
    """
    async with raw_server(_NOT_HTTP2.get(answer), close=answer == "close") as url:
        with anyio.fail_after(10):
            async with transport_factory(url) as transport:
                for _ in range(2):
                    with pytest.raises(ProtocolError) as info:
                        await transport.unary(method("Echo"), b"")
                    assert not info.value.retryable
                with pytest.raises(ProtocolError):
                    await _drain(transport, method("Stream"), b"1:1")


async def test_a_silent_server(transport_factory: TransportFactory) -> None:
    """A server that accepts and never speaks fails with ConnectError at the connect timeout."""
    async with raw_server(None) as url:
        with anyio.fail_after(10):
            async with transport_factory(url, connect_timeout=0.2) as transport:
                with pytest.raises(ConnectError, match=r"within 0\.2 s") as info:
                    await transport.unary(method("Echo"), b"")
                assert info.value.retryable


def _refuse(times: int, *, first_message: bool = False) -> Callable[[Request], None]:
    """A fake-server responder refusing the first `times` requests with REFUSED_STREAM.

    Later requests get one message (`ok`) and status OK. With `first_message`, refused
    requests get response headers and one message before the refusal.
    """

    def respond(request: Request) -> None:
        if request.number < times:
            if first_message:
                request.conn.send_headers(request.stream_id, OK_HEAD)
                request.conn.send_data(request.stream_id, encode_message(b"first"))
            request.conn.reset_stream(request.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        else:
            request.answer(b"ok")

    return respond


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_a_refused_stream_is_repeated(
    transport_factory: TransportFactory, streaming: bool
) -> None:
    """A call refused with REFUSED_STREAM is sent again transparently, up to the shared bound."""
    async with (
        fake_server(_refuse(REFUSED_STREAM_RETRIES)) as server,
        _open(transport_factory, server.url) as transport,
    ):
        assert await _call(transport, streaming) == [b"ok"]
    assert server.requests == REFUSED_STREAM_RETRIES + 1


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_refused_past_the_bound_is_unavailable(
    transport_factory: TransportFactory, streaming: bool
) -> None:
    """A call refused more often than the shared bound fails with Unavailable, not processed."""
    async with (
        fake_server(_refuse(1000)) as server,
        _open(transport_factory, server.url) as transport,
    ):
        with pytest.raises(Unavailable, match="did not process") as info:
            await _call(transport, streaming)
        assert info.value.retryable
    assert server.requests == REFUSED_STREAM_RETRIES + 1


async def test_a_stream_refused_after_its_answer_began_is_not_repeated(
    transport_factory: TransportFactory,
) -> None:
    """A stream refused after its response headers came fails with Unavailable, unrepeated.

    (Whether the message before the refusal is delivered differs: grpclib drops it.)
    """
    async with (
        fake_server(_refuse(1, first_message=True)) as server,
        _open(transport_factory, server.url) as transport,
    ):
        received: list[bytes] = []
        with pytest.raises(Unavailable):
            await _collect(transport, method("Stream"), received)
        assert b"ok" not in received
    assert server.requests == 1


async def test_goaway_before_the_call_is_unavailable(transport_factory: TransportFactory) -> None:
    """A call above a GOAWAY's last stream id fails with Unavailable; the next call reconnects."""

    def respond(request: Request) -> None:
        if request.index == 0:
            request.raw += goaway(last_stream_id=0)
            request.then = "close"
        else:
            request.answer(b"second")

    async with fake_server(respond) as server, _open(transport_factory, server.url) as transport:
        with pytest.raises(Unavailable, match="did not process") as info:
            await transport.unary(method("Echo"), b"")
        assert info.value.retryable
        assert await transport.unary(method("Echo"), b"") == b"second"
    assert server.connections == 2


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (h2.errors.ErrorCodes.INTERNAL_ERROR, Internal),
        (h2.errors.ErrorCodes.CANCEL, Cancelled),
        (h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, ResourceExhausted),
        (h2.errors.ErrorCodes.PROTOCOL_ERROR, Internal),
    ],
    ids=["internal-error", "cancel", "enhance-your-calm", "protocol-error"],
)
async def test_a_stream_reset_by_the_server(
    transport_factory: TransportFactory, code: h2.errors.ErrorCodes, error: type[RpcError]
) -> None:
    """A stream the server resets mid-call fails with the status gRPC maps its code to.

    (Whether a message received before the reset is delivered differs: grpclib drops it.)
    """

    def respond(request: Request) -> None:
        request.conn.send_headers(request.stream_id, OK_HEAD)
        request.conn.send_data(request.stream_id, encode_message(b"one"))
        request.conn.reset_stream(request.stream_id, code)

    async with fake_server(respond) as server, _open(transport_factory, server.url) as transport:
        with pytest.raises(error, match="reset the stream"):
            await _collect(transport, method("Stream"), [])
        with pytest.raises(error, match="reset the stream"):
            await transport.unary(method("Echo"), b"")


@pytest.mark.parametrize(
    ("head", "error"),
    [
        ([(b":status", b"503")], Unavailable),
        ([(b":status", b"404"), (b"content-type", b"text/plain")], Unimplemented),
        ([(b":status", b"401")], Unauthenticated),
        ([(b":status", b"200"), (b"content-type", b"text/html")], ProtocolError),
        ([(b":status", b"200")], ProtocolError),
        ([*OK_HEAD, (b"grpc-status", b"5"), (b"grpc-message", b"no%20such")], NotFound),
    ],
    ids=["http-503", "http-404", "http-401", "not-grpc-content-type", "no-content-type", "grpc"],
)
async def test_headers_only_answers(
    transport_factory: TransportFactory, head: list[tuple[bytes, bytes]], error: type[GrpcError]
) -> None:
    """An answer that ends with its first header block raises the same error on every transport."""

    def respond(request: Request) -> None:
        request.conn.send_headers(request.stream_id, head, end_stream=True)

    async with fake_server(respond) as server, _open(transport_factory, server.url) as transport:
        with pytest.raises(error):
            await transport.unary(method("Echo"), b"")
        with pytest.raises(error):
            await _drain(transport, method("Stream"), b"")


async def test_a_closed_transport_raises_cancelled(
    transport_factory: TransportFactory, peer: Peer
) -> None:
    """Calls running when the transport closes, and calls after it, raise Cancelled."""
    outcome: list[BaseException] = []
    async with _open(transport_factory, peer.url) as transport:

        async def call() -> None:
            try:
                await transport.unary(method("Sleep"), b"30")
            except Exception as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            assert await _wait(peer.called.wait)
            await transport.aclose()
        assert len(outcome) == 1
        assert isinstance(outcome[0], Cancelled)
        assert not outcome[0].retryable
        with pytest.raises(Cancelled):
            await transport.unary(method("Echo"), b"")
        with pytest.raises(Cancelled):
            await _drain(transport, method("Stream"), b"1:1")
    assert await _wait(peer.cancelled.wait)


def _answer_with(kind: str) -> Callable[[Request], None]:
    """A fake-server responder that breaks gRPC in the way `kind` names."""

    def respond(request: Request) -> None:
        conn, stream_id = request.conn, request.stream_id
        conn.send_headers(stream_id, OK_HEAD)
        if kind == "no-message":
            conn.send_headers(stream_id, OK_TRAILERS, end_stream=True)
        elif kind == "two-messages":
            conn.send_data(stream_id, encode_message(b"a") + encode_message(b"b"))
            conn.send_headers(stream_id, OK_TRAILERS, end_stream=True)
        elif kind == "truncated":
            conn.send_data(stream_id, encode_message(b"hello")[:-2])
            conn.send_headers(stream_id, OK_TRAILERS, end_stream=True)
        elif kind == "no-trailers":
            conn.send_data(stream_id, encode_message(b"x"), end_stream=True)
        elif kind == "compressed":
            conn.send_data(stream_id, b"\x01" + encode_message(b"x")[1:])
            conn.send_headers(stream_id, OK_TRAILERS, end_stream=True)

    return respond


@pytest.mark.parametrize(
    "kind", ["no-message", "two-messages", "truncated", "no-trailers", "compressed"]
)
async def test_broken_grpc_answers_on_unary_calls(
    transport_factory: TransportFactory, kind: str
) -> None:
    """A unary answer that breaks gRPC framing fails with ProtocolError on every transport."""
    async with (
        fake_server(_answer_with(kind)) as server,
        _open(transport_factory, server.url) as transport,
    ):
        with pytest.raises(ProtocolError):
            await transport.unary(method("Echo"), b"")


async def test_local_deadline_while_connecting(transport_factory: TransportFactory) -> None:
    """A deadline that passes while the connection is being opened raises DeadlineExceeded."""
    async with raw_server(None) as url:
        with anyio.fail_after(10):
            async with transport_factory(url, connect_timeout=20) as transport:
                with pytest.raises(DeadlineExceeded):
                    await transport.unary(method("Echo"), b"", timeout=0.2)


async def test_receive_limit_on_streams(transport_factory: TransportFactory, peer: Peer) -> None:
    """A streamed message over `max_receive_message_length` fails with ResourceExhausted."""
    async with _open(transport_factory, peer.url, max_receive_message_length=MiB) as transport:
        with pytest.raises(ResourceExhausted):
            await _drain(transport, method("Stream"), b"2:%d" % (MiB + 1))
        assert await transport.unary(method("Echo"), b"still here") == b"still here"
