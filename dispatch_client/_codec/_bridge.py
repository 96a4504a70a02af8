"""The reference codec: the domain types through the generated betterproto2 messages.

This is the only module that imports `dispatch_client._proto`. The client uses it with
`Client(fast_codec=False)`; the fake service and cassette rendering use it always (it
is the server side of every message). It has two layers:

* free functions from domain objects to betterproto2 messages and back
  (`dispatch_to_pb` / `dispatch_from_pb`, targets, recurrence, payloads, events, ...);
* bytes-level helpers for every method of the service, for the client
  (`encode_*_request`, `decode_*_response`) and for a server such as the fake service
  (`decode_*_request`, `encode_*_response`).

Rules the conversions keep:

* Enums are mapped **by name**, through tables built from the member names of both
  sides. A number this client does not know becomes the domain enum's `UNKNOWN_<n>`
  pseudo-member, and is encoded back to the same number.
* Timestamps keep microseconds; the nanoseconds of a received Timestamp are truncated.
  A missing timestamp that the domain requires reads as the protobuf default, the epoch.
* Durations are whole seconds (rounded half to even); unset (None: run until stopped)
  and 0 stay distinct.
* Payloads are `google.protobuf.Struct`s, whose numbers are doubles: ints must be within
  ±2**53 and are received back as floats; NaN and infinities are rejected both ways.
* Targets: categories are sent as `component_categories_types`, with or without a type,
  as the official client does; all three variants of the oneof are decoded.
* Every `decode_*` helper raises `DecodeError` and nothing else for bad input: bytes that
  do not parse, and messages whose content the domain types reject.
* Bytes are read as protobuf reads them (`_read`): betterproto2 parses a canonical form
  of the message, not the bytes as received.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Generic, Literal, NamedTuple, TypeVar

import betterproto2

from dispatch_client import _methods
from dispatch_client._codec import _wire as wire
from dispatch_client._errors import DecodeError
from dispatch_client._proto.frequenz.api.common.v1alpha8 import pagination as pb_pagination
from dispatch_client._proto.frequenz.api.common.v1alpha8 import streaming as pb_streaming
from dispatch_client._proto.frequenz.api.common.v1alpha8 import types as pb_types
from dispatch_client._proto.frequenz.api.common.v1alpha8.microgrid import (
    electrical_components as pb_components,
)
from dispatch_client._proto.frequenz.api.dispatch import v1 as pb
from dispatch_client._proto.google import protobuf as pb_wkt
from dispatch_client._requests import (
    UPDATE_PATHS,
    CreateRequest,
    DispatchFilter,
    ListPage,
    ListRequest,
    TimeInterval,
    UpdateRequest,
    check_id,
    check_payload,
    duration_seconds,
)
from dispatch_client._types import (
    BatteryType,
    Dispatch,
    DispatchEvent,
    ElectricalComponentCategory,
    EndCriteria,
    EvChargerType,
    Event,
    Frequency,
    InverterType,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetCategory,
    TargetComponents,
    TargetIds,
    Weekday,
)

__all__ = [
    "ENUM_TABLES",
    "DecodeError",
    "DispatchRef",
    "ListPage",
    "decode_create_request",
    "decode_create_response",
    "decode_delete_request",
    "decode_delete_response",
    "decode_get_request",
    "decode_get_response",
    "decode_list_request",
    "decode_list_response",
    "decode_stream_request",
    "decode_stream_response",
    "decode_update_request",
    "decode_update_response",
    "dispatch_from_pb",
    "dispatch_to_pb",
    "encode_create_request",
    "encode_create_response",
    "encode_delete_request",
    "encode_delete_response",
    "encode_get_request",
    "encode_get_response",
    "encode_list_request",
    "encode_list_response",
    "encode_stream_request",
    "encode_stream_response",
    "encode_update_request",
    "encode_update_response",
    "end_criteria_from_pb",
    "end_criteria_to_pb",
    "event_from_pb",
    "event_to_pb",
    "payload_from_pb",
    "payload_to_pb",
    "recurrence_from_pb",
    "recurrence_to_pb",
    "render_message",
    "target_from_pb",
    "target_to_pb",
]

_UINT32_MAX: Final = 2**32 - 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class DispatchRef(NamedTuple):
    """A microgrid id and a dispatch id, as get and delete requests carry them."""

    microgrid_id: int
    dispatch_id: int


# -------------------------------------------------------------------------- enums

_D = TypeVar("_D", bound=Any)
_P = TypeVar("_P", bound=betterproto2.Enum)


class _EnumTable(Generic[_D, _P]):
    """A by-name mapping between a domain enum and a generated protobuf enum."""

    def __init__(self, domain: type[_D], wire: type[_P]) -> None:
        self._domain = domain
        self._wire = wire
        # Iterating an enum skips aliases (InverterType.SOLAR) and pseudo-members.
        pairs = [(member, wire.__members__.get(member.name)) for member in domain]
        self._to_wire: dict[_D, _P] = {d: w for d, w in pairs if w is not None}
        self._from_wire: dict[int, _D] = {int(w): d for d, w in pairs if w is not None}

    @property
    def unmatched(self) -> tuple[list[str], list[str]]:
        """Member names only the domain has, and names only the wire enum has."""
        domain_only = [m.name for m in self._domain if m not in self._to_wire]
        wire_only = [m.name for m in self._wire if int(m) not in self._from_wire]
        return domain_only, wire_only

    def to_wire(self, member: _D) -> _P:
        """Return the wire member of the same name; an unknown member keeps its number.

        Raises:
            TypeError: If `member` is not a member of the domain enum.
            ValueError: If a known member has no wire counterpart.
        """
        if not isinstance(member, self._domain):
            raise TypeError(
                f"expected a {self._domain.__name__}, got {type(member).__name__}: {member!r}"
            )
        wire = self._to_wire.get(member)
        if wire is not None:
            return wire
        if member.is_unknown:
            return self._wire(int(member))
        raise ValueError(f"{member!r} has no counterpart in the API's {self._wire.__name__}")

    def from_wire(self, value: int) -> _D:
        """Return the domain member for a wire number; unknown numbers give a pseudo-member."""
        member = self._from_wire.get(int(value))
        if member is not None:
            return member
        result: _D = self._domain(int(value))
        return result


_FREQUENCY: Final = _EnumTable(Frequency, pb.RecurrenceRuleFrequency)
_WEEKDAY: Final = _EnumTable(Weekday, pb.RecurrenceRuleWeekday)
_EVENT: Final = _EnumTable(Event, pb_streaming.Event)
_CATEGORY: Final = _EnumTable(
    ElectricalComponentCategory, pb_components.ElectricalComponentCategory
)
_BATTERY: Final = _EnumTable(BatteryType, pb_components.BatteryType)
_INVERTER: Final = _EnumTable(InverterType, pb_components.InverterType)
_EV_CHARGER: Final = _EnumTable(EvChargerType, pb_components.EvChargerType)
_SORT_FIELD: Final = _EnumTable(SortField, pb.SortField)
_SORT_ORDER: Final = _EnumTable(SortOrder, pb.SortOrder)

ENUM_TABLES: Final[Mapping[str, _EnumTable[Any, Any]]] = {
    "Frequency": _FREQUENCY,
    "Weekday": _WEEKDAY,
    "Event": _EVENT,
    "ElectricalComponentCategory": _CATEGORY,
    "BatteryType": _BATTERY,
    "InverterType": _INVERTER,
    "EvChargerType": _EV_CHARGER,
    "SortField": _SORT_FIELD,
    "SortOrder": _SORT_ORDER,
}
"""Every enum table, by domain enum name (for tests that check they are complete)."""


def event_to_pb(event: Event) -> pb_streaming.Event:
    """Convert a stream event kind to the wire enum.

    Args:
        event: The event kind.

    Returns:
        The wire member of the same name (an unknown member keeps its number).
    """
    return _EVENT.to_wire(event)


def event_from_pb(event: int) -> Event:
    """Convert a wire event number to the domain enum.

    Args:
        event: The wire value.

    Returns:
        The member of the same name, or an `UNKNOWN_<n>` pseudo-member.
    """
    return _EVENT.from_wire(event)


def _oneof(message: betterproto2.Message, group: str) -> tuple[str, Any]:
    """Return the name and value of the member set in a oneof, or `("", None)`."""
    return betterproto2.which_one_of(message, group)


# -------------------------------------------------------------------------- times


def _time_or_epoch(value: datetime | None) -> datetime:
    """A required timestamp: unset reads as the protobuf default, the epoch."""
    return _EPOCH if value is None else value


def _duration_to_pb(duration: timedelta | None) -> int | None:
    if duration is None:
        return None
    seconds = duration_seconds(duration)
    if not 0 <= seconds <= _UINT32_MAX:
        raise ValueError(f"duration {duration!r} does not fit the wire's 0..{_UINT32_MAX} s")
    return seconds


def _duration_from_pb(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def _interval_to_pb(interval: TimeInterval | None) -> pb_types.Interval | None:
    if interval is None:
        return None
    return pb_types.Interval(start_time=interval.start, end_time=interval.end)


def _interval_from_pb(interval: pb_types.Interval | None) -> TimeInterval | None:
    if interval is None:
        return None
    return TimeInterval(start=interval.start_time, end=interval.end_time)


# ------------------------------------------------------------------------ payload


def payload_to_pb(payload: Mapping[str, Any]) -> pb_wkt.Struct:
    """Convert a JSON-like payload to a `google.protobuf.Struct`.

    Args:
        payload: A dict as `_requests.check_payload` accepts it.

    Returns:
        The Struct; numbers become doubles, tuples become lists.

    Raises:
        TypeError: For a non-dict payload, a non-str key or a value of another type.
        ValueError: For NaN, an infinity, or an int beyond ±2**53.
    """
    return _struct_to_pb(check_payload(payload))


def _struct_to_pb(mapping: Mapping[str, Any]) -> pb_wkt.Struct:
    return pb_wkt.Struct(fields={key: _value_to_pb(item) for key, item in mapping.items()})


def _value_to_pb(value: Any) -> pb_wkt.Value:
    # Order matters: bool is a subclass of int. Types were checked by check_payload.
    if value is None:
        return pb_wkt.Value(null_value=pb_wkt.NullValue.NULL_VALUE)
    if isinstance(value, bool):
        return pb_wkt.Value(bool_value=value)
    if isinstance(value, int | float):
        return pb_wkt.Value(number_value=float(value))
    if isinstance(value, str):
        return pb_wkt.Value(string_value=value)
    if isinstance(value, dict):
        return pb_wkt.Value(struct_value=_struct_to_pb(value))
    return pb_wkt.Value(list_value=pb_wkt.ListValue(values=[_value_to_pb(v) for v in value]))


def payload_from_pb(struct: pb_wkt.Struct | None) -> dict[str, Any]:
    """Convert a `google.protobuf.Struct` to a JSON-like dict.

    Numbers come back as floats (the wire has only doubles). A `Value` with no kind set
    reads as None, as protobuf's JSON mapping does.

    Args:
        struct: The Struct; None (unset) gives an empty dict.

    Returns:
        The payload.

    Raises:
        DecodeError: For NaN or an infinity.
    """
    if struct is None:
        return {}
    return {key: _value_from_pb(item) for key, item in struct.fields.items()}


def _value_from_pb(value: pb_wkt.Value | None) -> Any:
    if value is None:
        return None  # a map entry without a value: the default Value, which has no kind
    kind, item = _oneof(value, "kind")
    if kind == "number_value":
        number = float(item)
        if not math.isfinite(number):
            raise DecodeError(f"payload number {number!r} is not finite")
        return number
    if kind in {"string_value", "bool_value"}:
        return item
    if kind == "struct_value":
        return payload_from_pb(item)
    if kind == "list_value":
        return [_value_from_pb(v) for v in item.values]
    return None


# ------------------------------------------------------------------------ targets

# Each member of CategoryAndType's `type` oneof: its enum table and the category it implies.
_TYPE_FIELDS: Final[Mapping[str, tuple[_EnumTable[Any, Any], ElectricalComponentCategory]]] = {
    "battery": (_BATTERY, ElectricalComponentCategory.BATTERY),
    "inverter": (_INVERTER, ElectricalComponentCategory.INVERTER),
    "ev_charger": (_EV_CHARGER, ElectricalComponentCategory.EV_CHARGER),
}


def _category_sort_key(member: TargetCategory) -> tuple[int, str, int]:
    kind = type(member.type).__name__ if member.type is not None else ""
    return (int(member.category), kind, -1 if member.type is None else int(member.type))


def _category_and_type_to_pb(member: TargetCategory) -> pb.TargetComponentsCategoryAndType:
    fields: dict[str, Any] = {"category": _CATEGORY.to_wire(member.category)}
    subtype = member.type
    if isinstance(subtype, BatteryType):
        fields["battery"] = _BATTERY.to_wire(subtype)
    elif isinstance(subtype, InverterType):
        fields["inverter"] = _INVERTER.to_wire(subtype)
    elif isinstance(subtype, EvChargerType):
        fields["ev_charger"] = _EV_CHARGER.to_wire(subtype)
    return pb.TargetComponentsCategoryAndType(**fields)


def target_to_pb(target: TargetComponents) -> pb.TargetComponents:
    """Convert a dispatch target to the wire message.

    Ids go in `component_ids`; categories, with or without a type, go in
    `component_categories_types` (the deprecated `component_categories` is never sent).
    Members are sorted, so equal targets always encode to equal bytes.

    Args:
        target: `TargetIds` or `TargetCategories`.

    Returns:
        The message.

    Raises:
        TypeError: For any other target.
    """
    if isinstance(target, TargetIds):
        return pb.TargetComponents(component_ids=pb.TargetComponentsIdSet(ids=sorted(target)))
    if isinstance(target, TargetCategories):
        members = sorted(target, key=_category_sort_key)
        return pb.TargetComponents(
            component_categories_types=pb.TargetComponentsCategoryTypeSet(
                categories=[_category_and_type_to_pb(m) for m in members]
            )
        )
    raise TypeError(
        f"target must be TargetIds or TargetCategories, got {type(target).__name__}: {target!r}"
    )


def _category_and_type_from_pb(message: pb.TargetComponentsCategoryAndType) -> TargetCategory:
    category = _CATEGORY.from_wire(message.category)
    kind, value = _oneof(message, "type")
    if not kind:
        return TargetCategory(category)
    table, implied = _TYPE_FIELDS[kind]
    if category is not implied:
        raise DecodeError(
            f"target category {category.name} carries a {kind} type; "
            f"a {kind} type belongs to category {implied.name}"
        )
    return TargetCategory(table.from_wire(value))


def target_from_pb(message: pb.TargetComponents | None) -> TargetComponents:
    """Convert a wire target to the domain type.

    Decodes all three variants of the oneof: ids, plain categories (deprecated) and
    categories with optional types. An unset target reads as an empty `TargetIds()`.

    Args:
        message: The message, or None.

    Returns:
        `TargetIds` or `TargetCategories`.

    Raises:
        DecodeError: If a category and its type disagree.
        ValueError: If the domain types reject a member.
    """
    if message is None:
        return TargetIds()
    kind, value = _oneof(message, "components")
    if kind == "component_ids":
        return TargetIds(*value.ids)
    if kind == "component_categories":
        return TargetCategories(*(_CATEGORY.from_wire(c) for c in value.categories))
    if kind == "component_categories_types":
        return TargetCategories(*(_category_and_type_from_pb(c) for c in value.categories))
    return TargetIds()


# --------------------------------------------------------------------- recurrence


def end_criteria_to_pb(criteria: EndCriteria | None) -> pb.RecurrenceRuleEndCriteria | None:
    """Convert end criteria to the wire message (None stays None: no end).

    Args:
        criteria: The end criteria, or None.

    Returns:
        The message with `count` or `until_time` set, or None.
    """
    if criteria is None:
        return None
    if criteria.count is not None:
        return pb.RecurrenceRuleEndCriteria(count=criteria.count)
    return pb.RecurrenceRuleEndCriteria(until_time=criteria.until)


def end_criteria_from_pb(message: pb.RecurrenceRuleEndCriteria | None) -> EndCriteria | None:
    """Convert wire end criteria to the domain type.

    Args:
        message: The message, or None.

    Returns:
        The end criteria; None when unset, or set with neither member.
    """
    if message is None:
        return None
    kind, value = _oneof(message, "count_or_until")
    if kind == "count":
        return EndCriteria(count=value)
    if kind == "until_time":
        return EndCriteria(until=value)
    return None


def recurrence_to_pb(rule: RecurrenceRule) -> pb.RecurrenceRule:
    """Convert a recurrence rule to the wire message.

    Args:
        rule: The rule.

    Returns:
        The message.
    """
    return pb.RecurrenceRule(
        freq=_FREQUENCY.to_wire(rule.frequency),
        interval=rule.interval,
        end_criteria=end_criteria_to_pb(rule.end_criteria),
        byminutes=list(rule.byminutes),
        byhours=list(rule.byhours),
        byweekdays=[_WEEKDAY.to_wire(day) for day in rule.byweekdays],
        bymonthdays=list(rule.bymonthdays),
        bymonths=list(rule.bymonths),
    )


def recurrence_from_pb(message: pb.RecurrenceRule | None) -> RecurrenceRule | None:
    """Convert a wire recurrence rule to the domain type.

    Args:
        message: The message, or None.

    Returns:
        None when the message is unset; otherwise the rule (frequency UNSPECIFIED
        when the message is the API's default, "no recurrence").

    Raises:
        ValueError: If the domain rejects the rule (e.g. interval 0 with a frequency).
    """
    if message is None:
        return None
    return RecurrenceRule(
        frequency=_FREQUENCY.from_wire(message.freq),
        interval=message.interval,
        end_criteria=end_criteria_from_pb(message.end_criteria),
        byminutes=message.byminutes,
        byhours=message.byhours,
        byweekdays=[_WEEKDAY.from_wire(day) for day in message.byweekdays],
        bymonthdays=message.bymonthdays,
        bymonths=message.bymonths,
    )


# ----------------------------------------------------------------------- dispatch


def dispatch_to_pb(dispatch: Dispatch) -> pb.Dispatch:
    """Convert a dispatch to the wire message.

    Args:
        dispatch: The dispatch.

    Returns:
        The message; the payload is always set (an empty Struct for `{}`).

    Raises:
        ValueError: If the payload holds NaN, an infinity or an int beyond ±2**53.
    """
    return pb.Dispatch(
        metadata=pb.DispatchMetadata(
            dispatch_id=dispatch.id,
            create_time=dispatch.create_time,
            update_time=dispatch.update_time,
            end_time=dispatch.end_time,
        ),
        data=pb.DispatchData(
            type=dispatch.type,
            start_time=dispatch.start_time,
            duration=_duration_to_pb(dispatch.duration),
            target=target_to_pb(dispatch.target),
            is_active=dispatch.active,
            is_dry_run=dispatch.dry_run,
            payload=payload_to_pb(dispatch.payload),
            recurrence=None
            if dispatch.recurrence is None
            else recurrence_to_pb(dispatch.recurrence),
        ),
    )


def dispatch_from_pb(message: pb.Dispatch) -> Dispatch:
    """Convert a wire dispatch to the domain type.

    Unset parts read as protobuf defaults: missing required times as the epoch, a
    missing target as `TargetIds()`, a missing payload as `{}`.

    Args:
        message: The message.

    Returns:
        The dispatch.

    Raises:
        ValueError: If the domain types reject the content (`DecodeError` for
            inconsistencies only the wire format can have).
    """
    metadata = message.metadata or pb.DispatchMetadata()
    data = message.data or pb.DispatchData()
    return Dispatch(
        id=metadata.dispatch_id,
        type=data.type,
        start_time=_time_or_epoch(data.start_time),
        duration=_duration_from_pb(data.duration),
        target=target_from_pb(data.target),
        active=data.is_active,
        dry_run=data.is_dry_run,
        payload=payload_from_pb(data.payload),
        recurrence=recurrence_from_pb(data.recurrence),
        create_time=_time_or_epoch(metadata.create_time),
        update_time=_time_or_epoch(metadata.update_time),
        end_time=metadata.end_time,
    )


def _required_dispatch(message: pb.Dispatch | None, what: str) -> Dispatch:
    if message is None:
        raise DecodeError(f"{what} carries no dispatch")
    return dispatch_from_pb(message)


# ------------------------------------------------------------- protobuf's reading

# betterproto2's parser (0.10) departs from protobuf's in several places: it accepts
# truncated fields and invalid wire types silently, replaces a singular sub-message
# sent in parts instead of merging them, keeps every member of a oneof it sees, and
# does not truncate wide enum and bool varints. So the bytes are first read here as
# protobuf reads them, driven by the generated classes' field metadata, and written
# back in canonical form (one value per singular field, parts merged, unknown fields
# dropped), which betterproto2 then parses as protobuf would have parsed the original.

_VARINT_TYPES: Final = {
    "int32": wire.int32,
    "enum": wire.int32,
    "sint32": lambda value: value & wire.MASK32,
    "uint32": lambda value: value & wire.MASK32,
    "int64": lambda value: value & wire.MASK64,
    "uint64": lambda value: value & wire.MASK64,
    "sint64": lambda value: value & wire.MASK64,
    "bool": lambda value: 1 if value & wire.MASK64 else 0,
}
_FIXED_SIZES: Final = {
    "double": 8,
    "fixed64": 8,
    "sfixed64": 8,
    "float": 4,
    "fixed32": 4,
    "sfixed32": 4,
}


class _Field(NamedTuple):
    """What the canonical reading needs of one field of a generated message class."""

    wire_type: int  # the type's own wire type (repeated scalars also accept 2, packed)
    repeated: bool
    group: str | None  # its oneof
    normal: Callable[[int], int] | None  # a varint's reading (int32: low 32 bits, signed)
    size: int  # a fixed-size value's byte count
    message: type[betterproto2.Message] | None  # a sub-message's (or map entry's) class
    utf8: bool
    is_map: bool


@functools.cache
def _fields(message_type: type[betterproto2.Message]) -> dict[int, _Field]:
    """The fields of a generated message class by number."""
    # betterproto2's per-class field metadata (a class property its stubs type oddly).
    meta: Any = message_type._betterproto  # type: ignore[arg-type]
    fields: dict[int, _Field] = {}
    for name, field in meta.meta_by_field_name.items():
        kind = field.proto_type
        message: type[betterproto2.Message] | None = None
        if kind == "message":
            message = field.unwrap() if field.unwrap else meta.cls_by_field[name]
        elif kind == "map":
            message = meta.cls_by_field[name]
        normal = _VARINT_TYPES.get(kind)
        size = _FIXED_SIZES.get(kind, 0)
        fields[field.number] = _Field(
            wire_type=0 if normal else 1 if size == 8 else 5 if size == 4 else 2,
            repeated=bool(field.repeated) or kind == "map",
            group=field.group,
            normal=normal,
            size=size,
            message=message,
            utf8=kind == "string",
            is_map=kind == "map",
        )
    return fields


def _canonical(data: bytes, message_type: type[betterproto2.Message], depth: int = 0) -> bytes:
    """Read `data` as protobuf reads a `message_type`; return it in canonical form.

    Raises:
        DecodeError: For what protobuf rejects (see `_read`).
    """
    return _read(data, message_type, depth)[0]


def _read(data: bytes, message_type: type[betterproto2.Message], depth: int) -> tuple[bytes, bool]:
    """Read `data` as protobuf reads a `message_type`, noting unknown fields.

    Returns:
        The canonical form, and whether the message held unknown fields of its own
        (which takes a map entry out of its map, as upb does).

    Raises:
        DecodeError: For what protobuf rejects: truncated fields, overlong varints or
            keys, field number 0, wire types 6 and 7, unbalanced groups, invalid
            UTF-8 in a string, nesting beyond 100 levels.
        IndexError: For a varint running past the end (a truncated field).
    """
    if depth > wire.MAX_DEPTH:
        raise wire.too_deep()
    fields = _fields(message_type)
    values: dict[int, list[bytes]] = {}  # each field's values, canonical, in wire order
    parts: dict[int, list[bytes]] = {}  # a singular sub-message's parts, to merge
    chosen: dict[str, int] = {}  # each oneof's member seen last
    unknown = False
    pos, end = 0, len(data)
    while pos < end:
        key, pos = wire.key(data, pos)
        number = key >> 3
        field = fields.get(number)
        wire_type = key & 7
        if field is None or not (
            wire_type == field.wire_type or (wire_type == 2 and field.repeated)
        ):
            pos = wire.skip(data, pos, end, key, depth)  # protobuf keeps it as unknown
            unknown = True
            continue
        if field.group is not None:
            # Setting a oneof member clears the member set before (protobuf's rule).
            previous = chosen.get(field.group)
            if previous is not None and previous != number:
                values.pop(previous, None)
                replaced = parts.pop(previous, None)
                if replaced:  # protobuf parsed it before replacing it: it must parse
                    _merge(replaced, fields[previous].message, depth + 1)
            chosen[field.group] = number
        found = values.setdefault(number, []) if field.repeated else []
        if wire_type == 0:
            value, pos = wire.varint(data, pos)
            found.append(wire.varint_bytes(field.normal(value) & wire.MASK64))  # type: ignore[misc]
        elif wire_type != 2:
            start, pos = pos, pos + field.size
            if pos > end:
                raise wire.truncated(key)
            found.append(data[start:pos])
        else:
            start, pos = wire.span(data, pos, end, key)
            content = data[start:pos]
            if field.message is not None:
                if not field.repeated:  # read once all parts are known (below)
                    parts.setdefault(number, []).append(content)
                    continue
                canonical, odd = _read(content, field.message, depth + 1)
                if not (odd and field.is_map):  # upb keeps such an entry out of its map
                    found.append(canonical)
            elif field.normal is not None:  # packed varints
                at = start
                while at < pos:
                    value, at = wire.varint(data, at)
                    found.append(wire.varint_bytes(field.normal(value) & wire.MASK64))
                if at != pos:
                    raise DecodeError(f"field {number}'s last packed varint runs past its end")
            elif field.size:  # packed fixed-size values
                if len(content) % field.size:
                    raise DecodeError(f"field {number}'s packed values do not fill it")
                found.extend(
                    content[at : at + field.size] for at in range(0, len(content), field.size)
                )
            else:
                if field.utf8:
                    content.decode()
                found.append(content)
        if not field.repeated:
            values[number] = found  # a singular scalar: the last value wins
    for number, merged in parts.items():
        values[number] = [_merge(merged, fields[number].message, depth + 1)]
    out = bytearray()
    for number in sorted(values):
        field = fields[number]
        if field.wire_type == 2:
            for item in values[number]:
                wire.put_varint(out, number << 3 | 2)
                wire.put_varint(out, len(item))
                out += item
        elif field.repeated:  # scalars: packed
            packed = b"".join(values[number])
            wire.put_varint(out, number << 3 | 2)
            wire.put_varint(out, len(packed))
            out += packed
        else:
            wire.put_varint(out, number << 3 | field.wire_type)
            out += values[number][-1]
    return bytes(out), unknown


def _merge(parts: list[bytes], message_type: Any, depth: int) -> bytes:
    """The canonical form of a sub-message sent in parts: their merge.

    That is parsing their concatenation, once each part is known to end where it
    should (no field running from one part into the next).
    """
    if len(parts) > 1:
        for part in parts:
            wire.skip_message(part, 0, len(part), depth)
    return _read(b"".join(parts), message_type, depth)[0]


# ------------------------------------------------------------------ decoding guard


class _decoding:  # lowercase: it reads like a function, `with _decoding("X"):`
    """Turn every failure while decoding a message into a `DecodeError`.

    Also silences the DeprecationWarning the generated code emits when a message uses
    the deprecated `component_categories` target: receiving one is not the caller's
    fault, and it is decoded correctly. (`catch_warnings` is process-global; decoding
    is synchronous, so no other task runs inside the block.)
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._warnings = warnings.catch_warnings()

    def __enter__(self) -> None:
        self._warnings.__enter__()
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, module=r"dispatch_client\._proto\."
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._warnings.__exit__(exc_type, exc, traceback)
        if exc is None or isinstance(exc, DecodeError) or not isinstance(exc, Exception):
            return
        # betterproto2 signals bad bytes with whatever its parser hits (EOFError,
        # KeyError, UnicodeDecodeError, OverflowError for out-of-range times, ...), and
        # the domain types reject bad content with ValueError or TypeError.
        raise DecodeError(f"invalid {self._what}: {exc}") from exc


# ------------------------------------------------------------------- list filters


def _filter_to_pb(dispatch_filter: DispatchFilter) -> pb.DispatchFilter:
    return pb.DispatchFilter(
        targets=[target_to_pb(target) for target in dispatch_filter.targets],
        is_active=dispatch_filter.active,
        is_dry_run=dispatch_filter.dry_run,
        is_recurring=dispatch_filter.recurring,
        start_time_interval=_interval_to_pb(dispatch_filter.start_time),
        end_time_interval=_interval_to_pb(dispatch_filter.end_time),
        update_time_interval=_interval_to_pb(dispatch_filter.update_time),
        dispatch_ids=list(dispatch_filter.dispatch_ids),
        queries=list(dispatch_filter.queries),
    )


def _filter_from_pb(message: pb.DispatchFilter | None) -> DispatchFilter:
    if message is None:
        return DispatchFilter()
    kind, value = _oneof(message, "recurrence")
    # The other member, `filter`, is an empty placeholder message in this API version.
    recurring = value if kind == "is_recurring" else None
    return DispatchFilter(
        targets=[target_from_pb(target) for target in message.targets],
        active=message.is_active,
        dry_run=message.is_dry_run,
        recurring=recurring,
        start_time=_interval_from_pb(message.start_time_interval),
        end_time=_interval_from_pb(message.end_time_interval),
        update_time=_interval_from_pb(message.update_time_interval),
        dispatch_ids=message.dispatch_ids,
        queries=message.queries,
    )


# ---------------------------------------------------------------- list: requests


def encode_list_request(request: ListRequest) -> bytes:
    """Encode a list request.

    The filter is always sent; sort options only when one of them is specified;
    pagination carries `page_token` if set, else `page_size` if set.

    Args:
        request: The request.

    Returns:
        The serialized `ListMicrogridDispatchesRequest`.
    """
    pagination: pb_pagination.PaginationParams | None = None
    if request.page_token is not None:
        pagination = pb_pagination.PaginationParams(page_token=request.page_token)
    elif request.page_size is not None:
        pagination = pb_pagination.PaginationParams(page_size=request.page_size)
    sort_options: pb.SortOptions | None = None
    if request.sort_field != SortField.UNSPECIFIED or request.sort_order != SortOrder.UNSPECIFIED:
        sort_options = pb.SortOptions(
            sort_field=_SORT_FIELD.to_wire(request.sort_field),
            sort_order=_SORT_ORDER.to_wire(request.sort_order),
        )
    message = pb.ListMicrogridDispatchesRequest(
        microgrid_id=request.microgrid_id,
        filter=_filter_to_pb(request.filter),
        sort_options=sort_options,
        pagination_params=pagination,
    )
    return bytes(message)


def decode_list_request(data: bytes) -> ListRequest:
    """Decode a list request (server side).

    A page size of 0 and an empty page token read as unset.

    Args:
        data: The serialized `ListMicrogridDispatchesRequest`.

    Returns:
        The request.

    Raises:
        DecodeError: If the bytes or their content are invalid.
    """
    with _decoding("ListMicrogridDispatchesRequest"):
        message = pb.ListMicrogridDispatchesRequest.parse(
            _canonical(data, pb.ListMicrogridDispatchesRequest)
        )
        page_size: int | None = None
        page_token: str | None = None
        if message.pagination_params is not None:
            kind, value = _oneof(message.pagination_params, "params")
            if kind == "page_size" and value:
                page_size = value
            elif kind == "page_token" and value:
                page_token = value
        sort = message.sort_options or pb.SortOptions()
        return ListRequest(
            microgrid_id=message.microgrid_id,
            filter=_filter_from_pb(message.filter),
            sort_field=_SORT_FIELD.from_wire(sort.sort_field),
            sort_order=_SORT_ORDER.from_wire(sort.sort_order),
            page_size=page_size,
            page_token=page_token,
        )


# --------------------------------------------------------------- list: responses


def encode_list_response(
    dispatches: Iterable[Dispatch], *, next_page_token: str | None, total_items: int
) -> bytes:
    """Encode a list response (server side).

    Args:
        dispatches: The dispatches on this page.
        next_page_token: The token of the next page, or None on the last page.
        total_items: How many dispatches the whole listing has.

    Returns:
        The serialized `ListMicrogridDispatchesResponse`.

    Raises:
        ValueError: If `total_items` does not fit the wire's uint32.
    """
    if isinstance(total_items, bool) or not 0 <= total_items <= _UINT32_MAX:
        raise ValueError(f"total_items must be in 0..{_UINT32_MAX}, got {total_items!r}")
    message = pb.ListMicrogridDispatchesResponse(
        dispatches=[dispatch_to_pb(dispatch) for dispatch in dispatches],
        pagination_info=pb_pagination.PaginationInfo(
            total_items=total_items, next_page_token=next_page_token
        ),
    )
    return bytes(message)


def decode_list_response(data: bytes) -> ListPage:
    """Decode a list response.

    Args:
        data: The serialized `ListMicrogridDispatchesResponse`.

    Returns:
        The page: dispatches, the next page token (None when absent or empty) and the
        total count (0 when the server sent no pagination info).

    Raises:
        DecodeError: If the bytes or their content are invalid.
    """
    with _decoding("ListMicrogridDispatchesResponse"):
        message = pb.ListMicrogridDispatchesResponse.parse(
            _canonical(data, pb.ListMicrogridDispatchesResponse)
        )
        info = message.pagination_info or pb_pagination.PaginationInfo()
        return ListPage(
            dispatches=[dispatch_from_pb(dispatch) for dispatch in message.dispatches],
            next_page_token=info.next_page_token or None,
            total_items=info.total_items,
        )


# --------------------------------------------------------------------------- create


def _dispatch_data_for_create(request: CreateRequest) -> pb.DispatchData:
    return pb.DispatchData(
        type=request.type,
        start_time=None if request.start_time == "NOW" else request.start_time,
        duration=_duration_to_pb(request.duration),
        target=target_to_pb(request.target),
        is_active=request.active,
        is_dry_run=request.dry_run,
        payload=payload_to_pb(request.payload),
        recurrence=None if request.recurrence is None else recurrence_to_pb(request.recurrence),
    )


def encode_create_request(request: CreateRequest) -> bytes:
    """Encode a create request.

    `start_time="NOW"` is sent as an unset start time plus `start_immediately=true`;
    otherwise `start_immediately` is left unset.

    Args:
        request: The request.

    Returns:
        The serialized `CreateMicrogridDispatchRequest`.
    """
    message = pb.CreateMicrogridDispatchRequest(
        microgrid_id=request.microgrid_id,
        dispatch_data=_dispatch_data_for_create(request),
        start_immediately=True if request.start_time == "NOW" else None,
    )
    return bytes(message)


def decode_create_request(data: bytes) -> CreateRequest:
    """Decode a create request (server side).

    Args:
        data: The serialized `CreateMicrogridDispatchRequest`.

    Returns:
        The request; `start_time` is "NOW" when `start_immediately` is true.

    Raises:
        DecodeError: If the bytes or their content are invalid, or the request has
            neither a start time nor `start_immediately`.
    """
    with _decoding("CreateMicrogridDispatchRequest"):
        message = pb.CreateMicrogridDispatchRequest.parse(
            _canonical(data, pb.CreateMicrogridDispatchRequest)
        )
        dispatch = message.dispatch_data or pb.DispatchData()
        start_time: datetime | Literal["NOW"]
        if message.start_immediately:
            start_time = "NOW"
        elif dispatch.start_time is not None:
            start_time = dispatch.start_time
        else:
            raise DecodeError("create request has neither a start time nor start_immediately")
        return CreateRequest(
            microgrid_id=message.microgrid_id,
            type=dispatch.type,
            start_time=start_time,
            duration=_duration_from_pb(dispatch.duration),
            target=target_from_pb(dispatch.target),
            active=dispatch.is_active,
            dry_run=dispatch.is_dry_run,
            payload=payload_from_pb(dispatch.payload),
            recurrence=recurrence_from_pb(dispatch.recurrence),
        )


def encode_create_response(dispatch: Dispatch) -> bytes:
    """Encode a create response (server side).

    Args:
        dispatch: The created dispatch.

    Returns:
        The serialized `CreateMicrogridDispatchResponse`.
    """
    return bytes(pb.CreateMicrogridDispatchResponse(dispatch=dispatch_to_pb(dispatch)))


def decode_create_response(data: bytes) -> Dispatch:
    """Decode a create response.

    Args:
        data: The serialized `CreateMicrogridDispatchResponse`.

    Returns:
        The created dispatch.

    Raises:
        DecodeError: If the bytes or their content are invalid, or carry no dispatch.
    """
    with _decoding("CreateMicrogridDispatchResponse"):
        message = pb.CreateMicrogridDispatchResponse.parse(
            _canonical(data, pb.CreateMicrogridDispatchResponse)
        )
        return _required_dispatch(message.dispatch, "create response")


# --------------------------------------------------------------------------- update

_RECURRENCE_FIELDS: Final = {
    "recurrence.freq": "freq",
    "recurrence.interval": "interval",
    "recurrence.end_criteria": "end_criteria",
    "recurrence.byminutes": "byminutes",
    "recurrence.byhours": "byhours",
    "recurrence.byweekdays": "byweekdays",
    "recurrence.bymonthdays": "bymonthdays",
    "recurrence.bymonths": "bymonths",
}


def _recurrence_update_value(path: str, value: Any) -> Any:
    if path == "recurrence.freq":
        return _FREQUENCY.to_wire(value)
    if path == "recurrence.end_criteria":
        return end_criteria_to_pb(value)
    if path == "recurrence.byweekdays":
        return [_WEEKDAY.to_wire(day) for day in value]
    if path == "recurrence.interval":
        return value
    return list(value)


def encode_update_request(request: UpdateRequest) -> bytes:
    """Encode an update request: the mask paths plus the new values.

    A cleared field (`duration` or `recurrence.end_criteria` set to None) is named in
    the mask and left unset in the update.

    Args:
        request: The request.

    Returns:
        The serialized `UpdateMicrogridDispatchRequest`.
    """
    update: dict[str, Any] = {}
    recurrence: dict[str, Any] = {}
    for path, value in request.fields.items():
        if path in _RECURRENCE_FIELDS:
            recurrence[_RECURRENCE_FIELDS[path]] = _recurrence_update_value(path, value)
        elif path == "start_time":
            update["start_time"] = value
        elif path == "duration":
            update["duration"] = _duration_to_pb(value)
        elif path == "target":
            update["target"] = target_to_pb(value)
        elif path == "is_active":
            update["is_active"] = value
        elif path == "payload":
            update["payload"] = payload_to_pb(value)
    if recurrence:
        update["recurrence"] = pb.UpdateMicrogridDispatchRequestDispatchUpdateRecurrenceRuleUpdate(
            **recurrence
        )
    message = pb.UpdateMicrogridDispatchRequest(
        microgrid_id=request.microgrid_id,
        dispatch_id=request.dispatch_id,
        update_mask=pb_wkt.FieldMask(paths=list(request.fields)),
        update=pb.UpdateMicrogridDispatchRequestDispatchUpdate(**update),
    )
    return bytes(message)


def _update_value_from_pb(
    path: str,
    update: pb.UpdateMicrogridDispatchRequestDispatchUpdate,
) -> Any:
    """Read the new value for one mask path; unset scalars read as protobuf defaults."""
    if path == "start_time":
        if update.start_time is None:
            raise DecodeError("the update mask names start_time, but no start time is given")
        return update.start_time
    if path == "duration":
        return _duration_from_pb(update.duration)
    if path == "target":
        if update.target is None:
            raise DecodeError("the update mask names target, but no target is given")
        return target_from_pb(update.target)
    if path == "is_active":
        return bool(update.is_active)
    if path == "payload":
        return payload_from_pb(update.payload)
    rule = (
        update.recurrence or pb.UpdateMicrogridDispatchRequestDispatchUpdateRecurrenceRuleUpdate()
    )
    if path == "recurrence.freq":
        return _FREQUENCY.from_wire(rule.freq or 0)
    if path == "recurrence.interval":
        return rule.interval or 0
    if path == "recurrence.end_criteria":
        return end_criteria_from_pb(rule.end_criteria)
    if path == "recurrence.byweekdays":
        return [_WEEKDAY.from_wire(day) for day in rule.byweekdays]
    return list(getattr(rule, _RECURRENCE_FIELDS[path]))


def decode_update_request(data: bytes) -> UpdateRequest:
    """Decode an update request (server side).

    Args:
        data: The serialized `UpdateMicrogridDispatchRequest`.

    Returns:
        The request, its fields keyed by mask path.

    Raises:
        DecodeError: If the bytes or their content are invalid, the mask is empty or
            names a path the API does not have.
    """
    with _decoding("UpdateMicrogridDispatchRequest"):
        message = pb.UpdateMicrogridDispatchRequest.parse(
            _canonical(data, pb.UpdateMicrogridDispatchRequest)
        )
        paths = list(message.update_mask.paths) if message.update_mask else []
        unknown = [path for path in paths if path not in UPDATE_PATHS]
        if unknown:
            raise DecodeError(f"unknown update-mask path(s): {', '.join(map(repr, unknown))}")
        update = message.update or pb.UpdateMicrogridDispatchRequestDispatchUpdate()
        fields = {path: _update_value_from_pb(path, update) for path in paths}
        return UpdateRequest(
            microgrid_id=message.microgrid_id, dispatch_id=message.dispatch_id, fields=fields
        )


def encode_update_response(dispatch: Dispatch) -> bytes:
    """Encode an update response (server side).

    Args:
        dispatch: The updated dispatch.

    Returns:
        The serialized `UpdateMicrogridDispatchResponse`.
    """
    return bytes(pb.UpdateMicrogridDispatchResponse(dispatch=dispatch_to_pb(dispatch)))


def decode_update_response(data: bytes) -> Dispatch:
    """Decode an update response.

    Args:
        data: The serialized `UpdateMicrogridDispatchResponse`.

    Returns:
        The updated dispatch.

    Raises:
        DecodeError: If the bytes or their content are invalid, or carry no dispatch.
    """
    with _decoding("UpdateMicrogridDispatchResponse"):
        message = pb.UpdateMicrogridDispatchResponse.parse(
            _canonical(data, pb.UpdateMicrogridDispatchResponse)
        )
        return _required_dispatch(message.dispatch, "update response")


# ----------------------------------------------------------------------- get/delete


def _ref(microgrid_id: int, dispatch_id: int) -> DispatchRef:
    return DispatchRef(check_id("microgrid_id", microgrid_id), check_id("dispatch_id", dispatch_id))


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
    ref = _ref(microgrid_id, dispatch_id)
    return bytes(pb.GetMicrogridDispatchRequest(microgrid_id=ref[0], dispatch_id=ref[1]))


def decode_get_request(data: bytes) -> DispatchRef:
    """Decode a get request (server side).

    Args:
        data: The serialized `GetMicrogridDispatchRequest`.

    Returns:
        The microgrid and dispatch ids.

    Raises:
        DecodeError: If the bytes are invalid or an id is 0 (unset).
    """
    with _decoding("GetMicrogridDispatchRequest"):
        message = pb.GetMicrogridDispatchRequest.parse(
            _canonical(data, pb.GetMicrogridDispatchRequest)
        )
        return _ref(message.microgrid_id, message.dispatch_id)


def encode_get_response(dispatch: Dispatch, *, microgrid_id: int) -> bytes:
    """Encode a get response (server side).

    Args:
        dispatch: The dispatch.
        microgrid_id: The microgrid it belongs to.

    Returns:
        The serialized `GetMicrogridDispatchResponse`.
    """
    message = pb.GetMicrogridDispatchResponse(
        microgrid_id=check_id("microgrid_id", microgrid_id), dispatch=dispatch_to_pb(dispatch)
    )
    return bytes(message)


def decode_get_response(data: bytes) -> Dispatch:
    """Decode a get response.

    Args:
        data: The serialized `GetMicrogridDispatchResponse`.

    Returns:
        The dispatch.

    Raises:
        DecodeError: If the bytes or their content are invalid, or carry no dispatch.
    """
    with _decoding("GetMicrogridDispatchResponse"):
        message = pb.GetMicrogridDispatchResponse.parse(
            _canonical(data, pb.GetMicrogridDispatchResponse)
        )
        return _required_dispatch(message.dispatch, "get response")


def encode_delete_request(microgrid_id: int, dispatch_id: int) -> bytes:
    """Encode a delete request.

    Args:
        microgrid_id: The microgrid (a positive int).
        dispatch_id: The dispatch (a positive int).

    Returns:
        The serialized `DeleteMicrogridDispatchRequest`.

    Raises:
        TypeError: If an id is not an int.
        ValueError: If an id is not positive or too large.
    """
    ref = _ref(microgrid_id, dispatch_id)
    return bytes(pb.DeleteMicrogridDispatchRequest(microgrid_id=ref[0], dispatch_id=ref[1]))


def decode_delete_request(data: bytes) -> DispatchRef:
    """Decode a delete request (server side).

    Args:
        data: The serialized `DeleteMicrogridDispatchRequest`.

    Returns:
        The microgrid and dispatch ids.

    Raises:
        DecodeError: If the bytes are invalid or an id is 0 (unset).
    """
    with _decoding("DeleteMicrogridDispatchRequest"):
        message = pb.DeleteMicrogridDispatchRequest.parse(
            _canonical(data, pb.DeleteMicrogridDispatchRequest)
        )
        return _ref(message.microgrid_id, message.dispatch_id)


def encode_delete_response(microgrid_id: int, dispatch_id: int) -> bytes:
    """Encode a delete response (server side): it echoes the ids.

    Args:
        microgrid_id: The microgrid.
        dispatch_id: The deleted dispatch.

    Returns:
        The serialized `DeleteMicrogridDispatchResponse`.
    """
    ref = _ref(microgrid_id, dispatch_id)
    return bytes(pb.DeleteMicrogridDispatchResponse(microgrid_id=ref[0], dispatch_id=ref[1]))


def decode_delete_response(data: bytes) -> DispatchRef:
    """Decode a delete response.

    The ids are informational and returned as sent (0 when the server left them unset).

    Args:
        data: The serialized `DeleteMicrogridDispatchResponse`.

    Returns:
        The ids the server echoed.

    Raises:
        DecodeError: If the bytes are invalid.
    """
    with _decoding("DeleteMicrogridDispatchResponse"):
        message = pb.DeleteMicrogridDispatchResponse.parse(
            _canonical(data, pb.DeleteMicrogridDispatchResponse)
        )
        return DispatchRef(message.microgrid_id, message.dispatch_id)


# --------------------------------------------------------------------------- stream


def encode_stream_request(microgrid_id: int) -> bytes:
    """Encode a stream request.

    Args:
        microgrid_id: The microgrid (a positive int).

    Returns:
        The serialized `StreamMicrogridDispatchesRequest`.
    """
    return bytes(
        pb.StreamMicrogridDispatchesRequest(microgrid_id=check_id("microgrid_id", microgrid_id))
    )


def decode_stream_request(data: bytes) -> int:
    """Decode a stream request (server side).

    Args:
        data: The serialized `StreamMicrogridDispatchesRequest`.

    Returns:
        The microgrid id.

    Raises:
        DecodeError: If the bytes are invalid or the id is 0 (unset).
    """
    with _decoding("StreamMicrogridDispatchesRequest"):
        message = pb.StreamMicrogridDispatchesRequest.parse(
            _canonical(data, pb.StreamMicrogridDispatchesRequest)
        )
        return check_id("microgrid_id", message.microgrid_id)


def encode_stream_response(event: DispatchEvent) -> bytes:
    """Encode one stream message (server side).

    `DispatchEvent.synthesized` is client-side only and not sent.

    Args:
        event: The event.

    Returns:
        The serialized `StreamMicrogridDispatchesResponse`.
    """
    message = pb.StreamMicrogridDispatchesResponse(
        dispatch=dispatch_to_pb(event.dispatch), event=_EVENT.to_wire(event.event)
    )
    return bytes(message)


def decode_stream_response(data: bytes) -> DispatchEvent:
    """Decode one stream message.

    Args:
        data: The serialized `StreamMicrogridDispatchesResponse`.

    Returns:
        The event (an unknown event number stays visible as `Event.UNKNOWN_<n>`).

    Raises:
        DecodeError: If the bytes or their content are invalid, or carry no dispatch.
    """
    with _decoding("StreamMicrogridDispatchesResponse"):
        message = pb.StreamMicrogridDispatchesResponse.parse(
            _canonical(data, pb.StreamMicrogridDispatchesResponse)
        )
        return DispatchEvent(
            event=_EVENT.from_wire(message.event),
            dispatch=_required_dispatch(message.dispatch, "stream message"),
        )


# --------------------------------------------------------------- rendering for people


_PROTO_PACKAGE: Final = "frequenz.api.dispatch.v1"

# Each method's request and response message class; the full proto names are the
# package plus the class name, which the code generator keeps as in the .proto files.
_MESSAGES_BY_METHOD: Final[
    Mapping[str, tuple[type[betterproto2.Message], type[betterproto2.Message]]]
] = {
    _methods.LIST: (pb.ListMicrogridDispatchesRequest, pb.ListMicrogridDispatchesResponse),
    _methods.STREAM: (pb.StreamMicrogridDispatchesRequest, pb.StreamMicrogridDispatchesResponse),
    _methods.CREATE: (pb.CreateMicrogridDispatchRequest, pb.CreateMicrogridDispatchResponse),
    _methods.UPDATE: (pb.UpdateMicrogridDispatchRequest, pb.UpdateMicrogridDispatchResponse),
    _methods.GET: (pb.GetMicrogridDispatchRequest, pb.GetMicrogridDispatchResponse),
    _methods.DELETE: (pb.DeleteMicrogridDispatchRequest, pb.DeleteMicrogridDispatchResponse),
}


def render_message(
    method: str, direction: Literal["request", "response"], data: bytes
) -> tuple[str, Any] | None:
    """Render one message of a Dispatch API call as canonical proto3 JSON.

    This is what recorded cassettes show next to the wire bytes, so a reviewer reads
    the messages and matchers can ignore single fields. The JSON is the protobuf JSON
    mapping's: lowerCamelCase names, default values left out, 64-bit integers as
    strings, Timestamps in RFC 3339, enums by name, a Struct as plain JSON, a
    FieldMask as one string. One difference remains: Timestamps are rendered to the
    microsecond, as betterproto2 reads them into `datetime`s (this client never sends
    finer ones; the bytes next to the JSON in a cassette stay exact).

    Args:
        method: The call's full method path, e.g. `dispatch_client._methods.GET`.
        direction: `"request"` for the message the client sent, `"response"` for one
            the server sent.
        data: The serialized message.

    Returns:
        `(full proto type name, JSON value)`, or None when the method is not one of
        the Dispatch API's or the bytes do not parse as its message.

    Raises:
        ValueError: If `direction` is neither "request" nor "response".
    """
    if direction not in ("request", "response"):
        raise ValueError(f"direction must be 'request' or 'response', got {direction!r}")
    classes = _MESSAGES_BY_METHOD.get(method)
    if classes is None:
        return None
    message_type = classes[0] if direction == "request" else classes[1]
    try:
        with _decoding(message_type.__name__):
            data = bytes(data)
            message = message_type.parse(_canonical(data, message_type))
            rendered = message.to_dict()
    except DecodeError:
        return None
    if isinstance(message, pb.UpdateMicrogridDispatchRequest) and message.update_mask is not None:
        # betterproto2 renders a FieldMask as a message; the JSON mapping makes it one
        # string of comma-separated lowerCamelCase paths.
        rendered["updateMask"] = ",".join(
            ".".join(_lower_camel(part) for part in path.split("."))
            for path in message.update_mask.paths
        )
    return f"{_PROTO_PACKAGE}.{message_type.__name__}", rendered


def _lower_camel(name: str) -> str:
    """`end_criteria` -> `endCriteria`, as the JSON mapping names fields."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)
