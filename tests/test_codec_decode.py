"""The hand-written wire decoder (`_decode`) against the reference (`_bridge`).

Both turn the five response messages into domain objects and raise `DecodeError` (and
nothing else) for bad bytes or content the domain rejects. Inputs are official protobuf
messages with drawn content, re-serialized through `tests.wire` with transformations
any conforming parser must see through (shuffled fields, unpacked repeated scalars,
unknown fields, padded varints). Results are compared strictly: same types all the way
down (1.0 is not 1, a tuple is not a list), same enum classes, same timezones.

Where protobuf's merge semantics apply (a message serialized twice, concatenated), the
oracle is `_bridge` on the official parser's canonical re-serialization, so that both
paths are held to protobuf's reading, not to each other's (tests/test_codec_differential.py
does the same on fuzzed bytes).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, NamedTuple

import attrs
import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2 as opb
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import DecodeError as OfficialDecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch_client._codec import _bridge as bridge
from dispatch_client._codec import _decode as fast
from dispatch_client._errors import DecodeError
from dispatch_client._types import (
    BatteryType,
    Dispatch,
    DispatchEvent,
    ElectricalComponentCategory,
    EndCriteria,
    Event,
    Frequency,
    InverterType,
    RecurrenceRule,
    TargetCategories,
    TargetCategory,
    TargetIds,
)

from . import strategies as s
from . import wire
from .test_conformance import official_dispatch, wire_number

# Example counts keep the whole module at about 20 s.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MORE = settings(PROPERTY, max_examples=300)
CHEAP = settings(PROPERTY, max_examples=1000)


class Kind(NamedTuple):
    """One response message: its official class and the name of its decode function."""

    name: str
    official: Any
    function: str


KINDS = [
    Kind("list", opb.ListMicrogridDispatchesResponse, "decode_list_response"),
    Kind("stream", opb.StreamMicrogridDispatchesResponse, "decode_stream_response"),
    Kind("get", opb.GetMicrogridDispatchResponse, "decode_get_response"),
    Kind("create", opb.CreateMicrogridDispatchResponse, "decode_create_response"),
    Kind("update", opb.UpdateMicrogridDispatchResponse, "decode_update_response"),
]
KIND = {kind.name: kind for kind in KINDS}


# ------------------------------------------------------------------------ running


class Outcome(NamedTuple):
    """What a decoder did: returned `value` (ok) or raised DecodeError (not ok)."""

    ok: bool
    value: Any


def run(decoder: Callable[[bytes], Any], data: bytes) -> Outcome:
    """Call a decoder; only DecodeError is an accepted failure."""
    try:
        return Outcome(True, decoder(data))
    except DecodeError:
        return Outcome(False, None)


def run_fast(kind: Kind, data: bytes) -> Outcome:
    """Run the fast decoder for `kind`."""
    return run(getattr(fast, kind.function), data)


def run_reference(kind: Kind, data: bytes) -> Outcome:
    """Run the reference decoder for `kind`."""
    return run(getattr(bridge, kind.function), data)


def assert_same_outcome(got: Outcome, want: Outcome, data: bytes) -> None:
    """Both raised DecodeError, or both returned strictly equal values."""
    assert got.ok == want.ok, (
        f"fast {'decoded' if got.ok else 'rejected'}, reference "
        f"{'decoded' if want.ok else 'rejected'} {data.hex()}: fast={got.value!r} "
        f"reference={want.value!r}"
    )
    if got.ok:
        assert_strict_equal(got.value, want.value)


def assert_agrees(kind: Kind, data: bytes) -> Outcome:
    """The fast decoder does what the reference decoder does with the same bytes."""
    want = run_reference(kind, data)
    assert_same_outcome(run_fast(kind, data), want, data)
    return want


def canonical(kind: Kind, data: bytes) -> bytes | None:
    """The official parser's re-serialization (merged, truncated ints), None if invalid."""
    try:
        return bytes(kind.official.FromString(data).SerializeToString())
    except OfficialDecodeError:
        return None


def assert_agrees_with_protobuf(kind: Kind, data: bytes) -> None:
    """Fast on `data` does what the reference does on the official parse of `data`.

    Not for map entries holding unknown fields: see `wire.Mangle.unknown_in_map_entries`.
    """
    plain = canonical(kind, data)
    got = run_fast(kind, data)
    if plain is None:
        assert not got.ok, f"the official parser rejects {data.hex()}, fast decoded {got.value!r}"
        return
    assert_same_outcome(got, run_reference(kind, plain), data)


def assert_strict_equal(got: Any, want: Any, path: str = "result") -> None:
    """Recursive equality that also requires identical types, enum classes and timezones."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} vs {type(want).__name__}"
    if isinstance(got, IntEnum):
        assert (int(got), got.name) == (int(want), want.name), f"{path}: {got!r} vs {want!r}"
    elif isinstance(got, float):
        same = math.isnan(got) and math.isnan(want)
        same = same or (got == want and math.copysign(1, got) == math.copysign(1, want))
        assert same, f"{path}: {got!r} vs {want!r}"
    elif isinstance(got, datetime):
        assert got == want, f"{path}: {got!r} vs {want!r}"
        assert (got.utcoffset(), got.tzinfo, got.fold) == (
            want.utcoffset(),
            want.tzinfo,
            want.fold,
        ), f"{path}: {got!r} vs {want!r}"
    elif isinstance(got, TargetIds | TargetCategories):
        assert got == want, f"{path}: {got!r} vs {want!r}"
        assert sorted(map(_member_key, got)) == sorted(map(_member_key, want)), path
    elif isinstance(got, dict):
        assert got.keys() == want.keys(), f"{path}: keys {list(got)} vs {list(want)}"
        for key, item in got.items():
            assert type(key) is str, f"{path}: key {key!r}"
            assert_strict_equal(item, want[key], f"{path}[{key!r}]")
    elif isinstance(got, tuple | list):
        assert len(got) == len(want), f"{path}: {got!r} vs {want!r}"
        for index, (left, right) in enumerate(zip(got, want, strict=True)):
            assert_strict_equal(left, right, f"{path}[{index}]")
    elif attrs.has(type(got)):
        for field in attrs.fields(type(got)):
            if field.eq:
                assert_strict_equal(
                    getattr(got, field.name), getattr(want, field.name), f"{path}.{field.name}"
                )
    else:
        assert got == want, f"{path}: {got!r} vs {want!r}"


def _member_key(member: Any) -> tuple[str, int, str]:
    """A sortable identity of a TargetIds or TargetCategories member, with its exact type."""
    if isinstance(member, TargetCategory):
        target = member.target
        return (type(target).__name__, int(target), target.name)
    return (type(member).__name__, member, "")


def mangled(message: Any, rng: random.Random, mangle: wire.Mangle) -> bytes:
    """Serialize an official message, then re-serialize it with `mangle` applied."""
    data = bytes(message.SerializeToString())
    return wire.serialize(wire.parse(data, message.DESCRIPTOR), rng, mangle)


# ------------------------------------------------- strategies for official messages

INT32 = st.integers(-(2**31), 2**31 - 1)
UINT32 = st.one_of(
    st.integers(0, 3), st.sampled_from([2**31 - 1, 2**31, 2**32 - 1]), st.integers(0, 2**32 - 1)
)
UINT64 = st.one_of(
    st.integers(0, 3), st.sampled_from([2**63 - 1, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1)
)
# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z
_SECONDS_MIN, _SECONDS_MAX = -62_135_596_800, 253_402_300_799
MANGLES = st.builds(
    wire.Mangle,
    shuffle=st.booleans(),
    unpack=st.booleans(),
    unknown=st.booleans(),
    pad=st.booleans(),
)
RANDOMS = st.randoms(use_true_random=False)
LONG_TEXT = st.text(min_size=130, max_size=140)  # lengths that need a two-byte varint


def enum_numbers(largest_known: int) -> st.SearchStrategy[Any]:
    """Wire numbers of an open enum: known ones, just past them, and any int32."""
    return st.one_of(
        st.integers(0, largest_known + 1), st.sampled_from([-1, -(2**31), 2**31 - 1]), INT32
    )


def timestamps(wild: bool) -> st.SearchStrategy[Any]:
    """Timestamps with nanos anywhere in int32; `wild`: seconds anywhere in int64 too."""
    seconds = st.integers(_SECONDS_MIN, _SECONDS_MAX)
    if wild:
        seconds = st.one_of(
            seconds,
            st.sampled_from([_SECONDS_MIN - 1, _SECONDS_MAX + 1, -(2**63), 2**63 - 1]),
            st.integers(-(2**63), 2**63 - 1),
        )
    nanos = st.one_of(
        st.integers(0, 999_999_999), st.sampled_from([-1, 10**9, -(2**31), 2**31 - 1]), INT32
    )
    return st.builds(timestamp_pb2.Timestamp, seconds=seconds, nanos=nanos)


def _struct(items: dict[str, Any]) -> Any:
    struct = struct_pb2.Struct()
    for key, value in items.items():
        struct.fields[key].CopyFrom(value)
    return struct


def values(wild: bool) -> st.SearchStrategy[Any]:
    """google.protobuf.Values of every kind (and none), nested; `wild`: NaN and infinities."""
    numbers = st.floats() if wild else st.floats(allow_nan=False, allow_infinity=False)
    numbers |= st.integers(-(2**53), 2**53).map(float)  # integral: must stay floats
    leaves = st.one_of(
        st.builds(struct_pb2.Value),
        st.builds(struct_pb2.Value, null_value=enum_numbers(0)),
        st.builds(struct_pb2.Value, number_value=numbers),
        st.builds(struct_pb2.Value, string_value=st.text(max_size=6) | LONG_TEXT),
        st.builds(struct_pb2.Value, bool_value=st.booleans()),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.builds(
                lambda items: struct_pb2.Value(struct_value=_struct(items)),
                st.dictionaries(st.text(max_size=4) | LONG_TEXT, children, max_size=3),
            ),
            st.builds(
                lambda items: struct_pb2.Value(list_value=struct_pb2.ListValue(values=items)),
                st.lists(children, max_size=3),
            ),
        ),
        max_leaves=10,
    )


_TYPE_CATEGORY = {"battery": 5, "inverter": 3, "ev_charger": 6}


@st.composite
def targets(draw: st.DrawFn, wild: bool) -> Any:
    """A TargetComponents of any variant, or with none set; `wild`: category/type mismatches."""
    message = opb.TargetComponents()
    variant = draw(st.sampled_from(["ids", "categories", "types", "none"]))
    if variant == "ids":
        message.component_ids.SetInParent()
        message.component_ids.ids.extend(draw(st.lists(UINT64, max_size=4)))
    elif variant == "categories":
        message.component_categories.SetInParent()
        message.component_categories.categories.extend(draw(st.lists(enum_numbers(19), max_size=4)))
    elif variant == "types":
        message.component_categories_types.SetInParent()
        for _ in range(draw(st.integers(0, 3))):
            item = message.component_categories_types.categories.add()
            subtype = draw(st.sampled_from([None, "battery", "inverter", "ev_charger"]))
            if subtype is None or wild:
                item.category = draw(st.one_of(st.sampled_from([3, 5, 6]), enum_numbers(19)))
            else:
                item.category = _TYPE_CATEGORY[subtype]
            if subtype is not None:
                setattr(item, subtype, draw(enum_numbers(3)))
    return message


@st.composite
def recurrences(draw: st.DrawFn, wild: bool) -> Any:
    """None, the default (empty) rule, or a full rule; `wild`: out-of-range values."""
    variant = draw(st.sampled_from(["none", "default", "full"]))
    if variant == "none":
        return None
    rule = opb.RecurrenceRule()
    if variant == "default":
        return rule
    rule.freq = draw(enum_numbers(6))
    rule.interval = draw(UINT32 if wild else st.integers(1, 2**32 - 1))
    end = draw(st.sampled_from(["none", "empty", "count", "until"]))
    if end == "empty":
        rule.end_criteria.SetInParent()
    elif end == "count":
        rule.end_criteria.count = draw(UINT32 if wild else st.integers(1, 2**32 - 1))
    elif end == "until":
        rule.end_criteria.until_time.CopyFrom(draw(timestamps(wild)))

    def in_range(low: int, high: int) -> st.SearchStrategy[list[int]]:
        return st.lists(UINT32 if wild else st.integers(low, high), max_size=3)

    rule.byminutes.extend(draw(in_range(0, 59)))
    rule.byhours.extend(draw(in_range(0, 23)))
    rule.byweekdays.extend(draw(st.lists(enum_numbers(7), max_size=3)))
    monthdays = st.integers(-31, 31).filter(bool)
    rule.bymonthdays.extend(draw(st.lists(INT32 if wild else monthdays, max_size=3)))
    rule.bymonths.extend(draw(in_range(1, 12)))
    return rule


@st.composite
def official_dispatches(draw: st.DrawFn) -> Any:
    """An official Dispatch, any part absent or present; one in four with wild content."""
    wild = draw(st.integers(0, 3)) == 0
    message = opb.Dispatch()
    if draw(st.integers(0, 5)):
        metadata = message.metadata
        metadata.SetInParent()
        metadata.dispatch_id = draw(UINT64)
        for name in ("create_time", "update_time", "end_time"):
            if draw(st.booleans()):
                getattr(metadata, name).CopyFrom(draw(timestamps(wild)))
    if draw(st.integers(0, 5)):
        data = message.data
        data.SetInParent()
        data.type = draw(st.text(max_size=8) | LONG_TEXT)
        if draw(st.integers(0, 3)):
            data.start_time.CopyFrom(draw(timestamps(wild)))
        duration = draw(st.one_of(st.none(), st.just(0), UINT32))
        if duration is not None:
            data.duration = duration
        if draw(st.integers(0, 3)):
            data.target.SetInParent()
            data.target.MergeFrom(draw(targets(wild)))
        data.is_active = draw(st.booleans())
        data.is_dry_run = draw(st.booleans())
        if draw(st.booleans()):
            data.payload.CopyFrom(
                _struct(draw(st.dictionaries(st.text(max_size=6), values(wild), max_size=4)))
            )
            data.payload.SetInParent()
        rule = draw(recurrences(wild))
        if rule is not None:
            data.recurrence.SetInParent()
            data.recurrence.MergeFrom(rule)
    return message


@st.composite
def responses(draw: st.DrawFn, kind: Kind) -> Any:
    """An official response message of `kind`, possibly empty."""
    message = kind.official()
    if kind.name == "list":
        message.dispatches.extend(draw(st.lists(official_dispatches(), max_size=3)))
        if draw(st.integers(0, 3)):
            message.pagination_info.SetInParent()
            message.pagination_info.total_items = draw(UINT32)
            token = draw(st.one_of(st.none(), st.just(""), st.text(max_size=8)))
            if token is not None:
                message.pagination_info.next_page_token = token
        return message
    if draw(st.integers(0, 7)):
        message.dispatch.CopyFrom(draw(official_dispatches()))
        message.dispatch.SetInParent()
    if kind.name == "stream":
        message.event = draw(enum_numbers(3))
    elif kind.name == "get":
        message.microgrid_id = draw(UINT64)
    return message


@st.composite
def kinds_and_responses(draw: st.DrawFn) -> tuple[Kind, Any]:
    """A response kind and an official message of that kind."""
    kind = draw(st.sampled_from(KINDS))
    return kind, draw(responses(kind))


# ----------------------------------------------------------------- a. differential


@MORE
@given(kinds_and_responses(), MANGLES, RANDOMS)
def test_fast_matches_the_reference_on_mangled_official_messages(
    case: tuple[Kind, Any], mangle: wire.Mangle, rng: random.Random
) -> None:
    """Any official response, shuffled/unpacked/padded/with unknown fields, decodes alike."""
    kind, message = case
    assert_agrees(kind, mangled(message, rng, mangle))


@st.composite
def domain_cases(draw: st.DrawFn) -> tuple[Kind, Any, Any]:
    """A response kind, an official message built from domain objects, and the expected result."""
    kind = draw(st.sampled_from(KINDS))
    message = kind.official()
    if kind.name == "list":
        dispatches = draw(st.lists(s.dispatches(), max_size=2))
        for dispatch in dispatches:
            official_dispatch(dispatch, message.dispatches.add())
        total = draw(st.integers(0, 2**32 - 1))
        token = draw(st.none() | st.text(max_size=6))
        message.pagination_info.total_items = total
        if token is not None:
            message.pagination_info.next_page_token = token
        return kind, message, bridge.ListPage(dispatches, token or None, total)
    if kind.name == "stream":
        event = draw(s.dispatch_events())
        message.event = wire_number(event.event)
        official_dispatch(event.dispatch, message.dispatch)
        return kind, message, event
    dispatch = draw(s.dispatches())
    official_dispatch(dispatch, message.dispatch, deprecated=draw(st.booleans()))
    if kind.name == "get":
        message.microgrid_id = draw(st.integers(1, 2**64 - 1))
    return kind, message, dispatch


@PROPERTY
@given(domain_cases(), MANGLES, RANDOMS)
def test_fast_decodes_serialized_domain_objects_to_equal_objects(
    case: tuple[Kind, Any, Any], mangle: wire.Mangle, rng: random.Random
) -> None:
    """A serialized valid domain object decodes back to an equal object, as the reference's."""
    kind, message, expected = case
    # An unknown field inside a payload entry takes the entry out of the map (upb's rule,
    # see test_a_map_entry_with_an_unknown_field_is_no_entry): not the same object.
    mangle = dataclasses.replace(mangle, unknown_in_map_entries=False)
    data = mangled(message, rng, mangle)
    got = run_fast(kind, data)
    assert got.ok, data.hex()
    assert got.value == expected
    assert_same_outcome(got, run_reference(kind, data), data)


@PROPERTY
@given(kinds_and_responses(), RANDOMS)
def test_fast_truncates_wide_32_bit_varints_as_protobuf_does(
    case: tuple[Kind, Any], rng: random.Random
) -> None:
    """Upper bits of int32/uint32/enum varints are dropped and any non-zero bool is true."""
    kind, message = case
    data = mangled(message, rng, wire.Mangle(widen=True, pad=True))
    assert_agrees_with_protobuf(kind, data)


# --------------------------------------------------------------------- b. merging


@PROPERTY
@given(st.sampled_from(KINDS), st.data(), RANDOMS, MANGLES)
def test_concatenated_messages_merge_as_protobuf_merges_them(
    kind: Kind, data: st.DataObject, rng: random.Random, mangle: wire.Mangle
) -> None:
    """Two serializations back to back decode as the official parser merges them."""
    first, second = data.draw(responses(kind)), data.draw(responses(kind))
    joined = bytes(first.SerializeToString() + second.SerializeToString())
    if data.draw(st.booleans()):
        mangle = dataclasses.replace(mangle, unknown_in_map_entries=False)
        joined = wire.serialize(wire.parse(joined, kind.official.DESCRIPTOR), rng, mangle)
    assert_agrees_with_protobuf(kind, joined)


@PROPERTY
@given(kinds_and_responses(), RANDOMS, MANGLES)
def test_fields_repeated_at_any_level_merge_as_protobuf_merges_them(
    case: tuple[Kind, Any], rng: random.Random, mangle: wire.Mangle
) -> None:
    """Fields copied inside any sub-message (merged, set again, appended) decode as protobuf."""
    kind, message = case
    mangle = dataclasses.replace(mangle, duplicate=True, unknown_in_map_entries=False)
    data = mangled(message, rng, mangle)
    assert_agrees_with_protobuf(kind, data)


def _get(dispatch: bytes, microgrid_id: int = 0) -> bytes:
    """A serialized get response around a serialized Dispatch."""
    head = wire.field_bytes(1, microgrid_id) if microgrid_id else b""
    return head + wire.field_bytes(2, dispatch)


def _data(*fields: bytes) -> bytes:
    """A serialized Dispatch with only a DispatchData made of `fields`."""
    return wire.field_bytes(2, b"".join(fields))


def _entry(key: str, *value_fields: bytes) -> bytes:
    """A Struct.fields map entry; each of `value_fields` is one serialized Value."""
    key_field = wire.field_bytes(1, key.encode())
    return wire.field_bytes(1, key_field + b"".join(wire.field_bytes(2, v) for v in value_fields))


def _number(value: float) -> bytes:
    """The content of a Value holding a number."""
    return bytes(struct_pb2.Value(number_value=value).SerializeToString())


def _string(value: str) -> bytes:
    """The content of a Value holding a string."""
    return wire.field_bytes(3, value.encode())


def _decode_merged(data: bytes) -> Dispatch:
    """Decode a get response with fast, check it against the official merge, return it."""
    assert_agrees_with_protobuf(KIND["get"], data)
    result: Dispatch = fast.decode_get_response(data)
    return result


def _id_set(*ids: int) -> bytes:
    """The `component_ids` member of a TargetComponents, ids packed."""
    packed = b"".join(wire.encode_varint(i) for i in ids)
    return wire.field_bytes(1, wire.field_bytes(1, packed))


def _category_types(*items: bytes) -> bytes:
    """The `component_categories_types` member of a TargetComponents."""
    return wire.field_bytes(3, b"".join(wire.field_bytes(1, i) for i in items))


def _ids(*ids: int) -> bytes:
    """A DispatchData target field with these ids."""
    return wire.field_bytes(4, _id_set(*ids))


def _categories(*items: bytes) -> bytes:
    """A DispatchData target field with these serialized CategoryAndTypes."""
    return wire.field_bytes(4, _category_types(*items))


def test_a_later_oneof_member_replaces_an_earlier_one() -> None:
    """Target ids then categories (and back) decode as the member seen last."""
    ids = _get(_data(_ids(1, 2)))
    categories = _get(_data(_categories(wire.field_bytes(1, 5))))
    meter = _get(_data(_categories(wire.field_bytes(1, 2))))
    battery = TargetCategories(ElectricalComponentCategory.BATTERY)
    assert _decode_merged(ids + categories).target == battery
    assert _decode_merged(categories + ids).target == TargetIds(1, 2)
    # the same member twice: its sub-messages merge (repeated fields append)
    assert _decode_merged(ids + _get(_data(_ids(3)))).target == TargetIds(1, 2, 3)
    both = TargetCategories(ElectricalComponentCategory.BATTERY, ElectricalComponentCategory.METER)
    assert _decode_merged(categories + meter).target == both


def test_a_later_oneof_member_wins_inside_one_message() -> None:
    """Value number then string, count then until, battery then inverter: the last wins."""
    payload = wire.field_bytes(7, _entry("k", _number(1.5), _string("x")))
    assert _decode_merged(_get(_data(payload))).payload == {"k": "x"}
    payload = wire.field_bytes(7, _entry("k", _string("x") + _number(1.5)))
    assert _decode_merged(_get(_data(payload))).payload == {"k": 1.5}
    # the same key in two entries: the later entry replaces the value (map semantics)
    payload = wire.field_bytes(7, _entry("k", _number(1.5)) + _entry("k", _string("y")))
    assert _decode_merged(_get(_data(payload))).payload == {"k": "y"}
    # struct_value twice in one Value: the two Structs merge
    inner_a = wire.field_bytes(5, _entry("a", _number(1.0)))
    inner_b = wire.field_bytes(5, _entry("b", _string("z")))
    payload = wire.field_bytes(7, _entry("k", inner_a, inner_b))
    assert _decode_merged(_get(_data(payload))).payload == {"k": {"a": 1.0, "b": "z"}}
    until = wire.field_bytes(2, wire.field_bytes(1, 86_400))
    rule = wire.field_bytes(1, 1) + wire.field_bytes(2, 1)
    for criteria, expected in (
        (wire.field_bytes(1, 3) + until, EndCriteria(until=datetime(1970, 1, 2, tzinfo=UTC))),
        (until + wire.field_bytes(1, 3), EndCriteria(count=3)),
    ):
        recurrence = wire.field_bytes(8, rule + wire.field_bytes(3, criteria))
        decoded = _decode_merged(_get(_data(recurrence))).recurrence
        assert decoded is not None
        assert decoded.end_criteria == expected
    item = wire.field_bytes(1, 3) + wire.field_bytes(2, 1) + wire.field_bytes(3, 2)
    expected_target = TargetCategories(TargetCategory(InverterType.PV))
    assert _decode_merged(_get(_data(_categories(item)))).target == expected_target


_TEN_BYTES_ALL_ONES = b"\xff" * 9 + b"\x7f"  # bits above 64 set: reads as 2**64 - 1
_TEN_BYTES_HIGH_ONLY = b"\x80" * 9 + b"\x7e"  # only bits 64..69 set: reads as 0


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "ids then categories in one target",
            _get(_data(wire.field_bytes(4, _id_set(1) + _category_types(b"\x08\x05")))),
        ),
        (
            "categories then ids in one target",
            _get(_data(wire.field_bytes(4, _category_types(b"\x08\x05") + _id_set(1)))),
        ),
        (
            "dispatch id with bits above 64",
            _get(wire.field_bytes(1, b"\x08" + _TEN_BYTES_ALL_ONES)),
        ),
        (
            "seconds with bits above 64",
            _get(_data(wire.field_bytes(2, b"\x08" + _TEN_BYTES_ALL_ONES))),
        ),
        ("bool with only bits above 64", _get(_data(b"\x28" + _TEN_BYTES_HIGH_ONLY))),
        ("duration with only bits above 64", _get(_data(b"\x18" + _TEN_BYTES_HIGH_ONLY))),
        ("enum in 5 bytes", _get(_data(wire.field_bytes(8, b"\x08\xff\xff\xff\xff\x0f")))),
        (
            "enum with upper bits",
            _get(_data(wire.field_bytes(8, b"\x08\x83\x80\x80\x80\x10\x10\x01"))),
        ),
    ],
)
def test_edge_encodings_decode_as_protobuf_reads_them(name: str, data: bytes) -> None:
    """Two oneof members in one message, and varints protobuf truncates, read as protobuf does."""
    assert_agrees_with_protobuf(KIND["get"], data)


@pytest.mark.parametrize(
    "extra",
    [wire.field_bytes(3, 1), b"\x1d" + bytes(4), b"\x1b\x1c", wire.field_bytes(1, 5)],
    ids=["unknown varint", "unknown fixed32", "unknown group", "key as varint"],
)
def test_a_map_entry_with_an_unknown_field_is_no_entry(extra: bytes) -> None:
    """A payload entry holding an unknown field is left out of the payload, as upb does."""
    kept = _entry("a", _string("x"))
    dropped = wire.field_bytes(
        1, wire.field_bytes(1, b"b") + extra + wire.field_bytes(2, _string("y"))
    )
    data = _get(_data(wire.field_bytes(7, kept + dropped)))
    assert_agrees_with_protobuf(KIND["get"], data)
    assert_agrees(KIND["get"], data)
    assert fast.decode_get_response(data).payload == {"a": "x"}


def test_a_repeated_singular_message_merges_field_by_field() -> None:
    """DispatchData (and its payload, times and rule) sent twice merges; scalars last-wins."""
    first = _data(
        wire.field_bytes(1, b"first"),
        wire.field_bytes(3, 60),
        wire.field_bytes(7, _entry("x", _number(1.0))),
        wire.field_bytes(2, wire.field_bytes(1, 1000)),
        wire.field_bytes(8, wire.field_bytes(1, 3) + wire.field_bytes(4, bytes([5, 6]))),
    )
    second = _data(
        wire.field_bytes(1, b"second"),
        wire.field_bytes(5, 1),
        wire.field_bytes(7, _entry("y", _string("z"))),
        wire.field_bytes(2, wire.field_bytes(2, 5000)),
        wire.field_bytes(8, wire.field_bytes(2, 2) + wire.field_bytes(4, bytes([7]))),
    )
    metadata = wire.field_bytes(1, wire.field_bytes(1, 42))
    for data in (
        _get(first + metadata) + _get(second),
        _get(first) + _get(metadata + second),
        _get(first + second + metadata),
    ):
        decoded = _decode_merged(data)
        assert decoded.id == 42
        assert decoded.type == "second"
        assert decoded.duration == timedelta(seconds=60)
        assert decoded.active is True
        assert decoded.payload == {"x": 1.0, "y": "z"}
        assert decoded.start_time == datetime(1970, 1, 1, 0, 16, 40, 5, tzinfo=UTC)
        assert decoded.recurrence == RecurrenceRule(
            frequency=Frequency.DAILY, interval=2, byminutes=(5, 6, 7)
        )


def test_list_pages_append_dispatches_and_merge_pagination() -> None:
    """Two list responses concatenated: dispatches append, pagination info merges."""
    kind = KIND["list"]
    one = opb.ListMicrogridDispatchesResponse()
    one.dispatches.add().metadata.dispatch_id = 1
    one.pagination_info.total_items = 5
    one.pagination_info.next_page_token = "a"
    two = opb.ListMicrogridDispatchesResponse()
    two.dispatches.add().metadata.dispatch_id = 2
    two.pagination_info.SetInParent()
    data = bytes(one.SerializeToString() + two.SerializeToString())
    assert_agrees_with_protobuf(kind, data)
    page = fast.decode_list_response(data)
    assert [d.id for d in page.dispatches] == [1, 2]
    assert (page.next_page_token, page.total_items) == ("a", 5)
    stream = KIND["stream"]
    event = stream.official(event=2)
    event.dispatch.metadata.dispatch_id = 9
    later = stream.official(event=3)
    data = bytes(event.SerializeToString() + later.SerializeToString())
    assert_agrees_with_protobuf(stream, data)
    merged = fast.decode_stream_response(data)
    assert (merged.event, merged.dispatch.id) == (Event.DELETED, 9)


# --------------------------------------------------------------- c. malformed input

_GOOD_DATA = _data(wire.field_bytes(1, b"ok"))
_TRUNCATED_VARINT = b"\x80"  # a continuation byte with nothing after it
_ELEVEN_BYTE_VARINT = b"\x80" * 10 + b"\x00"

MALFORMED: dict[str, tuple[str, bytes]] = {
    "truncated varint value at the end": ("get", _get(_GOOD_DATA) + b"\x08" + _TRUNCATED_VARINT),
    "truncated varint in a tag": ("get", _get(_GOOD_DATA) + _TRUNCATED_VARINT),
    "truncated varint in a length": ("get", _get(_GOOD_DATA) + b"\x12" + _TRUNCATED_VARINT),
    "truncated varint in a nested tag": ("create", wire.field_bytes(1, b"\x80")),
    "truncated varint in a nested length": ("create", wire.field_bytes(1, b"\x12\x80")),
    "varint longer than 10 bytes": ("get", b"\x08" + _ELEVEN_BYTE_VARINT + _get(_GOOD_DATA)),
    "tag longer than 10 bytes": ("update", b"\x8a" + b"\x80" * 9 + b"\x00\x00"),
    "length past the end (top level)": ("get", _get(_GOOD_DATA) + b"\x12\x05\x0a\x00"),
    "length past the end (list)": ("list", b"\x0a\x03\x12\x00"),
    "length past the end (nested)": (
        "get",
        wire.field_bytes(2, wire.field_bytes(2, b"\x0a\x09ab")),
    ),
    "fixed64 past the end": ("stream", wire.field_bytes(1, _GOOD_DATA) + b"\x19\x00\x00"),
    "fixed32 past the end (nested)": ("create", wire.field_bytes(1, _data(b"\x7d\x00"))),
    "dispatch sent as varint": ("create", b"\x08\x01"),
    "wire type 4 without its group": ("get", _get(_GOOD_DATA) + b"\x5c"),
    "group without its end": ("get", _get(_GOOD_DATA) + b"\x5b\x08\x01"),
    "group ended by another number": ("get", _get(_GOOD_DATA) + b"\x5b\x64"),
    "group without its end, nested": ("get", _get(_data(b"\x5b\x08\x01"))),
    "key longer than 5 bytes": ("get", _get(_GOOD_DATA) + b"\x88\x80\x80\x80\x80\x00\x01"),
    "key beyond 32 bits": ("get", _get(_GOOD_DATA) + b"\x88\x80\x80\x80\x10\x01"),
    "split sub-message part running into the next": (
        "get",
        wire.field_bytes(2, b"\x12\x05\x0a\x03") + wire.field_bytes(2, b"abc"),
    ),
    "wire type 6": ("get", _get(_GOOD_DATA) + b"\x5e\x00"),
    "wire type 7": ("get", _get(_GOOD_DATA) + b"\x5f\x00"),
    "field number 0": ("get", _get(_GOOD_DATA) + b"\x00\x00"),
    "field number 0 nested": ("get", _get(_data(b"\x02\x00"))),
    "invalid UTF-8 in the dispatch type": ("get", _get(_data(wire.field_bytes(1, b"a\xff")))),
    "overlong UTF-8 in the dispatch type": ("get", _get(_data(wire.field_bytes(1, b"\xc0\x80")))),
    "UTF-8 surrogate in the dispatch type": (
        "get",
        _get(_data(wire.field_bytes(1, b"\xed\xa0\x80"))),
    ),
    "invalid UTF-8 in a Struct key": (
        "get",
        _get(_data(wire.field_bytes(7, wire.field_bytes(1, wire.field_bytes(1, b"\xfe"))))),
    ),
    "invalid UTF-8 in a string Value": (
        "get",
        _get(_data(wire.field_bytes(7, _entry("k", wire.field_bytes(3, b"\x80abc"))))),
    ),
    "invalid UTF-8 in the page token": (
        "list",
        wire.field_bytes(2, wire.field_bytes(2, b"tok\xe2\x82")),
    ),
    "get response without a dispatch": ("get", wire.field_bytes(1, 7)),
    "create response without a dispatch": ("create", b""),
    "update response with only unknown fields": ("update", wire.field_bytes(9, 1)),
    "stream response without a dispatch": ("stream", wire.field_bytes(2, 1)),
}


# What protobuf reads as unknown fields and skips: groups (wire type 3, their content
# checked for framing) and known field numbers with a wire type their type does not use.
SKIPPED_AS_UNKNOWN: dict[str, tuple[str, bytes]] = {
    "dispatch type sent as varint": (
        "get",
        _get(_data(wire.field_bytes(1, b"ok"), wire.field_bytes(1, 5))),
    ),
    "duration sent as LEN": ("get", _get(_data(wire.field_bytes(3, b"\x05")))),
    "timestamp seconds sent as fixed64": (
        "get",
        _get(_data(wire.field_bytes(2, b"\x09" + bytes(8)))),
    ),
    "payload sent as fixed32": ("stream", wire.field_bytes(1, _data(b"\x3d" + bytes(4)))),
    "ids sent as fixed64": ("get", _get(_data(wire.field_bytes(4, b"\x09" + bytes(8))))),
    "empty group": ("get", _get(_GOOD_DATA) + b"\x5b\x5c"),
    "group with fields and a nested group": (
        "get",
        _get(_GOOD_DATA) + b"\x5b\x08\x01\x12\x01x\x63\x64\x5c",
    ),
    "group nested in a sub-message": ("update", wire.field_bytes(1, _data(b"\x0b\x08\x07\x0c"))),
    "group in a Struct value": (
        "get",
        _get(_data(wire.field_bytes(7, _entry("k", b"\x3b\x3c", _string("v"))))),
    ),
    "group in a timestamp": (
        "create",
        wire.field_bytes(1, _data(wire.field_bytes(2, b"\x1b\x1c"))),
    ),
}


@pytest.mark.parametrize(("name"), list(SKIPPED_AS_UNKNOWN))
def test_groups_and_mismatched_wire_types_are_skipped_as_protobuf_skips_them(name: str) -> None:
    """Groups and known numbers with another wire type decode as unknown fields, on both paths."""
    kind, data = KIND[SKIPPED_AS_UNKNOWN[name][0]], SKIPPED_AS_UNKNOWN[name][1]
    assert canonical(kind, data) is not None
    got = run_fast(kind, data)
    assert got.ok
    assert_agrees_with_protobuf(kind, data)
    assert_agrees(kind, data)


_NO_DISPATCH = {name for name in MALFORMED if "response" in name} | {"dispatch sent as varint"}


@pytest.mark.parametrize(("name"), list(MALFORMED))
def test_malformed_input_is_a_decode_error(name: str) -> None:
    """Broken framing, bad wire types, bad UTF-8 or a missing dispatch raise DecodeError."""
    kind, data = KIND[MALFORMED[name][0]], MALFORMED[name][1]
    if name not in _NO_DISPATCH:  # a missing dispatch is our rule; the rest are protobuf's
        assert canonical(kind, data) is None
    with pytest.raises(DecodeError):
        getattr(fast, kind.function)(data)
    with pytest.raises(DecodeError):
        getattr(bridge, kind.function)(data)


def _nested_value(depth: int, how: str) -> bytes:
    """A serialized Value nested `depth` levels deep in Structs, ListValues or both in turn."""
    value = struct_pb2.Value(string_value="leaf").SerializeToString()
    for level in range(depth):
        if how == "struct" or (how == "alternating" and level % 2):
            value = wire.field_bytes(5, _entry("k", value))
        else:
            value = wire.field_bytes(6, wire.field_bytes(1, value))
    return bytes(value)


def _deep_response(kind: Kind, depth: int, how: str) -> bytes:
    """A response of `kind` whose one dispatch has a payload nested `depth` levels."""
    dispatch = _data(wire.field_bytes(7, _entry("top", _nested_value(depth, how))))
    return wire.field_bytes(1 if kind.name != "get" else 2, dispatch)


@pytest.mark.parametrize("how", ["struct", "list", "alternating"])
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_the_nesting_limit_is_the_reference_limit(kind: Kind, how: str) -> None:
    """The deepest payload the reference accepts decodes equally; one level more is rejected.

    Both limits are upb's: it accepts the deepest and rejects the one beyond.
    """
    depth = 0
    while run_reference(kind, _deep_response(kind, depth + 1, how)).ok:
        depth += 1
        assert depth < 200, "the reference has no nesting limit"
    assert depth > 10
    assert canonical(kind, _deep_response(kind, depth, how)) is not None
    assert canonical(kind, _deep_response(kind, depth + 1, how)) is None
    assert_agrees(kind, _deep_response(kind, depth, how))
    assert run_fast(kind, _deep_response(kind, depth, how)).ok
    with pytest.raises(DecodeError):
        getattr(fast, kind.function)(_deep_response(kind, depth + 1, how))


# ------------------------------------------------------------------------- d. fuzz


def _realistic_dispatch() -> Dispatch:
    """A dispatch using every field, for the truncation sweep."""
    return Dispatch(
        id=123456789,
        type="DEMAND_RESPONSE",
        start_time=datetime(2025, 3, 1, 12, 30, 15, 250000, tzinfo=UTC),
        duration=timedelta(minutes=15),
        target=TargetCategories(BatteryType.LI_ION, ElectricalComponentCategory.METER),
        active=True,
        dry_run=False,
        payload={"power": -1500.5, "nested": {"list": [1.0, "two", None, True]}, "é": ""},
        recurrence=RecurrenceRule(
            frequency=Frequency.WEEKLY,
            interval=2,
            end_criteria=EndCriteria(count=10),
            byminutes=(0, 30),
            byhours=(8,),
            bymonthdays=(-1, 15),
            bymonths=(1, 12),
        ),
        create_time=datetime(2025, 2, 1, tzinfo=UTC),
        update_time=datetime(2025, 2, 2, 3, 4, 5, tzinfo=UTC),
        end_time=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _realistic_messages() -> dict[str, bytes]:
    dispatch = _realistic_dispatch()
    return {
        "list": bridge.encode_list_response(
            [dispatch, attrs.evolve(dispatch, id=2, target=TargetIds(4, 5))],
            next_page_token="next",
            total_items=40,
        ),
        "stream": bridge.encode_stream_response(
            DispatchEvent(event=Event.UPDATED, dispatch=dispatch)
        ),
        "get": bridge.encode_get_response(dispatch, microgrid_id=77),
        "create": bridge.encode_create_response(dispatch),
        "update": bridge.encode_update_response(dispatch),
    }


REALISTIC = _realistic_messages()


@CHEAP
@given(st.sampled_from(KINDS), st.binary(max_size=200))
def test_random_bytes_decode_or_raise_decode_error(kind: Kind, data: bytes) -> None:
    """Arbitrary bytes give a result or DecodeError, nothing else."""
    run_fast(kind, data)


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_every_truncation_of_a_realistic_message_decodes_as_the_reference(kind: Kind) -> None:
    """Each prefix of a full message gives a result or DecodeError, as the reference's."""
    data = REALISTIC[kind.name]
    for end in range(len(data) + 1):
        assert_agrees(kind, data[:end])


def edited(draw: st.DrawFn, data: bytes, most: int = 4) -> bytes:
    """`data` with 1 to `most` random byte edits, or spliced with a realistic message."""
    result = bytearray(data)
    for _ in range(draw(st.integers(1, most))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "overwrite", "splice"]))
        at = draw(st.integers(0, len(result)))
        if op == "flip" and at < len(result):
            result[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            result[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del result[at : at + draw(st.integers(1, 4))]
        elif op == "overwrite" and at < len(result):
            result[at] = draw(st.integers(0, 255))
        elif op == "splice":
            other = REALISTIC[draw(st.sampled_from(KINDS)).name]
            result = result[:at] + bytearray(other[draw(st.integers(0, len(other))) :])
    return bytes(result)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Kind, bytes]:
    """A valid message (realistic or drawn) with random byte edits or spliced with another."""
    kind = draw(st.sampled_from(KINDS))
    if draw(st.booleans()):
        data = REALISTIC[kind.name]
    else:
        data = bytes(draw(responses(kind)).SerializeToString())
    return kind, edited(draw, data)


@MORE
@given(mutated())
def test_mutated_messages_decode_or_raise_decode_error(case: tuple[Kind, bytes]) -> None:
    """A valid message with flipped, inserted, deleted or spliced bytes never breaks fast."""
    kind, data = case
    run_fast(kind, data)
