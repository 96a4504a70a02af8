"""Sans-IO gRPC over HTTP/2: message framing, request headers, response status.

Nothing here does I/O or touches an event loop; it works on bytes and header lists
(lists of `(bytes, bytes)` pairs, the form `h2` takes and gives with
`header_encoding=None`), so every transport that speaks HTTP/2 itself can share it,
and it is tested from bytes alone.

Protocol violations raise `ProtocolError`; a message over the receive limit raises
`ResourceExhausted`, as gRPC does. A response that carries a status (or an HTTP
status that stands for one) yields a `Status`, whose `error()` is the matching
`RpcError`.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import struct
from collections.abc import Iterable, Sequence
from decimal import Decimal
from urllib.parse import unquote_to_bytes

import attrs

from ._errors import ProtocolError, ResourceExhausted, RpcError, error_for_status
from ._status import StatusCode

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "ENHANCE_YOUR_CALM",
    "FLOOD_LIMIT",
    "FLOOD_WINDOW",
    "FRAMES_PER_BATCH",
    "PREFIX_LENGTH",
    "REFUSED_STREAM_BACKOFF",
    "REFUSED_STREAM_RETRIES",
    "FrameGate",
    "Headers",
    "MessageDecoder",
    "ResponseMetadata",
    "Status",
    "decode_metadata",
    "decode_timeout",
    "encode_message",
    "encode_timeout",
    "is_base64",
    "message_length",
    "parse_response_headers",
    "parse_trailers",
    "refused_retry_pause",
    "request_headers",
    "server_preface_problem",
    "status_for_http",
    "status_for_reset",
]

Headers = list[tuple[bytes, bytes]]
"""An HTTP/2 header block as `h2` takes and gives it (`header_encoding=None`)."""

CONTENT_TYPE = b"application/grpc+proto"
DEFAULT_MAX_MESSAGE_LENGTH = 4 * 1024 * 1024
"""Largest message a transport accepts unless told otherwise: 4 MiB, as gRPC's default.

Checked on the message's length prefix, before any of it is buffered."""

REFUSED_STREAM_RETRIES = 5
"""How often a call the server refused (RST_STREAM REFUSED_STREAM) is sent again.

A refused stream was not processed, so every transport repeats the call transparently,
up to this many times and within its deadline, as long as nothing of the response has
arrived; after that the call fails with `Unavailable`."""
REFUSED_STREAM_BACKOFF = 0.01
"""Seconds before the first repeat of a refused call; doubled for each next one.

Servers refuse a little past their stream limit (grpcio frees a stream some time after
it ended), so an immediate repeat would often be refused again."""

# The first frame a server sends on a new connection: a 9-byte frame header.
_FRAME_HEADER_LENGTH = 9
_SETTINGS_FRAME = 0x4
_ACK_FLAG = 0x1

_PREFIX = struct.Struct(">BI")
_PREFIX_LENGTH = _PREFIX.size
# The length field is 32 bits wide; no message can be longer.
_MAX_WIRE_LENGTH = 2**32 - 1

# grpc-timeout: at most 8 digits, units from finest to coarsest with their size in ns.
_TIMEOUT_MAX_VALUE = 99_999_999
_TIMEOUT_UNITS: tuple[tuple[bytes, int], ...] = (
    (b"n", 1),
    (b"u", 1_000),
    (b"m", 1_000_000),
    (b"S", 1_000_000_000),
    (b"M", 60 * 1_000_000_000),
    (b"H", 3600 * 1_000_000_000),
)
_UNIT_NANOS = dict(_TIMEOUT_UNITS)

# Headers that belong to the protocol, not to the application's metadata.
_PROTOCOL_HEADERS = frozenset(
    {
        b"content-type",
        b"grpc-status",
        b"grpc-message",
        b"grpc-status-details-bin",
        b"grpc-encoding",
        b"grpc-accept-encoding",
    }
)

# HTTP status -> gRPC status when a response has no grpc-status (the gRPC spec's
# http-grpc-status-mapping); every other non-200 status means UNKNOWN.
_HTTP_TO_GRPC = {
    400: StatusCode.INTERNAL,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.UNIMPLEMENTED,
    429: StatusCode.UNAVAILABLE,
    502: StatusCode.UNAVAILABLE,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.UNAVAILABLE,
}

# RST_STREAM error code -> gRPC status (the gRPC spec's "Errors" section).
_REFUSED_STREAM = 0x7
_RESET_TO_GRPC = {
    0x7: StatusCode.UNAVAILABLE,  # REFUSED_STREAM: not processed, safe to retry
    0x8: StatusCode.CANCELLED,  # CANCEL
    0xB: StatusCode.RESOURCE_EXHAUSTED,  # ENHANCE_YOUR_CALM
    0xC: StatusCode.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}

ResponseMetadata = tuple[tuple[str, str | bytes], ...]
"""Metadata received: (name, value) pairs; values of `-bin` names are bytes."""


@attrs.frozen(kw_only=True)
class Status:
    """How a call ended, as its trailers (or its HTTP status) say.

    Attributes:
        code: The status code; numbers outside the 17 known codes stay ints.
        message: The percent-decoded `grpc-message`.
        details: The decoded `grpc-status-details-bin`, or None.
        metadata: The trailing metadata, protocol headers removed.
    """

    code: StatusCode | int
    message: str = ""
    details: bytes | None = None
    metadata: ResponseMetadata = ()

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return self.code == StatusCode.OK

    def error(self) -> RpcError | None:
        """Return the `RpcError` this status stands for, or None for OK."""
        if self.ok:
            return None
        return error_for_status(self.code, self.message, self.details, self.metadata)


# --- framing -------------------------------------------------------------------------


def encode_message(message: bytes | bytearray | memoryview) -> bytes:
    """Frame one message: an uncompressed flag, a 4-byte big-endian length, the bytes.

    Args:
        message: The serialized message.

    Returns:
        The length-prefixed message, ready to be sent as DATA.

    Raises:
        ValueError: If the message is longer than the 32-bit length field allows.
    """
    length = len(message)
    if length > _MAX_WIRE_LENGTH:
        raise ValueError(f"a gRPC message cannot exceed {_MAX_WIRE_LENGTH} bytes, got {length}")
    return _PREFIX.pack(0, length) + bytes(message)


PREFIX_LENGTH = _PREFIX_LENGTH
"""Bytes before each message: the compressed flag and the 4-byte length."""


def message_length(prefix: bytes | bytearray | memoryview, max_message_length: int) -> int:
    """Check a message's 5-byte prefix and return the length of the message it announces.

    Args:
        prefix: At least `PREFIX_LENGTH` bytes starting at a message boundary.
        max_message_length: The largest message accepted, in bytes.

    Returns:
        The length of the message that follows the prefix.

    Raises:
        ProtocolError: If the message has the compressed flag set (we never ask for
            compression, so a server must not use it) or an unknown flag.
        ResourceExhausted: If the message is longer than `max_message_length`.
    """
    flag, length = _PREFIX.unpack_from(prefix)
    if flag == 1:
        raise ProtocolError(
            "the server sent a compressed message, but no compression was negotiated"
        )
    if flag != 0:
        raise ProtocolError(f"invalid gRPC message flag {flag:#x}")
    if length > max_message_length:
        raise ResourceExhausted(
            f"received message larger than max ({length} vs. {max_message_length})"
        )
    return int(length)


class MessageDecoder:
    """Turn DATA chunks, cut anywhere, back into whole messages.

    Feed chunks in order with `feed()`; it returns the messages they completed.
    Call `close()` at the end of the stream to detect a truncated message.

    Memory: a large message is written into a buffer of its announced size as its
    chunks arrive, and that buffer becomes the returned `bytes` without a copy
    (`io.BytesIO.getvalue()` hands over its buffer), so receiving a message costs
    about its own size, not two or three times it.
    """

    def __init__(self, max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> None:
        """Create a decoder.

        Args:
            max_message_length: The largest message accepted, in bytes.

        Raises:
            ValueError: If the limit is negative.
        """
        if max_message_length < 0:
            raise ValueError(f"max_message_length must be >= 0, got {max_message_length}")
        self._max = max_message_length
        self._buffer = bytearray()
        # Length of the message being assembled, once its prefix has been read.
        self._expected: int | None = None
        # A large message being assembled in place, and how many bytes it still lacks.
        self._body: io.BytesIO | None = None
        self._missing = 0

    @property
    def buffered(self) -> int:
        """Bytes received that do not form a whole message yet."""
        if self._body is not None:
            assert self._expected is not None
            return _PREFIX_LENGTH + self._expected - self._missing
        return len(self._buffer) + (_PREFIX_LENGTH if self._expected is not None else 0)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add a chunk of the stream and return the messages now complete.

        Args:
            data: The next bytes of the stream, any length.

        Returns:
            The completed messages, in order (often none or one).

        Raises:
            ProtocolError: If a message has the compressed flag set (we never ask for
                compression, so a server must not use it) or an unknown flag.
            ResourceExhausted: If a message is longer than the limit (checked on its
                length prefix, before any of it is buffered).
        """
        if (
            self._expected is None
            and not self._buffer
            and type(data) is bytes
            and len(data) >= _PREFIX_LENGTH
            and len(data) == _PREFIX_LENGTH + message_length(data, self._max)
        ):
            # The usual chunk of a unary answer: exactly one whole message.
            return [data[_PREFIX_LENGTH:]]
        messages: list[bytes] = []
        if self._body is not None:
            data = self._fill(memoryview(data), messages)
            if self._body is not None:
                return messages  # all of `data` went into the large message
        # A bytearray drops consumed bytes from its front cheaply, so feeding many
        # small messages in one chunk stays linear.
        self._buffer += data
        while True:
            if self._expected is None:
                if len(self._buffer) < _PREFIX_LENGTH:
                    return messages
                self._expected = message_length(self._buffer, self._max)
                del self._buffer[:_PREFIX_LENGTH]
            if len(self._buffer) >= self._expected:
                with memoryview(self._buffer) as view:
                    messages.append(bytes(view[: self._expected]))
                del self._buffer[: self._expected]
                self._expected = None
                continue
            if self._expected >= _ASSEMBLE_IN_PLACE:
                self._start_body(self._expected)
            return messages

    def _start_body(self, length: int) -> None:
        """Move a large message's first bytes into a buffer of its full size."""
        body = io.BytesIO()
        # Writing the last byte first sizes the buffer once, exactly.
        body.seek(length - 1)
        body.write(b"\0")
        body.seek(0)
        body.write(self._buffer)
        self._missing = length - len(self._buffer)
        self._buffer = bytearray()
        self._body = body

    def _fill(self, data: memoryview, messages: list[bytes]) -> memoryview:
        """Write into the large message; return what is left of `data` after it."""
        assert self._body is not None
        take = min(len(data), self._missing)
        self._body.write(data[:take])
        self._missing -= take
        if not self._missing:
            # The buffer is exactly full: getvalue() hands it over without a copy.
            messages.append(self._body.getvalue())
            self._body = None
            self._expected = None
        return data[take:]

    def close(self) -> None:
        """Declare the end of the stream.

        Raises:
            ProtocolError: If the stream ended inside a message.
        """
        if self._expected is not None or self._buffer:
            raise ProtocolError(
                f"the stream ended inside a message ({self.buffered} bytes left over)"
            )


_ASSEMBLE_IN_PLACE = 256 * 1024
"""Messages from this size on are assembled in a buffer of their own (no final copy)."""


# --- grpc-timeout --------------------------------------------------------------------


def encode_timeout(seconds: float) -> bytes:
    """Encode a timeout as a `grpc-timeout` value.

    Uses the finest unit whose value fits in 8 digits, rounding up so the server
    never sees a shorter deadline than the caller gave; a timeout beyond what
    8 digits of hours can say is capped there.

    Args:
        seconds: The timeout, finite and > 0.

    Returns:
        The header value; 1.5 seconds gives `b"1500000u"` (`b"1500000000n"` would
        need 10 digits).

    Raises:
        ValueError: If the timeout is not finite or not positive.
    """
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a timeout must be finite and > 0, got {seconds!r}")
    # Decimal(str(x)) keeps what the caller wrote (0.3 stays 0.3, not 0.299999...).
    nanos = math.ceil(Decimal(str(seconds)) * 1_000_000_000)
    for unit, size in _TIMEOUT_UNITS:
        value = -(-nanos // size)
        if value <= _TIMEOUT_MAX_VALUE:
            return b"%d%s" % (value, unit)
    return b"%dH" % _TIMEOUT_MAX_VALUE


def decode_timeout(value: bytes) -> float:
    """Decode a `grpc-timeout` value into seconds.

    Args:
        value: The header value, 1 to 8 digits and a unit.

    Returns:
        The timeout in seconds.

    Raises:
        ValueError: If the value is malformed.
    """
    digits, unit = value[:-1], value[-1:]
    if not (1 <= len(digits) <= 8) or not digits.isdigit() or unit not in _UNIT_NANOS:
        raise ValueError(f"invalid grpc-timeout {value!r}")
    return int(digits) * _UNIT_NANOS[unit] / 1_000_000_000


# --- request -------------------------------------------------------------------------


def request_headers(
    *,
    scheme: str,
    authority: str,
    path: str,
    user_agent: str,
    timeout: float | None = None,
    metadata: Iterable[tuple[str, str | bytes]] = (),
) -> Headers:
    """Build the header block of a request.

    Args:
        scheme: `"http"` or `"https"`.
        authority: Host and port, as the `:authority` pseudo-header.
        path: The method path, e.g. `/package.Service/Method`.
        user_agent: The `user-agent` value.
        timeout: Seconds until the deadline, sent as `grpc-timeout`; None sends none.
        metadata: Checked call metadata (see `transports._base.check_call`); values
            of `-bin` names are bytes and go out base64-encoded without padding.

    Returns:
        The headers, pseudo-headers first.

    Raises:
        ValueError: For a scheme other than http or https.
    """
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be 'http' or 'https', got {scheme!r}")
    headers: Headers = [
        (b":method", b"POST"),
        (b":scheme", scheme.encode()),
        (b":path", path.encode()),
        (b":authority", authority.encode()),
        (b"te", b"trailers"),
        (b"content-type", CONTENT_TYPE),
        (b"user-agent", user_agent.encode()),
    ]
    if timeout is not None:
        headers.append((b"grpc-timeout", encode_timeout(timeout)))
    for name, value in metadata:
        if isinstance(value, bytes):
            encoded = base64.b64encode(value).rstrip(b"=")
        else:
            encoded = value.encode("ascii")
        headers.append((name.encode("ascii"), encoded))
    return headers


# --- response ------------------------------------------------------------------------


def _b64decode(value: bytes) -> bytes | None:
    """Decode a `-bin` value, or return None when it is not base64."""
    # gRPC senders may drop the padding; put it back before decoding strictly.
    value = value.strip()
    try:
        return base64.b64decode(value + b"=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def is_base64(value: bytes) -> bool:
    """Whether a `-bin` value (or one comma-separated part of it) decodes as base64."""
    return _b64decode(value) is not None


def decode_metadata(headers: Sequence[tuple[bytes, bytes]]) -> ResponseMetadata:
    """Turn received headers into metadata pairs.

    Pseudo-headers and the protocol's own headers are left out; `-bin` values are
    base64-decoded (a comma-joined value, as a proxy may send, gives one pair per
    part); other values are decoded as Latin-1, which cannot fail.

    A `-bin` value that is not base64 is dropped, not raised: metadata is the
    application's, and a corrupt entry must not hide the call's status (the gRPC spec
    lets implementations discard what they cannot parse). Every transport does the same.

    Args:
        headers: A header block as `h2` gives it.

    Returns:
        The (name, value) pairs in order.
    """
    pairs: list[tuple[str, str | bytes]] = []
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name.startswith(b":") or name in _PROTOCOL_HEADERS:
            continue
        text_name = name.decode("latin-1")
        if name.endswith(b"-bin"):
            for part in raw_value.split(b","):
                decoded = _b64decode(part)
                if decoded is not None:
                    pairs.append((text_name, decoded))
        else:
            pairs.append((text_name, raw_value.decode("latin-1")))
    return tuple(pairs)


def _percent_decode(value: bytes) -> str:
    # Lenient as the spec asks: a malformed escape stays as it is, bad UTF-8 is replaced.
    return unquote_to_bytes(value).decode("utf-8", "replace")


def _status_from(headers: Sequence[tuple[bytes, bytes]]) -> Status | None:
    """Read grpc-status and its companions from a header block, or None without one."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered in (b"grpc-status", b"grpc-message", b"grpc-status-details-bin"):
            found[lowered] = value
    raw_code = found.get(b"grpc-status")
    if raw_code is None:
        return None
    raw_code = raw_code.strip()
    if not raw_code.isdigit():
        raise ProtocolError(f"invalid grpc-status {raw_code[:32]!r}")
    number = int(raw_code)
    code: StatusCode | int
    try:
        code = StatusCode(number)
    except ValueError:
        code = number
    raw_details = found.get(b"grpc-status-details-bin")
    # Corrupt details are dropped like any bad `-bin` value; the status itself stands.
    details = None if raw_details is None else _b64decode(raw_details)
    return Status(
        code=code,
        message=_percent_decode(found.get(b"grpc-message", b"")),
        details=details,
        metadata=decode_metadata(headers),
    )


def status_for_http(http_status: int, metadata: ResponseMetadata = ()) -> Status:
    """The status of a response whose HTTP status is not 200 and that has no grpc-status.

    Args:
        http_status: The `:status` received.
        metadata: The response's metadata, kept on the status.

    Returns:
        The mapped status (UNKNOWN for statuses the spec does not list).
    """
    code = _HTTP_TO_GRPC.get(http_status, StatusCode.UNKNOWN)
    return Status(
        code=code,
        message=f"the server answered HTTP {http_status} without a gRPC status",
        metadata=metadata,
    )


def refused_retry_pause(attempt: int, time_left: float | None) -> float | None:
    """How long to wait before repeating a refused call, or None to give up.

    Args:
        attempt: How many attempts were refused so far (1 after the first).
        time_left: Seconds until the call's deadline, or None without one.

    Returns:
        The pause in seconds, or None once `REFUSED_STREAM_RETRIES` repeats were made
        or the pause would not end before the deadline.
    """
    if attempt > REFUSED_STREAM_RETRIES:
        return None
    pause = REFUSED_STREAM_BACKOFF * (1 << max(attempt - 1, 0))
    if time_left is not None and time_left <= pause:
        return None
    return pause


def server_preface_problem(head: bytes) -> str | None:
    """Say what is wrong with the first 9 bytes a server sent, or None if they are fine.

    An HTTP/2 server starts with a SETTINGS frame (type 4, stream 0, no ACK, a payload
    of 6-byte entries). Checking its header before handing bytes to `h2` matters: `h2`
    waits for a whole frame, so a server answering in HTTP/1.1 (whose text reads as
    the header of a frame of megabytes) would stall the connection until a timeout.

    Args:
        head: The first 9 bytes the server sent.

    Returns:
        None for a SETTINGS frame header, otherwise a description of the problem.

    Raises:
        ValueError: If `head` is not 9 bytes long.
    """
    if len(head) != _FRAME_HEADER_LENGTH:
        raise ValueError(f"a frame header has {_FRAME_HEADER_LENGTH} bytes, got {len(head)}")
    length = int.from_bytes(head[:3], "big")
    kind, flags = head[3], head[4]
    stream_id = int.from_bytes(head[5:9], "big") & 0x7FFF_FFFF
    if kind == _SETTINGS_FRAME and stream_id == 0 and not flags & _ACK_FLAG and length % 6 == 0:
        return None
    return f"the server does not speak HTTP/2: it started with {head!r}, not SETTINGS"


def status_for_reset(error_code: int) -> Status:
    """The status of a stream the server reset with RST_STREAM.

    Args:
        error_code: The HTTP/2 error code of the RST_STREAM frame.

    Returns:
        The mapped status: REFUSED_STREAM is UNAVAILABLE (the server did not process
        the request), CANCEL is CANCELLED, ENHANCE_YOUR_CALM is RESOURCE_EXHAUSTED,
        INADEQUATE_SECURITY is PERMISSION_DENIED, anything else INTERNAL.
    """
    code = _RESET_TO_GRPC.get(error_code, StatusCode.INTERNAL)
    if error_code == _REFUSED_STREAM:
        message = "the server refused the stream (REFUSED_STREAM); it did not process the request"
    else:
        message = f"the server reset the stream (HTTP/2 error {error_code:#x})"
    return Status(code=code, message=message)


def parse_response_headers(headers: Sequence[tuple[bytes, bytes]]) -> ResponseMetadata | Status:
    """Validate the first header block of a response.

    Args:
        headers: The block as `h2` gives it.

    Returns:
        The initial metadata when messages may follow, or the call's `Status` when the
        block ends the call: a trailers-only response (grpc-status present, whatever
        the HTTP status), or an HTTP error status without grpc-status.

    Raises:
        ProtocolError: If `:status` is missing or malformed, or an HTTP 200 response
            is not of a gRPC content type (the peer is not a gRPC server).
    """
    http_status: int | None = None
    content_type: bytes | None = None
    for name, value in headers:
        if name == b":status":
            if not value.isdigit():
                raise ProtocolError(f"invalid HTTP :status {value[:32]!r}")
            http_status = int(value)
        elif name.lower() == b"content-type":
            content_type = value
    if http_status is None:
        raise ProtocolError("the response has no :status")
    status = _status_from(headers)
    if status is not None:
        return status
    if http_status != 200:
        return status_for_http(http_status, decode_metadata(headers))
    if content_type is None or not _is_grpc(content_type):
        raise ProtocolError(f"the response is not gRPC: content-type {content_type!r}")
    return decode_metadata(headers)


def _is_grpc(content_type: bytes) -> bool:
    lowered = content_type.lower().split(b";", 1)[0].strip()
    return lowered == b"application/grpc" or lowered.startswith(b"application/grpc+")


def parse_trailers(headers: Sequence[tuple[bytes, bytes]]) -> Status:
    """Read the status from the trailers that end a response.

    Args:
        headers: The trailer block as `h2` gives it.

    Returns:
        The call's status, with the trailing metadata.

    Raises:
        ProtocolError: If the trailers carry no (or an invalid) grpc-status.
    """
    status = _status_from(headers)
    if status is None:
        raise ProtocolError("the response trailers have no grpc-status")
    return status


# --- received frames: bounded batches and flood detection ----------------------------

FRAMES_PER_BATCH = 128
"""Most frames a transport hands to `h2` before it lets other tasks run.

A burst of tiny frames (100,000 PINGs arrive in under 2 MB) would otherwise be
processed in one go, starving every other task of the program."""

FLOOD_LIMIT = 1000
"""Most PING, SETTINGS or empty DATA frames accepted from a server in `FLOOD_WINDOW`.

A well-behaved gRPC server sends a handful; past the limit the connection is closed
with GOAWAY(ENHANCE_YOUR_CALM), as HTTP/2 servers do to abusive clients."""

FLOOD_WINDOW = 10.0
"""Seconds over which `FLOOD_LIMIT` counts."""

ENHANCE_YOUR_CALM = 0xB
"""The HTTP/2 error code of a GOAWAY sent to a peer that floods us."""

_DATA_FRAME = 0x0
_PING_FRAME = 0x6
_END_STREAM_FLAG = 0x1


class FrameGate:
    """Cut received bytes into batches of whole frames and watch for floods (sans-IO).

    Feed everything the server sends, in order, from its first byte (a server sends no
    preface but its SETTINGS frame). `feed()` returns the same bytes cut into batches
    of at most `FRAMES_PER_BATCH` frame starts, so a transport can let other tasks run
    between batches; `abuse` says once the server floods us with PINGs, SETTINGS or
    empty DATA frames, each of which costs us work (and the first two an answer).
    """

    def __init__(self, *, limit: int = FLOOD_LIMIT, window: float = FLOOD_WINDOW) -> None:
        """Create a gate.

        Args:
            limit: Most frames of one abusable kind accepted within `window`.
            window: Seconds over which `limit` counts.
        """
        self._limit = limit
        self._window = window
        self._head = b""
        self._skip = 0  # payload bytes of the current frame still to pass
        self._window_start: float | None = None
        self._counts = {"PING": 0, "SETTINGS": 0, "empty DATA": 0}
        self.abuse: str | None = None
        """What the server flooded us with, once it did (e.g. "PING"); None before."""

    def feed(self, data: bytes, now: float) -> list[bytes]:
        """Take the next received bytes; return them cut into batches of whole frames.

        Args:
            data: The bytes as read from the connection.
            now: The current time in seconds (any monotonic clock).

        Returns:
            `data` cut into consecutive pieces (joined, they are `data` again).
        """
        batches: list[bytes] = []
        start = pos = frames = 0
        size = len(data)
        if self._skip:
            pos = min(self._skip, size)
            self._skip -= pos
        while pos < size:
            if not self._head and frames >= FRAMES_PER_BATCH:
                batches.append(data[start:pos])
                start, frames = pos, 0
            if self._head or pos + _FRAME_HEADER_LENGTH > size:
                # A frame header cut between two reads: assemble it.
                need = _FRAME_HEADER_LENGTH - len(self._head)
                self._head += data[pos : pos + need]
                pos += min(need, size - pos)
                if len(self._head) < _FRAME_HEADER_LENGTH:
                    break
                head, self._head = self._head, b""
                length = int.from_bytes(head[:3], "big")
                kind, flags = head[3], head[4]
            else:
                # The common case, kept cheap: a whole header in this read.
                length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
                kind, flags = data[pos + 3], data[pos + 4]
                pos += _FRAME_HEADER_LENGTH
            if kind <= _PING_FRAME and (length == 0 or kind != _DATA_FRAME):
                self._count(kind, flags, length, now)
            frames += 1
            pos += length
            if pos > size:
                self._skip = pos - size
                pos = size
        if start < size:
            batches.append(data[start:])
        return batches

    def _count(self, kind: int, flags: int, length: int, now: float) -> None:
        if kind == _PING_FRAME and not flags & _ACK_FLAG:
            name = "PING"
        elif kind == _SETTINGS_FRAME and not flags & _ACK_FLAG:
            name = "SETTINGS"
        elif kind == _DATA_FRAME and length == 0 and not flags & _END_STREAM_FLAG:
            name = "empty DATA"
        else:
            return
        if self._window_start is None or now - self._window_start > self._window:
            self._window_start = now
            self._counts = dict.fromkeys(self._counts, 0)
        self._counts[name] += 1
        if self._counts[name] > self._limit and self.abuse is None:
            self.abuse = name
