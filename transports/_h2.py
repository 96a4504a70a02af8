"""`H2Transport`: gRPC over our own sans-IO HTTP/2 core, on asyncio and trio.

The protocol logic is sans-IO (`transports._http2.ClientConnection` for HTTP/2,
`transports._wire` for gRPC); this module holds the call logic, and two drivers move the
bytes: on asyncio an `asyncio.Protocol` (`transports._h2_asyncio`: received bytes feed
the core in `data_received` and complete the waiting calls' futures directly, with no
reader task and no per-wait reader registration), elsewhere (trio, or any anyio
backend) an anyio byte stream read by one task per connection (`transports._h2_anyio`).
The driver is picked by the library running the transport.

Design:

* The transport owns an anyio task group, opened by `async with transport:`. Each
  connection runs one background task there: it sends the keep-alive PINGs and, with
  the anyio driver, reads the socket. Calls run in the caller's task; they wait for
  their own stream's wake-up and never read the socket.
* One connection carries all calls. It is opened lazily by the first call (calls that
  arrive meanwhile wait for that same attempt), and a new one is opened by the next call
  after the connection was lost, went away (GOAWAY) or failed its keep-alive.
* Calls wait for a free slot under the server's SETTINGS_MAX_CONCURRENT_STREAMS, first
  come first served: each freed slot is handed to the longest waiting call, which is
  the only one woken (waking them all to race for it is quadratic under load). A
  stream the server refuses anyway (REFUSED_STREAM: not processed) is repeated
  transparently, `_wire.REFUSED_STREAM_RETRIES` times at most and within the deadline,
  while nothing of its response has arrived.
* After a GOAWAY, the calls the server accepted may finish; calls above its last
  stream id fail with `Unavailable` (not processed), and new calls open a new connection.
* Keep-alive PINGs go out every interval while calls are in flight (gRPC's default;
  servers punish PINGs on idle connections); one not answered in time kills the
  connection. Only a PING's ACK counts: a server trickling bytes is not thereby alive.
  A server asking for fewer PINGs (GOAWAY "too_many_pings") gets half as many on the
  next connection.
* Flow control both ways: requests are sent as the peer's windows allow; received DATA
  is acknowledged only when the caller takes it, so a slow consumer slows the server
  down instead of filling memory.
* Leaving a call early (break, exception, cancellation, local deadline) sends
  RST_STREAM(CANCEL), so the server sees the cancellation.
* The core processes received bytes in batches of at most `_wire.FRAMES_PER_BATCH`
  frames, with other tasks running in between; a server flooding us with PING,
  SETTINGS or empty DATA frames gets GOAWAY(ENHANCE_YOUR_CALM) and its calls fail with
  `ProtocolError`.
* The hot path: a request's HEADERS come from a block cached per connection, method,
  metadata and timeout, whose repeated fields refer to the server's HPACK dynamic table
  (`_hpack.RequestTable`), go out in one write together with its DATA, and a call waits
  on one wake-up per step.

Errors at the edge: connect failures (DNS, refused, TLS, timeout) raise `ConnectError`;
a server that does not speak HTTP/2 (another protocol, or closing before its SETTINGS)
and a peer that breaks HTTP/2 or gRPC raise `ProtocolError`. A call whose connection
is lost without a status raises `ConnectError`, whose message says whether the server
may have processed the request ("may have processed" once the request went out).
`Unavailable` is kept for what the server itself said it did not process: a refused
stream (past the transparent repeats), or a GOAWAY whose last stream id is below the
call's. A closed transport fails its calls with `Cancelled`. Errors for calls the
server provably did not process (connect failures, requests never sent, refused
streams, GOAWAY below the call) have `not_processed` set.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from importlib import metadata as _metadata
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import anyio
import anyio.abc
import anyio.lowlevel

from . import _http2, _wire
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

if TYPE_CHECKING:
    import ssl

__all__ = ["H2Transport"]

DEFAULT_CONNECT_TIMEOUT = 20.0
"""Seconds to open a connection (TCP, TLS and the server's first SETTINGS)."""
DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH = _wire.DEFAULT_MAX_MESSAGE_LENGTH
"""Largest response message accepted by default: 16 MiB, so that large list pages fit
(gRPC's own default is 4 MiB). Larger messages fail the call with `ResourceExhausted`."""

# Per-stream receive window: how much one call may buffer before its consumer reads.
STREAM_WINDOW = 1024 * 1024
# Connection receive window: large, so a few stalled calls cannot starve the others;
# memory stays bounded by the per-stream windows.
CONNECTION_WINDOW = 2**30
# Bytes asked for per read. Below glibc's malloc mmap threshold (128 KiB unless a
# process raised it), so the anyio driver's read buffer comes from the heap: a larger
# one is mapped, shrunk and unmapped on every read (three syscalls and a page fault,
# about 30 us per small answer), in any process whose allocation history left the
# threshold at its default. The asyncio driver reads into one buffer of this size that
# it keeps (`asyncio.BufferedProtocol`), so it allocates nothing per read.
READ_SIZE = 64 * 1024
# Bound on writing one batch of frames and on the best-effort goodbye at close; a peer
# that stops reading for this long is declared dead.
WRITE_TIMEOUT = 20.0
CLOSE_TIMEOUT = 1.0

Driver = Literal["auto", "anyio"]
"""Which driver moves the bytes: "auto" takes the running library's (the asyncio
Protocol driver on asyncio, the anyio one elsewhere); "anyio" forces the anyio driver
(tests run it on asyncio too)."""


def _user_agent() -> str:
    try:
        version = _metadata.version("dispatch-client")
    except _metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        version = "0"
    return f"grpc-python-h2transport/{version}"


DEFAULT_USER_AGENT = _user_agent()


class Signal:
    """A reusable wake-up: `notify()` wakes every task waiting in `wait()` so far."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class _SlotWaiter:
    """A call queued for a stream slot; woken once, when a slot is handed to it or the
    connection it waits on can take no more calls."""

    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False  # a slot was reserved for this call

    def wake(self, granted: bool) -> None:
        self.granted = granted
        self.event.set()


class Stream:
    """What the connection knows about one call's HTTP/2 stream.

    `waiter` is the driver's wake-up for the call waiting on the stream (a future on
    asyncio, an anyio event otherwise); the connection wakes it whenever something
    arrives for the stream or its send window grows.
    """

    __slots__ = (
        "chunks",
        "ended",
        "error",
        "headers",
        "id",
        "refused",
        "request_done",
        "reset",
        "sent",
        "trailers",
        "waiter",
        "waiters",
    )

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.waiter: Any = None
        self.waiters: list[Any] | None = None  # more waiters than one (rare)
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.chunks: deque[tuple[bytes, int]] = deque()
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.ended = False  # END_STREAM received: the response is complete
        self.reset = False  # closed by RST_STREAM, either side
        self.refused = False  # the server reset it with REFUSED_STREAM: not processed
        self.sent = False  # some of the request may have reached the server
        self.request_done = False  # our END_STREAM went out
        self.error: GrpcError | None = None


def fresh(error: GrpcError) -> GrpcError:
    """A new exception equal to `error`, so calls never share one traceback."""
    if isinstance(error, RpcError):
        copy: GrpcError = error_for_status(
            error.status, error.message, error.details, error.trailing_metadata
        )
    else:
        copy = type(error)(*error.args)
    copy.not_processed = error.not_processed
    return copy


def not_processed(reason: str) -> Unavailable:
    """An `Unavailable` for a call the server said it did not process.

    Args:
        reason: What the server said (a GOAWAY below the call's stream, say).

    Returns:
        The error.
    """
    error = Unavailable(f"{reason}; the server did not process the request, so a retry is safe")
    return error.unprocessed()


_MAY_HAVE_PROCESSED = "; the server may have processed the request"
NO_SCOPE = contextlib.nullcontext()
"""The deadline scope of a wait that needs none (`_Call._deadline_scope`)."""

WaitScope = Callable[[], contextlib.AbstractContextManager[None]] | None
"""Makes the scope a driver puts around a wait for the socket (see `Connection.flush`)."""

# Parsed response header blocks and trailers, by content: a server sends the same few
# blocks over and over (`:status 200` + content type; `grpc-status: 0`), and parsing them
# is a fair share of a small call's cost. The results are immutable; the caches are
# cleared when full, so varying blocks (messages, dates) cannot grow them without bound.
_PARSED_CACHE_SIZE = 256
_heads: dict[tuple[tuple[bytes, bytes], ...], _wire.ResponseMetadata | _wire.Status] = {}
_trailers: dict[tuple[tuple[bytes, bytes], ...], _wire.Status] = {}


def parse_head(headers: list[tuple[bytes, bytes]]) -> _wire.ResponseMetadata | _wire.Status:
    """`_wire.parse_response_headers`, remembered for blocks seen before."""
    key = tuple(headers)
    parsed = _heads.get(key)
    if parsed is None:
        parsed = _wire.parse_response_headers(headers)  # raises for a bad block: not kept
        if len(_heads) >= _PARSED_CACHE_SIZE:
            _heads.clear()
        _heads[key] = parsed
    return parsed


def parse_trailers(headers: list[tuple[bytes, bytes]]) -> _wire.Status:
    """`_wire.parse_trailers`, remembered for trailers seen before."""
    key = tuple(headers)
    status = _trailers.get(key)
    if status is None:
        status = _wire.parse_trailers(headers)
        if len(_trailers) >= _PARSED_CACHE_SIZE:
            _trailers.clear()
        _trailers[key] = status
    return status


def wire_timeout(remaining: float) -> float:
    """The timeout to send as `grpc-timeout` for `remaining` seconds left.

    Long deadlines are rounded up to a tenth of a second (a hundredth under ten
    seconds), as gRPC's own clients round to a coarser unit: consecutive calls then send
    the same value, whose encoded header field the request encoder has cached. The
    local deadline stays exact and is what ends the call; the server's is at most 0.1 s
    later (1 % of the smallest deadline rounded this way).
    """
    if remaining >= 10.0:
        return math.ceil(remaining * 10.0) / 10.0
    if remaining >= 1.0:
        return math.ceil(remaining * 100.0) / 100.0
    return remaining


def deadline_passed(timeout: float) -> DeadlineExceeded:
    """The error of a call whose deadline of `timeout` seconds passed locally."""
    return DeadlineExceeded(f"the deadline of {timeout:g} s passed (local)")


def lost(reason: str) -> ConnectError:
    """A `ConnectError` for a connection lost under calls that got no status.

    The message says the server may have processed the request; `Connection.fail_stream`
    rewords it for calls whose request never went out.

    Args:
        reason: What happened to the connection.

    Returns:
        The error.
    """
    return ConnectError(f"{reason}{_MAY_HAVE_PROCESSED}")


def check_alpn(alpn: str | None, where: str) -> None:
    """Refuse a TLS connection on which the server chose a protocol other than h2.

    Raises:
        ProtocolError: If the server chose another protocol (none chosen is accepted).
    """
    if alpn not in (None, "h2"):
        raise ProtocolError(f"cannot connect to {where}: the server chose ALPN {alpn!r}, not h2")


def ended_before_settings(where: str, *, tls: bool, cause: str) -> GrpcError:
    """The error of a connection that ended before the server's first SETTINGS.

    Args:
        where: The server, for the message.
        tls: Whether the connection was encrypted.
        cause: What ended it.

    Returns:
        `ConnectError` over TLS (TLS 1.3 servers reject a client certificate only after
        the handshake: a connect failure, not a wrong protocol); `ProtocolError` over
        plain TCP (accepted, then closed or reset without a word of HTTP/2).
    """
    if tls:
        return ConnectError(
            f"cannot connect to {where}: the TLS connection ended before the "
            "server's HTTP/2 SETTINGS (was the client certificate refused, "
            f"or is it not a gRPC server?) ({cause})"
        )
    return ProtocolError(
        f"cannot connect to {where}: the server closed the connection before "
        f"its HTTP/2 SETTINGS; is it a gRPC server? ({cause})"
    )


def broken(exc: _http2.ConnectionFailed) -> ProtocolError:
    """The error of calls on a connection the core gave up on (GOAWAY already queued)."""
    if exc.flood is not None:
        return ProtocolError(
            f"the server flooded the connection with {exc.flood} frames; "
            "it was closed with ENHANCE_YOUR_CALM"
        )
    return ProtocolError(f"the server broke the HTTP/2 protocol: {exc}")


class Connection:
    """One HTTP/2 connection: the core's state and the calls on it.

    The drivers subclass it with the I/O: `wait`/`wake` (a call's wake-up), `flush`
    (write what the core queued), `goodbye` (close with GOAWAY) and `run` (the
    connection's background task).
    """

    def __init__(self, *, keep_alive: tuple[float, float] | None, where: str) -> None:
        self.core = _http2.ClientConnection(
            stream_window=STREAM_WINDOW, connection_window=CONNECTION_WINDOW
        )
        self.where = where
        # The calls holding a slot, from sending HEADERS until they are released.
        self.streams: dict[int, Stream] = {}
        # Calls waiting for a slot, first come first served, and the slots handed to
        # woken waiters that have not taken them yet (so a newcomer cannot take them).
        self.slot_waiters: deque[_SlotWaiter] = deque()
        self.slots_granted = 0
        # Streams waiting for send window, woken by WINDOW_UPDATE and SETTINGS.
        self.blocked: set[Stream] = set()
        self.scope = anyio.CancelScope()
        self.error: GrpcError | None = None
        self.going_away = False
        self.goaway_reason = ""
        self.too_many_pings = False  # the server asked for fewer keep-alive PINGs
        self.keep_alive = keep_alive
        self.ping_acked = Signal()
        self.acked_ping = 0  # the highest keep-alive PING id answered
        self._ping_ids = itertools.count(1)
        self._head = b""  # the server's first bytes, until its first frame header is judged
        self._closing = False

    @property
    def usable(self) -> bool:
        """Whether new calls may start here."""
        return self.error is None and not self.going_away

    # --- the driver's part ------------------------------------------------------------

    async def wait(self, stream: Stream) -> None:
        """Wait until `wake(stream)` (something happened on the stream)."""
        raise NotImplementedError

    def wake(self, stream: Stream) -> None:
        """Wake the call waiting on `stream`, if any."""
        raise NotImplementedError

    async def flush(self, wait_scope: WaitScope = None) -> None:
        """Send what the core queued.

        Args:
            wait_scope: Makes the scope around a wait for the socket (a full write
                buffer, another task's write): a unary call's deadline interrupts those
                waits (see `Deadlines`). None: no scope.

        Raises:
            GrpcError: The connection's error if it is dead or the write fails
                (`ConnectError` when it was lost).
        """
        raise NotImplementedError

    async def goodbye(self, error: GrpcError, *, code: int | None = _http2.NO_ERROR) -> None:
        """Fail every call, then close the connection with a best-effort GOAWAY.

        Args:
            error: What the calls in flight fail with.
            code: The GOAWAY's HTTP/2 error code; None when the core queued one already.
        """
        raise NotImplementedError

    async def run(self) -> None:
        """The connection's background task: keep-alive (and reading, for anyio)."""
        raise NotImplementedError

    def closed(self) -> None:
        """The socket is closing: hook for the drivers (called once, from `die`)."""

    # --- stream slots ---------------------------------------------------------------

    def _free_slots(self) -> int:
        limit = self.core.max_concurrent_streams
        return limit - len(self.streams) - self.slots_granted

    def slot_free_now(self) -> bool:
        """Whether a call may take a slot at once: the connection takes calls, nobody
        queues before it, and the server's stream limit leaves room."""
        return self.usable and not self.slot_waiters and self._free_slots() > 0

    async def take_slot(self) -> bool:
        """Wait for a slot under the server's stream limit, in arrival order.

        A waiter is woken exactly once: when a freed slot is handed to it, or when the
        connection stops taking calls. Handing slots over one by one (instead of waking
        every waiter to race for it) keeps thousands of queued calls linear.

        Returns:
            True when the caller holds a slot: it must register its stream before its
            next await. False when the connection can take no more calls.
        """
        if self.slot_free_now():
            return True
        if not self.usable:
            return False
        waiter = _SlotWaiter()
        self.slot_waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                # Woken and then cancelled: pass the slot on to the next in line.
                self.slots_granted -= 1
                self.grant_slots()
            else:
                with contextlib.suppress(ValueError):
                    self.slot_waiters.remove(waiter)
            raise
        if waiter.granted:
            self.slots_granted -= 1
            if self.usable:
                return True
        return False

    def grant_slots(self) -> None:
        """Hand free slots to the first waiters; wake them all once the connection is done."""
        if not self.usable:
            while self.slot_waiters:
                self.slot_waiters.popleft().wake(False)
            return
        while self.slot_waiters and self._free_slots() > 0:
            self.slots_granted += 1
            self.slot_waiters.popleft().wake(True)

    # --- death ----------------------------------------------------------------------

    def fail_stream(self, stream: Stream, error: GrpcError) -> None:
        """Fail a call unless its response is already complete."""
        if not stream.ended and stream.error is None:
            if isinstance(error, ConnectError) and not stream.sent:
                # Nothing of this call left us: say so, a retry cannot duplicate it.
                text = str(error).removesuffix(_MAY_HAVE_PROCESSED)
                error = ConnectError(
                    f"{text}; the request was not sent, so it was not processed"
                ).unprocessed()
            stream.error = error
        self.wake(stream)

    def die(self, error: GrpcError) -> None:
        """Mark the connection dead, fail its unfinished calls, stop its tasks."""
        if self.error is None:
            self.error = error
        for stream in self.streams.values():
            self.fail_stream(stream, self.error)
        self.grant_slots()
        self.scope.cancel()
        if not self._closing:
            self._closing = True
            self.closed()

    def fail_calls(self, error: GrpcError) -> bool:
        """Fail every call with `error` first (for `goodbye`); False if already dead."""
        if self.error is not None:
            return False
        self.error = error
        for stream in self.streams.values():
            self.fail_stream(stream, error)
        self.grant_slots()
        return True

    def release(self, stream: Stream) -> None:
        """Free a call's slot; close a connection that is going away once it drains."""
        self.streams.pop(stream.id, None)
        self.blocked.discard(stream)
        self.grant_slots()
        if self.going_away and not self.streams:
            self.die(not_processed("the server closed the connection"))

    # --- the preface ----------------------------------------------------------------

    def preface(self, data: bytes, now: float) -> bool:
        """Take the server's first bytes; return True once its SETTINGS arrived.

        Judging the first frame header early fails a server speaking another protocol
        at once, instead of waiting for a frame it never completes.

        Raises:
            ProtocolError: If the server does not speak HTTP/2 (or breaks it at once).
            Unavailable: If the server said GOAWAY with its first SETTINGS (a server
                shutting down): nothing was sent, so the call may go elsewhere.
        """
        if len(self._head) < 9:
            self._head += data[: 9 - len(self._head)]
            if len(self._head) == 9:
                problem = _wire.server_preface_problem(self._head)
                if problem is not None:
                    raise ProtocolError(f"cannot connect to {self.where}: {problem}")
        try:
            self.receive(data, now)
            while self.core.has_backlog and self.error is None:
                self.receive(b"", now)
        except _http2.ConnectionFailed as exc:
            raise ProtocolError(f"cannot connect to {self.where}: {broken(exc)}") from None
        if isinstance(self.error, Unavailable):
            raise Unavailable(f"cannot connect to {self.where}: {self.error.message}").unprocessed()
        if self.error is not None:
            raise ProtocolError(f"cannot connect to {self.where}: {self.error}")
        return self.core.settings_received

    # --- reading --------------------------------------------------------------------

    def receive(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Feed received bytes (one batch of frames at most) to the core; dispatch.

        Raises:
            _http2.ConnectionFailed: The server broke HTTP/2 or flooded us; the core
                queued a GOAWAY, and the driver says goodbye with `broken(exc)`.
        """
        streams = self.streams
        for event in self.core.receive(data, now):
            if type(event) is _http2.Data:
                stream = streams.get(event.stream_id)
                if stream is None or stream.reset:
                    # Nobody will consume it; give the window back at once.
                    self.ack(event.stream_id, event.flow_length)
                    continue
                if event.data or event.flow_length:
                    stream.chunks.append((event.data, event.flow_length))
                if event.end_stream:
                    stream.ended = True
                self.wake(stream)
            elif type(event) is _http2.ResponseHeaders:
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.headers = event.headers
                    if event.end_stream:
                        stream.ended = True
                    self.wake(stream)
            elif type(event) is _http2.Trailers:
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.trailers = event.headers
                    stream.ended = True
                    self.wake(stream)
            elif type(event) is _http2.StreamReset:
                self._reset(event)
            elif type(event) is _http2.WindowUpdated:
                if event.stream_id:
                    stream = streams.get(event.stream_id)
                    if stream is not None and stream in self.blocked:
                        self.wake(stream)
                else:
                    for stream in list(self.blocked):
                        self.wake(stream)
            elif type(event) is _http2.SettingsChanged:
                # The initial window or the stream limit may have changed.
                for stream in list(self.blocked):
                    self.wake(stream)
                self.grant_slots()
            elif type(event) is _http2.PingAcked:
                acked = int.from_bytes(event.data, "big")
                if acked > self.acked_ping:
                    self.acked_ping = acked
                self.ping_acked.notify()
            elif type(event) is _http2.GoAway:
                self._go_away(event.error_code, event.last_stream_id, event.debug)

    def _reset(self, event: _http2.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        stream.reset = True
        error: GrpcError | None
        if event.remote:
            stream.refused = event.error_code == _http2.REFUSED_STREAM
            error = _wire.status_for_reset(event.error_code).error()
            assert error is not None
            if stream.refused:
                error.unprocessed()
        else:
            error = ProtocolError(
                "the server broke the HTTP/2 protocol on the call's stream "
                f"(reset with error {event.error_code:#x})"
            )
        self.fail_stream(stream, error)

    def _go_away(self, error_code: int, last_stream_id: int, debug: bytes) -> None:
        self.going_away = True
        self.goaway_reason = f"GOAWAY with HTTP/2 error {error_code:#x}" + (
            f" ({debug.decode('ascii', 'replace')})" if debug else ""
        )
        if error_code == _http2.ENHANCE_YOUR_CALM and debug == b"too_many_pings":
            self.too_many_pings = True
        self.grant_slots()
        for stream_id, stream in list(self.streams.items()):
            if stream_id > last_stream_id:
                self.fail_stream(
                    stream, not_processed(f"the server is going away ({self.goaway_reason})")
                )
        if not any(not s.ended for i, s in self.streams.items() if i <= last_stream_id):
            self.die(not_processed(f"the server closed the connection ({self.goaway_reason})"))
        # Otherwise the server finishes the calls it accepted, or closes the connection
        # and they fail; the core keeps listening for them meanwhile.

    def ack(self, stream_id: int, length: int) -> None:
        """Hand back the flow-control window of data that was consumed (or dropped)."""
        if length and self.error is None:
            self.core.ack(stream_id, length)

    # --- keep-alive -----------------------------------------------------------------

    async def keep_alive_loop(self, interval: float, timeout: float) -> None:
        """PING the server every `interval` seconds while calls are in flight.

        Only the PING's answer proves the peer alive: other bytes do not postpone a
        PING or stand in for its ACK, so a server that trickles a byte now and then but
        does not answer is still found dead, `interval + timeout` seconds at most after
        its last answer.
        """
        try:
            while True:
                await anyio.sleep(interval)
                if not self.streams:
                    # Ping only with calls in flight, as gRPC does by default
                    # (servers punish pings on idle connections).
                    continue
                if self.error is not None:
                    return
                ping_id = next(self._ping_ids)
                self.core.ping(ping_id.to_bytes(8, "big"))
                with anyio.move_on_after(timeout):
                    # Sending counts too: a peer that stopped reading leaves the write
                    # pending until the write timeout.
                    await self.flush()
                    # The answer may arrive while the PING is still being flushed, so
                    # compare ids instead of waiting for the next notification.
                    while self.acked_ping < ping_id:
                        await self.ping_acked.wait()
                    continue
                self.die(lost(f"the server did not answer a keep-alive PING within {timeout:g} s"))
                return
        except GrpcError as exc:
            self.die(exc)
        except Exception as exc:  # e.g. the core refusing a PING on a closing connection
            self.die(lost(f"keep-alive failed ({exc!r})"))


class _Responses:
    """The async iterator of a call's response messages."""

    __slots__ = ("_call",)

    def __init__(self, call: _Call) -> None:
        self._call = call

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        message = await self._call.next_message()
        if message is None:
            raise StopAsyncIteration
        return message

    async def initial_metadata(self) -> _wire.ResponseMetadata:
        """Wait for the server's response headers; return the initial metadata."""
        return await self._call.wait_head()


class _Call:
    """One call on the wire: the async context manager `server_stream()` returns."""

    def __init__(
        self,
        transport: H2Transport,
        method: str,
        request: bytes,
        metadata: tuple[tuple[str, str | bytes], ...],
        timeout: float | None,
    ) -> None:
        self._transport = transport
        self._method = method
        self._request = request
        self._metadata = metadata
        self._timeout = timeout
        self._deadline = math.inf
        # True when `Deadlines` keeps the deadline (`unary()`): it fails the call's stream
        # when the deadline passes, so only waits elsewhere (`_slow_wait`) need a scope.
        self._expires = False
        self._conn: Connection | None = None
        self._stream: Stream | None = None
        self._decoder = _wire.MessageDecoder(transport.max_receive_message_length)
        self._messages: deque[bytes] = deque()
        self._head_done = False
        self._finished = False
        self._entered = False
        self._retries = 0
        self.initial_metadata: _wire.ResponseMetadata = ()
        self.status: _wire.Status | None = None

    # --- context manager ------------------------------------------------------------

    async def __aenter__(self) -> ResponseStream:
        if self._entered:
            raise RuntimeError("a call can be entered only once")
        self._entered = True
        if self._timeout is not None and self._deadline == math.inf:
            self._deadline = self._transport._clock() + self._timeout
        try:
            with self._deadline_scope():
                await self._open()
        except BaseException:
            await self._cleanup()
            raise
        return _Responses(self)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._cleanup()

    async def unary(self) -> bytes:
        """Run the whole call as a unary one: the response message, or the error.

        The same steps as `async with` plus two `next_message()` calls, without their
        layers (`unary()` is every client call but `list()` and streams).
        """
        try:
            await self._open()
            first = await self.next_message()
            if first is None:
                raise ProtocolError("the server ended a unary call without a response message")
            if await self.next_message() is not None:
                raise ProtocolError("the server sent more than one message for a unary call")
            return first
        finally:
            await self._cleanup()

    # --- opening --------------------------------------------------------------------

    def _deadline_scope(self) -> contextlib.AbstractContextManager[None]:
        """The scope one wait on the stream runs in: none when the call has no timeout or
        `Deadlines` keeps it."""
        return NO_SCOPE if self._timeout is None or self._expires else self._deadline_guard()

    def _slow_wait(self) -> contextlib.AbstractContextManager[None]:
        """The scope of a wait that is not on the call's stream (a connection, a slot, the
        socket): `Deadlines` cannot wake it, so it needs the deadline's own scope."""
        return self._deadline_guard() if self._expires else NO_SCOPE

    def expire(self) -> None:
        """The deadline passed (`Deadlines`): fail the stream, which wakes the call."""
        conn, stream = self._conn, self._stream
        if conn is not None and stream is not None:
            assert self._timeout is not None
            conn.fail_stream(stream, deadline_passed(self._timeout))

    @contextlib.contextmanager
    def _deadline_guard(self) -> Iterator[None]:
        """Enforce the call's deadline locally, as `DeadlineExceeded`."""
        assert self._timeout is not None
        with anyio.CancelScope(deadline=self._deadline) as scope:
            yield
        if scope.cancelled_caught:
            raise deadline_passed(self._timeout)

    async def _open(self) -> None:
        transport = self._transport
        conn = transport._connection_now
        if conn is None or transport._closed or not conn.slot_free_now():
            with self._slow_wait():
                while True:
                    conn = await transport._connection()
                    # Queue for a slot; False: the connection went away meanwhile.
                    if await conn.take_slot():
                        break
        # From here to registering the stream there is no await: the slot is ours.
        remaining = None
        if self._timeout is not None:
            remaining = self._deadline - transport._clock()
            if remaining <= 0:
                conn.grant_slots()  # the slot we were handed goes to the next in line
                raise deadline_passed(self._timeout)
        # No await from taking the stream id to queuing HEADERS: ids (and the header
        # blocks, which share the connection's HPACK table) must go out in order.
        try:
            stream_id = conn.core.open_request(
                transport._encoder,
                self._method,
                self._metadata,
                None if remaining is None else wire_timeout(remaining),
            )
        except _http2.StreamIdsExhausted:
            # After about a billion calls the ids run out: the next call reconnects.
            conn.going_away = True
            conn.grant_slots()  # the queued calls go to a new connection
            if not conn.streams:
                conn.die(not_processed("the connection ran out of stream ids"))
            raise not_processed("the connection ran out of stream ids") from None
        stream = Stream(stream_id)
        conn.streams[stream_id] = stream
        self._conn, self._stream = conn, stream
        # No flush here: HEADERS go out with the first DATA, in one write (a lone small
        # write can wait for a delayed ACK when the peer has Nagle's algorithm on).
        await self._send_body(conn, stream, _wire.encode_message(self._request))

    async def _send_body(self, conn: Connection, stream: Stream, body: bytes) -> None:
        view = memoryview(body)
        core = conn.core
        while True:
            if stream.ended or stream.reset:
                return  # the server answered (or refused) before taking the whole request
            if stream.error is not None:
                raise fresh(stream.error)
            if conn.error is not None:
                raise fresh(conn.error)
            taken = core.send_data(stream.id, view, end_stream=True)
            if taken or not view:
                view = view[taken:]
                # From the first write on, the server may see (and process) the request.
                stream.sent = True
                if not view:
                    stream.request_done = True
                await conn.flush(self._slow_wait)
                if not view:
                    return
                continue
            # No window: wait for the server's WINDOW_UPDATE (or new SETTINGS).
            conn.blocked.add(stream)
            try:
                await conn.wait(stream)
            finally:
                conn.blocked.discard(stream)

    # --- receiving ------------------------------------------------------------------

    async def next_message(self) -> bytes | None:
        """Return the next response message, or None once the call ended with OK.

        Raises:
            RpcError: For a non-OK status.
            GrpcError: For a lost connection or a protocol violation.
        """
        while not self._messages:
            if self._finished:
                return None
            with self._deadline_scope():
                await self._advance()
        return self._messages.popleft()

    async def wait_head(self) -> _wire.ResponseMetadata:
        """Wait until the response headers arrived (or the call ended); messages that
        come meanwhile stay queued.

        Raises:
            RpcError: For a trailers-only answer with a non-OK status.
            GrpcError: For a lost connection or a protocol violation.
        """
        while not self._head_done and not self._finished:
            with self._deadline_scope():
                await self._advance()
        return self.initial_metadata

    async def _advance(self) -> None:
        """Wait for the stream's next news and process everything that has arrived.

        Everything at hand is taken in one go: a unary answer (headers, its message and
        the trailers, usually in one read) takes one pass. A non-OK status waits until
        the messages before it were taken, so the caller sees them first.
        """
        conn, stream = self._conn, self._stream
        if conn is None or stream is None:
            raise RuntimeError("the call is not open: use it inside its `async with` block")
        while True:
            pause = self._refused_pause(stream)
            if pause is not None:
                # REFUSED_STREAM means the server did not process the request (a server
                # may count streams a bit longer than we do), so repeat it transparently.
                self._retries += 1
                await self._cleanup()
                await anyio.sleep(pause)
                await self._open()
                conn, stream = self._conn, self._stream
                assert conn is not None
                assert stream is not None
                continue
            progressed = False
            if not self._head_done and stream.headers is not None:
                self._head_done = True
                head = parse_head(stream.headers)
                if isinstance(head, _wire.Status):
                    self._finish(head)
                    return
                self.initial_metadata = head
                progressed = True  # the call is answered: `wait_head()` may wait for this
            if stream.chunks:
                if not self._head_done:
                    raise ProtocolError("the server sent data before response headers")
                chunks, messages = stream.chunks, self._messages
                while chunks:
                    data, flow = chunks.popleft()
                    # Acknowledge only now that the caller takes the data: backpressure.
                    conn.ack(stream.id, flow)
                    messages.extend(self._decoder.feed(data))
                if conn.core.pending and conn.error is None:
                    # The window update; a connection dying meanwhile is this call's
                    # concern only if its stream is unfinished (stream.error says so).
                    with contextlib.suppress(GrpcError):
                        await conn.flush(self._slow_wait)
                progressed = True
            if stream.chunks:
                return  # more arrived while flushing: the next pass takes it
            if stream.error is not None:
                if progressed:
                    return  # what arrived before the failure is taken first
                raise fresh(stream.error)
            if stream.ended and self._head_done:
                if stream.trailers is None:
                    if not self._messages:
                        self._decoder.close()
                        raise ProtocolError("the response ended without trailers")
                    return
                status = parse_trailers(stream.trailers)
                if self._messages and not status.ok:
                    return  # the messages before the error are taken first
                self._decoder.close()
                self._finish(status)
                return
            if stream.ended:  # and no headers
                raise ProtocolError("the stream ended without response headers")
            if progressed:
                return
            await conn.wait(stream)

    def _refused_pause(self, stream: Stream) -> float | None:
        """The pause before repeating a refused call, or None if it is not repeated."""
        if not stream.refused or stream.headers is not None or self._messages:
            return None
        time_left = None
        if self._timeout is not None:
            time_left = self._deadline - self._transport._clock()
        return _wire.refused_retry_pause(self._retries + 1, time_left)

    def _finish(self, status: _wire.Status) -> None:
        self.status = status
        self._finished = True
        error = status.error()
        if error is not None:
            raise error

    # --- cleanup --------------------------------------------------------------------

    async def _cleanup(self) -> None:
        conn, stream = self._conn, self._stream
        self._conn = None
        if conn is None or stream is None:
            return
        core = conn.core
        pending = core.pending
        # Hand back the window of data nobody will read.
        while stream.chunks:
            conn.ack(stream.id, stream.chunks.popleft()[1])
        if conn.error is None:
            if stream.reset or (stream.ended and stream.request_done):
                core.forget_stream(stream.id)
            else:
                # Tell the server we are gone, even when leaving by cancellation.
                stream.reset = True
                core.reset_stream(stream.id, _http2.CANCEL)
        conn.release(stream)
        # Flush only what this cleanup queued (a RST_STREAM, window updates): bytes
        # that others queued are theirs to flush (the asyncio driver holds them back
        # on purpose while the calls one read woke run, see its cork).
        if conn.error is None and core.pending > pending:
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(CLOSE_TIMEOUT),
                contextlib.suppress(GrpcError),
            ):
                await conn.flush()


class Deadlines:
    """The deadlines of a transport's unary calls, kept by one timer.

    A scope per call is dear: on trio a cancel scope with a deadline costs about 8 µs
    to enter and leave (anyio's, about 11 µs), and `asyncio.timeout_at` schedules and
    cancels a timer handle that the loop sifts through its heap. Calls finish long
    before their deadlines, so this keeps them in a dict and one timer, armed for the
    earliest deadline known when it was armed: a call with a later deadline (the usual
    case: the same timeout every call) only joins the dict. When the timer fires, the
    calls whose deadlines passed expire (`_Call.expire`: their stream fails with
    `DeadlineExceeded`, which wakes them as any failure does), and the timer is armed
    again for the earliest deadline left. The rare waits that are not on the call's
    stream (a connection, a stream slot, the socket) take a scope of their own
    (`_Call._slow_wait`). A caller's own scopes and timeouts are left alone: the call's
    task is never cancelled.

    The timers: a loop timer on asyncio (`_h2_asyncio.AsyncioDeadlines`), a task in
    the transport's task group otherwise (`TaskDeadlines`).
    """

    def __init__(self) -> None:
        self._calls: dict[_Call, None] = {}
        self._armed = math.inf  # the deadline the timer fires for

    def add(self, call: _Call) -> None:
        """Keep `call`'s deadline until `discard(call)`."""
        self._calls[call] = None
        if call._deadline < self._armed:
            self._armed = call._deadline
            self._arm(call._deadline)

    def discard(self, call: _Call) -> None:
        """Forget `call` (it ended, or expired already)."""
        self._calls.pop(call, None)

    def fire(self, now: float) -> None:
        """Expire the calls whose deadlines passed by `now`; `_armed` becomes the next."""
        earliest = math.inf
        expired = []
        for call in self._calls:
            if call._deadline <= now:
                expired.append(call)
            elif call._deadline < earliest:
                earliest = call._deadline
        self._armed = earliest
        for call in expired:
            del self._calls[call]
            call.expire()

    def _arm(self, deadline: float) -> None:
        """Have the timer fire at `deadline` (earlier than the one it was armed for)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the timer (the transport is closed; its calls are failed already)."""
        raise NotImplementedError


class TaskDeadlines(Deadlines):
    """`Deadlines` with a task for a timer (`run`, in the transport's task group)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self._clock = clock
        self._changed = anyio.Event()  # an earlier deadline came: `run` re-arms
        self._scope = anyio.CancelScope()

    def _arm(self, deadline: float) -> None:
        self._changed.set()

    async def run(self) -> None:
        """The timer, as a task: sleep until the armed deadline (or an earlier one)."""
        with self._scope:
            while True:
                changed = self._changed
                with anyio.CancelScope(deadline=self._armed):
                    await changed.wait()
                if changed.is_set():
                    self._changed = anyio.Event()
                self.fire(self._clock())

    def close(self) -> None:
        self._scope.cancel()
        self._armed = math.inf


class _Attempt:
    """One connection attempt that concurrent first calls share."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.connection: Connection | None = None
        self.error: GrpcError | None = None


class H2Transport(BaseTransport):
    """A gRPC transport on our own HTTP/2 core: runs on asyncio and trio alike.

    Use it as an async context manager, entered and left in the same task: the
    transport's background work (one task per connection: keep-alive, and reading
    with the anyio driver) lives in a task group that `async with` opens and closes.

    ```python
    async with H2Transport.from_url("grpc://localhost:50051?ssl=false") as transport:
        reply = await transport.unary("/pkg.Service/Method", request_bytes)
    ```

    `aclose()` may be called from any task: it fails the calls in flight with
    `Cancelled` and returns promptly.
    """

    def __init__(
        self,
        options: ChannelOptions,
        *,
        max_receive_message_length: int = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        user_agent: str = DEFAULT_USER_AGENT,
        _driver: Driver = "auto",
    ) -> None:
        """Create a transport; nothing connects until the first call.

        Args:
            options: Where and how to connect (see `transports.parse_url`).
            max_receive_message_length: Largest response message accepted, in bytes;
                a larger one fails the call with `ResourceExhausted`.
            connect_timeout: Seconds allowed to open a connection.
            user_agent: The `user-agent` header of every request.

        Raises:
            TypeError: For options of the wrong type.
            ValueError: For bad limits, or TLS files that cannot be loaded.
        """
        if not isinstance(options, ChannelOptions):
            raise TypeError(f"options must be ChannelOptions, not {type(options).__name__}")
        if (
            isinstance(max_receive_message_length, bool)
            or not isinstance(max_receive_message_length, int)
            or max_receive_message_length < 0
        ):
            raise ValueError(
                f"max_receive_message_length must be an int >= 0, got "
                f"{max_receive_message_length!r}"
            )
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, int | float):
            raise TypeError(f"connect_timeout must be a number, got {connect_timeout!r}")
        if not math.isfinite(connect_timeout) or connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be finite and > 0, got {connect_timeout!r}")
        if not isinstance(user_agent, str):
            raise TypeError(f"user_agent must be a str, not {type(user_agent).__name__}")
        if not (user_agent.isascii() and user_agent.isprintable()):
            raise ValueError(f"user_agent must be printable ASCII, got {user_agent!r}")
        if _driver not in ("auto", "anyio"):
            raise ValueError(f"_driver must be 'auto' or 'anyio', got {_driver!r}")
        self.options = options
        self.max_receive_message_length = max_receive_message_length
        self.connect_timeout = float(connect_timeout)
        self.user_agent = user_agent
        self.scheme = "https" if options.ssl else "http"
        self.authority = options.authority
        # Built now so unreadable certificate files are a ValueError before any I/O.
        self._ssl_context: ssl.SSLContext | None = options.ssl_context(alpn=("h2",))
        self._driver = _driver
        self._encoder = _http2.RequestHeaderEncoder(
            scheme=self.scheme, authority=self.authority, user_agent=user_agent
        )
        self._stack: AsyncExitStack | None = None
        self._tasks: anyio.abc.TaskGroup | None = None
        self._connection_now: Connection | None = None
        self._connections: set[Connection] = set()
        self._attempt: _Attempt | None = None
        self._connect_scopes: set[anyio.CancelScope] = set()
        self._closed = False
        self._keep_alive_interval = options.keep_alive_interval
        # Set by `__aenter__` from the running library: its own clock (anyio's
        # `current_time()` looks the library up on every call), the driver, and the
        # unary calls' shared deadline timer (a fraction of the cost of a cancel scope,
        # or of `asyncio.timeout_at`, per call).
        self._clock: Callable[[], float] = anyio.current_time
        self._asyncio_driver = False
        self._deadlines: Deadlines | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> H2Transport:
        """Create a transport for a `grpc://host[:port][?...]` URL.

        Args:
            url: The server URL (see `transports.parse_url`).
            **options: Keyword arguments of the constructor:
                `max_receive_message_length`, `connect_timeout`, `user_agent`.

        Returns:
            The transport, not connected yet.

        Raises:
            TypeError: For an unknown option.
            ValueError: For a bad URL or option value.
        """
        return cls(parse_url(url), **options)

    def __repr__(self) -> str:
        return f"H2Transport({self.scheme}://{self.authority})"

    # --- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("an H2Transport can be entered only once")
        if self._closed:
            raise RuntimeError("this H2Transport is closed")
        stack = AsyncExitStack()
        self._tasks = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        self._clock = library_clock()
        if self._driver == "auto" and _on_asyncio():
            import asyncio

            from ._h2_asyncio import AsyncioDeadlines

            self._asyncio_driver = True
            self._deadlines = AsyncioDeadlines(asyncio.get_running_loop())
        else:
            timer = self._deadlines = TaskDeadlines(self._clock)
            self._tasks.start_soon(timer.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
        stack, self._stack = self._stack, None
        if stack is not None:
            # The connection tasks were cancelled by aclose(), so this returns promptly.
            # The body's own exception is not handed to the task group, which would
            # wrap it in an ExceptionGroup; it propagates as it is.
            await stack.aclose()

    async def aclose(self) -> None:
        """Close every connection and fail the calls in flight with `Cancelled`.

        Safe to call twice and from any task; returns without waiting for the server.
        """
        if self._closed:
            return
        self._closed = True
        if self._deadlines is not None:
            self._deadlines.close()
        for scope in self._connect_scopes:
            scope.cancel()
        error = Cancelled("the transport was closed")
        connections = list(self._connections)
        self._connections.clear()
        self._connection_now = None
        for conn in connections:
            await conn.goodbye(error)

    # --- connecting -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Cancelled("the transport is closed")
        if self._tasks is None:
            raise RuntimeError(
                "use H2Transport as `async with transport:` before making calls; "
                "its connections live in the task group that opens"
            )

    async def _connection(self) -> Connection:
        """Return a usable connection, opening one if needed."""
        while True:
            self._check_open()
            conn = self._connection_now
            if conn is not None and conn.usable:
                return conn
            attempt = self._attempt
            if attempt is None:
                attempt = self._attempt = _Attempt()
                try:
                    attempt.connection = await self._connect()
                except GrpcError as exc:
                    attempt.error = exc
                    raise
                finally:
                    self._attempt = None
                    attempt.done.set()
                return attempt.connection
            await attempt.done.wait()
            if attempt.error is not None:
                raise fresh(attempt.error)
            # A cancelled attempt has neither result nor error: try again.

    async def _connect(self) -> Connection:
        where = f"{self.scheme}://{self.authority}"
        with anyio.CancelScope() as closing:
            self._connect_scopes.add(closing)
            try:
                with anyio.fail_after(self.connect_timeout):
                    return await self._open_connection(where)
            # No call has been sent on a connection being opened: every failure here
            # is marked as not processed, so even a non-idempotent call may repeat.
            except TimeoutError:
                raise ConnectError(
                    f"cannot connect to {where}: no connection within {self.connect_timeout:g} s"
                ).unprocessed() from None
            except GrpcError as exc:
                exc.unprocessed()
                raise
            except Exception as exc:  # the edge: DNS, TCP, TLS and anything else
                verification = _verification_failure(exc)
                if verification is not None:
                    raise ConnectError(
                        f"cannot connect to {where}: TLS certificate verification failed "
                        f"({verification})"
                    ).unprocessed() from exc
                raise ConnectError(
                    f"cannot connect to {where}: {describe(exc)}"
                ).unprocessed() from exc
            finally:
                self._connect_scopes.discard(closing)
        raise Cancelled("the transport was closed while connecting")

    async def _open_connection(self, where: str) -> Connection:
        options = self.options
        keep_alive = (
            (self._keep_alive_interval, options.keep_alive_timeout) if options.keep_alive else None
        )
        conn: Connection
        if self._asyncio_driver:
            from ._h2_asyncio import open_asyncio_connection

            conn = await open_asyncio_connection(
                options.host, options.port, self._ssl_context, keep_alive=keep_alive, where=where
            )
        else:
            from ._h2_anyio import open_anyio_connection

            conn = await open_anyio_connection(
                options.host, options.port, self._ssl_context, keep_alive=keep_alive, where=where
            )
        assert self._tasks is not None
        if self._closed:
            with anyio.CancelScope(shield=True):
                await conn.goodbye(Cancelled("the transport was closed while connecting"))
            raise Cancelled("the transport was closed while connecting")
        self._connections.add(conn)
        self._connection_now = conn
        self._tasks.start_soon(self._run, conn)
        return conn

    async def _run(self, conn: Connection) -> None:
        try:
            await conn.run()
        except Exception as exc:
            # Never let a connection's failure reach the task group: it would cancel
            # the code inside `async with transport:`. Its calls have the error already.
            conn.die(ProtocolError(f"the connection failed: {exc!r}"))
        finally:
            if conn.too_many_pings:
                # As gRPC clients do: the server wants fewer PINGs, so halve their rate.
                self._keep_alive_interval *= 2
            self._connections.discard(conn)
            if self._connection_now is conn:
                self._connection_now = None

    # --- calls ----------------------------------------------------------------------

    def server_stream(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[ResponseStream]:
        """Start a unary-stream call; iterate the context's value for the responses.

        Args:
            method: The full method path, `/package.Service/Method`.
            request: The serialized request message.
            metadata: (name, value) pairs sent as headers.
            timeout: Seconds for the whole call, sent as `grpc-timeout` and enforced
                locally (`DeadlineExceeded`).

        Returns:
            An async context manager; leaving it early cancels the call on the wire.

        Raises:
            TypeError: For arguments of the wrong type (before any I/O).
            ValueError: For malformed arguments (before any I/O).
        """
        checked = check_call(method, request, metadata, timeout)
        self._check_open()
        return _Call(self, method, bytes(request), checked, timeout)

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
            metadata: (name, value) pairs sent as headers.
            timeout: Seconds for the whole call, sent as `grpc-timeout` and enforced
                locally (`DeadlineExceeded`).

        Returns:
            The serialized response message.

        Raises:
            RpcError: For a non-OK status.
            TransportError: When no status was obtained.
            TypeError: For arguments of the wrong type (before any I/O).
            ValueError: For malformed arguments (before any I/O).
        """
        call = self.server_stream(method, request, metadata=metadata, timeout=timeout)
        assert isinstance(call, _Call)
        call._entered = True
        if timeout is None:
            return await call.unary()
        # The deadline is kept by the transport's timer, not by a scope per call or wait.
        call._expires = True
        call._deadline = self._clock() + timeout
        deadlines = self._deadlines
        assert deadlines is not None  # set by `async with`, which `_check_open` checked
        deadlines.add(call)
        try:
            return await call.unary()
        finally:
            deadlines.discard(call)


def library_clock() -> Callable[[], float]:
    """The running library's own clock: the one `anyio.current_time()` reads, without
    looking the library up on every call."""
    if _on_asyncio():
        import asyncio

        return asyncio.get_running_loop().time
    trio = _running_trio()
    if trio is not None:
        clock: Callable[[], float] = trio.current_time
        return clock
    return anyio.current_time


def library_event() -> Callable[[], Any]:
    """The running library's own event class when it is trio (`anyio.Event()` looks the
    library up on every event, a fair share of a call's wait on trio); else anyio's."""
    trio = _running_trio()
    if trio is not None:
        event: Callable[[], Any] = trio.Event
        return event
    return anyio.Event


def _running_trio() -> Any:
    """The trio module if trio runs this task, else None (trio is not imported here)."""
    import sys

    trio = sys.modules.get("trio")  # loaded whenever trio runs
    if trio is not None and trio.lowlevel.in_trio_run():
        return trio
    return None


def _on_asyncio() -> bool:
    """Whether asyncio runs this task (the one look at the library, for the driver)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _verification_failure(exc: BaseException) -> str | None:
    """What failed in a TLS certificate verification within `exc`, or None.

    `ssl` is looked up only when it is loaded already (a TLS connection was made), so
    plain connections never import it.
    """
    import sys

    ssl_module = sys.modules.get("ssl")
    if ssl_module is None:
        return None
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl_module.SSLCertVerificationError):
            return str(seen.verify_message or seen.reason)
        seen = seen.__cause__ or seen.__context__
    return None


def describe(exc: BaseException) -> str:
    """A short text for a connect failure, looking through groups and causes.

    anyio reports happy-eyeballs failures as an OSError caused by a group, and TLS
    failures as a bare `BrokenResourceError` caused by the `ssl.SSLError`.
    """
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    text = str(exc) or type(exc).__name__
    if exc.__cause__ is not None:
        text = f"{text} ({describe(exc.__cause__)})"
    return text
