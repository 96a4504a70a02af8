"""A sans-IO HTTP/2 client connection, written for gRPC.

Bytes in (`ClientConnection.receive`), events out, bytes to send
(`ClientConnection.data_to_send`): no socket, no event loop, no clock (the caller passes
the time), like `h2`, but only what a gRPC client needs and cheap on the hot path. Frames
are parsed in place with `struct` from the received buffer; outgoing frames are appended
to one bytearray. Header blocks go through `transports._hpack` (stateless cached request
blocks, a caching response decoder).

What the core enforces (RFC 9113): the server's first frame is SETTINGS; frame sizes
(ours on receive, the server's on send); padding; CONTINUATION sequences; stream-id
rules (frames on streams we never opened are connection errors, frames on closed streams
are ignored); flow control in both directions, with WINDOW_UPDATEs batched until half a
window is owed; SETTINGS values; PUSH_PROMISE is refused (push is disabled). PING and
SETTINGS are answered automatically. Floods of PING, SETTINGS, empty DATA (or empty
CONTINUATION) frames end the connection with ENHANCE_YOUR_CALM, by the rules and limits
of `_wire.FrameGate`. Every connection error raises `ConnectionFailed` with a GOAWAY
already queued; a server's mistake on one stream resets that stream only.

Additions to the interface agreed with the drivers (all additive):
`ClientConnection.open_streams`, `ClientConnection.goaway_received`,
`ClientConnection.closed`, `ClientConnection.peer_max_header_list_size`,
`ClientConnection.settings_acked`,
`DEFAULT_MAX_HEADER_LIST_SIZE`, and the "empty CONTINUATION" flood kind. One sharpening:
`forget_stream()` on a stream still open in either direction resets it with CANCEL
(on a stream that ended both ways it does nothing, as agreed), so that no stream is
left open on the server. A driver turns `StreamReset(remote=False)` (the server broke
the protocol on that stream: a malformed header block, DATA before the headers, trailers
without END_STREAM) into a `ProtocolError` for that call only.
"""

from __future__ import annotations

import struct

from . import _wire
from ._hpack import (
    DEFAULT_TABLE_SIZE,
    HeaderBlockError,
    RequestHeaderEncoder,
    RequestTable,
    ResponseHeaderDecoder,
)

__all__ = [
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "DEFAULT_MAX_HEADER_LIST_SIZE",
    "ENHANCE_YOUR_CALM",
    "FLOW_CONTROL_ERROR",
    "FRAME_SIZE_ERROR",
    "HTTP_1_1_REQUIRED",
    "INADEQUATE_SECURITY",
    "INTERNAL_ERROR",
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "REFUSED_STREAM",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "ClientConnection",
    "ConnectionFailed",
    "Data",
    "Event",
    "GoAway",
    "PingAcked",
    "RequestHeaderEncoder",
    "ResponseHeaders",
    "SettingsChanged",
    "StreamIdsExhausted",
    "StreamReset",
    "Trailers",
    "WindowUpdated",
]

# --- error codes (RFC 9113 section 7) ------------------------------------------------

NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xA
ENHANCE_YOUR_CALM = 0xB
INADEQUATE_SECURITY = 0xC
HTTP_1_1_REQUIRED = 0xD

_ERROR_NAMES = {
    NO_ERROR: "NO_ERROR",
    PROTOCOL_ERROR: "PROTOCOL_ERROR",
    INTERNAL_ERROR: "INTERNAL_ERROR",
    FLOW_CONTROL_ERROR: "FLOW_CONTROL_ERROR",
    SETTINGS_TIMEOUT: "SETTINGS_TIMEOUT",
    STREAM_CLOSED: "STREAM_CLOSED",
    FRAME_SIZE_ERROR: "FRAME_SIZE_ERROR",
    REFUSED_STREAM: "REFUSED_STREAM",
    CANCEL: "CANCEL",
    COMPRESSION_ERROR: "COMPRESSION_ERROR",
    CONNECT_ERROR: "CONNECT_ERROR",
    ENHANCE_YOUR_CALM: "ENHANCE_YOUR_CALM",
    INADEQUATE_SECURITY: "INADEQUATE_SECURITY",
    HTTP_1_1_REQUIRED: "HTTP_1_1_REQUIRED",
}

DEFAULT_MAX_HEADER_LIST_SIZE = 64 * 1024
"""Largest response header list accepted by default (RFC 9113 size: name + value + 32)."""

# --- frames ----------------------------------------------------------------------------

_DATA = 0x0
_HEADERS = 0x1
_PRIORITY = 0x2
_RST_STREAM = 0x3
_SETTINGS = 0x4
_PUSH_PROMISE = 0x5
_PING = 0x6
_GOAWAY = 0x7
_WINDOW_UPDATE = 0x8
_CONTINUATION = 0x9

_END_STREAM = 0x1
_ACK = 0x1
_END_HEADERS = 0x4
_PADDED = 0x8
_PRIORITY_FLAG = 0x20

_SETTING_HEADER_TABLE_SIZE = 0x1
_SETTING_ENABLE_PUSH = 0x2
_SETTING_MAX_CONCURRENT_STREAMS = 0x3
_SETTING_INITIAL_WINDOW_SIZE = 0x4
_SETTING_MAX_FRAME_SIZE = 0x5
_SETTING_MAX_HEADER_LIST_SIZE = 0x6
_SETTING_ENABLE_CONNECT_PROTOCOL = 0x8

# A frame header: (length << 8 | type) as 32 bits, the flags, the stream id.
_HEAD = struct.Struct(">IBI")
_HEAD_SIZE = _HEAD.size
_U32 = struct.Struct(">I")
_TWO_U32 = struct.Struct(">II")
_SETTING = struct.Struct(">HI")

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_MAX_WINDOW = 2**31 - 1
_DEFAULT_WINDOW = 65_535
_MIN_FRAME_SIZE = 16_384
_MAX_FRAME_SIZE = 2**24 - 1
_MAX_STREAM_ID = 2**31 - 1
_UNLIMITED_STREAMS = 2**31 - 1

_SETTINGS_ACK_FRAME = _HEAD.pack(_SETTINGS, _ACK, 0)
_PING_ACK_HEAD = _HEAD.pack(8 << 8 | _PING, _ACK, 0)
_PING_HEAD = _HEAD.pack(8 << 8 | _PING, 0, 0)

# The flood kinds counted, as `_wire.FrameGate` counts them (plus empty CONTINUATION,
# which costs work and makes no progress just like empty DATA).
_FLOOD_KINDS = ("PING", "SETTINGS", "empty DATA", "empty CONTINUATION")


# --- errors ----------------------------------------------------------------------------


class ConnectionFailed(Exception):
    """The server broke HTTP/2 (or flooded us): the connection is over.

    A GOAWAY with `code` is already queued in `data_to_send()`; the driver flushes it
    (best effort) and fails every call with `transports.ProtocolError(str(exc))`.

    Attributes:
        code: The HTTP/2 error code sent in our GOAWAY.
        flood: What the server flooded us with ("PING", "SETTINGS", "empty DATA",
            "empty CONTINUATION") when that was the reason, else None.
    """

    def __init__(self, message: str, code: int, flood: str | None = None) -> None:
        """Create the error.

        Args:
            message: What the server did wrong.
            code: The HTTP/2 error code of our GOAWAY.
            flood: The flood kind, if the server flooded us.
        """
        super().__init__(message)
        self.code = code
        self.flood = flood


class StreamIdsExhausted(Exception):
    """No client stream id is left on this connection; open a new one for the call."""


# --- events ----------------------------------------------------------------------------


class ResponseHeaders:
    """The first non-informational header block of a stream (1xx blocks are dropped).

    Attributes:
        stream_id: The stream.
        headers: The decoded block, pseudo-headers first.
        end_stream: Whether the block ends the stream (a trailers-only response).
    """

    __slots__ = ("end_stream", "headers", "stream_id")

    def __init__(self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool):
        """Create the event."""
        self.stream_id = stream_id
        self.headers = headers
        self.end_stream = end_stream

    def __repr__(self) -> str:
        return f"ResponseHeaders({self.stream_id}, {self.headers!r}, {self.end_stream})"


class Trailers:
    """A stream's second header block; it always ends the stream.

    Attributes:
        stream_id: The stream.
        headers: The decoded block.
    """

    __slots__ = ("headers", "stream_id")

    def __init__(self, stream_id: int, headers: list[tuple[bytes, bytes]]):
        """Create the event."""
        self.stream_id = stream_id
        self.headers = headers

    def __repr__(self) -> str:
        return f"Trailers({self.stream_id}, {self.headers!r})"


class Data:
    """DATA received on a stream.

    Attributes:
        stream_id: The stream.
        data: The payload, padding removed.
        flow_length: The flow-controlled length (padding included): exactly what the
            driver hands back through `ClientConnection.ack()` once it consumed the data.
        end_stream: Whether the frame ends the stream.
    """

    __slots__ = ("data", "end_stream", "flow_length", "stream_id")

    def __init__(self, stream_id: int, data: bytes, flow_length: int, end_stream: bool):
        """Create the event."""
        self.stream_id = stream_id
        self.data = data
        self.flow_length = flow_length
        self.end_stream = end_stream

    def __repr__(self) -> str:
        return (
            f"Data({self.stream_id}, {len(self.data)} bytes, flow {self.flow_length}, "
            f"{self.end_stream})"
        )


class StreamReset:
    """A stream was reset; it is closed and forgotten.

    Attributes:
        stream_id: The stream.
        error_code: The HTTP/2 error code.
        remote: True for the server's RST_STREAM; False when the core reset the stream
            itself because the server broke the protocol on it (RST_STREAM queued).
    """

    __slots__ = ("error_code", "remote", "stream_id")

    def __init__(self, stream_id: int, error_code: int, remote: bool):
        """Create the event."""
        self.stream_id = stream_id
        self.error_code = error_code
        self.remote = remote

    def __repr__(self) -> str:
        return f"StreamReset({self.stream_id}, {self.error_code:#x}, remote={self.remote})"


class WindowUpdated:
    """A send window grew (`stream_id` 0: the connection's).

    Attributes:
        stream_id: The stream, or 0 for the connection.
    """

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int):
        """Create the event."""
        self.stream_id = stream_id

    def __repr__(self) -> str:
        return f"WindowUpdated({self.stream_id})"


class SettingsChanged:
    """The server's SETTINGS were applied (and acknowledged)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SettingsChanged()"


class PingAcked:
    """The server acknowledged one of our PINGs.

    Attributes:
        data: The 8 bytes of the PING.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        """Create the event."""
        self.data = data

    def __repr__(self) -> str:
        return f"PingAcked({self.data!r})"


class GoAway:
    """The server sent GOAWAY; the connection stays readable for the streams it keeps.

    Attributes:
        error_code: The HTTP/2 error code.
        last_stream_id: Streams up to this id may still finish; later ones were not
            processed.
        debug: The debug data.
    """

    __slots__ = ("debug", "error_code", "last_stream_id")

    def __init__(self, error_code: int, last_stream_id: int, debug: bytes):
        """Create the event."""
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.debug = debug

    def __repr__(self) -> str:
        return f"GoAway({self.error_code:#x}, {self.last_stream_id}, {self.debug!r})"


Event = (
    ResponseHeaders
    | Trailers
    | Data
    | StreamReset
    | WindowUpdated
    | SettingsChanged
    | PingAcked
    | GoAway
)
"""Everything `ClientConnection.receive` returns."""

_SETTINGS_CHANGED = SettingsChanged()


# --- the connection --------------------------------------------------------------------


class _Stream:
    """What the core keeps per open stream."""

    __slots__ = (
        "headers_received",
        "local_closed",
        "owed",
        "recv_window",
        "remote_closed",
        "send_window",
    )

    def __init__(self, send_window: int, recv_window: int, local_closed: bool) -> None:
        self.send_window = send_window
        self.recv_window = recv_window
        self.owed = 0  # consumed bytes not yet given back with a WINDOW_UPDATE
        self.local_closed = local_closed
        self.remote_closed = False
        self.headers_received = False


class _HeaderBlock:
    """A header block being assembled from HEADERS and CONTINUATION frames."""

    __slots__ = ("block", "end_stream", "stream_id")

    def __init__(self, stream_id: int, end_stream: bool, fragment: bytes | memoryview) -> None:
        self.stream_id = stream_id
        self.end_stream = end_stream
        self.block = bytearray(fragment)


def _error_name(code: int) -> str:
    return _ERROR_NAMES.get(code, f"{code:#x}")


class ClientConnection:
    """The client side of one HTTP/2 connection carrying gRPC calls (sans-IO).

    Attributes:
        has_backlog: Complete frames are buffered but not processed yet: call
            `receive(b"", now)` again after letting other tasks run.
        settings_received: The server's first SETTINGS frame arrived.
        max_concurrent_streams: The server's stream limit (2**31-1 until it says).
        goaway_received: The last stream id of the server's latest GOAWAY, or None.
        closed: We queued a GOAWAY (`close()` or a connection error).
    """

    def __init__(
        self,
        *,
        stream_window: int = 1 << 20,
        connection_window: int = 1 << 30,
        max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE,
        max_frame_size: int = _MIN_FRAME_SIZE,
    ) -> None:
        """Create a connection; call `initiate()` to queue its preface.

        Args:
            stream_window: Our receive window per stream (what one call may buffer).
            connection_window: Our receive window for the whole connection.
            max_header_list_size: The largest response header list accepted.
            max_frame_size: The largest frame payload accepted (16384 to 2**24-1).

        Raises:
            ValueError: If a size is out of its range.
        """
        if not 0 <= stream_window <= _MAX_WINDOW:
            raise ValueError(f"stream_window must be 0..{_MAX_WINDOW}, got {stream_window}")
        if not _DEFAULT_WINDOW <= connection_window <= _MAX_WINDOW:
            raise ValueError(
                f"connection_window must be {_DEFAULT_WINDOW}..{_MAX_WINDOW}, "
                f"got {connection_window}"
            )
        if not 0 < max_header_list_size <= _MAX_WINDOW:
            raise ValueError(f"max_header_list_size must be > 0, got {max_header_list_size}")
        if not _MIN_FRAME_SIZE <= max_frame_size <= _MAX_FRAME_SIZE:
            raise ValueError(
                f"max_frame_size must be {_MIN_FRAME_SIZE}..{_MAX_FRAME_SIZE}, got {max_frame_size}"
            )
        self._stream_window = stream_window
        self._connection_window = connection_window
        self._max_header_list_size = max_header_list_size
        self._max_frame_size = max_frame_size
        # A compressed block can be larger than its decoded list only by a little
        # (framing of each field); anything far beyond is not a header block but a flood.
        self._max_block = 2 * max_header_list_size + _MIN_FRAME_SIZE

        self._out = bytearray()
        self._in = bytearray()
        self._streams: dict[int, _Stream] = {}
        self._next_id = 1
        self._decoder = ResponseHeaderDecoder(max_header_list_size)
        self._requests = RequestTable()
        self._header_block: _HeaderBlock | None = None

        # Receiving: our windows as the server sees them, and what we owe back.
        self._recv_conn_window = _DEFAULT_WINDOW
        self._conn_owed = 0
        self._conn_threshold = connection_window // 2
        self._stream_threshold = max(stream_window // 2, 1)
        # Our INITIAL_WINDOW_SIZE applies once the server acknowledged our SETTINGS.
        self._local_initial_window = _DEFAULT_WINDOW
        self._local_settings_acked = False

        # Sending: the server's windows and limits.
        self._send_conn_window = _DEFAULT_WINDOW
        self._peer_initial_window = _DEFAULT_WINDOW
        self._peer_max_frame_size = _MIN_FRAME_SIZE
        self.peer_max_header_list_size: int | None = None
        """The server's MAX_HEADER_LIST_SIZE (advisory), or None if it sent none."""
        self._table_update_pending = False
        self._table_update_sent = False

        self._first_frame = True
        self._failure: ConnectionFailed | None = None
        self._flood_start: float | None = None
        self._flood_counts = dict.fromkeys(_FLOOD_KINDS, 0)

        self.has_backlog = False
        self.settings_received = False
        self.max_concurrent_streams = _UNLIMITED_STREAMS
        self.goaway_received: int | None = None
        self.closed = False

    # --- sending ---------------------------------------------------------------------

    def initiate(self) -> None:
        """Queue the client preface, our SETTINGS and the connection window's growth."""
        out = self._out
        out += _PREFACE
        settings = (
            (_SETTING_ENABLE_PUSH, 0),
            (_SETTING_INITIAL_WINDOW_SIZE, self._stream_window),
            (_SETTING_MAX_HEADER_LIST_SIZE, self._max_header_list_size),
            (_SETTING_MAX_FRAME_SIZE, self._max_frame_size),
        )
        out += _HEAD.pack(len(settings) * 6 << 8 | _SETTINGS, 0, 0)
        for ident, value in settings:
            out += _SETTING.pack(ident, value)
        growth = self._connection_window - _DEFAULT_WINDOW
        if growth:
            out += _HEAD.pack(4 << 8 | _WINDOW_UPDATE, 0, 0)
            out += _U32.pack(growth)
            self._recv_conn_window += growth

    @property
    def pending(self) -> int:
        """How many bytes are queued for sending, without taking them."""
        return len(self._out)

    @property
    def settings_acked(self) -> bool:
        """Whether the server acknowledged our SETTINGS (a driver may time this out)."""
        return self._local_settings_acked

    @property
    def open_streams(self) -> int:
        """How many streams the core still tracks (opened, not closed or forgotten)."""
        return len(self._streams)

    def requeue(self, data: bytes) -> None:
        """Put back, in front of anything queued since, bytes taken but not written.

        Args:
            data: The unwritten tail of what `data_to_send()` returned.
        """
        self._out[0:0] = data

    def data_to_send(self) -> bytes:
        """Take everything queued for sending.

        Returns:
            The bytes to write, b"" when nothing is queued.
        """
        out = self._out
        if not out:
            return b""
        data = bytes(out)
        out.clear()
        return data

    def next_stream_id(self) -> int:
        """The id the next `open_stream()` will use."""
        return self._next_id

    def _unused_stream_id(self) -> int:
        """The id the next stream takes (not taken yet).

        Raises:
            StreamIdsExhausted: If the connection has no client stream id left.
        """
        stream_id = self._next_id
        if stream_id > _MAX_STREAM_ID:
            raise StreamIdsExhausted(
                "this connection used all its stream ids; a new connection is needed"
            )
        return stream_id

    def open_request(
        self,
        encoder: RequestHeaderEncoder,
        method: str,
        metadata: tuple[tuple[str, str | bytes], ...],
        timeout: float | None,
        *,
        end_stream: bool = False,
    ) -> int:
        """Open a stream for a request, its header block written for this connection.

        Fields that repeat go into the server's HPACK dynamic table and are referenced
        from there (see `RequestTable`).

        Args:
            encoder: The transport's request encoder (origin and cached fields).
            method: The method path, e.g. `/package.Service/Method`.
            metadata: Checked call metadata (see `transports._base.check_call`).
            timeout: Seconds until the deadline, sent as `grpc-timeout`; None sends none.
            end_stream: Whether the request has no body.

        Returns:
            The new stream's id.

        Raises:
            StreamIdsExhausted: If the connection has no client stream id left.
            ValueError: As `RequestHeaderEncoder.fields` (before anything changed).
        """
        self._unused_stream_id()
        # The table's state changes with the block, which must therefore go out: no
        # failure is possible between encoding it and queueing it.
        block = self._requests.encode(encoder, method, metadata, timeout)
        return self.open_stream(block, end_stream=end_stream)

    def open_stream(self, header_block: bytes, *, end_stream: bool = False) -> int:
        """Open a stream by queueing its HEADERS (and CONTINUATION frames if needed).

        Args:
            header_block: The request's HPACK block (see `RequestHeaderEncoder`).
            end_stream: Whether the request has no body.

        Returns:
            The new stream's id.

        Raises:
            StreamIdsExhausted: If the connection has no client stream id left.
        """
        stream_id = self._unused_stream_id()
        self._next_id = stream_id + 2
        if self._table_update_pending:
            # The server lowered its HPACK table size: tell its decoder ours is now 0
            # (our entries are gone, and no more are added), at the start of the next
            # block.
            header_block = b"\x20" + header_block
            self._table_update_pending = False
        flags = _END_STREAM if end_stream else 0
        out = self._out
        size = len(header_block)
        limit = self._peer_max_frame_size
        if size <= limit:
            out += _HEAD.pack(size << 8 | _HEADERS, flags | _END_HEADERS, stream_id)
            out += header_block
        else:
            out += _HEAD.pack(limit << 8 | _HEADERS, flags, stream_id)
            out += header_block[:limit]
            offset = limit
            while offset < size:
                chunk = header_block[offset : offset + limit]
                offset += limit
                last = _END_HEADERS if offset >= size else 0
                out += _HEAD.pack(len(chunk) << 8 | _CONTINUATION, last, stream_id)
                out += chunk
        self._streams[stream_id] = _Stream(
            self._peer_initial_window, self._local_initial_window, end_stream
        )
        return stream_id

    def send_window(self, stream_id: int) -> int:
        """How many bytes of DATA `stream_id` may send now (0 for an unknown stream)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        return max(min(stream.send_window, self._send_conn_window), 0)

    def send_data(self, stream_id: int, data: bytes | memoryview, *, end_stream: bool) -> int:
        """Queue as much of `data` as the flow-control windows allow.

        Args:
            stream_id: An open stream whose request is not finished.
            data: The bytes to send.
            end_stream: Whether `data` ends the request; END_STREAM goes out only with
                its last byte (an empty `data` sends an empty DATA frame with it).

        Returns:
            How many bytes of `data` were queued (0..len(data)); send the rest after a
            `WindowUpdated` or `SettingsChanged` event.

        Raises:
            ValueError: If the stream is not open for sending.
        """
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed:
            raise ValueError(f"stream {stream_id} is not open for sending")
        size = len(data)
        window = stream.send_window
        conn_window = self._send_conn_window
        take = min(size, window, conn_window)
        if take < 0:
            take = 0
        out = self._out
        limit = self._peer_max_frame_size
        done = end_stream and take == size
        if take <= limit:
            if take or done:
                out += _HEAD.pack(take << 8 | _DATA, _END_STREAM if done else 0, stream_id)
                out += data[:take] if take < size else data
        else:
            offset = 0
            while offset < take:
                chunk = min(limit, take - offset)
                last = done and offset + chunk == take
                out += _HEAD.pack(chunk << 8 | _DATA, _END_STREAM if last else 0, stream_id)
                out += data[offset : offset + chunk]
                offset += chunk
        stream.send_window = window - take
        self._send_conn_window = conn_window - take
        if done:
            stream.local_closed = True
            if stream.remote_closed:
                del self._streams[stream_id]
        return take

    def ack(self, stream_id: int, length: int) -> None:
        """Give back the flow-control window of `length` bytes the driver consumed.

        WINDOW_UPDATEs are batched: one goes out once half a window is owed, for the
        stream (while the server may still send on it) and for the connection.

        Args:
            stream_id: The stream the bytes arrived on (it may be closed by now).
            length: A `Data.flow_length`, or the sum of several.
        """
        if length <= 0:
            return
        owed = self._conn_owed + length
        if owed >= self._conn_threshold:
            self._window_update(0, owed)
            self._recv_conn_window += owed
            owed = 0
        self._conn_owed = owed
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.remote_closed:
            owed = stream.owed + length
            if owed >= self._stream_threshold:
                self._window_update(stream_id, owed)
                stream.recv_window += owed
                owed = 0
            stream.owed = owed

    def reset_stream(self, stream_id: int, error_code: int = CANCEL) -> None:
        """Queue RST_STREAM for a stream unless it is closed already, and forget it.

        Args:
            stream_id: The stream.
            error_code: The HTTP/2 error code to send.
        """
        if self._drop(stream_id):
            self._out += _HEAD.pack(4 << 8 | _RST_STREAM, 0, stream_id)
            self._out += _U32.pack(error_code)

    def forget_stream(self, stream_id: int) -> None:
        """Drop what the core keeps about a stream the driver is done with.

        A stream that ended both ways is dropped by the core already, so this costs
        nothing then. A stream still open in either direction (the server answered
        before the request was sent whole, or the driver gives up on a response) is
        reset with CANCEL: forgetting it silently would leave it open on the server.
        Frames arriving later for it are ignored (DATA still counts for the connection's
        window, which the core gives back itself).
        """
        if stream_id in self._streams:
            self.reset_stream(stream_id, CANCEL)

    def ping(self, data: bytes) -> None:
        """Queue a PING.

        Args:
            data: Its 8 bytes of opaque data; the `PingAcked` event carries them back.

        Raises:
            ValueError: If `data` is not 8 bytes long.
        """
        if len(data) != 8:
            raise ValueError(f"a PING carries 8 bytes, got {len(data)}")
        self._out += _PING_HEAD
        self._out += data

    def close(self, error_code: int = NO_ERROR, debug: bytes = b"") -> None:
        """Queue a GOAWAY (once: nothing if one was queued already).

        Args:
            error_code: The HTTP/2 error code.
            debug: Opaque debug data for the server's logs.
        """
        if not self.closed:
            self._goaway(error_code, debug)

    def _goaway(self, error_code: int, debug: bytes) -> None:
        self.closed = True
        # A client accepts no streams from the server, so the last one it took is 0.
        self._out += _HEAD.pack((8 + len(debug)) << 8 | _GOAWAY, 0, 0)
        self._out += _TWO_U32.pack(0, error_code)
        self._out += debug

    def _window_update(self, stream_id: int, increment: int) -> None:
        self._out += _HEAD.pack(4 << 8 | _WINDOW_UPDATE, 0, stream_id)
        self._out += _U32.pack(increment)

    def _drop(self, stream_id: int) -> bool:
        """Forget a stream; return whether it was tracked."""
        return self._streams.pop(stream_id, None) is not None

    # --- receiving -------------------------------------------------------------------

    def receive(self, data: bytes | bytearray | memoryview, now: float) -> list[Event]:
        """Process received bytes (at most `_wire.FRAMES_PER_BATCH` frames per call).

        Partial frames stay buffered; so do complete frames past the batch, which
        `has_backlog` announces.

        Args:
            data: The bytes as read from the connection (b"" to work off a backlog).
            now: The current time in seconds, on any monotonic clock.

        Returns:
            The events, in order.

        Raises:
            ConnectionFailed: On any connection error (a GOAWAY is queued); again on
                every later call.
        """
        if self._failure is not None:
            failure = self._failure
            raise ConnectionFailed(str(failure), failure.code, failure.flood)
        events: list[Event] = []
        buffer = self._in
        if buffer or type(data) is not bytes:
            if data:
                buffer += data
            if not buffer:
                self.has_backlog = False
                return events
            # Parsed in place; the view must be released before the buffer can shrink.
            view = memoryview(buffer)
            pos = 0
            try:
                pos = self._parse(view, events, now)
            except ConnectionFailed:
                self.has_backlog = False
                pos = len(buffer)
                raise
            finally:
                view.release()
                del buffer[:pos]
            return events
        if not data:
            self.has_backlog = False
            return events
        # The common case: whole frames in one read, parsed from the caller's bytes.
        try:
            pos = self._parse(data, events, now)
        except ConnectionFailed:
            self.has_backlog = False
            raise
        if pos < len(data):
            buffer += memoryview(data)[pos:]
        return events

    def _parse(self, src: bytes | memoryview, events: list[Event], now: float) -> int:
        """Process whole frames from `src`; return where the unprocessed part starts."""
        pos = 0
        end = len(src)
        frames = 0
        unpack = _HEAD.unpack_from
        max_frame = self._max_frame_size
        while end - pos >= _HEAD_SIZE:
            length_kind, flags, stream_id = unpack(src, pos)
            length = length_kind >> 8
            kind = length_kind & 0xFF
            stream_id &= _MAX_STREAM_ID
            if self._first_frame:
                self._check_first(bytes(src[pos : pos + _HEAD_SIZE]))
            if length > max_frame:
                self._fail(
                    FRAME_SIZE_ERROR,
                    f"a frame of {length} bytes exceeds our maximum frame size {max_frame}",
                )
            start = pos + _HEAD_SIZE
            stop = start + length
            if stop > end:
                break
            if frames == _wire.FRAMES_PER_BATCH:
                self.has_backlog = True
                return pos
            frames += 1
            pos = stop
            if self._header_block is not None and kind != _CONTINUATION:
                self._fail(PROTOCOL_ERROR, "a header block was interrupted by another frame")
            if kind == _DATA:
                self._on_data(src, start, stop, flags, stream_id, events, now)
            elif kind == _HEADERS:
                self._on_headers(src, start, stop, flags, stream_id, events)
            elif kind == _WINDOW_UPDATE:
                self._on_window_update(src, start, stop, stream_id, events)
            elif kind == _PING:
                self._on_ping(src, start, stop, flags, stream_id, events, now)
            elif kind == _SETTINGS:
                self._on_settings(src, start, stop, flags, stream_id, events, now)
            elif kind == _RST_STREAM:
                self._on_rst_stream(src, start, stop, stream_id, events)
            elif kind == _GOAWAY:
                self._on_goaway(src, start, stop, stream_id, events)
            elif kind == _CONTINUATION:
                self._on_continuation(src, start, stop, flags, stream_id, events, now)
            elif kind == _PRIORITY:
                self._on_priority(start, stop, stream_id, events)
            elif kind == _PUSH_PROMISE:
                self._fail(PROTOCOL_ERROR, "PUSH_PROMISE received, but push is disabled")
            # Unknown frame types are ignored (RFC 9113 4.1, 5.5).
        self.has_backlog = False
        return pos

    def _check_first(self, head: bytes) -> None:
        problem = _wire.server_preface_problem(head)
        if problem is not None:
            self._fail(PROTOCOL_ERROR, problem, plain=True)
        self._first_frame = False

    def _fail(
        self, code: int, message: str, flood: str | None = None, *, plain: bool = False
    ) -> None:
        """Queue GOAWAY(code) and raise `ConnectionFailed` (with `message` as is if `plain`)."""
        text = f"the server broke the HTTP/2 protocol: {message} ({_error_name(code)})"
        if plain:
            text = message
        elif flood is not None:
            text = (
                f"the server flooded the connection with {flood} frames; "
                "it was closed with ENHANCE_YOUR_CALM"
            )
        # Queued even after our own close(): the server learns why the connection ends.
        self._goaway(code, message.encode("ascii", "replace")[:256])
        failure = ConnectionFailed(text, code, flood)
        self._failure = failure
        raise failure

    def _count(self, kind: str, now: float) -> None:
        """Count a frame that costs us work without progress; fail past the limit."""
        start = self._flood_start
        if start is None or now - start > _wire.FLOOD_WINDOW:
            self._flood_start = now
            self._flood_counts = dict.fromkeys(_FLOOD_KINDS, 0)
        counts = self._flood_counts
        counts[kind] += 1
        if counts[kind] > _wire.FLOOD_LIMIT:
            self._fail(ENHANCE_YOUR_CALM, f"{kind} flood", flood=kind)

    def _is_idle(self, stream_id: int) -> bool:
        """Whether a stream id was never opened (by us: the server cannot open any)."""
        return not stream_id & 1 or stream_id >= self._next_id

    def _stream_error(self, stream_id: int, code: int, events: list[Event]) -> None:
        """Reset a stream the server broke the protocol on, and report it."""
        self.reset_stream(stream_id, code)
        events.append(StreamReset(stream_id, code, False))

    def _give_back(self, length: int) -> None:
        """Return connection window for DATA nobody will consume."""
        if length:
            self.ack(0, length)

    def _on_data(
        self,
        src: bytes | memoryview,
        start: int,
        stop: int,
        flags: int,
        stream_id: int,
        events: list[Event],
        now: float,
    ) -> None:
        if not stream_id:
            self._fail(PROTOCOL_ERROR, "DATA on stream 0")
        flow = stop - start
        if flags & _PADDED:
            if not flow:
                self._fail(FRAME_SIZE_ERROR, "a padded DATA frame without its pad length")
            pad = src[start]
            if pad >= flow:
                self._fail(PROTOCOL_ERROR, "DATA padding as long as the frame")
            start += 1
            stop -= pad
        if flow > self._recv_conn_window:
            self._fail(FLOW_CONTROL_ERROR, "DATA beyond the connection's flow-control window")
        self._recv_conn_window -= flow
        end_stream = bool(flags & _END_STREAM)
        if start == stop and not end_stream:
            self._count("empty DATA", now)
        stream = self._streams.get(stream_id)
        if stream is None or stream.remote_closed:
            if stream is None and self._is_idle(stream_id):
                self._fail(PROTOCOL_ERROR, f"DATA on stream {stream_id}, which was never opened")
            self._give_back(flow)
            return
        if flow > stream.recv_window:
            self._fail(FLOW_CONTROL_ERROR, f"DATA beyond stream {stream_id}'s flow-control window")
        stream.recv_window -= flow
        if not stream.headers_received:
            self._give_back(flow)
            self._stream_error(stream_id, PROTOCOL_ERROR, events)
            return
        if start == stop and not end_stream:
            self._give_back(flow)
            return
        if end_stream:
            stream.remote_closed = True
            if stream.local_closed:
                del self._streams[stream_id]
        events.append(Data(stream_id, bytes(src[start:stop]), flow, end_stream))

    def _on_headers(
        self,
        src: bytes | memoryview,
        start: int,
        stop: int,
        flags: int,
        stream_id: int,
        events: list[Event],
    ) -> None:
        if not stream_id:
            self._fail(PROTOCOL_ERROR, "HEADERS on stream 0")
        pad = 0
        if flags & _PADDED:
            if start == stop:
                self._fail(FRAME_SIZE_ERROR, "a padded HEADERS frame without its pad length")
            pad = src[start]
            start += 1
        if flags & _PRIORITY_FLAG:
            if stop - start < 5:
                self._fail(FRAME_SIZE_ERROR, "a HEADERS frame too short for its priority")
            start += 5
        if pad > stop - start:
            self._fail(PROTOCOL_ERROR, "HEADERS padding longer than the frame")
        stop -= pad
        if not stream_id & 1 or stream_id >= self._next_id:  # idle (inlined: hot path)
            self._fail(PROTOCOL_ERROR, f"HEADERS on stream {stream_id}, which was never opened")
        end_stream = bool(flags & _END_STREAM)
        if flags & _END_HEADERS:
            self._on_header_block(stream_id, bytes(src[start:stop]), end_stream, events)
        else:
            self._header_block = _HeaderBlock(stream_id, end_stream, src[start:stop])

    def _on_continuation(
        self,
        src: bytes | memoryview,
        start: int,
        stop: int,
        flags: int,
        stream_id: int,
        events: list[Event],
        now: float,
    ) -> None:
        pending = self._header_block
        if pending is None or pending.stream_id != stream_id:
            self._fail(PROTOCOL_ERROR, "CONTINUATION without a header block to continue")
        assert pending is not None
        block = pending.block
        block += src[start:stop]
        if len(block) > self._max_block:
            self._fail(PROTOCOL_ERROR, f"a header block of over {self._max_block} bytes")
        if flags & _END_HEADERS:
            self._header_block = None
            self._on_header_block(stream_id, bytes(block), pending.end_stream, events)
        elif start == stop:
            self._count("empty CONTINUATION", now)

    def _on_header_block(
        self, stream_id: int, block: bytes, end_stream: bool, events: list[Event]
    ) -> None:
        # Decoded even for a closed stream: the HPACK table must stay in step.
        try:
            headers, problem = self._decoder.decode(block)
        except HeaderBlockError as exc:
            self._fail(PROTOCOL_ERROR if exc.oversized else COMPRESSION_ERROR, str(exc))
            raise  # pragma: no cover - _fail raised
        stream = self._streams.get(stream_id)
        if stream is None or stream.remote_closed:
            return
        if not stream.headers_received:
            if problem is not None or not headers or headers[0][0] != b":status":
                self._stream_error(stream_id, PROTOCOL_ERROR, events)
                return
            status = headers[0][1]
            if len(status) == 3 and status[0] == 0x31:  # 1xx: informational, dropped
                if end_stream:
                    self._stream_error(stream_id, PROTOCOL_ERROR, events)
                return
            stream.headers_received = True
            if end_stream:
                stream.remote_closed = True
                if stream.local_closed:
                    del self._streams[stream_id]
            events.append(ResponseHeaders(stream_id, headers, end_stream))
            return
        if not end_stream or problem is not None or (headers and headers[0][0][:1] == b":"):
            self._stream_error(stream_id, PROTOCOL_ERROR, events)
            return
        stream.remote_closed = True
        if stream.local_closed:
            del self._streams[stream_id]
        events.append(Trailers(stream_id, headers))

    def _on_window_update(
        self,
        src: bytes | memoryview,
        start: int,
        stop: int,
        stream_id: int,
        events: list[Event],
    ) -> None:
        if stop - start != 4:
            self._fail(FRAME_SIZE_ERROR, "a WINDOW_UPDATE frame not of 4 bytes")
        increment = _U32.unpack_from(src, start)[0] & _MAX_WINDOW
        if not stream_id:
            if not increment:
                self._fail(PROTOCOL_ERROR, "a connection WINDOW_UPDATE of 0")
            window = self._send_conn_window + increment
            if window > _MAX_WINDOW:
                self._fail(FLOW_CONTROL_ERROR, "the connection's send window grew past 2**31-1")
            self._send_conn_window = window
            events.append(WindowUpdated(0))
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            if self._is_idle(stream_id):
                self._fail(
                    PROTOCOL_ERROR, f"WINDOW_UPDATE on stream {stream_id}, which was never opened"
                )
            return
        if not increment:
            self._stream_error(stream_id, PROTOCOL_ERROR, events)
            return
        window = stream.send_window + increment
        if window > _MAX_WINDOW:
            self._stream_error(stream_id, FLOW_CONTROL_ERROR, events)
            return
        stream.send_window = window
        if not stream.local_closed:
            events.append(WindowUpdated(stream_id))

    def _on_ping(
        self,
        src: bytes | memoryview,
        start: int,
        stop: int,
        flags: int,
        stream_id: int,
        events: list[Event],
        now: float,
    ) -> None:
        if stream_id:
            self._fail(PROTOCOL_ERROR, f"PING on stream {stream_id}")
        if stop - start != 8:
            self._fail(FRAME_SIZE_ERROR, "a PING frame not of 8 bytes")
        payload = bytes(src[start:stop])
        if flags & _ACK:
            events.append(PingAcked(payload))
            return
        self._count("PING", now)
        self._out += _PING_ACK_HEAD
        self._out += payload

    def _on_settings(
        self,
        src: bytes | memoryview,
        start: int,
        stop: int,
        flags: int,
        stream_id: int,
        events: list[Event],
        now: float,
    ) -> None:
        if stream_id:
            self._fail(PROTOCOL_ERROR, f"SETTINGS on stream {stream_id}")
        if flags & _ACK:
            if stop != start:
                self._fail(FRAME_SIZE_ERROR, "a SETTINGS acknowledgement with a payload")
            if not self._local_settings_acked:
                self._local_settings_acked = True
                # Our INITIAL_WINDOW_SIZE takes effect now, on open streams too.
                delta = self._stream_window - _DEFAULT_WINDOW
                self._local_initial_window = self._stream_window
                for stream in self._streams.values():
                    stream.recv_window += delta
            return
        if (stop - start) % 6:
            self._fail(FRAME_SIZE_ERROR, "a SETTINGS frame whose length is not a multiple of 6")
        self._count("SETTINGS", now)
        for offset in range(start, stop, 6):
            ident, value = _SETTING.unpack_from(src, offset)
            if ident == _SETTING_INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    self._fail(FLOW_CONTROL_ERROR, f"INITIAL_WINDOW_SIZE {value} over 2**31-1")
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                if delta:
                    for key, stream in self._streams.items():
                        # A window may go negative (RFC 9113 6.9.2), never past 2**31-1.
                        window = stream.send_window + delta
                        if window > _MAX_WINDOW:
                            self._fail(
                                FLOW_CONTROL_ERROR,
                                f"INITIAL_WINDOW_SIZE grew stream {key}'s window past 2**31-1",
                            )
                        stream.send_window = window
            elif ident == _SETTING_MAX_FRAME_SIZE:
                if not _MIN_FRAME_SIZE <= value <= _MAX_FRAME_SIZE:
                    self._fail(PROTOCOL_ERROR, f"MAX_FRAME_SIZE {value} out of range")
                self._peer_max_frame_size = value
            elif ident == _SETTING_MAX_CONCURRENT_STREAMS:
                self.max_concurrent_streams = value
            elif ident == _SETTING_HEADER_TABLE_SIZE:
                if value < DEFAULT_TABLE_SIZE and not self._table_update_sent:
                    # Blocks queued before our acknowledgement (just below) are decoded
                    # with the old size; the next one starts by emptying the table.
                    self._table_update_pending = self._table_update_sent = True
                    self._requests.disable()
            elif ident == _SETTING_ENABLE_PUSH:
                # RFC 9113 forbids a server to send 1, but RFC 7540 servers may; push
                # stays disabled by our own setting either way.
                if value > 1:
                    self._fail(PROTOCOL_ERROR, f"ENABLE_PUSH {value} is not 0 or 1")
            elif ident == _SETTING_MAX_HEADER_LIST_SIZE:
                self.peer_max_header_list_size = value
            elif ident == _SETTING_ENABLE_CONNECT_PROTOCOL and value > 1:
                self._fail(PROTOCOL_ERROR, f"ENABLE_CONNECT_PROTOCOL {value} is not 0 or 1")
            # Unknown settings are ignored (RFC 9113 6.5.2).
        self._out += _SETTINGS_ACK_FRAME
        self.settings_received = True
        events.append(_SETTINGS_CHANGED)

    def _on_rst_stream(
        self,
        src: bytes | memoryview,
        start: int,
        stop: int,
        stream_id: int,
        events: list[Event],
    ) -> None:
        if not stream_id:
            self._fail(PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if stop - start != 4:
            self._fail(FRAME_SIZE_ERROR, "an RST_STREAM frame not of 4 bytes")
        if not self._drop(stream_id):
            if self._is_idle(stream_id):
                self._fail(
                    PROTOCOL_ERROR, f"RST_STREAM on stream {stream_id}, which was never opened"
                )
            return
        events.append(StreamReset(stream_id, _U32.unpack_from(src, start)[0], True))

    def _on_goaway(
        self,
        src: bytes | memoryview,
        start: int,
        stop: int,
        stream_id: int,
        events: list[Event],
    ) -> None:
        if stream_id:
            self._fail(PROTOCOL_ERROR, f"GOAWAY on stream {stream_id}")
        if stop - start < 8:
            self._fail(FRAME_SIZE_ERROR, "a GOAWAY frame shorter than 8 bytes")
        last_stream_id, error_code = _TWO_U32.unpack_from(src, start)
        last_stream_id &= _MAX_STREAM_ID
        self.goaway_received = last_stream_id
        events.append(GoAway(error_code, last_stream_id, bytes(src[start + 8 : stop])))

    def _on_priority(self, start: int, stop: int, stream_id: int, events: list[Event]) -> None:
        # Priorities mean nothing to a client; only the frame's shape is checked.
        if not stream_id:
            self._fail(PROTOCOL_ERROR, "PRIORITY on stream 0")
        if stop - start != 5 and stream_id in self._streams:
            self._stream_error(stream_id, FRAME_SIZE_ERROR, events)
