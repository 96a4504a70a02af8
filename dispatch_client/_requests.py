"""What the client sends: validated records for the list, create and update requests.

(And `ListPage`, the one record a list response decodes to, which both decoders share.)

These are domain types, like `_types.py`: nothing here knows about protobuf. The client
builds them from its arguments (so every caller mistake is a `ValueError` or `TypeError`
before any I/O), `_codec` turns them into bytes, and a server (the fake service)
gets them back from `_codec._bridge`'s decoders.

Update requests carry their changes as a mapping from **update-mask path** to value. The
paths are the API's (`is_active`, `recurrence.freq`, ...); `update_from_new_fields()`
accepts the keys the official client takes (`active`, `recurrence.frequency`, a whole
`recurrence`, ...) and maps them.

Payloads are JSON-like and travel as `google.protobuf.Struct`, whose numbers are
doubles: an int must be exactly representable as one (`abs(n) <= 2**53`), and NaN and
infinities are rejected (`check_payload()`).
"""

from __future__ import annotations

import enum
import functools
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple, SupportsIndex

import attrs

from ._official import AnyId, IdKind, example, id_kind_of, typed_id
from ._types import (
    Dispatch,
    EndCriteria,
    Frequency,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetComponents,
    TargetIds,
)

__all__ = [
    "MAX_PAYLOAD_DEPTH",
    "MAX_PAYLOAD_INT",
    "RULE_ATTRIBUTES",
    "UPDATE_PATHS",
    "CreateRequest",
    "DispatchFilter",
    "ListPage",
    "ListRequest",
    "TimeInterval",
    "UpdateRequest",
    "check_id",
    "check_payload",
    "duration_seconds",
    "update_from_new_fields",
]

_UINT32_MAX: Final = 2**32 - 1
_UINT64_MAX: Final = 2**64 - 1
_NO_TIME: Final = timedelta(0)
_DURATION_LIMIT: Final = timedelta(seconds=_UINT32_MAX, microseconds=500_000)
"""The shortest duration too long for the wire's uint32 seconds: 2**32-1 is odd, so
its half second rounds up, to even (see `duration_seconds`)."""

MAX_PAYLOAD_INT: Final = 2**53
"""The largest magnitude of an int in a payload: every int up to it is exactly a double."""

MAX_PAYLOAD_DEPTH: Final = 40
"""How deeply dicts and lists may nest in a payload.

Each level is two protobuf messages (Struct/ListValue and Value) and protobuf parsers
stop at 100 nested messages, so deeper payloads would be rejected by the server.
"""

UPDATE_PATHS: Final = (
    "start_time",
    "duration",
    "target",
    "is_active",
    "payload",
    "recurrence.freq",
    "recurrence.interval",
    "recurrence.end_criteria",
    "recurrence.byminutes",
    "recurrence.byhours",
    "recurrence.byweekdays",
    "recurrence.bymonthdays",
    "recurrence.bymonths",
)
"""Every update-mask path the API accepts, in the order requests list them."""

_RECURRENCE_PREFIX: Final = "recurrence."

# Keys of `update_from_new_fields` that differ from the mask path they send.
_ALIASES: Final = MappingProxyType(
    {"active": "is_active", "recurrence.frequency": "recurrence.freq"}
)
_NOT_UPDATABLE: Final = frozenset({"type", "dry_run", "is_dry_run"})

RULE_ATTRIBUTES: Final = MappingProxyType(
    {
        "recurrence.freq": "frequency",
        "recurrence.interval": "interval",
        "recurrence.end_criteria": "end_criteria",
        "recurrence.byminutes": "byminutes",
        "recurrence.byhours": "byhours",
        "recurrence.byweekdays": "byweekdays",
        "recurrence.bymonthdays": "bymonthdays",
        "recurrence.bymonths": "bymonths",
    }
)
"""The `RecurrenceRule` attribute each recurrence update-mask path sets."""

# ------------------------------------------------------------------- value checks


def _type_name(value: object) -> str:
    return type(value).__name__


def check_id(owner: str, value: object) -> int:
    """Convert an id to int: a positive integer that fits the wire's uint64.

    Integer-like values (`operator.index`) and the official client's typed ids
    (`MicrogridId(1)`, `DispatchId(7)`, recognised by their shape, see `_official`) of
    the kind `owner` names are accepted; bools, floats, Decimals and strs are not.

    Args:
        owner: What the id is, for the messages (`microgrid_id`, `dispatch_id`, ...:
            the name also says which kind of typed id fits).
        value: The id.

    Returns:
        The id as an int.

    Raises:
        TypeError: If the value is a bool, not integer-like, or a typed id of another
            kind.
        ValueError: If it is not in 1..2**64-1.
    """
    if type(value) is int and 1 <= value <= _UINT64_MAX:
        return value  # the common case, without the general conversion below
    if isinstance(value, bool):
        raise TypeError(f"{owner} must be a positive int, got bool: {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        kind = id_kind_of(owner)
        typed = typed_id(owner, value, kind)
        if typed is None:
            raise TypeError(
                f"{owner} must be a positive int or a typed id such as {example(kind)}, "
                f"got {_type_name(value)}: {value!r}"
            ) from None
        number = typed
    if not 1 <= number <= _UINT64_MAX:
        raise ValueError(f"{owner} must be in 1..{_UINT64_MAX}, got {number}")
    return number


def _aware(owner: str, value: object) -> datetime:
    """Check that a value is a timezone-aware datetime.

    Raises:
        TypeError: If it is not a datetime.
        ValueError: If it is naive.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{owner} must be a datetime, got {_type_name(value)}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{owner} must be timezone-aware, got naive {value!r}")
    return value


def _optional_bool(owner: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{owner} must be a bool or None, got {_type_name(value)}: {value!r}")
    return value


def _target(owner: str, value: object) -> TargetComponents:
    if not isinstance(value, TargetIds | TargetCategories):
        raise TypeError(
            f"{owner} must be TargetIds or TargetCategories, got {_type_name(value)}: {value!r}"
        )
    return value


def _sequence(owner: str, values: object) -> list[Any]:
    # A str is iterable, but "abc" is never meant as ("a", "b", "c").
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"{owner} must be a sequence, got {_type_name(values)}: {values!r}")
    return list(values)


def duration_seconds(duration: timedelta) -> int:
    """Round a duration to whole seconds, half to even, as the wire's uint32 carries it.

    Integer arithmetic on microseconds, so long durations round exactly.

    Args:
        duration: A non-negative duration.

    Returns:
        The seconds.
    """
    seconds, micros = divmod(duration // timedelta(microseconds=1), 1_000_000)
    if micros > 500_000 or (micros == 500_000 and seconds % 2):
        seconds += 1
    return int(seconds)


def _duration(owner: str, value: object) -> timedelta | None:
    """Check a duration: None (no duration), or 0..2**32-1 s after rounding.

    Raises:
        TypeError: If it is neither None nor a timedelta.
        ValueError: If it is negative or too long for the wire.
    """
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise TypeError(f"{owner} must be a timedelta or None, got {_type_name(value)}: {value!r}")
    if value < timedelta(0):
        raise ValueError(f"{owner} must not be negative, got {value!r}")
    if duration_seconds(value) > _UINT32_MAX:
        raise ValueError(f"{owner} must be at most {_UINT32_MAX} s, got {value!r}")
    return value


def check_payload(payload: object, owner: str | Callable[[], str] = "payload") -> dict[str, Any]:
    """Check that a payload can travel as a `google.protobuf.Struct`.

    Allowed: dicts with str keys, lists (and tuples, sent as lists), None, bools, str,
    finite floats and ints with `abs(n) <= 2**53` (numbers are doubles on the wire),
    nested at most `MAX_PAYLOAD_DEPTH` levels. The walk is iterative, so a deep payload
    cannot exhaust the stack.

    Args:
        payload: The payload.
        owner: What the payload is, for the messages (or a function giving it, called
            only for an error).

    Returns:
        The payload, unchanged.

    Raises:
        TypeError: For a payload that is not a dict, a non-str key, or a value of
            another type.
        ValueError: For NaN, an infinity, an int too large for a double, or nesting
            deeper than `MAX_PAYLOAD_DEPTH`.
    """
    if not isinstance(payload, dict):
        raise TypeError(
            f"{_path(owner, None)} must be a dict, got {_type_name(payload)}: {payload!r}"
        )
    # Containers wait on the stack with a trail of keys back to the root (a linked
    # tuple): the path text, `owner['a'][1]`, is only built for an error message.
    stack: list[tuple[dict[Any, Any] | list[Any] | tuple[Any, ...], int, _Trail]] = [
        (payload, 1, None)
    ]
    while stack:
        node, depth, trail = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            raise ValueError(f"{_path(owner, trail)} nests deeper than {MAX_PAYLOAD_DEPTH} levels")
        if isinstance(node, dict):
            for key in node:
                if type(key) is not str and not isinstance(key, str):
                    raise TypeError(
                        f"{_path(owner, trail)} has a non-str key {key!r} ({_type_name(key)})"
                    )
            items: Iterable[tuple[object, object]] = node.items()
        else:
            items = enumerate(node)
        for key, item in items:
            kind = type(item)
            # The common exact types first; subclasses take the general checks below.
            if kind is str or kind is bool or item is None:
                continue
            if kind is float:
                if not math.isfinite(item):  # type: ignore[arg-type]
                    raise ValueError(_not_finite(owner, (trail, key), item))
                continue
            if isinstance(item, dict | list | tuple):
                stack.append((item, depth + 1, (trail, key)))
            elif isinstance(item, bool | str):
                continue
            elif isinstance(item, int):
                if abs(item) > MAX_PAYLOAD_INT:
                    raise ValueError(
                        f"{_path(owner, (trail, key))} = {item} is not exactly representable "
                        f"as a double (payload numbers are doubles; ints must be within ±2**53)"
                    )
            elif isinstance(item, float):
                if not math.isfinite(item):
                    raise ValueError(_not_finite(owner, (trail, key), item))
            else:
                raise TypeError(
                    f"{_path(owner, (trail, key))} must be None, bool, int, float, str, list "
                    f"or dict, got {_type_name(item)}: {item!r}"
                )
    return payload


_Trail = tuple[Any, object] | None
"""The keys from a payload's root to a node, innermost last: `(parent's trail, key)`."""


def _path(owner: str | Callable[[], str], trail: _Trail) -> str:
    """The path of a payload node for messages, e.g. `payload['limits'][0]`."""
    keys: list[object] = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    name = owner if isinstance(owner, str) else owner()
    return name + "".join(f"[{key!r}]" for key in reversed(keys))


def _not_finite(owner: str | Callable[[], str], trail: _Trail, value: object) -> str:
    return f"{_path(owner, trail)} = {value!r}: NaN and infinities cannot be sent"


# ------------------------------------------------------------------ attrs validators


def _owner(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _id_to_int(value: AnyId, kind: IdKind) -> int:
    """Convert an id of `kind` (an integer-like value or a typed id) to int, if it is one.

    Anything else (a bool, a str, a typed id of another kind) passes through unchanged
    for `_check_id` to reject with the field's name in the message.
    """
    if isinstance(value, bool):
        return value
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        pass
    try:
        typed = typed_id(kind, value, kind)
    except TypeError:
        typed = None
    return value if typed is None else typed  # type: ignore[return-value]


def _to_microgrid_id(value: AnyId) -> int:
    """attrs converter for microgrid ids (see `_id_to_int`)."""
    return _id_to_int(value, "microgrid")


def _to_dispatch_id(value: AnyId) -> int:
    """attrs converter for dispatch ids (see `_id_to_int`)."""
    return _id_to_int(value, "dispatch")


# The validators below test the common valid case first and name the field (`_owner`,
# a formatted string) only on the way to an error: records are built on every call.


def _check_id(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    """attrs validator: an id in 1..2**64-1."""
    if type(value) is not int or not 1 <= value <= _UINT64_MAX:
        check_id(_owner(instance, attribute), value)


def _check_optional_aware(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: None or a timezone-aware datetime."""
    if value is None or (
        isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None
    ):
        return
    _aware(_owner(instance, attribute), value)


def _check_optional_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: None or a bool."""
    if value is not None and value is not True and value is not False:
        _optional_bool(_owner(instance, attribute), value)


def _check_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: exactly a bool."""
    if not isinstance(value, bool):
        raise TypeError(
            f"{_owner(instance, attribute)} must be a bool, got {_type_name(value)}: {value!r}"
        )


def _check_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a str."""
    if not isinstance(value, str):
        raise TypeError(
            f"{_owner(instance, attribute)} must be a str, got {_type_name(value)}: {value!r}"
        )


def _check_target(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: TargetIds or TargetCategories."""
    if not isinstance(value, TargetIds | TargetCategories):
        _target(_owner(instance, attribute), value)


def _check_duration(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: None or a duration the wire can carry."""
    if value is None or (type(value) is timedelta and _NO_TIME <= value < _DURATION_LIMIT):
        return
    _duration(_owner(instance, attribute), value)


def _check_payload_field(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a payload `check_payload` accepts."""
    check_payload(value, functools.partial(_owner, instance, attribute))


# ------------------------------------------------------------------------ filters


def _check_interval_order(instance: TimeInterval) -> None:
    if instance.start is not None and instance.end is not None and instance.start > instance.end:
        raise ValueError(
            f"TimeInterval.start must not be after its end, got {instance.start!r} > "
            f"{instance.end!r}"
        )


@attrs.frozen(kw_only=True)
class TimeInterval:
    """A time window for a list filter: `start <= t < end`; a None bound is open."""

    start: datetime | None = attrs.field(default=None, validator=_check_optional_aware)
    """The inclusive lower bound, or None."""
    end: datetime | None = attrs.field(default=None, validator=_check_optional_aware)
    """The exclusive upper bound, or None."""

    def __attrs_post_init__(self) -> None:
        """Check the bounds' order.

        Raises:
            ValueError: If `start` is after `end`.
        """
        _check_interval_order(self)


def _check_optional_interval(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    """attrs validator: None or a TimeInterval."""
    if value is not None and not isinstance(value, TimeInterval):
        raise TypeError(
            f"{_owner(instance, attribute)} must be a TimeInterval or None, "
            f"got {_type_name(value)}: {value!r}"
        )


def _targets(values: Iterable[TargetComponents]) -> tuple[TargetComponents, ...]:
    items = _sequence("DispatchFilter.targets", values)
    return tuple(_target(f"DispatchFilter.targets[{i}]", v) for i, v in enumerate(items))


def _dispatch_ids(values: Iterable[AnyId]) -> tuple[int, ...]:
    items = _sequence("DispatchFilter.dispatch_ids", values)
    return tuple(check_id(f"DispatchFilter.dispatch_ids[{i}]", v) for i, v in enumerate(items))


def _queries(values: Iterable[str]) -> tuple[str, ...]:
    items = _sequence("DispatchFilter.queries", values)
    for i, query in enumerate(items):
        if not isinstance(query, str):
            raise TypeError(
                f"DispatchFilter.queries[{i}] must be a str, got {_type_name(query)}: {query!r}"
            )
    return tuple(items)


@attrs.frozen(kw_only=True)
class DispatchFilter:
    """Which dispatches a list request returns; every criterion left at None or () matches all.

    Criteria combine with AND; the members of `targets`, `dispatch_ids` and `queries`
    each combine with OR. A query `#4` matches dispatch id 4; other text matches the
    dispatch type as a substring.
    """

    targets: tuple[TargetComponents, ...] = attrs.field(default=(), converter=_targets)
    """Dispatches targeting any of these."""
    active: bool | None = attrs.field(default=None, validator=_check_optional_bool)
    """Only active (True) or inactive (False) dispatches."""
    dry_run: bool | None = attrs.field(default=None, validator=_check_optional_bool)
    """Only dry-run (True) or real (False) dispatches."""
    recurring: bool | None = attrs.field(default=None, validator=_check_optional_bool)
    """Only recurring (True) or one-off (False) dispatches."""
    start_time: TimeInterval | None = attrs.field(default=None, validator=_check_optional_interval)
    """Dispatches whose start time lies in this window."""
    end_time: TimeInterval | None = attrs.field(default=None, validator=_check_optional_interval)
    """Dispatches whose end time lies in this window."""
    update_time: TimeInterval | None = attrs.field(default=None, validator=_check_optional_interval)
    """Dispatches last changed in this window."""
    dispatch_ids: tuple[int, ...] = attrs.field(default=(), converter=_dispatch_ids)
    """Dispatches with any of these ids."""
    queries: tuple[str, ...] = attrs.field(default=(), converter=_queries)
    """Free-text queries (see the class docstring)."""


# --------------------------------------------------------------------------- list


def _optional_page_size(value: SupportsIndex | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"ListRequest.page_size must be an int, got bool: {value!r}")
    try:
        size = operator.index(value)
    except TypeError:
        raise TypeError(
            f"ListRequest.page_size must be an int, got {_type_name(value)}: {value!r}"
        ) from None
    if not 1 <= size <= _UINT32_MAX:
        raise ValueError(f"ListRequest.page_size must be in 1..{_UINT32_MAX}, got {size}")
    return size


def _optional_page_token(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"ListRequest.page_token must be a str, got {_type_name(value)}: {value!r}")
    if not value:
        raise ValueError("ListRequest.page_token must not be empty (an empty token ends a list)")
    return value


def _filter(value: DispatchFilter) -> DispatchFilter:
    if not isinstance(value, DispatchFilter):
        raise TypeError(
            f"ListRequest.filter must be a DispatchFilter, got {_type_name(value)}: {value!r}"
        )
    return value


def _sort_field(value: SortField | int) -> SortField:
    if isinstance(value, SortField):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ListRequest.sort_field must be a SortField, got {value!r}")
    return SortField(value)


def _sort_order(value: SortOrder | int) -> SortOrder:
    if isinstance(value, SortOrder):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ListRequest.sort_order must be a SortOrder, got {value!r}")
    return SortOrder(value)


class ListPage(NamedTuple):
    """One page of a dispatch listing, as decoded from a list response."""

    dispatches: list[Dispatch]
    """The dispatches on this page."""
    next_page_token: str | None
    """The token for the next page; None (also for an empty token) on the last page."""
    total_items: int
    """How many dispatches the whole listing has, as the server counts them."""


@attrs.frozen(kw_only=True)
class ListRequest:
    """One request for a page of a microgrid's dispatches.

    The first request of a listing may carry `page_size`; the following ones carry only
    the `page_token` the previous page returned (never both).
    """

    microgrid_id: int = attrs.field(converter=_to_microgrid_id, validator=_check_id)
    """The microgrid."""
    filter: DispatchFilter = attrs.field(factory=DispatchFilter, converter=_filter)
    """Which dispatches to return."""
    sort_field: SortField = attrs.field(default=SortField.UNSPECIFIED, converter=_sort_field)
    """What to sort by; UNSPECIFIED leaves it to the server."""
    sort_order: SortOrder = attrs.field(default=SortOrder.UNSPECIFIED, converter=_sort_order)
    """Which way to sort; UNSPECIFIED leaves it to the server."""
    page_size: int | None = attrs.field(default=None, converter=_optional_page_size)
    """The largest page wanted (1..2**32-1), or None for the server's default."""
    page_token: str | None = attrs.field(default=None, converter=_optional_page_token)
    """The token of the page to fetch, from the previous page's response."""

    def __attrs_post_init__(self) -> None:
        """Check that at most one of `page_size` and `page_token` is set.

        Raises:
            ValueError: If both are.
        """
        if self.page_size is not None and self.page_token is not None:
            raise ValueError(
                "ListRequest takes page_size (first page) or page_token (later pages), not both"
            )


# ------------------------------------------------------------------------- create


def _start_time(value: datetime | Literal["NOW"]) -> datetime | Literal["NOW"]:
    if value == "NOW":
        return "NOW"
    if isinstance(value, str):
        raise ValueError(
            f'CreateRequest.start_time must be a timezone-aware datetime or "NOW", got {value!r}'
        )
    return _aware("CreateRequest.start_time", value)


def _check_recurrence(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: None or a RecurrenceRule."""
    if value is not None and not isinstance(value, RecurrenceRule):
        raise TypeError(
            f"{_owner(instance, attribute)} must be a RecurrenceRule or None, "
            f"got {_type_name(value)}: {value!r}"
        )


@attrs.frozen(kw_only=True)
class CreateRequest:
    """A request to create a dispatch.

    `start_time="NOW"` asks the server to start the dispatch immediately (it is sent as
    an unset start time plus `start_immediately`). Checking that a datetime lies in the
    future is the client's business: it needs a clock, this record does not.
    """

    microgrid_id: int = attrs.field(converter=_to_microgrid_id, validator=_check_id)
    """The microgrid."""
    type: str = attrs.field(validator=_check_str)
    """The user-defined kind of dispatch."""
    start_time: datetime | Literal["NOW"] = attrs.field(converter=_start_time)
    """When the first run starts (timezone-aware), or "NOW"."""
    duration: timedelta | None = attrs.field(validator=_check_duration)
    """How long each run lasts (rounded to whole seconds), or None to run until stopped."""
    target: TargetComponents = attrs.field(validator=_check_target)
    """The components the dispatch is for."""
    active: bool = attrs.field(default=True, validator=_check_bool)
    """Whether the dispatch is to be executed."""
    dry_run: bool = attrs.field(default=False, validator=_check_bool)
    """Whether actors should only log what they would do."""
    payload: dict[str, Any] = attrs.field(factory=dict, validator=_check_payload_field, hash=False)
    """Free-form, JSON-like data for the actors (see `check_payload`)."""
    recurrence: RecurrenceRule | None = attrs.field(default=None, validator=_check_recurrence)
    """How the dispatch repeats, or None."""


# ------------------------------------------------------------------------- update


def _update_value(path: str, value: object) -> Any:
    """Check and normalize the value for one update-mask path.

    Args:
        path: A member of `UPDATE_PATHS`.
        value: The new value.

    Returns:
        The normalized value (tuples for the `by*` lists, enum members).

    Raises:
        ValueError: For any bad value, whatever is wrong with it, naming the path.
    """
    owner = f"update field {path!r}"
    try:
        if path == "start_time":
            if value == "NOW":
                raise ValueError('"NOW" is only valid when creating a dispatch')
            return _aware(owner, value)
        if path == "duration":
            return _duration(owner, value)
        if path == "target":
            return _target(owner, value)
        if path == "is_active":
            if not isinstance(value, bool):
                raise TypeError(f"must be a bool, got {_type_name(value)}: {value!r}")
            return value
        if path == "payload":
            return check_payload(value, owner)
        if path == "recurrence.end_criteria":
            if value is not None and not isinstance(value, EndCriteria):
                raise TypeError(
                    f"must be an EndCriteria or None, got {_type_name(value)}: {value!r}"
                )
            return value
        if path == "recurrence.interval":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"must be an int, got {_type_name(value)}: {value!r}")
            # 0 is only meaningful together with frequency UNSPECIFIED; the request
            # checks that combination once it sees all its fields.
            return RecurrenceRule(interval=value).interval
        if path == "recurrence.freq":
            if isinstance(value, bool) or not isinstance(value, int | enum.Enum):
                raise TypeError(f"must be a Frequency, got {_type_name(value)}: {value!r}")
            # RecurrenceRule's converter: ints by number, members of another enum (the
            # official client's Frequency) by name and value, our other enums refused.
            # interval=1 because a frequency alone is checked, not the combination.
            return RecurrenceRule(frequency=value, interval=1).frequency  # type: ignore[arg-type]
        # The remaining recurrence fields: let RecurrenceRule's own converters check
        # ranges and build the tuples, so the rules live in one place.
        attribute = RULE_ATTRIBUTES[path]
        return getattr(RecurrenceRule(**{attribute: value}), attribute)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if not message.startswith(owner):
            message = f"{owner}: {message}"
        raise ValueError(message) from exc


def _update_fields(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(fields, Mapping):
        raise ValueError(f"UpdateRequest.fields must be a mapping, got {_type_name(fields)}")
    if not fields:
        raise ValueError("an update needs at least one field")
    unknown = [key for key in fields if key not in UPDATE_PATHS]
    if unknown:
        raise ValueError(
            f"unknown update-mask path(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(UPDATE_PATHS)}"
        )
    return MappingProxyType(
        {path: _update_value(path, fields[path]) for path in UPDATE_PATHS if path in fields}
    )


@attrs.frozen(kw_only=True)
class UpdateRequest:
    """A request to change some fields of a dispatch.

    `fields` maps update-mask paths (`UPDATE_PATHS`) to new values; a path mapped to
    None (only `duration` and `recurrence.end_criteria` allow it) clears the field.
    Build it from the official client's keys with `update_from_new_fields()`.
    """

    microgrid_id: int = attrs.field(converter=_to_microgrid_id, validator=_check_id)
    """The microgrid."""
    dispatch_id: int = attrs.field(converter=_to_dispatch_id, validator=_check_id)
    """The dispatch to change."""
    fields: Mapping[str, Any] = attrs.field(converter=_update_fields, hash=False)
    """Mask path to new value, read-only, in `UPDATE_PATHS` order."""

    def __attrs_post_init__(self) -> None:
        """Check the fields against each other.

        Raises:
            ValueError: If `recurrence.interval` is 0 without the frequency being set to
                UNSPECIFIED in the same update.
        """
        if self.fields.get("recurrence.interval") == 0 and (
            self.fields.get("recurrence.freq") is not Frequency.UNSPECIFIED
        ):
            raise ValueError(
                "update field 'recurrence.interval' must be >= 1 unless the same update sets "
                "'recurrence.freq' to Frequency.UNSPECIFIED (no recurrence)"
            )

    @property
    def paths(self) -> tuple[str, ...]:
        """The update-mask paths, in `UPDATE_PATHS` order."""
        return tuple(self.fields)


def _mask_path(key: object) -> str:
    """Map one `new_fields` key to its update-mask path.

    Raises:
        ValueError: For a key that is not a str, is not updatable or is unknown.
    """
    if not isinstance(key, str):
        raise ValueError(f"update keys must be str, got {_type_name(key)}: {key!r}")
    if key in _NOT_UPDATABLE:
        raise ValueError(f"{key!r} cannot be updated; create a new dispatch instead")
    path = _ALIASES.get(key, key)
    if path not in UPDATE_PATHS:
        raise ValueError(
            f"unknown update key {key!r}; valid keys: {', '.join(UPDATE_PATHS)}, "
            f"{', '.join(_ALIASES)} and 'recurrence' (a whole RecurrenceRule)"
        )
    return path


def update_from_new_fields(
    new_fields: Mapping[str, Any], *, microgrid_id: int, dispatch_id: int
) -> UpdateRequest:
    """Build an update request from the official client's `new_fields` dict.

    Keys: `start_time`, `duration` (None clears it), `target`, `active` or `is_active`,
    `payload`, `recurrence.freq` or `recurrence.frequency`, `recurrence.interval`,
    `recurrence.end_criteria`, `recurrence.byminutes`, `recurrence.byhours`,
    `recurrence.byweekdays`, `recurrence.bymonthdays`, `recurrence.bymonths`.

    A bare `recurrence` key replaces the whole rule: its value must be a
    `RecurrenceRule`, and it expands to every `recurrence.*` path (a rule with frequency
    UNSPECIFIED removes the recurrence). It cannot be combined with `recurrence.*` keys.

    Args:
        new_fields: The changes, keyed as above.
        microgrid_id: The microgrid.
        dispatch_id: The dispatch to change.

    Returns:
        The request, with mask paths as keys.

    Raises:
        ValueError: For an empty update, a key that is unknown, malformed, not updatable
            (`type`, `dry_run`) or given twice under two spellings, and for a value of
            the wrong type or out of range.
        TypeError: If an id is not an int.
    """
    if not isinstance(new_fields, Mapping):
        raise ValueError(f"new_fields must be a mapping, got {_type_name(new_fields)}")
    if not new_fields:
        raise ValueError("an update needs at least one field; new_fields is empty")
    fields: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in new_fields.items():
        expanded = _expand_recurrence(value) if key == "recurrence" else {_mask_path(key): value}
        for path, item in expanded.items():
            if path in fields:
                raise ValueError(
                    f"update keys {origin[path]!r} and {key!r} both set {path!r}; give one"
                )
            fields[path] = item
            origin[path] = key
    return UpdateRequest(microgrid_id=microgrid_id, dispatch_id=dispatch_id, fields=fields)


def _expand_recurrence(rule: object) -> dict[str, Any]:
    """Expand a whole `RecurrenceRule` into one value per recurrence mask path.

    Raises:
        ValueError: If the value is not a RecurrenceRule.
    """
    if not isinstance(rule, RecurrenceRule):
        raise ValueError(
            "update key 'recurrence' takes a whole RecurrenceRule (use RecurrenceRule() "
            f"to remove the recurrence), got {_type_name(rule)}: {rule!r}"
        )
    return {path: getattr(rule, attribute) for path, attribute in RULE_ATTRIBUTES.items()}
