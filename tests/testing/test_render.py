"""Rendering Dispatch API messages as proto3 JSON, checked against the official protobuf.

`bridge.render_message` (betterproto2's `to_dict()`) must give exactly what the official
`google.protobuf.json_format.MessageToDict` gives for the same bytes: the cassettes'
JSON must be the canonical proto3 JSON any other language's tools produce.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2 as opb
from google.protobuf import json_format
from google.protobuf.message import Message

from dispatch_client import _methods
from dispatch_client._codec import _bridge as bridge
from dispatch_client._requests import (
    CreateRequest,
    DispatchFilter,
    ListRequest,
    TimeInterval,
    update_from_new_fields,
)
from dispatch_client._types import (
    BatteryType,
    Dispatch,
    DispatchEvent,
    ElectricalComponentCategory,
    EndCriteria,
    Event,
    Frequency,
    RecurrenceRule,
    TargetCategories,
    TargetIds,
    Weekday,
)
from dispatch_client.testing import DispatchRenderer

_NOW = datetime(2026, 11, 25, 11, 0, 0, 123456, tzinfo=UTC)

_DISPATCH_JSON: dict[str, Any] = {
    "metadata": {
        "dispatchId": "1099511627776",
        "createTime": "2026-11-25T11:00:00Z",
        "updateTime": "2026-11-25T11:00:00.120Z",
        "endTime": "2026-11-25T11:00:00.000001Z",
    },
    "data": {
        "type": "BATTERY_CHARGE",
        "startTime": "1970-01-01T00:00:00Z",
        "duration": 0,
        "target": {"componentIds": {"ids": ["1", "18446744073709551615"]}},
        "isActive": True,
        "isDryRun": True,
        "payload": {"power": -2.5, "list": [1, "x", None, False], "nested": {"empty": {}}},
        "recurrence": {
            "freq": "FREQUENCY_MONTHLY",
            "interval": 3,
            "endCriteria": {"count": 5},
            "byminutes": [0, 30],
            "byhours": [23],
            "byweekdays": ["WEEKDAY_SUNDAY", "WEEKDAY_MONDAY"],
            "bymonthdays": [-1, 1],
            "bymonths": [12],
        },
    },
}

# (method, direction, official message class, proto3 JSON): hand-written messages that
# reach the corners of the JSON mapping (64-bit ids, nanoseconds, zero-valued optional
# fields, FieldMask, every oneof, Struct values).
_SAMPLES: list[tuple[str, str, type[Message], dict[str, Any]]] = [
    (
        _methods.LIST,
        "request",
        opb.ListMicrogridDispatchesRequest,
        {
            "microgridId": "7",
            "filter": {
                "targets": [
                    {
                        "componentCategoriesTypes": {
                            "categories": [
                                {
                                    "category": "ELECTRICAL_COMPONENT_CATEGORY_BATTERY",
                                    "battery": "BATTERY_TYPE_LI_ION",
                                },
                                {
                                    "category": "ELECTRICAL_COMPONENT_CATEGORY_INVERTER",
                                    "inverter": "INVERTER_TYPE_PV",
                                },
                                {
                                    "category": "ELECTRICAL_COMPONENT_CATEGORY_EV_CHARGER",
                                    "evCharger": "EV_CHARGER_TYPE_AC",
                                },
                            ]
                        }
                    },
                    {"componentCategories": {"categories": ["ELECTRICAL_COMPONENT_CATEGORY_CHP"]}},
                ],
                "isActive": False,
                "isDryRun": False,
                "isRecurring": False,
                "startTimeInterval": {
                    "startTime": "2026-01-01T00:00:00Z",
                    "endTime": "2026-01-02T00:00:00.5Z",
                },
                "dispatchIds": ["1", "2"],
                "queries": ["#4", "charge"],
            },
            "sortOptions": {
                "sortField": "SORT_FIELD_START_TIME",
                "sortOrder": "SORT_ORDER_DESCENDING",
            },
            "paginationParams": {"pageSize": 2},
        },
    ),
    (
        _methods.LIST,
        "request",
        opb.ListMicrogridDispatchesRequest,
        {"microgridId": "7", "paginationParams": {"pageToken": "abc=="}},
    ),
    (
        _methods.LIST,
        "response",
        opb.ListMicrogridDispatchesResponse,
        {
            "dispatches": [_DISPATCH_JSON, {"metadata": {"dispatchId": "3"}, "data": {}}],
            "paginationInfo": {"totalItems": 9, "nextPageToken": ""},
        },
    ),
    (
        _methods.CREATE,
        "request",
        opb.CreateMicrogridDispatchRequest,
        {
            "microgridId": "1",
            "dispatchData": _DISPATCH_JSON["data"],
            "startImmediately": False,
        },
    ),
    (
        _methods.CREATE,
        "response",
        opb.CreateMicrogridDispatchResponse,
        {"dispatch": _DISPATCH_JSON},
    ),
    (
        _methods.UPDATE,
        "request",
        opb.UpdateMicrogridDispatchRequest,
        {
            "microgridId": "1",
            "dispatchId": "2",
            "updateMask": "startTime,recurrence.endCriteria,isActive",
            "update": {
                "startTime": "2026-11-25T11:00:00Z",
                "isActive": False,
                "recurrence": {
                    "freq": "FREQUENCY_HOURLY",
                    "endCriteria": {"untilTime": "2027-01-01T00:00:00Z"},
                },
            },
        },
    ),
    (
        _methods.UPDATE,
        "response",
        opb.UpdateMicrogridDispatchResponse,
        {"dispatch": _DISPATCH_JSON},
    ),
    (
        _methods.GET,
        "request",
        opb.GetMicrogridDispatchRequest,
        {"microgridId": "1", "dispatchId": "9223372036854775807"},
    ),
    (
        _methods.GET,
        "response",
        opb.GetMicrogridDispatchResponse,
        {"microgridId": "1", "dispatch": _DISPATCH_JSON},
    ),
    (
        _methods.DELETE,
        "request",
        opb.DeleteMicrogridDispatchRequest,
        {"microgridId": "1", "dispatchId": "2"},
    ),
    (_methods.DELETE, "response", opb.DeleteMicrogridDispatchResponse, {}),
    (_methods.STREAM, "request", opb.StreamMicrogridDispatchesRequest, {"microgridId": "5"}),
    (
        _methods.STREAM,
        "response",
        opb.StreamMicrogridDispatchesResponse,
        {"dispatch": _DISPATCH_JSON, "event": "EVENT_DELETED"},
    ),
]


def _official_json(message_type: type[Message], data: bytes) -> Any:
    """Render `data` with the official protobuf runtime's JSON mapping."""
    return json_format.MessageToDict(message_type.FromString(data))


@pytest.mark.parametrize(
    ("method", "direction", "message_type", "value"),
    _SAMPLES,
    ids=[f"{method.rsplit('/', 1)[1]}-{direction}" for method, direction, _, _ in _SAMPLES],
)
def test_render_matches_official_json_format(
    method: str, direction: str, message_type: type[Message], value: dict[str, Any]
) -> None:
    """A message built by the official runtime renders to the JSON that runtime gives."""
    data = json_format.ParseDict(value, message_type()).SerializeToString()
    rendered = bridge.render_message(method, direction, data)  # type: ignore[arg-type]
    assert rendered is not None
    type_name, json_value = rendered
    assert type_name == message_type.DESCRIPTOR.full_name
    assert json_value == _official_json(message_type, data)
    # The samples are canonical already, so the rendering gives them back unchanged.
    assert json_value == json_format.MessageToDict(json_format.ParseDict(value, message_type()))


def _dispatch() -> Dispatch:
    return Dispatch(
        id=12,
        type="T",
        start_time=_NOW,
        duration=timedelta(minutes=5),
        target=TargetCategories(BatteryType.LI_ION, ElectricalComponentCategory.INVERTER),
        active=True,
        dry_run=False,
        payload={"a": 1.5, "b": [1, "x", None, True], "c": {"d": 2}},
        recurrence=RecurrenceRule(
            frequency=Frequency.DAILY,
            interval=2,
            end_criteria=EndCriteria(until=_NOW),
            byweekdays=(Weekday.MONDAY,),
        ),
        create_time=_NOW,
        update_time=_NOW,
        end_time=None,
    )


def _encoded_by_us() -> list[tuple[str, str, type[Message], bytes]]:
    """Messages as our own encoders write them, one per method and direction."""
    create = CreateRequest(
        microgrid_id=1,
        type="T",
        start_time="NOW",
        duration=None,
        target=TargetIds(1, 2),
        payload={"x": [1, 2]},
    )
    listing = ListRequest(
        microgrid_id=1,
        filter=DispatchFilter(start_time=TimeInterval(start=_NOW, end=None)),
        page_size=3,
    )
    event = DispatchEvent(event=Event.UPDATED, dispatch=_dispatch())
    update = update_from_new_fields(
        {"start_time": _NOW, "duration": None, "recurrence.end_criteria": EndCriteria(count=2)},
        microgrid_id=1,
        dispatch_id=12,
    )
    return [
        (
            _methods.LIST,
            "request",
            opb.ListMicrogridDispatchesRequest,
            bridge.encode_list_request(listing),
        ),
        (
            _methods.LIST,
            "response",
            opb.ListMicrogridDispatchesResponse,
            bridge.encode_list_response([_dispatch()], next_page_token="t", total_items=4),
        ),
        (
            _methods.CREATE,
            "request",
            opb.CreateMicrogridDispatchRequest,
            bridge.encode_create_request(create),
        ),
        (
            _methods.CREATE,
            "response",
            opb.CreateMicrogridDispatchResponse,
            bridge.encode_create_response(_dispatch()),
        ),
        (
            _methods.UPDATE,
            "request",
            opb.UpdateMicrogridDispatchRequest,
            bridge.encode_update_request(update),
        ),
        (
            _methods.UPDATE,
            "response",
            opb.UpdateMicrogridDispatchResponse,
            bridge.encode_update_response(_dispatch()),
        ),
        (
            _methods.GET,
            "request",
            opb.GetMicrogridDispatchRequest,
            bridge.encode_get_request(1, 12),
        ),
        (
            _methods.GET,
            "response",
            opb.GetMicrogridDispatchResponse,
            bridge.encode_get_response(_dispatch(), microgrid_id=1),
        ),
        (
            _methods.DELETE,
            "request",
            opb.DeleteMicrogridDispatchRequest,
            bridge.encode_delete_request(1, 12),
        ),
        (
            _methods.STREAM,
            "request",
            opb.StreamMicrogridDispatchesRequest,
            bridge.encode_stream_request(1),
        ),
        (
            _methods.STREAM,
            "response",
            opb.StreamMicrogridDispatchesResponse,
            bridge.encode_stream_response(event),
        ),
    ]


@pytest.mark.parametrize(("method", "direction", "message_type", "data"), _encoded_by_us())
def test_render_of_our_encoding_matches_official(
    method: str, direction: str, message_type: type[Message], data: bytes
) -> None:
    """What our encoders write renders as the official runtime renders it."""
    rendered = bridge.render_message(method, direction, data)  # type: ignore[arg-type]
    assert rendered == (message_type.DESCRIPTOR.full_name, _official_json(message_type, data))


def test_render_unknown_enum_numbers_and_fields_as_protobuf_does() -> None:
    """Enum numbers newer than ours render as numbers; unknown fields are left out."""
    message = opb.StreamMicrogridDispatchesResponse()
    message.event = 99  # type: ignore[assignment]
    message.dispatch.data.recurrence.freq = 77  # type: ignore[assignment]
    message.dispatch.data.recurrence.byweekdays.append(42)
    data = message.SerializeToString() + b"\xf8\x01\x05"  # field 31, a varint we lack
    rendered = bridge.render_message(_methods.STREAM, "response", data)
    assert rendered is not None
    assert rendered[1] == _official_json(opb.StreamMicrogridDispatchesResponse, data)
    assert rendered[1] == {
        "dispatch": {"data": {"recurrence": {"freq": 77, "byweekdays": [42]}}},
        "event": 99,
    }


def test_render_timestamps_to_the_microsecond() -> None:
    """Nanoseconds below a microsecond are cut, a documented limit of the rendering."""
    value = {"dispatch": {"metadata": {"createTime": "2026-11-25T11:00:00.123456789Z"}}}
    data = json_format.ParseDict(value, opb.CreateMicrogridDispatchResponse()).SerializeToString()
    rendered = bridge.render_message(_methods.CREATE, "response", data)
    assert rendered is not None
    assert rendered[1] == {"dispatch": {"metadata": {"createTime": "2026-11-25T11:00:00.123456Z"}}}


def test_render_unknown_method_is_none() -> None:
    """A method outside the Dispatch API is not rendered."""
    assert bridge.render_message("/other.Service/Get", "request", b"") is None


@pytest.mark.parametrize("data", [b"\xff", b"\x0a\x05ab", b"\x08", b"\x00\x01", b"\x0c"])
def test_render_undecodable_bytes_is_none(data: bytes) -> None:
    """Bytes that do not parse as the method's message are not rendered."""
    assert bridge.render_message(_methods.GET, "request", data) is None


def test_render_empty_message() -> None:
    """An empty message renders as an empty JSON object of its type."""
    assert bridge.render_message(_methods.DELETE, "response", b"") == (
        "frequenz.api.dispatch.v1.DeleteMicrogridDispatchResponse",
        {},
    )


def test_render_rejects_a_bad_direction() -> None:
    """A direction other than request or response is a caller mistake."""
    with pytest.raises(ValueError, match="direction"):
        bridge.render_message(_methods.GET, "reply", b"")  # type: ignore[arg-type]


def test_dispatch_renderer_renders_through_convert() -> None:
    """The renderer the cassettes use gives render_message's answer."""
    data = bridge.encode_get_request(3, 4)
    renderer = DispatchRenderer()
    assert renderer.render(_methods.GET, "request", data) == (
        "frequenz.api.dispatch.v1.GetMicrogridDispatchRequest",
        {"microgridId": "3", "dispatchId": "4"},
    )
    assert renderer.render(_methods.GET, "response", b"\xff") is None
