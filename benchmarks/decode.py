"""Decoding alone: one list page of bytes into `Dispatch` objects, no network.

What each client does with a `ListMicrogridDispatchesResponse` it has received:

* ours, fast path (the default): `_decode.decode_list_response`, wire bytes straight
  into domain objects;
* ours, reference path (`Client(fast_codec=False)`): `bridge.decode_list_response`,
  through betterproto2's generated messages;
* the official client: upb's `FromString` (which grpcio calls for it), then
  `Dispatch.from_protobuf` for each dispatch, as its `list()` does.

Two pages of 1,000 dispatches: the list case's (realistic; its recurrence rules are all
alike, and its targets repeat), and the same with every rule and every set of target
ids distinct (half the dispatches target categories, as in the list case).
The fast path shares the value of a rule or target whose bytes it has decoded before;
the distinct page shows its cost when there is nothing to share. The sharing caches are
emptied before every page, so a page only shares with itself.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from benchmarks._clients import OFFICIAL, official_warnings_silenced
from benchmarks._report import Metric
from benchmarks.calls import _dispatch_pb

OURS_FAST = "ours, fast path (default)"
OURS_REFERENCE = "ours, reference path (fast_codec=False)"
PAGES = ("shared", "distinct")
METRICS = [
    Metric("decode_us@shared", "µs per dispatch, the list case's page", True, ",.2f"),
    Metric("decode_us@distinct", "µs per dispatch, rules and target ids distinct", True, ",.2f"),
]


def pages(size: int) -> dict[str, bytes]:
    """The two encoded pages of `size` dispatches (official protobuf classes)."""
    from frequenz.api.common.v1alpha8.pagination import pagination_info_pb2
    from frequenz.api.dispatch.v1 import dispatch_pb2

    shared = [_dispatch_pb(index) for index in range(1, size + 1)]
    distinct = [_dispatch_pb(index) for index in range(1, size + 1)]
    for index, message in enumerate(distinct, start=1):
        message.data.recurrence.interval = index
        message.data.recurrence.end_criteria.count = 30 + index
        if index % 2:  # the others target categories, of which there are only a few
            message.data.target.component_ids.ids[:] = [index, index + 1, index + 2]
    info = pagination_info_pb2.PaginationInfo(total_items=size)
    return {
        name: dispatch_pb2.ListMicrogridDispatchesResponse(
            dispatches=dispatches, pagination_info=info
        ).SerializeToString()
        for name, dispatches in (("shared", shared), ("distinct", distinct))
    }


def _decoders() -> dict[str, Callable[[bytes], list[Any]]]:
    from frequenz.api.dispatch.v1 import dispatch_pb2
    from frequenz.client.dispatch.types import Dispatch as OfficialDispatch

    from dispatch_client._codec import _bridge as bridge
    from dispatch_client._codec import _decode

    def fast(data: bytes) -> list[Any]:
        _decode._RULES.clear()
        _decode._TARGETS.clear()
        return _decode.decode_list_response(data).dispatches

    def reference(data: bytes) -> list[Any]:
        return bridge.decode_list_response(data).dispatches

    def official(data: bytes) -> list[Any]:
        response = dispatch_pb2.ListMicrogridDispatchesResponse.FromString(data)
        return [OfficialDispatch.from_protobuf(message) for message in response.dispatches]

    return {OURS_FAST: fast, OURS_REFERENCE: reference, OFFICIAL: official}


def measure(size: int, runs: int, repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Per decoder, `runs` figures of each page: µs per dispatch, mean of `repeats` pages.

    Decoders take turns run by run; each run first checks that every decoder gave
    `size` dispatches, and records an error instead of a figure if not.
    """
    data = pages(size)
    decoders = _decoders()
    runs_by_client: dict[str, list[dict[str, Any]]] = {name: [] for name in decoders}
    with official_warnings_silenced():
        for _ in range(runs):
            for name, decode in decoders.items():
                run: dict[str, Any] = {"errors": []}
                for page in PAGES:
                    gc.collect()
                    start = time.perf_counter()
                    for _ in range(repeats):
                        held = decode(data[page])
                    elapsed = time.perf_counter() - start
                    if len(held) != size:
                        run["errors"].append(f"{page}: decoded {len(held)} of {size}")
                        continue
                    run[f"decode_us@{page}"] = elapsed / (repeats * size) * 1e6
                    del held
                runs_by_client[name].append(run)
    return runs_by_client
