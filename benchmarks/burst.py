"""Burst: thousands of concurrent `get()` calls over a server's stream limit.

A server announces SETTINGS_MAX_CONCURRENT_STREAMS (100 here, a common setting); a
client that starts 4,000 calls at once must queue them for the stream slots. How it
queues decides whether this takes seconds or minutes: waking every queued call
whenever one slot frees is quadratic. Each client starts every call at once and the
run's figure is the wall time until the last one returned (a run that does not finish
within `Plan.limit_s` is an error, with how many calls finished, not a figure).

The server is the runner's grpcio server in a process of its own, announcing the
limit (`ServerProcess(max_concurrent_streams=...)`).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from benchmarks._clients import CONTESTANTS, Contestant, official_warnings_silenced
from benchmarks._report import Metric
from benchmarks._server_process import ServerProcess
from benchmarks.calls import open_calls

__all__ = ["METRICS", "QUICK", "Plan", "describe", "measure"]


@dataclass(frozen=True)
class Plan:
    """How big the burst is."""

    calls: int = 4000
    """Concurrent `get()` calls per run."""
    max_streams: int = 100
    """The server's SETTINGS_MAX_CONCURRENT_STREAMS."""
    limit_s: float = 120.0
    """Seconds a run may take before it is given up (an error, not a figure)."""


QUICK = Plan(calls=1000, limit_s=60.0)

METRICS = [Metric("burst_s", "seconds until all calls returned", True, ",.2f")]


def describe(plan: Plan) -> str:
    """The case's paragraph in the report."""
    return (
        f"{plan.calls:,} `get()` calls started at once on one client, against a server "
        f"announcing SETTINGS_MAX_CONCURRENT_STREAMS = {plan.max_streams} "
        "(`benchmarks/burst.py`): seconds from the start until the last call returned, "
        "after one warm-up call. Calls queue for the stream slots; ours hands each freed "
        "slot to the longest-waiting call. A run that does not finish within "
        f"{plan.limit_s:g} s is an error that says how many calls finished."
    )


async def _burst_run(contestant: Contestant, url: str, plan: Plan) -> dict[str, Any]:
    finished = 0
    failures: collections.Counter[str] = collections.Counter()
    async with open_calls(contestant, url) as calls:
        await calls.get()  # connects, and warms the decoding path

        async def one() -> None:
            nonlocal finished
            try:
                await calls.get()
            except Exception as error:  # a failing call is a finding, not a crash
                failures[_describe(error)] += 1
                return
            finished += 1

        started = time.perf_counter()
        with anyio.move_on_after(plan.limit_s):
            async with anyio.create_task_group() as group:
                for _ in range(plan.calls):
                    group.start_soon(one)
        seconds = time.perf_counter() - started
    row: dict[str, Any] = {"finished": finished}
    if finished == plan.calls:
        row["burst_s"] = seconds
        return row
    errors = [f"{finished:,} of {plan.calls:,} calls finished within {seconds:.1f} s"]
    errors += [f"{count:,} calls failed: {text}" for text, count in failures.most_common(3)]
    row["errors"] = errors
    return row


def _describe(error: Exception) -> str:
    """One short line for a failed call (grpcio's errors span lines and carry debug text)."""
    details = getattr(error, "details", None)
    if callable(details) and hasattr(error, "code"):
        text = f"{error.code()} {details()}"  # grpc.aio.AioRpcError
    else:
        text = str(error)
    return f"{type(error).__name__}: {' '.join(text.split())[:160]}"


def measure(
    plan: Plan, runs: int, progress: Callable[[str], None]
) -> dict[str, list[dict[str, Any]]]:
    """Run the burst `runs` times per client, clients taking turns.

    Returns:
        Per client, one dict per run: `burst_s` and `finished`, or `errors`.
    """
    results: dict[str, list[dict[str, Any]]] = {c.name: [] for c in CONTESTANTS}
    server = ServerProcess(max_concurrent_streams=plan.max_streams)
    try:
        for run in range(runs):
            for contestant in CONTESTANTS:
                progress(f"burst run {run + 1}/{runs}: {contestant.name}")
                try:
                    with official_warnings_silenced():
                        row = anyio.run(
                            _burst_run, contestant, server.url, plan, backend=contestant.backend
                        )
                except Exception as error:  # a failing client is a finding, not a crash
                    row = {"errors": [f"{type(error).__name__}: {error}"]}
                if "errors" in row:
                    progress(f"  failed: {row['errors'][0]}")
                else:
                    progress(f"  {row['burst_s']:.2f} s")
                results[contestant.name].append(row)
    finally:
        server.stop()
    return results
