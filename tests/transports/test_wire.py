"""The sans-IO gRPC wire layer, tested from bytes alone (no event loop, no sockets)."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from transports import (
    Internal,
    NotFound,
    PermissionDenied,
    ProtocolError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
)
from transports._status import StatusCode
from transports._wire import (
    FLOOD_LIMIT,
    FLOOD_WINDOW,
    FRAMES_PER_BATCH,
    FrameGate,
    MessageDecoder,
    Status,
    decode_metadata,
    decode_timeout,
    encode_message,
    encode_timeout,
    parse_response_headers,
    parse_trailers,
    request_headers,
    status_for_http,
    status_for_reset,
)

OK_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]


# --- framing -------------------------------------------------------------------------


def test_encode_message_prefix() -> None:
    """A framed message is flag 0, a big-endian 4-byte length, then the bytes."""
    assert encode_message(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert encode_message(b"") == b"\x00\x00\x00\x00\x00"


def test_decoder_whole_and_split() -> None:
    """The decoder returns messages only once they are complete, in order."""
    decoder = MessageDecoder()
    wire = encode_message(b"one") + encode_message(b"") + encode_message(b"three")
    assert decoder.feed(wire[:2]) == []
    assert decoder.feed(wire[2:9]) == [b"one"]
    assert decoder.feed(wire[9:]) == [b"", b"three"]
    decoder.close()


@given(
    messages=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=20),
)
def test_decoder_round_trip_any_chunking(messages: list[bytes], cuts: list[int]) -> None:
    """Messages framed and cut into arbitrary chunks decode back to the same messages."""
    wire = b"".join(encode_message(m) for m in messages)
    points = sorted({min(c, len(wire)) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    decoder = MessageDecoder()
    decoded = [m for chunk in chunks for m in decoder.feed(chunk)]
    assert decoded == messages
    decoder.close()
    assert decoder.buffered == 0


def test_decoder_compressed_flag() -> None:
    """A message with the compressed flag is a protocol error: we never negotiate compression."""
    decoder = MessageDecoder()
    with pytest.raises(ProtocolError, match="compressed"):
        decoder.feed(b"\x01\x00\x00\x00\x01x")


def test_decoder_unknown_flag() -> None:
    """A flag other than 0 or 1 is a protocol error."""
    with pytest.raises(ProtocolError, match="flag"):
        MessageDecoder().feed(b"\x02\x00\x00\x00\x00")


def test_decoder_too_large() -> None:
    """A message over the limit raises RESOURCE_EXHAUSTED as soon as its prefix arrives."""
    decoder = MessageDecoder(max_message_length=10)
    assert decoder.feed(encode_message(b"x" * 10)) == [b"x" * 10]
    with pytest.raises(ResourceExhausted, match="larger than max"):
        decoder.feed(struct.pack(">BI", 0, 11))


def test_decoder_truncated() -> None:
    """A stream that ends inside a message (or inside a prefix) is detected at close."""
    decoder = MessageDecoder()
    decoder.feed(encode_message(b"hello")[:-1])
    with pytest.raises(ProtocolError, match="ended inside a message"):
        decoder.close()
    partial_prefix = MessageDecoder()
    partial_prefix.feed(b"\x00\x00")
    with pytest.raises(ProtocolError):
        partial_prefix.close()


def test_decoder_rejects_negative_limit() -> None:
    """A negative size limit is a caller mistake."""
    with pytest.raises(ValueError, match="max_message_length"):
        MessageDecoder(max_message_length=-1)


# --- grpc-timeout --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1e-9, b"1n"),
        (0.3, b"300000u"),
        (0.05, b"50000000n"),
        (1.5, b"1500000u"),
        (5, b"5000000u"),
        (100, b"100000m"),
        (99_999.999, b"99999999m"),
        (100_000, b"100000S"),
        (99_999_999, b"99999999S"),
        (100_000_000, b"1666667M"),
        (10**12, b"99999999H"),
    ],
)
def test_encode_timeout_examples(seconds: float, expected: bytes) -> None:
    """The finest unit whose value fits in 8 digits is used, rounding up."""
    assert encode_timeout(seconds) == expected


@given(st.floats(min_value=1e-9, max_value=3.5e11, allow_nan=False, allow_infinity=False))
@example(100.6875)  # milliseconds, half of one rounded up
def test_encode_timeout_property(seconds: float) -> None:
    """Encoded timeouts have at most 8 digits, never shrink, and grow by at most 10 ppm or 1 ns."""
    value = encode_timeout(seconds)
    assert 2 <= len(value) <= 9
    assert value[:-1].isdigit()
    assert value[-1:] in b"numSMH"
    decoded = decode_timeout(value)
    assert decoded >= seconds * (1 - 1e-12)
    # A unit is used only once the finer one overflows 8 digits, so the value keeps
    # at least 6 digits: rounding up adds under 1e-5 of it.
    assert decoded - seconds <= max(seconds * 1e-5, 1e-9) * 1.000001


@pytest.mark.parametrize("seconds", [0, -1, float("inf"), float("nan")])
def test_encode_timeout_rejects(seconds: float) -> None:
    """Timeouts that are not finite and positive are rejected."""
    with pytest.raises(ValueError, match="timeout"):
        encode_timeout(seconds)


@pytest.mark.parametrize("value", [b"", b"S", b"123456789S", b"10x", b"-1S", b"1.5S"])
def test_decode_timeout_rejects(value: bytes) -> None:
    """Malformed grpc-timeout values are rejected."""
    with pytest.raises(ValueError, match="grpc-timeout"):
        decode_timeout(value)


# --- request headers -----------------------------------------------------------------


def test_request_headers() -> None:
    """Request headers carry the pseudo-headers, gRPC headers, timeout and metadata in order."""
    headers = request_headers(
        scheme="https",
        authority="example.com:443",
        path="/pkg.Svc/Get",
        user_agent="dispatch-client/1",
        timeout=2.0,
        metadata=[("key", "secret"), ("trace-bin", b"\x00\x01\xfe")],
    )
    assert headers == [
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":path", b"/pkg.Svc/Get"),
        (b":authority", b"example.com:443"),
        (b"te", b"trailers"),
        (b"content-type", b"application/grpc+proto"),
        (b"user-agent", b"dispatch-client/1"),
        (b"grpc-timeout", b"2000000u"),
        (b"key", b"secret"),
        (b"trace-bin", b"AAH+"),
    ]


def test_request_headers_bin_without_padding_and_no_timeout() -> None:
    """`-bin` values are base64 without padding; no timeout means no grpc-timeout."""
    headers = request_headers(
        scheme="http", authority="h:1", path="/a.B/C", user_agent="ua", metadata=[("x-bin", b"a")]
    )
    assert (b"x-bin", b"YQ") in headers
    assert all(name != b"grpc-timeout" for name, _ in headers)


def test_request_headers_bad_scheme() -> None:
    """Only http and https are schemes."""
    with pytest.raises(ValueError, match="scheme"):
        request_headers(scheme="grpc", authority="h:1", path="/a.B/C", user_agent="ua")


# --- response headers ----------------------------------------------------------------


def test_response_headers_ok() -> None:
    """A 200 gRPC response yields its initial metadata, protocol headers left out."""
    metadata = parse_response_headers(
        [*OK_HEADERS, (b"grpc-encoding", b"identity"), (b"x-id", b"7"), (b"x-bin", b"AAE")]
    )
    assert metadata == (("x-id", "7"), ("x-bin", b"\x00\x01"))


@pytest.mark.parametrize(
    "content_type",
    [
        b"application/grpc",
        b"application/grpc+proto",
        b"Application/GRPC+json",
        b"application/grpc; x=1",
    ],
)
def test_response_content_types_accepted(content_type: bytes) -> None:
    """application/grpc and application/grpc+anything are gRPC content types."""
    assert parse_response_headers([(b":status", b"200"), (b"content-type", content_type)]) == ()


@pytest.mark.parametrize("content_type", [b"text/html", b"application/grpcx", b"application/json"])
def test_response_bad_content_type(content_type: bytes) -> None:
    """A 200 response that is not gRPC is a protocol error."""
    with pytest.raises(ProtocolError, match="not gRPC"):
        parse_response_headers([(b":status", b"200"), (b"content-type", content_type)])


def test_response_missing_content_type() -> None:
    """A 200 response without content-type is a protocol error."""
    with pytest.raises(ProtocolError, match="not gRPC"):
        parse_response_headers([(b":status", b"200")])


@pytest.mark.parametrize("status", [[], [(b":status", b"abc")]])
def test_response_bad_http_status(status: list[tuple[bytes, bytes]]) -> None:
    """A missing or malformed :status is a protocol error."""
    with pytest.raises(ProtocolError, match=":status"):
        parse_response_headers([*status, (b"content-type", b"application/grpc")])


@pytest.mark.parametrize(
    ("http_status", "error"),
    [
        (400, Internal),
        (401, Unauthenticated),
        (403, PermissionDenied),
        (404, Unimplemented),
        (429, Unavailable),
        (502, Unavailable),
        (503, Unavailable),
        (504, Unavailable),
        (500, Unknown),
        (302, Unknown),
    ],
)
def test_http_status_mapping(http_status: int, error: type[Exception]) -> None:
    """A non-200 answer without grpc-status maps to the spec's gRPC status, whatever its type."""
    status = parse_response_headers(
        [(b":status", str(http_status).encode()), (b"content-type", b"text/html")]
    )
    assert isinstance(status, Status)
    assert isinstance(status.error(), error)
    assert str(http_status) in status.message


def test_trailers_only() -> None:
    """grpc-status in the first block is a trailers-only response, even on a non-200 status."""
    details = base64.b64encode(b"\x08\x05").rstrip(b"=")
    status = parse_response_headers(
        [
            (b":status", b"200"),
            (b"content-type", b"application/grpc"),
            (b"grpc-status", b"5"),
            (b"grpc-message", b"no%20such%20dispatch"),
            (b"grpc-status-details-bin", details),
            (b"fail-trailer", b"yes"),
        ]
    )
    assert status == Status(
        code=StatusCode.NOT_FOUND,
        message="no such dispatch",
        details=b"\x08\x05",
        metadata=(("fail-trailer", "yes"),),
    )
    error = status.error()
    assert isinstance(error, NotFound)
    assert error.details == b"\x08\x05"
    assert error.trailing_metadata == (("fail-trailer", "yes"),)
    proxied = parse_response_headers([(b":status", b"503"), (b"grpc-status", b"0")])
    assert isinstance(proxied, Status)
    assert proxied.ok


def test_trailers_ok() -> None:
    """Trailers with grpc-status 0 give an OK status and no error."""
    status = parse_trailers([(b"grpc-status", b"0"), (b"x-t", b"v")])
    assert status.ok
    assert status.error() is None
    assert status.metadata == (("x-t", "v"),)


def test_trailers_missing_status() -> None:
    """Trailers without grpc-status are a protocol error."""
    with pytest.raises(ProtocolError, match="no grpc-status"):
        parse_trailers([(b"grpc-message", b"hi")])


@pytest.mark.parametrize("value", [b"", b"x", b"-1", b"1.0"])
def test_trailers_invalid_status(value: bytes) -> None:
    """A grpc-status that is not a number is a protocol error."""
    with pytest.raises(ProtocolError, match="grpc-status"):
        parse_trailers([(b"grpc-status", value)])


def test_unknown_status_number() -> None:
    """A status number outside the 17 codes becomes UNKNOWN with the number in the message."""
    status = parse_trailers([(b"grpc-status", b"99"), (b"grpc-message", b"odd")])
    assert status.code == 99
    error = status.error()
    assert isinstance(error, Unknown)
    assert "99" in error.message


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"caf%C3%A9", "caf\u00e9"),
        (b"100%25", "100%"),
        (b"bad %zz escape", "bad %zz escape"),
        (b"trailing %", "trailing %"),
        (b"%FF", "\ufffd"),
        (b"plain", "plain"),
    ],
)
def test_grpc_message_percent_decoding(raw: bytes, text: str) -> None:
    """grpc-message is percent-decoded UTF-8, leniently: bad escapes stay, bad UTF-8 is replaced."""
    assert parse_trailers([(b"grpc-status", b"2"), (b"grpc-message", raw)]).message == text


@pytest.mark.parametrize("encoded", [b"AAEC", b"AAECAw", b"AAECAw=="])
def test_status_details_padding_optional(encoded: bytes) -> None:
    """grpc-status-details-bin is base64 with or without padding."""
    status = parse_trailers([(b"grpc-status", b"3"), (b"grpc-status-details-bin", encoded)])
    assert status.details == base64.b64decode(encoded + b"=" * (-len(encoded) % 4))


def test_bad_base64_is_dropped_and_the_status_kept() -> None:
    """A `-bin` value that is not base64 is dropped; the server's status stands."""
    status = parse_trailers(
        [(b"grpc-status", b"3"), (b"grpc-status-details-bin", b"!!!"), (b"x-bin", b"a*b,AP8")]
    )
    assert status.code == 3
    assert status.details is None
    assert status.metadata == (("x-bin", b"\x00\xff"),)
    assert decode_metadata([(b"x-bin", b"a*b")]) == ()


def test_metadata_decoding() -> None:
    """Metadata keeps order and repeats, decodes `-bin` (splitting joined parts), skips the rest."""
    assert decode_metadata(
        [
            (b":status", b"200"),
            (b"content-type", b"application/grpc"),
            (b"a", b"1"),
            (b"a", b"2"),
            (b"X-Upper", b"v"),
            (b"k-bin", b"AA,AQ=="),
            (b"grpc-status", b"0"),
        ]
    ) == (("a", "1"), ("a", "2"), ("x-upper", "v"), ("k-bin", b"\x00"), ("k-bin", b"\x01"))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0x7, StatusCode.UNAVAILABLE),
        (0x8, StatusCode.CANCELLED),
        (0xB, StatusCode.RESOURCE_EXHAUSTED),
        (0xC, StatusCode.PERMISSION_DENIED),
        (0x0, StatusCode.INTERNAL),
        (0x2, StatusCode.INTERNAL),
    ],
)
def test_reset_mapping(code: int, expected: StatusCode) -> None:
    """RST_STREAM error codes map to gRPC statuses as the spec says."""
    assert status_for_reset(code).code == expected


def test_status_for_http_keeps_metadata() -> None:
    """A status made from an HTTP error keeps the response metadata."""
    status = status_for_http(503, (("retry-after", "1"),))
    assert status.metadata == (("retry-after", "1"),)
    assert isinstance(status.error(), Unavailable)


def _frame(kind: int, flags: int = 0, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + bytes(4) + payload


def test_frame_gate_cuts_bursts_into_bounded_batches() -> None:
    """100,000 tiny frames come out in batches of at most FRAMES_PER_BATCH whole frames."""
    data = _frame(0x4) + _frame(0x0, 0, b"abc") * 100_000
    gate = FrameGate(limit=10**9)
    batches = gate.feed(data, 0.0)
    assert b"".join(batches) == data
    assert len(batches) == -(-100_001 // FRAMES_PER_BATCH)
    assert all(len(batch) <= FRAMES_PER_BATCH * 12 for batch in batches)
    assert gate.abuse is None


def test_frame_gate_follows_frames_cut_anywhere() -> None:
    """Frames split across reads at every byte are counted as whole frames, in order."""
    data = _frame(0x4) + _frame(0x6, 0, bytes(8)) * 5 + _frame(0x1, 0x4, b"h" * 40)
    gate = FrameGate(limit=4)
    pieces = [piece for i in range(len(data)) for piece in gate.feed(data[i : i + 1], 0.0)]
    assert b"".join(pieces) == data
    assert gate.abuse == "PING"


@pytest.mark.parametrize(
    ("frame", "abuse"),
    [
        (_frame(0x6, 0, bytes(8)), "PING"),
        (_frame(0x4), "SETTINGS"),
        (_frame(0x0), "empty DATA"),
    ],
)
def test_frame_gate_detects_floods(frame: bytes, abuse: str) -> None:
    """More than FLOOD_LIMIT PINGs, SETTINGS or empty DATA frames in the window is a flood."""
    gate = FrameGate()
    gate.feed(frame * FLOOD_LIMIT, 0.0)
    assert gate.abuse is None
    gate.feed(frame, 1.0)
    assert gate.abuse == abuse


def test_frame_gate_forgives_frames_spread_over_time() -> None:
    """PING acks, ended DATA and frames spread over many windows are no flood."""
    gate = FrameGate()
    for second in range(30):
        gate.feed(_frame(0x6, 0, bytes(8)) * (FLOOD_LIMIT // 2), second * (FLOOD_WINDOW + 1))
    gate.feed(_frame(0x6, 0x1, bytes(8)) * (FLOOD_LIMIT + 1), 0.0)
    gate.feed(_frame(0x0, 0x1) * (FLOOD_LIMIT + 1), 0.0)
    assert gate.abuse is None


@pytest.mark.parametrize("chunk", [1000, 16384, 65537, 10**7])
def test_large_messages_assembled_in_place(chunk: int) -> None:
    """Large messages between small ones come out whole and in order, however cut."""
    big = bytes(range(256)) * 1200  # 300 KiB: assembled in a buffer of its own
    stream = encode_message(b"a") + encode_message(big) + encode_message(b"b") + encode_message(big)
    decoder = MessageDecoder()
    messages = []
    for start in range(0, len(stream), chunk):
        messages += decoder.feed(stream[start : start + chunk])
    decoder.close()
    assert messages == [b"a", big, b"b", big]
    assert all(type(message) is bytes for message in messages)


def test_large_message_cut_short_is_a_protocol_error() -> None:
    """A stream ending inside a large message is a protocol error naming what is left."""
    decoder = MessageDecoder()
    assert decoder.feed(encode_message(b"x" * 500_000)[:300_000]) == []
    with pytest.raises(ProtocolError, match="300000 bytes left over"):
        decoder.close()


@pytest.mark.parametrize("size", [0, 1, 300, 70_000])
def test_a_chunk_of_exactly_one_message_yields_it_and_leaves_nothing(size: int) -> None:
    """A chunk that is one whole message (a unary answer's usual DATA) comes out as that
    message, with nothing left over, also between partial chunks of other messages."""
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    decoder = MessageDecoder()
    assert decoder.feed(encode_message(body)) == [body]
    assert decoder.buffered == 0
    framed = encode_message(b"abc")
    assert decoder.feed(framed[:3]) == []
    assert decoder.feed(framed[3:] + encode_message(body)) == [b"abc", body]
    assert decoder.feed(encode_message(body)) == [body]
    decoder.close()
    with pytest.raises(ResourceExhausted):
        MessageDecoder(max_message_length=size - 1 if size else 0).feed(encode_message(body + b"x"))
