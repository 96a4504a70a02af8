"""The hostile-server kit: a programmable, misbehaving HTTP/2 server on loopback.

The server runs in threads of its own with blocking sockets and `h2`, so it is
independent of the test's event loop: the same server serves tests on asyncio and on
trio, and it keeps misbehaving (flooding, going dark) while the client's loop is busy.

A test gives it a *handler*, called in the server's thread for every request whose
headers and body (END_STREAM) arrived. The handler acts through the `Request` and its
`Link` (one per connection): answer normally, or send GOAWAY at any point, bad or
duplicate headers and trailers, bad `-bin` metadata, an HTTP 502 with an HTML body,
RST_STREAM with any code, half a frame or half a message and then close, nothing at
all (no response headers), trickled bytes, DATA beyond the flow-control window, floods
of PING/SETTINGS/empty DATA, huge messages and header blocks; or stop reading and
answering altogether (`Link.go_dark()`, a dead peer). Server-wide options shape every
connection: `max_concurrent_streams`, a GOAWAY sent together with the first SETTINGS,
whether client PINGs are answered.

The kit records what the client did (`HostileServer.connections`, `.requests`,
`.resets`, `.goaways`, `.pings`), so tests can check, say, that a flooded client closed
the connection with ENHANCE_YOUR_CALM.

Example:

    def handler(request: Request) -> None:
        request.link.goaway(last_stream_id=0)
        request.link.close()

    with HostileServer(handler) as server:
        ...  # point a transport at server.url

The API only grows: names are not renamed or removed (other work builds on them).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Self

import attrs
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack

__all__ = [
    "GRPC_HEAD",
    "OK_TRAILERS",
    "FrameType",
    "Handler",
    "HostileServer",
    "Link",
    "Request",
    "StreamGone",
    "frame",
    "grpc_message",
    "open_fds",
]

GRPC_HEAD: list[tuple[bytes, bytes]] = [
    (b":status", b"200"),
    (b"content-type", b"application/grpc"),
]
"""Response headers of a well-behaved gRPC server."""

OK_TRAILERS: list[tuple[bytes, bytes]] = [(b"grpc-status", b"0")]
"""Trailers of a successful call."""

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_POLL = 0.05  # seconds between checks of the stop flag in every blocking wait


class FrameType:
    """HTTP/2 frame type numbers (RFC 9113, section 6)."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """Build one raw HTTP/2 frame, whatever its content (no validation at all).

    Args:
        kind: The frame type (`FrameType`), or any byte.
        flags: The flags byte.
        stream_id: The stream (31 bits; the reserved bit is masked off).
        payload: The frame's payload.

    Returns:
        The frame's bytes: a 9-byte header, then the payload.
    """
    header = struct.pack(">I", len(payload))[1:] + bytes((kind & 0xFF, flags & 0xFF))
    return header + struct.pack(">I", stream_id & 0x7FFFFFFF) + payload


def grpc_message(body: bytes, *, compressed: bool = False, length: int | None = None) -> bytes:
    """Frame `body` as one gRPC message (1-byte flag, 4-byte length), optionally lying.

    Args:
        body: The message bytes.
        compressed: Set the compressed flag.
        length: The length to announce, when it should differ from `len(body)`.
    """
    announced = len(body) if length is None else length
    return struct.pack(">BI", 1 if compressed else 0, announced) + body


def open_fds() -> int:
    """How many file descriptors this process holds now (Linux `/proc`)."""
    return len(os.listdir("/proc/self/fd"))


class Stopped(Exception):
    """The server is shutting down, or the client closed the connection."""


class StreamGone(Exception):
    """The client reset the stream, or closed the connection with GOAWAY, meanwhile.

    Raised by the `Link` methods that go through `h2`'s stream state; the server drops
    what the handler was doing for that request and goes on serving the connection.
    """


@attrs.define(eq=False)
class Request:
    """One request the server received in full, and the means to answer it.

    Attributes:
        link: The connection it came on.
        stream_id: Its HTTP/2 stream.
        headers: Its header block as received.
        body: Its body (usually one gRPC message).
        number: Which request it is over all connections (0 for the first).
    """

    link: Link
    stream_id: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    number: int

    @property
    def path(self) -> bytes:
        """The request's `:path`."""
        return dict(self.headers).get(b":path", b"")

    @property
    def message(self) -> bytes:
        """The request's first gRPC message, unframed (empty if there is none)."""
        if len(self.body) < 5:
            return b""
        length = int.from_bytes(self.body[1:5], "big")
        return self.body[5 : 5 + length]

    def answer(
        self, *messages: bytes, trailers: Sequence[tuple[bytes, bytes]] = OK_TRAILERS
    ) -> None:
        """Answer as a good gRPC server: headers, each message, then `trailers`."""
        self.link.headers(self.stream_id, GRPC_HEAD)
        for message in messages:
            self.link.data(self.stream_id, grpc_message(message))
        self.link.headers(self.stream_id, trailers, end_stream=True)

    def fail(self, status: int, message: str = "") -> None:
        """Answer trailers-only with a gRPC error status."""
        block = [*GRPC_HEAD, (b"grpc-status", str(status).encode())]
        if message:
            block.append((b"grpc-message", message.encode()))
        self.link.headers(self.stream_id, block, end_stream=True)

    def reset(self, code: int) -> None:
        """Reset the stream (RST_STREAM) with `code`."""
        self.link.reset(self.stream_id, code)


Handler = Callable[[Request], None]
"""Called in the server's thread for every complete request."""


class Link:
    """One accepted connection, as a handler drives it.

    All methods block the connection's thread (that is the point: a handler that
    sleeps stops the server from reading). Sending never deadlocks with a client that
    writes too: while the socket is not writable, what arrives is read and recorded
    (and client PINGs answered), though new requests wait until the handler returns.
    """

    def __init__(self, server: HostileServer, sock: socket.socket, index: int) -> None:
        self.server = server
        self.sock = sock
        self.index = index
        """Which connection (0 for the first) this is."""
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config)
        self.closed = False
        self._buffer = b""
        self._preface_seen = False
        self._ready: list[Request] = []
        self._bodies: dict[int, bytearray] = {}
        self._heads: dict[int, list[tuple[bytes, bytes]]] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_ids = itertools.count()
        self._encoder = hpack.Encoder()

    # --- raw bytes --------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write `data` as it is, reading (and recording) while the socket is full.

        Raises:
            Stopped: If the server stops or the client closed the connection.
        """
        view = memoryview(data)
        while view:
            self._check()
            readable, writable, _ = select.select([self.sock], [self.sock], [], _POLL)
            if readable:
                self._read()
            if writable:
                try:
                    sent = self.sock.send(view[: 256 * 1024])
                except BlockingIOError:
                    continue
                except OSError as exc:
                    raise Stopped(str(exc)) from exc
                view = view[sent:]

    def flush(self) -> None:
        """Write what `h2` queued (acknowledgements, frames sent through `self.h2`)."""
        data = self.h2.data_to_send()
        if data:
            self.send(data)

    def close(self) -> None:
        """Close the connection at once, without a GOAWAY."""
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def abort(self) -> None:
        """Close the connection with a TCP reset (SO_LINGER 0)."""
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()

    # --- frames -----------------------------------------------------------------------

    def headers(
        self,
        stream_id: int,
        block: Iterable[tuple[bytes, bytes]],
        *,
        end_stream: bool = False,
    ) -> None:
        """Send a header block through `h2`, unvalidated (duplicates, bad names allowed)."""
        try:
            self.h2.send_headers(stream_id, list(block), end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:  # StreamClosedError included
            raise StreamGone(str(exc)) from exc
        self.flush()

    def raw_headers(
        self, stream_id: int, block: Iterable[tuple[bytes, bytes]], *, end_stream: bool = False
    ) -> None:
        """Send a header block encoded here (no Huffman), bypassing `h2`'s stream state.

        Blocks larger than 16 KiB go out as HEADERS plus CONTINUATION frames. Use it
        for huge header blocks (fast to encode) or on a stream `h2` considers closed.
        The kit's encoder is separate from `h2`'s, so use one of the two per connection.
        """
        payload = self._encoder.encode(list(block), huffman=False)
        size = 16384
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        out = bytearray()
        for i, piece in enumerate(pieces):
            flags = 0x4 if i == len(pieces) - 1 else 0  # END_HEADERS on the last one
            if i == 0:
                flags |= 0x1 if end_stream else 0
                out += frame(FrameType.HEADERS, flags, stream_id, piece)
            else:
                out += frame(FrameType.CONTINUATION, flags, stream_id, piece)
        self.send(bytes(out))

    def data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send DATA within the client's flow-control windows, waiting for them to open."""
        view = memoryview(data)
        while True:
            self._check()
            try:
                window = min(
                    self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
                )
            except h2.exceptions.ProtocolError as exc:
                raise StreamGone(str(exc)) from exc
            if window <= 0 and view:
                self._wait_readable()
                continue
            chunk, view = view[:window], view[window:]
            last = end_stream and not view
            if chunk or last:
                try:
                    self.h2.send_data(stream_id, bytes(chunk), end_stream=last)
                except h2.exceptions.ProtocolError as exc:
                    raise StreamGone(str(exc)) from exc
                self.flush()
            if not view:
                return

    def raw_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send DATA frames of at most 16 KiB, ignoring flow control (an overrun)."""
        size = 16384
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        out = bytearray()
        for i, chunk in enumerate(chunks):
            last = end_stream and i == len(chunks) - 1
            out += frame(FrameType.DATA, 0x1 if last else 0, stream_id, chunk)
        self.send(bytes(out))

    def reset(self, stream_id: int, code: int) -> None:
        """Send RST_STREAM with `code` (any 32-bit number)."""
        self.send(frame(FrameType.RST_STREAM, 0, stream_id, struct.pack(">I", code)))

    def goaway(self, last_stream_id: int | None = None, error: int = 0, debug: bytes = b"") -> None:
        """Send a GOAWAY by hand (the server's `h2` stays open, so it can go on).

        Args:
            last_stream_id: The last stream the server says it processed; None means
                the highest stream the client opened so far.
            error: The HTTP/2 error code.
            debug: Opaque debug data.
        """
        last = self.h2.highest_inbound_stream_id if last_stream_id is None else last_stream_id
        payload = struct.pack(">II", last & 0x7FFFFFFF, error) + debug
        self.send(frame(FrameType.GOAWAY, 0, 0, payload))

    def ping_flood(self, count: int) -> None:
        """Send `count` PING frames (each asks for an ACK) as fast as possible."""
        self._flood(frame(FrameType.PING, 0, 0, struct.pack(">Q", 0x0123456789ABCDEF)), count)

    def settings_flood(self, count: int) -> None:
        """Send `count` empty SETTINGS frames (each asks for an ACK)."""
        self._flood(frame(FrameType.SETTINGS, 0, 0), count)

    def empty_data_flood(self, stream_id: int, count: int) -> None:
        """Send `count` empty DATA frames on `stream_id`."""
        self._flood(frame(FrameType.DATA, 0, stream_id), count)

    def _flood(self, one: bytes, count: int) -> None:
        batch = 4096
        for start in range(0, count, batch):
            self.send(one * min(batch, count - start))

    def trickle(self, data: bytes, *, interval: float, size: int = 1) -> None:
        """Send `data` `size` bytes at a time, `interval` seconds apart."""
        for i in range(0, len(data), size):
            self.send(data[i : i + size])
            self._sleep(interval)

    # --- behaviour --------------------------------------------------------------------

    def go_dark(self) -> None:
        """Stop reading and answering anything (PINGs included) until the server stops.

        The socket stays open: to the client this is a dead peer, or a black hole.
        """
        self.server._stopping.wait()
        raise Stopped("the server stopped")

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        """Run `action` in this connection's thread after `delay` seconds."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_ids), action))

    def sleep(self, seconds: float) -> None:
        """Pause without reading (a slow server); returns early if the server stops."""
        self._sleep(seconds)

    # --- the connection's loop (server side) -------------------------------------------

    def _sleep(self, seconds: float) -> None:
        if self.server._stopping.wait(seconds):
            raise Stopped("the server stopped")

    def _check(self) -> None:
        if self.server._stopping.is_set() or self.closed:
            raise Stopped("the server stopped")

    def _wait_readable(self) -> None:
        readable, _, _ = select.select([self.sock], [], [], _POLL)
        if readable:
            self._read()

    def _read(self) -> None:
        try:
            data = self.sock.recv(256 * 1024)
        except BlockingIOError:
            return
        except OSError as exc:
            raise Stopped(str(exc)) from exc
        if not data:
            self.closed = True
            raise Stopped("the client closed the connection")
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Record the client's frames, drop unanswered PINGs, and hand the rest to h2."""
        self._buffer += data
        out = bytearray()
        if not self._preface_seen:
            if len(self._buffer) < len(_PREFACE):
                return
            out += self._buffer[: len(_PREFACE)]
            self._buffer = self._buffer[len(_PREFACE) :]
            self._preface_seen = True
        while len(self._buffer) >= 9:
            length = int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < 9 + length:
                break
            one, self._buffer = self._buffer[: 9 + length], self._buffer[9 + length :]
            kind, flags = one[3], one[4]
            if kind == FrameType.PING and not flags & 0x1:
                self.server.pings += 1
                if not self.server.answer_pings:
                    continue
            if kind == FrameType.GOAWAY and length >= 8:
                self.server.goaways.append(int.from_bytes(one[13:17], "big"))
            if kind == FrameType.RST_STREAM and length == 4:
                stream_id = int.from_bytes(one[5:9], "big") & 0x7FFFFFFF
                self.server.resets.append((stream_id, int.from_bytes(one[9:13], "big")))
            out += one
        if not out:
            return
        try:
            events = self.h2.receive_data(bytes(out))
        except h2.exceptions.ProtocolError as exc:
            # A client breaking the protocol (or going past our stream limit): say so.
            self.server.client_errors.append(repr(exc))
            with contextlib.suppress(Stopped):
                self.flush()
            raise Stopped("the client broke HTTP/2") from exc
        for event in events:
            self._event(event)

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            stream_id = int(event.stream_id or 0)
            limit = self.server.max_concurrent_streams
            if limit is not None and self.h2.open_inbound_streams > limit:
                self.server.refused += 1
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                return
            self._heads[stream_id] = list(event.headers or [])
            self._bodies[stream_id] = bytearray()
        elif isinstance(event, h2.events.DataReceived):
            stream_id = int(event.stream_id or 0)
            if stream_id in self._bodies:
                self._bodies[stream_id].extend(event.data or b"")
            if event.flow_controlled_length:
                with contextlib.suppress(h2.exceptions.StreamClosedError):
                    self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream_id = int(event.stream_id or 0)
            if stream_id in self._heads:
                number = self.server._next_request()
                self._ready.append(
                    Request(
                        self,
                        stream_id,
                        self._heads.pop(stream_id),
                        bytes(self._bodies.pop(stream_id, b"")),
                        number,
                    )
                )

    def _serve(self) -> None:
        """Run the connection until the client leaves, a handler closes it, or stop."""
        self.sock.setblocking(False)
        try:
            on_connect = self.server.on_connect
            if on_connect is not None:
                on_connect(self)
            elif not self.server.raw_preface:
                self._start()
            while True:
                self._check()
                while self._ready:
                    request = self._ready.pop(0)
                    with contextlib.suppress(StreamGone):
                        self.server.handler(request)
                    self.flush()
                    self._check()
                self._run_timers()
                timeout = _POLL
                if self._timers:
                    timeout = max(0.0, min(_POLL, self._timers[0][0] - time.monotonic()))
                readable, _, _ = select.select([self.sock], [], [], timeout)
                if readable:
                    self._read()
                self.flush()
        except Stopped:
            pass
        except Exception as exc:  # a handler's bug: record it, the test reports it
            self.server.handler_errors.append(exc)
        finally:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.close()

    def _start(self) -> None:
        """Send the server's preface (SETTINGS), with the server-wide options.

        The SETTINGS frame is written here, not by `h2`: `h2` itself is told no stream
        limit, so a client going past the announced one is refused per stream
        (REFUSED_STREAM, as gRPC servers do) rather than failing the whole connection.
        """
        settings: dict[h2.settings.SettingCodes, int] = {
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2**31 - 1,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 2**31 - 1,
        }
        announced: dict[int, int] = {}
        if self.server.max_concurrent_streams is not None:
            announced[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = (
                self.server.max_concurrent_streams
            )
        if self.server.max_frame_size is not None:
            settings[h2.settings.SettingCodes.MAX_FRAME_SIZE] = self.server.max_frame_size
            announced[h2.settings.SettingCodes.MAX_FRAME_SIZE] = self.server.max_frame_size
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        self.h2.initiate_connection()
        self.h2.data_to_send()  # replaced by the SETTINGS frame below
        payload = b"".join(struct.pack(">HI", key, value) for key, value in announced.items())
        data = frame(FrameType.SETTINGS, 0, 0, payload)
        if self.server.goaway_with_settings is not None:
            last, code = self.server.goaway_with_settings
            data += frame(FrameType.GOAWAY, 0, 0, struct.pack(">II", last, code))
        self.send(data)

    def start(self) -> None:
        """Send the server preface; for `on_connect` hooks that want the normal start."""
        self._start()

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, action = heapq.heappop(self._timers)
            with contextlib.suppress(StreamGone):
                action()
            self.flush()


class HostileServer:
    """A misbehaving HTTP/2 server on 127.0.0.1, in threads of its own.

    Use it as a (plain, synchronous) context manager: `url` reaches it inside the
    block; leaving it stops every thread and closes every socket it opened.

    Attributes:
        url: `grpc://127.0.0.1:PORT?ssl=false`, plus `url_options`.
        connections: How many connections it accepted.
        requests: How many complete requests it saw.
        resets: (stream id, error code) of every RST_STREAM the client sent.
        goaways: The error code of every GOAWAY the client sent.
        pings: How many PINGs (not ACKs) the client sent.
        refused: How many streams were refused past `max_concurrent_streams`.
        notes: What handlers noted with `note()`, in order (a test waits for one).
        client_errors: h2's complaints about the client, if it broke HTTP/2.
        handler_errors: Exceptions raised by the handler (a test bug); `__exit__`
            re-raises the first.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        max_concurrent_streams: int | None = None,
        max_frame_size: int | None = None,
        goaway_with_settings: tuple[int, int] | None = None,
        answer_pings: bool = True,
        on_connect: Callable[[Link], None] | None = None,
        raw_preface: bool = False,
        url_options: str = "",
    ) -> None:
        """Prepare the server; it listens once the `with` block is entered.

        Args:
            handler: Called for every complete request.
            max_concurrent_streams: SETTINGS_MAX_CONCURRENT_STREAMS to announce.
            max_frame_size: SETTINGS_MAX_FRAME_SIZE to announce.
            goaway_with_settings: (last stream id, error code) of a GOAWAY written in
                the same write as the first SETTINGS (a server shutting down).
            answer_pings: Whether the client's PINGs are acknowledged.
            on_connect: Called first on every new connection instead of sending the
                server preface (call `link.start()` for the normal one).
            raw_preface: Send no preface at all (with no `on_connect`).
            url_options: Appended to the URL's query, e.g. `&keep_alive_interval_s=1`.
        """
        self.handler = handler
        self.max_concurrent_streams = max_concurrent_streams
        self.max_frame_size = max_frame_size
        self.goaway_with_settings = goaway_with_settings
        self.answer_pings = answer_pings
        self.on_connect = on_connect
        self.raw_preface = raw_preface
        self.url_options = url_options
        self.url = ""
        self.connections = 0
        self.requests = 0
        self.resets: list[tuple[int, int]] = []
        self.goaways: list[int] = []
        self.pings = 0
        self.refused = 0
        self.notes: list[str] = []
        self.client_errors: list[str] = []
        self.handler_errors: list[Exception] = []
        self.links: list[Link] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None

    def note(self, text: str) -> None:
        """Record that something happened (e.g. "burst sent"), for the test to see."""
        with self._lock:
            self.notes.append(text)

    def _next_request(self) -> int:
        with self._lock:
            number = self.requests
            self.requests += 1
            return number

    def __enter__(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(_POLL)
        self._listener = listener
        port = listener.getsockname()[1]
        self.url = f"grpc://127.0.0.1:{port}?ssl=false{self.url_options}"
        accept = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)
        self._threads.append(accept)
        accept.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc is None and self.handler_errors:
            raise self.handler_errors[0]

    def stop(self) -> None:
        """Stop serving: close every connection and the listener, join every thread."""
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout=10)
            if thread.is_alive():  # pragma: no cover - a kit bug
                raise RuntimeError(f"hostile server thread {thread.name} did not stop")
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # pragma: no cover - the listener closed under us
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                link = Link(self, sock, self.connections)
                self.connections += 1
                self.links.append(link)
            thread = threading.Thread(
                target=link._serve, name=f"hostile-conn-{link.index}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
