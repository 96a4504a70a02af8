"""Benchmark the scheduler against frequenz-dispatch 1.0.4 (asyncio, the only one it runs on).

One run per contestant and run number, each in fresh processes:

* a server process fills a `FakeDispatchService` with `dispatches` dispatches (mixed
  recurrences: none, minutely with a count, hourly with an until, daily) whose first
  runs start at distinct instants spread over `window` seconds, starting `lead` seconds
  after the run begins, each lasting 1-3 s; it serves them over real gRPC on loopback;
* a client process connects (ours: `Client` + `Scheduler`; official: `Dispatcher`),
  waits for the first listing, then records every running-state change on the real
  clock until the last run has ended.

Figures per run: the time to the first listing, the client process's resident memory
added per dispatch (after the listing, garbage collected), the client's CPU time per
running-state event over the window, and the lateness of start events (received minus
the run's start) at p50 and p99. A run that misses or repeats an event reports it as an
error rather than a figure.

    python -m benchmarks --only scheduler [--quick]

frequenz-dispatch is heavy (frequenz-sdk, numpy): it is in its own extra,
`pip install -e ".[bench-scheduler]"`; without it the official rows say "skipped".
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks._report import Metric
from benchmarks._server_process import ROOT

OURS = "ours: Scheduler (asyncio, H2Transport)"
OFFICIAL = "frequenz-dispatch 1.0.4: Dispatcher"
MICROGRID = 5
TYPE = "BENCH"
METRICS = [
    Metric("init_s", "first listing s", True, ",.2f"),
    Metric("rss_kb_per_dispatch", "client RSS added per dispatch KB", True, ",.2f"),
    Metric("cpu_us_per_event", "client CPU per running-state event µs", True, ",.0f"),
    Metric("late_p50_ms", "start lateness p50 ms", True, ",.2f"),
    Metric("late_p99_ms", "start lateness p99 ms", True, ",.2f"),
]
IMPORT_METRICS = [Metric("import_ms", "cold import ms", True, ",.0f")]
IMPORTS = {OURS: "import dispatch_client", OFFICIAL: "import frequenz.dispatch"}
SKIPPED = (
    'skipped: frequenz-dispatch is not installed (pip install -e ".[bench-scheduler]" '
    "adds it; it is heavy, so the dev extra leaves it out)"
)


@dataclass(frozen=True)
class Plan:
    """The size of the case."""

    dispatches: int = 10_000
    window: float = 10.0
    """Seconds over which the first runs start."""
    lead: float = 10.0
    """Seconds between the end of the calibrated first listing and the first start."""


QUICK = Plan(dispatches=500, window=2.0, lead=3.0)


def official_installed() -> bool:
    """Whether frequenz-dispatch can be imported here."""
    return importlib.util.find_spec("frequenz.dispatch") is not None


# --- the server process -------------------------------------------------------------------


def _dispatches(plan: Plan, base: datetime) -> list[Any]:
    from dispatch_client import Dispatch, EndCriteria, Frequency, RecurrenceRule, TargetIds

    rules = [
        None,
        RecurrenceRule(frequency=Frequency.MINUTELY, interval=1, end_criteria=EndCriteria(count=3)),
        RecurrenceRule(
            frequency=Frequency.HOURLY,
            interval=2,
            end_criteria=EndCriteria(until=base + timedelta(days=1)),
        ),
        RecurrenceRule(frequency=Frequency.DAILY, interval=1),
    ]
    made = []
    for i in range(plan.dispatches):
        start = base + timedelta(seconds=plan.window * i / plan.dispatches)
        made.append(
            Dispatch(
                id=0,
                type=TYPE,
                start_time=start,
                duration=timedelta(seconds=1 + i % 3),
                target=TargetIds(i % 10),
                active=True,
                dry_run=False,
                payload={"i": i, "power": 1000.0 + i},
                recurrence=rules[i % len(rules)],
                create_time=base - timedelta(hours=1),
                update_time=base - timedelta(hours=1),
            )
        )
    return made


async def _serve(plan: Plan, base: datetime) -> None:
    import anyio

    from dispatch_client.testing import FakeDispatchService, serve

    with FakeDispatchService() as service:
        # Straight into the store: 10,000 create() calls would take longer than the run.
        for dispatch in _dispatches(plan, base):
            service._store.add(MICROGRID, dispatch)
        async with serve(service) as url:
            print(url, flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)


# --- the client process -------------------------------------------------------------------


def _rss_kb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024


async def _sleep_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


Record = tuple[bool, int, float, float]
"""started, dispatch id, received (Unix s), run start (Unix s)."""


async def _ours(url: str, plan: Plan, base: datetime, end: datetime) -> dict[str, Any]:
    from dispatch_client import ChangeKind, Client, Scheduler

    events: list[Record] = []
    gc.collect()
    rss_before = _rss_kb()
    started = time.perf_counter()
    async with Client(server_url=url, key="bench") as client, Scheduler(client, MICROGRID) as ours:
        init = time.perf_counter() - started
        gc.collect()
        rss_after = _rss_kb()
        changes = ours.running_state_changes(TYPE)

        async def collect() -> None:
            async for change in changes:
                run = ours.run_start(change.dispatch.id) or change.dispatch.start_time
                events.append(
                    (
                        change.kind is ChangeKind.STARTED,
                        change.dispatch.id,
                        time.time(),
                        run.timestamp(),
                    )
                )

        task = asyncio.create_task(collect())
        figures = await _window(plan, base, end, events)
        task.cancel()
    return {"init_s": init, "rss_kb": rss_after - rss_before, **figures}


async def _official(url: str, plan: Plan, base: datetime, end: datetime) -> dict[str, Any]:
    from frequenz.client.common.microgrid import MicrogridId
    from frequenz.dispatch import Dispatcher

    events: list[Record] = []
    gc.collect()
    rss_before = _rss_kb()
    started = time.perf_counter()
    async with Dispatcher(
        microgrid_id=MicrogridId(MICROGRID), server_url=url, auth_key="bench"
    ) as dispatcher:
        init = time.perf_counter() - started
        gc.collect()
        rss_after = _rss_kb()
        receiver = await dispatcher.new_running_state_event_receiver(TYPE)

        async def collect() -> None:
            async for dispatch in receiver:
                events.append(
                    (
                        dispatch.started,
                        int(dispatch.id),
                        time.time(),
                        dispatch.start_time.timestamp(),
                    )
                )

        task = asyncio.create_task(collect())
        figures = await _window(plan, base, end, events)
        task.cancel()
    return {"init_s": init, "rss_kb": rss_after - rss_before, **figures}


async def _window(
    plan: Plan, base: datetime, end: datetime, events: list[Record]
) -> dict[str, Any]:
    """Measure CPU over the window of runs; return the events' figures."""
    errors: list[str] = []
    if datetime.now(UTC) > base + timedelta(milliseconds=50):
        errors.append("the first listing ended after the first start (raise Plan.lead)")
    await _sleep_until(base)
    cpu = time.process_time()
    await _sleep_until(end)
    cpu = time.process_time() - cpu
    starts = [received - run for started, _, received, run in events if started]
    counts: dict[tuple[bool, int], int] = {}
    for started, dispatch_id, _, _ in events:
        counts[(started, dispatch_id)] = counts.get((started, dispatch_id), 0) + 1
    missing = 2 * plan.dispatches - len(counts)
    repeated = sum(count - 1 for count in counts.values())
    if (missing or repeated) and end > base:
        errors.append(f"{missing} start/stop events missing, {repeated} repeated")
    figures: dict[str, Any] = {"events": len(events), "errors": errors}
    if events:
        figures["cpu_us_per_event"] = cpu / len(events) * 1e6
    if len(starts) >= 2:
        cuts = statistics.quantiles(starts, n=100, method="inclusive")
        figures["late_p50_ms"] = statistics.median(starts) * 1000
        figures["late_p99_ms"] = cuts[98] * 1000
    return figures


def _client(name: str, url: str, plan: Plan, base: datetime, init_only: bool) -> dict[str, Any]:
    end = base + timedelta(seconds=plan.window + 3 + 1)
    if init_only:
        # Calibration: the first listing alone (the run's lead must cover it).
        end = base = datetime.now(UTC)
    run = _ours if name == OURS else _official
    result = asyncio.run(run(url, plan, base, end))
    result["rss_kb_per_dispatch"] = result.pop("rss_kb") / plan.dispatches
    return result


# --- the runner's side --------------------------------------------------------------------


def _one_run(
    name: str, plan: Plan, lead: float | None = None, *, init_only: bool = False
) -> dict[str, Any]:
    """Serve a fresh dispatch set, run one contestant against it; return its figures.

    Args:
        name: The contestant.
        plan: The case's size.
        lead: Seconds from now to the first start (`plan.lead` if None).
        init_only: Measure the first listing only (a calibration run).
    """
    lead = plan.lead if lead is None else lead
    base = datetime.now(UTC) + timedelta(seconds=lead)
    args = [
        "--dispatches",
        str(plan.dispatches),
        "--window",
        str(plan.window),
        "--lead",
        str(plan.lead),
        "--base",
        base.isoformat(),
    ]
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.scheduler", "--serve", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url:
            return {"errors": ["the server process did not start"]}
        done = subprocess.run(
            [
                sys.executable, "-m", "benchmarks.scheduler", "--client", name, "--url", url,
                *(["--init-only"] if init_only else []), *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=lead + plan.window + 600,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            return {"errors": [f"the client process failed: {tail[0]}"]}
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        assert server.stdin is not None
        assert server.stdout is not None
        server.stdin.close()
        server.wait(timeout=30)
        server.stdout.close()


def measure(
    plan: Plan, runs: int, progress: Callable[[str], None]
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Run each contestant `runs` times, taking turns.

    Returns:
        Per contestant, its runs' figures; and the notes (a skipped contestant).
    """
    contestants = [OURS]
    notes = []
    if official_installed():
        contestants.append(OFFICIAL)
    else:
        notes.append(f"{OFFICIAL}: {SKIPPED}")
        progress(f"scheduler: {OFFICIAL} {SKIPPED}")
    # The first starts must come after the first listing, whose length differs a lot
    # between the contestants (and with the machine): measure it once, then give each
    # contestant a lead of its own.
    leads: dict[str, float] = {}
    for name in contestants:
        progress(f"scheduler: calibrating {name}'s first listing of {plan.dispatches:,}")
        init = _one_run(name, plan, 0.0, init_only=True).get("init_s")
        leads[name] = plan.lead + 2 * (init if init is not None else 60.0)
        if init is not None:
            notes.append(
                f"{name}: first starts {leads[name]:.0f} s after each run began "
                f"(calibrated first listing {init:.1f} s)"
            )
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in contestants}
    for run in range(runs):
        for name in contestants:
            progress(f"scheduler run {run + 1}/{runs}: {name}, {plan.dispatches:,} dispatches")
            results[name].append(_one_run(name, plan, leads[name]))
    return results, notes


def measure_imports(runs: int) -> dict[str, list[dict[str, Any]]]:
    """Cold import of each package in fresh processes, taking turns, after one untimed round."""
    statements = {
        name: statement
        for name, statement in IMPORTS.items()
        if name == OURS or official_installed()
    }

    def once(statement: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", statement], check=True)
        return (time.perf_counter() - started) * 1000

    for statement in statements.values():
        once(statement)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in statements}
    for _ in range(runs):
        for name, statement in statements.items():
            results[name].append({"import_ms": once(statement)})
    return results


def describe(plan: Plan) -> str:
    """The case in a paragraph, for the report."""
    return (
        f"{plan.dispatches:,} dispatches with mixed recurrences (none; minutely, count 3; "
        "every 2 hours until a day later; daily) served by the fake service over real "
        f"gRPC from another process; their first runs start at distinct instants over "
        f"{plan.window:g} s and last 1-3 s. The client process waits for the first "
        "listing, then records every running-state change on the real clock "
        f"(`benchmarks/scheduler.py`). {2 * plan.dispatches:,} events are expected; a "
        "run that misses or repeats one reports an error. CPU is the client process's "
        "CPU time over the window divided by its events; lateness is when a start "
        "event was received minus the run's start."
    )


def main(argv: list[str] | None = None) -> int:
    """The server and client processes' entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scheduler")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--client", choices=[OURS, OFFICIAL])
    parser.add_argument("--url")
    parser.add_argument("--init-only", action="store_true")
    parser.add_argument("--dispatches", type=int, required=True)
    parser.add_argument("--window", type=float, required=True)
    parser.add_argument("--lead", type=float, required=True)
    parser.add_argument("--base", required=True)
    args = parser.parse_args(argv)
    plan = Plan(dispatches=args.dispatches, window=args.window, lead=args.lead)
    base = datetime.fromisoformat(args.base)
    if args.serve:
        asyncio.run(_serve(plan, base))
        return 0
    import logging

    logging.disable(logging.WARNING)
    print(json.dumps(_client(args.client, args.url, plan, base, args.init_only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
