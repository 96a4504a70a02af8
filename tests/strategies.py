"""Hypothesis strategies for the domain types and the request records.

Reusable by any test: every strategy produces valid objects only, covering the edges the
wire format cares about (unknown enum numbers, microsecond timestamps, duration 0 vs
unset, nested payloads with extreme floats and unicode, all target kinds).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

from hypothesis import strategies as st

from dispatch_client._requests import (
    MAX_PAYLOAD_INT,
    UPDATE_PATHS,
    CreateRequest,
    DispatchFilter,
    ListRequest,
    TimeInterval,
    UpdateRequest,
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
    "aware_datetimes",
    "create_requests",
    "dispatch_events",
    "dispatch_filters",
    "dispatches",
    "durations",
    "end_criteria",
    "enum_members",
    "list_requests",
    "payloads",
    "recurrence_rules",
    "target_categories",
    "target_ids",
    "targets",
    "time_intervals",
    "update_requests",
]

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1

_E = TypeVar("_E", bound=enum.IntEnum)

# Fixed offsets only: with zoneinfo zones, datetimes in a repeated hour never compare
# equal across zones, which would make "decoded == original" fail for no wire reason.
_TIMEZONES = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(timedelta(hours=-9, minutes=-45)),
        timezone(timedelta(hours=14)),
    ]
)


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes with microseconds, years 2..9998 (protobuf's valid range)."""
    return st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=_TIMEZONES,
    )


def enum_members(enum_type: type[_E], *, unknown: bool = True) -> st.SearchStrategy[_E]:
    """Members of an open enum, plus (optionally) `UNKNOWN_<n>` pseudo-members."""
    known = st.sampled_from(list(enum_type))
    if not unknown:
        return known
    # Numbers past every known member, up to int32 (the wire's enum range).
    first_unknown = max(int(m) for m in enum_type) + 1
    return st.one_of(known, st.builds(enum_type, st.integers(first_unknown, 2**31 - 1)))


def durations(*, whole_seconds: bool = True) -> st.SearchStrategy[timedelta | None]:
    """None (runs until stopped), exactly 0, or a duration the wire's uint32 can carry."""
    if whole_seconds:
        some = st.builds(timedelta, seconds=st.integers(0, UINT32_MAX))
    else:
        some = st.builds(timedelta, microseconds=st.integers(0, UINT32_MAX * 1_000_000 - 500_001))
    return st.one_of(st.none(), st.just(timedelta(0)), some)


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-MAX_PAYLOAD_INT, MAX_PAYLOAD_INT),
    st.sampled_from([1e308, -1e308, 5e-324, -5e-324, 2.2250738585072014e-308, 0.0, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)


def payloads() -> st.SearchStrategy[dict[str, Any]]:
    """JSON-like payloads: nested dicts and lists, null, bools, extreme floats, unicode."""
    return st.dictionaries(st.text(max_size=12), _json_values, max_size=5)


def target_ids() -> st.SearchStrategy[TargetIds]:
    """Sets of component ids (the empty set included), up to the wire's uint64."""
    return st.builds(
        lambda ids: TargetIds(*ids), st.frozensets(st.integers(0, UINT64_MAX), max_size=5)
    )


_category_targets = st.one_of(
    enum_members(ElectricalComponentCategory),
    enum_members(BatteryType),
    enum_members(InverterType),
    enum_members(EvChargerType),
)


def target_categories() -> st.SearchStrategy[TargetCategories]:
    """Sets of categories, with and without battery/inverter/EV-charger types."""
    return st.builds(
        lambda items: TargetCategories(*(TargetCategory(item) for item in items)),
        st.lists(_category_targets, max_size=5),
    )


def targets() -> st.SearchStrategy[TargetComponents]:
    """Either kind of dispatch target."""
    return st.one_of(target_ids(), target_categories())


def end_criteria() -> st.SearchStrategy[EndCriteria]:
    """End criteria by count or by until time."""
    return st.one_of(
        st.builds(EndCriteria, count=st.integers(1, UINT32_MAX)),
        st.builds(EndCriteria, until=aware_datetimes()),
    )


@st.composite
def recurrence_rules(draw: st.DrawFn) -> RecurrenceRule:
    """Valid recurrence rules, including UNSPECIFIED and unknown frequencies."""
    frequency = draw(enum_members(Frequency))
    low = 0 if frequency is Frequency.UNSPECIFIED or frequency.is_unknown else 1
    return RecurrenceRule(
        frequency=frequency,
        interval=draw(st.integers(low, UINT32_MAX)),
        end_criteria=draw(st.none() | end_criteria()),
        byminutes=draw(st.lists(st.integers(0, 59), max_size=4)),
        byhours=draw(st.lists(st.integers(0, 23), max_size=4)),
        byweekdays=draw(st.lists(enum_members(Weekday), max_size=4)),
        bymonthdays=draw(st.lists(st.integers(-31, 31).filter(bool), max_size=4)),
        bymonths=draw(st.lists(st.integers(1, 12), max_size=4)),
    )


def dispatches() -> st.SearchStrategy[Dispatch]:
    """Valid dispatches whose every field survives the wire exactly."""
    return st.builds(
        Dispatch,
        id=st.integers(0, UINT64_MAX),
        type=st.text(),
        start_time=aware_datetimes(),
        duration=durations(),
        target=targets(),
        active=st.booleans(),
        dry_run=st.booleans(),
        payload=payloads(),
        recurrence=st.none() | recurrence_rules(),
        create_time=aware_datetimes(),
        update_time=aware_datetimes(),
        end_time=st.none() | aware_datetimes(),
    )


def dispatch_events() -> st.SearchStrategy[DispatchEvent]:
    """Stream events, including unknown event numbers."""
    return st.builds(DispatchEvent, event=enum_members(Event), dispatch=dispatches())


@st.composite
def time_intervals(draw: st.DrawFn) -> TimeInterval:
    """Filter windows with either bound open or both set (start <= end)."""
    first = draw(st.none() | aware_datetimes())
    second = draw(st.none() | aware_datetimes())
    if first is not None and second is not None and first > second:
        first, second = second, first
    return TimeInterval(start=first, end=second)


def dispatch_filters() -> st.SearchStrategy[DispatchFilter]:
    """List filters using every criterion, each possibly left open."""
    optional_bool = st.none() | st.booleans()
    optional_interval = st.none() | time_intervals()
    return st.builds(
        DispatchFilter,
        targets=st.lists(targets(), max_size=3),
        active=optional_bool,
        dry_run=optional_bool,
        recurring=optional_bool,
        start_time=optional_interval,
        end_time=optional_interval,
        update_time=optional_interval,
        dispatch_ids=st.lists(st.integers(1, UINT64_MAX), max_size=4),
        queries=st.lists(st.text(), max_size=3),
    )


@st.composite
def list_requests(draw: st.DrawFn) -> ListRequest:
    """List requests: first pages (page size or none) and later pages (token)."""
    page: Literal["size", "token", "none"] = draw(st.sampled_from(["size", "token", "none"]))
    return ListRequest(
        microgrid_id=draw(st.integers(1, UINT64_MAX)),
        filter=draw(dispatch_filters()),
        sort_field=draw(enum_members(SortField)),
        sort_order=draw(enum_members(SortOrder)),
        page_size=draw(st.integers(1, UINT32_MAX)) if page == "size" else None,
        page_token=draw(st.text(min_size=1)) if page == "token" else None,
    )


def create_requests() -> st.SearchStrategy[CreateRequest]:
    """Create requests, starting "NOW" or at a datetime."""
    return st.builds(
        CreateRequest,
        microgrid_id=st.integers(1, UINT64_MAX),
        type=st.text(),
        start_time=st.one_of(st.just("NOW"), aware_datetimes()),
        duration=durations(),
        target=targets(),
        active=st.booleans(),
        dry_run=st.booleans(),
        payload=payloads(),
        recurrence=st.none() | recurrence_rules(),
    )


def _update_values(path: str) -> st.SearchStrategy[Any]:
    """Valid values for one update-mask path (interval >= 1: see `update_requests`)."""
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "start_time": aware_datetimes(),
        "duration": durations(),
        "target": targets(),
        "is_active": st.booleans(),
        "payload": payloads(),
        "recurrence.freq": enum_members(Frequency),
        "recurrence.interval": st.integers(1, UINT32_MAX),
        "recurrence.end_criteria": st.none() | end_criteria(),
        "recurrence.byminutes": st.lists(st.integers(0, 59), max_size=4),
        "recurrence.byhours": st.lists(st.integers(0, 23), max_size=4),
        "recurrence.byweekdays": st.lists(enum_members(Weekday), max_size=4),
        "recurrence.bymonthdays": st.lists(st.integers(-31, 31).filter(bool), max_size=4),
        "recurrence.bymonths": st.lists(st.integers(1, 12), max_size=4),
    }
    return strategies[path]


@st.composite
def update_requests(draw: st.DrawFn) -> UpdateRequest:
    """Update requests naming a non-empty subset of the mask paths."""
    paths = draw(st.lists(st.sampled_from(UPDATE_PATHS), min_size=1, unique=True))
    fields = {path: draw(_update_values(path)) for path in paths}
    return UpdateRequest(
        microgrid_id=draw(st.integers(1, UINT64_MAX)),
        dispatch_id=draw(st.integers(1, UINT64_MAX)),
        fields=fields,
    )
