"""The hand-written request encoder (`_codec._encode`) against the official protobuf classes.

For random valid requests, the official message is built here from the domain record,
independently of both of our encoders, and serialized deterministically (upb); the fast
encoder's bytes must be exactly those. The betterproto2 reference encoder must write a
message the official parser reads as the same message (its bytes may order map entries
differently), and the fast encoder's bytes must decode back to the request.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2 as opb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch_client._codec import FAST, reference
from dispatch_client._codec import _bridge as bridge
from dispatch_client._codec import _encode as fast
from dispatch_client._requests import (
    MAX_PAYLOAD_DEPTH,
    CreateRequest,
    DispatchFilter,
    ListRequest,
    TimeInterval,
    UpdateRequest,
    duration_seconds,
)
from dispatch_client._types import (
    BatteryType,
    ElectricalComponentCategory,
    EndCriteria,
    Frequency,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetCategory,
    TargetIds,
    Weekday,
)

from . import strategies as s
from .test_conformance import (
    official_interval,
    official_payload,
    official_recurrence,
    official_target,
    official_timestamp,
    official_update_request,
    wire_number,
)

# Example counts keep the module at a few seconds.
ENCODE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def official_list_request(request: ListRequest) -> Any:
    """The official message for a list request: filter always, sort and paging if given."""
    message = opb.ListMicrogridDispatchesRequest(microgrid_id=request.microgrid_id)
    message.filter.SetInParent()
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
    if (request.sort_field, request.sort_order) != (SortField.UNSPECIFIED, SortOrder.UNSPECIFIED):
        message.sort_options.SetInParent()
        message.sort_options.sort_field = wire_number(request.sort_field)
        message.sort_options.sort_order = wire_number(request.sort_order)
    if request.page_token is not None:
        message.pagination_params.page_token = request.page_token
    elif request.page_size is not None:
        message.pagination_params.page_size = request.page_size
    return message


def official_create_request(request: CreateRequest) -> Any:
    """The official message for a create request ("NOW": no start time, start_immediately)."""
    message = opb.CreateMicrogridDispatchRequest(microgrid_id=request.microgrid_id)
    data = message.dispatch_data
    data.type = request.type
    if request.start_time == "NOW":
        message.start_immediately = True
    else:
        assert isinstance(request.start_time, datetime)
        official_timestamp(data.start_time, request.start_time)
    if request.duration is not None:
        data.duration = duration_seconds(request.duration)
    official_target(request.target, data.target)
    data.is_active = request.active
    data.is_dry_run = request.dry_run
    official_payload(request.payload, data.payload)
    if request.recurrence is not None:
        official_recurrence(request.recurrence, data.recurrence)
    return message


def _deterministic(message: Any) -> bytes:
    return bytes(message.SerializeToString(deterministic=True))


def assert_encodes_as_official(
    request: Any,
    official: Any,
    encode_fast: Callable[[Any], bytes],
    encode_reference: Callable[[Any], bytes],
    decode: Callable[[bytes], Any],
) -> None:
    """Fast: exactly the official bytes. Reference: the same message. Both: back to `request`."""
    data = encode_fast(request)
    assert data == _deterministic(official), (data.hex(), _deterministic(official).hex())
    reference_bytes = encode_reference(request)
    assert type(official).FromString(reference_bytes) == official
    assert decode(data) == request


# ------------------------------------------------------------------------ properties


@ENCODE
@given(s.list_requests())
def test_list_requests_encode_to_the_official_bytes(request: ListRequest) -> None:
    """Every filter, sort option and pagination variant encodes byte for byte as upb does."""
    assert_encodes_as_official(
        request,
        official_list_request(request),
        fast.encode_list_request,
        bridge.encode_list_request,
        bridge.decode_list_request,
    )


@ENCODE
@given(s.create_requests())
def test_create_requests_encode_to_the_official_bytes(request: CreateRequest) -> None:
    """Create requests (payload, every recurrence field, NOW, durations) encode as upb does."""
    assert_encodes_as_official(
        request,
        official_create_request(request),
        fast.encode_create_request,
        bridge.encode_create_request,
        bridge.decode_create_request,
    )


@ENCODE
@given(s.update_requests())
def test_update_requests_encode_to_the_official_bytes(request: UpdateRequest) -> None:
    """Update requests (field mask, values, cleared fields) encode byte for byte as upb does."""
    assert_encodes_as_official(
        request,
        official_update_request(request),
        fast.encode_update_request,
        bridge.encode_update_request,
        bridge.decode_update_request,
    )


@ENCODE
@given(st.integers(1, s.UINT64_MAX), st.integers(1, s.UINT64_MAX))
def test_id_requests_encode_to_the_official_bytes(microgrid_id: int, dispatch_id: int) -> None:
    """Get, delete and stream requests encode their ids as upb does, on both codecs."""
    ids = {"microgrid_id": microgrid_id, "dispatch_id": dispatch_id}
    for encode, official in (
        ("encode_get_request", opb.GetMicrogridDispatchRequest(**ids)),
        ("encode_delete_request", opb.DeleteMicrogridDispatchRequest(**ids)),
    ):
        assert getattr(fast, encode)(microgrid_id, dispatch_id) == _deterministic(official)
        assert getattr(bridge, encode)(microgrid_id, dispatch_id) == _deterministic(official)
    stream = opb.StreamMicrogridDispatchesRequest(microgrid_id=microgrid_id)
    assert fast.encode_stream_request(microgrid_id) == _deterministic(stream)


# ------------------------------------------------------------------------- examples


def _create(**changes: Any) -> CreateRequest:
    fields: dict[str, Any] = {
        "microgrid_id": 7,
        "type": "PEAK_SHAVING",
        "start_time": datetime(2030, 1, 2, 3, 4, 5, 600_007, tzinfo=UTC),
        "duration": timedelta(minutes=15),
        "target": TargetCategories(
            ElectricalComponentCategory.METER, TargetCategory(BatteryType.LI_ION)
        ),
        "payload": {"a": [1, None, True, "ü", {"b": -0.0}], "": {}},
        "recurrence": RecurrenceRule(
            frequency=Frequency.DAILY,
            interval=2,
            end_criteria=EndCriteria(until=datetime(1960, 5, 6, tzinfo=UTC)),
            byminutes=(0, 59),
            byhours=(23,),
            byweekdays=(Weekday.SUNDAY,),
            bymonthdays=(-31, 31),
            bymonths=(12,),
        ),
    }
    return CreateRequest(**{**fields, **changes})


def _nested(depth: int, how: str) -> Any:
    """A payload value `depth` levels deep: dicts, lists, or both in turn."""
    value: Any = "leaf"
    for level in range(depth):
        wrap_in_dict = how == "dict" or (how == "both" and level % 2)
        value = {"k": value} if wrap_in_dict else [value]
    return value


@pytest.mark.parametrize("how", ["dict", "list", "both"])
def test_payloads_as_deep_as_allowed_encode_to_the_official_bytes(how: str) -> None:
    """A payload nested to the deepest level a request accepts encodes exactly as upb does."""
    request = _create(payload={"top": _nested(MAX_PAYLOAD_DEPTH - 1, how)})
    official = official_create_request(request)
    assert fast.encode_create_request(request) == _deterministic(official)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"k": None},
        {"k": ""},
        {"k": []},
        {"k": {}},
        {"": 0},
        {"n": 2**53, "m": -(2**53)},
        {"f": 5e-324, "g": -1e308},
        {"é": "😀", "a": {"z": 1, "b": 2}},
        {"": 1, "0": 2, "a": 3, "aa": 4, "ab": 5, "b": 6, "\x7f": 7, "é": 8, "😀": 9},
    ],
)
def test_edge_payloads_encode_to_the_official_bytes(payload: dict[str, Any]) -> None:
    """Empty values, empty keys, the largest ints, extreme floats and unicode encode as upb does."""
    request = _create(payload=payload)
    official = official_create_request(request)
    assert fast.encode_create_request(request) == _deterministic(official)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        (2**53 + 1, ValueError),
        (object(), TypeError),
        ({1: "non-str key"}, TypeError),
    ],
)
def test_payload_values_the_wire_cannot_carry_are_rejected(
    bad: Any, error: type[Exception]
) -> None:
    """NaN, infinities, ints beyond 2**53 and non-JSON values raise before any bytes exist."""
    request = _create()
    request.payload["bad"] = [bad]  # changed after the record checked it
    with pytest.raises(error):
        fast.encode_create_request(request)
    with pytest.raises(error):
        bridge.encode_create_request(request)


def test_empty_and_unset_optionals_stay_distinct() -> None:
    """Duration 0 and a false filter flag are sent; None leaves the field out, as upb does."""
    for duration in (None, timedelta(0)):
        request = _create(duration=duration, recurrence=None, payload={})
        official = official_create_request(request)
        assert fast.encode_create_request(request) == _deterministic(official)
        assert official.dispatch_data.HasField("duration") == (duration is not None)
    for flag in (None, False, True):
        listing = ListRequest(microgrid_id=1, filter=DispatchFilter(active=flag, recurring=flag))
        official = official_list_request(listing)
        assert fast.encode_list_request(listing) == _deterministic(official)
        assert official.filter.HasField("is_active") == (flag is not None)


def test_a_list_request_with_every_filter_encodes_to_the_official_bytes() -> None:
    """The benchmark's list request, every criterion set, encodes exactly as upb does."""
    window = TimeInterval(
        start=datetime(2030, 1, 1, tzinfo=UTC), end=datetime(2030, 2, 1, tzinfo=UTC)
    )
    request = ListRequest(
        microgrid_id=3,
        filter=DispatchFilter(
            targets=[TargetIds(3, 1, 2), TargetCategories(ElectricalComponentCategory.BATTERY)],
            active=True,
            dry_run=False,
            recurring=True,
            start_time=window,
            end_time=TimeInterval(start=window.start),
            update_time=TimeInterval(end=window.end),
            dispatch_ids=[1, 2**64 - 1],
            queries=["#4", "peak", ""],
        ),
        sort_field=SortField.START_TIME,
        sort_order=SortOrder.DESCENDING,
        page_size=50,
    )
    assert fast.encode_list_request(request) == _deterministic(official_list_request(request))


def test_the_codecs_offer_the_same_encoders() -> None:
    """FAST encodes with `_encode`, the reference with `_bridge`, request by request."""
    for name in ("list", "create", "update", "get", "delete", "stream"):
        function = f"encode_{name}_request"
        assert getattr(FAST, function) is getattr(fast, function)
        assert getattr(reference(), function) is getattr(bridge, function)


def test_the_fast_codec_never_imports_the_generated_code() -> None:
    """Encoding every request and decoding answers on the fast codec imports no betterproto2."""
    script = """
import sys
from datetime import UTC, datetime, timedelta
from dispatch_client import TargetIds
from dispatch_client._codec import FAST
from dispatch_client._requests import CreateRequest, ListRequest, UpdateRequest
start = datetime(2030, 1, 1, tzinfo=UTC)
FAST.encode_create_request(CreateRequest(
    microgrid_id=1, type="t", start_time=start, duration=None, target=TargetIds(1),
    payload={"a": [1]},
))
FAST.encode_list_request(ListRequest(microgrid_id=1, page_size=5))
FAST.encode_update_request(
    UpdateRequest(microgrid_id=1, dispatch_id=2, fields={"duration": timedelta(1)})
)
FAST.encode_get_request(1, 2)
FAST.encode_delete_request(1, 2)
FAST.encode_stream_request(1)
FAST.decode_get_response(b"\\x12\\x00")
FAST.decode_delete_response(b"\\x08\\x01\\x10\\x02")
print(sorted(name for name in sys.modules if "betterproto" in name or "_proto" in name))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout
