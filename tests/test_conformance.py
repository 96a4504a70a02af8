"""Conformance of our encoding with the official protobuf classes, in both directions.

Direction 1: domain object -> our encoder -> bytes -> the official class's `FromString`
-> compared field by field with the domain object. Direction 2: the official message
built from the domain object by this module (independently of `_codec/_bridge.py`) ->
`SerializeToString` -> our decoder -> equal to the domain object.

Enum numbers are looked up here by the official enums' *names*, so a by-number mix-up in
`_codec/_bridge.py` cannot cancel itself out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from frequenz.api.common.v1alpha8.microgrid.electrical_components import (
    electrical_components_pb2 as components_pb2,
)
from frequenz.api.common.v1alpha8.pagination import pagination_info_pb2
from frequenz.api.common.v1alpha8.streaming import event_pb2
from frequenz.api.dispatch.v1 import dispatch_pb2 as opb
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch_client._codec import _bridge as convert
from dispatch_client._requests import (
    CreateRequest,
    DispatchFilter,
    ListRequest,
    TimeInterval,
    UpdateRequest,
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

from . import strategies as s

CONFORMANCE = settings(max_examples=200, deadline=None)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Official enum wrapper and value-name prefix for each domain enum.
_OFFICIAL_ENUMS: Mapping[type, tuple[Any, str]] = {
    Frequency: (opb.RecurrenceRule.Frequency, "FREQUENCY_"),
    Weekday: (opb.RecurrenceRule.Weekday, "WEEKDAY_"),
    Event: (event_pb2.Event, "EVENT_"),
    ElectricalComponentCategory: (
        components_pb2.ElectricalComponentCategory,
        "ELECTRICAL_COMPONENT_CATEGORY_",
    ),
    BatteryType: (components_pb2.BatteryType, "BATTERY_TYPE_"),
    InverterType: (components_pb2.InverterType, "INVERTER_TYPE_"),
    EvChargerType: (components_pb2.EvChargerType, "EV_CHARGER_TYPE_"),
    SortField: (opb.SortField, "SORT_FIELD_"),
    SortOrder: (opb.SortOrder, "SORT_ORDER_"),
}

_TYPE_FIELD: Mapping[type, str] = {
    BatteryType: "battery",
    InverterType: "inverter",
    EvChargerType: "ev_charger",
}


def wire_number(member: Any) -> Any:
    """The official wire number for a domain member, found by name (unknown: its number).

    Typed `Any`: the official stubs want their own enum value types.
    """
    official, prefix = _OFFICIAL_ENUMS[type(member)]
    if member.is_unknown:
        return int(member)
    return int(official.Value(prefix + member.name))


# ----------------------------------------------------------------------- comparers


def check_timestamp(message: Any, expected: datetime) -> None:
    """Assert a Timestamp holds `expected` exactly, to the microsecond."""
    micros = (expected - _EPOCH) // timedelta(microseconds=1)
    assert (message.seconds, message.nanos) == (micros // 1_000_000, micros % 1_000_000 * 1000)


def check_value(value: Any, expected: Any) -> None:
    """Assert a google.protobuf.Value holds `expected`, of the right kind."""
    kind = value.WhichOneof("kind")
    if expected is None:
        assert kind == "null_value"
    elif isinstance(expected, bool):
        assert kind == "bool_value"
        assert value.bool_value is expected
    elif isinstance(expected, int | float):
        assert kind == "number_value"
        assert value.number_value == float(expected)
        assert math.copysign(1, value.number_value) == math.copysign(1, float(expected))
    elif isinstance(expected, str):
        assert kind == "string_value"
        assert value.string_value == expected
    elif isinstance(expected, dict):
        assert kind == "struct_value"
        check_struct(value.struct_value, expected)
    else:
        assert kind == "list_value"
        assert len(value.list_value.values) == len(expected)
        for item, expected_item in zip(value.list_value.values, expected, strict=True):
            check_value(item, expected_item)


def check_struct(struct: Any, expected: Mapping[str, Any]) -> None:
    """Assert a google.protobuf.Struct holds the payload `expected`."""
    assert set(struct.fields) == set(expected)
    for key, item in expected.items():
        check_value(struct.fields[key], item)


def check_target(message: Any, expected: TargetComponents) -> None:
    """Assert a TargetComponents holds `expected`, in the official client's variant."""
    if isinstance(expected, TargetIds):
        assert message.WhichOneof("components") == "component_ids"
        assert sorted(message.component_ids.ids) == sorted(expected)
        return
    assert message.WhichOneof("components") == "component_categories_types"
    got: list[tuple[int, str | None, int | None]] = []
    for item in message.component_categories_types.categories:
        kind = item.WhichOneof("type")
        got.append((item.category, kind, getattr(item, kind) if kind else None))
    want: list[tuple[int, str | None, int | None]] = []
    for member in expected:
        subtype = member.type
        if subtype is None:
            want.append((wire_number(member.category), None, None))
        else:
            want.append(
                (wire_number(member.category), _TYPE_FIELD[type(subtype)], wire_number(subtype))
            )
    assert sorted(got, key=repr) == sorted(want, key=repr)


def check_end_criteria(message: Any, expected: EndCriteria) -> None:
    """Assert an EndCriteria message holds `expected`."""
    if expected.count is not None:
        assert message.WhichOneof("count_or_until") == "count"
        assert message.count == expected.count
    else:
        assert expected.until is not None
        assert message.WhichOneof("count_or_until") == "until_time"
        check_timestamp(message.until_time, expected.until)


def check_rule_lists(message: Any, rule: RecurrenceRule) -> None:
    """Assert the by* lists of a RecurrenceRule (or its update) match `rule`."""
    assert list(message.byminutes) == list(rule.byminutes)
    assert list(message.byhours) == list(rule.byhours)
    assert list(message.byweekdays) == [wire_number(day) for day in rule.byweekdays]
    assert list(message.bymonthdays) == list(rule.bymonthdays)
    assert list(message.bymonths) == list(rule.bymonths)


def check_recurrence(message: Any, rule: RecurrenceRule) -> None:
    """Assert a RecurrenceRule message holds `rule`."""
    assert message.freq == wire_number(rule.frequency)
    assert message.interval == rule.interval
    assert message.HasField("end_criteria") == (rule.end_criteria is not None)
    if rule.end_criteria is not None:
        check_end_criteria(message.end_criteria, rule.end_criteria)
    check_rule_lists(message, rule)


def check_duration(message: Any, expected: timedelta | None) -> None:
    """Assert the optional `duration` of a message: unset for None, rounded seconds else."""
    assert message.HasField("duration") == (expected is not None)
    if expected is not None:
        assert message.duration == duration_seconds(expected)


def check_dispatch(message: Any, expected: Dispatch) -> None:
    """Assert an official Dispatch message holds every field of `expected`."""
    metadata, data = message.metadata, message.data
    assert metadata.dispatch_id == expected.id
    check_timestamp(metadata.create_time, expected.create_time)
    check_timestamp(metadata.update_time, expected.update_time)
    assert metadata.HasField("end_time") == (expected.end_time is not None)
    if expected.end_time is not None:
        check_timestamp(metadata.end_time, expected.end_time)
    assert data.type == expected.type
    check_timestamp(data.start_time, expected.start_time)
    check_duration(data, expected.duration)
    check_target(data.target, expected.target)
    assert data.is_active is expected.active
    assert data.is_dry_run is expected.dry_run
    check_struct(data.payload, expected.payload)
    assert data.HasField("recurrence") == (expected.recurrence is not None)
    if expected.recurrence is not None:
        check_recurrence(data.recurrence, expected.recurrence)


def check_interval(message: Any, has: bool, expected: TimeInterval | None) -> None:
    """Assert an optional Interval field holds `expected`."""
    assert has == (expected is not None)
    if expected is None:
        return
    assert message.HasField("start_time") == (expected.start is not None)
    if expected.start is not None:
        check_timestamp(message.start_time, expected.start)
    assert message.HasField("end_time") == (expected.end is not None)
    if expected.end is not None:
        check_timestamp(message.end_time, expected.end)


def check_filter(message: Any, expected: DispatchFilter) -> None:
    """Assert an official DispatchFilter holds every criterion of `expected`."""
    assert len(message.targets) == len(expected.targets)
    for target, expected_target in zip(message.targets, expected.targets, strict=True):
        check_target(target, expected_target)
    for name, value in (("is_active", expected.active), ("is_dry_run", expected.dry_run)):
        assert message.HasField(name) == (value is not None)
        assert getattr(message, name) is bool(value)
    if expected.recurring is None:
        assert message.WhichOneof("recurrence") is None
    else:
        assert message.WhichOneof("recurrence") == "is_recurring"
        assert message.is_recurring is expected.recurring
    for field, interval in (
        ("start_time_interval", expected.start_time),
        ("end_time_interval", expected.end_time),
        ("update_time_interval", expected.update_time),
    ):
        check_interval(getattr(message, field), message.HasField(field), interval)
    assert list(message.dispatch_ids) == list(expected.dispatch_ids)
    assert list(message.queries) == list(expected.queries)


# ------------------------------------------------------------------------ builders


def official_timestamp(target: Any, value: datetime) -> None:
    """Set an official Timestamp field from an aware datetime."""
    target.FromDatetime(value)


def _send_order(member: TargetCategory) -> tuple[int, str, int]:
    """The client sends categories by number, then type kind and number (equal bytes)."""
    kind = type(member.type).__name__ if member.type is not None else ""
    return int(member.category), kind, -1 if member.type is None else int(member.type)


def official_target(target: TargetComponents, message: Any, *, deprecated: bool = False) -> None:
    """Fill an official TargetComponents, the deprecated variant if asked and possible.

    Members in the order the client sends them (ids ascending; categories by number,
    then type kind and number), so equal targets give equal bytes.
    """
    if isinstance(target, TargetIds):
        message.component_ids.SetInParent()
        message.component_ids.ids.extend(sorted(target))
        return
    if deprecated and all(member.type is None for member in target):
        message.component_categories.SetInParent()
        message.component_categories.categories.extend(
            wire_number(member.category) for member in target
        )
        return
    message.component_categories_types.SetInParent()
    for member in sorted(target, key=_send_order):
        item = message.component_categories_types.categories.add()
        item.category = wire_number(member.category)
        if member.type is not None:
            setattr(item, _TYPE_FIELD[type(member.type)], wire_number(member.type))


def official_end_criteria(criteria: EndCriteria, message: Any) -> None:
    """Fill an official EndCriteria."""
    if criteria.count is not None:
        message.count = criteria.count
    else:
        assert criteria.until is not None
        official_timestamp(message.until_time, criteria.until)


def official_rule_lists(rule: RecurrenceRule, message: Any) -> None:
    """Fill the by* lists of an official RecurrenceRule (or its update)."""
    message.byminutes.extend(rule.byminutes)
    message.byhours.extend(rule.byhours)
    message.byweekdays.extend(wire_number(day) for day in rule.byweekdays)
    message.bymonthdays.extend(rule.bymonthdays)
    message.bymonths.extend(rule.bymonths)


def official_recurrence(rule: RecurrenceRule, message: Any) -> None:
    """Fill an official RecurrenceRule."""
    message.SetInParent()
    message.freq = wire_number(rule.frequency)
    message.interval = rule.interval
    if rule.end_criteria is not None:
        official_end_criteria(rule.end_criteria, message.end_criteria)
    official_rule_lists(rule, message)


def official_payload(payload: Mapping[str, Any], message: Any) -> None:
    """Fill an official Struct with the official `update()`."""
    message.SetInParent()
    message.update(payload)


def official_dispatch(dispatch: Dispatch, message: Any, *, deprecated: bool = False) -> None:
    """Fill an official Dispatch from a domain dispatch."""
    message.metadata.dispatch_id = dispatch.id
    official_timestamp(message.metadata.create_time, dispatch.create_time)
    official_timestamp(message.metadata.update_time, dispatch.update_time)
    if dispatch.end_time is not None:
        official_timestamp(message.metadata.end_time, dispatch.end_time)
    data = message.data
    data.type = dispatch.type
    official_timestamp(data.start_time, dispatch.start_time)
    if dispatch.duration is not None:
        data.duration = duration_seconds(dispatch.duration)
    official_target(dispatch.target, data.target, deprecated=deprecated)
    data.is_active = dispatch.active
    data.is_dry_run = dispatch.dry_run
    official_payload(dispatch.payload, data.payload)
    if dispatch.recurrence is not None:
        official_recurrence(dispatch.recurrence, data.recurrence)


def official_interval(interval: TimeInterval | None, message: Any) -> None:
    """Fill an official Interval, if there is one."""
    if interval is None:
        return
    message.SetInParent()
    if interval.start is not None:
        official_timestamp(message.start_time, interval.start)
    if interval.end is not None:
        official_timestamp(message.end_time, interval.end)


def official_update_request(request: UpdateRequest) -> Any:
    """The official message for an update request: the mask, and the update holding values."""
    message = opb.UpdateMicrogridDispatchRequest(
        microgrid_id=request.microgrid_id, dispatch_id=request.dispatch_id
    )
    message.update_mask.SetInParent()
    message.update_mask.paths.extend(request.fields)
    update = message.update
    update.SetInParent()
    rule = update.recurrence
    for path, value in request.fields.items():
        if path.startswith("recurrence."):
            rule.SetInParent()
        if path == "start_time":
            official_timestamp(update.start_time, value)
        elif path == "duration" and value is not None:
            update.duration = duration_seconds(value)
        elif path == "target":
            official_target(value, update.target)
        elif path == "is_active":
            update.is_active = value
        elif path == "payload":
            official_payload(value, update.payload)
        elif path == "recurrence.freq":
            rule.freq = wire_number(value)
        elif path == "recurrence.interval":
            rule.interval = value
        elif path == "recurrence.end_criteria" and value is not None:
            official_end_criteria(value, rule.end_criteria)
        elif path == "recurrence.byweekdays":
            rule.byweekdays.extend(wire_number(day) for day in value)
        elif path.startswith("recurrence.by"):
            getattr(rule, path.removeprefix("recurrence.")).extend(value)
    return message


# --------------------------------------------------------------- dispatch, events


@CONFORMANCE
@given(s.dispatches())
def test_dispatch_encodes_as_the_official_class_reads_it(dispatch: Dispatch) -> None:
    """Every dispatch field we encode reads back identically through the official class."""
    data = convert.encode_get_response(dispatch, microgrid_id=7)
    message = opb.GetMicrogridDispatchResponse.FromString(data)
    assert message.microgrid_id == 7
    check_dispatch(message.dispatch, dispatch)


@CONFORMANCE
@given(s.dispatches(), st.booleans())
def test_official_dispatch_decodes_to_the_same_domain_object(
    dispatch: Dispatch, deprecated_target: bool
) -> None:
    """A dispatch the official class encodes decodes to an equal domain object."""
    message = opb.GetMicrogridDispatchResponse(microgrid_id=7)
    official_dispatch(dispatch, message.dispatch, deprecated=deprecated_target)
    assert convert.decode_get_response(message.SerializeToString()) == dispatch


@CONFORMANCE
@given(s.dispatch_events())
def test_stream_event_encodes_as_the_official_class_reads_it(event: DispatchEvent) -> None:
    """A stream message carries the event kind by name (unknown: by number) and the dispatch."""
    message = opb.StreamMicrogridDispatchesResponse.FromString(
        convert.encode_stream_response(event)
    )
    assert message.event == wire_number(event.event)
    check_dispatch(message.dispatch, event.dispatch)


@CONFORMANCE
@given(s.dispatch_events())
def test_official_stream_event_decodes_to_the_same_event(event: DispatchEvent) -> None:
    """An official stream message decodes to an equal DispatchEvent."""
    message = opb.StreamMicrogridDispatchesResponse(event=wire_number(event.event))
    official_dispatch(event.dispatch, message.dispatch)
    assert convert.decode_stream_response(message.SerializeToString()) == event


@settings(max_examples=50, deadline=None)
@given(
    st.lists(s.dispatches(), max_size=3),
    st.none() | st.text(),
    st.integers(0, s.UINT32_MAX),
)
def test_list_response_round_trips_through_the_official_class(
    dispatches: list[Dispatch], token: str | None, total: int
) -> None:
    """A list response keeps dispatches, total and token (empty token means last page)."""
    data = convert.encode_list_response(dispatches, next_page_token=token, total_items=total)
    message = opb.ListMicrogridDispatchesResponse.FromString(data)
    assert len(message.dispatches) == len(dispatches)
    for item, dispatch in zip(message.dispatches, dispatches, strict=True):
        check_dispatch(item, dispatch)
    assert message.pagination_info.total_items == total
    assert message.pagination_info.HasField("next_page_token") == (token is not None)

    official = opb.ListMicrogridDispatchesResponse(
        pagination_info=pagination_info_pb2.PaginationInfo(total_items=total)
    )
    if token is not None:
        official.pagination_info.next_page_token = token
    for dispatch in dispatches:
        official_dispatch(dispatch, official.dispatches.add())
    page = convert.decode_list_response(official.SerializeToString())
    assert page == (dispatches, token or None, total)


# ------------------------------------------------------------------------- list


@CONFORMANCE
@given(s.list_requests())
def test_list_request_encodes_as_the_official_class_reads_it(request: ListRequest) -> None:
    """Every filter criterion, the sort options and the pagination reach the wire."""
    message = opb.ListMicrogridDispatchesRequest.FromString(convert.encode_list_request(request))
    assert message.microgrid_id == request.microgrid_id
    assert message.HasField("filter")
    check_filter(message.filter, request.filter)
    sorted_ = (request.sort_field, request.sort_order) != (
        SortField.UNSPECIFIED,
        SortOrder.UNSPECIFIED,
    )
    assert message.HasField("sort_options") == sorted_
    assert message.sort_options.sort_field == wire_number(request.sort_field)
    assert message.sort_options.sort_order == wire_number(request.sort_order)
    params = message.pagination_params
    if request.page_token is not None:
        assert params.WhichOneof("params") == "page_token"
        assert params.page_token == request.page_token
    elif request.page_size is not None:
        assert params.WhichOneof("params") == "page_size"
        assert params.page_size == request.page_size
    else:
        assert not message.HasField("pagination_params")


@CONFORMANCE
@given(s.list_requests())
def test_official_list_request_decodes_to_the_same_request(request: ListRequest) -> None:
    """An official list request decodes to an equal ListRequest (the fake server's view)."""
    message = opb.ListMicrogridDispatchesRequest(microgrid_id=request.microgrid_id)
    flt, wanted = message.filter, request.filter
    for target in wanted.targets:
        official_target(target, flt.targets.add())
    if wanted.active is not None:
        flt.is_active = wanted.active
    if wanted.dry_run is not None:
        flt.is_dry_run = wanted.dry_run
    if wanted.recurring is not None:
        flt.is_recurring = wanted.recurring
    official_interval(wanted.start_time, flt.start_time_interval)
    official_interval(wanted.end_time, flt.end_time_interval)
    official_interval(wanted.update_time, flt.update_time_interval)
    flt.dispatch_ids.extend(wanted.dispatch_ids)
    flt.queries.extend(wanted.queries)
    message.sort_options.sort_field = wire_number(request.sort_field)
    message.sort_options.sort_order = wire_number(request.sort_order)
    if request.page_size is not None:
        message.pagination_params.page_size = request.page_size
    if request.page_token is not None:
        message.pagination_params.page_token = request.page_token
    assert convert.decode_list_request(message.SerializeToString()) == request


# ----------------------------------------------------------------------- create


@CONFORMANCE
@given(s.create_requests())
def test_create_request_encodes_as_the_official_class_reads_it(request: CreateRequest) -> None:
    """A create request carries its data; "NOW" is no start time plus start_immediately."""
    message = opb.CreateMicrogridDispatchRequest.FromString(convert.encode_create_request(request))
    assert message.microgrid_id == request.microgrid_id
    data = message.dispatch_data
    if request.start_time == "NOW":
        assert not data.HasField("start_time")
        assert message.HasField("start_immediately")
        assert message.start_immediately is True
    else:
        assert isinstance(request.start_time, datetime)
        check_timestamp(data.start_time, request.start_time)
        assert not message.HasField("start_immediately")
    assert data.type == request.type
    check_duration(data, request.duration)
    check_target(data.target, request.target)
    assert data.is_active is request.active
    assert data.is_dry_run is request.dry_run
    check_struct(data.payload, request.payload)
    assert data.HasField("recurrence") == (request.recurrence is not None)
    if request.recurrence is not None:
        check_recurrence(data.recurrence, request.recurrence)


@CONFORMANCE
@given(s.create_requests(), st.booleans())
def test_official_create_request_decodes_to_the_same_request(
    request: CreateRequest, explicit_false: bool
) -> None:
    """An official create request, shaped as the official client does, decodes equal."""
    message = opb.CreateMicrogridDispatchRequest(microgrid_id=request.microgrid_id)
    data = message.dispatch_data
    data.type = request.type
    if request.start_time == "NOW":
        # The official client sends an epoch start time along with start_immediately.
        data.start_time.SetInParent()
        message.start_immediately = True
    else:
        assert isinstance(request.start_time, datetime)
        official_timestamp(data.start_time, request.start_time)
        if explicit_false:
            message.start_immediately = False
    if request.duration is not None:
        data.duration = duration_seconds(request.duration)
    official_target(request.target, data.target)
    data.is_active = request.active
    data.is_dry_run = request.dry_run
    official_payload(request.payload, data.payload)
    if request.recurrence is not None:
        official_recurrence(request.recurrence, data.recurrence)
    assert convert.decode_create_request(message.SerializeToString()) == request


# ----------------------------------------------------------------------- update


@CONFORMANCE
@given(s.update_requests())
def test_update_request_encodes_as_the_official_class_reads_it(request: UpdateRequest) -> None:
    """The update mask lists exactly the changed paths and the update holds their values."""
    message = opb.UpdateMicrogridDispatchRequest.FromString(convert.encode_update_request(request))
    assert (message.microgrid_id, message.dispatch_id) == (
        request.microgrid_id,
        request.dispatch_id,
    )
    assert list(message.update_mask.paths) == list(request.fields)
    update = message.update
    fields = request.fields
    if "start_time" in fields:
        check_timestamp(update.start_time, fields["start_time"])
    if "duration" in fields:
        check_duration(update, fields["duration"])
    else:
        assert not update.HasField("duration")
    if "target" in fields:
        check_target(update.target, fields["target"])
    assert update.HasField("is_active") == ("is_active" in fields)
    if "is_active" in fields:
        assert update.is_active is fields["is_active"]
    assert update.HasField("payload") == ("payload" in fields)
    if "payload" in fields:
        check_struct(update.payload, fields["payload"])
    rule = update.recurrence
    assert rule.HasField("freq") == ("recurrence.freq" in fields)
    if "recurrence.freq" in fields:
        assert rule.freq == wire_number(fields["recurrence.freq"])
    assert rule.HasField("interval") == ("recurrence.interval" in fields)
    if "recurrence.interval" in fields:
        assert rule.interval == fields["recurrence.interval"]
    criteria = fields.get("recurrence.end_criteria")
    assert rule.HasField("end_criteria") == (criteria is not None)
    if criteria is not None:
        check_end_criteria(rule.end_criteria, criteria)
    check_rule_lists(
        rule,
        RecurrenceRule(
            byminutes=fields.get("recurrence.byminutes", ()),
            byhours=fields.get("recurrence.byhours", ()),
            byweekdays=fields.get("recurrence.byweekdays", ()),
            bymonthdays=fields.get("recurrence.bymonthdays", ()),
            bymonths=fields.get("recurrence.bymonths", ()),
        ),
    )


@CONFORMANCE
@given(s.update_requests())
def test_official_update_request_decodes_to_the_same_request(request: UpdateRequest) -> None:
    """An official update request (mask plus values) decodes to an equal UpdateRequest."""
    message = official_update_request(request)
    assert convert.decode_update_request(message.SerializeToString()) == request


# ------------------------------------------------------------- get, delete, stream


@CONFORMANCE
@given(st.integers(1, s.UINT64_MAX), st.integers(1, s.UINT64_MAX))
def test_id_only_messages_match_the_official_classes(microgrid_id: int, dispatch_id: int) -> None:
    """Get, delete and stream requests (and the delete response) carry the ids both ways."""
    for encode, decode, official in (
        (convert.encode_get_request, convert.decode_get_request, opb.GetMicrogridDispatchRequest),
        (
            convert.encode_delete_request,
            convert.decode_delete_request,
            opb.DeleteMicrogridDispatchRequest,
        ),
        (
            convert.encode_delete_response,
            convert.decode_delete_response,
            opb.DeleteMicrogridDispatchResponse,
        ),
    ):
        message = official.FromString(encode(microgrid_id, dispatch_id))
        assert (message.microgrid_id, message.dispatch_id) == (microgrid_id, dispatch_id)
        built = official(microgrid_id=microgrid_id, dispatch_id=dispatch_id)
        assert decode(built.SerializeToString()) == (microgrid_id, dispatch_id)

    stream = opb.StreamMicrogridDispatchesRequest.FromString(
        convert.encode_stream_request(microgrid_id)
    )
    assert stream.microgrid_id == microgrid_id
    built_stream = opb.StreamMicrogridDispatchesRequest(microgrid_id=microgrid_id)
    assert convert.decode_stream_request(built_stream.SerializeToString()) == microgrid_id


# --------------------------------------------------------------- every enum member


def _plain_dispatch(**changes: Any) -> Dispatch:
    """A fixed dispatch, with some fields replaced."""
    fields: dict[str, Any] = {
        "id": 1,
        "type": "t",
        "start_time": datetime(2024, 1, 1, tzinfo=UTC),
        "duration": None,
        "target": TargetIds(1),
        "active": True,
        "dry_run": False,
        "payload": {},
        "recurrence": None,
        "create_time": datetime(2024, 1, 1, tzinfo=UTC),
        "update_time": datetime(2024, 1, 1, tzinfo=UTC),
    }
    fields.update(changes)
    return Dispatch(**fields)


def test_every_enum_member_maps_by_name_both_ways() -> None:
    """Each known member of every enum reaches the wire as the official member of the same name."""
    categories = [TargetCategories(member) for member in ElectricalComponentCategory]
    subtypes = [
        TargetCategories(member)
        for enum in (BatteryType, InverterType, EvChargerType)
        for member in enum
    ]
    dispatches = [_plain_dispatch(target=target) for target in categories + subtypes]
    dispatches += [
        _plain_dispatch(
            recurrence=RecurrenceRule(
                frequency=frequency,
                interval=1,
                byweekdays=list(Weekday),
            )
        )
        for frequency in Frequency
    ]
    for dispatch in dispatches:
        for event in Event:
            item = DispatchEvent(event=event, dispatch=dispatch)
            message = opb.StreamMicrogridDispatchesResponse.FromString(
                convert.encode_stream_response(item)
            )
            assert message.event == wire_number(event)
            check_dispatch(message.dispatch, dispatch)
            official = opb.StreamMicrogridDispatchesResponse(event=wire_number(event))
            official_dispatch(dispatch, official.dispatch)
            assert convert.decode_stream_response(official.SerializeToString()) == item
    for field in SortField:
        for order in SortOrder:
            request = ListRequest(microgrid_id=1, sort_field=field, sort_order=order)
            message = opb.ListMicrogridDispatchesRequest.FromString(
                convert.encode_list_request(request)
            )
            assert message.sort_options.sort_field == wire_number(field)
            assert message.sort_options.sort_order == wire_number(order)
            assert convert.decode_list_request(message.SerializeToString()) == request


@CONFORMANCE
@given(s.durations(whole_seconds=False))
def test_fractional_durations_round_like_the_official_client(duration: timedelta | None) -> None:
    """A duration with microseconds is sent as `round(total_seconds())`, as officially."""
    request = CreateRequest(
        microgrid_id=1, type="t", start_time="NOW", duration=duration, target=TargetIds(1)
    )
    message = opb.CreateMicrogridDispatchRequest.FromString(convert.encode_create_request(request))
    assert message.dispatch_data.HasField("duration") == (duration is not None)
    if duration is not None:
        assert message.dispatch_data.duration == round(duration.total_seconds())
