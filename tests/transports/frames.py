"""A small HTTP/2 frame factory for tests of the client core (built by hand, RFC 9113 4.1).

`Server` plays the server side: it keeps the HPACK encoder whose dynamic table the
client's decoder follows, so header blocks it builds decode correctly in order.
`parse_frames` cuts what the client sent back into frames for assertions.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import attrs
import hpack

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

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

RESPONSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b":status", b"200"),
    (b"content-type", b"application/grpc"),
]
OK_TRAILERS: list[tuple[bytes, bytes]] = [(b"grpc-status", b"0"), (b"grpc-message", b"")]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame: a 9-byte header and the payload."""
    return (
        struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + struct.pack(">I", stream_id)
    ) + payload


def settings(pairs: Iterable[tuple[int, int]] = ()) -> bytes:
    """A SETTINGS frame with (identifier, value) pairs."""
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def settings_ack() -> bytes:
    """A SETTINGS acknowledgement."""
    return frame(SETTINGS, ACK, 0)


def data(
    stream_id: int, payload: bytes, *, end_stream: bool = False, pad: int | None = None
) -> bytes:
    """A DATA frame, padded with `pad` zero bytes when `pad` is given."""
    flags = END_STREAM if end_stream else 0
    if pad is not None:
        return frame(DATA, flags | PADDED, stream_id, bytes((pad,)) + payload + bytes(pad))
    return frame(DATA, flags, stream_id, payload)


def rst_stream(stream_id: int, code: int) -> bytes:
    """An RST_STREAM frame."""
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def ping(payload: bytes = b"12345678", *, ack: bool = False) -> bytes:
    """A PING frame."""
    return frame(PING, ACK if ack else 0, 0, payload)


def goaway(last_stream_id: int, code: int = 0, debug: bytes = b"") -> bytes:
    """A GOAWAY frame."""
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream_id, code) + debug)


def window_update(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame."""
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def priority(stream_id: int, payload: bytes = b"\0\0\0\0\x10") -> bytes:
    """A PRIORITY frame."""
    return frame(PRIORITY, 0, stream_id, payload)


@attrs.frozen
class Frame:
    """A frame the client sent."""

    kind: int
    flags: int
    stream_id: int
    payload: bytes


def parse_frames(wire: bytes, *, preface: bool = False) -> list[Frame]:
    """Cut bytes the client sent into frames (after the client preface if `preface`)."""
    if preface:
        assert wire.startswith(PREFACE), wire[:32]
        wire = wire[len(PREFACE) :]
    frames = []
    pos = 0
    while pos < len(wire):
        length = int.from_bytes(wire[pos : pos + 3], "big")
        kind, flags = wire[pos + 3], wire[pos + 4]
        stream_id = int.from_bytes(wire[pos + 5 : pos + 9], "big") & 0x7FFF_FFFF
        payload = wire[pos + 9 : pos + 9 + length]
        assert len(payload) == length, "truncated frame"
        frames.append(Frame(kind, flags, stream_id, payload))
        pos += 9 + length
    return frames


class Server:
    """The server side of a test: encodes header blocks with its own HPACK state."""

    def __init__(self) -> None:
        """Create a server with a fresh HPACK encoder."""
        self.encoder = hpack.Encoder()

    def block(self, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
        """Encode a header block (changing the encoder's dynamic table as hpack likes)."""
        return self.encoder.encode(list(headers))

    def headers(
        self,
        stream_id: int,
        headers: Sequence[tuple[bytes, bytes]] = RESPONSE_HEADERS,
        *,
        end_stream: bool = False,
        end_headers: bool = True,
        pad: int | None = None,
        with_priority: bool = False,
    ) -> bytes:
        """A HEADERS frame carrying `headers`."""
        fragment = self.block(headers)
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        if with_priority:
            flags |= PRIORITY_FLAG
            fragment = b"\0\0\0\0\x10" + fragment
        if pad is not None:
            flags |= PADDED
            fragment = bytes((pad,)) + fragment + bytes(pad)
        return frame(HEADERS, flags, stream_id, fragment)

    def trailers(
        self, stream_id: int, headers: Sequence[tuple[bytes, bytes]] = OK_TRAILERS
    ) -> bytes:
        """A HEADERS frame with trailers, ending the stream."""
        return self.headers(stream_id, headers, end_stream=True)

    def response(self, stream_id: int, body: bytes) -> bytes:
        """A whole gRPC response: headers, one DATA frame, OK trailers."""
        return self.headers(stream_id) + data(stream_id, body) + self.trailers(stream_id)
