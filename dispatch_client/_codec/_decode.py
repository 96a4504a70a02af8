"""Decode the responses that carry dispatches straight from wire bytes to domain objects.

This is the client's hot path: every list page, stream message and get, create and
update answer. `_bridge.py` decodes the same messages through betterproto2's generic
message classes; it stays the reference, and the path for everything else, and
`Client(fast_codec=False)` uses it instead of this module. The generic way costs about
ten times more: every sub-message (a payload alone holds dozens) becomes an object that
is then converted. Here each message type is one function that walks its bytes once and
builds the domain records directly, doing the records' own checks on the way, so it
can build them with `_types.unchecked_*` and skip the validators.

The protobuf wire format is read exactly as protobuf (upb) reads it, which
tests/test_codec_differential.py checks on mutated messages:

* fields come in any order; unknown fields of every wire type are skipped (groups
  included), and so is a known field number arriving with a wire type its type does
  not use (protobuf keeps it as an unknown field);
* repeated scalars may be packed or not; of a scalar seen twice the last value wins;
* a singular sub-message seen twice is merged, which is exactly parsing the
  concatenation of its parts (`join`);
* in a oneof the last member seen wins; a message member it replaces is still checked
  for framing, as a parser would have parsed it;
* presence counts: an unset `optional` duration is None, 0 is zero seconds; unset
  timestamps the domain requires read as the epoch (as in `_bridge`);
* integers: varints of up to 10 bytes; uint32 keeps the low 32 bits, int32 and enums
  the low 32 bits signed, uint64, int64 and bool the low 64 bits (a bool is any
  non-zero varint);
* enums are open: a number this client does not know becomes the domain enum's
  `UNKNOWN_<n>` pseudo-member;
* a `Struct` map entry holding an unknown field is no entry of the map: upb keeps it
  as an unknown field of the Struct (C++ protobuf would not), and upb is the parser
  the official Python classes use.

Malformed input raises `DecodeError` and nothing else: truncated varints and fields,
varints longer than 10 bytes, keys longer than 5 bytes or beyond 32 bits, lengths past
the end, unbalanced groups, wire types 6 and 7, field number 0, invalid UTF-8, and
messages nested deeper than 100 levels (protobuf's default limit). Every loop step
consumes at least one byte, so no input can make a decoder loop forever.

Tags are written as their wire values (see `_wire`). The loops of the messages every
dispatch carries read keys and lengths of one byte in line (and the two-byte lengths of
dispatches, their data and payloads), a few lines that repeat from loop to loop, on
purpose: a function call per field would cost a third of the decoding time. The rarer
messages call `_key` and `_span` instead. Timestamps of today's dates (five bytes of
seconds, no nanoseconds) and payload values of one short member take a short cut; each
falls back to the general loop for any other shape (tests/test_codec_fastpaths.py).
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias, TypeVar

from dispatch_client._errors import DecodeError
from dispatch_client._requests import ListPage
from dispatch_client._types import (
    BatteryType,
    CategoryTarget,
    Dispatch,
    DispatchEvent,
    ElectricalComponentCategory,
    EndCriteria,
    EvChargerType,
    Event,
    Frequency,
    InverterType,
    RecurrenceRule,
    TargetCategories,
    TargetCategory,
    TargetComponents,
    Weekday,
    unchecked_dispatch,
    unchecked_end_criteria,
    unchecked_event,
    unchecked_rule,
    unchecked_target_categories,
    unchecked_target_category,
    unchecked_target_ids,
)

from ._wire import MASK32 as _MASK32
from ._wire import MASK64 as _MASK64
from ._wire import MAX_DEPTH as _MAX_DEPTH
from ._wire import Span as _Span
from ._wire import int32 as _int32
from ._wire import join as _join
from ._wire import key as _key
from ._wire import overrun as _overrun
from ._wire import packed as _packed
from ._wire import skip as _skip
from ._wire import span as _span
from ._wire import too_deep as _too_deep
from ._wire import truncated as _truncated
from ._wire import varint as _varint

__all__ = [
    "decode_create_response",
    "decode_delete_response",
    "decode_get_response",
    "decode_list_response",
    "decode_stream_response",
    "decode_update_response",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND: Final = timedelta(seconds=1)
_MICROSECOND: Final = timedelta(microseconds=1)
_NO_TARGET: Final = unchecked_target_ids(())
_unpack_double = struct.Struct("<d").unpack_from
_unpack_6_bytes = struct.Struct("<6B").unpack_from
_isfinite = math.isfinite


_E = TypeVar("_E", bound=enum.IntEnum)
_R = TypeVar("_R")

# ------------------------------------------------------------------------- framing

# The members a oneof replaces are not decoded, only checked for framing, as protobuf
# parses them too. A schema maps a field number to the wire types it accepts, or to the
# schema of the message it holds; `_STRING` marks a string (UTF-8 is checked).

_Schema: TypeAlias = dict[int, "tuple[int, ...] | _Schema"]
_VARINT: Final = (0,)
_PACKABLE: Final = (0, 2)
_STRING: Final = (2,)
_TIMESTAMP_SCHEMA: Final[_Schema] = {1: _VARINT, 2: _VARINT}
_CATEGORY_AND_TYPE_SCHEMA: Final[_Schema] = {1: _VARINT, 2: _VARINT, 3: _VARINT, 4: _VARINT}
_TARGET_SCHEMAS: Final[dict[int, _Schema]] = {
    1: {1: _PACKABLE},  # IdSet
    2: {1: _PACKABLE},  # CategorySet
    3: {1: _CATEGORY_AND_TYPE_SCHEMA},  # CategoryTypeSet
}
_VALUE_SCHEMA: Final[_Schema] = {1: _VARINT, 2: (1,), 3: _STRING, 4: _VARINT}
_STRUCT_SCHEMA: Final[_Schema] = {1: {1: _STRING, 2: _VALUE_SCHEMA}}
_LIST_SCHEMA: Final[_Schema] = {1: _VALUE_SCHEMA}
_VALUE_SCHEMA[5] = _STRUCT_SCHEMA
_VALUE_SCHEMA[6] = _LIST_SCHEMA
_VALUE_MEMBER_SCHEMAS: Final[dict[int, _Schema]] = {5: _STRUCT_SCHEMA, 6: _LIST_SCHEMA}


def _check_framing(span: _Span, schema: _Schema, depth: int) -> None:
    """Check a message's framing (lengths, UTF-8, depth) without decoding it."""
    if depth > _MAX_DEPTH:
        raise _too_deep()
    buf, pos, end = span
    while pos < end:
        key, pos = _key(buf, pos)
        field = schema.get(key >> 3)
        if key & 7 == 2 and (isinstance(field, dict) or field is _STRING):
            pos, stop = _span(buf, pos, end, key)
            if isinstance(field, dict):
                _check_framing((buf, pos, stop), field, depth + 1)
            else:
                buf[pos:stop].decode()
            pos = stop
        else:  # a scalar, or a field protobuf keeps as unknown: framing only
            pos = _skip(buf, pos, end, key, depth)
    if pos != end:
        raise _overrun()


def _not_finite(number: float) -> DecodeError:
    return DecodeError(f"payload number {number!r} is not finite")


def _check_number(key: int) -> None:
    """A length-delimited field no branch took is unknown, skipped; unless its number is 0."""
    if key < 8:
        raise DecodeError("field number 0 is invalid")


# --------------------------------------------------------------------------- enums


def _lookup(enum_type: type[_E]) -> Callable[[int], _E]:
    """Map a wire number to a member of `enum_type`, or its `UNKNOWN_<n>` pseudo-member.

    The domain enums' values are the API's numbers (tests/test_codec_decode_sharing.py checks
    this against `_bridge`'s by-name tables), so a dict of the known members answers almost
    every number; the enum's constructor makes the pseudo-members.
    """
    known: dict[int, _E] = {int(member): member for member in enum_type}

    def member(number: int) -> _E:
        found = known.get(number)
        if found is None:
            found = enum_type(number)  # a pseudo-member for an unknown number
        return found

    return member


_frequency = _lookup(Frequency)
_weekday = _lookup(Weekday)
_event = _lookup(Event)
_category = _lookup(ElectricalComponentCategory)

# One shared TargetCategory per known member (they are immutable), one table per enum:
# IntEnum members of different enums with equal numbers would collide in one dict.
_CategoryTable: TypeAlias = tuple[Callable[[int], CategoryTarget], dict[int, TargetCategory]]
_C = TypeVar("_C", ElectricalComponentCategory, BatteryType, InverterType, EvChargerType)


def _category_table(enum_type: type[_C]) -> _CategoryTable:
    members = {int(m): unchecked_target_category(m) for m in enum_type}
    return _lookup(enum_type), members


_CATEGORIES: Final = _category_table(ElectricalComponentCategory)
# CategoryAndType's `type` oneof: field number -> (its enum, the category it implies).
_TYPES: Final[dict[int, tuple[_CategoryTable, ElectricalComponentCategory, str]]] = {
    2: (_category_table(BatteryType), ElectricalComponentCategory.BATTERY, "battery"),
    3: (_category_table(InverterType), ElectricalComponentCategory.INVERTER, "inverter"),
    4: (_category_table(EvChargerType), ElectricalComponentCategory.EV_CHARGER, "ev_charger"),
}


def _target_category(table: _CategoryTable, number: int) -> TargetCategory:
    lookup, members = table
    found = members.get(number)
    return unchecked_target_category(lookup(number)) if found is None else found


# ------------------------------------------------------------------- google.protobuf


def _timestamp(buf: bytes, pos: int, end: int, depth: int) -> datetime:
    """Decode a `Timestamp` as `_bridge` does: microseconds, nanoseconds floored."""
    if end - pos == 6:
        key, b1, b2, b3, b4, b5 = _unpack_6_bytes(buf, pos)
        if key == 0x08 and b1 & b2 & b3 & b4 > 0x7F and b5 < 0x80:
            # Today's dates (1978 to 3058): seconds alone, a varint of five bytes, so
            # never negative. Each of the first four bytes has its 0x80 bit set: the
            # constant takes those bits out. Whole seconds: a product of timedeltas
            # costs less than a timedelta built from its parts (which normalizes them).
            seconds: int = b1 + (b2 << 7) + (b3 << 14) + (b4 << 21) + (b5 << 28) - 0x1020_4080
            return _EPOCH + _SECOND * seconds
    seconds = nanos = 0
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key == 0x08:  # 1 seconds, int64
            if pos + 5 <= end and buf[pos] & buf[pos + 1] & buf[pos + 2] & buf[pos + 3] > 0x7F:
                seconds = (
                    (buf[pos] & 0x7F)
                    | (buf[pos + 1] & 0x7F) << 7
                    | (buf[pos + 2] & 0x7F) << 14
                    | (buf[pos + 3] & 0x7F) << 21
                )
                byte = buf[pos + 4]
                if byte < 0x80:  # five bytes, today's dates
                    seconds |= byte << 28
                    pos += 5
                    continue
            seconds, pos = _varint(buf, pos)
        elif key == 0x10:  # 2 nanos, int32
            nanos, pos = _varint(buf, pos)
        else:
            pos = _skip(buf, pos, end, key, depth)
    if pos != end:
        raise _overrun()
    seconds &= _MASK64
    if seconds > 0x7FFF_FFFF_FFFF_FFFF:
        seconds -= 0x1_0000_0000_0000_0000
    # Out of datetime's range: OverflowError, reported as a DecodeError.
    if nanos:
        nanos &= _MASK32
        if nanos > 0x7FFF_FFFF:
            nanos -= 0x1_0000_0000
        # Floored to microseconds; one product, exact: no float arithmetic.
        return _EPOCH + _MICROSECOND * (seconds * 1_000_000 + nanos // 1000)
    return _EPOCH + _SECOND * seconds


def _struct(buf: bytes, pos: int, end: int, depth: int) -> dict[str, Any]:
    """Decode a `Struct` (a map of string to `Value`) into a dict."""
    if depth > _MAX_DEPTH:
        raise _too_deep()
    result: dict[str, Any] = {}
    # Most entries are `0A <len> key 12 <len> value` with short lengths, and most values
    # numbers (`11` and 8 bytes) or strings: those are read here, in line; any other
    # shape goes through `_entry` and `_value`. Not in the last levels before the depth
    # limit, where the entry and its value must be counted.
    inline = depth < _MAX_DEPTH - 1
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key == 0x0A:  # 1 fields: a map entry, {1: key, 2: value}
            length = buf[pos]
            pos += 1
            if length > 0x7F:
                length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            if inline and length > 3 and buf[pos] == 0x0A and buf[pos + 1] < 0x80:
                at = pos + 2 + buf[pos + 1]  # after the key
                size = stop - at - 2  # what is left for the value, if it is all value
                if 0 < size < 0x80 and buf[at] == 0x12 and buf[at + 1] == size:
                    name = buf[pos + 2 : at].decode()
                    tag = buf[at + 2]
                    # A member filling the whole value, its length in one byte: a number
                    # (8 bytes), a string, a struct or a list (the Value, at depth + 2,
                    # holds them at depth + 3).
                    if tag == 0x11 and size == 9:
                        number = _unpack_double(buf, at + 3)[0]
                        if number - number:  # NaN for NaN and infinities, else 0.0
                            raise _not_finite(number)
                        result[name] = number
                    elif tag == 0x1A and size > 1 and buf[at + 3] == size - 2:
                        result[name] = buf[at + 4 : stop].decode()
                    elif tag == 0x2A and size > 1 and buf[at + 3] == size - 2:
                        result[name] = _struct(buf, at + 4, stop, depth + 3)
                    elif tag == 0x32 and size > 1 and buf[at + 3] == size - 2:
                        result[name] = _list(buf, at + 4, stop, depth + 3)
                    else:
                        result[name] = _value(buf, at + 2, stop, depth + 2)
                    pos = stop
                    continue
            entry = _entry(buf, pos, stop, depth + 1)
            if entry is not None:
                result[entry[0]] = entry[1]  # a key seen again: the last entry wins
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, depth)
    if pos != end:
        raise _overrun()
    return result


def _entry(buf: bytes, pos: int, end: int, depth: int) -> tuple[str, Any] | None:
    """Decode one map entry of a `Struct`: its key and its value, decoded.

    Returns:
        The key and value; None for an entry holding an unknown field, which upb keeps
        out of the map (as an unknown field of the Struct), so it is no payload entry.
    """
    if depth > _MAX_DEPTH:
        raise _too_deep()
    name = ""
    value: _Span | None = None
    unknown = False
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key & 7 == 2:
            length = buf[pos]
            pos += 1
            if length > 0x7F:
                length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            if key == 0x0A:  # 1 key
                name = buf[pos:stop].decode()
            elif key == 0x12:  # 2 value
                value = (buf, pos, stop) if value is None else _join(value, buf, pos, stop)
            else:
                _check_number(key)
                unknown = True
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, depth)
            unknown = True
    if pos != end:
        raise _overrun()
    if unknown:
        if value is not None:  # parsed all the same, so its framing must hold
            _check_framing(value, _VALUE_SCHEMA, depth + 1)
        return None
    # An entry without a value holds the default Value, which has no kind: None.
    return name, None if value is None else _value(*value, depth + 1)


def _value(buf: bytes, pos: int, end: int, depth: int) -> Any:
    """Decode a `Value`: None, a float, a str, a bool, a dict or a list.

    Raises:
        DecodeError: For a number that is NaN or infinite (payloads are JSON-like).
    """
    if depth > _MAX_DEPTH:
        raise _too_deep()
    kind = 0  # the oneof member seen last: its field number
    result: Any = None  # the value of a scalar member
    pending: _Span | None = None  # a struct or list member, decoded at the end
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key == 0x11:  # 2 number_value, double
            stop = pos + 8
            if stop > end:
                raise _truncated(key)
            result = _unpack_double(buf, pos)[0]
            pos = stop
        elif key & 7 == 2:
            length = buf[pos]
            pos += 1
            if length > 0x7F:
                length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            if key == 0x1A:  # 3 string_value
                result = buf[pos:stop].decode()
                pos = stop
            elif key == 0x2A or key == 0x32:  # 5 struct_value, 6 list_value
                if key >> 3 == kind:
                    pending = _join(pending, buf, pos, stop)
                else:
                    if pending is not None:
                        _check_framing(pending, _VALUE_MEMBER_SCHEMAS[kind], depth + 1)
                    pending = (buf, pos, stop)
                    kind = key >> 3
                pos = stop
                continue
            else:
                _check_number(key)
                pos = stop
                continue
        elif key == 0x20:  # 4 bool_value
            number, pos = _varint(buf, pos)
            result = number & _MASK64 != 0
        elif key == 0x08:  # 1 null_value (an enum; any number means null)
            pos = _varint(buf, pos)[1]
            result = None
        else:
            pos = _skip(buf, pos, end, key, depth)
            continue
        # A scalar member: it replaces a struct or list member seen before.
        if pending is not None:
            _check_framing(pending, _VALUE_MEMBER_SCHEMAS[kind], depth + 1)
            pending = None
        kind = key >> 3
    if pos != end:
        raise _overrun()
    if pending is not None:
        if kind == 5:
            return _struct(*pending, depth + 1)
        return _list(*pending, depth + 1)
    if kind == 2 and not _isfinite(result):
        raise _not_finite(result)
    return result


def _list(buf: bytes, pos: int, end: int, depth: int) -> list[Any]:
    """Decode a `ListValue` into a list."""
    if depth > _MAX_DEPTH:
        raise _too_deep()
    result: list[Any] = []
    inline = depth < _MAX_DEPTH
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key == 0x0A:  # 1 values
            length = buf[pos]
            pos += 1
            if length > 0x7F:
                length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            # In line, as in `_struct`: a number, or a short string, and nothing else.
            tag = buf[pos] if length else 0
            if tag == 0x11 and length == 9 and inline:
                number = _unpack_double(buf, pos + 1)[0]
                if number - number:  # NaN for NaN and infinities
                    raise _not_finite(number)
                result.append(number)
            elif tag == 0x1A and length > 1 and buf[pos + 1] == length - 2 and inline:
                result.append(buf[pos + 2 : stop].decode())
            else:
                result.append(_value(buf, pos, stop, depth + 1))
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, depth)
    if pos != end:
        raise _overrun()
    return result


# ------------------------------------------------------------------- shared values

# Targets and recurrence rules are immutable, and the dispatches of one microgrid tend
# to share a few of them. Equal bytes decode to equal values, so each distinct encoding
# is decoded once and its value shared by every dispatch that carries it (decoding a
# rule costs about 5 µs, finding it again 0.2 µs; the dispatches also take less memory).
# A cache that is full is emptied: a server sending ever new values costs one decode
# each, as without the cache. Payloads are dicts, mutable, so never shared.

_SHARED_MAX: Final = 4096
_S = TypeVar("_S")


def _shared(
    cache: dict[bytes, _S], decode: Callable[[bytes, int, int, int], _S], span: _Span
) -> _S:
    """Decode a target or a rule (both at depth 3, in a DispatchData), or reuse its value."""
    buf, start, stop = span
    raw = buf[start:stop]
    value = cache.get(raw)
    if value is None:
        value = decode(raw, 0, len(raw), 3)
        if len(cache) >= _SHARED_MAX:
            cache.clear()
        cache[raw] = value
    return value


_TARGETS: Final[dict[bytes, TargetComponents]] = {}
_RULES: Final[dict[bytes, RecurrenceRule]] = {}


# ------------------------------------------------------------------------- targets


def _target(buf: bytes, pos: int, end: int, depth: int) -> TargetComponents:
    """Decode a `TargetComponents`: ids, categories, or categories with types."""
    kind = 0  # the oneof member seen last
    member: _Span | None = None
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key & 7 == 2:
            length = buf[pos]
            pos += 1
            if length > 0x7F:
                length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            # 1 component_ids, 2 component_categories (deprecated), 3 ..._categories_types
            if key == 0x0A or key == 0x12 or key == 0x1A:
                if key >> 3 == kind:
                    member = _join(member, buf, pos, stop)
                else:
                    if member is not None:
                        _check_framing(member, _TARGET_SCHEMAS[kind], depth + 1)
                    kind, member = key >> 3, (buf, pos, stop)
            else:
                _check_number(key)
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, depth)
    if pos != end:
        raise _overrun()
    if member is None:
        return _NO_TARGET
    if kind == 1:
        found, start, stop = member
        if (
            stop - start > 1
            and found[start] == 0x0A
            and found[start + 1] == stop - start - 2 < 0x80
        ):
            chunk = found[start + 2 : stop]
            if chunk.isascii():  # the usual IdSet: one packed field of ids below 128
                return unchecked_target_ids(chunk)
        ids: list[int] = []
        _repeated_varints(*member, ids)
        return unchecked_target_ids([i & _MASK64 for i in ids])
    if kind == 2:
        numbers: list[int] = []
        _repeated_varints(*member, numbers)
        return unchecked_target_categories(
            [_target_category(_CATEGORIES, _int32(n)) for n in numbers]
        )
    return _category_type_set(*member)


def _repeated_varints(buf: bytes, pos: int, end: int, values: list[int]) -> None:
    """Decode an IdSet or a CategorySet: field 1, repeated varints, packed or not."""
    while pos < end:
        key, pos = _key(buf, pos)
        if key == 0x0A:
            pos, stop = _span(buf, pos, end, key)
            _packed(buf, pos, stop, values)
            pos = stop
        elif key == 0x08:
            value, pos = _varint(buf, pos)
            values.append(value)
        else:
            pos = _skip(buf, pos, end, key, 4)
    if pos != end:
        raise _overrun()


def _category_type_set(buf: bytes, pos: int, end: int) -> TargetCategories:
    """Decode a `CategoryTypeSet`: repeated `CategoryAndType`."""
    members: list[TargetCategory] = []
    while pos < end:
        key, pos = _key(buf, pos)
        if key == 0x0A:  # 1 categories
            pos, stop = _span(buf, pos, end, key)
            members.append(_category_and_type(buf, pos, stop))
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, 4)
    if pos != end:
        raise _overrun()
    return unchecked_target_categories(members)


def _category_and_type(buf: bytes, pos: int, end: int) -> TargetCategory:
    """Decode a `CategoryAndType`: a category, and maybe the type that narrows it."""
    category = type_field = type_number = 0
    while pos < end:
        key, pos = _key(buf, pos)
        if key == 0x08:  # 1 category
            category, pos = _varint(buf, pos)
        elif key == 0x10 or key == 0x18 or key == 0x20:  # 2 battery, 3 inverter, 4 ev_charger
            type_number, pos = _varint(buf, pos)
            type_field = key >> 3
        else:
            pos = _skip(buf, pos, end, key, 5)
    if pos != end:
        raise _overrun()
    if not type_field:
        return _target_category(_CATEGORIES, _int32(category))
    table, implied, name = _TYPES[type_field]
    if _category(_int32(category)) is not implied:
        raise DecodeError(
            f"target category {_category(_int32(category)).name} carries a {name} type; "
            f"a {name} type belongs to category {implied.name}"
        )
    return _target_category(table, _int32(type_number))


# ---------------------------------------------------------------------- recurrence


def _rule(buf: bytes, pos: int, end: int, depth: int) -> RecurrenceRule:
    """Decode a `RecurrenceRule`, checking it as `RecurrenceRule` does."""
    freq = interval = 0
    end_criteria: _Span | None = None
    by: dict[int, list[int]] = {}  # the repeated fields, 4 to 8, by number
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key & 7 == 2:
            length = buf[pos]
            pos += 1
            if length > 0x7F:
                length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            if 0x22 <= key <= 0x42:  # 4 to 8, packed repeated values
                chunk = buf[pos:stop]
                if chunk.isascii() and key >> 3 not in by:  # the usual: values below 128
                    by[key >> 3] = list(chunk)
                else:
                    _packed(buf, pos, stop, by.setdefault(key >> 3, []))
            elif key == 0x1A:  # 3 end_criteria
                end_criteria = _join(end_criteria, buf, pos, stop)
            else:
                _check_number(key)
            pos = stop
        elif key == 0x08:  # 1 freq
            freq = buf[pos]
            pos += 1
            if freq > 0x7F:
                freq, pos = _varint(buf, pos - 1)
        elif key == 0x10:  # 2 interval
            interval = buf[pos]
            pos += 1
            if interval > 0x7F:
                interval, pos = _varint(buf, pos - 1)
        elif 0x20 <= key <= 0x40 and key & 7 == 0:  # 4 to 8, one repeated value
            value, pos = _varint(buf, pos)
            by.setdefault(key >> 3, []).append(value)
        else:
            pos = _skip(buf, pos, end, key, depth)
    if pos != end:
        raise _overrun()
    frequency = _FREQUENCIES.get(freq)
    if frequency is None:  # an unknown number, or a varint with bits beyond 32
        frequency = _frequency(_int32(freq))
    interval &= _MASK32
    # UNSPECIFIED is 0, falsy; a number this client does not know passes (a newer rule).
    if interval < 1 and frequency and not frequency.is_unknown:
        raise DecodeError(
            f"RecurrenceRule.interval must be >= 1 with frequency {frequency.name}, got 0"
        )
    if end_criteria is None:
        ends = None
    else:
        found, start, stop = end_criteria
        if stop - start == 2 and found[start] == 0x08 and 0 < found[start + 1] < 0x80:
            ends = unchecked_end_criteria(found[start + 1], None)  # the usual: a count
        else:
            ends = _end_criteria(found, start, stop, depth + 1)
    if not by:
        return unchecked_rule(frequency, interval, ends, (), (), (), (), ())
    minutes, hours, weekdays, monthdays, months = map(by.get, (4, 5, 6, 7, 8))
    return unchecked_rule(
        frequency,
        interval,
        ends,
        _uint32s("byminutes", minutes, 0, 59) if minutes else (),
        _uint32s("byhours", hours, 0, 23) if hours else (),
        _weekdays(weekdays) if weekdays else (),
        _monthdays(monthdays) if monthdays else (),
        _uint32s("bymonths", months, 1, 12) if months else (),
    )


_FREQUENCIES: Final = {int(frequency): frequency for frequency in Frequency}


def _uint32s(name: str, varints: list[int], low: int, high: int) -> tuple[int, ...]:
    """Read a rule's uint32 `by*` field, checked to be in `low..high`."""
    if low <= min(varints) and max(varints) <= high:
        return tuple(varints)  # the usual case: in range, so no bits to drop
    return _ranged(name, [value & _MASK32 for value in varints], low, high)


def _monthdays(varints: list[int]) -> tuple[int, ...]:
    """Read `bymonthdays` (int32: -1 is the last day), checked to be in -31..31 without 0."""
    if min(varints) >= 1 and max(varints) <= 31:
        return tuple(varints)  # no negative day, so no sign to restore
    return _ranged("bymonthdays", [_int32(day) for day in varints], -31, 31, allow_zero=False)


def _weekdays(varints: list[int]) -> tuple[Weekday, ...]:
    """Read `byweekdays` (an enum: unknown numbers stay visible)."""
    days = tuple(map(_WEEKDAYS.get, varints))
    if None in days:  # unknown or negative numbers
        return tuple([_weekday(_int32(day)) for day in varints])
    return days  # type: ignore[return-value]  # no None left


_WEEKDAYS: Final = {int(day): day for day in Weekday}


def _ranged(
    name: str, values: list[int], low: int, high: int, *, allow_zero: bool = True
) -> tuple[int, ...]:
    """Check a rule's `by*` numbers as `RecurrenceRule` does; return them as a tuple."""
    for index, value in enumerate(values):
        if not low <= value <= high or (value == 0 and not allow_zero):
            without = "" if allow_zero else " without 0"
            raise DecodeError(
                f"RecurrenceRule.{name}[{index}] must be in {low}..{high}{without}, got {value}"
            )
    return tuple(values)


def _end_criteria(buf: bytes, pos: int, end: int, depth: int) -> EndCriteria | None:
    """Decode an `EndCriteria` (oneof count / until_time); None when neither is set."""
    kind = count = 0
    until: _Span | None = None
    while pos < end:
        key, pos = _key(buf, pos)
        if key == 0x08:  # 1 count
            count, pos = _varint(buf, pos)
            if until is not None:
                _check_framing(until, _TIMESTAMP_SCHEMA, depth + 1)
                until = None
            kind = 1
        elif key == 0x12:  # 2 until_time
            pos, stop = _span(buf, pos, end, key)
            until = _join(until, buf, pos, stop)
            kind = 2
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, depth)
    if pos != end:
        raise _overrun()
    if kind == 1:
        count &= _MASK32
        if count == 0:
            raise DecodeError("EndCriteria.count must be in 1..4294967295, got 0")
        return unchecked_end_criteria(count, None)
    if until is not None:
        return unchecked_end_criteria(None, _timestamp(*until, depth + 1))
    return None


# ------------------------------------------------------------------------ dispatch


def _dispatch(buf: bytes, pos: int, end: int) -> Dispatch:
    """Decode a `Dispatch` (metadata and data); unset parts read as `_bridge` reads them."""
    metadata: _Span | None = None
    data: _Span | None = None
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key & 7 == 2:
            length = buf[pos]
            pos += 1
            if length > 0x7F:  # data and payloads: two bytes of length, read in line
                byte = buf[pos]
                if byte < 0x80:
                    length += (byte << 7) - 0x80
                    pos += 1
                else:
                    length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            if key == 0x12:  # 2 data
                data = (buf, pos, stop) if data is None else _join(data, buf, pos, stop)
            elif key == 0x0A:  # 1 metadata
                metadata = (buf, pos, stop) if metadata is None else _join(metadata, buf, pos, stop)
            else:
                _check_number(key)
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, 1)
    if pos != end:
        raise _overrun()
    if metadata is None:
        dispatch_id, created, updated, ends = 0, _EPOCH, _EPOCH, None
    else:
        dispatch_id, created, updated, ends = _metadata(metadata[0], metadata[1], metadata[2])
    if data is None:
        empty: dict[str, Any] = {}
        return unchecked_dispatch(
            dispatch_id,
            "",
            _EPOCH,
            None,
            _NO_TARGET,
            False,
            False,
            empty,
            None,
            created,
            updated,
            ends,
        )
    return _dispatch_data(data[0], data[1], data[2], dispatch_id, created, updated, ends)


def _metadata(buf: bytes, pos: int, end: int) -> tuple[int, datetime, datetime, datetime | None]:
    """Decode a `DispatchMetadata`: the id, create, update and end times."""
    dispatch_id = 0
    created = updated = ends = None
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key == 0x08:  # 1 dispatch_id
            dispatch_id = buf[pos]
            pos += 1
            if dispatch_id > 0x7F:
                dispatch_id, pos = _varint(buf, pos - 1)
        elif key & 7 == 2:
            length = buf[pos]
            pos += 1
            if length > 0x7F:
                length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            if key == 0x12:  # 2 create_time
                created = (buf, pos, stop) if created is None else _join(created, buf, pos, stop)
            elif key == 0x1A:  # 3 update_time
                updated = (buf, pos, stop) if updated is None else _join(updated, buf, pos, stop)
            elif key == 0x22:  # 4 end_time
                ends = (buf, pos, stop) if ends is None else _join(ends, buf, pos, stop)
            else:
                _check_number(key)
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, 2)
    if pos != end:
        raise _overrun()
    return (
        dispatch_id & _MASK64,
        _EPOCH if created is None else _timestamp(created[0], created[1], created[2], 3),
        _EPOCH if updated is None else _timestamp(updated[0], updated[1], updated[2], 3),
        None if ends is None else _timestamp(ends[0], ends[1], ends[2], 3),
    )


def _dispatch_data(
    buf: bytes,
    pos: int,
    end: int,
    dispatch_id: int,
    created: datetime,
    updated: datetime,
    ends: datetime | None,
) -> Dispatch:
    """Decode a `DispatchData` and build the `Dispatch` with the metadata's values."""
    kind = ""
    start: _Span | None = None
    duration: int | None = None
    target: _Span | None = None
    active = dry_run = 0
    payload: _Span | None = None
    rule: _Span | None = None
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key & 7 == 2:
            length = buf[pos]
            pos += 1
            if length > 0x7F:  # data and payloads: two bytes of length, read in line
                byte = buf[pos]
                if byte < 0x80:
                    length += (byte << 7) - 0x80
                    pos += 1
                else:
                    length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            if key == 0x3A:  # 7 payload
                payload = (buf, pos, stop) if payload is None else _join(payload, buf, pos, stop)
            elif key == 0x0A:  # 1 type
                kind = buf[pos:stop].decode()
            elif key == 0x12:  # 2 start_time
                start = (buf, pos, stop) if start is None else _join(start, buf, pos, stop)
            elif key == 0x22:  # 4 target
                target = (buf, pos, stop) if target is None else _join(target, buf, pos, stop)
            elif key == 0x42:  # 8 recurrence
                rule = (buf, pos, stop) if rule is None else _join(rule, buf, pos, stop)
            else:
                _check_number(key)
            pos = stop
        elif key == 0x18:  # 3 duration, optional uint32
            duration, pos = _varint(buf, pos)
        elif key == 0x28:  # 5 is_active
            active = buf[pos]
            pos += 1
            if active > 0x7F:
                active, pos = _varint(buf, pos - 1)
        elif key == 0x30:  # 6 is_dry_run
            dry_run = buf[pos]
            pos += 1
            if dry_run > 0x7F:
                dry_run, pos = _varint(buf, pos - 1)
        else:
            pos = _skip(buf, pos, end, key, 2)
    if pos != end:
        raise _overrun()
    # DispatchData sits at depth 2: the response (0) holds the Dispatch (1) holding it.
    return unchecked_dispatch(
        dispatch_id,
        kind,
        _EPOCH if start is None else _timestamp(start[0], start[1], start[2], 3),
        None if duration is None else _SECOND * (duration & _MASK32),
        _NO_TARGET if target is None else _shared(_TARGETS, _target, target),
        active & _MASK64 != 0,
        dry_run & _MASK64 != 0,
        {} if payload is None else _struct(payload[0], payload[1], payload[2], 3),
        None if rule is None else _shared(_RULES, _rule, rule),
        created,
        updated,
        ends,
    )


# ---------------------------------------------------------------------- responses


def _response_dispatch(buf: bytes, dispatch_key: int, other_key: int) -> tuple[Dispatch, int]:
    """Decode a response holding a `Dispatch` under `dispatch_key` and a varint field.

    Args:
        buf: The response.
        dispatch_key: The dispatch field's key (wire type 2).
        other_key: The varint field's key (wire type 0); -1 for none.

    Returns:
        The dispatch, and the value of the response's varint field (0 when unset).

    Raises:
        DecodeError: Also when the response carries no dispatch.
    """
    dispatch: _Span | None = None
    other = 0
    pos, end = 0, len(buf)
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key == dispatch_key:
            length = buf[pos]
            pos += 1
            if length > 0x7F:  # a dispatch takes two bytes of length, read in line
                byte = buf[pos]
                if byte < 0x80:
                    length += (byte << 7) - 0x80
                    pos += 1
                else:
                    length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            dispatch = (buf, pos, stop) if dispatch is None else _join(dispatch, buf, pos, stop)
            pos = stop
        elif key == other_key:  # a microgrid id or an event: mostly one byte
            other = buf[pos]
            pos += 1
            if other > 0x7F:
                other, pos = _varint(buf, pos - 1)
        else:
            pos = _skip(buf, pos, end, key, 0)
    if pos != end:
        raise _overrun()
    if dispatch is None:
        raise DecodeError("the response carries no dispatch")
    return _dispatch(dispatch[0], dispatch[1], dispatch[2]), other


def _list_response(buf: bytes) -> ListPage:
    dispatches: list[Dispatch] = []
    info: _Span | None = None
    pos, end = 0, len(buf)
    while pos < end:
        key = buf[pos]
        pos += 1
        if key > 0x7F:
            key, pos = _key(buf, pos - 1)
        if key & 7 == 2:
            length = buf[pos]
            pos += 1
            if length > 0x7F:
                length, pos = _varint(buf, pos - 1)
            stop = pos + length
            if stop > end:
                raise _truncated(key)
            if key == 0x0A:  # 1 dispatches
                dispatches.append(_dispatch(buf, pos, stop))
            elif key == 0x12:  # 2 pagination_info
                info = _join(info, buf, pos, stop)
            else:
                _check_number(key)
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, 0)
    if pos != end:
        raise _overrun()
    total, token = (0, "") if info is None else _pagination(*info)
    return ListPage(dispatches=dispatches, next_page_token=token or None, total_items=total)


def _pagination(buf: bytes, pos: int, end: int) -> tuple[int, str]:
    """Decode a `PaginationInfo`: the total count and the next page's token."""
    total = 0
    token = ""
    while pos < end:
        key, pos = _key(buf, pos)
        if key == 0x08:  # 1 total_items, uint32
            total, pos = _varint(buf, pos)
        elif key == 0x12:  # 2 next_page_token
            pos, stop = _span(buf, pos, end, key)
            token = buf[pos:stop].decode()
            pos = stop
        else:
            pos = _skip(buf, pos, end, key, 1)
    if pos != end:
        raise _overrun()
    return total & _MASK32, token


def _failure(what: str, error: Exception) -> DecodeError:
    """The one `DecodeError` a decoder's failure becomes, whatever its kind."""
    if isinstance(error, IndexError):
        # Only reading past the end of the buffer raises it: a truncated field.
        failure = DecodeError(f"invalid {what}: truncated")
        failure.__cause__ = None  # as `raise ... from None`: nothing to add
    elif isinstance(error, RecursionError):
        failure = DecodeError(f"invalid {what}: nested too deeply")
        failure.__cause__ = None
    else:
        # DecodeError from the checks here; UnicodeDecodeError for invalid UTF-8;
        # OverflowError for a timestamp beyond datetime's range.
        failure = DecodeError(f"invalid {what}: {error}")
        failure.__cause__ = error
    failure.__suppress_context__ = True
    return failure


def _decoding(what: str, decode: Callable[[bytes], _R], data: bytes) -> _R:
    """Run a decoder; every failure, whatever its kind, becomes one `DecodeError`."""
    try:
        return decode(bytes(data))
    except Exception as error:
        raise _failure(what, error)  # noqa: B904  # _failure sets the cause


def decode_list_response(data: bytes) -> ListPage:
    """Decode a `ListMicrogridDispatchesResponse`, as `_bridge.decode_list_response`.

    Args:
        data: The serialized response.

    Returns:
        The page: dispatches, the next page token (None when absent or empty) and the
        total count (0 when the server sent no pagination info).

    Raises:
        DecodeError: If the bytes or their content are invalid.
    """
    return _decoding("ListMicrogridDispatchesResponse", _list_response, data)


def _stream_response(buf: bytes) -> DispatchEvent:
    dispatch, event = _response_dispatch(buf, 0x0A, 0x10)  # 1 dispatch, 2 event: an enum
    return unchecked_event(_event(_int32(event)), dispatch)


def decode_stream_response(data: bytes) -> DispatchEvent:
    """Decode a `StreamMicrogridDispatchesResponse`, as `_bridge.decode_stream_response`.

    Args:
        data: The serialized stream message.

    Returns:
        The event (an unknown event number stays visible as `Event.UNKNOWN_<n>`).

    Raises:
        DecodeError: If the bytes or their content are invalid, or carry no dispatch.
    """
    return _decoding("StreamMicrogridDispatchesResponse", _stream_response, data)


def decode_get_response(data: bytes) -> Dispatch:
    """Decode a `GetMicrogridDispatchResponse`, as `_bridge.decode_get_response`.

    Args:
        data: The serialized response.

    Returns:
        The dispatch.

    Raises:
        DecodeError: If the bytes or their content are invalid, or carry no dispatch.
    """
    # Not through `_decoding`: one call less on every get (as for create and update).
    try:
        return _response_dispatch(bytes(data), 0x12, 0x08)[0]  # 1 microgrid_id: not needed
    except Exception as error:
        raise _failure("GetMicrogridDispatchResponse", error)  # noqa: B904


def decode_create_response(data: bytes) -> Dispatch:
    """Decode a `CreateMicrogridDispatchResponse`, as `_bridge.decode_create_response`.

    Args:
        data: The serialized response.

    Returns:
        The created dispatch.

    Raises:
        DecodeError: If the bytes or their content are invalid, or carry no dispatch.
    """
    try:
        return _response_dispatch(bytes(data), 0x0A, -1)[0]
    except Exception as error:
        raise _failure("CreateMicrogridDispatchResponse", error)  # noqa: B904


def decode_update_response(data: bytes) -> Dispatch:
    """Decode an `UpdateMicrogridDispatchResponse`, as `_bridge.decode_update_response`.

    Args:
        data: The serialized response.

    Returns:
        The updated dispatch.

    Raises:
        DecodeError: If the bytes or their content are invalid, or carry no dispatch.
    """
    try:
        return _response_dispatch(bytes(data), 0x0A, -1)[0]
    except Exception as error:
        raise _failure("UpdateMicrogridDispatchResponse", error)  # noqa: B904


def _delete_response(buf: bytes) -> tuple[int, int]:
    microgrid_id = dispatch_id = 0
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _key(buf, pos)
        if key == 0x08:  # 1 microgrid_id, uint64
            microgrid_id, pos = _varint(buf, pos)
        elif key == 0x10:  # 2 dispatch_id, uint64
            dispatch_id, pos = _varint(buf, pos)
        else:
            pos = _skip(buf, pos, end, key, 0)
    if pos != end:
        raise _overrun()
    return microgrid_id & _MASK64, dispatch_id & _MASK64


def decode_delete_response(data: bytes) -> tuple[int, int]:
    """Decode a `DeleteMicrogridDispatchResponse`, as `_bridge.decode_delete_response`.

    The ids are informational and returned as sent (0 when the server left them unset).

    Args:
        data: The serialized response.

    Returns:
        The microgrid and dispatch ids the server echoed.

    Raises:
        DecodeError: If the bytes are invalid.
    """
    return _decoding("DeleteMicrogridDispatchResponse", _delete_response, data)
