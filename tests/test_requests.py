"""Tests for the request records in `dispatch_client._requests`: validation and update keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatch_client._requests import (
    MAX_PAYLOAD_DEPTH,
    UPDATE_PATHS,
    CreateRequest,
    DispatchFilter,
    ListRequest,
    TimeInterval,
    UpdateRequest,
    check_payload,
    duration_seconds,
    update_from_new_fields,
)
from dispatch_client._types import (
    EndCriteria,
    Frequency,
    RecurrenceRule,
    SortField,
    TargetIds,
    Weekday,
)

T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)


def update(new_fields: Mapping[str, Any]) -> UpdateRequest:
    """Build an update request for microgrid 1, dispatch 2."""
    return update_from_new_fields(new_fields, microgrid_id=1, dispatch_id=2)


def create(**changes: Any) -> CreateRequest:
    """A valid create request with some fields replaced."""
    fields: dict[str, Any] = {
        "microgrid_id": 1,
        "type": "charge",
        "start_time": T0,
        "duration": timedelta(minutes=5),
        "target": TargetIds(1),
    }
    fields.update(changes)
    request: CreateRequest = CreateRequest(**fields)
    return request


# ---------------------------------------------------------------------------- update


def test_official_client_keys_map_to_api_paths() -> None:
    """`active` and `recurrence.frequency` map to the API's `is_active` and `recurrence.freq`."""
    assert update({"active": True}).fields == {"is_active": True}
    assert update({"is_active": False}).fields == {"is_active": False}
    assert update({"recurrence.frequency": 3}).fields == {"recurrence.freq": Frequency.DAILY}
    assert update({"recurrence.freq": Frequency.DAILY}).paths == ("recurrence.freq",)


def test_every_api_path_is_accepted_and_values_are_normalized() -> None:
    """Each update path takes its value; lists become tuples, ints become enum members."""
    request = update(
        {
            "start_time": T0,
            "duration": timedelta(seconds=90),
            "target": TargetIds(4),
            "is_active": True,
            "payload": {"a": [1, {"b": None}]},
            "recurrence.freq": 4,
            "recurrence.interval": 2,
            "recurrence.end_criteria": EndCriteria(count=5),
            "recurrence.byminutes": [0, 30],
            "recurrence.byhours": [8],
            "recurrence.byweekdays": [1, Weekday.FRIDAY],
            "recurrence.bymonthdays": [-1],
            "recurrence.bymonths": [12],
        }
    )
    assert request.paths == UPDATE_PATHS
    assert request.fields["recurrence.freq"] is Frequency.WEEKLY
    assert request.fields["recurrence.byweekdays"] == (Weekday.MONDAY, Weekday.FRIDAY)
    assert request.fields["recurrence.byminutes"] == (0, 30)


def test_paths_are_ordered_canonically_whatever_the_key_order() -> None:
    """Equal updates given in different key orders are equal and list paths alike."""
    first = update({"payload": {}, "active": True, "duration": None})
    second = update({"duration": None, "is_active": True, "payload": {}})
    assert first == second
    assert first.paths == ("duration", "is_active", "payload")


def test_duration_none_clears() -> None:
    """`duration: None` is a valid update meaning "run until stopped"."""
    assert update({"duration": None}).fields == {"duration": None}


def test_bare_recurrence_expands_to_every_recurrence_path() -> None:
    """A whole RecurrenceRule under `recurrence` sets all eight recurrence paths."""
    rule = RecurrenceRule(frequency=Frequency.DAILY, interval=1, byhours=[6])
    fields = update({"recurrence": rule}).fields
    assert list(fields) == [p for p in UPDATE_PATHS if p.startswith("recurrence.")]
    assert fields["recurrence.byhours"] == (6,)
    assert fields["recurrence.end_criteria"] is None


def test_bare_default_recurrence_removes_the_recurrence() -> None:
    """RecurrenceRule() under `recurrence` sends frequency UNSPECIFIED with interval 0."""
    fields = update({"recurrence": RecurrenceRule()}).fields
    assert fields["recurrence.freq"] is Frequency.UNSPECIFIED
    assert fields["recurrence.interval"] == 0


@pytest.mark.parametrize(
    ("new_fields", "match"),
    [
        ({}, "at least one field"),
        ({"type": "x"}, "cannot be updated"),
        ({"dry_run": True}, "cannot be updated"),
        ({"is_dry_run": True}, "cannot be updated"),
        ({"colour": "red"}, "unknown update key 'colour'"),
        ({"recurrence.": 1}, "unknown update key"),
        ({"recurrence.freq.x": 1}, "unknown update key"),
        ({"": 1}, "unknown update key"),
        ({".": 1}, "unknown update key"),
        ({3: 1}, "must be str"),
        ({"recurrence": None}, "whole RecurrenceRule"),
        ({"recurrence": {"freq": 3}}, "whole RecurrenceRule"),
        ({"recurrence": RecurrenceRule(), "recurrence.byhours": [1]}, "both set"),
        ({"active": True, "is_active": True}, "both set"),
        ({"recurrence.freq": 1, "recurrence.frequency": 1}, "both set"),
        ({"active": 1}, "must be a bool"),
        ({"start_time": "NOW"}, "only valid when creating"),
        ({"start_time": datetime(2030, 1, 1)}, "timezone-aware"),
        ({"start_time": 0}, "must be a datetime"),
        ({"duration": 5}, "timedelta"),
        ({"duration": timedelta(seconds=-1)}, "negative"),
        ({"duration": timedelta(seconds=2**32)}, "at most"),
        ({"target": [1, 2]}, "TargetIds or TargetCategories"),
        ({"payload": []}, "must be a dict"),
        ({"payload": {"x": float("inf")}}, "infinities"),
        ({"payload": {"x": 2**53 + 1}}, "double"),
        ({"payload": {1: 2}}, "non-str key"),
        ({"recurrence.freq": "DAILY"}, "must be a Frequency"),
        ({"recurrence.freq": True}, "must be a Frequency"),
        ({"recurrence.interval": 0}, "unless the same update"),
        ({"recurrence.interval": -1}, "recurrence.interval"),
        ({"recurrence.interval": 1.5}, "must be an int"),
        ({"recurrence.end_criteria": 3}, "EndCriteria"),
        ({"recurrence.byminutes": [60]}, "0..59"),
        ({"recurrence.byhours": "8"}, "sequence"),
        ({"recurrence.byhours": 8}, "sequence"),
        ({"recurrence.byweekdays": ["MONDAY"]}, "byweekdays"),
        ({"recurrence.bymonthdays": [0]}, "without 0"),
        ({"recurrence.bymonths": [13]}, "1..12"),
    ],
)
def test_bad_updates_are_value_errors(new_fields: dict[Any, Any], match: str) -> None:
    """Every bad key or value is a clear ValueError, never a KeyError or IndexError."""
    with pytest.raises(ValueError, match=match):
        update(new_fields)


def test_update_fields_must_be_a_mapping() -> None:
    """A list of pairs is not accepted as new_fields."""
    with pytest.raises(ValueError, match="mapping"):
        update([("active", True)])  # type: ignore[arg-type]


def test_update_fields_are_read_only() -> None:
    """The fields of an update request cannot be changed after validation."""
    request = update({"active": True})
    with pytest.raises(TypeError):
        request.fields["is_active"] = False  # type: ignore[index]


def test_interval_zero_is_allowed_with_frequency_unspecified() -> None:
    """Setting frequency UNSPECIFIED and interval 0 together is a valid "no recurrence"."""
    request = update({"recurrence.freq": Frequency.UNSPECIFIED, "recurrence.interval": 0})
    assert request.fields["recurrence.interval"] == 0


@pytest.mark.parametrize(("microgrid_id", "error"), [(0, ValueError), (True, TypeError)])
def test_update_ids_must_be_positive_ints(microgrid_id: Any, error: type[Exception]) -> None:
    """Microgrid and dispatch ids are positive ints; bools are rejected."""
    with pytest.raises(error, match="microgrid_id"):
        update_from_new_fields({"active": True}, microgrid_id=microgrid_id, dispatch_id=1)


# ---------------------------------------------------------------------------- create


def test_create_accepts_now_and_aware_datetimes() -> None:
    """start_time is "NOW" or a timezone-aware datetime; the defaults are active, not dry-run."""
    assert create(start_time="NOW").start_time == "NOW"
    request = create()
    assert (request.active, request.dry_run, request.payload, request.recurrence) == (
        True,
        False,
        {},
        None,
    )


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"start_time": "now"}, ValueError, '"NOW"'),
        ({"start_time": datetime(2030, 1, 1)}, ValueError, "timezone-aware"),
        ({"start_time": 1}, TypeError, "datetime"),
        ({"duration": timedelta(seconds=-1)}, ValueError, "negative"),
        ({"duration": 60}, TypeError, "timedelta"),
        ({"target": {1, 2}}, TypeError, "TargetIds"),
        ({"type": None}, TypeError, "CreateRequest.type"),
        ({"active": 1}, TypeError, "CreateRequest.active"),
        ({"dry_run": None}, TypeError, "CreateRequest.dry_run"),
        ({"payload": {"x": float("nan")}}, ValueError, "NaN"),
        ({"recurrence": {"frequency": 3}}, TypeError, "RecurrenceRule"),
        ({"microgrid_id": 0}, ValueError, "microgrid_id"),
        ({"microgrid_id": 2**64}, ValueError, "microgrid_id"),
        ({"microgrid_id": "1"}, TypeError, "CreateRequest.microgrid_id"),
        ({"microgrid_id": False}, TypeError, "CreateRequest.microgrid_id"),
    ],
)
def test_bad_create_requests_are_rejected(
    changes: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Caller mistakes in a create request raise before anything is encoded."""
    with pytest.raises(error, match=match):
        create(**changes)


def test_duration_zero_and_none_are_distinct() -> None:
    """A zero duration is kept as such, not confused with None."""
    assert create(duration=timedelta(0)).duration == timedelta(0)
    assert create(duration=None).duration is None


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        (timedelta(0), 0),
        (timedelta(microseconds=499_999), 0),
        (timedelta(microseconds=500_000), 0),
        (timedelta(microseconds=500_001), 1),
        (timedelta(seconds=3, microseconds=500_000), 4),
        (timedelta(days=40_000, microseconds=1), 40_000 * 86_400),
    ],
)
def test_duration_seconds_rounds_half_to_even_exactly(duration: timedelta, seconds: int) -> None:
    """Rounding uses integer microseconds, half to even."""
    assert duration_seconds(duration) == seconds


def test_payload_depth_is_limited() -> None:
    """Payloads may nest MAX_PAYLOAD_DEPTH levels of dicts and lists, not more."""
    deep: Any = []
    for _ in range(MAX_PAYLOAD_DEPTH):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper"):
        check_payload({"x": deep})
    shallow: Any = []
    for _ in range(MAX_PAYLOAD_DEPTH - 2):
        shallow = [shallow]
    assert check_payload({"x": shallow}) == {"x": shallow}


# ------------------------------------------------------------------------------ list


def test_list_request_takes_page_size_or_token_not_both() -> None:
    """The first page may carry page_size, later pages only page_token."""
    assert ListRequest(microgrid_id=1, page_size=10).page_size == 10
    assert ListRequest(microgrid_id=1, page_token="t").page_token == "t"
    with pytest.raises(ValueError, match="not both"):
        ListRequest(microgrid_id=1, page_size=10, page_token="t")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"page_size": 0}, ValueError),
        ({"page_size": 2**32}, ValueError),
        ({"page_size": True}, TypeError),
        ({"page_token": ""}, ValueError),
        ({"page_token": 5}, TypeError),
        ({"sort_field": "START_TIME"}, TypeError),
        ({"sort_order": True}, TypeError),
        ({"filter": {"active": True}}, TypeError),
    ],
)
def test_bad_list_requests_are_rejected(changes: dict[str, Any], error: type[Exception]) -> None:
    """Out-of-range pages, wrong types and bad ids are caller errors."""
    with pytest.raises(error):
        ListRequest(microgrid_id=1, **changes)


def test_list_request_converts_sort_numbers_to_enum_members() -> None:
    """An int sort field becomes the enum member (or an UNKNOWN pseudo-member)."""
    assert ListRequest(microgrid_id=1, sort_field=1).sort_field is SortField.START_TIME
    assert ListRequest(microgrid_id=1, sort_field=77).sort_field.name == "UNKNOWN_77"


def test_filter_sequences_become_tuples_and_are_checked() -> None:
    """Filter lists are stored as tuples; bad members are rejected with their index."""
    dispatch_filter = DispatchFilter(targets=[TargetIds(1)], dispatch_ids=[3], queries=["#3"])
    assert dispatch_filter.targets == (TargetIds(1),)
    assert dispatch_filter.dispatch_ids == (3,)
    assert dispatch_filter.queries == ("#3",)
    with pytest.raises(ValueError, match=r"dispatch_ids\[1\]"):
        DispatchFilter(dispatch_ids=[1, 0])
    with pytest.raises(TypeError, match=r"queries\[0\]"):
        DispatchFilter(queries=[3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence"):
        DispatchFilter(queries="abc")
    with pytest.raises(TypeError, match=r"targets\[0\]"):
        DispatchFilter(targets=[1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"DispatchFilter\.active"):
        DispatchFilter(active=1)  # type: ignore[arg-type]


def test_time_interval_bounds_are_aware_and_ordered() -> None:
    """Interval bounds must be aware datetimes, start not after end; either may be open."""
    assert TimeInterval(start=T0).end is None
    assert TimeInterval(start=T0, end=T0).start == T0
    with pytest.raises(ValueError, match="after"):
        TimeInterval(start=T0, end=T0 - timedelta(seconds=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeInterval(end=datetime(2030, 1, 1))
