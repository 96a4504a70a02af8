"""HPACK for a gRPC client: request blocks that use the server's table, cached decoding.

Two halves, both sans-IO:

* `RequestHeaderEncoder` holds, per origin, each request header field in every form a
  block may carry it, cached (the path per method, each metadata field in a bounded
  cache: an API key repeats every call, a signature or a nonce never does, and the
  `grpc-timeout` field per timeout value). `RequestTable` writes one connection's
  blocks from those fields: a field that repeats is added to the server's dynamic table
  the second time it is sent and referenced with one byte after that; credentials are
  never indexed. Whole blocks are cached per connection until the next insertion, so a
  repeated call costs one dict lookup. `RequestHeaderEncoder.encode` writes a stateless
  block instead (static-table references and unindexed literals).
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
from typing import TypeVar

import hpack

from . import _wire

__all__ = [
    "DEFAULT_TABLE_SIZE",
    "Field",
    "HeaderBlockError",
    "RequestHeaderEncoder",
    "RequestTable",
    "ResponseHeaderDecoder",
    "encode_integer",
]

_K = TypeVar("_K")

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
"""Most metadata fields (and grpc-timeout fields) whose encodings are kept; each cache
is emptied when full."""
_MAX_PATH_CACHE = 512
"""Most method paths whose encodings are kept; the cache is emptied when full."""
_MAX_BLOCK_CACHE = 256
"""Most request blocks a connection keeps; the cache is emptied when full."""
_MAX_SEEN = 1024
"""Most fields sent once that a connection remembers, to add them when sent again."""
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


DEFAULT_TABLE_SIZE = 4096
"""The dynamic table size every HPACK decoder starts with (SETTINGS_HEADER_TABLE_SIZE)."""
_ENTRY_OVERHEAD = 32
"""What a dynamic table entry costs beyond its name and value (RFC 7541 4.1)."""
_FIRST_DYNAMIC_INDEX = 62
"""The index of the newest dynamic table entry (the static table has 61)."""


class Field:
    """One request header field, in each form a request block may carry it.

    Attributes:
        pair: The (name, value) bytes: the field's identity in the dynamic table.
        size: What the field occupies in a dynamic table (RFC 7541 4.1).
        literal: The field as a literal that is not indexed (never indexed for
            credentials): valid on any connection at any time.
        insert: The field as a literal that the decoder adds to its dynamic table, or
            None for a credential, which never goes into a table.
    """

    __slots__ = ("insert", "literal", "pair", "size")

    def __init__(self, name: bytes, value: bytes, *, static_name: int = 0, sensitive: bool = False):
        self.pair = (name, value)
        self.size = len(name) + len(value) + _ENTRY_OVERHEAD
        if static_name:
            self.literal = _literal_indexed_name(static_name, value)
            insert = encode_integer(static_name, 6, 0x40) + _string(value)
        else:
            self.literal = _literal(name, value, never_indexed=sensitive)
            insert = b"\x40" + _string(name) + _string(value)
        self.insert: bytes | None = None if sensitive else insert


class RequestHeaderEncoder:
    """A request's header fields for one origin, with every field's encodings cached.

    The fields come in the same order as in `_wire.request_headers`. `encode` writes a
    *stateless* block of them (static-table references and literals that are never
    added to the dynamic table): it means the same on any connection at any time.
    `RequestTable` writes a connection's blocks with its dynamic table instead.
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
        self.head = bytes((0x80 | _METHOD_POST,)) + bytes(
            (0x80 | (_SCHEME_HTTPS if scheme == "https" else _SCHEME_HTTP),)
        )
        """`:method POST` and `:scheme`, static-table references: the start of every block."""
        self._origin = (
            Field(b":authority", authority.encode("ascii"), static_name=_NAME_AUTHORITY),
            Field(b"te", b"trailers"),
            Field(b"content-type", _wire.CONTENT_TYPE, static_name=_NAME_CONTENT_TYPE),
            Field(b"user-agent", user_agent.encode("ascii"), static_name=_NAME_USER_AGENT),
        )
        self._paths: dict[str, Field] = {}
        self._fields: dict[tuple[str, str | bytes], Field] = {}
        self._timeouts: dict[float, Field] = {}

    def fields(
        self,
        method: str,
        metadata: Sequence[tuple[str, str | bytes]],
        timeout: float | None,
    ) -> list[Field]:
        """A request's header fields after `:method` and `:scheme` (which `head` holds).

        Args:
            method: The method path, e.g. `/package.Service/Method`.
            metadata: Checked call metadata (see `transports._base.check_call`): values
                of `-bin` names are bytes and go out base64-encoded without padding.
            timeout: Seconds until the deadline, sent as `grpc-timeout`; None sends none.

        Returns:
            `:path`, `:authority`, `te`, `content-type`, `user-agent`, `grpc-timeout` if
            there is a timeout, then the metadata.

        Raises:
            ValueError: If the timeout is not finite and positive, or a metadata name or
                text value is not ASCII.
        """
        path = self._paths.get(method)
        if path is None:
            path = self._cached(
                self._paths,
                method,
                Field(b":path", method.encode(), static_name=_NAME_PATH),
                _MAX_PATH_CACHE,
            )
        fields = [path, *self._origin]
        if timeout is not None:
            field = self._timeouts.get(timeout)
            if field is None:
                field = self._cached(
                    self._timeouts,
                    timeout,
                    Field(b"grpc-timeout", _wire.encode_timeout(timeout)),
                    _MAX_FIELD_CACHE,
                )
            fields.append(field)
        cache = self._fields
        for pair in metadata:
            field = cache.get(pair)
            if field is None:
                field = self._cached(cache, pair, _metadata_field(pair), _MAX_FIELD_CACHE)
            fields.append(field)
        return fields

    def encode(
        self,
        method: str,
        metadata: Sequence[tuple[str, str | bytes]],
        timeout: float | None,
    ) -> bytes:
        """Encode the whole header block of a request, statelessly.

        Args:
            method: The method path, e.g. `/package.Service/Method`.
            metadata: Checked call metadata, as for `fields`.
            timeout: Seconds until the deadline, sent as `grpc-timeout`; None sends none.

        Returns:
            The HPACK block, ready for a HEADERS frame.

        Raises:
            ValueError: If the timeout is not finite and positive, or a metadata name or
                text value is not ASCII.
        """
        fields = self.fields(method, metadata, timeout)
        return self.head + b"".join(field.literal for field in fields)

    @staticmethod
    def _cached(cache: dict[_K, Field], key: _K, field: Field, limit: int) -> Field:
        """Remember `field` under `key`; a full cache is emptied first.

        Values that never repeat (nonces, signatures, exact short timeouts) would
        otherwise fill the caches; emptying one costs one re-encoding of what repeats.
        """
        if len(cache) >= limit:
            cache.clear()
        cache[key] = field
        return field


def _metadata_field(pair: tuple[str, str | bytes]) -> Field:
    name, value = pair
    if isinstance(value, bytes):
        raw = base64.b64encode(value).rstrip(b"=")
    else:
        raw = value.encode("ascii")
    return Field(name.encode("ascii"), raw, sensitive=name in _SENSITIVE)


class RequestTable:
    """One connection's request header blocks, using the server's HPACK dynamic table.

    A field that repeats goes out as a literal the server adds to its dynamic table
    (RFC 7541 6.2.1) the second time it is sent on the connection, and as a one-byte
    reference to that entry from then on: a `get()` request's block shrinks from about
    200 bytes to about 10 plus its credentials, and the server decodes references
    instead of literals. Fields sent once (nonces, signatures) are never added, and
    credentials are always "never indexed" literals.

    The table is only ever filled, never evicted from: a field is added only while it
    fits within `DEFAULT_TABLE_SIZE`, so entries never move except by new insertions,
    and the server's table (at least that size) never drops one. Blocks are cached per
    (method, metadata, timeout) and valid until the next insertion.

    The blocks must be sent in the order they are encoded (HPACK state is the
    connection's), and each one that is encoded must be sent.
    """

    def __init__(self) -> None:
        self._limit = DEFAULT_TABLE_SIZE
        self._used = 0
        self._inserted = 0
        # Field identity -> its insertion number (1 for the first entry).
        self._entries: dict[tuple[bytes, bytes], int] = {}
        # Fields sent once and not added yet: added when they are sent again.
        self._seen: set[tuple[bytes, bytes]] = set()
        self._blocks: dict[tuple[object, ...], tuple[int, bytes]] = {}

    @property
    def size(self) -> int:
        """The size of the entries our blocks added to the server's table."""
        return self._used

    def disable(self) -> None:
        """Stop using the dynamic table (the server lowered its size below the default).

        The caller signals the server that our table is now empty, at the start of the
        next block (a dynamic table size update to 0): every entry is evicted, and no
        new one is added.
        """
        self._limit = 0
        self._used = 0
        self._entries.clear()
        self._seen.clear()
        self._blocks.clear()

    def encode(
        self,
        encoder: RequestHeaderEncoder,
        method: str,
        metadata: tuple[tuple[str, str | bytes], ...],
        timeout: float | None,
    ) -> bytes:
        """Encode a request's header block for this connection.

        Args:
            encoder: The transport's encoder (its origin and cached fields).
            method: The method path.
            metadata: Checked call metadata, as a tuple.
            timeout: Seconds until the deadline; None sends no `grpc-timeout`.

        Returns:
            The HPACK block; it must be sent before any block encoded after it.

        Raises:
            ValueError: As `RequestHeaderEncoder.fields`.
        """
        key = (encoder, method, metadata, timeout)
        cached = self._blocks.get(key)
        if cached is not None and cached[0] == self._inserted:
            return cached[1]
        inserted = self._inserted
        block, settled = self._build(encoder.head, encoder.fields(method, metadata, timeout))
        if settled and self._inserted == inserted:
            # Nothing was added and nothing waits to be: the same block until the next
            # insertion moves the entries' indexes.
            if len(self._blocks) >= _MAX_BLOCK_CACHE:
                self._blocks.clear()
            self._blocks[key] = (inserted, block)
        return block

    def _build(self, head: bytes, fields: list[Field]) -> tuple[bytes, bool]:
        """The block of `fields`, and whether every field is in its final form."""
        parts = [head]
        settled = True
        entries = self._entries
        seen = self._seen
        for field in fields:
            pair = field.pair
            number = entries.get(pair)
            if number is not None:
                index = _FIRST_DYNAMIC_INDEX + self._inserted - number
                parts.append(encode_integer(index, 7, 0x80))
                continue
            insert = field.insert
            if insert is None or self._used + field.size > self._limit:
                parts.append(field.literal)  # a credential, or no room left
            elif pair in seen:
                seen.discard(pair)
                self._inserted += 1
                self._used += field.size
                entries[pair] = self._inserted
                parts.append(insert)
            else:
                if len(seen) >= _MAX_SEEN:
                    seen.clear()
                seen.add(pair)
                settled = False
                parts.append(field.literal)
        return b"".join(parts), settled


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
