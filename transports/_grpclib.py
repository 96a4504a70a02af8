"""`GrpclibTransport`: the `Transport` protocol on grpclib's asyncio channel.

grpclib runs on asyncio only. This is the one module of the project that calls asyncio
directly, and the only one that imports grpclib; every grpclib, h2, asyncio, ssl and OS
error is translated into the `transports` error tree by `_translate_errors`; anything
else grpclib raises on what a server sent becomes a `ProtocolError`.

`_Protocol` hardens grpclib's connection against hostile servers, as H2Transport does:
received frames are processed in bounded batches (reading pauses in between), floods
of PING, SETTINGS or empty DATA frames close the connection with ENHANCE_YOUR_CALM, a
graceful GOAWAY lets the accepted calls finish, and `-bin` values that are not base64
are dropped before grpclib would fail on them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import math
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NoReturn, Self, cast

import grpclib.client
import grpclib.config
import grpclib.const
import grpclib.encoding.base
import grpclib.exceptions
import grpclib.metadata
import grpclib.protocol
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import hyperframe.frame

from . import _wire
from ._base import BaseTransport, Metadata, ResponseStream, check_call
from ._errors import (
    Cancelled,
    ConnectError,
    DeadlineExceeded,
    GrpcError,
    ProtocolError,
    RpcError,
    Unavailable,
    error_for_status,
)
from ._url import ChannelOptions, parse_url

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH", "GrpclibTransport"]

DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH = _wire.DEFAULT_MAX_MESSAGE_LENGTH
"""The largest response message accepted unless told otherwise: 4 MiB, as H2Transport.

The client picks a transport by event loop, so both must accept the same messages."""

DEFAULT_CONNECT_TIMEOUT = 20.0
"""Seconds allowed to open a connection (TCP, TLS and the server's HTTP/2 SETTINGS)."""

_GOAWAY_MARK = "_transports_goaway_unprocessed"
"""Attribute set on grpclib's streams above a GOAWAY's last stream id: the server's words."""

_DEAD_MARK = "_transports_keep_alive_failed"
"""Attribute set on grpclib's connection when our keep-alive declared it dead: why."""

_CLOSE_TIMEOUT = 1.0
"""Seconds `aclose()` waits for the connection to finish closing before aborting it.

A plain socket closes at once; TLS waits for the peer's close_notify, which some
servers never send (grpcio with client certificates, for one)."""


class _BytesCodec(grpclib.encoding.base.CodecBase):
    """Pass request messages through as bytes.

    The subtype is `proto` so requests carry `application/grpc` and servers that
    check the content type accept them: the bytes are serialized protobuf. Responses
    are read by `_recv_message`, which does not use the codec.
    """

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return data


class _BytesDetailsCodec(grpclib.encoding.base.StatusDetailsCodecBase):
    """Keep `grpc-status-details-bin` as the raw bytes; decoding it is the caller's job."""

    def encode(self, status: grpclib.const.Status, message: str | None, details: Any) -> bytes:
        return bytes(details)

    def decode(self, status: grpclib.const.Status, message: str | None, data: bytes) -> Any:
        return data


def _tolerate_frames_after_goaway(connection: h2.connection.H2Connection) -> None:
    """Keep `connection` reading frames after a GOAWAY.

    `h2` closes its state machine on GOAWAY and raises on any later frame of the same
    read (a WINDOW_UPDATE right behind it, as grpcio sends), losing the GOAWAY event
    itself; grpclib would then report a protocol error instead of the server going
    away. grpclib closes the connection on the GOAWAY event anyway.
    """
    table: dict[type, Callable[[Any], Any]] = connection._frame_dispatch_table
    receive_goaway = table[hyperframe.frame.GoAwayFrame]

    def goaway(frame: Any) -> Any:
        result = receive_goaway(frame)
        connection.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return result

    table[hyperframe.frame.GoAwayFrame] = goaway


class _SlotQueue:
    """grpclib's `stream_close_waiter` event, replaced: one wake-up per freed slot, in order.

    A call that finds every stream slot taken (the server's
    SETTINGS_MAX_CONCURRENT_STREAMS) clears this and waits on it, and grpclib sets it
    whenever a stream closes. As an event, each freed slot woke every waiting call and all
    but one went back to waiting: quadratic under a burst (4,000 calls over 100 slots took
    7-15 s). Here a freed slot wakes the longest-waiting call only. A woken call that finds
    the slot taken after all (a new call got there first) waits again at the front; one
    cancelled after its wake-up passes the wake-up on. When the connection ends, every
    waiting call is woken to learn so.
    """

    def __init__(self) -> None:
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        # The task woken last, until the end of its current step: grpclib retries at
        # once (no await in between), so a call back here within that step lost its slot.
        self._retrying: asyncio.Task[Any] | None = None
        self.wake_ups = 0
        """How many waiting calls were woken (for tests: one per freed slot, not per waiter)."""

    def clear(self) -> None:
        """Nothing to clear: grpclib clears the event before each wait."""

    async def wait(self) -> None:
        """Wait for a freed slot, in order of arrival."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        task = asyncio.current_task()
        if task is not None and task is self._retrying:
            self._waiters.appendleft(future)
        else:
            self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.set()  # woken, then cancelled: the slot goes to the next call
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(future)
            raise
        self._retrying = task
        loop.call_soon(self._forget, task)

    def _forget(self, task: asyncio.Task[Any] | None) -> None:
        if self._retrying is task:
            self._retrying = None

    def set(self) -> None:
        """A stream closed: wake the longest-waiting call."""
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                self.wake_ups += 1
                return

    def wake_all(self) -> None:
        """The connection is ending: wake every waiting call."""
        while self._waiters:
            self.set()


class _Protocol(grpclib.protocol.H2Protocol):
    """grpclib's connection protocol, checking the server's preface and tracking the socket.

    h2 buffers a frame until its whole announced length has arrived, so a server that
    answers in another protocol (say HTTP/1.1, read as a 4 MB frame) would stall the
    connection forever; the first nine bytes are checked here instead.

    It also tells apart, on GOAWAY, the calls the server never saw (above its last
    stream id: `Unavailable`) from those it may have processed; grpclib ends them all
    alike.
    """

    def __init__(
        self,
        *args: Any,
        keep_alive: tuple[float, float] | None = None,
        on_too_many_pings: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(*args)
        self._on_too_many_pings = on_too_many_pings
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._keep_alive = keep_alive
        self._ping_id = 0
        self._next_ping: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self.settled: asyncio.Future[None] = loop.create_future()
        """Done once the server's first frame is known to be SETTINGS, or it failed."""
        self.failure: GrpcError | None = None
        """Why the connection is unusable, when `settled` says so."""
        self.violation: str | None = None
        """How the server broke HTTP/2, once it did (the connection is closed then)."""
        self._head = b""
        self._gate = _wire.FrameGate()
        self._batches: collections.deque[bytes] = collections.deque()
        self._batch_scheduled = False
        self._paused = False

    @property
    def _slots(self) -> _SlotQueue:
        return cast(_SlotQueue, self.connection.stream_close_waiter)

    @property
    def open(self) -> bool:
        """Whether the connection was made and its socket is not closed yet."""
        return self.transport is not None and not self.lost.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):
            self.transport = transport
        super().connection_made(transport)
        self.connection.stream_close_waiter = _SlotQueue()  # type: ignore[assignment]
        _tolerate_frames_after_goaway(self.connection._connection)
        processor = self.processor
        on_goaway = cast(
            Callable[[h2.events.ConnectionTerminated], None],
            processor.processors[h2.events.ConnectionTerminated],
        )

        def goaway(event: h2.events.ConnectionTerminated) -> None:
            last = int(event.last_stream_id or 0)
            unseen = [s for stream_id, s in processor.streams.items() if stream_id > last]
            # grpclib ends every stream alike (and again when the socket closes);
            # mark those the server says it never processed, for `_map_exception`.
            for stream in unseen:
                setattr(
                    stream,
                    _GOAWAY_MARK,
                    f"last stream id {last}, HTTP/2 error {int(event.error_code or 0):#x}",
                )
            if (
                event.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
                and event.additional_data == b"too_many_pings"
                and self._on_too_many_pings is not None
            ):
                self._on_too_many_pings()
            accepted = [s for stream_id, s in processor.streams.items() if stream_id <= last]
            if not accepted:
                on_goaway(event)
                return
            # A graceful GOAWAY: grpclib would close the connection under the calls the
            # server accepted and is still answering. Fail only the unseen ones, and
            # send new calls to a new connection; the server closes this one when done.
            self.handler.close()
            for stream in unseen:
                stream.__terminated__("Received GOAWAY frame")
            # Calls waiting for a slot here would wait for the accepted calls to end.
            self._slots.wake_all()

        processor.processors[h2.events.ConnectionTerminated] = goaway
        on_ping_ack = cast(
            Callable[[h2.events.PingAckReceived], None],
            processor.processors[h2.events.PingAckReceived],
        )

        def ping_acked(event: h2.events.PingAckReceived) -> None:
            self._ping_answered(int.from_bytes(event.ping_data or b"", "big"))
            on_ping_ack(event)

        processor.processors[h2.events.PingAckReceived] = ping_acked
        if self._keep_alive is not None:
            self._next_ping = self._loop.call_later(self._keep_alive[0], self._ping)

    # --- keep-alive -----------------------------------------------------------------
    # Our own, not grpclib's: grpclib spaces PINGs at least 300 s apart and stops after
    # two without request data in between, so a dead peer under a quiet stream went
    # unnoticed for minutes. Here a PING goes out every interval while calls are in
    # flight, and only its ACK proves the peer alive.

    def _ping(self) -> None:
        self._next_ping = None
        if not self.open or self._keep_alive is None:
            return
        interval, timeout = self._keep_alive
        h2_conn = self.connection._connection
        if not any(not stream.closed for stream in h2_conn.streams.values()):
            # Ping only with calls in flight, as gRPC does (servers punish idle pings).
            self._next_ping = self._loop.call_later(interval, self._ping)
            return
        self._ping_id += 1
        try:
            h2_conn.ping(self._ping_id.to_bytes(8, "big"))
            self.connection.flush()
        except Exception:  # a closing connection: its calls learn why elsewhere
            return
        self._ping_deadline = self._loop.call_later(timeout, self._ping_unanswered)

    def _ping_answered(self, ping_id: int) -> None:
        if self._ping_deadline is None or ping_id != self._ping_id or self._keep_alive is None:
            return
        self._ping_deadline.cancel()
        self._ping_deadline = None
        self._next_ping = self._loop.call_later(self._keep_alive[0], self._ping)

    def _ping_unanswered(self) -> None:
        self._ping_deadline = None
        if self._keep_alive is None or self.transport is None:
            return
        reason = f"the server did not answer a keep-alive PING within {self._keep_alive[1]:g} s"
        setattr(self.connection, _DEAD_MARK, reason)
        # Abort, not close: close() waits for unsent data that a dead peer never takes.
        self.transport.abort()

    def _stop_keep_alive(self) -> None:
        for handle in (self._next_ping, self._ping_deadline):
            if handle is not None:
                handle.cancel()
        self._next_ping = self._ping_deadline = None

    def data_received(self, data: bytes) -> None:
        if not self.settled.done():
            self._head += data[: 9 - len(self._head)]
            if len(self._head) == 9:
                problem = _wire.server_preface_problem(self._head)
                if problem is not None:
                    self._settle(ProtocolError(problem))
                    if self.transport is not None:
                        self.transport.abort()
                    return
                self._settle(None)
        # Bounded batches (`_wire.FrameGate`): between two, reading pauses and the loop
        # runs other callbacks, so a flood of tiny frames cannot starve the program.
        self._batches.extend(self._gate.feed(data, time.monotonic()))
        if not self._batch_scheduled:
            self._process_batch()

    def _process_batch(self) -> None:
        self._batch_scheduled = False
        if not self._batches or self._closed:
            self._batches.clear()
            return
        self._feed(self._batches.popleft())
        if self._gate.abuse is not None:
            self._calm(self._gate.abuse)
            return
        if self._batches and not self._closed:
            self._batch_scheduled = True
            if self.transport is not None and not self._paused:
                self._paused = True
                self.transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._process_batch)
        elif self._paused and not self._closed and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    @property
    def _closed(self) -> bool:
        """Whether grpclib closed the connection (it drops the transport then)."""
        return not hasattr(self.connection, "_transport")

    def _feed(self, data: bytes) -> None:
        """grpclib's `data_received`, hardened.

        grpclib goes on processing events and flushing after a GOAWAY closed the
        connection (an AttributeError on its dropped transport), closes a connection
        whose peer broke HTTP/2 without telling the peer, and reads an empty DATA
        frame as the end of the response, and fails on events it has no use for (an
        unknown frame type); this stops at the close, sends h2's GOAWAY first, passes
        empty DATA by (its window, padding only, is given back) and ignores the rest.
        """
        if self._closed:
            return  # closed by a GOAWAY already: what follows concerns no call of ours
        try:
            events = self.connection.feed(data)
        except Exception as exc:  # h2's ProtocolError, or a header that is not ASCII
            self.violation = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                self.connection.flush()  # h2's GOAWAY, telling the server why
            self.processor.close(f"Protocol error: {self.violation}")
            return
        for event in events:
            if self._closed:
                return
            if isinstance(event, h2.events.DataReceived) and not event.data:
                with contextlib.suppress(h2.exceptions.H2Error):
                    padding = event.flow_controlled_length or 0
                    self.connection.ack(int(event.stream_id or 0), padding)
                continue
            if type(event) not in self.processor.processors:
                # An unknown frame type, an informational (1xx) response, ALTSVC...:
                # HTTP/2 says to ignore them; grpclib raises NotImplementedError.
                continue
            if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                # grpclib would raise binascii.Error on a `-bin` value that is not
                # base64; drop it, as `_wire.decode_metadata` does on H2Transport.
                event.headers = _drop_bad_bin(event.headers or [])
            self.processor.process(event)
        if not self._closed:
            self.connection.flush()

    def _calm(self, what: str) -> None:
        """Close a flooding server's connection with GOAWAY(ENHANCE_YOUR_CALM)."""
        self.violation = f"the server flooded the connection with {what} frames"
        self._batches.clear()
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self.connection._connection.close_connection(error_code=_wire.ENHANCE_YOUR_CALM)
            self.connection.flush()
        self.processor.close(f"Protocol error: {self.violation}; closed with ENHANCE_YOUR_CALM")

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.transport is not None and self.transport.get_extra_info("sslcontext"):
            # Over TLS 1.3 a server rejects our client certificate only after the
            # handshake: a connect failure, not a server speaking another protocol.
            self._settle(
                ConnectError(
                    "the TLS connection ended before the server's HTTP/2 SETTINGS "
                    f"(was the client certificate refused?): {exc or 'closed'}"
                )
            )
        self._settle(
            ProtocolError(
                "the server closed the connection before its HTTP/2 SETTINGS; is it gRPC?"
            )
        )
        self._stop_keep_alive()
        slots = getattr(getattr(self, "connection", None), "stream_close_waiter", None)
        if isinstance(slots, _SlotQueue):
            slots.wake_all()
        if self.violation is not None:
            # grpclib would end the calls again, now as "Connection lost"; keep the why.
            self.processor.close(f"Protocol error: {self.violation}")
        else:
            super().connection_lost(exc)
        if not self.lost.done():
            self.lost.set_result(None)

    def _settle(self, failure: GrpcError | None) -> None:
        if not self.settled.done():
            self.failure = failure
            self.settled.set_result(None)


class _Channel(grpclib.client.Channel):
    """A grpclib channel that bounds connecting and keeps its connections for closing."""

    def __init__(
        self,
        *args: Any,
        connect_timeout: float,
        keep_alive: tuple[float, float] | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # grpclib turns h2's header checks off; a response without :status, or with it
        # twice, then fails deep inside grpclib (KeyError) or passes. With them on,
        # such a response is a protocol error, as on H2Transport.
        self._h2_config.validate_inbound_headers = True
        self.protocols: list[_Protocol] = []
        self._connect_timeout = connect_timeout
        self._keep_alive = keep_alive

    def _protocol_factory(self) -> grpclib.protocol.H2Protocol:
        protocol = _Protocol(
            grpclib.client.Handler(),
            self._config,
            self._h2_config,
            keep_alive=self._keep_alive,
            on_too_many_pings=self._fewer_pings,
        )
        self.protocols = [p for p in self.protocols if p.open]
        self.protocols.append(protocol)
        return protocol

    def _fewer_pings(self) -> None:
        """The server asked for fewer PINGs (GOAWAY too_many_pings): as gRPC clients do,
        the next connection pings half as often."""
        if self._keep_alive is not None:
            interval, timeout = self._keep_alive
            self._keep_alive = (interval * 2, timeout)

    async def _create_connection(self) -> grpclib.protocol.H2Protocol:
        """Connect, and wait for the server's SETTINGS, within the connect timeout."""
        protocol: grpclib.protocol.H2Protocol | None = None
        limit = asyncio.timeout(self._connect_timeout)
        try:
            async with limit:
                protocol = await super()._create_connection()
                assert isinstance(protocol, _Protocol)
                await asyncio.shield(protocol.settled)
        except BaseException as exc:
            # Whatever ended the attempt (our timeout, the call's deadline, a
            # cancellation), its socket goes with it: grpclib would leave it open, and
            # unused, for as long as the channel lives.
            if isinstance(protocol, _Protocol) and protocol.transport is not None:
                protocol.transport.abort()
            if not isinstance(exc, TimeoutError) or not limit.expired():
                raise
            raise ConnectError(
                f"no HTTP/2 connection to {self._authority} within {self._connect_timeout} s"
            ) from None
        if protocol.failure is not None:
            failure = protocol.failure
            raise type(failure)(f"{self._authority}: {failure}")
        if getattr(protocol.handler, "connection_lost", False):
            # The server's first SETTINGS came with a GOAWAY (a server shutting down):
            # grpclib closed the connection already and would fail on it.
            raise Unavailable(
                f"{self._authority} closed the connection as it opened (GOAWAY); the "
                "server did not process the request, so a retry is safe"
            ).unprocessed()
        return protocol

    async def aclose(self) -> None:
        """Close the connection and wait until its socket is closed."""
        pending = [p for p in self.protocols if p.open]
        self.close()
        for protocol in pending:
            # close() waits for unsent data to drain, which a dead peer never takes;
            # data of calls being abandoned is not worth waiting for.
            if protocol.transport is not None and protocol.transport.get_write_buffer_size():
                protocol.transport.abort()
        if not pending:
            return
        try:
            await asyncio.wait_for(
                asyncio.gather(*(p.lost for p in pending)), timeout=_CLOSE_TIMEOUT
            )
        except TimeoutError:
            # A TLS peer that never answers close_notify must not hold us up.
            for protocol in pending:
                if protocol.transport is not None:
                    protocol.transport.abort()


class GrpclibTransport(BaseTransport):
    """gRPC over grpclib's asyncio channel: one HTTP/2 connection, opened on first use.

    Build it with `from_url()`. It runs on asyncio only: under trio, or outside a
    running asyncio loop, every call raises `RuntimeError` at once (use `H2Transport`
    there). The connection belongs to the event loop of the first call; after it is
    lost, the next call opens a new one.

    Errors: a status from the server raises its `RpcError`, and so does a stream the
    server reset (RST_STREAM codes map to statuses as gRPC says). A connection that
    cannot be opened within `connect_timeout`, or is lost under a call that got no
    status, raises `ConnectError` (its message says whether the server may have
    processed the request). A server that does not speak HTTP/2, or a peer breaking
    HTTP/2 or gRPC, raises `ProtocolError`. A call the server said it did not process
    raises `Unavailable`: a refused stream (REFUSED_STREAM), repeated transparently
    `_wire.REFUSED_STREAM_RETRIES` times at most within the deadline while nothing of
    the response has arrived, or a call above a GOAWAY's last stream id. After
    `aclose()`, calls raise `Cancelled`, and so do calls still running when the
    transport closes.
    """

    def __init__(
        self,
        options: ChannelOptions,
        *,
        max_receive_message_length: int = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        """Prepare a transport; nothing connects until the first call.

        Args:
            options: Where and how to connect, e.g. from `parse_url()`.
            max_receive_message_length: The largest response message accepted, in
                bytes; a larger one fails the call with `ResourceExhausted`.
            connect_timeout: Seconds allowed to open a connection (TCP, TLS and the
                server's HTTP/2 SETTINGS); past it the call fails with `ConnectError`.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: If a limit is out of range, or the TLS files of `options`
                cannot be loaded.
        """
        if not isinstance(options, ChannelOptions):
            raise TypeError(f"options must be ChannelOptions, not {type(options).__name__}")
        if isinstance(max_receive_message_length, bool) or not isinstance(
            max_receive_message_length, int
        ):
            raise TypeError("max_receive_message_length must be an int")
        if max_receive_message_length < 0:
            raise ValueError("max_receive_message_length must be >= 0")
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, int | float):
            raise TypeError("connect_timeout must be a number of seconds")
        if not math.isfinite(connect_timeout) or connect_timeout <= 0:
            raise ValueError("connect_timeout must be a finite number of seconds > 0")
        self._options = options
        self._max_receive = max_receive_message_length
        self._connect_timeout = float(connect_timeout)
        # Built now, so bad certificate files are reported here and not on first call.
        self._ssl = options.ssl_context()
        # Keep-alive is ours (`_Protocol`), so grpclib's own stays off.
        self._config = grpclib.config.Configuration()
        self._keep_alive = (
            (options.keep_alive_interval, options.keep_alive_timeout)
            if options.keep_alive
            else None
        )
        self._channel: _Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_receive_message_length: int = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> Self:
        """Build a transport for a `grpc://host[:port][?options]` URL.

        Args:
            url: The server URL; `transports.parse_url` documents its options
                (TLS on by default, root CA and client certificate files, keep-alive).
            max_receive_message_length: The largest response message accepted, in
                bytes (16 MiB unless given); a larger one raises `ResourceExhausted`.
            connect_timeout: Seconds allowed to open a connection (20 unless given);
                past it the call raises `ConnectError`.

        Returns:
            A transport that connects on its first call.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: For a malformed URL, unknown or contradictory options, TLS
                files that cannot be loaded, or a bad limit.
        """
        return cls(
            parse_url(url),
            max_receive_message_length=max_receive_message_length,
            connect_timeout=connect_timeout,
        )

    def __repr__(self) -> str:
        scheme = "TLS" if self._options.ssl else "plain"
        return f"<GrpclibTransport {self._options.authority} {scheme}>"

    async def unary(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> bytes:
        """Make a unary-unary call and return the response message.

        Args:
            method: The full method path, `/package.Service/Method`.
            request: The serialized request message.
            metadata: Request metadata as (name, value) pairs.
            timeout: Seconds until the deadline, sent to the server and enforced here.

        Returns:
            The serialized response message.

        Raises:
            RpcError: The call ended with a non-OK status (a subclass per status;
                `DeadlineExceeded` also when the local deadline passed, `Cancelled`
                when the transport is or gets closed).
            TransportError: The call got no status (`ConnectError`, `ProtocolError`).
            RuntimeError: No asyncio event loop is running (e.g. under trio).
            TypeError, ValueError: For malformed arguments, before any I/O.
        """
        pairs = check_call(method, request, metadata, timeout)
        channel = self._channel_for_call()
        # One deadline for every attempt: a transparent retry does not extend it.
        deadline = None if timeout is None else grpclib.metadata.Deadline.from_timeout(timeout)
        refused = 0
        while True:
            stream = channel.request(
                method,
                grpclib.const.Cardinality.UNARY_UNARY,
                bytes,
                bytes,
                deadline=deadline,
                metadata=pairs,
            )
            try:
                return await self._unary_once(stream, method, bytes(request))
            except Unavailable as exc:
                # A refused stream was never processed, so sending it again is safe.
                if not _was_refused(exc, stream):
                    raise
                refused += 1
                pause = _wire.refused_retry_pause(refused, _time_left(deadline))
                if pause is None:
                    raise
                await asyncio.sleep(pause)

    async def _unary_once(
        self, stream: grpclib.client.Stream[bytes, bytes], method: str, request: bytes
    ) -> bytes:
        """Make one attempt at a unary call on a new `stream`."""
        with _translate_errors(self, stream):
            async with stream:
                try:
                    await stream.send_message(request, end=True)
                    reply = await _recv_message(stream, self._max_receive)
                    if reply is not None and await _recv_message(stream, self._max_receive):
                        raise ProtocolError(f"{method} sent more than one response message")
                    _check_trailers(stream)
                except BaseException:
                    # Cancelled or failed before the answer: tell the server to stop.
                    _cancel(stream)
                    raise
            if reply is None:
                raise ProtocolError(f"{method} ended with status OK but sent no response message")
            return reply

    @contextlib.asynccontextmanager
    async def server_stream(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> AsyncIterator[ResponseStream]:
        """Start a unary-stream call; iterate the context's value for the responses.

        Leaving the block before the stream ended cancels the call on the wire
        (RST_STREAM with CANCEL). Raises as `unary()` does, on entering the block or
        while iterating; exceptions raised by the block itself pass through unchanged.
        """
        pairs = check_call(method, request, metadata, timeout)
        channel = self._channel_for_call()
        # One deadline for every attempt: a transparent repeat does not extend it.
        deadline = None if timeout is None else grpclib.metadata.Deadline.from_timeout(timeout)
        responses = _Responses(self, channel, method, bytes(request), pairs, deadline)
        await responses.open()
        try:
            yield responses
        except BaseException as exc:
            await responses.close(exc)
            raise
        else:
            await responses.close(None)

    async def aclose(self) -> None:
        """Close the connection; running and later calls raise `Cancelled`. Idempotent."""
        self._closed = True
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.aclose()

    def _channel_for_call(self) -> _Channel:
        """Return the channel, creating it on first use; refuse to run off asyncio."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "GrpclibTransport runs on asyncio only and no asyncio event loop is "
                "running (under trio, use transports.H2Transport)"
            ) from None
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError(
                "GrpclibTransport is bound to the event loop of its first call; "
                "build one transport per event loop"
            )
        if self._closed:
            raise Cancelled("the transport is closed")
        if self._channel is None:
            self._channel = _Channel(
                self._options.host,
                self._options.port,
                codec=_BytesCodec(),
                status_details_codec=_BytesDetailsCodec(),
                ssl=self._ssl,
                config=self._config,
                connect_timeout=self._connect_timeout,
                keep_alive=self._keep_alive,
            )
        return self._channel


class _Responses(AsyncIterator[bytes]):
    """The response messages of a streaming call, errors translated.

    Until its first message arrives, a call whose stream the server refused is opened
    again (transparently, as unary calls are): nothing of it was processed or seen.
    """

    def __init__(
        self,
        transport: GrpclibTransport,
        channel: _Channel,
        method: str,
        request: bytes,
        metadata: tuple[tuple[str, str | bytes], ...],
        deadline: grpclib.metadata.Deadline | None,
    ) -> None:
        self._transport = transport
        self._channel = channel
        self._method = method
        self._request = request
        self._metadata = metadata
        self._deadline = deadline
        self._stream: grpclib.client.Stream[bytes, bytes] | None = None
        self._received = False
        self._refused = 0
        self.finished = False
        """Whether the server ended the call (all messages and the status received)."""

    async def open(self) -> None:
        """Start the call: send the request on a new stream."""
        stream = self._channel.request(
            self._method,
            grpclib.const.Cardinality.UNARY_STREAM,
            bytes,
            bytes,
            deadline=self._deadline,
            metadata=self._metadata,
        )
        with _translate_errors(self._transport, stream):
            await stream.__aenter__()
            try:
                await stream.send_message(self._request, end=True)
            except BaseException as exc:
                await stream.__aexit__(type(exc), exc, exc.__traceback__)
                raise
        self._stream = stream

    async def close(self, exc: BaseException | None) -> None:
        """End the call, cancelling it on the wire unless the server ended it."""
        stream = self._stream
        if stream is None:
            return
        if not self.finished:
            _cancel(stream)
        with _translate_errors(self._transport, stream):
            if exc is None:
                await stream.__aexit__(None, None, None)
            else:
                await stream.__aexit__(type(exc), exc, exc.__traceback__)

    async def initial_metadata(self) -> _wire.ResponseMetadata:
        """Wait for the server's response headers; return the initial metadata."""
        while True:
            try:
                return await self._head()
            except Unavailable as exc:
                await self._repeat_if_refused(exc)

    async def _head(self) -> _wire.ResponseMetadata:
        stream = self._stream
        if stream is None:
            raise RuntimeError("the call is not open: use it inside its `async with` block")
        if self.finished:
            return ()
        with _translate_errors(self._transport, stream):
            try:
                if not stream._recv_initial_metadata_done:
                    await stream.recv_initial_metadata()
            except grpclib.exceptions.GRPCError:
                self.finished = True  # a trailers-only answer with an error status
                raise
        received = stream.initial_metadata
        if received is None:
            return ()
        return tuple((str(name), value) for name, value in received.items())

    async def __anext__(self) -> bytes:
        while True:
            try:
                return await self._next()
            except Unavailable as exc:
                await self._repeat_if_refused(exc)

    async def _repeat_if_refused(self, exc: Unavailable) -> None:
        """Open the call again if the server refused it unseen; else raise `exc`."""
        if self._received or self._stream is None or not _was_refused(exc, self._stream):
            raise exc
        self._refused += 1
        pause = _wire.refused_retry_pause(self._refused, _time_left(self._deadline))
        if pause is None:
            raise exc
        old, self._stream = self._stream, None
        if old is not None:
            _cancel(old)
            with contextlib.suppress(Exception):
                await old.__aexit__(None, None, None)
        await asyncio.sleep(pause)
        await self.open()

    async def _next(self) -> bytes:
        stream = self._stream
        if self.finished or stream is None:
            raise StopAsyncIteration
        with _translate_errors(self._transport, stream):
            try:
                message = await _recv_message(stream, self._transport._max_receive)
                if message is None:
                    _check_trailers(stream)
                    await stream.recv_trailing_metadata()
            except grpclib.exceptions.GRPCError:
                # The server sent its (error) status: the call is over.
                self.finished = True
                raise
        if message is None:
            self.finished = True
            raise StopAsyncIteration
        self._received = True
        return message


async def _recv_message(stream: grpclib.client.Stream[bytes, bytes], limit: int) -> bytes | None:
    """Read the call's next response message, or None at the end of the response.

    grpclib's own reader fails with a bare AssertionError on a truncated message and
    NotImplementedError on a compressed one, and applies no size limit before buffering
    a message; this one checks the framing as H2Transport does (`_wire.message_length`).

    Raises:
        ProtocolError: The response ended inside a message, or a message is compressed
            or carries an unknown flag.
        ResourceExhausted: A message is longer than `limit`.
    """
    if not stream._recv_initial_metadata_done:
        await stream.recv_initial_metadata()
    buffer = stream._stream
    with stream._wrapper:
        try:
            prefix = await buffer.recv_data(_wire.PREFIX_LENGTH)
            if not prefix:
                return None
            if len(prefix) < _wire.PREFIX_LENGTH:
                raise AssertionError("short prefix")
            length = _wire.message_length(prefix, limit)
            if length < _READ_IN_PIECES:
                message = await buffer.recv_data(length)
                if len(message) < length:
                    raise AssertionError("short message")
            else:
                message = await _recv_large(buffer, length)
        except AssertionError as exc:
            # grpclib's buffer reached the end of the stream before `size` bytes.
            raise ProtocolError("the response ended inside a message") from exc
    stream._messages_received += 1
    return message


_READ_IN_PIECES = 256 * 1024
"""Messages from this size on are read piece by piece into a buffer of their size."""


async def _recv_large(buffer: Any, length: int) -> bytes:
    """Read a large message into a buffer of its size, without grpclib's final join.

    grpclib's own read joins every chunk of the message into a new object, so the
    chunks and the message are held at once; here each piece is copied into place as
    it arrives, and `io.BytesIO.getvalue()` hands the full buffer over without a copy.

    Raises:
        AssertionError: The response ended inside the message (as grpclib's read does).
    """
    body = io.BytesIO()
    body.seek(length - 1)
    body.write(b"\0")  # sizes the buffer once, exactly
    body.seek(0)
    remaining = length
    while remaining:
        piece = await buffer.recv_data(min(remaining, _READ_IN_PIECES))
        if not piece:
            raise AssertionError("short message")
        body.write(piece)
        remaining -= len(piece)
    return body.getvalue()


def _check_trailers(stream: grpclib.client.Stream[bytes, bytes]) -> None:
    """Refuse a response that ended without trailers, which grpclib would wait for forever.

    Called once the response's data has ended; h2 reports trailers before the end of
    the stream, so by then they are there if the server sent any.
    """
    if not stream._trailers_only and stream._stream.trailers is None:
        raise ProtocolError("the response ended without a status (no trailers)")


def _time_left(deadline: grpclib.metadata.Deadline | None) -> float | None:
    """Seconds until `deadline`, or None without one."""
    return None if deadline is None else deadline.time_remaining()


def _cancel(stream: grpclib.client.Stream[bytes, bytes]) -> None:
    """Reset a call's open HTTP/2 stream with CANCEL, so the server sees it cancelled."""
    if stream._send_request_done and not stream._cancel_done and stream._stream.closable:
        # The synchronous reset cannot be interrupted by a cancelled caller.
        stream._stream.reset_nowait(h2.errors.ErrorCodes.CANCEL)
    # Tells grpclib's exit not to wait for trailers that will never come.
    stream._cancel_done = True


@contextlib.contextmanager
def _translate_errors(
    transport: GrpclibTransport, stream: grpclib.client.Stream[bytes, bytes] | None = None
) -> Iterator[None]:
    """Translate grpclib, h2, asyncio, ssl and OS errors into the `transports` tree.

    The one place foreign errors are mapped; the original is kept as `__cause__`.
    Cancellation and errors of our own tree pass through untouched.
    """
    task = asyncio.current_task()
    cancelling = task.cancelling() if task is not None else 0
    try:
        yield
    except GrpcError as exc:
        if isinstance(exc, ConnectError | Unavailable) and _not_sent(stream):
            exc.unprocessed()
        raise
    except Exception as exc:
        # grpclib wakes a waiting call by cancelling its task (deadline, reset,
        # connection loss) and then raises its own error instead of CancelledError;
        # undo that cancel request so anyio and asyncio.timeout see a clean task.
        if task is not None:
            for _ in range(task.cancelling() - cancelling):
                task.uncancel()
        if isinstance(exc, grpclib.exceptions.GRPCError):
            _raise_status(exc, stream)
        mapped = _map_exception(exc, transport._options, stream)
        if transport._closed and isinstance(mapped, ConnectError):
            # Our own aclose() cut the connection under the call.
            mapped = Cancelled("the transport was closed")
        if mapped is None:
            # Anything else is grpclib (or h2) failing on what the server sent: the
            # arguments were checked before any I/O, so it is no bug of the caller's.
            mapped = ProtocolError(
                f"{transport._options.authority}: the response could not be processed "
                f"({type(exc).__name__}: {exc})"
            )
        if isinstance(mapped, GrpcError) and _not_sent(stream):
            mapped.unprocessed()
        raise mapped from exc


def _drop_bad_bin(headers: Any) -> list[tuple[Any, Any]]:
    """A header block without the `-bin` values (or comma-joined parts) that are not base64."""
    kept: list[tuple[Any, Any]] = []
    for name, value in headers:
        if isinstance(name, str) and name.endswith("-bin") and isinstance(value, str):
            parts = [part for part in value.split(",") if _wire.is_base64(part.encode("ascii"))]
            if not parts:
                continue
            value = ",".join(parts)
        kept.append((name, value))
    return kept


def _not_sent(stream: grpclib.client.Stream[bytes, bytes] | None) -> bool:
    """Whether nothing of the call's request left us (so the server cannot have it)."""
    return stream is not None and not stream._send_request_done


def _raise_status(
    exc: grpclib.exceptions.GRPCError, stream: grpclib.client.Stream[bytes, bytes] | None
) -> NoReturn:
    """Raise the `RpcError` for a status grpclib reported."""
    from_headers = _trailers_only_status(exc, stream)
    if from_headers is not None:
        raise from_headers from exc
    if exc.status is grpclib.const.Status.UNKNOWN and (exc.message or "").startswith(
        ("Invalid grpc-status", "Missing grpc-status")
    ):
        # No usable status: H2Transport reports the same (`_wire.parse_trailers`).
        raise ProtocolError(f"the server's trailers carry no valid status: {exc.message}") from exc
    if exc.status is grpclib.const.Status.UNKNOWN and "content-type" in (exc.message or ""):
        # A 200 answer that is not gRPC carries no status: the peer broke the protocol
        # (H2Transport reports the same from `_wire.parse_response_headers`).
        raise ProtocolError(f"the server's answer is not gRPC: {exc.message}") from exc
    trailing: list[tuple[str, str | bytes]] = []
    received = getattr(stream, "trailing_metadata", None) if stream is not None else None
    if received is not None:
        trailing = [(str(name), value) for name, value in received.items()]
    details = exc.details if isinstance(exc.details, bytes) else None
    raise error_for_status(exc.status.value, exc.message or "", details, trailing) from exc


def _trailers_only_status(
    exc: grpclib.exceptions.GRPCError, stream: grpclib.client.Stream[bytes, bytes] | None
) -> RpcError | None:
    """Read the status of a trailers-only response that grpclib refused for its content type.

    Some servers (grpclib's own, for unknown methods) answer trailers-only without a
    content-type; grpclib then reports UNKNOWN although the headers carry the real
    `grpc-status`, which is what other gRPC clients go by.
    """
    if exc.status is not grpclib.const.Status.UNKNOWN or "content-type" not in (exc.message or ""):
        return None
    headers = getattr(getattr(stream, "_stream", None), "headers", None)
    if not headers:
        return None
    values = dict(headers)
    try:
        code = int(values["grpc-status"])
    except (KeyError, ValueError):
        return None
    if code == 0:
        return None
    message = grpclib.metadata.decode_grpc_message(values.get("grpc-message", ""))
    details_bin = values.get("grpc-status-details-bin")
    details = grpclib.metadata.decode_bin_value(details_bin.encode()) if details_bin else None
    trailing = [(str(k), v) for k, v in grpclib.metadata.decode_metadata(headers).items()]
    return error_for_status(code, message, details, trailing)


def _was_refused(error: Unavailable, stream: grpclib.client.Stream[bytes, bytes]) -> bool:
    """Whether `error` says the server refused `stream` (REFUSED_STREAM) before answering.

    A refusal after the response headers contradicts itself (the server started
    answering), so such a call is not repeated.
    """
    cause = error.__cause__
    return (
        isinstance(cause, grpclib.exceptions.StreamTerminatedError)
        and str(cause).endswith(f"error_code: {h2.errors.ErrorCodes.REFUSED_STREAM.value}")
        and stream._stream.headers is None
    )


def _map_exception(
    exc: Exception,
    options: ChannelOptions,
    stream: grpclib.client.Stream[bytes, bytes] | None = None,
) -> Exception | None:
    """Return the `transports` error for a foreign exception, or None to re-raise it."""
    where = options.authority
    if isinstance(exc, TimeoutError) and exc.errno is None:
        # grpclib's deadline timer raises a bare asyncio.TimeoutError.
        return DeadlineExceeded("the deadline passed before the call completed (local)")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ConnectError(f"TLS with {where} failed: {exc}")
    if isinstance(exc, grpclib.exceptions.StreamTerminatedError):
        reason = str(exc)
        goaway = getattr(stream._stream, _GOAWAY_MARK, None) if stream is not None else None
        if goaway is not None:
            return Unavailable(
                f"{where} is going away (GOAWAY, {goaway}); the server did not process "
                "the request, so a retry is safe"
            ).unprocessed()
        if reason.startswith("Stream reset by remote party, error_code: "):
            # The reset's code stands for a status, as the gRPC spec maps them
            # (REFUSED_STREAM is UNAVAILABLE: the server did not process the call).
            try:
                code = int(reason.rpartition(" ")[2])
            except ValueError:
                return ProtocolError(f"{where} reset the stream: {reason}")
            status = _wire.status_for_reset(code)
            error = error_for_status(status.code, f"{where}: {status.message}")
            if code == h2.errors.ErrorCodes.REFUSED_STREAM:
                error.unprocessed()
            return error
        if reason.startswith("Protocol error"):
            detail = reason.removeprefix("Protocol error").removeprefix(": ")
            return ProtocolError(
                f"{where} broke the HTTP/2 protocol" + (f": {detail}" if detail else "")
            )
        dead = None
        if stream is not None:
            dead = getattr(stream._stream.connection, _DEAD_MARK, None)
        if dead is not None:
            reason = dead
        if stream is not None and not stream._send_request_done:
            processed = "the request was not sent, so it was not processed"
        else:
            processed = "the server may have processed the request"
        return ConnectError(f"the connection to {where} was lost ({reason}); {processed}")
    if isinstance(exc, ConnectionError | OSError):
        return ConnectError(f"cannot reach {where}: {exc}")
    if isinstance(exc, grpclib.exceptions.ProtocolError | h2.exceptions.H2Error):
        return ProtocolError(f"{where} broke the HTTP/2 or gRPC protocol: {exc}")
    return None
