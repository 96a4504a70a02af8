"""Real gRPC servers on loopback for the transport tests: one on grpclib, one on grpcio.

Both serve the same tiny service, `/peer.Test/<Method>`, on bytes (no protobuf):

* `Echo`: returns the request; records the request metadata.
* `Stream`: request `"COUNT:SIZE"` -> COUNT messages, message i is `stream_message(i, SIZE)`.
* `Fail`: request `"CODE:MESSAGE"` -> ends with that status and message, the status details
  `b"details-" + MESSAGE` and the trailing metadata `fail-trailer: yes`, sent trailers-only.
* `Deadline`: returns the seconds left until the deadline the server saw, as text
  (`"none"` without one); also kept in `Peer.last_deadline`.
* `Sleep`: request `"SECONDS"` -> sleeps that long, then returns `b"slept"`; sets
  `Peer.cancelled` if the call ends first (client cancellation or deadline).
* `Endless`: streams `b"tick"` messages until the client goes away, then sets
  `Peer.cancelled`.
* `Big`: request `"N"` -> one message of N bytes.

Each server runs in its own thread (grpclib on its own asyncio loop), so tests on
asyncio and on trio can use them alike. grpcio's message size limits are raised to
16 MiB both ways; grpclib has none.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import grpc
import grpclib.const
import grpclib.encoding.base
import grpclib.exceptions
import grpclib.protocol
import grpclib.server

__all__ = [
    "MAX_MESSAGE",
    "SERVICE",
    "Peer",
    "grpcio_peer",
    "grpclib_peer",
    "method",
    "stream_message",
]

SERVICE = "peer.Test"
MAX_MESSAGE = 16 * 1024 * 1024
"""The largest message either server accepts or sends."""
_TICK = 0.005
"""Pause between `Endless` messages, so a forgotten stream does not burn a core."""
_START_TIMEOUT = 10.0


def method(name: str) -> str:
    """Return the full path of a test service method, e.g. `/peer.Test/Echo`."""
    return f"/{SERVICE}/{name}"


def stream_message(index: int, size: int) -> bytes:
    """Return message `index` of a `Stream` call: `b"<index>:"` padded with `x` to `size`.

    When `size` is smaller than the `<index>:` prefix, the message is the prefix alone.
    """
    return f"{index}:".encode().ljust(size, b"x")


@attrs.define(eq=False)
class Peer:
    """A running test server and what it observed.

    Attributes:
        port: The TCP port it listens on, on 127.0.0.1.
        tls: Whether it speaks TLS.
        root_certificates: The CA file its URL names, for TLS peers.
        cancelled: Set when an `Endless` call saw its client go away.
        last_deadline: Seconds left until the deadline of the last `Deadline` call, as
            the server saw it; None when that call carried no deadline.
        last_metadata: The request metadata of the last `Echo` call as (name, value)
            pairs; values of `-bin` names are bytes.
        calls: How many calls the server has started, all methods together.
        called: Set when the server starts a call.
    """

    port: int
    tls: bool = False
    root_certificates: Path | None = None
    cancelled: threading.Event = attrs.field(factory=threading.Event)
    last_deadline: float | None = None
    last_metadata: list[tuple[str, str | bytes]] = attrs.field(factory=list)
    calls: int = 0
    called: threading.Event = attrs.field(factory=threading.Event)
    stopping: threading.Event = attrs.field(factory=threading.Event, repr=False)
    _active: int = attrs.field(default=0, repr=False)
    _idle: threading.Condition = attrs.field(factory=threading.Condition, repr=False)

    @property
    def url(self) -> str:
        """The `grpc://` URL that reaches this server, trusting its CA for TLS."""
        return self.url_with(self.root_certificates)

    def url_with(self, root_certificates: Path | None) -> str:
        """Return this server's URL with `root_certificates` as the trusted CA file.

        Args:
            root_certificates: A PEM file of CAs, or None for the system store
                (ignored without TLS).

        Returns:
            `grpc://127.0.0.1:PORT?ssl=false`, or with `ssl=true` and the CA file.
        """
        base = f"grpc://127.0.0.1:{self.port}"
        if not self.tls:
            return f"{base}?ssl=false"
        if root_certificates is None:
            return f"{base}?ssl=true"
        return f"{base}?ssl=true&ssl_root_certificates_path={root_certificates}"

    def reset(self) -> None:
        """Wait for earlier calls to end (5 s at most), then forget what they recorded.

        Handlers of an earlier test may still be winding down (a cancelled `Sleep`
        noticing it); waiting keeps their traces out of the next test.
        """
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=5)
            self.cancelled.clear()
            self.last_deadline = None
            self.last_metadata = []
            self.calls = 0
            self.called.clear()

    def _call_started(self) -> None:
        with self._idle:
            self.calls += 1
            self._active += 1
        self.called.set()

    def _call_ended(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()


def _parse_pair(request: bytes) -> tuple[str, str]:
    first, _, second = request.decode().partition(":")
    return first, second


# --- grpclib ----------------------------------------------------------------------------


class _BytesCodec(grpclib.encoding.base.CodecBase):
    """Pass messages through as bytes; claims `proto` so clients' content-type matches."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return data


class _BytesDetailsCodec(grpclib.encoding.base.StatusDetailsCodecBase):
    """Send status details as the raw bytes the handler gives."""

    def encode(self, status: grpclib.const.Status, message: str | None, details: Any) -> bytes:
        return bytes(details)

    def decode(self, status: grpclib.const.Status, message: str | None, data: bytes) -> Any:
        return data


_GrpclibHandler = Callable[[grpclib.server.Stream[bytes, bytes]], Any]


class _GrpclibService:
    """The test service for grpclib's server, reporting to a `Peer`."""

    def __init__(self, peer: Peer) -> None:
        self._peer = peer

    def __mapping__(self) -> dict[str, grpclib.const.Handler]:
        unary = grpclib.const.Cardinality.UNARY_UNARY
        streaming = grpclib.const.Cardinality.UNARY_STREAM
        handlers: dict[str, tuple[_GrpclibHandler, grpclib.const.Cardinality]] = {
            "Echo": (self._echo, unary),
            "Stream": (self._stream, streaming),
            "Fail": (self._fail, unary),
            "Deadline": (self._deadline, unary),
            "Sleep": (self._sleep, unary),
            "Endless": (self._endless, streaming),
            "Big": (self._big, unary),
        }
        return {
            method(name): grpclib.const.Handler(self._tracked(func), cardinality, bytes, bytes)
            for name, (func, cardinality) in handlers.items()
        }

    def _tracked(self, handler: _GrpclibHandler) -> _GrpclibHandler:
        """Wrap a handler so the peer knows which calls are running."""

        async def tracked(stream: grpclib.server.Stream[bytes, bytes]) -> None:
            self._peer._call_started()
            try:
                await handler(stream)
            finally:
                self._peer._call_ended()

        return tracked

    async def _request(self, stream: grpclib.server.Stream[bytes, bytes]) -> bytes:
        request = await stream.recv_message()
        assert request is not None
        return request

    async def _echo(self, stream: grpclib.server.Stream[bytes, bytes]) -> None:
        request = await self._request(stream)
        assert stream.metadata is not None
        self._peer.last_metadata = list(stream.metadata.items())
        await stream.send_message(request)

    async def _stream(self, stream: grpclib.server.Stream[bytes, bytes]) -> None:
        count, size = _parse_pair(await self._request(stream))
        for index in range(int(count)):
            await stream.send_message(stream_message(index, int(size)))

    async def _fail(self, stream: grpclib.server.Stream[bytes, bytes]) -> None:
        code, message = _parse_pair(await self._request(stream))
        # Nothing was sent yet, so grpclib answers trailers-only.
        await stream.send_trailing_metadata(
            status=grpclib.const.Status(int(code)),
            status_message=message,
            status_details=b"details-" + message.encode(),
            metadata=[("fail-trailer", "yes")],
        )

    async def _deadline(self, stream: grpclib.server.Stream[bytes, bytes]) -> None:
        await self._request(stream)
        left = None if stream.deadline is None else stream.deadline.time_remaining()
        self._peer.last_deadline = left
        await stream.send_message(b"none" if left is None else repr(left).encode())

    async def _sleep(self, stream: grpclib.server.Stream[bytes, bytes]) -> None:
        try:
            seconds = float(await self._request(stream))
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            # The client reset the stream, or the deadline grpclib enforces passed.
            self._peer.cancelled.set()
            raise
        await stream.send_message(b"slept")

    async def _endless(self, stream: grpclib.server.Stream[bytes, bytes]) -> None:
        try:
            await self._request(stream)
            while True:
                await stream.send_message(b"tick")
                await asyncio.sleep(_TICK)
        except asyncio.CancelledError:
            # grpclib cancels the handler when the client resets the stream.
            self._peer.cancelled.set()
            raise
        except (grpclib.exceptions.StreamTerminatedError, ConnectionError):
            self._peer.cancelled.set()

    async def _big(self, stream: grpclib.server.Stream[bytes, bytes]) -> None:
        size = int(await self._request(stream))
        await stream.send_message(b"b" * size)


class _TrackedProtocol(grpclib.protocol.H2Protocol):
    """grpclib's server connection protocol, keeping its socket transport at hand."""

    transport: asyncio.Transport | None = None
    lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        super().connection_lost(exc)


class _ClosingServer(grpclib.server.Server):
    """A grpclib server that also drops its open connections when it closes.

    grpclib's `close()` stops listening and cancels handlers but leaves accepted
    connections open; a stopped peer must look dead to its clients (reconnect tests)
    and must leave no socket behind (`filterwarnings = error` catches ResourceWarning).
    """

    def __init__(self, peer: Peer) -> None:
        super().__init__(
            [_GrpclibService(peer)], codec=_BytesCodec(), status_details_codec=_BytesDetailsCodec()
        )
        self._protocols: list[_TrackedProtocol] = []

    def _protocol_factory(self) -> grpclib.protocol.H2Protocol:
        # As grpclib's own factory, but with a protocol that remembers its transport.
        self.__gc_step__()
        handler = grpclib.server.Handler(
            self._mapping, self._codec, self._status_details_codec, self.__dispatch__
        )
        self._handlers.add(handler)
        protocol = _TrackedProtocol(handler, self._config, self._h2_config)
        # A closing transport may still hold a socket: forget only the lost ones.
        self._protocols = [p for p in self._protocols if not p.lost]
        self._protocols.append(protocol)
        return protocol

    async def close_all(self) -> None:
        """Stop listening, cancel every handler and drop every connection."""
        self.close()
        for protocol in self._protocols:
            # abort(), not close(): close() waits for the write buffer to drain,
            # forever when the client is gone, and a stopped server sends nothing more.
            if protocol.transport is not None:
                protocol.transport.abort()
        await self.wait_closed()
        # Aborting a transport closes its socket on a later loop iteration.
        for _ in range(3):
            await asyncio.sleep(0)


async def _serve_grpclib(
    peer: Peer,
    port: int,
    tls: ssl.SSLContext | None,
    started: concurrent.futures.Future[int],
    stop: asyncio.Event,
) -> None:
    server = _ClosingServer(peer)
    # Bind here rather than in grpclib, so the chosen port is known without private API.
    # IPPROTO_TCP explicitly: grpclib turns Nagle off (TCP_NODELAY) only on sockets whose
    # `proto` says TCP, and accepted sockets inherit 0 from a socket made without it,
    # which costs every call a 40 ms delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        await server.start(sock=sock, ssl=tls)
    except BaseException as exc:
        sock.close()
        started.set_exception(exc)
        return
    started.set_result(sock.getsockname()[1])
    try:
        await stop.wait()
    finally:
        await server.close_all()


@contextlib.contextmanager
def grpclib_peer(
    port: int = 0,
    tls: ssl.SSLContext | None = None,
    *,
    root_certificates: Path | None = None,
) -> Iterator[Peer]:
    """Run the test service on a grpclib server in a thread of its own.

    Args:
        port: The port to listen on, on 127.0.0.1; 0 picks a free one.
        tls: A server TLS context (ALPN `h2`), or None for plain TCP.
        root_certificates: The CA file the peer's URL names, for TLS.

    Yields:
        The running peer; the server stops when the block ends.
    """
    peer = Peer(port=port, tls=tls is not None, root_certificates=root_certificates)
    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[int] = concurrent.futures.Future()
    stop = asyncio.Event()

    def run() -> None:
        try:
            loop.run_until_complete(_serve_grpclib(peer, port, tls, started, stop))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name=f"grpclib-peer-{port}", daemon=True)
    thread.start()
    try:
        peer.port = started.result(_START_TIMEOUT)
    except BaseException:
        thread.join(_START_TIMEOUT)
        raise
    try:
        yield peer
    finally:
        peer.stopping.set()
        loop.call_soon_threadsafe(stop.set)
        thread.join(_START_TIMEOUT)


# --- grpcio -----------------------------------------------------------------------------


class _CallTracker:
    """Follow one grpcio call: count it as running until it ends, however it ends.

    grpcio stops running a cancelled call's handler at its next step (a streaming
    generator is simply not resumed), so only the call's termination callback reliably
    sees the end, and the cancellation.

    Attributes:
        ended: Set when the call ended, for whatever reason.
        finished: Set by the handler when it has answered; a `watch_cancel` call that
            ends before that sets `peer.cancelled`.
    """

    def __init__(
        self, peer: Peer, context: grpc.ServicerContext, *, watch_cancel: bool = False
    ) -> None:
        self._peer = peer
        self._watch_cancel = watch_cancel
        self.ended = threading.Event()
        self.finished = threading.Event()
        peer._call_started()
        if not context.add_callback(self._on_end):
            self._on_end()  # it had ended already

    def _on_end(self) -> None:
        if self._watch_cancel and not self.finished.is_set() and not self._peer.stopping.is_set():
            self._peer.cancelled.set()
        self.ended.set()
        self._peer._call_ended()


def _grpcio_handlers(peer: Peer) -> grpc.GenericRpcHandler:
    """Build grpcio's generic handler for the test service, on bytes."""

    def track(context: grpc.ServicerContext) -> _CallTracker:
        return _CallTracker(peer, context)

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        track(context)
        peer.last_metadata = [(item.key, item.value) for item in context.invocation_metadata()]
        return request

    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        track(context)
        count, size = _parse_pair(request)
        for index in range(int(count)):
            yield stream_message(index, int(size))

    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        track(context)
        code, message = _parse_pair(request)
        context.set_trailing_metadata(
            (
                ("grpc-status-details-bin", b"details-" + message.encode()),
                ("fail-trailer", "yes"),
            )
        )
        # Nothing was sent yet, so grpcio answers trailers-only.
        context.abort(_GRPCIO_CODES[int(code)], message)
        raise AssertionError("abort() returned")  # pragma: no cover

    def deadline(request: bytes, context: grpc.ServicerContext) -> bytes:
        track(context)
        left = context.time_remaining()
        # grpcio reports no deadline as a huge number of seconds.
        peer.last_deadline = None if left is None or left > 1e9 else left
        return b"none" if peer.last_deadline is None else repr(peer.last_deadline).encode()

    def sleep(request: bytes, context: grpc.ServicerContext) -> bytes:
        watch = _CallTracker(peer, context, watch_cancel=True)
        seconds = float(request)
        end = time.monotonic() + seconds
        # Wake early when the call ends or the server stops, so neither waits for us.
        while not watch.ended.is_set() and not peer.stopping.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            watch.ended.wait(min(left, 0.02))
        watch.finished.set()
        return b"slept"

    def endless(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        _CallTracker(peer, context, watch_cancel=True)  # it never ends by itself
        while context.is_active() and not peer.stopping.is_set():
            yield b"tick"
            time.sleep(_TICK)

    def big(request: bytes, context: grpc.ServicerContext) -> bytes:
        track(context)
        return b"b" * int(request)

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "Deadline": grpc.unary_unary_rpc_method_handler(deadline),
            "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
            "Endless": grpc.unary_stream_rpc_method_handler(endless),
            "Big": grpc.unary_unary_rpc_method_handler(big),
        },
    )


_GRPCIO_CODES = {code.value[0]: code for code in grpc.StatusCode}


@contextlib.contextmanager
def grpcio_peer(
    port: int = 0,
    tls: tuple[bytes, bytes] | None = None,
    max_concurrent_streams: int | None = None,
    *,
    root_certificates: Path | None = None,
    client_ca: bytes | None = None,
) -> Iterator[Peer]:
    """Run the test service on a grpcio server (its own thread pool).

    Args:
        port: The port to listen on, on 127.0.0.1; 0 picks a free one.
        tls: `(private_key_pem, certificate_chain_pem)` for TLS, or None for plain TCP.
        max_concurrent_streams: The HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS it announces;
            None keeps grpcio's default (no limit).
        root_certificates: The CA file the peer's URL names, for TLS.
        client_ca: With TLS, a PEM CA that must have signed the client's certificate:
            clients without one are refused (mutual TLS).

    Yields:
        The running peer; the server stops when the block ends.

    Raises:
        OSError: When the port cannot be bound.
    """
    peer = Peer(port=port, tls=tls is not None, root_certificates=root_certificates)
    options: list[tuple[str, int]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        # Another server on the same port must fail to bind, not share it silently.
        ("grpc.so_reuseport", 0),
    ]
    if max_concurrent_streams is not None:
        options.append(("grpc.max_concurrent_streams", max_concurrent_streams))
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=64)
    server = grpc.server(executor, handlers=[_grpcio_handlers(peer)], options=options)
    address = f"127.0.0.1:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials(
                [tls], root_certificates=client_ca, require_client_auth=client_ca is not None
            )
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        executor.shutdown(wait=False)
        raise OSError(f"grpcio cannot bind {address}: {exc}") from exc
    if bound == 0:
        executor.shutdown(wait=False)
        raise OSError(f"grpcio cannot bind {address}")
    peer.port = bound
    server.start()
    try:
        yield peer
    finally:
        peer.stopping.set()
        server.stop(grace=None).wait(_START_TIMEOUT)
        executor.shutdown(wait=True)
