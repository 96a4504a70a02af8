"""Tests for the domain types: enums, targets, recurrence rules, dispatches, events."""

from __future__ import annotations

import copy
import inspect
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch_client import (
    BatteryType,
    ComponentCategory,
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
    TargetIds,
    Weekday,
    _types,
)

from . import strategies

T0 = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
NAIVE = datetime(2026, 1, 5, 14, 0)

ALL_ENUMS = [
    Frequency,
    Weekday,
    Event,
    ElectricalComponentCategory,
    BatteryType,
    InverterType,
    EvChargerType,
    SortField,
    SortOrder,
]


def make_dispatch(**changes: Any) -> Dispatch:
    """Build a valid dispatch, with `changes` applied."""
    fields: dict[str, Any] = {
        "id": 7,
        "type": "CHARGE",
        "start_time": T0,
        "duration": timedelta(hours=1),
        "target": TargetIds(1, 2),
        "active": True,
        "dry_run": False,
        "payload": {"power_w": 5000.0},
        "recurrence": None,
        "create_time": T0 - timedelta(days=1),
        "update_time": T0 - timedelta(days=1),
    }
    fields.update(changes)
    return Dispatch(**fields)


# ----------------------------------------------------------------------------- enums


def _protobuf_enum_values(full_name: str) -> dict[str, int]:
    """Return the members of a protobuf enum in the pinned API wheel, by name."""
    from frequenz.api.common.v1alpha8.microgrid.electrical_components import (
        electrical_components_pb2,
    )
    from frequenz.api.dispatch.v1 import dispatch_pb2

    pools = {
        "ElectricalComponentCategory": electrical_components_pb2.DESCRIPTOR.enum_types_by_name,
        "BatteryType": electrical_components_pb2.DESCRIPTOR.enum_types_by_name,
        "InverterType": electrical_components_pb2.DESCRIPTOR.enum_types_by_name,
        "EvChargerType": electrical_components_pb2.DESCRIPTOR.enum_types_by_name,
        "SortField": dispatch_pb2.DESCRIPTOR.enum_types_by_name,
        "SortOrder": dispatch_pb2.DESCRIPTOR.enum_types_by_name,
        "Frequency": dispatch_pb2.DESCRIPTOR.message_types_by_name[
            "RecurrenceRule"
        ].enum_types_by_name,
        "Weekday": dispatch_pb2.DESCRIPTOR.message_types_by_name[
            "RecurrenceRule"
        ].enum_types_by_name,
    }
    descriptor = pools[full_name][full_name]
    return {value.name: value.number for value in descriptor.values}


_PREFIXES = {
    "ElectricalComponentCategory": "ELECTRICAL_COMPONENT_CATEGORY_",
    "BatteryType": "BATTERY_TYPE_",
    "InverterType": "INVERTER_TYPE_",
    "EvChargerType": "EV_CHARGER_TYPE_",
    "SortField": "SORT_FIELD_",
    "SortOrder": "SORT_ORDER_",
    "Frequency": "FREQUENCY_",
    "Weekday": "WEEKDAY_",
}


@pytest.mark.parametrize("name", sorted(_PREFIXES))
def test_enum_members_match_the_api(name: str) -> None:
    """Each enum has exactly the API's members (prefix stripped) with the API's numbers."""
    import dispatch_client

    ours = getattr(dispatch_client, name)
    prefix = _PREFIXES[name]
    expected = {
        pb_name.removeprefix(prefix): number
        for pb_name, number in _protobuf_enum_values(name).items()
    }
    assert {member.name: member.value for member in ours} == expected


def test_event_members() -> None:
    """`Event` has the common API's streaming event kinds."""
    assert [(e.name, e.value) for e in Event] == [
        ("UNSPECIFIED", 0),
        ("CREATED", 1),
        ("UPDATED", 2),
        ("DELETED", 3),
    ]


def test_aliases() -> None:
    """`InverterType.SOLAR` is `PV` and `ComponentCategory` is the category enum."""
    solar: InverterType = InverterType.SOLAR
    assert solar is InverterType.PV
    assert InverterType["SOLAR"] is InverterType.PV
    assert ComponentCategory is ElectricalComponentCategory


@pytest.mark.parametrize("enum_type", ALL_ENUMS)
def test_unknown_number_becomes_a_cached_pseudo_member(enum_type: type[Any]) -> None:
    """An unknown number is kept as `UNKNOWN_<n>`, cached, and never listed as a member."""
    member = enum_type(117)
    assert member.name == "UNKNOWN_117"
    assert member.value == 117
    assert member == 117
    assert member.is_unknown
    assert isinstance(member, enum_type)
    assert enum_type(117) is member
    assert "117" in repr(member)
    assert member not in list(enum_type.__members__.values())
    assert pickle.loads(pickle.dumps(member)) is member


@pytest.mark.parametrize("enum_type", ALL_ENUMS)
def test_known_members_are_not_unknown(enum_type: type[Any]) -> None:
    """Declared members report `is_unknown` False."""
    assert not any(member.is_unknown for member in enum_type)


@pytest.mark.parametrize("value", ["3", 3.5, None])
def test_enum_rejects_non_ints(value: object) -> None:
    """Only ints become pseudo-members: strings, fractional floats and None are rejected."""
    with pytest.raises(ValueError, match="is not a valid Frequency"):
        Frequency(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- targets


def test_target_ids_positional_and_int_like() -> None:
    """`TargetIds` takes ids positionally, keeps them as ints and deduplicates."""
    ids = TargetIds(3, 1, 2, 3)
    assert ids == frozenset({1, 2, 3})
    assert all(type(i) is int for i in ids)
    assert repr(ids) == "TargetIds(1, 2, 3)"
    assert TargetIds() == frozenset()


@pytest.mark.parametrize(
    ("value", "error"),
    [(True, TypeError), ("3", TypeError), (1.5, TypeError), (-1, ValueError), (2**64, ValueError)],
)
def test_target_ids_reject_bad_ids(value: object, error: type[Exception]) -> None:
    """Bools, strings, floats, negative and too-large ids are rejected, naming the id."""
    with pytest.raises(error, match="TargetIds id #1"):
        TargetIds(1, value)  # type: ignore[arg-type]


def test_targets_survive_pickle_and_copy() -> None:
    """Pickling and (deep) copying rebuild the targets through their constructor."""
    ids = TargetIds(1, 2)
    cats = TargetCategories(BatteryType.LI_ION, ElectricalComponentCategory.METER)
    for value in (ids, cats):
        for clone in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
            assert clone == value
            assert type(clone) is type(value)


def test_target_category_category_and_type() -> None:
    """A type implies its category; a plain category has no type."""
    assert TargetCategory(BatteryType.NA_ION).category is ElectricalComponentCategory.BATTERY
    assert TargetCategory(BatteryType.NA_ION).type is BatteryType.NA_ION
    assert TargetCategory(InverterType.PV).category is ElectricalComponentCategory.INVERTER
    assert TargetCategory(target=EvChargerType.DC).category is (
        ElectricalComponentCategory.EV_CHARGER
    )
    meter = TargetCategory(target=ElectricalComponentCategory.METER)
    assert meter.category is ElectricalComponentCategory.METER
    assert meter.type is None


def test_target_category_rejects_other_values() -> None:
    """A `TargetCategory` holds only the category and type enums."""
    with pytest.raises(TypeError, match=r"TargetCategory\.target"):
        TargetCategory(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"TargetCategory\.target"):
        TargetCategory(Frequency.DAILY)


def test_target_categories_wrap_raw_members() -> None:
    """Raw categories and types are wrapped; wrapped members are kept."""
    cats = TargetCategories(
        ElectricalComponentCategory.BATTERY,
        BatteryType.LI_ION,
        TargetCategory(InverterType.HYBRID),
    )
    assert set(cats) == {
        TargetCategory(ElectricalComponentCategory.BATTERY),
        TargetCategory(BatteryType.LI_ION),
        TargetCategory(InverterType.HYBRID),
    }
    assert repr(cats) == "TargetCategories(INVERTER:HYBRID, BATTERY, BATTERY:LI_ION)"


def test_target_categories_tell_enums_with_equal_numbers_apart() -> None:
    """Members of different enums sharing a number (METER and InverterType.PV are 2) stay apart."""
    assert TargetCategory(ElectricalComponentCategory.METER) != TargetCategory(InverterType.PV)
    assert len(TargetCategories(BatteryType.LI_ION, InverterType.BATTERY)) == 2
    assert len(TargetCategories(ElectricalComponentCategory.METER, InverterType.PV)) == 2
    assert TargetCategory(InverterType.SOLAR) == TargetCategory(InverterType.PV)


def test_target_categories_reject_other_values() -> None:
    """Anything but a category, a type or a `TargetCategory` is a TypeError naming it."""
    with pytest.raises(TypeError, match="member #1"):
        TargetCategories(BatteryType.LI_ION, 5)  # type: ignore[arg-type]


def test_target_categories_keep_unknown_categories() -> None:
    """A category number from a newer server is a valid target."""
    cats = TargetCategories(ElectricalComponentCategory(40))
    assert next(iter(cats)).category.name == "UNKNOWN_40"


# ------------------------------------------------------------------------- recurrence


def test_end_criteria_needs_exactly_one() -> None:
    """`EndCriteria` takes count or until, never both, never neither."""
    assert EndCriteria(count=3).count == 3
    assert EndCriteria(until=T0).until == T0
    with pytest.raises(ValueError, match="exactly one"):
        EndCriteria()
    with pytest.raises(ValueError, match="exactly one"):
        EndCriteria(count=3, until=T0)


def test_end_criteria_validates_values() -> None:
    """count is at least 1 and until is timezone-aware."""
    with pytest.raises(ValueError, match=r"EndCriteria.count must be in 1\.\."):
        EndCriteria(count=0)
    with pytest.raises(TypeError, match=r"EndCriteria\.count"):
        EndCriteria(count=True)
    with pytest.raises(ValueError, match=r"EndCriteria\.until must be timezone-aware"):
        EndCriteria(until=NAIVE)


def test_default_rule_is_no_recurrence() -> None:
    """The default rule is frequency UNSPECIFIED, interval 0, no filters."""
    rule = RecurrenceRule()
    assert rule.frequency is Frequency.UNSPECIFIED
    assert rule.interval == 0
    assert rule.end_criteria is None
    assert rule.byminutes == rule.byhours == rule.bymonthdays == rule.bymonths == ()
    assert rule.byweekdays == ()


def test_rule_converts_and_stores_tuples() -> None:
    """Ints become enum members and lists become tuples, in the given order."""
    rule = RecurrenceRule(
        frequency=3,
        interval=2,
        byminutes=[30, 0],
        byhours=range(8, 10),
        byweekdays=[5, Weekday.MONDAY],
        bymonthdays=[-1, 15],
        bymonths=[12, 1],
    )
    assert rule.frequency is Frequency.DAILY
    assert rule.byminutes == (30, 0)
    assert rule.byhours == (8, 9)
    assert rule.byweekdays == (Weekday.FRIDAY, Weekday.MONDAY)
    assert rule.bymonthdays == (-1, 15)
    assert rule.bymonths == (12, 1)
    assert hash(rule) == hash(attrs.evolve(rule))


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"frequency": Frequency.DAILY, "interval": 0}, ValueError, "interval must be >= 1"),
        (
            {"frequency": 4, "interval": 0},
            ValueError,
            "interval must be >= 1 with frequency WEEKLY",
        ),
        ({"interval": -1}, ValueError, "RecurrenceRule.interval"),
        ({"interval": 1.0}, TypeError, "RecurrenceRule.interval"),
        ({"frequency": "DAILY"}, TypeError, "RecurrenceRule.frequency"),
        ({"byminutes": [60]}, ValueError, r"byminutes\[0\] must be in 0\.\.59, got 60"),
        ({"byminutes": [-1]}, ValueError, r"byminutes\[0\]"),
        ({"byhours": [0, 24]}, ValueError, r"byhours\[1\] must be in 0\.\.23, got 24"),
        ({"bymonthdays": [0]}, ValueError, r"bymonthdays\[0\] must be in -31\.\.31 without 0"),
        ({"bymonthdays": [32]}, ValueError, r"bymonthdays\[0\]"),
        ({"bymonthdays": [-32]}, ValueError, r"bymonthdays\[0\]"),
        ({"bymonths": [0]}, ValueError, r"bymonths\[0\] must be in 1\.\.12, got 0"),
        ({"bymonths": [13]}, ValueError, r"bymonths\[0\]"),
        ({"byweekdays": ["MO"]}, TypeError, r"byweekdays\[0\]"),
        ({"byhours": "12"}, TypeError, "byhours must be a sequence"),
        ({"byhours": 12}, TypeError, "byhours must be a sequence"),
        ({"byhours": [True]}, TypeError, r"byhours\[0\] must be an integer, got bool"),
        ({"end_criteria": 3}, TypeError, "end_criteria"),
        ({"frequency": Weekday.MONDAY}, TypeError, r"frequency must be an integer, got Weekday"),
        ({"byweekdays": [Frequency.DAILY]}, TypeError, r"byweekdays\[0\] .* got Frequency"),
        ({"byhours": [Weekday.MONDAY]}, TypeError, r"byhours\[0\] .* got Weekday"),
    ],
)
def test_rule_validation(changes: dict[str, Any], error: type[Exception], match: str) -> None:
    """Invalid rules raise an error naming the field and the value."""
    fields: dict[str, Any] = {"frequency": Frequency.DAILY, "interval": 1}
    fields.update(changes)
    with pytest.raises(error, match=match):
        RecurrenceRule(**fields)


def test_rule_accepts_boundaries() -> None:
    """The extreme valid filter values are accepted."""
    rule = RecurrenceRule(
        frequency=Frequency.MINUTELY,
        interval=2**32 - 1,
        byminutes=[0, 59],
        byhours=[0, 23],
        bymonthdays=[-31, -1, 1, 31],
        bymonths=[1, 12],
        byweekdays=list(Weekday),
    )
    assert rule.bymonthdays == (-31, -1, 1, 31)


def test_rule_allows_unknown_numbers_from_a_server() -> None:
    """Unknown frequency and weekday numbers pass validation, even with interval 0."""
    rule = RecurrenceRule(frequency=42, interval=0, byweekdays=[9])
    assert rule.frequency.is_unknown
    assert rule.byweekdays[0].name == "UNKNOWN_9"


def test_unspecified_frequency_allows_any_interval() -> None:
    """A rule without recurrence does not care about its interval."""
    assert RecurrenceRule(interval=5).interval == 5


# --------------------------------------------------------------------------- dispatch


def test_dispatch_fields_and_equality() -> None:
    """A dispatch keeps its fields, compares by value and is hashable."""
    first = make_dispatch()
    second = make_dispatch()
    assert first == second
    assert hash(first) == hash(second)
    assert first.end_time is None
    assert first != make_dispatch(payload={"power_w": 1.0})
    assert {first, second} == {first}


def test_dispatch_is_frozen() -> None:
    """Fields cannot be assigned after construction."""
    dispatch = make_dispatch()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        dispatch.active = False  # type: ignore[misc]


def test_dispatch_requires_keywords() -> None:
    """Fields are keyword-only."""
    with pytest.raises(TypeError):
        Dispatch(7, "CHARGE")  # type: ignore[call-arg]


@pytest.mark.parametrize("field", ["start_time", "create_time", "update_time", "end_time"])
def test_dispatch_rejects_naive_datetimes(field: str) -> None:
    """Every datetime field rejects a naive value with a ValueError naming the field."""
    with pytest.raises(ValueError, match=f"Dispatch.{field} must be timezone-aware"):
        make_dispatch(**{field: NAIVE})


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"id": -1}, ValueError, "Dispatch.id"),
        ({"id": True}, TypeError, "Dispatch.id"),
        ({"id": "7"}, TypeError, "Dispatch.id"),
        ({"id": 2**64}, ValueError, "Dispatch.id"),
        ({"type": 5}, TypeError, "Dispatch.type must be a str"),
        ({"start_time": "2026-01-01"}, TypeError, "Dispatch.start_time must be a datetime"),
        ({"duration": timedelta(seconds=-1)}, ValueError, "Dispatch.duration must not be"),
        ({"duration": timedelta(seconds=2**32)}, ValueError, "Dispatch.duration must be at most"),
        ({"duration": 60}, TypeError, "Dispatch.duration must be a timedelta"),
        ({"target": frozenset({1})}, TypeError, "Dispatch.target must be TargetIds"),
        ({"active": 1}, TypeError, "Dispatch.active must be a bool"),
        ({"dry_run": None}, TypeError, "Dispatch.dry_run must be a bool"),
        ({"recurrence": {}}, TypeError, "Dispatch.recurrence must be a RecurrenceRule"),
        ({"payload": []}, TypeError, "Dispatch.payload must be a dict"),
        ({"payload": {1: "x"}}, TypeError, "Dispatch.payload has a non-str key 1"),
        (
            {"payload": {"a": [1, {"b": (1, 2)}]}},
            TypeError,
            r"Dispatch.payload\['a'\]\[1\]\['b'\] must be None, bool, int, float, str, list",
        ),
        ({"payload": {"when": T0}}, TypeError, r"Dispatch.payload\['when'\]"),
        ({"payload": {"b": b"x"}}, TypeError, r"Dispatch.payload\['b'\] .* got bytes"),
    ],
)
def test_dispatch_validation(changes: dict[str, Any], error: type[Exception], match: str) -> None:
    """Invalid fields raise an error naming the field (or payload path) and the value."""
    with pytest.raises(error, match=match):
        make_dispatch(**changes)


def test_dispatch_accepts_edge_values() -> None:
    """Duration zero, an int-like id, category targets and a max-size id are valid."""

    class Index:
        def __index__(self) -> int:
            return 9

    dispatch = make_dispatch(
        id=Index(),
        duration=timedelta(0),
        target=TargetCategories(BatteryType.LI_ION),
        end_time=T0 + timedelta(hours=1),
    )
    assert dispatch.id == 9
    assert type(dispatch.id) is int
    assert make_dispatch(id=2**64 - 1, duration=None).duration is None


def test_evolve_revalidates() -> None:
    """`attrs.evolve` runs every converter and validator again."""
    dispatch = make_dispatch()
    with pytest.raises(ValueError, match=r"Dispatch\.start_time must be timezone-aware"):
        attrs.evolve(dispatch, start_time=NAIVE)
    with pytest.raises(TypeError, match=r"Dispatch.payload\['x'\]"):
        attrs.evolve(dispatch, payload={"x": {1, 2}})
    with pytest.raises(ValueError, match="interval must be >= 1"):
        attrs.evolve(RecurrenceRule(frequency=Frequency.DAILY, interval=1), interval=0)
    assert attrs.evolve(dispatch, id=8).id == 8


def test_evolve_drops_the_cached_schedule() -> None:
    """A copy with a new start time computes its runs from the new start time."""
    rule = RecurrenceRule(frequency=Frequency.DAILY, interval=1)
    dispatch = make_dispatch(recurrence=rule)
    assert dispatch.next_run_after(T0) == T0
    moved = attrs.evolve(dispatch, start_time=T0 + timedelta(hours=1))
    assert moved.next_run_after(T0) == T0 + timedelta(hours=1)
    assert moved == attrs.evolve(dispatch, start_time=T0 + timedelta(hours=1))


def test_dispatch_repr_hides_the_cache() -> None:
    """The repr shows the fields, not the private schedule cache."""
    dispatch = make_dispatch()
    dispatch.next_run_after(T0)
    assert "_schedule" not in repr(dispatch)
    assert "CHARGE" in repr(dispatch)


def test_any_timezone_is_accepted() -> None:
    """Aware datetimes in any fixed-offset zone are valid."""
    plus_two = timezone(timedelta(hours=2))
    dispatch = make_dispatch(start_time=T0.astimezone(plus_two))
    assert dispatch.start_time == T0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(payload=st.dictionaries(st.text(max_size=5), JSON, max_size=5))
def test_any_json_like_payload_is_accepted(payload: dict[str, Any]) -> None:
    """Every JSON-like dict is a valid payload and is kept as given."""
    assert make_dispatch(payload=payload).payload is payload


def test_deep_payload_does_not_overflow_the_stack() -> None:
    """A very deeply nested payload is checked without recursion."""
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    assert make_dispatch(payload=deep).payload is deep


# ------------------------------------------------------------------------------ event


def test_dispatch_event() -> None:
    """A stream event holds the event kind, the dispatch and a synthesized flag."""
    dispatch = make_dispatch()
    event = DispatchEvent(event=Event.CREATED, dispatch=dispatch)
    assert event.synthesized is False
    assert DispatchEvent(event=2, dispatch=dispatch).event is Event.UPDATED
    assert DispatchEvent(event=9, dispatch=dispatch).event.is_unknown
    assert DispatchEvent(event=Event.DELETED, dispatch=dispatch, synthesized=True).synthesized


def test_dispatch_event_validation() -> None:
    """Wrong field types are rejected with a message naming the field."""
    dispatch = make_dispatch()
    with pytest.raises(TypeError, match=r"DispatchEvent\.dispatch must be a Dispatch"):
        DispatchEvent(event=Event.CREATED, dispatch=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"DispatchEvent\.event"):
        DispatchEvent(event="CREATED", dispatch=dispatch)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"DispatchEvent\.synthesized must be a bool"):
        DispatchEvent(event=Event.CREATED, dispatch=dispatch, synthesized=1)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- demo


def test_demo_render_during_a_run() -> None:
    """The demo shows the dispatch, five weekday runs, the current run and missed runs."""
    from dispatch_client._demo import render

    now = datetime(2026, 3, 30, 12, 30, tzinfo=UTC)  # Monday 14:30 in Berlin (CEST)
    text = render(now)
    assert "Dispatch #1: BATTERY_CHARGE" in text
    assert "TargetCategories(BATTERY:LI_ION, EV_CHARGER)" in text
    assert '"target_power_w": 25000.0' in text
    assert "Running now: yes, until Mon 2026-03-30 15:00 +02:00" in text
    next_block = text.split("Next five runs:\n")[1].split("\n\n")[0].splitlines()
    assert next_block == [
        "  Tue 2026-03-31 14:00 +02:00",
        "  Wed 2026-04-01 14:00 +02:00",
        "  Thu 2026-04-02 14:00 +02:00",
        "  Fri 2026-04-03 14:00 +02:00",
        "  Mon 2026-04-06 14:00 +02:00",
    ]
    # The week before includes the DST change on Sunday 29 March: still 14:00 local.
    assert "Missed while offline for the past week: 6 run(s)" in text
    assert "  Mon 2026-03-23 14:00 +01:00" in text
    assert "  Mon 2026-03-30 14:00 +02:00" in text


def test_demo_render_before_the_first_run() -> None:
    """Before the start time nothing runs and nothing was missed."""
    from dispatch_client._demo import render

    text = render(datetime(2025, 12, 1, tzinfo=UTC))
    assert "Running now: no" in text
    assert "Missed while offline for the past week: 0 run(s)" in text
    assert "  Mon 2026-01-05 14:00 +01:00" in text


def test_unknown_member_cache_is_bounded() -> None:
    """Past the cache limit, unknown numbers still work but are no longer stored."""
    from dispatch_client import _types

    # The cache is global: restore it so other tests see a fresh enum.
    saved = dict(SortOrder._value2member_map_)
    try:
        members = [SortOrder(1000 + n) for n in range(_types._MAX_UNKNOWN_CACHED + 10)]
        assert all(m.value == 1000 + n for n, m in enumerate(members))
        assert all(m.is_unknown for m in members)
        cached = len(SortOrder._value2member_map_) - len(SortOrder._member_map_)
        assert cached == _types._MAX_UNKNOWN_CACHED
        late = 1000 + _types._MAX_UNKNOWN_CACHED + 5
        assert SortOrder(late) == SortOrder(late)
        assert SortOrder(late).name == f"UNKNOWN_{late}"
    finally:
        SortOrder._value2member_map_.clear()
        SortOrder._value2member_map_.update(saved)


# --- unchecked construction (for decoders) --------------------------------------------


def _init_values(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in attrs.fields(type(record)) if f.init}


@pytest.mark.parametrize(
    ("builder", "cls"),
    [
        (_types.unchecked_dispatch, Dispatch),
        (_types.unchecked_rule, RecurrenceRule),
        (_types.unchecked_end_criteria, EndCriteria),
        (_types.unchecked_target_category, TargetCategory),
    ],
)
def test_unchecked_builders_take_every_field(builder: Any, cls: type[Any]) -> None:
    """Each unchecked builder takes exactly the class's init fields, in their order."""
    parameters = list(inspect.signature(builder).parameters)
    assert parameters == [f.name for f in attrs.fields(cls) if f.init]


def test_unchecked_builders_set_every_slot() -> None:
    """The slot setters of the unchecked builders are those of every field of their class."""
    assert tuple(f.name for f in attrs.fields(Dispatch)) == _types._DISPATCH_SLOTS
    assert tuple(f.name for f in attrs.fields(RecurrenceRule)) == _types._RULE_SLOTS
    assert tuple(f.name for f in attrs.fields(EndCriteria)) == ("count", "until")


@given(strategies.dispatches())
def test_unchecked_builders_build_what_the_constructors_build(dispatch: Dispatch) -> None:
    """Built from a valid record's values, the unchecked builders give an equal record."""
    rule = dispatch.recurrence
    if rule is not None:
        values = _init_values(rule)
        criteria = rule.end_criteria
        if criteria is not None:
            values["end_criteria"] = _types.unchecked_end_criteria(criteria.count, criteria.until)
        built_rule = _types.unchecked_rule(**values)
        assert built_rule == rule
        assert repr(built_rule) == repr(rule)
    built = _types.unchecked_dispatch(**_init_values(dispatch))
    assert built == dispatch
    assert repr(built) == repr(dispatch)
    assert built.next_run_after(dispatch.start_time) == dispatch.next_run_after(
        dispatch.start_time
    )  # the schedule cache slot is set, to None
    event = _types.unchecked_event(Event.CREATED, dispatch)
    assert event == DispatchEvent(event=Event.CREATED, dispatch=dispatch)
    target = dispatch.target
    if isinstance(target, TargetIds):
        rebuilt: Any = _types.unchecked_target_ids(sorted(target))
    else:
        members = [_types.unchecked_target_category(m.target) for m in target]
        rebuilt = _types.unchecked_target_categories(members)
    assert rebuilt == target
    assert type(rebuilt) is type(target)
    assert hash(rebuilt) == hash(target)
