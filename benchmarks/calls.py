"""Benchmark `list()`, `get()` and `create()`: ours against the official client.

The server (in the runner's server process) answers from responses encoded once, with
the official generated protobuf classes, so it costs the same, and little, for every
client:

* `ListMicrogridDispatches` answers microgrid N with N dispatches, paged: the first
  request's `page_size` picks the pages, later requests carry the token `SIZE:INDEX`;
* `GetMicrogridDispatch` and `CreateMicrogridDispatch` answer with one dispatch.

Every dispatch carries a realistic payload (a Struct with numbers, strings, a nested
object and a list), a recurrence rule and targets (ids or categories).

`list()` runs in a fresh process per run (`python -m benchmarks.calls ...`), which
reports the time from the first request until the user holds every `Dispatch`, the
count it received (fewer than asked is an error, not a figure) and the process's peak
RSS. `get()` and `create()` run one client session per run, each in a fresh process
too (`python -m benchmarks.calls unary ...`), so no client runs beside the threads and
state another left behind.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio

from benchmarks._clients import CONTESTANTS, Contestant, official_warnings_silenced
from benchmarks._server_process import ROOT, thread_cpu_seconds

SERVICE = "frequenz.api.dispatch.v1.MicrogridDispatchService"
CONCURRENCY = 10
CHILD_TIMEOUT = 300.0
"""Seconds one `list()` process may take before its run is recorded as failed."""
_EPOCH = 1_780_000_000
"""Unix seconds of the dispatches' times (mid 2026)."""


@dataclass(frozen=True)
class Plan:
    """How much each case does; the defaults fit every case in a few minutes."""

    list_total: int = 10_000
    """Dispatches each `list()` run fetches."""
    page_sizes: tuple[int, ...] = (100, 1000)
    """The page sizes `list()` asks for."""
    get_calls: int = 1000
    """Sequential `get()` calls per run (p50 and p99 over them)."""
    concurrent_calls: int = 1000
    """`get()` calls per run shared by the concurrent callers."""
    create_calls: int = 500
    """Sequential `create()` calls per run, then as many shared by the concurrent callers."""
    warmup_calls: int = 200
    """Untimed calls before each run's measurements. The first few hundred calls of a
    fresh process cost more, for every client (measured for ours: 239 µs of CPU per call
    over 1,000 calls after 50 warm-up calls, 195 µs after 200), so runs measure the
    steady state after 200."""


QUICK = Plan(list_total=1000, get_calls=100, concurrent_calls=200, create_calls=100, warmup_calls=5)


# --- the server's answers (built in the server process) -------------------------------


def _dispatch_pb(index: int) -> Any:
    """One realistic `Dispatch` message (official protobuf class), numbered `index`."""
    from frequenz.api.dispatch.v1 import dispatch_pb2

    # Any: the protobuf stubs type enum fields by their own classes, not int.
    message: Any = dispatch_pb2.Dispatch()
    metadata = message.metadata
    metadata.dispatch_id = index
    metadata.create_time.FromSeconds(_EPOCH + index)
    metadata.update_time.FromSeconds(_EPOCH + 2 * index)
    data = message.data
    data.type = ("BATTERY_CHARGE", "PV_CURTAILMENT", "EV_SCHEDULE")[index % 3]
    data.start_time.FromSeconds(_EPOCH + 3600 + 60 * index)
    data.duration = 900 + index % 60
    if index % 2:
        data.target.component_ids.ids.extend([index % 50 + 1, index % 50 + 2, index % 50 + 3])
    else:
        categories = data.target.component_categories.categories
        categories.extend([3, 5])  # inverter, battery
    data.is_active = True
    data.is_dry_run = index % 5 == 0
    data.payload.update(
        {
            "power_w": -2500.0 - index,
            "soc_target": 0.8,
            "priority": index % 10,
            "mode": "peak-shaving",
            "site": f"site-{index % 20}",
            "limits": {"min_w": -5000.0, "max_w": 5000.0, "ramp_w_per_s": 250.0},
            "tags": ["scheduled", "bench", index % 7],
        }
    )
    rule = data.recurrence
    rule.freq = 3  # daily
    rule.interval = 1
    rule.end_criteria.count = 30
    rule.byhours.extend([6, 18])
    rule.byweekdays.extend([1, 2, 3, 4, 5])
    return message


class _Pages:
    """Encoded list pages, built once per (total, page size)."""

    def __init__(self) -> None:
        self._dispatches: list[Any] = []
        self._pages: dict[tuple[int, int], list[bytes]] = {}

    def pages(self, total: int, size: int) -> list[bytes]:
        """The encoded responses for `total` dispatches, `size` per page."""
        key = (total, size)
        if key not in self._pages:
            from frequenz.api.common.v1alpha8.pagination import pagination_info_pb2
            from frequenz.api.dispatch.v1 import dispatch_pb2

            while len(self._dispatches) < total:
                self._dispatches.append(_dispatch_pb(len(self._dispatches) + 1))
            pages = []
            count = math.ceil(total / size)
            for index in range(count):
                response = dispatch_pb2.ListMicrogridDispatchesResponse(
                    dispatches=self._dispatches[index * size : min(total, (index + 1) * size)],
                    pagination_info=pagination_info_pb2.PaginationInfo(total_items=total),
                )
                if index + 1 < count:
                    response.pagination_info.next_page_token = f"{size}:{index + 1}"
                pages.append(response.SerializeToString())
            self._pages[key] = pages
        return self._pages[key]


def server_handlers() -> list[Any]:
    """The grpcio generic handlers of the three methods, answering on bytes."""
    # Only the server process needs grpcio and protobuf (benchmark dependencies).
    import grpc
    from frequenz.api.dispatch.v1 import dispatch_pb2

    store = _Pages()
    # Build the pages of the default plan before any client is timed.
    for size in Plan().page_sizes:
        store.pages(Plan().list_total, size)
    one = _dispatch_pb(42)
    get_answer: bytes = dispatch_pb2.GetMicrogridDispatchResponse(
        microgrid_id=1, dispatch=one
    ).SerializeToString()
    create_answer: bytes = dispatch_pb2.CreateMicrogridDispatchResponse(
        dispatch=one
    ).SerializeToString()

    async def list_dispatches(request: bytes, context: Any) -> bytes:
        parsed = dispatch_pb2.ListMicrogridDispatchesRequest.FromString(request)
        params = parsed.pagination_params
        if params.page_token:
            size_text, _, index_text = params.page_token.partition(":")
            size, index = int(size_text), int(index_text)
        else:
            size, index = params.page_size or 100, 0
        return store.pages(parsed.microgrid_id, size)[index]

    async def get(request: bytes, context: Any) -> bytes:
        return get_answer

    async def create(request: bytes, context: Any) -> bytes:
        return create_answer

    return [
        grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "ListMicrogridDispatches": grpc.unary_unary_rpc_method_handler(list_dispatches),
                "GetMicrogridDispatch": grpc.unary_unary_rpc_method_handler(get),
                "CreateMicrogridDispatch": grpc.unary_unary_rpc_method_handler(create),
            },
        )
    ]


# --- the clients ----------------------------------------------------------------------


class DispatchCalls(Protocol):
    """The three calls, as each client makes them."""

    async def list_all(self, microgrid_id: int, page_size: int) -> list[Any]:
        """Fetch every page and return every dispatch, as the user would hold them."""
        ...

    async def get(self) -> Any:
        """Fetch one dispatch."""
        ...

    async def create(self) -> Any:
        """Create one dispatch (start in an hour, with payload, target and recurrence)."""
        ...


_CREATE_PAYLOAD = {"power_w": -2500.0, "mode": "peak-shaving", "limits": {"max_w": 5000.0}}


class _Calls:
    """The calls, made the same way on either client: both take the same arguments.

    Only the types differ: each client gets a target and a rule of its own package.
    """

    def __init__(self, client: Any, target: Any, rule: Any) -> None:
        self._client = client
        self._target = target
        self._rule = rule

    async def list_all(self, microgrid_id: int, page_size: int) -> list[Any]:
        held: list[Any] = []
        async for page in self._client.list(microgrid_id, page_size=page_size):
            # The official client's pages are generators: this also decodes its dispatches.
            held.extend(page)
        return held

    async def get(self) -> Any:
        return await self._client.get(microgrid_id=1, dispatch_id=42)

    async def create(self) -> Any:
        return await self._client.create(
            1,
            "BATTERY_CHARGE",
            datetime.now(UTC) + timedelta(hours=1),
            timedelta(minutes=15),
            self._target,
            payload=_CREATE_PAYLOAD,
            recurrence=self._rule,
        )


def _ours(client: Any) -> _Calls:
    from dispatch_client import EndCriteria, Frequency, RecurrenceRule, TargetIds

    rule = RecurrenceRule(frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(count=30))
    return _Calls(client, TargetIds(1, 2, 3), rule)


def _official(client: Any) -> _Calls:
    from frequenz.client.dispatch.recurrence import EndCriteria, Frequency, RecurrenceRule
    from frequenz.client.dispatch.types import TargetIds

    rule = RecurrenceRule(frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(count=30))
    return _Calls(client, TargetIds(1, 2, 3), rule)


@asynccontextmanager
async def open_calls(contestant: Contestant, url: str) -> AsyncIterator[DispatchCalls]:
    """Connect the contestant's client to the server at `url`."""
    if contestant.transport is not None:
        from dispatch_client import Client

        async with Client(server_url=url, key="bench", transport=contestant.transport) as ours:
            yield _ours(ours)
        return
    with official_warnings_silenced():
        from frequenz.client.dispatch import DispatchApiClient

        official = DispatchApiClient(server_url=url, auth_key="bench")
        try:
            yield _official(official)
        finally:
            await official.disconnect()


# --- list(): one fresh process per run ------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (ru_maxrss is kB on Linux)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


async def _list_once(
    contestant: Contestant, url: str, total: int, page_size: int
) -> dict[str, Any]:
    async with open_calls(contestant, url) as calls:
        # Connects, and loads and warms the decoding code on a dispatch like the listed.
        await calls.get()
        rss_before = _peak_rss_mb()
        started = time.perf_counter()
        held = await calls.list_all(total, page_size)
        seconds = time.perf_counter() - started
        peak = _peak_rss_mb()
    result: dict[str, Any] = {
        "count": len(held),
        "seconds": seconds,
        "us_per_dispatch": seconds / max(1, len(held)) * 1e6,
        "peak_rss_before_mb": rss_before,
        "peak_rss_mb": peak,
    }
    if len(held) != total:
        result["error"] = f"received {len(held)} of {total} dispatches"
    return result


def list_child(argv: list[str]) -> int:
    """In a fresh process: list once and print the figures as JSON.

    Args:
        argv: Client name, server URL, dispatch count, page size.

    Returns:
        The exit status.
    """
    name, url, total, page_size = argv
    contestant = next(c for c in CONTESTANTS if c.name == name)
    with official_warnings_silenced():
        result = anyio.run(
            _list_once, contestant, url, int(total), int(page_size), backend=contestant.backend
        )
    print(json.dumps(result))
    return 0


def _run_child(contestant: Contestant, url: str, total: int, page_size: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.calls",
        contestant.name,
        url,
        str(total),
        str(page_size),
    ]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {CHILD_TIMEOUT:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit status {done.returncode}: {tail[0]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def measure_list(
    url: str, plan: Plan, runs: int, progress: Callable[[str], None]
) -> dict[str, list[dict[str, Any]]]:
    """List `plan.list_total` dispatches per page size, clients taking turns.

    Returns:
        Per client, one dict per run: `us_per_dispatch@SIZE`, `peak_rss_mb@SIZE`,
        `count@SIZE` for each page size, and `error` when a run failed.
    """
    results: dict[str, list[dict[str, Any]]] = {c.name: [] for c in CONTESTANTS}
    for run in range(runs):
        for contestant in CONTESTANTS:
            results[contestant.name].append({})
        for size in plan.page_sizes:
            for contestant in CONTESTANTS:
                progress(f"list run {run + 1}/{runs}, page size {size:,}: {contestant.name}")
                figures = _run_child(contestant, url, plan.list_total, size)
                row = results[contestant.name][run]
                if "error" in figures:
                    row.setdefault("errors", []).append(f"page size {size}: {figures['error']}")
                    progress(f"  failed: {figures['error']}")
                    continue
                row[f"us_per_dispatch@{size}"] = figures["us_per_dispatch"]
                row[f"peak_rss_mb@{size}"] = figures["peak_rss_mb"]
                row[f"count@{size}"] = figures["count"]
    return results


# --- get() and create(): one fresh process per run -------------------------------------


def _percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class Timed:
    """What one batch of calls cost: its wall time and the process's CPU time."""

    count: int
    """The calls made."""
    seconds: float
    """Wall time, first call to last answer."""
    cpu_seconds: float
    """Process CPU time over the batch (`time.process_time()`: every thread of the
    process, so grpcio's C threads count for the official client)."""
    server_cpu_seconds: float | None = None
    """The server process's CPU time over the batch, when it can be read (Linux)."""
    server_busiest_thread_seconds: float | None = None
    """The CPU time of the server's busiest thread over the batch (its Python thread:
    one thread's share of a core is the most the server can give the calls)."""

    @property
    def calls_per_s(self) -> float:
        """Calls per second of wall time."""
        return self.count / self.seconds

    @property
    def cpu_us_per_call(self) -> float:
        """Client CPU microseconds per call."""
        return self.cpu_seconds / self.count * 1e6

    @property
    def server_cpu_us_per_call(self) -> float | None:
        """Server CPU microseconds per call, or None if it could not be read."""
        if self.server_cpu_seconds is None:
            return None
        return self.server_cpu_seconds / self.count * 1e6

    @property
    def server_busy_pct(self) -> float | None:
        """How much of the batch's wall time the server's busiest thread was busy, in %
        (near 100: the server, not the client, sets the pace)."""
        if self.server_busiest_thread_seconds is None:
            return None
        return self.server_busiest_thread_seconds / self.seconds * 100


class _ServerClock:
    """Reads the server process's CPU time per thread (None throughout if it cannot)."""

    def __init__(self, pid: int | None) -> None:
        self._pid = pid

    def __call__(self) -> dict[int, float] | None:
        return None if self._pid is None else thread_cpu_seconds(self._pid)

    def since(self, started: dict[int, float] | None) -> tuple[float | None, float | None]:
        """The server's CPU seconds since `started`: all threads, and the busiest one."""
        now = self()
        if now is None or started is None:
            return None, None
        spent = [seconds - started.get(tid, 0.0) for tid, seconds in now.items()]
        return sum(spent), max(spent, default=0.0)


async def _sequential(
    call: Callable[[], Any], count: int, server: _ServerClock
) -> tuple[list[float], Timed]:
    """`count` calls made one after the other: latencies in microseconds, sorted, and cost."""
    latencies = []
    clock = time.perf_counter
    server_started = server()
    cpu_started = time.process_time()
    first = clock()
    for _ in range(count):
        started = clock()
        await call()
        latencies.append((clock() - started) * 1e6)
    timed = Timed(
        count, clock() - first, time.process_time() - cpu_started, *server.since(server_started)
    )
    latencies.sort()
    return latencies, timed


async def _concurrent(call: Callable[[], Any], count: int, server: _ServerClock) -> Timed:
    """The cost of `count` calls shared by `CONCURRENCY` callers."""
    left = count

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    server_started = server()
    cpu_started = time.process_time()
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENCY):
            group.start_soon(caller)
    return Timed(
        count,
        time.perf_counter() - started,
        time.process_time() - cpu_started,
        *server.since(server_started),
    )


def _record(
    row: dict[str, Any], name: str, latencies: list[float], alone: Timed, shared: Timed
) -> None:
    """Put one call's figures into a run's row, keyed `NAME_...`."""
    row[f"{name}_p50_us"] = _percentile(latencies, 0.50)
    row[f"{name}_p99_us"] = _percentile(latencies, 0.99)
    row[f"{name}_calls_per_s_sequential"] = alone.calls_per_s
    row[f"{name}_calls_per_s_concurrent"] = shared.calls_per_s
    row[f"{name}_cpu_us_sequential"] = alone.cpu_us_per_call
    row[f"{name}_cpu_us_concurrent"] = shared.cpu_us_per_call
    row[f"{name}_server_cpu_us_sequential"] = alone.server_cpu_us_per_call
    row[f"{name}_server_cpu_us_concurrent"] = shared.server_cpu_us_per_call
    row[f"{name}_server_busy_pct_sequential"] = alone.server_busy_pct
    row[f"{name}_server_busy_pct_concurrent"] = shared.server_busy_pct


async def _unary_run(
    contestant: Contestant, url: str, plan: Plan, which: tuple[str, ...], server_pid: int | None
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    server = _ServerClock(server_pid)
    async with open_calls(contestant, url) as calls:
        for _ in range(plan.warmup_calls):
            await calls.get()
        if "get" in which:
            latencies, alone = await _sequential(calls.get, plan.get_calls, server)
            shared = await _concurrent(calls.get, plan.concurrent_calls, server)
            _record(row, "get", latencies, alone, shared)
        if "create" in which:
            for _ in range(plan.warmup_calls):
                await calls.create()
            latencies, alone = await _sequential(calls.create, plan.create_calls, server)
            shared = await _concurrent(calls.create, plan.create_calls, server)
            _record(row, "create", latencies, alone, shared)
    return row


def unary_child(argv: list[str]) -> int:
    """In a fresh process: one client session of `get()`/`create()` calls, as JSON.

    Args:
        argv: Client name, server URL, the calls measured (comma-separated), the plan
            as JSON, and optionally the server's process id (for its CPU time).

    Returns:
        The exit status.
    """
    name, url, which, plan_json, *pid = argv
    server_pid = int(pid[0]) if pid else None
    contestant = next(c for c in CONTESTANTS if c.name == name)
    fields: dict[str, Any] = json.loads(plan_json)
    fields["page_sizes"] = tuple(fields["page_sizes"])
    plan = Plan(**fields)
    with official_warnings_silenced():
        row = anyio.run(
            _unary_run,
            contestant,
            url,
            plan,
            tuple(which.split(",")),
            server_pid,
            backend=contestant.backend,
        )
    print(json.dumps(row))
    return 0


def _run_unary_child(
    contestant: Contestant, url: str, plan: Plan, which: tuple[str, ...], server_pid: int | None
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.calls",
        "unary",
        contestant.name,
        url,
        ",".join(which),
        json.dumps(asdict(plan)),
    ]
    if server_pid is not None:
        command.append(str(server_pid))
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return {"errors": [f"no answer within {CHILD_TIMEOUT:g} s"]}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"errors": [f"exit status {done.returncode}: {tail[0]}"]}
    row: dict[str, Any] = json.loads(lines[-1])
    return row


def measure_unary(
    url: str,
    plan: Plan,
    runs: int,
    which: tuple[str, ...],
    progress: Callable[[str], None],
    server_pid: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Measure `get()` and/or `create()`, clients taking turns, each run in a fresh process.

    A fresh process per run keeps the clients apart: once the official client has run,
    grpcio's C threads and state stay in the process and cost CPU (and a core) to
    whatever runs next in it (measured: our `get()` took 195 µs of CPU per call in a
    process of its own, 241-281 µs after the official client had run beside it).

    The server's CPU per call is measured too when `server_pid` is given (and its CPU
    time can be read): on a 2-core machine client and server share the cores, so with
    10 callers calls/s cannot exceed 2 s / (client + server CPU per call).

    Returns:
        Per client, one dict per run: for each of `get` and `create` measured,
        `NAME_p50_us`, `NAME_p99_us`, `NAME_calls_per_s_sequential`,
        `NAME_calls_per_s_concurrent`, `NAME_cpu_us_sequential`,
        `NAME_cpu_us_concurrent` (client CPU µs per call),
        `NAME_server_cpu_us_sequential`, `NAME_server_cpu_us_concurrent` and
        `NAME_server_busy_pct_sequential`/`_concurrent` (how busy the server's busiest
        thread was; None when not measured); or `errors`.
    """
    results: dict[str, list[dict[str, Any]]] = {c.name: [] for c in CONTESTANTS}
    for run in range(runs):
        for contestant in CONTESTANTS:
            progress(f"{' and '.join(which)} run {run + 1}/{runs}: {contestant.name}")
            row = _run_unary_child(contestant, url, plan, which, server_pid)
            if "errors" in row:
                progress(f"  failed: {row['errors'][0]}")
            results[contestant.name].append(row)
    return results


def _main(argv: list[str]) -> int:
    if argv[:1] == ["unary"]:
        return unary_child(argv[1:])
    return list_child(argv)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
