"""Benchmark stream fan-out (one upstream, many receivers): ours vs the official client.

Usage (the runner's case `stream`; `python benchmarks/stream.py ARGS` is the same):

    python -m benchmarks --only stream [--runs N] [--quick] [--json PATH]

The runner's grpcio (asyncio) server runs in a subprocess, so it does not share the
clients' GIL. For this case it serves `StreamMicrogridDispatches` on bytes and a control
method, `/bench.Control/Emit`, that sends numbered events to every open stream at a
given rate. Each event is a valid `StreamMicrogridDispatchesResponse` whose payload
carries the server's send time (`time.monotonic()`, CLOCK_MONOTONIC: one clock for every
process of the machine) and a sequence number, so each receiver can tell the latency,
the order and what it lost.

For 1, 100 and 1,000 receivers of one microgrid, each client measures:

* a throughput run: events sent as fast as the server can; events/s is the number of
  events over the time from the server's first send to the last receiver's last event;
* a latency run: events at a fixed rate for about a second; p50 and p99 over every
  (event, receiver) pair of "received by the consumer task" minus "sent by the server";
* what was lost: events each receiver reports dropped (ours: `receiver.dropped`) and
  events it never saw (missing sequence numbers, counted for every client);
* memory per receiver: the Python memory (tracemalloc) that opening 1,000 more
  receivers of an already connected stream keeps, divided by 1,000.

Clients: ours (`dispatch_client.Client`) on asyncio with GrpclibTransport and with
H2Transport, ours on trio with H2Transport, and the official
`frequenz.client.dispatch.DispatchApiClient` (asyncio, grpcio). Our receivers get a buffer
as large as the throughput run, so they should drop nothing; the official client's
`stream()` gives each receiver the 50-slot buffer of frequenz-channels, which drops its
oldest events when full, and offers no public way to change it.

Clients take turns run by run (A B C D A B C D ...), so drifts of the machine spread over
all of them. The table gives min/median/max of events/s and the ratio of medians to the
official client, with the medians of p50, p99 and losses; the JSON file keeps every
figure of every run. The 1,000-receiver case sends fewer events (`Plan` caps events x
receivers), so five runs of everything take under two minutes on two cores; `--quick`
is a smoke run of a few seconds. This is a script, not a test: nothing asserts a timing.
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import struct
import sys
import time
import tracemalloc
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

# This directory holds `transports.py`, named like the package the clients import, and
# Python puts the script's directory first on sys.path: take it off.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
# The project root instead, for the scripts' shared module `benchmarks._server_process`.
sys.path.insert(0, str(_HERE.parent))

import anyio  # noqa: E402
import anyio.lowlevel  # noqa: E402

from benchmarks._clients import OFFICIAL, OURS_GRPCLIB, OURS_H2, OURS_H2_TRIO  # noqa: E402
from dispatch_client import (  # noqa: E402
    Client,
    Dispatch,
    DispatchEvent,
    Event,
    TargetIds,
    TransportName,
)
from dispatch_client._codec._bridge import encode_stream_response  # noqa: E402
from dispatch_client._methods import STREAM  # noqa: E402
from transports import GrpclibTransport, H2Transport, RpcError, Transport  # noqa: E402

MICROGRID = 1
CONTROL_SERVICE = "bench.Control"
EMIT = f"/{CONTROL_SERVICE}/Emit"
PHASE_TIMEOUT = 60.0
"""Seconds a run of events may take before the case is recorded as failed (not hung)."""
RUN_TIMEOUT = 180.0
"""Seconds one client's run may take (a few normally) before it is recorded as hung."""
STREAM_WAIT = 10.0
"""Seconds the server waits for the expected number of open streams before Emit fails."""

# Distinct placeholders for the two doubles of the event template: their 8-byte images
# occur once in the encoded message, so the server finds and patches them per event.
_T_MARK = 1234567.125
_SEQ_MARK = 7654321.375


# --- the event template --------------------------------------------------------------------


def event_template() -> tuple[bytes, int, int]:
    """Encode one stream event whose payload is {"t": float, "seq": float}.

    Returns:
        The encoded `StreamMicrogridDispatchesResponse`, and the offsets of the
        little-endian doubles of `t` and `seq` in it.

    Raises:
        RuntimeError: If a placeholder does not occur exactly once.
    """
    when = datetime(2026, 1, 1, tzinfo=UTC)
    dispatch = Dispatch(
        id=1,
        type="BENCH",
        start_time=when,
        duration=None,
        target=TargetIds(1, 2, 3),
        active=True,
        dry_run=False,
        payload={"t": _T_MARK, "seq": _SEQ_MARK},
        recurrence=None,
        create_time=when,
        update_time=when,
    )
    data = encode_stream_response(DispatchEvent(event=Event.UPDATED, dispatch=dispatch))
    offsets = []
    for mark in (_T_MARK, _SEQ_MARK):
        image = struct.pack("<d", mark)
        if data.count(image) != 1:
            raise RuntimeError(f"placeholder {mark} occurs {data.count(image)} times")
        offsets.append(data.index(image))
    return data, offsets[0], offsets[1]


# --- the server (subprocess) -----------------------------------------------------------------


class _Hub:
    """The server's open streams (one queue of sequence numbers each) and their count."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[int]] = set()
        self.changed = asyncio.Condition()

    async def add(self, queue: asyncio.Queue[int]) -> None:
        async with self.changed:
            self.queues.add(queue)
            self.changed.notify_all()

    async def remove(self, queue: asyncio.Queue[int]) -> None:
        async with self.changed:
            self.queues.discard(queue)
            self.changed.notify_all()

    async def wait_for(self, count: int) -> bool:
        """Wait until exactly `count` streams are open; False after `STREAM_WAIT` s."""
        try:
            async with asyncio.timeout(STREAM_WAIT), self.changed:
                await self.changed.wait_for(lambda: len(self.queues) == count)
        except TimeoutError:
            return False
        return True


def server_handlers() -> list[Any]:
    """The grpcio generic handlers of `StreamMicrogridDispatches` and the control method.

    Emit's request is `COUNT:RATE:STREAMS:FIRST`: wait until exactly STREAMS streams are
    open (so a stream the previous client left is gone), then hand the COUNT sequence
    numbers from FIRST on to every stream, RATE per second (0: all at once). Its response
    is the monotonic time at which it started. Each stream stamps an event with the time
    it sends it.
    """
    # Only the server process needs grpcio (a test and benchmark dependency).
    import grpc

    template, t_offset, seq_offset = event_template()
    hub = _Hub()

    async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        # Headers now, so the client's call is established before any event flows.
        await context.send_initial_metadata(())
        await hub.add(queue)
        try:
            message = bytearray(template)
            while True:  # until the client cancels the call
                seq = await queue.get()
                struct.pack_into("<d", message, seq_offset, float(seq))
                struct.pack_into("<d", message, t_offset, time.monotonic())
                yield bytes(message)
        finally:
            await hub.remove(queue)

    async def emit(request: bytes, context: Any) -> bytes:
        count, rate, streams, first = (float(part) for part in request.split(b":"))
        if not await hub.wait_for(int(streams)):
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{len(hub.queues)} streams open, expected {int(streams)}",
            )
        start = time.monotonic()
        for index in range(int(count)):
            if rate > 0:
                await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            for queue in hub.queues:
                queue.put_nowait(int(first) + index)
        return repr(start).encode()

    service, _, method = STREAM[1:].partition("/")
    return [
        grpc.method_handlers_generic_handler(
            service, {method: grpc.unary_stream_rpc_method_handler(stream)}
        ),
        grpc.method_handlers_generic_handler(
            CONTROL_SERVICE, {"Emit": grpc.unary_unary_rpc_method_handler(emit)}
        ),
    ]


async def emit(
    control: Transport, count: int, rate: float, *, streams: int = 1, first: int = 0
) -> float:
    """Ask the server for `count` events at `rate`/s once `streams` streams are open.

    Args:
        control: A transport to the benchmark server.
        count: How many events each stream gets.
        rate: Events per second; 0 sends them as fast as possible.
        streams: How many open streams the server waits for (exactly).
        first: The sequence number of the first event.

    Returns:
        The server's monotonic time when it started sending.

    Raises:
        RpcError: If the streams did not show up in time (FAILED_PRECONDITION).
    """
    request = f"{count}:{rate}:{streams}:{first}".encode()
    reply = await control.unary(EMIT, request, timeout=PHASE_TIMEOUT)
    return float(reply)


# --- the clients -----------------------------------------------------------------------------


class BenchReceiver(Protocol):
    """One receiver of the benchmarked client, as the driver uses it."""

    def __aiter__(self) -> AsyncIterator[Any]:
        """Iterate the events (objects with `.dispatch.payload`)."""
        ...

    @property
    def dropped(self) -> int | None:
        """Events the receiver says it dropped; None if it does not tell."""
        ...

    async def aclose(self) -> None:
        """Close the receiver."""
        ...


class Fanout(Protocol):
    """A connected client that opens receivers of the benchmark microgrid."""

    keeps_upstream: bool
    """Whether the upstream call stays open after the last receiver closed."""

    def open_receiver(self, buffer_size: int | None) -> BenchReceiver:
        """Open a receiver; `buffer_size` None means the client's default."""
        ...


class _OursFanout:
    """Receivers of our `Client.stream()`."""

    keeps_upstream = False

    def __init__(self, client: Client) -> None:
        self._client = client

    def open_receiver(self, buffer_size: int | None) -> BenchReceiver:
        # Our receiver is a BenchReceiver as it is: no wrapper, nothing added per event.
        if buffer_size is None:
            return self._client.stream(MICROGRID)
        return self._client.stream(MICROGRID, buffer_size=buffer_size)


class _OfficialReceiver:
    """A frequenz-channels receiver of the official client, as a `BenchReceiver`."""

    def __init__(self, receiver: Any) -> None:
        self._receiver = receiver

    def __aiter__(self) -> AsyncIterator[Any]:
        iterator: AsyncIterator[Any] = self._receiver.__aiter__()
        return iterator

    @property
    def dropped(self) -> int | None:
        # frequenz-channels counts nothing; the driver counts the missing events.
        return None

    async def aclose(self) -> None:
        self._receiver.close()


class _OfficialFanout:
    """Receivers of the official client's `stream()` (its default 50-slot buffers)."""

    # Its broadcaster keeps the call open until the client stops it, receivers or not.
    keeps_upstream = True

    def __init__(self, client: Any) -> None:
        self._client = client

    def open_receiver(self, buffer_size: int | None) -> BenchReceiver:
        return _OfficialReceiver(self._client.stream(MICROGRID))


@asynccontextmanager
async def _ours(url: str, transport: TransportName) -> AsyncIterator[Fanout]:
    async with Client(server_url=url, key="bench", transport=transport) as client:
        yield _OursFanout(client)


@asynccontextmanager
async def _ours_grpclib(url: str) -> AsyncIterator[Fanout]:
    async with _ours(url, "grpclib") as fanout:
        yield fanout


@asynccontextmanager
async def _ours_h2(url: str) -> AsyncIterator[Fanout]:
    async with _ours(url, "h2") as fanout:
        yield fanout


@asynccontextmanager
async def _official(url: str) -> AsyncIterator[Fanout]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from frequenz.client.dispatch import DispatchApiClient as OfficialClient

        client = OfficialClient(server_url=url, auth_key="bench")
        try:
            yield _OfficialFanout(client)
        finally:
            # Disconnecting alone leaves each broadcaster task retrying on a closed
            # channel; its `stop()` is the only way to end it, and the client keeps the
            # broadcasters in a private dict (frequenz-client-dispatch 1.1.1).
            for broadcaster in list(client._streams.values()):
                await broadcaster.stop()
            await client.disconnect()


@asynccontextmanager
async def _control(url: str, backend: str) -> AsyncIterator[Transport]:
    """A raw transport to the server's control method: grpclib on asyncio, h2 on trio."""
    transport: Transport = (
        H2Transport.from_url(url) if backend == "trio" else GrpclibTransport.from_url(url)
    )
    async with transport:
        yield transport


@dataclass(frozen=True)
class Contestant:
    """A benchmarked client: its name, how to open it, and on which backend."""

    name: str
    factory: Callable[[str], AbstractAsyncContextManager[Fanout]]
    backend: str


CONTESTANTS = (
    Contestant(OURS_GRPCLIB, _ours_grpclib, "asyncio"),
    Contestant(OURS_H2, _ours_h2, "asyncio"),
    Contestant(OURS_H2_TRIO, _ours_h2, "trio"),
    Contestant(OFFICIAL, _official, "asyncio"),
)


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How much each case sends; the defaults fit the whole script in a few minutes."""

    receiver_counts: tuple[int, ...] = (1, 100, 1000)
    """The cases: how many receivers of the one microgrid."""
    max_events: int = 2000
    """Events of a throughput run (fewer when the deliveries cap says so)."""
    max_deliveries: int = 200_000
    """Cap on events x receivers of a throughput run, to keep 1,000 receivers short."""
    latency_rate: float = 200.0
    """Events/s of a latency run (lower when the delivery-rate cap says so)."""
    max_delivery_rate: float = 20_000.0
    """Cap on events/s x receivers of a latency run: a load the clients can carry."""
    latency_seconds: float = 1.0
    """How long a latency run lasts (at least 10 events)."""
    memory_receivers: int = 1000
    """Receivers opened for the memory figure."""

    def throughput_events(self, receivers: int) -> int:
        """Events of the throughput run for this many receivers."""
        return max(50, min(self.max_events, self.max_deliveries // receivers))

    def latency_load(self, receivers: int) -> tuple[int, float]:
        """Events and events/s of the latency run for this many receivers."""
        rate = min(self.latency_rate, self.max_delivery_rate / receivers)
        return max(10, round(rate * self.latency_seconds)), rate


QUICK = Plan(
    receiver_counts=(1, 100),
    max_events=200,
    max_deliveries=20_000,
    latency_seconds=0.2,
    memory_receivers=100,
)


class _Phase:
    """What the receivers saw of one run of events."""

    def __init__(self, first: int, count: int, receivers: int) -> None:
        self.first = first
        self.count = count
        self.receivers = receivers
        self.latencies: list[float] = []
        self.received = [0] * receivers
        self.last_seq = [-1] * receivers
        self.disorder = 0
        self.stale = 0
        self.finished = 0
        self.last_arrival = 0.0
        self.done = anyio.Event()

    def record(self, index: int, payload: dict[str, Any], now: float) -> None:
        """Note that receiver `index` got the event with `payload` at `now`."""
        seq = int(payload["seq"])
        if not self.first <= seq < self.first + self.count:
            # Left over from an earlier run that timed out: not this run's business.
            self.stale += 1
            return
        self.latencies.append(now - payload["t"])
        self.received[index] += 1
        if seq <= self.last_seq[index]:
            self.disorder += 1
        self.last_seq[index] = seq
        # Receivers drop their oldest events, never the newest: the last one always
        # arrives, so it marks the end of the run for that receiver.
        if seq == self.first + self.count - 1:
            self.finished += 1
            self.last_arrival = max(self.last_arrival, now)
            if self.finished == self.receivers:
                self.done.set()

    @property
    def missing(self) -> int:
        """(event, receiver) pairs never delivered."""
        return self.count * self.receivers - sum(self.received)


class _Box:
    """The phase the consumers record into, and the next sequence number of a client's run.

    Sequence numbers never repeat within one client's run, so events of a run of
    events that timed out cannot count in a later one.
    """

    def __init__(self) -> None:
        self.phase: _Phase | None = None
        self.next_seq = 0


async def _consume(receiver: BenchReceiver, index: int, box: _Box) -> None:
    """Take every event of one receiver, as a user's task would, and record it."""
    async for event in receiver:
        now = time.monotonic()
        phase = box.phase
        if phase is not None:
            phase.record(index, event.dispatch.payload, now)


def _percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def _run_events(
    control: Transport, box: _Box, receivers: list[BenchReceiver], count: int, rate: float
) -> dict[str, Any]:
    """Have the server send one run of events and wait until every receiver got the last."""
    phase = _Phase(box.next_seq, count, len(receivers))
    box.next_seq += count
    box.phase = phase
    dropped_before = [receiver.dropped for receiver in receivers]
    result: dict[str, Any] = {"events": count, "rate": rate}
    start: float | None = None
    with anyio.move_on_after(PHASE_TIMEOUT):
        try:
            start = await emit(control, count, rate, first=phase.first)
        except RpcError as error:
            box.phase = None
            return result | {"error": f"Emit failed: {error}"}
        await phase.done.wait()
    box.phase = None
    if start is None or not phase.done.is_set():
        result["error"] = (
            f"timeout after {PHASE_TIMEOUT:g} s: {phase.finished} of {len(receivers)} "
            f"receivers got the last event, {sum(phase.received)} events delivered"
        )
    else:
        result["events_per_s"] = count / (phase.last_arrival - start)
        result["deliveries_per_s"] = result["events_per_s"] * len(receivers)
    ordered = sorted(phase.latencies)
    if ordered:
        result["p50_ms"] = _percentile(ordered, 0.50) * 1000
        result["p99_ms"] = _percentile(ordered, 0.99) * 1000
        result["max_ms"] = ordered[-1] * 1000
    dropped = [
        after - before
        for receiver, before in zip(receivers, dropped_before, strict=True)
        if (after := receiver.dropped) is not None and before is not None
    ]
    if len(dropped) == len(receivers):
        result["dropped"] = sum(dropped)
    result["missing"] = phase.missing
    result["out_of_order"] = phase.disorder
    result["stale"] = phase.stale
    return result


async def _settle(fanout: Fanout, control: Transport) -> str:
    """Wait until the server saw the upstream go, when the last receiver's close ends it.

    Otherwise the next case's Emit could find this upstream still open and send to it.

    Returns:
        "closed", "kept open" (by design of the client), or what went wrong.
    """
    if fanout.keeps_upstream:
        return "kept open"
    try:
        await emit(control, 0, 0.0, streams=0)
    except RpcError as error:
        return f"still open {STREAM_WAIT:g} s after the last receiver closed: {error}"
    return "closed"


async def _fanout_case(
    fanout: Fanout, control: Transport, box: _Box, receivers: int, plan: Plan
) -> dict[str, Any]:
    """Open `receivers` receivers, measure a throughput and a latency run, close them."""
    opened = [fanout.open_receiver(plan.max_events) for _ in range(receivers)]
    result: dict[str, Any] = {}
    try:
        async with anyio.create_task_group() as group:
            for index, receiver in enumerate(opened):
                group.start_soon(_consume, receiver, index, box)
            result["throughput"] = await _run_events(
                control, box, opened, plan.throughput_events(receivers), 0.0
            )
            if "error" in result["throughput"]:
                result["latency"] = {"error": "skipped: the throughput run failed"}
            else:
                count, rate = plan.latency_load(receivers)
                result["latency"] = await _run_events(control, box, opened, count, rate)
            group.cancel_scope.cancel()
    finally:
        for receiver in opened:
            await receiver.aclose()
    result["upstream_after_close"] = await _settle(fanout, control)
    return result


async def _memory_per_receiver(fanout: Fanout, control: Transport, receivers: int) -> float:
    """Bytes of Python memory each receiver keeps, opened on an already connected stream."""
    first = fanout.open_receiver(None)
    opened: list[BenchReceiver] = []
    try:
        await emit(control, 0, 0.0)  # returns once the upstream is open on the server
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            opened = [fanout.open_receiver(None) for _ in range(receivers)]
            # Let any task a receiver starts run its first step.
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    finally:
        for receiver in [first, *opened]:
            await receiver.aclose()
    await _settle(fanout, control)
    return (after - before) / receivers


async def measured_case(
    contestant: Contestant,
    url: str,
    receivers: int,
    plan: Plan,
    measuring: Callable[[], AbstractContextManager[object]],
) -> dict[str, Any]:
    """One fan-out case after a short warm-up one, inside `measuring()` (a profiler).

    Args:
        contestant: The client.
        url: The benchmark server.
        receivers: How many receivers.
        plan: How many events.
        measuring: Entered around the measured case only.

    Returns:
        The case's figures, as in `one_run()`.
    """
    async with _control(url, contestant.backend) as control, contestant.factory(url) as fanout:
        box = _Box()
        await _fanout_case(fanout, control, box, receivers, replace(plan, latency_seconds=0.05))
        with measuring():
            return await _fanout_case(fanout, control, box, receivers, plan)


async def one_run(contestant: Contestant, url: str, plan: Plan) -> dict[str, Any]:
    """Open a client, warm it up, and measure every case and the memory once."""
    results: dict[str, Any] = {"cases": {}}
    # A client that hangs (in a case, or while closing) costs this run, not the script.
    with anyio.move_on_after(RUN_TIMEOUT) as scope:
        async with (
            _control(url, contestant.backend) as control,
            contestant.factory(url) as fanout,
        ):
            box = _Box()
            await _fanout_case(fanout, control, box, 1, replace(plan, latency_seconds=0.05))
            for receivers in plan.receiver_counts:
                try:
                    results["cases"][str(receivers)] = await _fanout_case(
                        fanout, control, box, receivers, plan
                    )
                except RpcError as error:
                    results["cases"][str(receivers)] = {"error": f"{type(error).__name__}: {error}"}
            try:
                results["bytes_per_receiver"] = await _memory_per_receiver(
                    fanout, control, plan.memory_receivers
                )
            except RpcError as error:
                results["memory_error"] = f"{type(error).__name__}: {error}"
    if scope.cancelled_caught:
        results["error"] = f"the run did not finish within {RUN_TIMEOUT:g} s"
    return results


def measure_all(url: str, plan: Plan, runs: int) -> dict[str, list[dict[str, Any]]]:
    """Run every contestant `runs` times, taking turns; each run's results, by client."""
    results: dict[str, list[dict[str, Any]]] = {c.name: [] for c in CONTESTANTS}
    for run in range(runs):
        for contestant in CONTESTANTS:
            print(f"run {run + 1}/{runs}: {contestant.name}", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                result = anyio.run(one_run, contestant, url, plan, backend=contestant.backend)
            except Exception as error:  # a failing client is a finding, not a crash
                result = {"cases": {}, "error": f"{type(error).__name__}: {error}"}
                print(f"  failed: {result['error']}", file=sys.stderr, flush=True)
            result["seconds"] = time.monotonic() - started
            results[contestant.name].append(result)
    return results


# --- reporting ------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    return {
        "runs": values,
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def _anomalies(figures: dict[str, Any]) -> list[str]:
    """What went wrong in one case of one run: errors, disorder, unreported losses."""
    found: list[str] = []
    if "error" in figures:
        found.append(figures["error"])
    for phase in ("throughput", "latency"):
        result = figures.get(phase, {})
        if "error" in result:
            found.append(f"{phase} run: {result['error']}")
        if result.get("out_of_order"):
            found.append(f"{phase} run: {result['out_of_order']} events out of order")
        if result.get("stale"):
            found.append(f"{phase} run: {result['stale']} events left over from a failed run")
        dropped, missing = result.get("dropped"), result.get("missing")
        # After a timeout, "missing" includes events still on their way.
        complete = "error" not in result
        if complete and dropped is not None and missing is not None and dropped != missing:
            found.append(
                f"{phase} run: receivers reported {dropped} dropped, {missing} never arrived"
            )
    upstream = figures.get("upstream_after_close", "closed")
    if upstream not in ("closed", "kept open"):
        found.append(f"upstream {upstream}")
    return found


def summarize(results: dict[str, list[dict[str, Any]]], plan: Plan) -> dict[str, Any]:
    """Min/median/max of each figure per case and client, and ratios to the official client."""
    metrics = {
        "events_per_s": ("throughput", "events_per_s"),
        "p50_ms": ("latency", "p50_ms"),
        "p99_ms": ("latency", "p99_ms"),
        "lost_throughput": ("throughput", "missing"),
        "lost_latency": ("latency", "missing"),
        "dropped_throughput": ("throughput", "dropped"),
    }
    summary: dict[str, Any] = {}
    for receivers in plan.receiver_counts:
        case: dict[str, Any] = {}
        for name, runs in results.items():
            row: dict[str, Any] = {"notes": []}
            for metric, (phase, key) in metrics.items():
                values = []
                for run in runs:
                    figures = run["cases"].get(str(receivers), {}).get(phase, {})
                    # A failed run's figures stay in the JSON, out of the statistics.
                    value = None if "error" in figures else figures.get(key)
                    if value is not None:
                        values.append(float(value))
                row[metric] = _stats(values)
            for number, run in enumerate(runs, start=1):
                figures = run["cases"].get(str(receivers))
                if figures is None:
                    found = [run.get("error", "not measured")]
                else:
                    found = _anomalies(figures)
                row["notes"] += [f"run {number}: {text}" for text in found]
            case[name] = row
        base = case.get(OFFICIAL, {}).get("events_per_s")
        for row in case.values():
            mine = row["events_per_s"]
            row["events_per_s_vs_official"] = (
                mine["median"] / base["median"] if mine and base and base["median"] else None
            )
        summary[str(receivers)] = case
    memory: dict[str, Any] = {}
    for name, runs in results.items():
        memory[name] = _stats(
            [run["bytes_per_receiver"] for run in runs if "bytes_per_receiver" in run]
        )
    summary["bytes_per_receiver"] = memory
    summary["memory_notes"] = [
        f"memory, {name}, run {number}: {run.get('memory_error') or run.get('error')}"
        for name, runs in results.items()
        for number, run in enumerate(runs, start=1)
        if "bytes_per_receiver" not in run
    ]
    return summary


def _median(row: dict[str, Any], metric: str, spec: str) -> str:
    stats = row.get(metric)
    return "n/a" if stats is None else format(stats["median"], spec)


def table(summary: dict[str, Any], plan: Plan) -> str:
    """Render the summary as two markdown tables: fan-out, then memory per receiver."""
    lines = [
        "| receivers | client | events/s min | median | max | vs official | p50 ms | p99 ms "
        "| lost (throughput / latency run) | notes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    for receivers in plan.receiver_counts:
        for name, row in summary[str(receivers)].items():
            rate = row["events_per_s"]
            low, mid, high = (
                ("n/a",) * 3
                if rate is None
                else (f"{rate['min']:,.0f}", f"{rate['median']:,.0f}", f"{rate['max']:,.0f}")
            )
            ratio = row["events_per_s_vs_official"]
            lost = (
                f"{_median(row, 'lost_throughput', ',.0f')} / "
                f"{_median(row, 'lost_latency', ',.0f')}"
            )
            lines.append(
                f"| {receivers:,} | {name} | {low} | {mid} | {high} "
                f"| {'n/a' if ratio is None else f'{ratio:.2f}x'} "
                f"| {_median(row, 'p50_ms', '.2f')} | {_median(row, 'p99_ms', '.2f')} "
                f"| {lost} | {len(row['notes'])} |"
            )
            notes += [f"{receivers:,} receivers, {name}: {text}" for text in row["notes"]]
    lines += [
        "",
        f"| client | bytes per receiver ({plan.memory_receivers:,} opened) min | median | max |",
        "|---|---:|---:|---:|",
    ]
    for name, stats in summary["bytes_per_receiver"].items():
        if stats is None:
            lines.append(f"| {name} | n/a | n/a | n/a |")
        else:
            lines.append(
                f"| {name} | {stats['min']:,.0f} | {stats['median']:,.0f} | {stats['max']:,.0f} |"
            )
    notes += summary["memory_notes"]
    if notes:
        lines += ["", "Notes:", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


def describe(plan: Plan) -> str:
    """Say what each case sends, for the line above the table."""
    throughput = " / ".join(f"{plan.throughput_events(n):,}" for n in plan.receiver_counts)
    latency = " / ".join(
        f"{count:,} at {rate:,.0f}/s"
        for count, rate in (plan.latency_load(n) for n in plan.receiver_counts)
    )
    receivers = " / ".join(f"{n:,}" for n in plan.receiver_counts)
    return (
        f"Receivers {receivers}: throughput run {throughput} events as fast as possible; "
        f"latency run {latency}. Our buffer_size {plan.max_events:,}; the official "
        "client's receivers hold 50."
    )


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["--only", "stream", *sys.argv[1:]]))
