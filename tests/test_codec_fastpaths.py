"""The fast codec's short cuts, at their edges, against the reference and upb.

`_decode` reads the common shapes in line: timestamps of five bytes of seconds, lengths
of one and two bytes, payload entries whose value is one member with a one-byte length.
Each short cut must give up exactly where its shape ends (a longer or padded varint,
another field after the member, a length on the boundary) and read everything else as
the general loops do. Here the boundaries are hit on purpose: the values on both sides
of each varint length, padded varints, negative numbers, nanoseconds, timestamps beyond
datetime's range, and malformed bytes, which must raise `DecodeError` in both decoders.

`_encode` writes the common shapes in one piece (short payload entries of a float or a
string, varints of up to five bytes, small packed numbers, one-byte end counts, whole
seconds); its bytes must stay upb's deterministic bytes on both sides of each limit.
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch_client._codec import _decode as fast
from dispatch_client._codec import _encode as fast_encode
from dispatch_client._codec._wire import put_varint, varint_bytes
from dispatch_client._errors import DecodeError
from dispatch_client._types import EndCriteria, Frequency, RecurrenceRule, TargetIds, Weekday

from . import wire
from .test_codec_decode import (
    CHEAP,
    KIND,
    PROPERTY,
    _data,
    _entry,
    _get,
    _number,
    _string,
    assert_agrees,
    assert_agrees_with_protobuf,
    run_fast,
)
from .test_codec_encode import _create, _deterministic, official_create_request

GET = KIND["get"]
_INT64 = 2**63

# Seconds on both sides of each varint length (the short cut reads five bytes: 2**28
# to 2**35 - 1), datetime's range (years 1 to 9999) and negative values (ten bytes).
_SECONDS_EDGES = [
    0,
    1,
    2**21 - 1,
    2**21,
    2**28 - 1,
    2**28,
    1_800_000_000,
    2**35 - 1,
    2**35,
    253_402_300_799,  # 9999-12-31T23:59:59
    253_402_300_800,  # beyond datetime
    -1,
    -62_135_596_800,  # 0001-01-01
    -62_135_596_801,  # before datetime
    _INT64 - 1,
    -_INT64,
]
_NANOS_EDGES = [0, 1, 999, 1000, 999_999, 999_999_999, 2**31 - 1, -1, -1000, -(2**31)]


def _timestamp(seconds: int | None, nanos: int | None = None, *, pad: int = 0) -> bytes:
    """A Timestamp's content; `pad` widens the seconds varint by that many bytes."""
    out = b""
    if seconds is not None:
        plain = wire.encode_varint(seconds)
        out += b"\x08" + wire.encode_varint(seconds, min(10, len(plain) + pad))
    if nanos is not None:
        out += b"\x10" + wire.encode_varint(nanos)
    return out


def _with_times(content: bytes) -> bytes:
    """A get response with `content` as its start, create, update and end time."""
    metadata = b"".join(wire.field_bytes(number, content) for number in (2, 3, 4))
    return _get(wire.field_bytes(1, metadata) + _data(wire.field_bytes(2, content)))


@pytest.mark.parametrize("seconds", _SECONDS_EDGES)
@pytest.mark.parametrize("pad", [0, 1])
def test_timestamps_at_varint_length_boundaries_decode_as_the_reference(
    seconds: int, pad: int
) -> None:
    """Seconds around each varint length and datetime's range read (or fail) as the reference."""
    data = _with_times(_timestamp(seconds, pad=pad))
    assert_agrees(GET, data)
    assert_agrees_with_protobuf(GET, data)


@pytest.mark.parametrize("nanos", _NANOS_EDGES)
@pytest.mark.parametrize("seconds", [-1, 0, 2**28, 1_800_000_000, 2**35 - 1])
def test_timestamps_with_nanoseconds_floor_them_as_the_reference(seconds: int, nanos: int) -> None:
    """Nanoseconds, negative ones too, are floored to microseconds as the reference does."""
    assert_agrees(GET, _with_times(_timestamp(seconds, nanos)))
    assert_agrees(GET, _with_times(_timestamp(None, nanos) + _timestamp(seconds)))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("seconds twice, the last wins", _timestamp(1_800_000_000) + _timestamp(2**30)),
        ("an unknown field after the seconds", _timestamp(1_800_000_000) + b"\x18\x01"),
        ("an unknown field before the seconds", b"\x18\x01" + _timestamp(1_800_000_000)),
        ("six bytes, the last with its 0x80 bit", b"\x08\x80\x80\x80\x80\x80"),
        ("five bytes, one without its 0x80 bit", b"\x08\x80\x80\x00\x80\x06"),
        ("a key other than seconds", b"\x10\x80\x80\x80\x80\x06"),
        ("seconds, truncated", b"\x08\x80\x80\x80\x80"),
        ("seconds of four bytes and a field", b"\x08\x80\x80\x80\x01\x10\x05"),
        ("nothing", b""),
    ],
)
def test_timestamp_shapes_near_the_short_cut_decode_as_the_reference(
    name: str, content: bytes
) -> None:
    """Timestamps that almost have the short cut's shape read (or fail) as the reference."""
    assert_agrees(GET, _with_times(content))


@CHEAP
@given(
    seconds=st.one_of(st.sampled_from(_SECONDS_EDGES), st.integers(-_INT64, _INT64 - 1)),
    nanos=st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
    pad=st.integers(0, 3),
)
def test_any_timestamp_decodes_as_the_reference(seconds: int, nanos: int | None, pad: int) -> None:
    """Any seconds and nanoseconds, varints padded or not, read (or fail) as the reference."""
    assert_agrees(GET, _with_times(_timestamp(seconds, nanos, pad=pad)))


# ------------------------------------------------------------------------ lengths


@pytest.mark.parametrize("around", [128, 16_384])
def test_lengths_of_one_two_and_three_bytes_decode_as_the_reference(around: int) -> None:
    """Payload, data and dispatch lengths crossing 128 and 16,384 read as the reference."""
    lengths = set()
    for text in range(around - 40, around + 5):
        payload = _entry("k", _string("x" * text))
        data = _get(_data(wire.field_bytes(7, payload)))
        assert assert_agrees(GET, data).ok
        assert fast.decode_get_response(data).payload == {"k": "x" * text}
        lengths.add(len(payload))
    # Every length of the payload, its DispatchData and its Dispatch went by the boundary.
    assert min(lengths) < around - 20
    assert max(lengths) >= around


@pytest.mark.parametrize("length", [0, 5, 127, 128, 300])
@pytest.mark.parametrize("width", [2, 3])
def test_padded_lengths_decode_as_the_reference(length: int, width: int) -> None:
    """A length written with more bytes than it needs reads as its value, at every level."""

    def field(number: int, content: bytes) -> bytes:
        size = wire.encode_varint(len(content), max(width, len(wire.encode_varint(len(content)))))
        return wire.tag(number, 2) + size + content

    payload = _entry("k", _string("x" * length))
    data = field(2, field(2, field(7, payload) + field(1, b"kind")))
    assert_agrees(GET, data)
    assert_agrees_with_protobuf(GET, data)
    assert fast.decode_get_response(data).payload == {"k": "x" * length}


@pytest.mark.parametrize(
    "data",
    [
        b"\x12",  # a dispatch without its length
        b"\x12\x85",  # a two-byte length, cut
        b"\x12\x85\x80",  # a three-byte length, cut
        b"\x12\x80\x01",  # 128 bytes announced, none there
        _get(_data(b"\x3a\xee")),  # a payload's two-byte length, cut
        _get(_data(b"\x3a\xee\x01")),  # a payload of 238 bytes, none there
        _get(_data(b"\x3a\x81\x00")),  # a padded length of one byte, none there
    ],
    ids=lambda data: data.hex(),
)
def test_truncated_lengths_are_decode_errors(data: bytes) -> None:
    """A length that is cut, or announces more than there is, fails in both decoders."""
    assert not assert_agrees(GET, data).ok


# ----------------------------------------------------------------------- payloads


def _payload(*entries: bytes) -> bytes:
    return _get(_data(wire.field_bytes(7, b"".join(entries))))


_MEMBER_SHAPES: dict[str, bytes] = {
    "number": _number(1.5),
    "negative zero": _number(-0.0),
    "number, then null": _number(1.5) + b"\x08\x00",
    "null, then number": b"\x08\x00" + _number(1.5),
    "number, cut": b"\x11" + bytes(7),
    "number, wire type varint": b"\x10\x05",
    "empty string": _string(""),
    "string of 125": _string("s" * 125),
    "string of 126": _string("s" * 126),
    "string of 127": _string("s" * 127),
    "string, then unknown": _string("a") + b"\x38\x01",
    "string, invalid UTF-8": wire.field_bytes(3, b"\xff"),
    "string, length too long": b"\x1a\x05ab",
    "string, length too short": b"\x1a\x01ab",
    "string, then struct": _string("a") + wire.field_bytes(5, _entry("b", _number(2.0))),
    "empty struct": wire.field_bytes(5, b""),
    "struct": wire.field_bytes(5, _entry("b", _number(2.0))),
    "struct, then string": wire.field_bytes(5, _entry("b", _number(2.0))) + _string("a"),
    "struct, twice": wire.field_bytes(5, _entry("b", _number(2.0)))
    + wire.field_bytes(5, _entry("c", _string("d"))),
    "struct, length too long": b"\x2a\x05\x0a\x00",
    "empty list": wire.field_bytes(6, b""),
    "list": wire.field_bytes(6, wire.field_bytes(1, _number(3.0)) + wire.field_bytes(1, b"")),
    "list, then null": wire.field_bytes(6, wire.field_bytes(1, _string("e"))) + b"\x08\x00",
    "list, then struct": wire.field_bytes(6, b"") + wire.field_bytes(5, b""),
    "list, length too short": b"\x32\x00\x0a\x00",
    "bool": b"\x20\x01",
    "lone key": b"\x1a",
    "lone struct key": b"\x2a",
    "empty value": b"",
}


@pytest.mark.parametrize("shape", list(_MEMBER_SHAPES))
@pytest.mark.parametrize("name", ["", "k", "n" * 127, "n" * 128], ids=lambda n: f"name{len(n)}")
def test_payload_values_near_the_short_cuts_decode_as_the_reference(shape: str, name: str) -> None:
    """Values of one member and of more, valid or not, read (or fail) as the reference."""
    value = _MEMBER_SHAPES[shape]
    for data in (
        _payload(_entry(name, value)),
        _payload(_entry(name, value), _entry("after", _number(1.0))),
        _payload(_entry("outer", wire.field_bytes(5, _entry(name, value)))),
        _payload(_entry("outer", wire.field_bytes(6, wire.field_bytes(1, value)))),
    ):
        assert_agrees(GET, data)


@pytest.mark.parametrize(
    "bits", [0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000, 0x7FF8_0000_0000_0001]
)
def test_payload_numbers_that_are_not_finite_are_decode_errors(bits: int) -> None:
    """Infinities and NaN in a payload, at the top, nested or in a list, fail in both decoders."""
    number = b"\x11" + struct.pack("<Q", bits)
    for data in (
        _payload(_entry("k", number)),
        _payload(_entry("o", wire.field_bytes(5, _entry("k", number)))),
        _payload(_entry("o", wire.field_bytes(6, wire.field_bytes(1, number)))),
    ):
        assert not assert_agrees(GET, data).ok


@PROPERTY
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=140),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=130), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_payloads_of_every_shape_decode_as_the_reference(value: Any) -> None:
    """Nested payloads with keys and strings around 128 bytes read as the reference reads them."""
    from google.protobuf import struct_pb2

    message = struct_pb2.Value()
    message.struct_value.update({"v": value})
    data = _payload(bytes(message.struct_value.SerializeToString()))
    assert_agrees(GET, data)
    assert run_fast(GET, data).ok


# ------------------------------------------------------------------------- errors


def test_a_truncated_response_raises_decode_error_without_a_cause() -> None:
    """A cut response is one DecodeError saying so, with no IndexError chained to it."""
    with pytest.raises(DecodeError, match="truncated") as caught:
        fast.decode_get_response(b"\x12\x85")  # a length, cut
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "decode", [fast.decode_get_response, fast.decode_create_response, fast.decode_update_response]
)
def test_invalid_content_raises_decode_error_caused_by_the_original(decode: Any) -> None:
    """Invalid UTF-8 is a DecodeError whose cause is the UnicodeDecodeError."""
    dispatch = _data(wire.field_bytes(1, b"\xff"))  # DispatchData.type
    data = _get(dispatch) if decode is fast.decode_get_response else wire.field_bytes(1, dispatch)
    with pytest.raises(DecodeError, match="Response: ") as caught:
        decode(data)
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)


def test_a_response_without_a_dispatch_is_a_decode_error() -> None:
    """A get response holding only its microgrid id carries no dispatch: a DecodeError."""
    with pytest.raises(DecodeError, match="no dispatch"):
        fast.decode_get_response(wire.field_bytes(1, 7))


# ----------------------------------------------------------------------- encoding


_VARINT_EDGES = [0, 1, 0x7F, 0x80, 2**14 - 1, 2**14, 2**21 - 1, 2**21, 2**28 - 1, 2**28]
_VARINT_EDGES += [2**35 - 1, 2**35, 2**63, 2**64 - 1]


@pytest.mark.parametrize("value", _VARINT_EDGES)
def test_varints_around_each_length_encode_as_protobuf_does(value: int) -> None:
    """The unrolled varint writer gives the bytes of the general one, at every length."""
    assert varint_bytes(value) == wire.encode_varint(value)
    out = bytearray()
    put_varint(out, value)
    assert bytes(out) == wire.encode_varint(value)


def _assert_create_encodes_as_official(**changes: Any) -> None:
    request = _create(**changes)
    assert fast_encode.encode_create_request(request) == _deterministic(
        official_create_request(request)
    )


@pytest.mark.parametrize("key", [0, 1, 0x72, 0x73, 0x7F, 0x80, 0x100])
@pytest.mark.parametrize("text", [0, 1, 0x79, 0x7A, 0x7B, 0x7D, 0x7E, 0x80])
def test_payload_entries_around_one_byte_lengths_encode_as_upb_does(key: int, text: int) -> None:
    """Keys and strings on both sides of the short cuts' length limits encode as upb does."""
    name = "k" * key
    _assert_create_encodes_as_official(
        payload={name: "s" * text, name + "n": -0.0, name + "m": 5e-324, name + "o": {name: 1.5}}
    )


class _Float(float):
    """A float subclass (as numpy's float64 is one)."""


class _Str(str):
    """A str subclass."""


def test_payload_values_of_subclasses_encode_as_their_base_types() -> None:
    """Float and str subclasses in a payload encode as plain floats and strings."""
    _assert_create_encodes_as_official(payload={"f": _Float(2.5), "s": _Str("x"), "i": 3})
    request = _create(payload={"f": _Float(2.5), "s": _Str("x")})
    plain = _create(payload={"f": 2.5, "s": "x"})
    assert fast_encode.encode_create_request(request) == fast_encode.encode_create_request(plain)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, _Float(math.inf)])
def test_payload_numbers_that_are_not_finite_are_rejected_at_every_level(bad: float) -> None:
    """A non-finite number directly in a payload, as in a list, is a ValueError."""
    request = _create()
    request.payload["bad"] = bad  # changed after the record checked it
    with pytest.raises(ValueError, match="not finite"):
        fast_encode.encode_create_request(request)


@pytest.mark.parametrize(
    "seconds", [0, 1, 2**28 - 1, 2**28, 1_800_000_000, 2**35 - 1, 2**35, -1, -(2**28)]
)
@pytest.mark.parametrize("micros", [0, 1, 999_999])
def test_start_times_around_each_varint_length_encode_as_upb_does(
    seconds: int, micros: int
) -> None:
    """Start and until times, with and without microseconds, encode as upb does."""
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micros)
    rule = RecurrenceRule(
        frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(until=when)
    )
    _assert_create_encodes_as_official(start_time=when, recurrence=rule)


@pytest.mark.parametrize(
    "duration",
    [
        timedelta(0),
        timedelta(seconds=1),
        timedelta(microseconds=500_000),
        timedelta(seconds=1, microseconds=500_000),
        timedelta(days=3, seconds=7, microseconds=1),
        timedelta(seconds=2**32 - 1),
    ],
)
def test_durations_encode_rounded_as_upb_does(duration: timedelta) -> None:
    """Whole and fractional durations are sent rounded half to even, as the reference does."""
    _assert_create_encodes_as_official(duration=duration)


@pytest.mark.parametrize("count", [1, 0x7F, 0x80, 2**32 - 1])
@pytest.mark.parametrize(
    "lists",
    [
        {},
        {"byhours": (6, 18)},
        {"byminutes": (0, 59), "bymonthdays": (-31, -1, 1, 31), "bymonths": (1, 12)},
        {"byweekdays": (Weekday.MONDAY, Weekday.SUNDAY)},
    ],
    ids=["none", "hours", "negative days", "weekdays"],
)
def test_rules_encode_as_upb_does(count: int, lists: dict[str, Any]) -> None:
    """End counts around one byte and `by*` lists, negative days too, encode as upb does."""
    rule = RecurrenceRule(
        frequency=Frequency.WEEKLY, interval=3, end_criteria=EndCriteria(count=count), **lists
    )
    _assert_create_encodes_as_official(recurrence=rule)


@pytest.mark.parametrize("ids", [(1,), (0, 0x7F), (0x7F, 0x80), (1, 2**64 - 1), (300, 5)], ids=str)
def test_target_ids_around_one_byte_encode_as_upb_does(ids: tuple[int, ...]) -> None:
    """Target ids below 128 (one byte each), beyond, and mixed encode as upb does."""
    _assert_create_encodes_as_official(target=TargetIds(*ids))
    _assert_create_encodes_as_official(start_time="NOW", target=TargetIds(*ids))


# ------------------------------------------------------------------- recurrence rules


def _rule_response(*fields: bytes) -> bytes:
    """A get response whose dispatch has a recurrence rule made of `fields`."""
    return _get(_data(wire.field_bytes(8, b"".join(fields))))


_DAILY = wire.field_bytes(1, 3) + wire.field_bytes(2, 1)


@pytest.mark.parametrize(
    "criteria",
    [
        wire.field_bytes(1, 0),  # count 0: invalid
        wire.field_bytes(1, 1),
        wire.field_bytes(1, 0x7F),
        wire.field_bytes(1, 0x80),  # two bytes
        b"\x08\x85\x00",  # 5, padded
        b"\x08\x1e\x08\x1f",  # two counts: the last wins
        wire.field_bytes(1, 30) + b"\x18\x01",  # and an unknown field
        b"\x08",  # cut
        wire.field_bytes(2, _timestamp(1_800_000_000)),  # until
        wire.field_bytes(2, b"") + wire.field_bytes(1, 3),  # until, then a count
        b"",  # neither
    ],
    ids=lambda criteria: criteria.hex() or "empty",
)
def test_end_criteria_near_the_short_cut_decode_as_the_reference(criteria: bytes) -> None:
    """A rule's end (a count of one byte or not, until, both, neither) reads as the reference."""
    data = _rule_response(_DAILY, wire.field_bytes(3, criteria))
    assert_agrees(GET, data)
    assert_agrees(GET, _rule_response(_DAILY, wire.field_bytes(3, criteria), _DAILY))


@pytest.mark.parametrize(
    "lists",
    [
        wire.field_bytes(5, bytes([6, 18])),  # byhours, packed
        wire.field_bytes(5, bytes([6])) + wire.field_bytes(5, bytes([18])),  # in two parts
        wire.field_bytes(5, bytes([6])) + wire.field_bytes(5, 18),  # packed, then not
        wire.field_bytes(5, 18) + wire.field_bytes(5, bytes([6])),  # not, then packed
        wire.field_bytes(7, wire.encode_varint(-1) + bytes([31])),  # bymonthdays, -1
        wire.field_bytes(4, bytes([0x80, 0x01])),  # byminutes 128: out of range
        wire.field_bytes(6, bytes([1, 9])),  # byweekdays, 9 unknown
        wire.field_bytes(8, b""),  # bymonths, empty
        wire.field_bytes(8, bytes([12, 0x80])),  # cut varint
    ],
    ids=lambda lists: lists.hex(),
)
def test_rule_lists_near_the_short_cut_decode_as_the_reference(lists: bytes) -> None:
    """Packed `by*` lists, in parts, mixed, negative, out of range or cut, read as the reference."""
    assert_agrees(GET, _rule_response(_DAILY, lists))


# ------------------------------------------------------------------------- targets


@pytest.mark.parametrize(
    "id_set",
    [
        wire.field_bytes(1, bytes([1, 2, 3])),  # packed, below 128: the short cut
        wire.field_bytes(1, bytes([0, 0x7F])),
        wire.field_bytes(1, b""),  # no ids
        wire.field_bytes(1, wire.encode_varint(128) + bytes([5])),  # one id of two bytes
        wire.field_bytes(1, bytes([1])) + wire.field_bytes(1, bytes([2])),  # in two parts
        wire.field_bytes(1, 7) + wire.field_bytes(1, bytes([2])),  # not packed, then packed
        wire.field_bytes(1, bytes([1, 2])) + b"\x18\x01",  # and an unknown field
        wire.field_bytes(1, bytes([1, 0x80])),  # a cut varint
        b"\x0a\x05\x01\x02",  # a length beyond the set
        wire.tag(1, 2) + b"\x83\x00" + bytes([1, 2, 3]),  # a padded length
        b"",  # an empty set
    ],
    ids=lambda id_set: id_set.hex() or "empty",
)
def test_target_ids_near_the_short_cut_decode_as_the_reference(id_set: bytes) -> None:
    """Component id sets packed or not, in parts, wide or cut read (or fail) as the reference."""
    data = _get(_data(wire.field_bytes(4, wire.field_bytes(1, id_set))))
    assert_agrees(GET, data)
