"""HPACK for a gRPC client: cached request header blocks, cached response decoding.

Two halves, both sans-IO:

* `RequestHeaderEncoder` writes a request's header block with *stateless* HPACK only
  (static-table references and literals that are never added to the dynamic table). A
  block written that way means the same thing on any connection at any time, so its
  parts are cached for good: the fixed prefix per method path, and the encoding of each
  metadata field (in a bounded cache: an API key repeats every call, a signature or a
  nonce never does), and the `grpc-timeout` field per timeout value (a client's
  timeout is usually the same for every call; a bounded cache too).
* `ResponseHeaderDecoder` decodes the server's blocks with `hpack.Decoder` (which keeps
  the dynamic table the server's encoder refers to) and caches each decoded block by its
  bytes, as long as decoding it left the dynamic table as it was: then decoding the same
  bytes again must give the same headers. Any block that changes the table clears the
  cache, since cached blocks may refer to entries that moved. Repeated blocks such as
  `:status 200 / content-type application/grpc` and `grpc-status 0` then cost a dict
  lookup instead of a decode.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import hpack

from . import _wire

__all__ = [
    "HeaderBlockError",
    "RequestHeaderEncoder",
    "ResponseHeaderDecoder",
    "encode_integer",
]

# Static table indexes (RFC 7541 appendix A) of the fields a gRPC request uses.
_METHOD_POST = 3
_SCHEME_HTTP = 6
_SCHEME_HTTPS = 7
_NAME_AUTHORITY = 1
_NAME_PATH = 4
_NAME_CONTENT_TYPE = 31
_NAME_USER_AGENT = 58

# Metadata names whose values are credentials: sent "never indexed" (RFC 7541 6.2.3), so
# that no proxy on the way puts them into a dynamic table where they could be probed.
_SENSITIVE = frozenset({"authorization", "proxy-authorization", "cookie", "key", "x-api-key"})

_MAX_FIELD_CACHE = 256
"""Most metadata fields whose encoding is kept; the cache is emptied when full."""
_MAX_PREFIX_CACHE = 512
"""Most method paths whose request prefix is kept; the cache is emptied when full."""
_MAX_TIMEOUT_CACHE = 64
"""Most grpc-timeout fields kept; the cache is emptied when full."""
_MAX_DECODED_CACHE = 64
"""Most decoded response blocks kept; the cache is emptied when full."""


def encode_integer(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """Encode an HPACK integer (RFC 7541 5.1) with an N-bit prefix.

    Args:
        value: The integer, >= 0.
        prefix_bits: The prefix width, 1 to 8.
        first_byte: The bits above the prefix in the first byte (the field's pattern).

    Returns:
        The encoded bytes.
    """
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first_byte | value,))
    out = bytearray((first_byte | limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: bytes) -> bytes:
    """A string literal, not Huffman-coded (RFC 7541 5.2)."""
    return encode_integer(len(value), 7) + value


def _literal_indexed_name(index: int, value: bytes) -> bytes:
    """A literal field without indexing whose name is a static-table entry."""
    return encode_integer(index, 4) + _string(value)


def _literal(name: bytes, value: bytes, *, never_indexed: bool = False) -> bytes:
    """A literal field with a literal name, without indexing or never indexed."""
    return (b"\x10" if never_indexed else b"\x00") + _string(name) + _string(value)


_TIMEOUT_NAME = _literal(b"grpc-timeout", b"")[:-1]
"""A grpc-timeout field up to its value's length (the value follows per call)."""


class RequestHeaderEncoder:
    """Encode request header blocks for one origin, caching every part that repeats.

    The block lists the same fields, in the same order, as `_wire.request_headers`.
    """

    def __init__(self, *, scheme: str, authority: str, user_agent: str) -> None:
        """Create an encoder.

        Args:
            scheme: `"http"` or `"https"`.
            authority: Host and port, as the `:authority` pseudo-header.
            user_agent: The `user-agent` value.

        Raises:
            ValueError: For a scheme other than http or https, or an authority or user
                agent that is not ASCII.
        """
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme must be 'http' or 'https', got {scheme!r}")
        self._head = bytes((0x80 | _METHOD_POST,)) + bytes(
            (0x80 | (_SCHEME_HTTPS if scheme == "https" else _SCHEME_HTTP),)
        )
        self._tail = (
            _literal_indexed_name(_NAME_AUTHORITY, authority.encode("ascii"))
            + _literal(b"te", b"trailers")
            + _literal_indexed_name(_NAME_CONTENT_TYPE, _wire.CONTENT_TYPE)
            + _literal_indexed_name(_NAME_USER_AGENT, user_agent.encode("ascii"))
        )
        self._prefixes: dict[str, bytes] = {}
        self._fields: dict[tuple[str, str | bytes], bytes] = {}
        self._timeouts: dict[float, bytes] = {}

    def prefix(self, method: str) -> bytes:
        """The fixed part of a method's request block (everything before grpc-timeout).

        Args:
            method: The method path, e.g. `/package.Service/Method`.

        Returns:
            The encoded pseudo-headers, te, content-type and user-agent.
        """
        block = self._prefixes.get(method)
        if block is None:
            block = self._head + _literal_indexed_name(_NAME_PATH, method.encode()) + self._tail
            if len(self._prefixes) >= _MAX_PREFIX_CACHE:
                self._prefixes.clear()
            self._prefixes[method] = block
        return block

    def encode(
        self,
        method: str,
        metadata: Sequence[tuple[str, str | bytes]],
        timeout: float | None,
    ) -> bytes:
        """Encode the whole header block of a request.

        Args:
            method: The method path, e.g. `/package.Service/Method`.
            metadata: Checked call metadata (see `transports._base.check_call`): values
                of `-bin` names are bytes and go out base64-encoded without padding.
            timeout: Seconds until the deadline, sent as `grpc-timeout`; None sends none.

        Returns:
            The HPACK block, ready for a HEADERS frame.

        Raises:
            ValueError: If the timeout is not finite and positive, or a metadata name or
                text value is not ASCII.
        """
        block = self._prefixes.get(method)
        if block is None:
            block = self.prefix(method)
        if timeout is not None:
            field = self._timeouts.get(timeout)
            if field is None:
                field = self._timeout(timeout)
            block += field
        if metadata:
            fields = self._fields
            parts = [block]
            for pair in metadata:
                encoded = fields.get(pair)
                if encoded is None:
                    encoded = self._field(pair)
                parts.append(encoded)
            block = b"".join(parts)
        return block

    def _timeout(self, timeout: float) -> bytes:
        """Encode a grpc-timeout field and remember it (clients repeat their timeout)."""
        value = _wire.encode_timeout(timeout)
        # A grpc-timeout value has at most 9 bytes, so its length is one byte.
        field = _TIMEOUT_NAME + bytes((len(value),)) + value
        if len(self._timeouts) >= _MAX_TIMEOUT_CACHE:
            self._timeouts.clear()
        self._timeouts[timeout] = field
        return field

    def _field(self, pair: tuple[str, str | bytes]) -> bytes:
        """Encode one metadata field and remember it."""
        name, value = pair
        if isinstance(value, bytes):
            raw = base64.b64encode(value).rstrip(b"=")
        else:
            raw = value.encode("ascii")
        encoded = _literal(name.encode("ascii"), raw, never_indexed=name in _SENSITIVE)
        fields = self._fields
        if len(fields) >= _MAX_FIELD_CACHE:
            # Values that never repeat (nonces, signatures) would otherwise fill the cache;
            # emptying it costs one re-encoding of the fields that do repeat.
            fields.clear()
        fields[pair] = encoded
        return encoded


# Headers a response must not carry (RFC 9113 8.2.2): they belong to HTTP/1.1 framing.
_CONNECTION_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_UPPERCASE = bytes(range(ord("A"), ord("Z") + 1))


def _problem(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """Say what makes a decoded block malformed regardless of its place, or None."""
    regular_seen = False
    status_seen = False
    for name, _value in headers:
        if not name:
            return "an empty header name"
        if name[0] == 0x3A:  # ":"
            if regular_seen:
                return f"pseudo-header {name!r} after a regular header"
            if name != b":status":
                return f"pseudo-header {name!r} in a response"
            if status_seen:
                return "a repeated :status"
            status_seen = True
            continue
        regular_seen = True
        if name.translate(None, _UPPERCASE) != name:
            return f"uppercase header name {name!r}"
        if name in _CONNECTION_HEADERS:
            return f"connection-specific header {name!r}"
    return None


class HeaderBlockError(Exception):
    """A header block could not be decoded; the connection's HPACK state is lost.

    Attributes:
        oversized: True when the block was over the header-list size limit.
    """

    def __init__(self, message: str, *, oversized: bool = False) -> None:
        """Create the error.

        Args:
            message: What went wrong.
            oversized: Whether the block exceeded the header-list size limit.
        """
        super().__init__(message)
        self.oversized = oversized


class ResponseHeaderDecoder:
    """Decode a connection's received header blocks, caching the repeated ones."""

    def __init__(self, max_header_list_size: int) -> None:
        """Create a decoder.

        Args:
            max_header_list_size: The largest decoded header list accepted, counted as
                RFC 9113 does (name + value + 32 per field).
        """
        self._decoder = hpack.Decoder(max_header_list_size=max_header_list_size)
        self._table = self._decoder.header_table
        self._cache: dict[bytes, tuple[list[tuple[bytes, bytes]], str | None]] = {}

    def _table_state(self) -> tuple[int, int, object]:
        """What identifies the dynamic table's contents: entries, size limit, newest."""
        entries = self._table.dynamic_entries
        # Every insertion puts a new tuple at the front, and the old front stays alive
        # while it is referenced here, so `is` comparison cannot be fooled by id reuse.
        return len(entries), self._table.maxsize, entries[0] if entries else None

    def decode(self, block: bytes) -> tuple[list[tuple[bytes, bytes]], str | None]:
        """Decode a complete header block.

        Args:
            block: The HPACK block (HEADERS and CONTINUATION fragments joined).

        Returns:
            The header list as (name, value) byte pairs (the caller may keep and modify
            it), and what makes it malformed as a response block (RFC 9113 8.2, 8.3),
            or None: an uppercase or empty name, a connection-specific header, a
            pseudo-header other than `:status`, a repeated one, or one after a regular
            header. Whether pseudo-headers belong at all depends on the block's place
            (response headers or trailers), which the caller knows.

        Raises:
            HeaderBlockError: If the block is not valid HPACK or exceeds the size limit.
        """
        cached = self._cache.get(block)
        if cached is not None:
            return cached[0].copy(), cached[1]
        before = self._table_state()
        try:
            decoded = self._decoder.decode(block, raw=True)
        except hpack.OversizedHeaderListError as exc:
            raise HeaderBlockError(f"header list too large: {exc}", oversized=True) from None
        except Exception as exc:  # any failure inside hpack means the same
            raise HeaderBlockError(f"invalid header block: {exc}") from None
        headers: list[tuple[bytes, bytes]] = [(bytes(n), bytes(v)) for n, v in decoded]
        problem = _problem(headers)
        after = self._table_state()
        if after[0] != before[0] or after[1] != before[1] or after[2] is not before[2]:
            self._cache.clear()
        else:
            if len(self._cache) >= _MAX_DECODED_CACHE:
                self._cache.clear()
            self._cache[block] = (headers.copy(), problem)
        return headers, problem
