"""Encode the client's requests straight from domain records to wire bytes.

The counterpart of `_decode.py` for everything the client sends: list (every filter,
sort options, pagination), create, update (mask and values), get, delete and stream.
`_bridge.py` builds the same requests as betterproto2 messages, the reference; that way
costs about ten times more, in generic per-field work (default look-ups, each in a
`warnings.catch_warnings()` block) this module does not need, since each function
here knows its message.

The bytes are exactly what protobuf's deterministic serialization writes for the same
message (tests/test_codec_encode.py compares them with the official classes):

* fields in field-number order; a proto3 scalar equal to its default is left out, an
  `optional` one or a oneof member is written whenever it is set, a sub-message whenever
  it is set (even empty);
* repeated scalars packed (nothing when empty), negative int32s as 10-byte varints;
* a `Struct`'s entries in upb's deterministic map order (see `_struct`), each entry
  writing its key and its value even when empty.

Messages are built inside out: a sub-message's bytes are made first, so its length is
known when its parent writes it.

The records arrive validated (`_requests`, `_types`), so only what the wire adds is
checked here: ids, durations and payload numbers that do not fit their wire types.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from dispatch_client._codec._wire import MASK32, MASK64, varint_bytes
from dispatch_client._requests import (
    MAX_PAYLOAD_INT,
    CreateRequest,
    DispatchFilter,
    ListRequest,
    TimeInterval,
    UpdateRequest,
    check_id,
    duration_seconds,
)
from dispatch_client._types import (
    EndCriteria,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetCategory,
    TargetComponents,
    TargetIds,
)

__all__ = [
    "encode_create_request",
    "encode_delete_request",
    "encode_get_request",
    "encode_list_request",
    "encode_stream_request",
    "encode_update_request",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_pack_double = struct.Struct("<d").pack
# A payload entry's value that is a number: `12 09` (field 2, 9 bytes), `11` (the Value's
# number_value) and the double, packed in one call.
_pack_number_value = struct.Struct("<BBBd").pack
_NULL: Final = b"\x08\x00"  # Value.null_value = NULL_VALUE: set, so written
_TRUE: Final = b"\x20\x01"
_FALSE: Final = b"\x20\x00"


def _heads(key: int) -> tuple[bytes, ...]:
    """A length-delimited key followed by each one-byte length, 0 to 127: field heads."""
    return tuple(bytes((key, size)) for size in range(0x80))


# Every length-delimited key this module writes (fields 1 to 10), with its field heads:
# looking a head up costs less than building it, and requests are mostly short fields.
_HEADS: Final = {number << 3 | 2: _heads(number << 3 | 2) for number in range(1, 11)}
_H0A: Final = _HEADS[0x0A]
_H12: Final = _HEADS[0x12]
_H1A: Final = _HEADS[0x1A]
_KEYS: Final = tuple(bytes((key,)) for key in range(0x80))
"""Each one-byte key as bytes (a look-up costs less than `bytes((key,))`)."""


def _field(key: int, content: bytes) -> bytes:
    """A length-delimited field: its one-byte key, the content's length, the content."""
    size = len(content)
    if size < 0x80:
        return _HEADS[key][size] + content
    return _KEYS[key] + varint_bytes(size) + content


def _varint_field(key: int, value: int) -> bytes:
    """A varint field (a negative int32 or int64 as its 64-bit two's complement)."""
    return _KEYS[key] + varint_bytes(value & MASK64)


def _packed(key: int, values: Any) -> bytes:
    """A packed repeated varint field; nothing for no values."""
    if not values:
        return b""
    try:
        # Values of 0 to 127 (rule numbers, small ids) are each their own varint.
        content = bytes(values)
        small = content.isascii()
    except ValueError:  # a value below 0 or beyond a byte
        small = False
    if not small:
        content = b"".join([varint_bytes(int(value) & MASK64) for value in values])
    return _field(key, content)


# ------------------------------------------------------------------- google.protobuf


def _timestamp(value: datetime) -> bytes:
    """A `Timestamp`'s content: seconds since the epoch (floored) and nanoseconds."""
    delta = value - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    out = b"\x08" + varint_bytes(seconds & MASK64) if seconds else b""  # 1 seconds, int64
    if delta.microseconds:
        out += b"\x10" + varint_bytes(delta.microseconds * 1000)  # 2 nanos, int32
    return out


def _struct(mapping: Mapping[str, Any]) -> bytes:
    """A `Struct`'s content: its entries in the order upb's deterministic output has them.

    upb compares keys as UTF-8 bytes and puts a key after the keys it is a prefix of
    (`"ab"` before `"a"`, `""` last). UTF-8 keeps the order of code points, so a plain
    sort of the keys is that order unless a key is a prefix of the next one; then a
    sentinel byte UTF-8 never contains, 0xFF, appended to each key gives it.
    """
    exact = True
    for name in mapping:
        if type(name) is not str:
            if not isinstance(name, str):
                raise TypeError(f"a payload key must be a str, got {type(name).__name__}: {name!r}")
            exact = False  # a subclass might compare otherwise
    names = sorted(mapping)
    if not exact or any(map(str.startswith, names[1:], names)):
        names.sort(key=_upb_key)
    out = []
    for name in names:
        # 1 fields: a map entry {1: key, 2: value}; most keys and values are short, and
        # most values finite floats or strings, written here in one piece each.
        key = name.encode()
        size = len(key)
        value = mapping[name]
        kind = type(value)
        if size < 0x73 and (
            (kind is float and value - value == 0.0)  # finite: NaN - NaN, inf - inf are NaN
            or (kind is int and -MAX_PAYLOAD_INT <= value <= MAX_PAYLOAD_INT)
        ):
            out.append(
                _H0A[size + 13] + _H0A[size] + key + _pack_number_value(0x12, 9, 0x11, value)
            )
            continue
        if kind is str:
            text = value.encode()
            if size + len(text) < 0x7A:  # the entry's length fits one byte
                out.append(
                    _H0A[size + len(text) + 6]
                    + _H0A[size]
                    + key
                    + _H12[len(text) + 2]
                    + _H1A[len(text)]
                    + text
                )
                continue
        content = _value(value)
        if size < 0x80 and len(content) < 0x80:
            entry = _H0A[size] + key + _H12[len(content)] + content
        else:
            entry = _field(0x0A, key) + _field(0x12, content)
        out.append(_H0A[len(entry)] + entry if len(entry) < 0x80 else _field(0x0A, entry))
    return b"".join(out)


def _upb_key(name: str) -> bytes:
    """The sort key of a payload key in upb's order: its UTF-8 bytes and 0xFF."""
    return name.encode() + b"\xff"


def _value(value: Any) -> bytes:
    """A `Value`'s content: exactly one member of its `kind` oneof."""
    kind = type(value)
    # The exact types first, the common case; subclasses take the isinstance checks.
    if kind is str:
        return _field(0x1A, value.encode())  # 3 string_value
    if kind is float and value - value == 0.0:  # finite (NaN and infinities give NaN)
        return b"\x11" + _pack_double(value)  # 2 number_value, double
    if kind is dict:
        return _field(0x2A, _struct(value))  # 5 struct_value
    if kind is list:
        return _field(0x32, _list(value))  # 6 list_value
    if value is None:
        return _NULL
    # Order matters: bool is a subclass of int.
    if isinstance(value, str):
        return _field(0x1A, value.encode())
    if isinstance(value, bool):
        return _TRUE if value else _FALSE  # 4 bool_value
    if isinstance(value, float):
        if value - value != 0.0:  # NaN or an infinity
            raise ValueError(f"payload number {value!r} is not finite")
        return b"\x11" + _pack_double(value)
    if isinstance(value, int):
        if abs(value) > MAX_PAYLOAD_INT:
            raise ValueError(f"payload int {value} is not exactly representable as a double")
        return b"\x11" + _pack_double(float(value))
    if isinstance(value, dict):
        return _field(0x2A, _struct(value))
    if isinstance(value, list | tuple):
        return _field(0x32, _list(value))
    raise TypeError(f"a payload value must be JSON-like, got {type(value).__name__}: {value!r}")


def _list(values: list[Any] | tuple[Any, ...]) -> bytes:
    """A `ListValue`'s content: field 1, each item a `Value`."""
    out = []
    for item in values:
        kind = type(item)
        # A finite float or an exact int in range: `0A 09 11` and the double, one piece.
        if (kind is float and item - item == 0.0) or (
            kind is int and -MAX_PAYLOAD_INT <= item <= MAX_PAYLOAD_INT
        ):
            out.append(_pack_number_value(0x0A, 9, 0x11, item))
        else:
            out.append(_field(0x0A, _value(item)))
    return b"".join(out)


def _payload(payload: Mapping[str, Any]) -> bytes:
    if not isinstance(payload, dict):
        raise TypeError(f"payload must be a dict, got {type(payload).__name__}")
    return _struct(payload)


# ------------------------------------------------------------------------ targets


def _category_order(member: TargetCategory) -> tuple[int, str, int]:
    """The order `_bridge` sends categories in, so equal targets encode equally."""
    kind = type(member.type).__name__ if member.type is not None else ""
    return (int(member.category), kind, -1 if member.type is None else int(member.type))


# CategoryAndType's `type` oneof: the key of each type enum's member.
_TYPE_KEYS: Final = {"BatteryType": 0x10, "InverterType": 0x18, "EvChargerType": 0x20}


def _target(target: TargetComponents) -> bytes:
    """A `TargetComponents`' content: ids as `component_ids`, categories with types.

    Categories always go in `component_categories_types` (the deprecated
    `component_categories` is never sent), as `_bridge` and the official client send them.
    """
    if isinstance(target, TargetIds):
        return _field(0x0A, _packed(0x0A, sorted(target)))  # 1 component_ids {1 ids}
    if isinstance(target, TargetCategories):
        items = []
        for member in sorted(target, key=_category_order):
            category = int(member.category)
            item = _varint_field(0x08, category) if category else b""  # 1 category
            if member.type is not None:
                item += _varint_field(_TYPE_KEYS[type(member.type).__name__], int(member.type))
            items.append(_field(0x0A, item))  # CategoryTypeSet 1 categories
        return _field(0x1A, b"".join(items))  # 3 component_categories_types
    raise TypeError(
        f"target must be TargetIds or TargetCategories, got {type(target).__name__}: {target!r}"
    )


# --------------------------------------------------------------------- recurrence


def _end_criteria(criteria: EndCriteria) -> bytes:
    """An `EndCriteria`'s content: `count` or `until_time`, a oneof, so written when set."""
    if criteria.count is not None:
        return _varint_field(0x08, criteria.count)
    assert criteria.until is not None  # EndCriteria holds exactly one of them
    return _field(0x12, _timestamp(criteria.until))


def _rule_lists(rule: RecurrenceRule) -> bytes:
    """The `by*` lists of a rule (fields 4 to 8), packed."""
    return (
        _packed(0x22, rule.byminutes)
        + _packed(0x2A, rule.byhours)
        + _packed(0x32, rule.byweekdays)
        + _packed(0x3A, rule.bymonthdays)
        + _packed(0x42, rule.bymonths)
    )


def _rule(rule: RecurrenceRule) -> bytes:
    """A `RecurrenceRule`'s content."""
    frequency = rule.frequency
    out = _varint_field(0x08, int(frequency)) if frequency else b""  # 1 freq
    if rule.interval:
        out += _varint_field(0x10, rule.interval)  # 2 interval
    criteria = rule.end_criteria
    if criteria is not None:  # 3 end_criteria; a count is the usual end, in line
        count = criteria.count
        if count is not None and count < 0x80:
            out += b"\x1a\x02\x08" + _KEYS[count]
        else:
            out += _field(0x1A, _end_criteria(criteria))
    if rule.byminutes or rule.byhours or rule.byweekdays or rule.bymonthdays or rule.bymonths:
        out += _rule_lists(rule)
    return out


# ------------------------------------------------------------------------- shared


def _duration(duration: timedelta) -> int:
    if not duration.microseconds:  # whole seconds (the usual): nothing to round
        seconds = duration.days * 86_400 + duration.seconds
    else:
        seconds = duration_seconds(duration)
    if not 0 <= seconds <= MASK32:
        raise ValueError(f"duration {duration!r} does not fit the wire's 0..{MASK32} s")
    return seconds


def _interval(key: int, interval: TimeInterval | None) -> bytes:
    """An `Interval` field, if there is one; its times only where given."""
    if interval is None:
        return b""
    content = b""
    if interval.start is not None:
        content += _field(0x0A, _timestamp(interval.start))
    if interval.end is not None:
        content += _field(0x12, _timestamp(interval.end))
    return _field(key, content)


def _ids(microgrid_id: int, dispatch_id: int) -> bytes:
    return _varint_field(0x08, check_id("microgrid_id", microgrid_id)) + _varint_field(
        0x10, check_id("dispatch_id", dispatch_id)
    )


# ---------------------------------------------------------------------- requests


def _filter(dispatch_filter: DispatchFilter) -> bytes:
    """A `DispatchFilter`'s content."""
    out = b"".join([_field(0x0A, _target(target)) for target in dispatch_filter.targets])
    if dispatch_filter.active is not None:
        out += b"\x10\x01" if dispatch_filter.active else b"\x10\x00"  # 2 is_active
    if dispatch_filter.dry_run is not None:
        out += b"\x18\x01" if dispatch_filter.dry_run else b"\x18\x00"  # 3 is_dry_run
    if dispatch_filter.recurring is not None:  # 4 is_recurring, a oneof member
        out += b"\x20\x01" if dispatch_filter.recurring else b"\x20\x00"
    out += _interval(0x32, dispatch_filter.start_time)
    out += _interval(0x3A, dispatch_filter.end_time)
    out += _interval(0x42, dispatch_filter.update_time)
    out += _packed(0x4A, dispatch_filter.dispatch_ids)
    for query in dispatch_filter.queries:
        out += _field(0x52, query.encode())  # 10 queries
    return out


def encode_list_request(request: ListRequest) -> bytes:
    """Encode a list request, as `_bridge.encode_list_request` does.

    The filter is always sent; sort options only when one of them is specified;
    pagination carries `page_token` if set, else `page_size` if set.

    Args:
        request: The request.

    Returns:
        The serialized `ListMicrogridDispatchesRequest`.
    """
    out = _varint_field(0x08, request.microgrid_id) if request.microgrid_id else b""
    out += _field(0x12, _filter(request.filter))
    field, order = request.sort_field, request.sort_order
    if field != SortField.UNSPECIFIED or order != SortOrder.UNSPECIFIED:
        sort = _varint_field(0x08, int(field)) if field else b""
        if order:
            sort += _varint_field(0x10, int(order))
        out += _field(0x1A, sort)
    if request.page_token is not None:
        out += _field(0x22, _field(0x12, request.page_token.encode()))
    elif request.page_size is not None:
        out += _field(0x22, _varint_field(0x08, request.page_size))
    return out


def encode_create_request(request: CreateRequest) -> bytes:
    """Encode a create request, as `_bridge.encode_create_request` does.

    `start_time="NOW"` is sent as an unset start time plus `start_immediately=true`;
    otherwise `start_immediately` is left unset.

    Args:
        request: The request.

    Returns:
        The serialized `CreateMicrogridDispatchRequest`.

    Raises:
        ValueError: For a duration beyond the wire's uint32 seconds.
    """
    start = request.start_time
    # The DispatchData's fields, in number order.
    data = _field(0x0A, request.type.encode()) if request.type else b""  # 1 type
    if isinstance(start, datetime):  # else "NOW", the one string the record takes
        time = _timestamp(start)  # at most 17 bytes: its length is one byte
        data += _H12[len(time)] + time  # 2 start_time
    if request.duration is not None:
        data += b"\x18" + varint_bytes(_duration(request.duration))  # 3 duration
    data += _field(0x22, _target(request.target))  # 4 target
    if request.active:
        data += b"\x28\x01"  # 5 is_active
    if request.dry_run:
        data += b"\x30\x01"  # 6 is_dry_run
    data += _field(0x3A, _payload(request.payload))  # 7 payload
    if request.recurrence is not None:
        data += _field(0x42, _rule(request.recurrence))  # 8 recurrence
    out = b"\x08" + varint_bytes(request.microgrid_id & MASK64) if request.microgrid_id else b""
    out += _field(0x12, data)
    if not isinstance(start, datetime):
        out += b"\x18\x01"  # 3 start_immediately, optional: only when true
    return out


def _rule_update(fields: Mapping[str, Any]) -> bytes:
    """A `RecurrenceRuleUpdate`'s content from the `recurrence.*` paths of an update."""
    out = b""
    if "recurrence.freq" in fields:
        out += _varint_field(0x08, int(fields["recurrence.freq"]))  # optional: 0 is sent
    if "recurrence.interval" in fields:
        out += _varint_field(0x10, fields["recurrence.interval"])
    criteria = fields.get("recurrence.end_criteria")
    if criteria is not None:
        out += _field(0x1A, _end_criteria(criteria))
    for key, path in _RULE_LIST_PATHS:
        out += _packed(key, fields.get(path))
    return out


_RULE_LIST_PATHS: Final = (
    (0x22, "recurrence.byminutes"),
    (0x2A, "recurrence.byhours"),
    (0x32, "recurrence.byweekdays"),
    (0x3A, "recurrence.bymonthdays"),
    (0x42, "recurrence.bymonths"),
)


def encode_update_request(request: UpdateRequest) -> bytes:
    """Encode an update request, as `_bridge.encode_update_request` does.

    A cleared field (`duration` or `recurrence.end_criteria` set to None) is named in
    the mask and left unset in the update.

    Args:
        request: The request.

    Returns:
        The serialized `UpdateMicrogridDispatchRequest`.

    Raises:
        ValueError: For a duration beyond the wire's uint32 seconds.
    """
    fields = request.fields
    update = b""
    if "start_time" in fields:
        update += _field(0x0A, _timestamp(fields["start_time"]))
    duration = fields.get("duration")
    if duration is not None:
        update += _varint_field(0x10, _duration(duration))
    if "target" in fields:
        update += _field(0x1A, _target(fields["target"]))
    if "is_active" in fields:
        update += b"\x20\x01" if fields["is_active"] else b"\x20\x00"
    if "payload" in fields:
        update += _field(0x2A, _payload(fields["payload"]))
    if any(path.startswith("recurrence.") for path in fields):
        update += _field(0x32, _rule_update(fields))
    mask = b"".join([_field(0x0A, path.encode()) for path in fields])
    out = _varint_field(0x08, request.microgrid_id) if request.microgrid_id else b""
    if request.dispatch_id:
        out += _varint_field(0x10, request.dispatch_id)
    return out + _field(0x1A, mask) + _field(0x22, update)


def encode_get_request(microgrid_id: int, dispatch_id: int) -> bytes:
    """Encode a get request.

    Args:
        microgrid_id: The microgrid (a positive int).
        dispatch_id: The dispatch (a positive int).

    Returns:
        The serialized `GetMicrogridDispatchRequest`.

    Raises:
        TypeError: If an id is not an int.
        ValueError: If an id is not positive or too large.
    """
    return _ids(microgrid_id, dispatch_id)


def encode_delete_request(microgrid_id: int, dispatch_id: int) -> bytes:
    """Encode a delete request (the same fields as a get request's).

    Args:
        microgrid_id: The microgrid (a positive int).
        dispatch_id: The dispatch (a positive int).

    Returns:
        The serialized `DeleteMicrogridDispatchRequest`.

    Raises:
        TypeError: If an id is not an int.
        ValueError: If an id is not positive or too large.
    """
    return _ids(microgrid_id, dispatch_id)


def encode_stream_request(microgrid_id: int) -> bytes:
    """Encode a stream request.

    Args:
        microgrid_id: The microgrid (a positive int).

    Returns:
        The serialized `StreamMicrogridDispatchesRequest`.

    Raises:
        TypeError: If the id is not an int.
        ValueError: If the id is not positive or too large.
    """
    return _varint_field(0x08, check_id("microgrid_id", microgrid_id))
