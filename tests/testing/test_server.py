"""`serve()`: a call handler served over real gRPC, reached by real clients.

Clients: `H2Transport` on asyncio and trio, `GrpclibTransport` on asyncio.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import sniffio
import trustme

import transports
from dispatch_client import _methods
from dispatch_client._codec import _bridge as bridge
from dispatch_client._requests import CreateRequest
from dispatch_client._types import Event, TargetIds
from dispatch_client.testing._server import serve
from dispatch_client.testing._service import FakeDispatchService
from transports import GrpcError, Transport

pytestmark = pytest.mark.anyio

_TIMEOUT = 10
"""Seconds any test may wait for something that should happen at once."""

TransportFactory = Callable[[str], Transport]


@pytest.fixture(params=["h2", "grpclib"])
def connect(request: pytest.FixtureRequest, anyio_backend: str) -> TransportFactory:
    """Build a client transport for a URL, once per transport kind (grpclib: asyncio only)."""
    if request.param == "grpclib":
        if anyio_backend != "asyncio":
            pytest.skip("GrpclibTransport runs on asyncio only")
        return transports.GrpclibTransport.from_url
    return transports.H2Transport.from_url


class Handler:
    """A small handler with one behaviour per Dispatch method, recording what it saw.

    * GET: answers `b"got:" + request`; records the metadata.
    * UPDATE: an `async def` answer naming the event loop it runs in.
    * LIST: raises `NotFound` with details and trailing metadata.
    * CREATE: raises `ValueError` (a handler bug).
    * DELETE: returns a stream to a unary call (a handler bug); records its closing.
    * STREAM: request `b"N"` streams N messages from a generator; `b"0"` ticks until
      closed.
    """

    def __init__(self) -> None:
        self.metadata: tuple[tuple[str, str | bytes], ...] | None = None
        self.closed = anyio.Event()

    def __call__(
        self, method: str, request: bytes, metadata: tuple[tuple[str, str | bytes], ...]
    ) -> Any:
        if method == _methods.GET:
            self.metadata = metadata
            return b"got:" + request
        if method == _methods.UPDATE:
            return self._loop_name()
        if method == _methods.LIST:
            raise transports.NotFound(
                "no such microgrid", b"\x08\x05", (("why", "gone"), ("why-bin", b"\x00\xff"))
            )
        if method == _methods.CREATE:
            raise ValueError("a secret that must not reach the client")
        if method == _methods.DELETE:
            return _Ticks(self.closed)
        assert method == _methods.STREAM
        if request == b"0":
            return _Ticks(self.closed)
        return self._ticks(int(request))

    async def _loop_name(self) -> bytes:
        await anyio.lowlevel.checkpoint()
        return sniffio.current_async_library().encode()

    async def _ticks(self, count: int) -> AsyncIterator[bytes]:
        try:
            for index in range(count):
                yield f"tick {index}".encode()
                await anyio.lowlevel.checkpoint()
        finally:
            self.closed.set()


class _Ticks(AsyncIterator[bytes]):
    """Endless `b"tick N"` messages, a short pause before each; records `aclose()`.

    Not a generator: cancelling a pending `__anext__` does not close it, so only an
    explicit `aclose()` by the server sets `closed`.
    """

    def __init__(self, closed: anyio.Event) -> None:
        self._closed = closed
        self._index = 0

    async def __anext__(self) -> bytes:
        await anyio.sleep(0.005)
        self._index += 1
        return f"tick {self._index - 1}".encode()

    async def aclose(self) -> None:
        self._closed.set()


async def test_unary_call_reaches_the_handler(connect: TransportFactory) -> None:
    """A unary call gets the handler's answer."""
    async with serve(Handler()) as url, connect(url) as transport:
        assert await transport.unary(_methods.GET, b"7") == b"got:7"


async def test_request_metadata_reaches_the_handler(connect: TransportFactory) -> None:
    """The handler sees the call's metadata, binary values as bytes, no transport headers."""
    handler = Handler()
    async with serve(handler) as url, connect(url) as transport:
        await transport.unary(
            _methods.GET, b"", metadata=(("key", "k"), ("trace-bin", b"\x00\xff"), ("key", "2"))
        )
    assert handler.metadata == (("key", "k"), ("trace-bin", b"\x00\xff"), ("key", "2"))


async def test_handler_runs_in_the_callers_loop(
    connect: TransportFactory, anyio_backend: str
) -> None:
    """The handler runs in the event loop that called serve(), trio included."""
    async with serve(Handler()) as url, connect(url) as transport:
        assert await transport.unary(_methods.UPDATE, b"") == anyio_backend.encode()


async def test_rpc_error_round_trips(connect: TransportFactory) -> None:
    """An RpcError of the handler reaches the client with message, details and trailers."""
    async with serve(Handler()) as url, connect(url) as transport:
        with pytest.raises(transports.NotFound) as caught:
            await transport.unary(_methods.LIST, b"")
    error = caught.value
    assert error.message == "no such microgrid"
    assert error.details == b"\x08\x05"
    assert ("why", "gone") in error.trailing_metadata
    assert ("why-bin", b"\x00\xff") in error.trailing_metadata


async def test_unexpected_exception_is_internal(
    connect: TransportFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Any other exception is logged and reaches the client as INTERNAL, without its text."""
    with caplog.at_level(logging.ERROR, logger="dispatch_client.testing._server"):
        async with serve(Handler()) as url, connect(url) as transport:
            with pytest.raises(transports.Internal) as caught:
                await transport.unary(_methods.CREATE, b"")
    assert "ValueError" in caught.value.message
    assert "secret" not in caught.value.message
    assert "Traceback" not in caught.value.message
    assert any(record.exc_info for record in caplog.records), "the traceback is logged"


async def test_stream_to_a_unary_call_is_internal(connect: TransportFactory) -> None:
    """A unary method whose handler returns a stream fails INTERNAL and the stream is closed."""
    handler = Handler()
    async with serve(handler) as url, connect(url) as transport:
        with pytest.raises(transports.Internal):
            await transport.unary(_methods.DELETE, b"")
    assert handler.closed.is_set()


async def test_unknown_method_is_unimplemented(connect: TransportFactory) -> None:
    """A method the Dispatch service does not have is UNIMPLEMENTED."""
    async with serve(Handler()) as url, connect(url) as transport:
        with pytest.raises(transports.Unimplemented):
            await transport.unary(f"/{_methods.SERVICE}/Nope", b"")


async def test_stream_delivers_every_message(connect: TransportFactory) -> None:
    """A server stream delivers the handler's messages in order, then ends."""
    handler = Handler()
    async with (
        serve(handler) as url,
        connect(url) as transport,
        transport.server_stream(_methods.STREAM, b"3") as messages,
    ):
        received = [message async for message in messages]
    assert received == [b"tick 0", b"tick 1", b"tick 2"]
    assert handler.closed.is_set()


async def test_client_cancelling_a_stream_closes_the_handlers_iterator(
    connect: TransportFactory,
) -> None:
    """Leaving a stream early closes the handler's iterator, while the server runs on."""
    handler = Handler()
    async with serve(handler) as url, connect(url) as transport:
        async with transport.server_stream(_methods.STREAM, b"0") as messages:
            assert await anext(messages) == b"tick 0"
        with anyio.fail_after(_TIMEOUT):
            await handler.closed.wait()
        # The connection and the server still serve other calls.
        assert await transport.unary(_methods.GET, b"x") == b"got:x"


async def test_stopping_with_a_stream_open(connect: TransportFactory) -> None:
    """Leaving serve() with a stream open ends it for the client and closes the iterator."""
    handler = Handler()
    outcome: list[BaseException] = []

    async def listen(url: str, first: anyio.Event) -> None:
        async with connect(url) as transport:
            try:
                async with transport.server_stream(_methods.STREAM, b"0") as messages:
                    async for _ in messages:
                        first.set()
            except GrpcError as exc:
                outcome.append(exc)

    with anyio.fail_after(_TIMEOUT):
        async with anyio.create_task_group() as tasks:
            async with serve(handler) as url:
                first = anyio.Event()
                tasks.start_soon(listen, url, first)
                await first.wait()
            assert handler.closed.is_set()
    assert len(outcome) == 1, "the client saw the server go"


async def test_a_call_past_its_deadline_cancels_the_handler(connect: TransportFactory) -> None:
    """A stream whose deadline passes fails DEADLINE_EXCEEDED and its iterator is closed."""
    handler = Handler()
    async with serve(handler) as url, connect(url) as transport:
        with pytest.raises(transports.DeadlineExceeded):  # noqa: PT012 -- the stream is the call
            async with transport.server_stream(_methods.STREAM, b"0", timeout=0.2) as messages:
                async for _ in messages:
                    pass
        with anyio.fail_after(_TIMEOUT):
            await handler.closed.wait()


async def test_nothing_listens_after_the_block() -> None:
    """Once serve() has returned, its port refuses connections."""
    async with serve(Handler()) as url:
        port = int(url.rsplit(":", 1)[1].split("?")[0])
    # A blocking connect is instant on loopback, and raises the precise error.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port)).close()


async def test_no_server_thread_outlives_the_block(anyio_backend: str) -> None:
    """Under trio the server's thread has ended when serve() returns; asyncio needs none."""
    async with serve(Handler()) as url, transports.H2Transport.from_url(url) as transport:
        await transport.unary(_methods.GET, b"")
        running = [t for t in threading.enumerate() if t.name.startswith("grpc-serve-")]
        assert len(running) == (1 if anyio_backend == "trio" else 0)
    assert not [t for t in threading.enumerate() if t.name.startswith("grpc-serve-")]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, trustme.LeafCert]:
    """A trustme CA as a PEM file, and a server certificate for 127.0.0.1 it signed."""
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path, ca.issue_cert("127.0.0.1", "localhost")


async def test_tls(connect: TransportFactory, tls_files: tuple[Path, trustme.LeafCert]) -> None:
    """With a server TLS context, the URL asks for TLS and a client trusting the CA calls."""
    ca_path, cert = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    async with serve(Handler(), ssl=context) as url:
        assert "?" not in url
        async with connect(f"{url}?ssl_root_certificates_path={ca_path}") as transport:
            assert await transport.unary(_methods.GET, b"s") == b"got:s"


async def test_port_in_use_is_an_os_error() -> None:
    """Serving on a port another socket listens on raises OSError."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            async with serve(Handler(), port=port):
                pytest.fail("serve() started on a port in use")


async def test_wildcard_host_yields_a_loopback_url() -> None:
    """Listening on every interface yields a URL a local client can use."""
    async with serve(Handler(), host="0.0.0.0") as url:
        assert url.startswith("grpc://127.0.0.1:")
        async with transports.H2Transport.from_url(url) as transport:
            assert await transport.unary(_methods.GET, b"") == b"got:"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"handler": None}, TypeError),
        ({"host": 1}, TypeError),
        ({"port": "1"}, TypeError),
        ({"port": True}, TypeError),
        ({"port": 70000}, ValueError),
        ({"ssl": object()}, TypeError),
    ],
)
async def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Bad arguments raise TypeError or ValueError before anything listens."""
    arguments: dict[str, Any] = {"handler": Handler()} | kwargs
    handler = arguments.pop("handler")
    with pytest.raises(error):
        async with serve(handler, **arguments):
            pass


# --- with FakeDispatchService -----------------------------------------------------------


_KEY_METADATA = (("key", "k"),)


def _create_request(microgrid_id: int = 1) -> bytes:
    return bridge.encode_create_request(
        CreateRequest(
            microgrid_id=microgrid_id,
            type="CHARGE",
            start_time="NOW",
            duration=timedelta(minutes=5),
            target=TargetIds(1, 2),
        )
    )


async def _eventually(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds: the service offers no event to wait on."""
    for _ in range(_TIMEOUT * 100):
        if condition():
            return
        await anyio.sleep(0.01)
    pytest.fail(f"still not {what} after {_TIMEOUT} s")


async def test_fake_service_unary_calls(connect: TransportFactory) -> None:
    """The served fake creates and gets a dispatch, and refuses a call without its key."""
    with FakeDispatchService(keys=["k"]) as service:
        async with serve(service) as url, connect(url) as transport:
            reply = await transport.unary(
                _methods.CREATE, _create_request(), metadata=_KEY_METADATA
            )
            created = bridge.decode_create_response(reply)
            reply = await transport.unary(
                _methods.GET, bridge.encode_get_request(1, created.id), metadata=_KEY_METADATA
            )
            assert bridge.decode_get_response(reply) == created
            with pytest.raises(transports.NotFound):
                await transport.unary(
                    _methods.GET, bridge.encode_get_request(1, 999), metadata=_KEY_METADATA
                )
            with pytest.raises(transports.Unauthenticated):
                await transport.unary(_methods.GET, bridge.encode_get_request(1, created.id))


async def test_fake_service_stream_and_unsubscribe(connect: TransportFactory) -> None:
    """A stream of the served fake delivers a CREATED event; leaving it unsubscribes."""
    with FakeDispatchService(keys=["k"]) as service:
        async with serve(service) as url, connect(url) as transport:
            async with transport.server_stream(
                _methods.STREAM, bridge.encode_stream_request(1), metadata=_KEY_METADATA
            ) as events:
                reply = await transport.unary(
                    _methods.CREATE, _create_request(), metadata=_KEY_METADATA
                )
                with anyio.fail_after(_TIMEOUT):
                    event = bridge.decode_stream_response(await anext(events))
            assert event.event is Event.CREATED
            assert event.dispatch == bridge.decode_create_response(reply)
            await _eventually(lambda: not service._subscribers, "unsubscribed")


async def test_fake_service_stream_open_when_the_server_stops(connect: TransportFactory) -> None:
    """Stopping the server with a fake's stream open ends it and unsubscribes."""
    outcome: list[BaseException] = []

    async def listen(url: str, subscribed: anyio.Event) -> None:
        async with connect(url) as transport:
            try:
                async with transport.server_stream(
                    _methods.STREAM, bridge.encode_stream_request(1), metadata=_KEY_METADATA
                ) as events:
                    subscribed.set()
                    async for _ in events:
                        pass
            except GrpcError as exc:
                outcome.append(exc)

    with FakeDispatchService(keys=["k"]) as service, anyio.fail_after(_TIMEOUT):
        async with anyio.create_task_group() as tasks, serve(service) as url:
            subscribed = anyio.Event()
            tasks.start_soon(listen, url, subscribed)
            await subscribed.wait()
            await _eventually(lambda: bool(service._subscribers), "subscribed")
        assert not any(service._subscribers.values())
        assert len(outcome) == 1, "the client saw the server go"
