"""The domain model: dispatches, their targets, recurrence rules and stream events.

Every record is an immutable, validated attrs class; make changed copies with
`attrs.evolve`, which validates again. Nothing here knows about protobuf: `_codec`
maps these types to and from the generated messages, enums **by name**.

Enums are `IntEnum`s whose values happen to equal today's API numbers. A number this
client does not know (sent by a newer server) is not an error: `Frequency(17)` returns a
cached pseudo-member named `UNKNOWN_17` with value 17 and `is_unknown` True, so it stays
visible and is sent back unchanged.

Time contract: every datetime is timezone-aware (naive ones are a `ValueError`), the wire
keeps microseconds, and durations travel as whole seconds.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Self, SupportsIndex, TypeAlias, TypeVar

import attrs

from ._official import AnyId, IdKind, example, official_member, typed_id
from ._recurrence import Schedule

__all__ = [
    "BatteryType",
    "ComponentCategory",
    "Dispatch",
    "DispatchEvent",
    "ElectricalComponentCategory",
    "EndCriteria",
    "EvChargerType",
    "Event",
    "Frequency",
    "InverterType",
    "RecurrenceRule",
    "SortField",
    "SortOrder",
    "TargetCategories",
    "TargetCategory",
    "TargetComponents",
    "TargetIds",
    "Weekday",
]

_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1
_MAX_UNKNOWN_CACHED = 1024


_E = TypeVar("_E", bound="_OpenIntEnum")
_T = TypeVar("_T")

# --------------------------------------------------------------------------- enums


class _OpenIntEnum(enum.IntEnum):
    """An `IntEnum` that keeps numbers it does not know as `UNKNOWN_<n>` pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        # Pseudo-members are cached in the lookup table, as enum.Flag does, so
        # `Frequency(17) is Frequency(17)`; they do not appear when iterating the enum.
        # The cap keeps a server that sends ever new numbers from growing it forever;
        # past it, pseudo-members are still equal by value, just not identical.
        if len(cls._value2member_map_) - len(cls._member_map_) >= _MAX_UNKNOWN_CACHED:
            return member
        return cls._value2member_map_.setdefault(value, member)  # type: ignore[return-value]

    @property
    def is_unknown(self) -> bool:
        """Whether this is a pseudo-member for a number this client does not know."""
        return self._name_ not in type(self)._member_map_


class Frequency(_OpenIntEnum):
    """How often a dispatch recurs."""

    UNSPECIFIED = 0
    """No recurrence: the dispatch runs once."""
    MINUTELY = 1
    """Every `interval` minutes."""
    HOURLY = 2
    """Every `interval` hours."""
    DAILY = 3
    """Every `interval` days."""
    WEEKLY = 4
    """Every `interval` weeks."""
    MONTHLY = 5
    """Every `interval` months."""
    YEARLY = 6
    """Every `interval` years."""


class Weekday(_OpenIntEnum):
    """A day of the week, for `RecurrenceRule.byweekdays`."""

    UNSPECIFIED = 0
    """Not a day; a rule that filters on it has no runs."""
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7


class Event(_OpenIntEnum):
    """What happened to a dispatch, in a stream event."""

    UNSPECIFIED = 0
    """Not an event a server sends on purpose."""
    CREATED = 1
    """The dispatch was created."""
    UPDATED = 2
    """The dispatch was changed."""
    DELETED = 3
    """The dispatch was deleted; the event carries its last state."""


class ElectricalComponentCategory(_OpenIntEnum):
    """The category of an electrical component (API common v1alpha8).

    The API (common v1alpha8) marks none of these members as deprecated.
    """

    UNSPECIFIED = 0
    """No category."""
    GRID_CONNECTION_POINT = 1
    """The point where the microgrid connects to the grid."""
    METER = 2
    """A meter."""
    INVERTER = 3
    """An inverter (battery, PV or hybrid)."""
    CONVERTER = 4
    """A converter, e.g. DC-DC."""
    BATTERY = 5
    """A battery."""
    EV_CHARGER = 6
    """An electric-vehicle charger."""
    BREAKER = 7
    """A breaker or relay."""
    PRECHARGER = 8
    """A precharger."""
    CHP = 9
    """A combined heat and power plant."""
    ELECTROLYZER = 10
    """An electrolyzer."""
    POWER_TRANSFORMER = 11
    """A power transformer."""
    HVAC = 12
    """A heating, ventilation and air-conditioning system."""
    PLC = 13
    """A programmable logic controller."""
    CRYPTO_MINER = 14
    """A crypto miner."""
    STATIC_TRANSFER_SWITCH = 15
    """A static transfer switch."""
    UNINTERRUPTIBLE_POWER_SUPPLY = 16
    """An uninterruptible power supply."""
    CAPACITOR_BANK = 17
    """A capacitor bank."""
    WIND_TURBINE = 18
    """A wind turbine."""
    STEAM_BOILER = 19
    """A steam boiler."""


ComponentCategory = ElectricalComponentCategory
"""The name older code uses for `ElectricalComponentCategory`."""


class BatteryType(_OpenIntEnum):
    """The chemistry of a battery."""

    UNSPECIFIED = 0
    LI_ION = 1
    NA_ION = 2


class InverterType(_OpenIntEnum):
    """The kind of an inverter."""

    UNSPECIFIED = 0
    BATTERY = 1
    PV = 2
    HYBRID = 3
    SOLAR = 2
    """An alias of `PV`, the name older code uses."""


class EvChargerType(_OpenIntEnum):
    """The kind of an electric-vehicle charger."""

    UNSPECIFIED = 0
    AC = 1
    DC = 2
    HYBRID = 3


class SortField(_OpenIntEnum):
    """The field a dispatch list is sorted by."""

    UNSPECIFIED = 0
    START_TIME = 1
    CREATE_TIME = 2
    LAST_UPDATE_TIME = 3


class SortOrder(_OpenIntEnum):
    """The order a dispatch list is sorted in."""

    UNSPECIFIED = 0
    ASCENDING = 1
    DESCENDING = 2


# ------------------------------------------------------------------ validation helpers


def _require_aware(owner: str, value: object) -> datetime:
    """Check that a value is a timezone-aware datetime.

    Args:
        owner: `Class.field`, for the message.
        value: The value to check.

    Returns:
        The value.

    Raises:
        TypeError: If it is not a datetime.
        ValueError: If it is naive.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{owner} must be a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{owner} must be timezone-aware, got naive {value!r}")
    return value


def _index(owner: str, value: object) -> int:
    """Convert an integer-like value (`operator.index`) to int, rejecting bools and enums.

    Args:
        owner: What the value is, for the message.
        value: The value.

    Returns:
        The int.

    Raises:
        TypeError: If the value is a bool, an enum member (`Weekday.MONDAY` is no frequency
            and no hour, even though it is the int 1) or not integer-like.
    """
    if isinstance(value, bool | enum.Enum):
        raise TypeError(f"{owner} must be an integer, got {type(value).__name__}: {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{owner} must be an integer, got {type(value).__name__}: {value!r}"
        ) from None


def _bounded(owner: str, value: object, low: int, high: int) -> int:
    """Convert to int and check `low <= value <= high`.

    Args:
        owner: What the value is, for the message.
        value: The value.
        low: Smallest allowed value.
        high: Largest allowed value.

    Returns:
        The int.

    Raises:
        ValueError: If out of range.
    """
    number = _index(owner, value)
    if not low <= number <= high:
        raise ValueError(f"{owner} must be in {low}..{high}, got {number}")
    return number


def _bounded_id(owner: str, value: object, kind: IdKind) -> int:
    """Convert an id (an integer-like value or an official typed id of `kind`) to int.

    Args:
        owner: What the id is, for the message.
        value: The value.
        kind: Which typed ids fit (`ComponentId` for "component", ...).

    Returns:
        The id, in 0..2**64-1.

    Raises:
        TypeError: For a bool, a value that is not integer-like, or a typed id of
            another kind.
        ValueError: If out of range.
    """
    if type(value) is int:  # the common case, kept cheap: decoders build many
        return _bounded(owner, value, 0, _UINT64_MAX)
    typed = typed_id(owner, value, kind)
    if typed is not None:
        value = typed
    elif not isinstance(value, bool | enum.Enum) and not hasattr(value, "__index__"):
        raise TypeError(
            f"{owner} must be an integer or a typed id such as {example(kind)}, "
            f"got {type(value).__name__}: {value!r}"
        )
    return _bounded(owner, value, 0, _UINT64_MAX)


def _check_aware(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a timezone-aware datetime."""
    _require_aware(f"{type(instance).__name__}.{attribute.name}", value)


def _check_optional_aware(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: None or a timezone-aware datetime."""
    if value is not None:
        _check_aware(instance, attribute, value)


def _check_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: exactly a bool (1 and "yes" are not accepted)."""
    if not isinstance(value, bool):
        raise TypeError(
            f"{type(instance).__name__}.{attribute.name} must be a bool, "
            f"got {type(value).__name__}: {value!r}"
        )


def _enum_member(enum_type: type[_E], owner: str, value: object) -> _E:
    """Convert an int (or a member) to a member of `enum_type`; unknown numbers are kept.

    Args:
        enum_type: The enum.
        owner: What the value is, for the message.
        value: The value.

    Returns:
        The member (or `UNKNOWN_<n>` pseudo-member).

    Raises:
        TypeError: If the value is neither a member nor an int (nor a member of the
            official client's enum of the same name).
        ValueError: For an official member with no equal here (see `_official`).
    """
    if isinstance(value, enum_type):
        return value
    official = official_member(enum_type, owner, value)
    if official is not None:
        return official
    return enum_type(_index(owner, value))


def _tuple_of(owner: str, values: object, item: Callable[[str, object], _T]) -> tuple[_T, ...]:
    """Convert an iterable to a tuple of converted, checked items.

    Args:
        owner: `Class.field`, for the message.
        values: The iterable.
        item: Converts and checks one item; gets `owner[i]` and the item.

    Returns:
        The tuple.

    Raises:
        TypeError: For a str, bytes or a non-iterable.
    """
    # A str is iterable, but "12" is never meant as (1, 2).
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"{owner} must be a sequence, got {type(values).__name__}: {values!r}")
    return tuple(item(f"{owner}[{i}]", value) for i, value in enumerate(values))


def _ranged(low: int, high: int, *, exclude_zero: bool = False) -> Callable[[str, object], int]:
    """Make an item checker for `_tuple_of` accepting ints in `low..high`.

    Args:
        low: Smallest allowed value.
        high: Largest allowed value.
        exclude_zero: Also reject 0.

    Returns:
        The checker.
    """

    def check(owner: str, value: object) -> int:
        number = _bounded(owner, value, low, high)
        if exclude_zero and number == 0:
            raise ValueError(f"{owner} must be in {low}..{high} without 0, got 0")
        return number

    return check


_minute = _ranged(0, 59)
_hour = _ranged(0, 23)
_monthday = _ranged(-31, 31, exclude_zero=True)
_month = _ranged(1, 12)


def _weekday_item(owner: str, value: object) -> Weekday:
    """Convert one `byweekdays` item to a `Weekday` (unknown numbers allowed)."""
    return _enum_member(Weekday, owner, value)


# ------------------------------------------------------------------------- targets


class TargetIds(frozenset[int]):
    """A set of component ids a dispatch targets: `TargetIds(1, 2, 3)`."""

    __slots__ = ()

    def __new__(cls, *ids: AnyId) -> Self:
        """Create the set.

        Args:
            *ids: Component ids: non-negative integers (ints or integer-like objects)
                or the official client's `ComponentId`s.

        Returns:
            The set.

        Raises:
            TypeError: If an id is a bool or not an integer.
            ValueError: If an id is negative or does not fit the wire's uint64.
        """
        return super().__new__(
            cls, (_bounded_id(f"TargetIds id #{i}", v, "component") for i, v in enumerate(ids))
        )

    def __reduce__(self) -> tuple[type[Self], tuple[int, ...]]:
        """Pickle and copy through the positional constructor."""
        return (type(self), tuple(self))

    def __repr__(self) -> str:
        """Return `TargetIds(1, 2, 3)`, ids sorted."""
        return f"{type(self).__name__}({', '.join(map(str, sorted(self)))})"


CategoryTarget: TypeAlias = ElectricalComponentCategory | BatteryType | InverterType | EvChargerType
"""What a `TargetCategory` holds: a category, or a battery, inverter or EV-charger type."""

_CATEGORY_OF_TYPE: dict[type[_OpenIntEnum], ElectricalComponentCategory] = {
    BatteryType: ElectricalComponentCategory.BATTERY,
    InverterType: ElectricalComponentCategory.INVERTER,
    EvChargerType: ElectricalComponentCategory.EV_CHARGER,
}


def _check_category_target(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    """attrs validator: one of the enums a `TargetCategory` can hold."""
    if not isinstance(
        value, ElectricalComponentCategory | BatteryType | InverterType | EvChargerType
    ):
        raise TypeError(
            "TargetCategory.target must be an ElectricalComponentCategory, BatteryType, "
            f"InverterType or EvChargerType, got {type(value).__name__}: {value!r}"
        )


_CATEGORY_ENUMS: dict[str, type[_OpenIntEnum]] = {
    "ElectricalComponentCategory": ElectricalComponentCategory,
    "ComponentCategory": ElectricalComponentCategory,
    "BatteryType": BatteryType,
    "InverterType": InverterType,
    "EvChargerType": EvChargerType,
}
"""Our enum for each official enum a category target may be given as, by class name."""


def _to_category_target(
    value: CategoryTarget | enum.Enum, owner: str = "TargetCategory.target"
) -> CategoryTarget:
    """attrs converter: an official category or type enum member to ours.

    Anything else passes through unchanged for the validator to check.
    """
    ours = _CATEGORY_ENUMS.get(type(value).__name__) if isinstance(value, enum.Enum) else None
    member = None if ours is None else official_member(ours, owner, value)
    # Anything else is returned as given, for the validator (or caller) to refuse.
    return value if member is None else member  # type: ignore[return-value]


def _enum_identity(value: _OpenIntEnum) -> tuple[type[_OpenIntEnum], int]:
    """Comparison key for a category target: IntEnums of different classes but equal
    numbers (METER and InverterType.PV are both 2) must not compare or hash equal."""
    return (type(value), int(value))


@attrs.frozen
class TargetCategory:
    """A component category, or a category narrowed to one battery/inverter/EV-charger type.

    `TargetCategory(BatteryType.LI_ION)` means "lithium-ion batteries";
    `TargetCategory(ElectricalComponentCategory.METER)` means "all meters".
    """

    target: CategoryTarget = attrs.field(
        converter=_to_category_target, validator=_check_category_target, eq=_enum_identity
    )
    """The category, or the type that implies its category."""

    @property
    def category(self) -> ElectricalComponentCategory:
        """The category: the target itself, or BATTERY/INVERTER/EV_CHARGER for a type."""
        if isinstance(self.target, ElectricalComponentCategory):
            return self.target
        return _CATEGORY_OF_TYPE[type(self.target)]

    @property
    def type(self) -> BatteryType | InverterType | EvChargerType | None:
        """The battery, inverter or EV-charger type, or None for a plain category."""
        if isinstance(self.target, ElectricalComponentCategory):
            return None
        return self.target


class TargetCategories(frozenset[TargetCategory]):
    """A set of categories (optionally with types) a dispatch targets.

    Members are given positionally, raw or wrapped:
    `TargetCategories(ElectricalComponentCategory.METER, BatteryType.LI_ION)`.
    """

    __slots__ = ()

    def __new__(cls, *categories: TargetCategory | CategoryTarget | enum.Enum) -> Self:
        """Create the set.

        Args:
            *categories: `TargetCategory` objects, or categories/types to wrap in one.

        Returns:
            The set.

        Raises:
            TypeError: If a member is neither a `TargetCategory` nor one of its enums.
        """
        members: list[TargetCategory] = []
        for i, given in enumerate(categories):
            item = (
                given
                if isinstance(given, TargetCategory)
                else _to_category_target(given, f"TargetCategories member #{i}")
            )
            if isinstance(item, TargetCategory):
                members.append(item)
            elif isinstance(
                item, ElectricalComponentCategory | BatteryType | InverterType | EvChargerType
            ):
                members.append(TargetCategory(item))
            else:
                raise TypeError(
                    f"TargetCategories member #{i} must be a TargetCategory, "
                    "ElectricalComponentCategory, BatteryType, InverterType or EvChargerType, "
                    f"got {type(item).__name__}: {item!r}"
                )
        return super().__new__(cls, members)

    def __reduce__(self) -> tuple[type[Self], tuple[TargetCategory, ...]]:
        """Pickle and copy through the positional constructor."""
        return (type(self), tuple(self))

    def __repr__(self) -> str:
        """Return e.g. `TargetCategories(METER, BATTERY:LI_ION)`, in a stable order."""
        parts = sorted(
            (m.category.value, -1 if m.type is None else m.type.value, _describe(m)) for m in self
        )
        return f"{type(self).__name__}({', '.join(p[2] for p in parts)})"


def _describe(member: TargetCategory) -> str:
    """Name a category target briefly: `METER` or `BATTERY:LI_ION`."""
    if member.type is None:
        return member.category.name
    return f"{member.category.name}:{member.type.name}"


TargetComponents: TypeAlias = TargetIds | TargetCategories
"""What a dispatch targets: component ids, or categories (optionally with types)."""


def _check_target(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: `TargetIds` or `TargetCategories`."""
    if not isinstance(value, TargetIds | TargetCategories):
        raise TypeError(
            f"{type(instance).__name__}.{attribute.name} must be TargetIds or "
            f"TargetCategories, got {type(value).__name__}: {value!r}"
        )


# ---------------------------------------------------------------------- recurrence


def _optional_count(value: SupportsIndex | None) -> int | None:
    return None if value is None else _bounded("EndCriteria.count", value, 1, _UINT32_MAX)


@attrs.frozen(kw_only=True)
class EndCriteria:
    """When a recurrence ends: after `count` runs, or with the last run at or before `until`."""

    count: int | None = attrs.field(default=None, converter=_optional_count)
    """How many runs the series has (at least 1)."""
    until: datetime | None = attrs.field(default=None, validator=_check_optional_aware)
    """The last moment a run may start (inclusive); timezone-aware."""

    def __attrs_post_init__(self) -> None:
        """Check that exactly one criterion is set.

        Raises:
            ValueError: If both or neither are set.
        """
        if (self.count is None) == (self.until is None):
            raise ValueError(
                "EndCriteria needs exactly one of count and until, "
                f"got count={self.count!r}, until={self.until!r}"
            )


def _check_end_criteria(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, EndCriteria):
        raise TypeError(
            f"RecurrenceRule.end_criteria must be an EndCriteria or None, "
            f"got {type(value).__name__}: {value!r}"
        )


def _interval(value: SupportsIndex) -> int:
    return _bounded("RecurrenceRule.interval", value, 0, _UINT32_MAX)


def _to_frequency(value: Frequency | int) -> Frequency:
    return _enum_member(Frequency, "RecurrenceRule.frequency", value)


def _to_minutes(values: Iterable[int]) -> tuple[int, ...]:
    return _tuple_of("RecurrenceRule.byminutes", values, _minute)


def _to_hours(values: Iterable[int]) -> tuple[int, ...]:
    return _tuple_of("RecurrenceRule.byhours", values, _hour)


def _to_weekdays(values: Iterable[Weekday | int]) -> tuple[Weekday, ...]:
    return _tuple_of("RecurrenceRule.byweekdays", values, _weekday_item)


def _to_monthdays(values: Iterable[int]) -> tuple[int, ...]:
    return _tuple_of("RecurrenceRule.bymonthdays", values, _monthday)


def _to_months(values: Iterable[int]) -> tuple[int, ...]:
    return _tuple_of("RecurrenceRule.bymonths", values, _month)


@attrs.frozen(kw_only=True)
class RecurrenceRule:
    """How a dispatch repeats, as in RFC 5545 (evaluated with dateutil's rrule).

    The default rule (frequency `UNSPECIFIED`) means "no recurrence". Every `by*` filter
    keeps the order it was given in; an empty filter does not restrict.
    """

    frequency: Frequency = attrs.field(
        default=Frequency.UNSPECIFIED,
        converter=_to_frequency,
    )
    """The unit of repetition; `UNSPECIFIED` means no recurrence."""
    interval: int = attrs.field(default=0, converter=_interval)
    """Repeat every `interval` units; at least 1 unless the frequency is `UNSPECIFIED`."""
    end_criteria: EndCriteria | None = attrs.field(default=None, validator=_check_end_criteria)
    """When the series ends; None means never."""
    byminutes: tuple[int, ...] = attrs.field(default=(), converter=_to_minutes)
    """Minutes of the hour (0-59)."""
    byhours: tuple[int, ...] = attrs.field(default=(), converter=_to_hours)
    """Hours of the day (0-23)."""
    byweekdays: tuple[Weekday, ...] = attrs.field(default=(), converter=_to_weekdays)
    """Days of the week."""
    bymonthdays: tuple[int, ...] = attrs.field(
        default=(),
        converter=_to_monthdays,
    )
    """Days of the month, 1-31, or -31..-1 counted from the end (-1 is the last day)."""
    bymonths: tuple[int, ...] = attrs.field(default=(), converter=_to_months)
    """Months of the year (1-12)."""

    def __attrs_post_init__(self) -> None:
        """Check the interval against the frequency.

        A frequency number this client does not know passes: it came from a server.

        Raises:
            ValueError: If a known frequency other than `UNSPECIFIED` has interval 0.
        """
        if (
            self.frequency is not Frequency.UNSPECIFIED
            and not self.frequency.is_unknown
            and self.interval < 1
        ):
            raise ValueError(
                f"RecurrenceRule.interval must be >= 1 with frequency "
                f"{self.frequency.name}, got {self.interval}"
            )


def _check_recurrence(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, RecurrenceRule):
        raise TypeError(
            f"Dispatch.recurrence must be a RecurrenceRule or None, "
            f"got {type(value).__name__}: {value!r}"
        )


# ------------------------------------------------------------------------ dispatch

_JSON_SCALARS = (type(None), bool, int, float, str)


def _check_payload(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a JSON-like dict (str keys; None, bool, int, float, str, list, dict).

    Walks the value iteratively, so a deeply nested payload cannot exhaust the stack.

    Raises:
        TypeError: Naming the path of the first offending key or value.
    """
    if not isinstance(value, dict):
        raise TypeError(f"Dispatch.payload must be a dict, got {type(value).__name__}: {value!r}")
    stack: list[tuple[str, object]] = [("payload", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    raise TypeError(
                        f"Dispatch.{path} has a non-str key {key!r} ({type(key).__name__})"
                    )
                stack.append((f"{path}[{key!r}]", item))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(node))
        elif not isinstance(node, _JSON_SCALARS):
            raise TypeError(
                f"Dispatch.{path} must be None, bool, int, float, str, list or dict, "
                f"got {type(node).__name__}: {node!r}"
            )


def _id(value: SupportsIndex) -> int:
    return _bounded_id("Dispatch.id", value, "dispatch")


def _check_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(
            f"{type(instance).__name__}.{attribute.name} must be a str, "
            f"got {type(value).__name__}: {value!r}"
        )


def _check_duration(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: None, or a timedelta in 0..2**32-1 seconds (the wire's uint32)."""
    if value is None:
        return
    if not isinstance(value, timedelta):
        raise TypeError(
            f"Dispatch.duration must be a timedelta or None, got {type(value).__name__}: {value!r}"
        )
    if value < timedelta(0):
        raise ValueError(f"Dispatch.duration must not be negative, got {value!r}")
    if value > timedelta(seconds=_UINT32_MAX):
        raise ValueError(f"Dispatch.duration must be at most {_UINT32_MAX} s, got {value!r}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.frozen(kw_only=True)
class Dispatch:
    """A dispatch: a typed instruction with a payload, for some components, at some times.

    Times: `start_time` is the first possible run; each run lasts `duration` (None means
    it runs until stopped); `recurrence` repeats it. Runs are half-open intervals
    `[run, run + duration)`. A dispatch without recurrence has exactly one run, at
    `start_time`. A dispatch without a duration runs forever from its first run on; its
    recurrence still decides when that first run is (a filter or an end criterion may
    put it after `start_time`, or rule it out) and its later runs are still listed.
    The run queries (`next_run_after`, `missed_runs`) describe the schedule regardless
    of `active`; `started` and `until` are False/None for an inactive dispatch.

    `payload` is treated as immutable: do not mutate it (it is excluded from the hash).
    """

    id: int = attrs.field(converter=_id)
    """The dispatch id the server assigned."""
    type: str = attrs.field(validator=_check_str)
    """The user-defined kind of dispatch, understood by the actors that execute it."""
    start_time: datetime = attrs.field(validator=_check_aware)
    """When the first run may start; timezone-aware."""
    duration: timedelta | None = attrs.field(validator=_check_duration)
    """How long each run lasts; None means until stopped. Whole seconds on the wire."""
    target: TargetComponents = attrs.field(validator=_check_target)
    """The components the dispatch is for."""
    active: bool = attrs.field(validator=_check_bool)
    """Whether the dispatch should be executed at all."""
    dry_run: bool = attrs.field(validator=_check_bool)
    """Whether actors should only log what they would do."""
    payload: dict[str, Any] = attrs.field(validator=_check_payload, hash=False)
    """Free-form, JSON-like data for the actors."""
    recurrence: RecurrenceRule | None = attrs.field(validator=_check_recurrence)
    """How the dispatch repeats; None (or frequency `UNSPECIFIED`) for a single run."""
    create_time: datetime = attrs.field(validator=_check_aware)
    """When the dispatch was created."""
    update_time: datetime = attrs.field(validator=_check_aware)
    """When the dispatch was last changed."""
    end_time: datetime | None = attrs.field(default=None, validator=_check_optional_aware)
    """When the server computed the whole dispatch to end; None if never or unknown."""

    # The evaluated schedule, built on first use. Not part of equality, hashing or repr;
    # `attrs.evolve` starts over with None, so a changed copy never sees a stale schedule.
    _schedule: Schedule | None = attrs.field(
        init=False, default=None, eq=False, hash=False, repr=False
    )

    def _runs(self) -> Schedule:
        schedule = self._schedule
        if schedule is None:
            schedule = Schedule(
                start_time=self.start_time, duration=self.duration, rule=self.recurrence
            )
            # Frozen class: the cache is the one write after construction, and an idempotent one.
            object.__setattr__(self, "_schedule", schedule)
        return schedule

    @property
    def started(self) -> bool:
        """Whether the dispatch is running now (see `started_at`)."""
        return self.started_at(_utcnow())

    def started_at(self, now: datetime) -> bool:
        """Tell whether the dispatch is running at `now`.

        It is running when it is active and `now` lies in a run `[run, run + duration)`;
        without a duration, when it is active and its first run started at or before
        `now`.

        Args:
            now: A timezone-aware datetime.

        Returns:
            Whether it is running.

        Raises:
            ValueError: If `now` is naive.
        """
        _require_aware("now", now)
        if not self.active:
            return False
        if self.duration is None:
            first = self._runs().first_run
            return first is not None and now.astimezone(UTC) >= first
        return self.until_at(now) is not None

    @property
    def until(self) -> datetime | None:
        """When the current run ends, if the dispatch is running now (see `until_at`)."""
        return self.until_at(_utcnow())

    def until_at(self, now: datetime) -> datetime | None:
        """Return when the run containing `now` ends.

        Args:
            now: A timezone-aware datetime.

        Returns:
            The end of the current run (its start plus the duration), or None when the
            dispatch is not running at `now` or runs without end (no duration).

        Raises:
            ValueError: If `now` is naive.
        """
        _require_aware("now", now)
        if not self.active or self.duration is None:
            return None
        # Runs may overlap (duration longer than the interval): the latest start wins.
        # The bound is elapsed time, so subtract in UTC: in `now`'s zone it would be
        # wall-clock arithmetic (03:00 CEST minus a minute is the nonexistent 02:59, read
        # as 02:59 CET, an hour after `now`).
        latest = self._runs().last_at_or_before(now, not_before=now.astimezone(UTC) - self.duration)
        if latest is None:
            return None
        # A duration is elapsed time: add it in UTC, so a run that spans a DST change
        # lasts what it says; then show the end in the run's own timezone.
        end = (latest.astimezone(UTC) + self.duration).astimezone(latest.tzinfo)
        return end if now.astimezone(UTC) < end else None

    @property
    def next_run(self) -> datetime | None:
        """The next run starting now or later (see `next_run_after`)."""
        return self.next_run_after(_utcnow())

    def next_run_after(self, after: datetime) -> datetime | None:
        """Return the first run starting at or after `after` (inclusive).

        Args:
            after: A timezone-aware datetime.

        Returns:
            The run's start, in `start_time`'s timezone, or None when the schedule has
            no more runs.

        Raises:
            ValueError: If `after` is naive.
        """
        _require_aware("after", after)
        return self._runs().first_at_or_after(after)

    def missed_runs(
        self, since: datetime, until: datetime, *, limit: SupportsIndex | None = None
    ) -> list[datetime]:
        """Return the runs that started in `[since, until)`, oldest first.

        This is what a scheduler that was offline during the window missed. The walk is
        bounded by the window (a run exactly at `until` is not in it, and the next query
        can start at `until`), never by the series: it ends for every rule. (The
        frequenz-dispatch helper of this name steps with an inclusive `next_run_after`
        and never leaves a run that lies on its bound.)

        Args:
            since: Inclusive start of the window, timezone-aware.
            until: Exclusive end of the window, timezone-aware.
            limit: At most this many runs (the oldest); None for all. A minutely rule
                over a year of downtime has half a million runs.

        Returns:
            The run starts, sorted.

        Raises:
            ValueError: If a bound is naive, `since > until`, or `limit` is negative.
            TypeError: If `limit` is not an int.
        """
        _require_aware("since", since)
        _require_aware("until", until)
        bound = None if limit is None else _index("limit", limit)
        return self._runs().between(since, until, limit=bound)


def _check_dispatch(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Dispatch):
        raise TypeError(
            f"DispatchEvent.dispatch must be a Dispatch, got {type(value).__name__}: {value!r}"
        )


def _to_event(value: Event | int) -> Event:
    return _enum_member(Event, "DispatchEvent.event", value)


@attrs.frozen(kw_only=True)
class DispatchEvent:
    """A change to a dispatch, as a stream delivers it."""

    event: Event = attrs.field(converter=_to_event)
    """What happened."""
    dispatch: Dispatch = attrs.field(validator=_check_dispatch)
    """The dispatch after the change (for DELETED, its last state)."""
    synthesized: bool = attrs.field(default=False, validator=_check_bool)
    """True when the client derived the event itself (e.g. after a stream resync)."""


# ---------------------------------------------------------- unchecked construction

# A decoder that has already checked every value against the rules above (the wire
# decoder, `_codec/_decode.py`) builds records with these functions, which skip the
# converters and validators: running them again costs more than the decoding itself.
# Each sets every attrs field of its class; tests/test_types.py holds them to
# `attrs.fields`, so a field added to a class cannot be forgotten here.

_new = object.__new__
_set = object.__setattr__


def unchecked_dispatch(
    id: int,
    type: str,
    start_time: datetime,
    duration: timedelta | None,
    target: TargetComponents,
    active: bool,
    dry_run: bool,
    payload: dict[str, Any],
    recurrence: RecurrenceRule | None,
    create_time: datetime,
    update_time: datetime,
    end_time: datetime | None,
) -> Dispatch:
    """Build a `Dispatch` from values known to be valid, without checking them."""
    # The slots' own setters, unpacked to locals: a third less than object.__setattr__,
    # which finds each slot by its name on every call. Every list response builds
    # hundreds of dispatches this way.
    (
        set_id,
        set_type,
        set_start_time,
        set_duration,
        set_target,
        set_active,
        set_dry_run,
        set_payload,
        set_recurrence,
        set_create_time,
        set_update_time,
        set_end_time,
        set_schedule,
    ) = _DISPATCH_SETTERS
    dispatch: Dispatch = _new(Dispatch)
    set_id(dispatch, id)
    set_type(dispatch, type)
    set_start_time(dispatch, start_time)
    set_duration(dispatch, duration)
    set_target(dispatch, target)
    set_active(dispatch, active)
    set_dry_run(dispatch, dry_run)
    set_payload(dispatch, payload)
    set_recurrence(dispatch, recurrence)
    set_create_time(dispatch, create_time)
    set_update_time(dispatch, update_time)
    set_end_time(dispatch, end_time)
    set_schedule(dispatch, None)
    return dispatch


def _slot_setters(cls: type[Any], names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The `__set__` of each named slot of an attrs class (slotted: a member descriptor)."""
    return tuple(vars(cls)[name].__set__ for name in names)


_DISPATCH_SLOTS: Final = (
    "id",
    "type",
    "start_time",
    "duration",
    "target",
    "active",
    "dry_run",
    "payload",
    "recurrence",
    "create_time",
    "update_time",
    "end_time",
    "_schedule",
)
"""Every attrs field of `Dispatch`, in order (tests/test_types.py holds them to it)."""
_DISPATCH_SETTERS: Final = _slot_setters(Dispatch, _DISPATCH_SLOTS)


def unchecked_event(event: Event, dispatch: Dispatch) -> DispatchEvent:
    """Build a received (not synthesized) `DispatchEvent` without checking its values."""
    result: DispatchEvent = _new(DispatchEvent)
    _set(result, "event", event)
    _set(result, "dispatch", dispatch)
    _set(result, "synthesized", False)
    return result


def unchecked_rule(
    frequency: Frequency,
    interval: int,
    end_criteria: EndCriteria | None,
    byminutes: tuple[int, ...],
    byhours: tuple[int, ...],
    byweekdays: tuple[Weekday, ...],
    bymonthdays: tuple[int, ...],
    bymonths: tuple[int, ...],
) -> RecurrenceRule:
    """Build a `RecurrenceRule` from values known to be valid, without checking them."""
    (
        set_frequency,
        set_interval,
        set_end_criteria,
        set_byminutes,
        set_byhours,
        set_byweekdays,
        set_bymonthdays,
        set_bymonths,
    ) = _RULE_SETTERS
    rule: RecurrenceRule = _new(RecurrenceRule)
    set_frequency(rule, frequency)
    set_interval(rule, interval)
    set_end_criteria(rule, end_criteria)
    set_byminutes(rule, byminutes)
    set_byhours(rule, byhours)
    set_byweekdays(rule, byweekdays)
    set_bymonthdays(rule, bymonthdays)
    set_bymonths(rule, bymonths)
    return rule


_RULE_SLOTS: Final = (
    "frequency",
    "interval",
    "end_criteria",
    "byminutes",
    "byhours",
    "byweekdays",
    "bymonthdays",
    "bymonths",
)
"""Every attrs field of `RecurrenceRule`, in order (tests/test_types.py holds them to it)."""
_RULE_SETTERS: Final = _slot_setters(RecurrenceRule, _RULE_SLOTS)


def unchecked_end_criteria(count: int | None, until: datetime | None) -> EndCriteria:
    """Build an `EndCriteria` (exactly one of the two set) without checking it."""
    criteria: EndCriteria = _new(EndCriteria)
    _set_count(criteria, count)
    _set_until(criteria, until)
    return criteria


_set_count, _set_until = _slot_setters(EndCriteria, ("count", "until"))


def unchecked_target_category(target: CategoryTarget) -> TargetCategory:
    """Build a `TargetCategory` from one of its enums' members, without checking it."""
    member: TargetCategory = _new(TargetCategory)
    _set(member, "target", target)
    return member


def unchecked_target_ids(ids: Iterable[int]) -> TargetIds:
    """Build a `TargetIds` from ints known to be in the uint64 range."""
    return frozenset.__new__(TargetIds, ids)


def unchecked_target_categories(members: Iterable[TargetCategory]) -> TargetCategories:
    """Build a `TargetCategories` from `TargetCategory` objects."""
    return frozenset.__new__(TargetCategories, members)
