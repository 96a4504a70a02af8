"""HPACK for the HTTP/2 core: request blocks (stateless and per connection) and the
caching response decoder."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports import _hpack, _wire
from transports._hpack import (
    HeaderBlockError,
    RequestHeaderEncoder,
    RequestTable,
    ResponseHeaderDecoder,
    encode_integer,
)

_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=20)
_TEXT_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@st.composite
def _metadata(draw: st.DrawFn) -> list[tuple[str, str | bytes]]:
    pairs: list[tuple[str, str | bytes]] = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.one_of(_NAME, st.sampled_from(["key", "authorization", "x-sig"])))
        if draw(st.booleans()):
            pairs.append((name + "-bin", draw(st.binary(max_size=40))))
        else:
            pairs.append((name, draw(_TEXT_VALUE)))
    return pairs


_METHOD = st.builds(
    lambda package, method: f"/{package}/{method}",
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.", min_size=1, max_size=60
    ),
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=30
    ),
)
_TIMEOUT = st.one_of(
    st.none(),
    st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https"]),
    authority=st.sampled_from(["127.0.0.1:50051", "[::1]:443", "dispatch.example.com"]),
    method=_METHOD,
    metadata=_metadata(),
    timeout=_TIMEOUT,
)
def test_encoder_matches_request_headers(
    scheme: str,
    authority: str,
    method: str,
    metadata: list[tuple[str, str | bytes]],
    timeout: float | None,
) -> None:
    """The encoded block decodes to exactly `_wire.request_headers` for the same input."""
    encoder = RequestHeaderEncoder(scheme=scheme, authority=authority, user_agent="ua/1.0")
    expected = _wire.request_headers(
        scheme=scheme,
        authority=authority,
        path=method,
        user_agent="ua/1.0",
        timeout=timeout,
        metadata=metadata,
    )
    for _ in range(2):  # the second time from the caches
        block = encoder.encode(method, metadata, timeout)
        decoder = hpack.Decoder()
        assert list(decoder.decode(block, raw=True)) == expected
        # Stateless: nothing was added to the decoder's dynamic table.
        assert len(decoder.header_table.dynamic_entries) == 0


def test_credentials_are_never_indexed() -> None:
    """Credential metadata goes out as "never indexed" literals, other fields not."""
    encoder = RequestHeaderEncoder(scheme="https", authority="h:1", user_agent="u")
    block = encoder.encode("/a/b", [("key", "secret"), ("x-other", "v")], None)
    fields = {bytes(f[0]): f for f in hpack.Decoder().decode(block, raw=True)}
    assert isinstance(fields[b"key"], hpack.NeverIndexedHeaderTuple)
    assert not isinstance(fields[b"x-other"], hpack.NeverIndexedHeaderTuple)


def test_encoder_caches_stay_bounded() -> None:
    """Metadata that never repeats (nonces), many paths and timeouts do not grow the caches."""
    encoder = RequestHeaderEncoder(scheme="http", authority="h:1", user_agent="u")
    table = RequestTable()
    for number in range(5000):
        metadata = (("key", "k"), ("nonce", str(number)))
        block = encoder.encode(f"/s/m{number}", metadata, number / 7 + 0.5)
        assert block.endswith(b"\x05nonce" + bytes((len(str(number)),)) + str(number).encode())
        table.encode(encoder, f"/s/m{number % 700}", metadata, 60.0)
    assert len(encoder._fields) <= _hpack._MAX_FIELD_CACHE
    assert len(encoder._paths) <= _hpack._MAX_PATH_CACHE
    assert len(encoder._timeouts) <= _hpack._MAX_FIELD_CACHE
    assert len(table._seen) <= _hpack._MAX_SEEN
    assert table.size <= _hpack.DEFAULT_TABLE_SIZE
    for number in range(1000):
        table.encode(encoder, f"/s/m{number}", (("key", "k"),), 60.0)
    assert len(table._blocks) <= _hpack._MAX_BLOCK_CACHE


_CALL = st.tuples(
    st.sampled_from(["/pkg.S/Get", "/pkg.S/Create", "/pkg.S/List", "/other.Service/Method"]),
    st.sampled_from(
        [
            (),
            (("key", "secret"),),
            (("key", "secret"), ("x-tenant", "a")),
            (("x-tenant", "b"), ("trace-bin", b"\x00\x01")),
            (("authorization", "Bearer t"),),
        ]
    ),
    st.sampled_from([None, 60.0, 5.0, 0.25]),
    st.booleans(),  # with a nonce (a value never sent before)
)


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(_CALL, min_size=1, max_size=40))
def test_request_table_blocks_decode_in_order(
    calls: list[tuple[str, tuple[tuple[str, str | bytes], ...], float | None, bool]],
) -> None:
    """A connection's blocks, decoded in order by one decoder, give each request's headers.

    The decoder's table holds exactly what the blocks added, never over the default size
    (so it never evicts), and never a credential or a nonce.
    """
    encoder = RequestHeaderEncoder(scheme="https", authority="h:443", user_agent="ua/2")
    table = RequestTable()
    decoder = hpack.Decoder()
    for number, (method, metadata, timeout, nonce) in enumerate(calls):
        if nonce:
            metadata = (*metadata, ("nonce", str(number)))
        block = table.encode(encoder, method, metadata, timeout)
        decoded = decoder.decode(block, raw=True)
        assert decoded == _wire.request_headers(
            scheme="https",
            authority="h:443",
            path=method,
            user_agent="ua/2",
            timeout=timeout,
            metadata=metadata,
        )
        for field in decoded:
            if field[0] in (b"key", b"authorization"):
                assert isinstance(field, hpack.NeverIndexedHeaderTuple)
        entries = decoder.header_table.dynamic_entries
        assert len(entries) == table._inserted
        assert decoder.header_table._current_size == table.size <= _hpack.DEFAULT_TABLE_SIZE
        names = {bytes(name) for name, _ in entries}
        assert not names & {b"key", b"authorization", b"nonce"}


def test_repeated_requests_refer_to_the_table() -> None:
    """A request sent a third time is one byte per field but credentials, and cached."""
    encoder = RequestHeaderEncoder(scheme="http", authority="h:1", user_agent="u")
    table = RequestTable()
    metadata = (("key", "secret"), ("x-tenant", "a"))
    first = table.encode(encoder, "/pkg.S/Get", metadata, 60.0)
    second = table.encode(encoder, "/pkg.S/Get", metadata, 60.0)
    third = table.encode(encoder, "/pkg.S/Get", metadata, 60.0)
    assert first == encoder.encode("/pkg.S/Get", metadata, 60.0)  # seen once: literals
    assert len(second) > len(third)  # added to the table
    credential = _hpack.Field(b"key", b"secret", sensitive=True).literal
    # :method, :scheme, 6 references (path, authority, te, content-type, user-agent,
    # grpc-timeout), the credential, then x-tenant's reference.
    assert len(third) == 2 + 6 + len(credential) + 1
    assert credential in third
    assert table.encode(encoder, "/pkg.S/Get", metadata, 60.0) is third
    # Another method adds its path (on its second sighting) and moves the references.
    table.encode(encoder, "/pkg.S/Create", metadata, 60.0)
    table.encode(encoder, "/pkg.S/Create", metadata, 60.0)
    again = table.encode(encoder, "/pkg.S/Get", metadata, 60.0)
    assert again != third
    assert len(again) == len(third)


def test_full_table_sends_literals() -> None:
    """Once the table is full, new fields go out as literals; the old ones stay referenced."""
    encoder = RequestHeaderEncoder(scheme="http", authority="h:1", user_agent="u")
    table = RequestTable()
    decoder = hpack.Decoder()
    for number in range(200):
        for _ in range(2):
            block = table.encode(encoder, f"/pkg.Service/Method{number}", (), None)
            assert list(decoder.decode(block, raw=True))[2] == (
                b":path",
                f"/pkg.Service/Method{number}".encode(),
            )
    assert _hpack.DEFAULT_TABLE_SIZE - 100 < table.size <= _hpack.DEFAULT_TABLE_SIZE
    inserted = table._inserted
    block = table.encode(encoder, "/pkg.Service/Method199", (), None)
    assert b"/pkg.Service/Method199" in block  # a literal: it did not fit
    block = table.encode(encoder, "/pkg.Service/Method0", (), None)
    assert b"/pkg.Service/Method0" not in block  # referenced
    assert list(decoder.decode(block, raw=True))[2] == (b":path", b"/pkg.Service/Method0")
    assert table._inserted == inserted


def test_disabled_table_sends_literals_only() -> None:
    """After `disable()`, blocks are stateless and the table is forgotten."""
    encoder = RequestHeaderEncoder(scheme="http", authority="h:1", user_agent="u")
    table = RequestTable()
    for _ in range(3):
        table.encode(encoder, "/a/b", (("x", "y"),), 1.0)
    table.disable()
    assert table.size == 0
    for _ in range(3):
        assert table.encode(encoder, "/a/b", (("x", "y"),), 1.0) == encoder.encode(
            "/a/b", (("x", "y"),), 1.0
        )
    assert table.size == 0


def test_encoder_rejects_bad_input() -> None:
    """A bad scheme, a bad timeout or non-ASCII metadata raise ValueError."""
    with pytest.raises(ValueError, match="scheme"):
        RequestHeaderEncoder(scheme="ftp", authority="h", user_agent="u")
    encoder = RequestHeaderEncoder(scheme="http", authority="h", user_agent="u")
    with pytest.raises(ValueError, match="timeout"):
        encoder.encode("/a/b", (), 0.0)
    with pytest.raises(ValueError, match="ascii"):
        encoder.encode("/a/b", [("x", "é")], None)


@pytest.mark.parametrize(
    ("value", "bits", "expected"),
    [(10, 5, b"\x0a"), (1337, 5, b"\x1f\x9a\x0a"), (42, 8, b"\x2a"), (31, 5, b"\x1f\x00")],
)
def test_encode_integer_rfc_examples(value: int, bits: int, expected: bytes) -> None:
    """Integers are encoded as in RFC 7541's examples (C.1)."""
    assert encode_integer(value, bits) == expected


_POOL = [
    [(b":status", b"200"), (b"content-type", b"application/grpc")],
    [(b"grpc-status", b"0"), (b"grpc-message", b"")],
    [(b":status", b"200"), (b"content-type", b"application/grpc"), (b"x-req", b"1")],
    [(b"grpc-status", b"5"), (b"grpc-message", b"not found"), (b"x-req", b"2")],
    [(b":status", b"404")],
]


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("new"), st.integers(0, len(_POOL) - 1), st.booleans()),
            st.tuples(st.just("replay"), st.integers(0, 50), st.booleans()),
        ),
        max_size=30,
    ),
    table_size=st.sampled_from([4096, 100, 60]),
)
def test_decoder_cache_agrees_with_plain_decoding(
    steps: list[tuple[str, int, bool]], table_size: int
) -> None:
    """Cached decoding gives what a plain decoder gives for any sequence of blocks.

    The server's encoder indexes fields as it goes (and evicts with a small table), and
    earlier blocks are sent again, so blocks whose meaning changed with the table must
    not come from the cache.
    """
    encoder = hpack.Encoder()
    encoder.header_table_size = table_size
    ours = ResponseHeaderDecoder(1 << 16)
    reference = hpack.Decoder()
    sent: list[bytes] = []
    for kind, index, huffman in steps:
        if kind == "new" or not sent:
            block = encoder.encode(_POOL[index % len(_POOL)], huffman=huffman)
            sent.append(block)
        else:
            block = sent[index % len(sent)]
        try:
            expected = [(bytes(n), bytes(v)) for n, v in reference.decode(block, raw=True)]
        except hpack.HPACKError:
            with pytest.raises(HeaderBlockError):
                ours.decode(block)
            return
        headers, _problem = ours.decode(block)
        assert headers == expected


def test_decoder_cache_is_cleared_when_the_table_changes() -> None:
    """A block that indexes a new field empties the cache; unchanged tables keep it."""
    encoder = hpack.Encoder()
    decoder = ResponseHeaderDecoder(1 << 16)
    fields = [(b":status", b"200"), (b"content-type", b"application/grpc")]
    first = encoder.encode(fields)  # adds content-type to the table
    assert decoder.decode(first)[0] == fields
    assert decoder._cache == {}
    second = encoder.encode(fields)  # all indexed now
    assert decoder.decode(second)[0] == fields
    assert list(decoder._cache) == [second]
    headers, problem = decoder.decode(second)
    assert (headers, problem) == (fields, None)
    headers.append((b"mutated", b"!"))
    assert decoder.decode(second)[0] == fields
    third = encoder.encode([(b"x-other", b"value")])  # indexed: the table changes
    assert decoder.decode(third)[0] == [(b"x-other", b"value")]
    assert decoder._cache == {}
    # The same bytes as `second` now refer to the entry that moved in front.
    assert decoder.decode(second)[0] == [(b":status", b"200"), (b"x-other", b"value")]


def test_decoder_cache_stays_bounded() -> None:
    """Many distinct blocks that do not touch the table keep the cache bounded."""
    decoder = ResponseHeaderDecoder(1 << 16)
    for number in range(1000):
        value = str(number).encode()
        block = b"\x88" + b"\x00" + bytes((5,)) + b"x-num" + bytes((len(value),)) + value
        assert decoder.decode(block)[0] == [(b":status", b"200"), (b"x-num", value)]
    assert len(decoder._cache) <= _hpack._MAX_DECODED_CACHE


def test_decoder_errors() -> None:
    """Invalid HPACK and oversized lists raise HeaderBlockError, marked as they are."""
    decoder = ResponseHeaderDecoder(100)
    with pytest.raises(HeaderBlockError) as caught:
        decoder.decode(b"\xff\xff\xff\xff\xff\x0f")
    assert not caught.value.oversized
    with pytest.raises(HeaderBlockError) as caught:
        decoder.decode(b"\x00\x01x\x7f\x49" + b"y" * 200)
    assert caught.value.oversized


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ([(b":status", b"200"), (b"grpc-status", b"0")], None),
        ([(b"Grpc-Status", b"0")], "uppercase"),
        ([(b"te", b"trailers"), (b":status", b"200")], "after a regular header"),
        ([(b":method", b"GET")], "in a response"),
        ([(b":status", b"200"), (b":status", b"204")], "repeated"),
        ([(b"transfer-encoding", b"chunked")], "connection-specific"),
    ],
)
def test_malformed_blocks_are_named(
    headers: list[tuple[bytes, bytes]], problem: str | None
) -> None:
    """The decoder names what makes a block malformed as a response."""
    decoder = ResponseHeaderDecoder(1 << 16)
    _, found = decoder.decode(hpack.Encoder().encode(headers))
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
