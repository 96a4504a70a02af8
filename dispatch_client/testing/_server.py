"""Serve a call handler, such as `FakeDispatchService`, over real gRPC with grpclib.

`serve(handler)` listens on a TCP port and answers the six Dispatch API methods
(`dispatch_client._methods`) by calling `handler(method, request, metadata)`, the same
handler contract `transports.MemoryTransport` uses; any other method is UNIMPLEMENTED.

grpclib needs asyncio. Under asyncio the server runs in the caller's event loop. Under
trio it runs in a thread of its own with its own asyncio loop, and every call of the
handler, and every step of a stream it returns, is sent back to the caller's trio loop
through an anyio portal: the handler always runs in the loop that called `serve()`, so
it may use that loop's primitives and objects that must stay on one thread (a
`sqlite3` connection, an `anyio.Lock`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import logging
import os
import socket
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from ssl import SSLContext
from typing import Any, Protocol, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import grpclib.const
import grpclib.encoding.base
import grpclib.exceptions
import grpclib.metadata
import grpclib.protocol
import grpclib.server
import h2.exceptions

from dispatch_client._eventloop import running_library
from dispatch_client._methods import STREAMING_METHODS, UNARY_METHODS
from transports import Handler, RpcError

__all__ = ["serve"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

_STOP_TIMEOUT = 1.0
"""Seconds the handlers of cancelled calls get to finish once the server stops."""
_START_TIMEOUT = 10.0
"""Seconds the server thread (under trio) gets to start listening."""

_Message = bytes | bytearray | memoryview
Metadata = tuple[tuple[str, str | bytes], ...]

# Request headers that belong to HTTP/2 and gRPC, not to the caller's metadata.
# grpclib drops `:`-pseudo-headers, `grpc-*`, te, content-type and user-agent already;
# these two are never metadata either (the transports refuse to send them).
_NOT_METADATA = frozenset({"host", "connection"})

# Errors of sending to a client that has gone: the call simply ends.
_GONE = (grpclib.exceptions.StreamTerminatedError, h2.exceptions.StreamClosedError, ConnectionError)


# --- codecs -----------------------------------------------------------------------------


class _BytesCodec(grpclib.encoding.base.CodecBase):
    """Pass messages through as bytes; the handler encodes and decodes them.

    It claims the `proto` subtype because clients send `application/grpc+proto` (or
    plain `application/grpc`, which grpclib treats as proto).
    """

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return bytes(data)


class _RawDetailsCodec(grpclib.encoding.base.StatusDetailsCodecBase):
    """Send `RpcError.details` as given: they are a serialized `google.rpc.Status` already."""

    def encode(self, status: grpclib.const.Status, message: str | None, details: Any) -> bytes:
        return bytes(details)

    def decode(self, status: grpclib.const.Status, message: str | None, data: bytes) -> Any:
        return data


# --- the handler's side: runs in the event loop that called serve() ------------------


class _Replies:
    """The messages of one streaming reply, read in the handler's event loop.

    A lock keeps `next()` and `aclose()` apart: under trio, the server cancels a
    running `next()` and then asks for `aclose()` in two separate tasks, and closing an
    async generator while it still runs is an error.
    """

    def __init__(self, method: str, reply: AsyncIterable[_Message] | Iterable[_Message]) -> None:
        self._method = method
        self._async: AsyncIterator[_Message] | None = None
        self._sync: Iterator[_Message] | None = None
        if isinstance(reply, AsyncIterable):
            self._async = aiter(reply)
        else:
            self._sync = iter(reply)
        self._lock = anyio.Lock()
        self._closed = False

    async def next(self) -> bytes | None:
        """Return the next message, or None when the stream has ended.

        Raises:
            RpcError: What the handler's iterator raised, to end the call with.
            TypeError: When the iterator yields something other than bytes.
        """
        async with self._lock:
            if self._closed:
                return None
            if self._async is not None:
                try:
                    message = await anext(self._async)
                except StopAsyncIteration:
                    return None
            else:
                assert self._sync is not None
                # A plain iterator never yields to the loop; let other calls run.
                await anyio.lowlevel.checkpoint()
                try:
                    message = next(self._sync)
                except StopIteration:
                    return None
        if not isinstance(message, _Message):
            raise TypeError(
                f"the handler of {self._method} streamed a {type(message).__name__}, not bytes"
            )
        return bytes(message)

    async def aclose(self) -> None:
        """Close the handler's iterator (its `finally` blocks run); idempotent."""
        # Shielded: this is cleanup, and it runs while the call is being cancelled.
        with anyio.CancelScope(shield=True):
            async with self._lock:
                if self._closed:
                    return
                self._closed = True
                source: object = self._async if self._async is not None else self._sync
                try:
                    aclose = getattr(source, "aclose", None)
                    if aclose is not None:
                        await aclose()
                    else:
                        close = getattr(source, "close", None)
                        if close is not None:
                            close()
                except Exception:
                    # The client has its answer already; the server's log is the only
                    # place left to report a handler that fails to clean up.
                    _log.exception("closing the reply stream of %s failed", self._method)


class _Handoff:
    """Hands a started stream from the handler's loop to the server's call, or closes it.

    Under trio the server's call may be cancelled (client gone, server stopping) while
    the handler is still starting the stream in the other thread. The portal then drops
    the result, and nobody would ever close the stream; whichever side comes second
    closes it instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: _Replies | None = None
        self._abandoned = False

    def deliver(self, replies: _Replies) -> bool:
        """Offer the stream (handler's loop); False when the call was abandoned."""
        with self._lock:
            if self._abandoned:
                return False
            self._replies = replies
            return True

    def abandon(self) -> _Replies | None:
        """Give up on the call (server's loop); return a stream delivered meanwhile."""
        with self._lock:
            self._abandoned = True
            replies, self._replies = self._replies, None
            return replies


async def _start_call(
    handler: Handler, method: str, request: bytes, metadata: Metadata, handoff: _Handoff
) -> bytes | _Replies:
    """Call the handler and sort its answer into one message or a stream.

    Raises:
        RpcError: What the handler raised.
        TypeError: When the handler returned neither bytes nor an iterable of them.
    """
    result: Any = handler(method, request, metadata)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, _Message):
        return bytes(result)
    if isinstance(result, AsyncIterable) or (
        isinstance(result, Iterable) and not isinstance(result, str)
    ):
        replies = _Replies(method, result)
        if not handoff.deliver(replies):
            await replies.aclose()
        return replies
    raise TypeError(
        f"the handler of {method} returned {type(result).__name__}; "
        "expected bytes or an (async) iterable of bytes"
    )


# --- the bridge from grpclib's loop to the handler's loop ----------------------------


class _Invoker(Protocol):
    """Runs a coroutine function in the handler's event loop and returns its result."""

    async def run(self, func: Callable[..., Awaitable[_T]], *args: Any) -> _T: ...


class _SameLoop:
    """The handler lives in grpclib's own loop (asyncio): just await it."""

    async def run(self, func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        return await func(*args)


class _ThroughPortal:
    """The handler lives in another thread's loop (trio): go through its portal.

    Cancelling the awaiting asyncio task cancels the future, which cancels the task in
    the portal, so a call the client abandons stops in the handler too.
    """

    def __init__(self, portal: anyio.from_thread.BlockingPortal) -> None:
        self._portal = portal

    async def run(self, func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        return await asyncio.wrap_future(self._portal.start_task_soon(func, *args))


# --- grpclib's side ---------------------------------------------------------------------


async def _complete(cleanup: Awaitable[None]) -> None:
    """Await `cleanup` to its end, even if this task is cancelled meanwhile.

    grpclib may cancel a call's task more than once (the server closing, then the
    connection being lost), and a native asyncio cancellation goes through anyio's
    shields; a cleanup cut short would leave the handler's iterator open. A
    cancellation that arrived meanwhile is raised once the cleanup is done.

    Raises:
        asyncio.CancelledError: When the task was cancelled during the cleanup.
    """
    task = asyncio.ensure_future(cleanup)
    interrupted = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            interrupted = True
    if interrupted:
        raise asyncio.CancelledError
    task.result()


def _request_metadata(metadata: Any) -> Metadata:
    """Return a request's metadata as (name, value) pairs, transport headers left out."""
    if metadata is None:
        return ()
    pairs: list[tuple[str, str | bytes]] = []
    for name, value in metadata.items():
        if name.startswith((":", "grpc-")) or name in _NOT_METADATA:
            continue
        pairs.append((name, value))
    return tuple(pairs)


def _trailing_metadata(method: str, metadata: Metadata) -> list[tuple[str, str | bytes]]:
    """Keep the trailing metadata entries gRPC can carry; log and drop the others.

    One bad entry must not cost the client the status itself.
    """
    kept: list[tuple[str, str | bytes]] = []
    for pair in metadata:
        try:
            grpclib.metadata.encode_metadata([pair])
        except (TypeError, ValueError) as exc:
            _log.warning("dropping trailing metadata of %s: %s", method, exc)
        else:
            kept.append(pair)
    return kept


class _Service:
    """The grpclib service: the Dispatch methods, each answered by the handler."""

    def __init__(self, handler: Handler, invoker: _Invoker) -> None:
        self._handler = handler
        self._invoker = invoker

    def __mapping__(self) -> dict[str, grpclib.const.Handler]:
        mapping: dict[str, grpclib.const.Handler] = {}
        for method in UNARY_METHODS:
            mapping[method] = grpclib.const.Handler(
                functools.partial(self._unary, method),
                grpclib.const.Cardinality.UNARY_UNARY,
                bytes,
                bytes,
            )
        for method in STREAMING_METHODS:
            mapping[method] = grpclib.const.Handler(
                functools.partial(self._server_stream, method),
                grpclib.const.Cardinality.UNARY_STREAM,
                bytes,
                bytes,
            )
        return mapping

    async def _begin(
        self, method: str, stream: grpclib.server.Stream[bytes, bytes]
    ) -> bytes | _Replies | None:
        """Read the request and run the handler; None when the call has been answered."""
        request = await stream.recv_message()
        if request is None:
            await stream.send_trailing_metadata(
                status=grpclib.const.Status.INTERNAL,
                status_message=f"the request of {method} carried no message",
            )
            return None
        metadata = _request_metadata(stream.metadata)
        handoff = _Handoff()
        try:
            return await self._invoker.run(
                _start_call, self._handler, method, request, metadata, handoff
            )
        except Exception as exc:
            await self._fail(method, stream, exc)
            return None
        except BaseException:
            # Cancelled: a stream the handler started meanwhile is ours to close.
            leftover = handoff.abandon()
            if leftover is not None:
                await _complete(self._invoker.run(leftover.aclose))
            raise

    async def _unary(self, method: str, stream: grpclib.server.Stream[bytes, bytes]) -> None:
        reply = await self._begin(method, stream)
        if reply is None:
            return
        if isinstance(reply, _Replies):
            await _complete(self._invoker.run(reply.aclose))
            await self._fail(
                method,
                stream,
                TypeError(f"the handler of {method} returned a stream to a unary call"),
            )
            return
        with contextlib.suppress(*_GONE):
            await stream.send_message(reply)

    async def _server_stream(
        self, method: str, stream: grpclib.server.Stream[bytes, bytes]
    ) -> None:
        reply = await self._begin(method, stream)
        if reply is None:
            return
        if isinstance(reply, bytes):
            # One message, as a unary method called as a stream would answer.
            with contextlib.suppress(*_GONE):
                await stream.send_message(reply)
            return
        try:
            # Answer at once (response headers), as soon as the handler took the call:
            # a stream may stay quiet for hours, and the client counts it connected only
            # once answered (grpclib would hold the headers until the first message).
            try:
                await stream.send_initial_metadata()
            except _GONE:
                return
            while True:
                try:
                    message = await self._invoker.run(reply.next)
                except Exception as exc:
                    await self._fail(method, stream, exc)
                    return
                if message is None:
                    return
                try:
                    await stream.send_message(message)
                except _GONE:
                    return
        finally:
            # Also on cancellation (the client reset the stream, the deadline passed,
            # the server stops): the handler must see its subscriber go.
            await _complete(self._invoker.run(reply.aclose))

    async def _fail(
        self, method: str, stream: grpclib.server.Stream[bytes, bytes], exc: Exception
    ) -> None:
        """End the call with the status an exception of the handler stands for.

        An `RpcError` travels as is: status, message, details and trailing metadata.
        Anything else is a bug of the handler: it is logged here with its traceback,
        and the client gets INTERNAL with a one-line message and no traceback.
        """
        if isinstance(exc, RpcError):
            status = grpclib.const.Status(exc.status.value)
            message = exc.message
            details = exc.details
            trailing = _trailing_metadata(method, exc.trailing_metadata)
        else:
            _log.error("the handler of %s failed", method, exc_info=exc)
            status = grpclib.const.Status.INTERNAL
            message = f"the server failed to answer {method}: {type(exc).__name__}"
            details = None
            trailing = []
        with contextlib.suppress(*_GONE):
            await stream.send_trailing_metadata(
                status=status,
                status_message=message or None,
                status_details=details,
                metadata=trailing,
            )


class _TrackedProtocol(grpclib.protocol.H2Protocol):
    """grpclib's connection protocol, registering its transport while it is open."""

    def __init__(self, built: grpclib.protocol.H2Protocol, open_: set[asyncio.Transport]) -> None:
        super().__init__(built.handler, built.config, built.h2_config)
        self._open = open_
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._open.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._transport is not None:
            self._open.discard(self._transport)
        super().connection_lost(exc)


class _Server(grpclib.server.Server):
    """A grpclib server on bytes that also drops its connections when it stops.

    grpclib's `close()` stops listening and cancels the running calls but keeps the
    accepted connections open: a client would not notice that the server went away,
    and their sockets would leak.
    """

    def __init__(self, service: _Service) -> None:
        super().__init__([service], codec=_BytesCodec(), status_details_codec=_RawDetailsCodec())
        self._open: set[asyncio.Transport] = set()

    def _protocol_factory(self) -> grpclib.protocol.H2Protocol:
        # grpclib builds the protocol (and registers its request handler); we only add
        # the bookkeeping. This relies on grpclib 0.4 internals; pyproject pins < 0.5.
        return _TrackedProtocol(super()._protocol_factory(), self._open)

    async def stop(self) -> None:
        """Stop listening, cancel every call, drop every connection; ~1 s at most."""
        self.close()
        for transport in list(self._open):
            # abort(), not close(): close() first flushes the write buffer, which never
            # drains when the client has stopped reading.
            transport.abort()
        try:
            await asyncio.wait_for(self.wait_closed(), _STOP_TIMEOUT)
        except TimeoutError:
            _log.warning("calls still running %.1f s after the server stopped", _STOP_TIMEOUT)
        # An aborted transport closes its socket on a later turn of the loop.
        for _ in range(3):
            await asyncio.sleep(0)


# --- running the server -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def _serve_in_this_loop(
    handler: Handler, sock: socket.socket, ssl: SSLContext | None
) -> AsyncIterator[None]:
    """Run the server in the running asyncio loop for the duration of the block."""
    server = _Server(_Service(handler, _SameLoop()))
    try:
        await server.start(sock=sock, ssl=ssl)
    except BaseException:
        sock.close()
        raise
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await server.stop()


class _ServerThread:
    """A grpclib server in a thread with its own asyncio loop, for callers on trio."""

    def __init__(self, service: _Service, sock: socket.socket, ssl: SSLContext | None) -> None:
        self._service = service
        self._sock = sock
        self._ssl = ssl
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stop: concurrent.futures.Future[None] = concurrent.futures.Future()
        port = sock.getsockname()[1]
        # Daemon: a handler that never ends must not keep the interpreter alive.
        self._thread = threading.Thread(target=self._run, name=f"grpc-serve-{port}", daemon=True)

    def start(self) -> None:
        """Start the thread; `wait_started()` tells when it listens."""
        self._thread.start()

    def wait_started(self) -> None:
        """Block until the server listens.

        Raises:
            OSError: When the server could not start (also `RuntimeError`, `ValueError`).
            TimeoutError: When it did not start within `_START_TIMEOUT`.
        """
        self._started.result(_START_TIMEOUT)

    def stop(self) -> None:
        """Ask the server to stop, then block until its thread has ended."""
        if not self._stop.done():
            self._stop.set_result(None)
        self._thread.join()

    def _run(self) -> None:
        with asyncio.Runner() as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        server = _Server(self._service)
        try:
            await server.start(sock=self._sock, ssl=self._ssl)
        except BaseException as exc:
            self._sock.close()
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        try:
            await asyncio.wrap_future(self._stop)
        finally:
            await server.stop()


@contextlib.asynccontextmanager
async def _serve_in_a_thread(
    handler: Handler, sock: socket.socket, ssl: SSLContext | None
) -> AsyncIterator[None]:
    """Run the server in a thread of its own; the handler stays in the calling loop."""
    async with anyio.from_thread.BlockingPortal() as portal:
        thread = _ServerThread(_Service(handler, _ThroughPortal(portal)), sock, ssl)
        thread.start()
        try:
            await anyio.to_thread.run_sync(thread.wait_started)
            yield
        finally:
            # The portal must outlive the thread: the calls it cancels close their
            # streams through it.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.stop)


# --- serve() ----------------------------------------------------------------------------


_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


async def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind a TCP socket to `host` and `port` (0: a free port); asyncio listens on it.

    The socket is made with `IPPROTO_TCP` as its protocol: grpclib turns Nagle's
    algorithm off only on sockets whose `proto` says TCP, and accepted sockets inherit
    the listening socket's 0 otherwise; with Nagle on, every call waits for a delayed
    ACK (about 23 calls/s instead of 1,200).

    Raises:
        OSError: When `host` does not resolve or no address of it can be bound.
    """
    infos = await anyio.getaddrinfo(
        host or None,
        port,
        type=socket.SOCK_STREAM,
        proto=socket.IPPROTO_TCP,
        flags=socket.AI_PASSIVE,
    )
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
        try:
            if os.name != "nt":
                # Rebinding a port whose old connections linger in TIME_WAIT (a quick
                # restart); on Windows this flag would allow stealing a live port.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error if error is not None else OSError(f"{host!r} resolves to no address")


def _url(host: str, sock: socket.socket, tls: bool) -> str:
    """Build the URL that reaches the server listening on `sock`."""
    bound, port = sock.getsockname()[:2]
    # With TLS the client checks the certificate against the host name: keep it.
    name = _WILDCARDS.get(host, host) if tls else _WILDCARDS.get(bound, bound)
    if ":" in name:
        name = f"[{name}]"
    return f"grpc://{name}:{port}" if tls else f"grpc://{name}:{port}?ssl=false"


def _check_arguments(handler: object, host: object, port: object, ssl: object) -> None:
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {type(handler).__name__}")
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    if ssl is not None and not isinstance(ssl, SSLContext):
        raise TypeError(f"ssl must be an ssl.SSLContext or None, not {type(ssl).__name__}")


@contextlib.asynccontextmanager
async def serve(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl: SSLContext | None = None,
) -> AsyncIterator[str]:
    """Serve `handler` over real gRPC for the duration of the block; yield its URL.

    ```python
    async with serve(FakeDispatchService()) as url:
        async with H2Transport.from_url(url) as transport:
            ...
    ```

    The handler answers the six Dispatch API methods, with the same contract as
    `transports.MemoryTransport`: `handler(method, request, metadata)` gets the full
    method path, the request bytes and the request metadata as (name, value) pairs
    (values of `-bin` names are bytes; HTTP/2 and gRPC headers left out), and returns
    bytes, an (async) iterable of bytes for a stream, or an awaitable of either. An
    `RpcError` it raises reaches the client with its status, message, details and
    trailing metadata; any other exception is logged (logger
    `dispatch_client.testing._server`) and the client gets INTERNAL, without the
    traceback. Other methods are UNIMPLEMENTED.

    The handler runs in the caller's event loop, on asyncio and on trio alike.

    When a client cancels a stream, or its deadline passes, the handler's iterator is
    closed (`aclose()`). When the block ends, the server stops listening, cancels the
    running calls (closing their iterators) and drops every connection, within about
    a second; nothing of it outlives the block.

    Args:
        handler: Answers the calls; `FakeDispatchService` is one.
        host: The address or host name to listen on; the first address it resolves to
            is used.
        port: The TCP port; 0 picks a free one.
        ssl: A server TLS context with the server's certificate, for TLS; its ALPN
            protocols are set to `h2`, which gRPC requires. The client must trust the
            certificate (e.g. `?ssl_root_certificates_path=` in its URL).

    Yields:
        The server's URL, e.g. `grpc://127.0.0.1:54321?ssl=false`; with TLS
        `grpc://host:port`, naming `host` as given (the certificate is checked against
        it). A wildcard host (`0.0.0.0`, `::`) becomes its loopback address.

    Raises:
        OSError: When `host` does not resolve or the port cannot be bound (in use).
        TypeError, ValueError: For bad arguments, before any I/O.
        RuntimeError: Under an event loop other than asyncio or trio.
    """
    _check_arguments(handler, host, port, ssl)
    run = _serve_in_this_loop if running_library() == "asyncio" else _serve_in_a_thread
    if ssl is not None:
        ssl.set_alpn_protocols(["h2"])
    sock = await _listening_socket(host, port)
    url = _url(host, sock, ssl is not None)
    async with run(handler, sock, ssl):
        yield url
