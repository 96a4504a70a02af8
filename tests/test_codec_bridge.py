"""Focused tests for `dispatch_client._codec._bridge`: masks, enums, payloads, times and errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from frequenz.api.common.v1alpha8.microgrid.electrical_components import (
    electrical_components_pb2 as components_pb2,
)
from frequenz.api.dispatch.v1 import dispatch_pb2 as opb
from google.protobuf import struct_pb2

from dispatch_client._codec import _bridge as convert
from dispatch_client._codec._bridge import DecodeError
from dispatch_client._requests import (
    CreateRequest,
    DispatchFilter,
    ListRequest,
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
    InverterType,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetCategory,
    TargetIds,
    Weekday,
)

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def make_dispatch(**changes: Any) -> Dispatch:
    """A valid dispatch with some fields replaced."""
    fields: dict[str, Any] = {
        "id": 11,
        "type": "charge",
        "start_time": T0,
        "duration": timedelta(minutes=15),
        "target": TargetIds(1, 2),
        "active": True,
        "dry_run": False,
        "payload": {"power": -1000},
        "recurrence": None,
        "create_time": T0,
        "update_time": T0,
    }
    fields.update(changes)
    dispatch: Dispatch = Dispatch(**fields)
    return dispatch


def official_response(dispatch: opb.Dispatch) -> bytes:
    """Wrap an official Dispatch in a get response and serialize it."""
    response = opb.GetMicrogridDispatchResponse(microgrid_id=1)
    response.dispatch.CopyFrom(dispatch)
    return bytes(response.SerializeToString())


def official(dispatch: Dispatch) -> Any:
    """Our encoding of a dispatch, read by the official class (an `opb.Dispatch`)."""
    data = convert.encode_get_response(dispatch, microgrid_id=1)
    return opb.GetMicrogridDispatchResponse.FromString(data).dispatch


# -------------------------------------------------------------------------- layering


def test_only_the_bridge_imports_the_generated_code() -> None:
    """No module of the package except `_codec/_bridge.py` mentions `_proto`."""
    package = Path(convert.__file__).parent.parent
    offenders = [
        path.name
        for path in package.rglob("*.py")
        if "_proto" not in path.parts
        and path.name != "_bridge.py"
        and re.search(r"\b_proto\b", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_decode_error_is_a_value_error() -> None:
    """Callers catching ValueError also catch DecodeError."""
    assert issubclass(DecodeError, ValueError)


# ----------------------------------------------------------------------------- enums


def test_enum_tables_match_every_name() -> None:
    """Every member of every domain enum has a wire member of the same name, and back."""
    for name, table in convert.ENUM_TABLES.items():
        assert table.unmatched == ([], []), name


def test_categories_are_mapped_by_name() -> None:
    """CHP travels as the wire's CHP, found by name, for every category."""
    for category in ElectricalComponentCategory:
        message = official(make_dispatch(target=TargetCategories(category)))
        (item,) = message.data.target.component_categories_types.categories
        name = f"ELECTRICAL_COMPONENT_CATEGORY_{category.name}"
        assert item.category == components_pb2.ElectricalComponentCategory.Value(name)


@pytest.mark.parametrize(
    ("make", "number"),
    [
        (lambda n: make_dispatch(recurrence=RecurrenceRule(frequency=Frequency(n))), 40),
        (lambda n: make_dispatch(recurrence=RecurrenceRule(byweekdays=[Weekday(n)])), 41),
        (lambda n: make_dispatch(target=TargetCategories(ElectricalComponentCategory(n))), 42),
        (lambda n: make_dispatch(target=TargetCategories(BatteryType(n))), 43),
        (lambda n: make_dispatch(target=TargetCategories(InverterType(n))), 44),
    ],
)
def test_unknown_enum_numbers_survive_a_round_trip(
    make: Callable[[int], Dispatch], number: int
) -> None:
    """An unknown number decodes to an UNKNOWN pseudo-member and re-encodes as itself."""
    dispatch = make(number)
    data = convert.encode_get_response(dispatch, microgrid_id=1)
    decoded = convert.decode_get_response(data)
    assert decoded == dispatch
    assert f"UNKNOWN_{number}" in repr(decoded)
    assert convert.encode_get_response(decoded, microgrid_id=1) == data


def test_unknown_event_and_sort_numbers_are_kept() -> None:
    """Unknown event, sort field and sort order numbers stay visible both ways."""
    event = DispatchEvent(event=Event(9), dispatch=make_dispatch())
    assert convert.decode_stream_response(convert.encode_stream_response(event)).event.name == (
        "UNKNOWN_9"
    )
    request = ListRequest(microgrid_id=1, sort_field=SortField(8), sort_order=SortOrder(7))
    message = opb.ListMicrogridDispatchesRequest.FromString(convert.encode_list_request(request))
    assert (message.sort_options.sort_field, message.sort_options.sort_order) == (8, 7)
    assert convert.decode_list_request(message.SerializeToString()) == request


# --------------------------------------------------------------------------- targets


def test_categories_are_sent_as_category_types_with_and_without_a_type() -> None:
    """Plain categories and typed categories both use `component_categories_types`."""
    target = TargetCategories(ElectricalComponentCategory.METER, BatteryType.LI_ION)
    message = official(make_dispatch(target=target)).data.target
    assert message.WhichOneof("components") == "component_categories_types"
    kinds = sorted(
        (item.category, item.WhichOneof("type") or "")
        for item in message.component_categories_types.categories
    )
    assert kinds == [(2, ""), (5, "battery")]


def test_deprecated_category_set_decodes_without_a_warning() -> None:
    """The deprecated `component_categories` variant decodes, and no DeprecationWarning leaks."""
    message = opb.Dispatch()
    message.data.target.component_categories.categories.extend([5, 2])
    decoded = convert.decode_get_response(official_response(message))
    assert decoded.target == TargetCategories(
        ElectricalComponentCategory.BATTERY, ElectricalComponentCategory.METER
    )


def test_inverter_type_decodes_under_its_category() -> None:
    """A CategoryAndType with an inverter type decodes to that type."""
    message = opb.Dispatch()
    item = message.data.target.component_categories_types.categories.add()
    item.category = 3
    item.inverter = 2
    decoded = convert.decode_get_response(official_response(message))
    assert decoded.target == TargetCategories(TargetCategory(InverterType.PV))


def test_type_under_the_wrong_category_is_a_decode_error() -> None:
    """A battery type under the METER category is rejected."""
    message = opb.Dispatch()
    item = message.data.target.component_categories_types.categories.add()
    item.category = 2
    item.battery = 1
    with pytest.raises(DecodeError, match="battery type"):
        convert.decode_get_response(official_response(message))


def test_unset_target_reads_as_no_components() -> None:
    """A dispatch without a target decodes to an empty TargetIds."""
    assert convert.decode_get_response(official_response(opb.Dispatch())).target == TargetIds()


# --------------------------------------------------------------------------- payload


def test_payload_numbers_are_doubles() -> None:
    """Ints travel as doubles, decode as floats, and 2**53 is the largest allowed magnitude."""
    struct = convert.payload_to_pb({"a": 2**53, "b": -(2**53), "c": 1})
    assert {k: v.number_value for k, v in struct.fields.items()} == {
        "a": 2.0**53,
        "b": -(2.0**53),
        "c": 1.0,
    }
    decoded = convert.payload_from_pb(struct)
    assert all(type(value) is float for value in decoded.values())


@pytest.mark.parametrize(
    "payload",
    [{"a": 2**53 + 1}, {"a": [-(2**60)]}, {"a": float("nan")}, {"a": {"b": float("inf")}}],
)
def test_unrepresentable_payload_numbers_are_value_errors(payload: dict[str, Any]) -> None:
    """Ints beyond 2**53, NaN and infinities cannot be encoded."""
    with pytest.raises(ValueError, match=r"payload"):
        convert.payload_to_pb(payload)


@pytest.mark.parametrize("payload", [{1: "x"}, {"a": {(1, 2): 3}}, {"a": object()}, {"a": b"x"}])
def test_payload_with_bad_keys_or_types_is_a_type_error(payload: dict[Any, Any]) -> None:
    """Non-str keys and non-JSON values are TypeErrors naming the path."""
    with pytest.raises(TypeError, match=r"payload"):
        convert.payload_to_pb(payload)


def test_dispatch_with_an_unsendable_payload_cannot_be_encoded() -> None:
    """A Dispatch may hold a huge int, but encoding it is a ValueError."""
    with pytest.raises(ValueError, match="double"):
        convert.encode_get_response(make_dispatch(payload={"x": 2**64}), microgrid_id=1)


def test_payload_tuples_become_lists_and_empty_values_read_as_null() -> None:
    """A tuple encodes as a list; a Value without a kind decodes as None."""
    struct = convert.payload_to_pb({"t": (1, "a", None, True)})
    assert convert.payload_from_pb(struct) == {"t": [1.0, "a", None, True]}
    official_struct = struct_pb2.Struct()
    official_struct.fields["empty"].SetInParent()
    message = opb.Dispatch()
    message.data.payload.CopyFrom(official_struct)
    assert convert.decode_get_response(official_response(message)).payload == {"empty": None}


def test_a_payload_entry_without_a_value_reads_as_null() -> None:
    """A map entry that carries only its key holds the default Value: None, as protobuf reads it."""
    entry = b"\x0a\x01a"  # key "a", no value field
    payload = b"\x0a" + bytes([len(entry)]) + entry
    data = b"\x3a" + bytes([len(payload)]) + payload
    dispatch = b"\x12" + bytes([len(data)]) + data
    response = b"\x12" + bytes([len(dispatch)]) + dispatch
    assert struct_pb2.Struct.FromString(payload).fields["a"].WhichOneof("kind") is None
    assert convert.decode_get_response(response).payload == {"a": None}


def test_non_finite_payload_number_from_the_wire_is_a_decode_error() -> None:
    """A server sending NaN in a payload gets a DecodeError, not a silent NaN."""
    message = opb.Dispatch()
    message.data.payload.fields["x"].number_value = float("nan")
    with pytest.raises(DecodeError, match="not finite"):
        convert.decode_get_response(official_response(message))


# ----------------------------------------------------------------------------- times


def test_timestamp_nanoseconds_are_truncated_to_microseconds() -> None:
    """999 ns read as 0 us and 1999 ns as 1 us: truncation, never rounding up."""
    message = opb.Dispatch()
    message.data.start_time.seconds = 1_700_000_000
    message.data.start_time.nanos = 1999
    message.metadata.create_time.nanos = 999
    decoded = convert.decode_get_response(official_response(message))
    assert decoded.start_time == datetime.fromtimestamp(1_700_000_000, UTC) + timedelta(
        microseconds=1
    )
    assert decoded.create_time == datetime(1970, 1, 1, tzinfo=UTC)


def test_timestamps_are_sent_in_utc_with_microseconds() -> None:
    """An aware datetime in another zone encodes as the same instant."""
    from datetime import timezone

    start = datetime(2024, 1, 1, 12, 0, 0, 654321, tzinfo=timezone(timedelta(hours=2)))
    message = official(make_dispatch(start_time=start))
    assert message.data.start_time.seconds == int(datetime(2024, 1, 1, 10, tzinfo=UTC).timestamp())
    assert message.data.start_time.nanos == 654_321_000


def test_out_of_range_timestamp_is_a_decode_error() -> None:
    """A timestamp beyond year 9999 cannot become a datetime and is a DecodeError."""
    message = opb.Dispatch()
    message.data.start_time.seconds = 10**12
    with pytest.raises(DecodeError):
        convert.decode_get_response(official_response(message))


def test_unset_duration_and_zero_duration_stay_distinct() -> None:
    """None leaves `duration` unset; 0 sends an explicit 0; both decode as they were."""
    for duration in (None, timedelta(0)):
        dispatch = make_dispatch(duration=duration)
        message = official(dispatch)
        assert message.data.HasField("duration") == (duration is not None)
        assert convert.decode_get_response(official_response(message)).duration == duration


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        (timedelta(seconds=0.5), 0),
        (timedelta(seconds=1.5), 2),
        (timedelta(seconds=2.5), 2),
        (timedelta(seconds=2, microseconds=500_001), 3),
        (timedelta(seconds=2**32 - 1), 2**32 - 1),
    ],
)
def test_durations_round_half_to_even(duration: timedelta, seconds: int) -> None:
    """Durations are whole seconds on the wire, rounded half to even like `round()`."""
    assert official(make_dispatch(duration=duration)).data.duration == seconds


# -------------------------------------------------------------------------- requests


def test_list_request_pagination_is_size_first_then_token() -> None:
    """The first request carries page_size only; a later one carries page_token only."""
    first = opb.ListMicrogridDispatchesRequest.FromString(
        convert.encode_list_request(ListRequest(microgrid_id=3, page_size=20))
    )
    later = opb.ListMicrogridDispatchesRequest.FromString(
        convert.encode_list_request(ListRequest(microgrid_id=3, page_token="abc"))
    )
    assert first.pagination_params.WhichOneof("params") == "page_size"
    assert later.pagination_params.WhichOneof("params") == "page_token"
    assert not first.HasField("sort_options")


def test_list_request_sends_the_recurring_filter_and_update_interval() -> None:
    """`recurring` becomes `is_recurring` and the update-time window is sent."""
    from dispatch_client._requests import TimeInterval

    request = ListRequest(
        microgrid_id=3,
        filter=DispatchFilter(recurring=False, update_time=TimeInterval(start=T0)),
    )
    message = opb.ListMicrogridDispatchesRequest.FromString(convert.encode_list_request(request))
    assert message.filter.WhichOneof("recurrence") == "is_recurring"
    assert message.filter.is_recurring is False
    assert message.filter.update_time_interval.HasField("start_time")
    assert not message.filter.update_time_interval.HasField("end_time")


def test_list_request_with_page_size_zero_or_empty_token_reads_as_unset() -> None:
    """A server reading page_size 0 or an empty token treats it as no pagination given."""
    for params in ({"page_size": 0}, {"page_token": ""}):
        message = opb.ListMicrogridDispatchesRequest(microgrid_id=1)
        for key, value in params.items():
            setattr(message.pagination_params, key, value)
        request = convert.decode_list_request(message.SerializeToString())
        assert (request.page_size, request.page_token) == (None, None)


def test_list_response_empty_token_means_last_page() -> None:
    """An empty next_page_token decodes as None; missing pagination info gives total 0."""
    data = convert.encode_list_response([make_dispatch()], next_page_token="", total_items=1)
    page = convert.decode_list_response(data)
    assert page.next_page_token is None
    assert page.total_items == 1
    assert page.dispatches == [make_dispatch()]
    assert convert.decode_list_response(b"") == ([], None, 0)


def test_list_response_rejects_a_bad_total() -> None:
    """total_items must fit a uint32."""
    with pytest.raises(ValueError, match="total_items"):
        convert.encode_list_response([], next_page_token=None, total_items=-1)


def test_create_now_is_start_immediately_without_start_time() -> None:
    """ "NOW" sends no start time and start_immediately=true, and decodes back to "NOW"."""
    request = CreateRequest(
        microgrid_id=1, type="t", start_time="NOW", duration=None, target=TargetIds(1)
    )
    message = opb.CreateMicrogridDispatchRequest.FromString(convert.encode_create_request(request))
    assert not message.dispatch_data.HasField("start_time")
    assert message.start_immediately is True
    assert convert.decode_create_request(message.SerializeToString()) == request


def test_create_without_any_start_is_a_decode_error() -> None:
    """A create request with neither start_time nor start_immediately is rejected."""
    message = opb.CreateMicrogridDispatchRequest(microgrid_id=1)
    message.dispatch_data.type = "t"
    with pytest.raises(DecodeError, match="start"):
        convert.decode_create_request(message.SerializeToString())


def _mask(new_fields: dict[str, Any]) -> tuple[list[str], Any]:
    request = update_from_new_fields(new_fields, microgrid_id=1, dispatch_id=2)
    message = opb.UpdateMicrogridDispatchRequest.FromString(convert.encode_update_request(request))
    return list(message.update_mask.paths), message.update


def test_update_masks_use_the_api_paths() -> None:
    """`active` and `recurrence.frequency` are sent as `is_active` and `recurrence.freq`."""
    paths, update = _mask({"active": False, "recurrence.frequency": Frequency.HOURLY})
    assert paths == ["is_active", "recurrence.freq"]
    assert update.HasField("is_active")
    assert update.is_active is False
    assert update.recurrence.freq == 2


def test_update_duration_none_clears_the_field() -> None:
    """`duration: None` names the path in the mask and leaves the value unset."""
    paths, update = _mask({"duration": None})
    assert paths == ["duration"]
    assert not update.HasField("duration")


def test_update_with_a_whole_recurrence_names_every_recurrence_path() -> None:
    """A bare `recurrence` key replaces the whole rule: all eight recurrence paths."""
    rule = RecurrenceRule(
        frequency=Frequency.DAILY, interval=2, end_criteria=EndCriteria(count=3), byhours=[5]
    )
    paths, update = _mask({"recurrence": rule})
    assert paths == [
        "recurrence.freq",
        "recurrence.interval",
        "recurrence.end_criteria",
        "recurrence.byminutes",
        "recurrence.byhours",
        "recurrence.byweekdays",
        "recurrence.bymonthdays",
        "recurrence.bymonths",
    ]
    assert (update.recurrence.freq, update.recurrence.interval) == (3, 2)
    assert update.recurrence.end_criteria.count == 3
    assert list(update.recurrence.byhours) == [5]


def test_update_with_unknown_or_missing_mask_paths_is_a_decode_error() -> None:
    """A server rejects an empty mask, an unknown path and a named start_time without value."""
    unknown = opb.UpdateMicrogridDispatchRequest(microgrid_id=1, dispatch_id=2)
    unknown.update_mask.paths.append("type")
    empty = opb.UpdateMicrogridDispatchRequest(microgrid_id=1, dispatch_id=2)
    missing = opb.UpdateMicrogridDispatchRequest(microgrid_id=1, dispatch_id=2)
    missing.update_mask.paths.append("start_time")
    for message, match in ((unknown, "unknown"), (empty, "at least one"), (missing, "start")):
        with pytest.raises(DecodeError, match=match):
            convert.decode_update_request(message.SerializeToString())


# ------------------------------------------------------------------- ids and garbage


@pytest.mark.parametrize("encode", [convert.encode_get_request, convert.encode_delete_request])
def test_bad_ids_are_caller_errors(encode: Callable[[Any, Any], bytes]) -> None:
    """Ids must be positive ints: 0 is a ValueError, a bool or a str a TypeError."""
    with pytest.raises(ValueError, match="microgrid_id"):
        encode(0, 1)
    with pytest.raises(TypeError, match="dispatch_id"):
        encode(1, True)
    with pytest.raises(TypeError, match="microgrid_id"):
        encode("1", 1)


def test_unset_ids_in_a_request_are_a_decode_error() -> None:
    """A server reading a get or stream request without ids gets a DecodeError."""
    with pytest.raises(DecodeError, match="microgrid_id"):
        convert.decode_get_request(b"")
    with pytest.raises(DecodeError, match="microgrid_id"):
        convert.decode_stream_request(b"")


@pytest.mark.parametrize(
    "decode",
    [
        convert.decode_create_response,
        convert.decode_update_response,
        convert.decode_get_response,
        convert.decode_stream_response,
    ],
)
def test_response_without_a_dispatch_is_a_decode_error(decode: Callable[[bytes], Any]) -> None:
    """A response that should carry a dispatch but does not is a DecodeError."""
    with pytest.raises(DecodeError, match="no dispatch"):
        decode(b"")


GARBAGE = [
    pytest.param(b"\x08", id="truncated-varint"),
    pytest.param(b"\x0a\x05ab", id="truncated-length"),
    pytest.param(b"\x00\x00", id="field-number-0"),
    pytest.param(b"\x88\x80\x80\x80\x80\x00\x00", id="key-longer-than-5-bytes"),
    pytest.param(b"\x0b\x08\x01", id="group-without-end"),
    pytest.param(b"\x0c", id="end-group-alone"),
    pytest.param(b"\x0f\x00", id="wire-type-7"),
    pytest.param(b"\x09\x00\x00", id="truncated-fixed64"),
]


@pytest.mark.parametrize("data", GARBAGE)
@pytest.mark.parametrize(
    "decode",
    [
        convert.decode_list_request,
        convert.decode_list_response,
        convert.decode_create_request,
        convert.decode_create_response,
        convert.decode_update_request,
        convert.decode_update_response,
        convert.decode_get_request,
        convert.decode_get_response,
        convert.decode_delete_request,
        convert.decode_delete_response,
        convert.decode_stream_request,
        convert.decode_stream_response,
    ],
)
def test_garbage_bytes_raise_only_decode_error(decode: Callable[[bytes], Any], data: bytes) -> None:
    """Malformed bytes raise DecodeError (never EOFError, KeyError, UnicodeDecodeError ...)."""
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert isinstance(info.value, ValueError)


def test_truncated_nested_field_is_a_decode_error() -> None:
    """A length prefix running past its enclosing message is caught at any depth."""
    message = opb.Dispatch()
    message.data.payload.fields["x"].string_value = "abc"
    data = bytearray(official_response(message))
    data[-1 - len("abc")] += 4  # the string's length byte now overruns its parents
    with pytest.raises(DecodeError, match="truncated"):
        convert.decode_get_response(bytes(data))


def test_a_known_field_with_another_wire_type_is_skipped_as_unknown() -> None:
    """A known field number with a wire type its type does not use is skipped, as protobuf does."""
    dispatch = make_dispatch()
    inner = convert.encode_get_response(dispatch, microgrid_id=1)
    # microgrid_id (uint64) as a length-delimited field, the dispatch (a message) as a varint
    assert convert.decode_get_response(b"\x0a\x02ab" + inner + b"\x10\x01") == dispatch
    with pytest.raises(DecodeError, match="no dispatch"):
        convert.decode_get_response(b"\x10\x01")


def test_unknown_fields_from_a_newer_server_are_ignored() -> None:
    """Fields this client does not know, at any level, do not stop decoding."""
    dispatch = make_dispatch()
    inner = convert.encode_get_response(dispatch, microgrid_id=1)
    extra = b"\xb8\x06\x2a" + b"\xc2\x06\x03abc"  # field 103 varint, field 104 bytes
    # Append unknown fields to the top-level message and to the nested Dispatch.
    response = opb.GetMicrogridDispatchResponse.FromString(inner)
    nested = response.dispatch.SerializeToString() + extra
    data = b"\x08\x01" + b"\x12" + bytes([len(nested)]) + nested + extra
    assert convert.decode_get_response(data) == dispatch


def test_absurdly_deep_nesting_is_a_decode_error() -> None:
    """Payload nesting beyond protobuf's recursion limit is rejected, not a RecursionError."""
    value = b""
    for _ in range(120):
        struct = b"\x0a" + _len(b"\x0a\x01k" + b"\x12" + _len(value))  # Struct{fields{k: value}}
        value = b"\x2a" + _len(struct)  # Value{struct_value}
    data_message = b"\x3a" + _len(struct)  # DispatchData.payload
    dispatch = b"\x12" + _len(data_message)
    with pytest.raises(DecodeError, match="nested"):
        convert.decode_get_response(b"\x12" + _len(dispatch))


def _len(chunk: bytes) -> bytes:
    """Prefix a chunk with its varint length."""
    length, prefix = len(chunk), bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        prefix.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(prefix) + chunk
