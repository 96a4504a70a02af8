"""Encoding alone: a `create()` and a `list()` request to wire bytes, no network.

What each client does with a request before handing it to gRPC:

* ours, fast codec (the default): `_codec._encode`, the validated request record
  straight to bytes;
* ours, reference codec (`Client(fast_codec=False)`): `_codec._bridge`, through
  betterproto2's generated messages;
* the official client: its conversion to the official protobuf message
  (`DispatchCreateRequest.to_protobuf()` for create, the message its `list()` builds)
  plus upb's `SerializeToString`, which grpcio calls for it.

Two figures per request: `encode`, from what each client holds once its arguments are
checked (our `CreateRequest`/`ListRequest` record; the official client's
`DispatchCreateRequest`, or for list the arguments themselves), and `build + encode`,
from the call's arguments (ours then also builds and validates the record, as
`Client.create()` and `Client.list()` do).

The create request carries a Struct payload with nested values and a recurrence rule;
the list request every filter both clients can send (targets, start and end windows,
active, dry run, ids, queries) and a page size.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks._clients import OFFICIAL, official_warnings_silenced
from benchmarks._report import Metric

OURS_FAST = "ours, fast codec (default)"
OURS_REFERENCE = "ours, reference codec (fast_codec=False)"
METRICS = [
    Metric("encode_us@create", "µs per create request, encode", True, ",.2f"),
    Metric("build_encode_us@create", "µs per create request, build + encode", True, ",.2f"),
    Metric("encode_us@list", "µs per list request (every filter), encode", True, ",.2f"),
    Metric(
        "build_encode_us@list", "µs per list request (every filter), build + encode", True, ",.2f"
    ),
]

_START = datetime(2031, 5, 6, 7, 8, 9, 123_456, tzinfo=UTC)
_PAYLOAD: dict[str, Any] = {
    "power_w": -2500.0,
    "mode": "peak-shaving",
    "limits": {"max_w": 5000.0, "min_w": -5000.0, "ramp": [10, 20, 40]},
    "enabled": True,
    "note": None,
}


_Cases = dict[str, Callable[[], Callable[[], bytes]]]
"""Per metric: a factory of the function to time."""


def _ours() -> dict[str, _Cases]:
    """Our two codecs: for each case, a function making the request and encoding it."""
    from dispatch_client import EndCriteria, Frequency, RecurrenceRule, TargetIds, Weekday
    from dispatch_client._codec import FAST, Codec, reference
    from dispatch_client._requests import CreateRequest, DispatchFilter, ListRequest, TimeInterval
    from dispatch_client._types import ElectricalComponentCategory, TargetCategories

    rule = RecurrenceRule(
        frequency=Frequency.WEEKLY,
        interval=1,
        end_criteria=EndCriteria(count=30),
        byhours=(6, 18),
        byweekdays=(Weekday.MONDAY, Weekday.FRIDAY),
    )

    def create() -> Any:
        return CreateRequest(
            microgrid_id=1,
            type="BATTERY_CHARGE",
            start_time=_START,
            duration=timedelta(minutes=15),
            target=TargetIds(1, 2, 3),
            payload=_PAYLOAD,
            recurrence=rule,
        )

    def listing() -> Any:
        return ListRequest(
            microgrid_id=1,
            filter=DispatchFilter(
                targets=[TargetIds(1, 2, 3), TargetCategories(ElectricalComponentCategory.BATTERY)],
                active=True,
                dry_run=False,
                start_time=TimeInterval(start=_START, end=_START + timedelta(days=1)),
                end_time=TimeInterval(start=_START, end=_START + timedelta(days=2)),
                dispatch_ids=[4, 5, 6],
                queries=["#4", "peak"],
            ),
            page_size=100,
        )

    def cases(codec: Codec) -> _Cases:
        made_create, made_list = create(), listing()
        return {
            "encode_us@create": lambda: lambda: codec.encode_create_request(made_create),
            "build_encode_us@create": lambda: lambda: codec.encode_create_request(create()),
            "encode_us@list": lambda: lambda: codec.encode_list_request(made_list),
            "build_encode_us@list": lambda: lambda: codec.encode_list_request(listing()),
        }

    return {OURS_FAST: cases(FAST), OURS_REFERENCE: cases(reference())}


def _official() -> _Cases:
    """The official client's conversion and upb serialization, as its calls do them."""
    from frequenz.api.common.v1alpha8.pagination.pagination_params_pb2 import PaginationParams
    from frequenz.api.common.v1alpha8.types.interval_pb2 import Interval
    from frequenz.api.dispatch.v1.dispatch_pb2 import (
        DispatchFilter,
        ListMicrogridDispatchesRequest,
    )
    from frequenz.client.base.conversion import to_timestamp
    from frequenz.client.common.microgrid import MicrogridId
    from frequenz.client.common.microgrid.components import ComponentCategory
    from frequenz.client.dispatch._internal_types import DispatchCreateRequest
    from frequenz.client.dispatch.recurrence import (
        EndCriteria,
        Frequency,
        RecurrenceRule,
        Weekday,
    )
    from frequenz.client.dispatch.types import (
        TargetCategories,
        TargetIds,
        _target_components_to_protobuf,
    )

    rule = RecurrenceRule(
        frequency=Frequency.WEEKLY,
        interval=1,
        end_criteria=EndCriteria(count=30),
        byhours=[6, 18],
        byweekdays=[Weekday.MONDAY, Weekday.FRIDAY],
    )

    def create() -> Any:
        return DispatchCreateRequest(
            microgrid_id=MicrogridId(1),
            type="BATTERY_CHARGE",
            start_time=_START,
            duration=timedelta(minutes=15),
            target=TargetIds(1, 2, 3),
            active=True,
            dry_run=False,
            payload=_PAYLOAD,
            recurrence=rule,
        )

    def listing() -> bytes:
        # What the official `list()` builds from its arguments (its own code, inlined).
        def interval(start: datetime, end: datetime) -> Any:
            return Interval(start_time=to_timestamp(start), end_time=to_timestamp(end))

        targets: list[Any] = [TargetIds(1, 2, 3), TargetCategories(ComponentCategory.BATTERY)]
        request = ListMicrogridDispatchesRequest(
            microgrid_id=1,
            filter=DispatchFilter(
                targets=[_target_components_to_protobuf(target) for target in targets],
                start_time_interval=interval(_START, _START + timedelta(days=1)),
                end_time_interval=interval(_START, _START + timedelta(days=2)),
                is_active=True,
                is_dry_run=False,
                dispatch_ids=[4, 5, 6],
                queries=["#4", "peak"],
            ),
            pagination_params=PaginationParams(page_size=100),
        )
        return bytes(request.SerializeToString())

    made = create()
    return {
        "encode_us@create": lambda: lambda: made.to_protobuf().SerializeToString(),
        "build_encode_us@create": lambda: lambda: create().to_protobuf().SerializeToString(),
        # The official list() has no request object between its arguments and the message.
        "encode_us@list": lambda: listing,
        "build_encode_us@list": lambda: listing,
    }


def encoders() -> dict[str, _Cases]:
    """Per client, per metric: a factory of the function to time."""
    with official_warnings_silenced():
        return {**_ours(), OFFICIAL: _official()}


def measure(runs: int, repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Per client, `runs` figures of each metric: µs per request, mean of `repeats` calls.

    Clients take turns run by run.
    """
    by_client = encoders()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in by_client}
    with official_warnings_silenced():
        for _ in range(runs):
            for name, cases in by_client.items():
                run: dict[str, Any] = {"errors": []}
                for metric, factory in cases.items():
                    encode = factory()
                    try:
                        encode()  # also a check that it works at all
                    except Exception as error:  # a failing client is a finding
                        run["errors"].append(f"{metric}: {type(error).__name__}: {error}")
                        continue
                    gc.collect()
                    start = time.perf_counter()
                    for _ in range(repeats):
                        encode()
                    run[metric] = (time.perf_counter() - start) / repeats * 1e6
                results[name].append(run)
    return results
