"""The benchmark runner: ours against the official client, side by side.

Usage (from the project root; `just bench` writes the docs page):

    python -m benchmarks [--quick] [--runs N] [--only CASE ...] [--json PATH] [--docs DIR]

Cases (all by default, in this order):

* `list`: `list()` of 10,000 dispatches, page sizes 100 and 1,000, microseconds per
  dispatch until the user holds every `Dispatch`; each run in a fresh process, which
  also gives the peak RSS (`rss` is another name for this case);
* `decode`: decoding alone, one list page of bytes into `Dispatch` objects, by ours
  (fast and reference paths) and the official client, in this process
  (`benchmarks/decode.py`);
* `encode`: encoding alone, a `create()` request (Struct payload, recurrence) and a
  `list()` request (every filter) to bytes, by ours (fast and reference codecs) and the
  official client's conversion plus upb serialization (`benchmarks/encode.py`);
* `get`: calls/s sequential and with 10 concurrent callers, client CPU µs per call for
  both, sequential latency p50 / p99; the page gives issue 19's targets (calls/s at
  least 1.5x the official client's on asyncio, 1.3x on trio) met or not;
* `create`: the same figures and targets for `create()`;
* `stream`: fan-out to 1, 100 and 1,000 receivers (`benchmarks/stream.py`);
* `scheduler`: 10,000 dispatches with mixed recurrences on the real clock, ours against
  frequenz-dispatch 1.0.4 (`benchmarks/scheduler.py`; its own server process; the
  official rows say "skipped" without the `bench-scheduler` extra);
* `import`: a fresh `python -I -c "import ..."` of each client, each installed
  non-editable into its own fresh venv (needs pip's index or cache; falls back to this
  environment, and says so);
* `footprint`: each client installed into a fresh venv (needs pip's index or cache);
* `transports`: our transports against a grpcio client on bytes (`benchmarks/transports.py`);
* `burst`: 4,000 concurrent `get()` calls over a server allowing 100 concurrent streams
  (`benchmarks/burst.py`, its own server process);
* `profile`: where our time goes (`benchmarks/hotspots.py`), a cProfile of ours for each
  of `list`, `get`, `create` and `stream` where ours was slower (all when run alone).

Every network case talks to one grpcio server in a subprocess, answering from
pre-encoded responses, so the server costs the same, and little, for every client.
Clients take turns run by run (A B C D A B C D ...), so drifts of the machine spread
over all of them; the tables give min / median / max over the runs and the ratio of
medians ours / official. This is a script, not a test: nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    _report,
    burst,
    calls,
    decode,
    encode,
    footprint,
    hotspots,
    scheduler,
    server_pace,
)
from benchmarks._clients import CONTESTANTS, OFFICIAL, OURS_GRPCLIB
from benchmarks._report import Bar, Metric
from benchmarks._server_process import ROOT, ServerProcess, serve_until_stdin_closes

CASES = (
    "list",
    "decode",
    "encode",
    "get",
    "create",
    "stream",
    "scheduler",
    "import",
    "footprint",
    "transports",
    "burst",
    "pace",
    "profile",
)
ALIASES = {"rss": "list"}
SCHEDULER_RUNS = 1
"""At most this many runs of the scheduler case (see `Runner.run_scheduler`)."""
NETWORK_CASES = {"list", "get", "create", "stream", "transports", "profile"}


def _receivers(count: int) -> str:
    return f"{count:,} receiver{'' if count == 1 else 's'}"


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _serve(max_concurrent_streams: int | None) -> None:
    """The server process: every case's handlers on one grpcio asyncio server."""
    import asyncio

    # Imported here: the stream and transports modules import their clients at once.
    from benchmarks import stream, transports

    async def run() -> None:
        handlers = [
            *calls.server_handlers(),
            *stream.server_handlers(),
            *transports.server_handlers(),
        ]
        await serve_until_stdin_closes(handlers, max_concurrent_streams=max_concurrent_streams)

    asyncio.run(run())


def _machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "dispatch_client": importlib.metadata.version("dispatch-client"),
        "commit": commit or "unknown",
        "frequenz_client_dispatch": importlib.metadata.version("frequenz-client-dispatch"),
        "grpcio": importlib.metadata.version("grpcio"),
        "protobuf": importlib.metadata.version("protobuf"),
        "betterproto2": importlib.metadata.version("betterproto2"),
    }


def _list_metrics(plan: calls.Plan) -> tuple[list[Metric], list[Metric]]:
    times = [
        Metric(f"us_per_dispatch@{size}", f"µs per dispatch, page size {size:,}", True, ",.2f")
        for size in plan.page_sizes
    ]
    memory = [
        Metric(f"peak_rss_mb@{size}", f"peak RSS MB, page size {size:,}", True)
        for size in plan.page_sizes
    ]
    return times, memory


def _unary_metrics(name: str) -> list[Metric]:
    """The figures of the `get` or `create` case, keyed as `calls._record` writes them."""
    callers = f"{calls.CONCURRENCY} callers"
    return [
        Metric(f"{name}_calls_per_s_sequential", "calls/s, sequential", False, ",.0f"),
        Metric(f"{name}_calls_per_s_concurrent", f"calls/s, {callers}", False, ",.0f"),
        Metric(f"{name}_cpu_us_sequential", "client CPU µs per call, sequential", True, ",.0f"),
        Metric(f"{name}_cpu_us_concurrent", f"client CPU µs per call, {callers}", True, ",.0f"),
        Metric(
            f"{name}_server_cpu_us_sequential", "server CPU µs per call, sequential", True, ",.0f"
        ),
        Metric(
            f"{name}_server_cpu_us_concurrent", f"server CPU µs per call, {callers}", True, ",.0f"
        ),
        # Higher is better: the client keeps the server busier (the server's limit is 100).
        Metric(
            f"{name}_server_busy_pct_concurrent",
            f"server's busiest thread, % busy, {callers}",
            False,
            ",.0f",
        ),
        Metric(f"{name}_p50_us", "latency p50 µs", True, ",.0f"),
        Metric(f"{name}_p99_us", "latency p99 µs", True, ",.0f"),
    ]


GET_METRICS = _unary_metrics("get")
CREATE_METRICS = _unary_metrics("create")
UNARY_TARGETS = {"asyncio": 1.5, "trio": 1.3}
"""Issue 19: ours / official calls/s at least this, sequential and with 10 callers, by loop."""
IMPORT_METRICS = [Metric("import_ms", "process wall time ms", True, ",.0f")]


class Runner:
    """Measures the chosen cases and collects their figures, tables and chart bars."""

    def __init__(
        self, runs: int, quick: bool, url: str | None, server_pid: int | None = None
    ) -> None:
        self.runs = runs
        self.quick = quick
        self.url = url
        self.server_pid = server_pid
        self.calls_plan = calls.QUICK if quick else calls.Plan()
        self.cases: dict[str, Any] = {}
        self.sections: list[str] = []
        self.bars: list[Bar] = []
        self.targets: list[dict[str, Any]] = []

    def _section(self, title: str, text: str, table: str, notes: list[str]) -> None:
        parts = [f"## {title}", "", text, "", table]
        if notes:
            parts += ["", "Notes:", "", *(f"- {note}" for note in notes)]
        self.sections.append("\n".join(parts))

    def _ratio_bars(
        self, case: str, summary: dict[str, Any], metric: Metric, *, clients: list[str]
    ) -> None:
        for name in clients:
            row = summary[metric.key].get(name)
            if row is None or not row.get("ratio"):
                continue
            ratio = row["ratio"] if metric.lower_is_better else 1 / row["ratio"]
            self.bars.append(Bar(case, name, ratio))

    def run_list(self) -> None:
        """Case 1 (`list()`) and case 7 (its peak RSS)."""
        assert self.url is not None
        plan = self.calls_plan
        runs = calls.measure_list(self.url, plan, self.runs, _progress)
        times, memory = _list_metrics(plan)
        summary = _report.summarize(runs, [*times, *memory], OFFICIAL)
        self.cases["list"] = {
            "plan": asdict(plan),
            "runs_by_client": runs,
            "summary": summary,
        }
        ours = [c.name for c in CONTESTANTS if not c.is_official]
        self._section(
            f"1. `list()` of {plan.list_total:,} dispatches",
            f"Microseconds per dispatch from the first request until the user holds every "
            f"`Dispatch` (all pages fetched and decoded), each run in a fresh process after "
            f"one warm-up `get()`. Every dispatch has a Struct payload (numbers, strings, a "
            f"nested object, a list), a recurrence rule and targets. A run that received "
            f"fewer than {plan.list_total:,} dispatches is an error, not a figure.",
            _report.table(summary, times),
            _report.errors(runs),
        )
        for metric in times:
            self._ratio_bars(f"list, {metric.label}", summary, metric, clients=ours)
        self._section(
            "7. Peak RSS during `list()`",
            "The peak resident set size (`ru_maxrss`) of the process that ran the case-1 run "
            f"above, read once it holds all {plan.list_total:,} dispatches: interpreter, "
            "imports, connection and the dispatches together.",
            _report.table(summary, memory),
            [],
        )
        self._ratio_bars("peak RSS, list page size 1,000", summary, memory[-1], clients=ours)

    def run_decode(self) -> None:
        """Decoding alone (no network): a list page of bytes into `Dispatch` objects."""
        size = 100 if self.quick else 1000
        repeats = 1 if self.quick else 5
        _progress("decode: one list page, each decoder in turn")
        runs = decode.measure(size, self.runs, repeats)
        summary = _report.summarize(runs, decode.METRICS, OFFICIAL)
        self.cases["decode"] = {
            "page_size": size,
            "repeats": repeats,
            "runs_by_client": runs,
            "summary": summary,
        }
        self._section(
            f"Decoding alone: a list page of {size:,} dispatches (no network)",
            "What each client does with a list response it has received, in the runner's "
            f"process: bytes to `Dispatch` objects, the mean of {repeats} pages per run "
            "(`benchmarks/decode.py`). Ours on the fast path (the default) and on the "
            "reference path (`fast_codec=False`, betterproto2); the official client's "
            "upb `FromString` plus its `Dispatch.from_protobuf`. The first page is the "
            "list case's; in the second every recurrence rule and every set of target ids "
            "is distinct, so the fast path has no decoded rule to share between "
            "dispatches (its sharing caches are emptied before every page).",
            _report.table(summary, decode.METRICS),
            _report.errors(runs),
        )
        for metric in decode.METRICS:
            self._ratio_bars(f"decode, {metric.label}", summary, metric, clients=[decode.OURS_FAST])

    def run_encode(self) -> None:
        """Encoding alone (no network): a create and a list request to wire bytes."""
        repeats = 200 if self.quick else 2000
        _progress("encode: a create and a list request, each encoder in turn")
        runs = encode.measure(self.runs, repeats)
        summary = _report.summarize(runs, encode.METRICS, OFFICIAL)
        self.cases["encode"] = {"repeats": repeats, "runs_by_client": runs, "summary": summary}
        self._section(
            "Encoding alone: a create and a list request (no network)",
            "What each client does with a request before gRPC sends it, in the runner's "
            f"process, the mean of {repeats:,} requests per run (`benchmarks/encode.py`). "
            "A `create()` request with a Struct payload and a recurrence rule, and a "
            "`list()` request with every filter both clients can send. Ours with the fast "
            "codec (the default) and the reference codec (`fast_codec=False`, "
            "betterproto2); the official client's conversion to its protobuf message plus "
            "upb's `SerializeToString`. `encode` starts from the checked request (our "
            "request record, the official `DispatchCreateRequest`); `build + encode` from "
            "the call's arguments (the official `list()` builds its message from them "
            "directly, so both of its list figures time the same work).",
            _report.table(summary, encode.METRICS),
            _report.errors(runs),
        )
        for metric in encode.METRICS[:1] + encode.METRICS[2:3]:
            self._ratio_bars(f"encode, {metric.label}", summary, metric, clients=[encode.OURS_FAST])

    def run_unary(self, which: tuple[str, ...]) -> None:
        """Cases 2 (`get()`) and 3 (`create()`), whichever were chosen."""
        assert self.url is not None
        plan = self.calls_plan
        runs = calls.measure_unary(self.url, plan, self.runs, which, _progress, self.server_pid)
        cases = {
            "get": (
                "2. `get()`",
                f"{plan.get_calls:,} sequential calls per run (calls/s, client CPU per call, "
                f"latency p50 and p99 of each run), then {plan.concurrent_calls:,} calls "
                f"shared by {calls.CONCURRENCY} concurrent callers (calls/s, client CPU per "
                f"call); one client session per run, each in a fresh process, after "
                f"{plan.warmup_calls} warm-up calls.",
                GET_METRICS,
            ),
            "create": (
                "3. `create()`",
                f"{plan.create_calls:,} sequential calls per run (a dispatch with payload, "
                "targets and a recurrence rule; calls/s, client CPU per call, latency p50 and "
                f"p99 of each run), then as many calls shared by {calls.CONCURRENCY} "
                "concurrent callers.",
                CREATE_METRICS,
            ),
        }
        errors_noted = False
        for case in which:
            title, text, metrics = cases[case]
            summary = _report.summarize(runs, metrics, OFFICIAL)
            self.cases[case] = {"plan": asdict(plan), "runs_by_client": runs, "summary": summary}
            targets = self._unary_targets(case, summary)
            self._section(
                title,
                text + " Client CPU is the process's CPU time over the calls "
                "(`time.process_time()`, every thread: grpcio's C threads count for the "
                "official client); server CPU is the grpcio server process's, over the same "
                "calls (read from Linux's `/proc`; n/a elsewhere). Client and server share "
                "the machine's cores, so with 10 callers calls/s cannot exceed "
                "cores / (client + server CPU per call), and the targets table's "
                "CPU-bound ceiling is the ratio those bounds allow: (official client + "
                "server CPU) / (ours client + server CPU). The server's Python code runs "
                "in one thread, and one thread gets one core at most: with its busiest "
                "thread near 100 % busy, the server sets the pace, whatever the client.",
                _targets_table(targets) + "\n\n" + _report.table(summary, metrics),
                [] if errors_noted else _report.errors(runs),
            )
            errors_noted = True
            by_key = {metric.key: metric for metric in metrics}
            for label, key in (
                ("latency p50", f"{case}_p50_us"),
                ("sequential calls/s", f"{case}_calls_per_s_sequential"),
                ("10 concurrent callers", f"{case}_calls_per_s_concurrent"),
                ("client CPU per call, sequential", f"{case}_cpu_us_sequential"),
                ("client CPU per call, 10 callers", f"{case}_cpu_us_concurrent"),
            ):
                self._ratio_bars(f"{case}, {label}", summary, by_key[key], clients=self._ours())

    @staticmethod
    def _ours() -> list[str]:
        return [c.name for c in CONTESTANTS if not c.is_official]

    def _unary_targets(self, case: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
        """Issue 19's targets for `case`: ours / official calls/s against the target."""
        rows = []
        for contestant in CONTESTANTS:
            if contestant.is_official:
                continue
            name = contestant.name
            target = UNARY_TARGETS[contestant.backend]
            for callers, key, bar in (
                ("sequential", f"{case}_calls_per_s_sequential", "sequential calls/s"),
                (
                    f"{calls.CONCURRENCY} callers",
                    f"{case}_calls_per_s_concurrent",
                    "10 concurrent callers",
                ),
            ):
                row = summary[key].get(name)
                ratio = row.get("ratio") if row else None
                cpu_key = key.replace("calls_per_s", "cpu_us")
                cpu = _median(summary, cpu_key, name)
                official_cpu = _median(summary, cpu_key, OFFICIAL)
                server_key = key.replace("calls_per_s", "server_cpu_us")
                server = _median(summary, server_key, name)
                official_server = _median(summary, server_key, OFFICIAL)
                concurrent = callers != "sequential"
                busy_key = f"{case}_server_busy_pct_concurrent"
                rows.append(
                    {
                        "case": case,
                        "callers": callers,
                        "client": name,
                        "ratio": ratio,
                        "target": target,
                        "met": None if ratio is None else ratio >= target,
                        "cpu_us": cpu,
                        "official_cpu_us": official_cpu,
                        "server_cpu_us": server,
                        "official_server_cpu_us": official_server,
                        "ceiling": (
                            _ceiling(cpu, server, official_cpu, official_server)
                            if concurrent
                            else None
                        ),
                        "server_busy": (
                            _pair(
                                _median(summary, busy_key, name),
                                _median(summary, busy_key, OFFICIAL),
                                unit=" %",
                            )
                            if concurrent
                            else None
                        ),
                        # The chart's bar of this figure, for the previous run's ratio.
                        "bar": f"{case}, {bar}",
                    }
                )
        self.targets.extend(rows)
        return rows

    def run_stream(self) -> None:
        """Case 4: the stream fan-out benchmark of `benchmarks/stream.py`."""
        assert self.url is not None
        from benchmarks import stream

        plan = stream.QUICK if self.quick else stream.Plan()
        results = stream.measure_all(self.url, plan, self.runs)
        summary = stream.summarize(results, plan)
        self.cases["stream"] = {
            "plan": asdict(plan),
            "summary": summary,
            "runs_by_client": results,
        }
        self._section(
            "4. Stream fan-out",
            "One upstream, many receivers (`benchmarks/stream.py`). " + stream.describe(plan),
            stream.table(summary, plan),
            [],
        )
        for receivers in plan.receiver_counts:
            for name, row in summary[str(receivers)].items():
                ratio = row.get("events_per_s_vs_official")
                if name != OFFICIAL and ratio:
                    self.bars.append(
                        Bar(f"stream, {_receivers(receivers)}, events/s", name, 1 / ratio)
                    )

    def run_scheduler(self) -> None:
        """The scheduler against frequenz-dispatch (`benchmarks/scheduler.py`)."""
        plan = scheduler.QUICK if self.quick else scheduler.Plan()
        # One run of each contestant whatever --runs says: frequenz-dispatch takes about
        # two minutes to list 10,000 dispatches (twice: calibration, then the run), so five
        # runs would add half an hour; one run already times 20,000 events per client.
        scheduler_runs = min(self.runs, SCHEDULER_RUNS)
        runs, notes = scheduler.measure(plan, scheduler_runs, _progress)
        summary = _report.summarize(runs, scheduler.METRICS, scheduler.OFFICIAL)
        imports = scheduler.measure_imports(self.runs)
        import_summary = _report.summarize(imports, scheduler.IMPORT_METRICS, scheduler.OFFICIAL)
        self.cases["scheduler"] = {
            "plan": asdict(plan),
            "runs_by_client": runs,
            "summary": summary,
            "imports": {"runs_by_client": imports, "summary": import_summary},
        }
        self._section(
            f"Scheduler: {plan.dispatches:,} dispatches against frequenz-dispatch 1.0.4",
            scheduler.describe(plan)
            + f" {scheduler_runs} run{'' if scheduler_runs == 1 else 's'} per client."
            + ' Cold import: a fresh `python -I -c "import ..."` of each package. '
            "The installed size of frequenz-dispatch is in the footprint case.",
            _report.table(summary, scheduler.METRICS)
            + "\n\n"
            + _report.table(import_summary, scheduler.IMPORT_METRICS),
            [*notes, *_report.errors(runs)],
        )
        for metric in scheduler.METRICS:
            self._ratio_bars(
                f"scheduler, {metric.label}", summary, metric, clients=[scheduler.OURS]
            )
        self._ratio_bars(
            "scheduler, cold import",
            import_summary,
            scheduler.IMPORT_METRICS[0],
            clients=[scheduler.OURS],
        )

    def run_import(self) -> None:
        """Case 5: cold start, both packages from non-editable installs."""
        runs, installs = footprint.measure_imports(self.runs, _progress)
        summary = _report.summarize(runs, IMPORT_METRICS, footprint.OFFICIAL_IMPORT)
        self.cases["import"] = {"runs_by_client": runs, "summary": summary, "installs": installs}
        notes = [f"{name}: {how}" for name, how in installs.items()]
        self._section(
            "5. Cold start",
            'Wall time of a fresh `python -I -c "import ..."` process, start to exit, '
            "both packages in non-editable installs (each `pip install`ed into its own "
            "fresh venv, as users get them), taking turns after one untimed round "
            "(which leaves the bytecode caches written). Nothing is subtracted: "
            "interpreter start-up is in every figure; the bare interpreter is measured "
            "alongside for reference.",
            _report.table(summary, IMPORT_METRICS),
            notes,
        )
        self._ratio_bars("cold import", summary, IMPORT_METRICS[0], clients=[footprint.OURS_IMPORT])

    def run_footprint(self) -> None:
        """Case 6: disk footprint of a fresh venv per client."""
        results = footprint.measure_footprint(_progress)
        self.cases["footprint"] = results
        lines = [
            "| client | added to site-packages MB | files | extension modules "
            "| distributions | biggest packages (MB) |",
            "|---|---:|---:|---:|---:|---|",
        ]
        notes = []
        for name, row in results.items():
            if "error" in row:
                lines.append(f"| {name} | n/a | n/a | n/a | n/a | |")
                notes.append(f"{name}: {row['error']}")
                continue
            biggest = ", ".join(
                f"{package} {size:.1f}" for package, size in row["biggest_mb"].items()
            )
            extensions = ", ".join(f"`{path}`" for path in row["extension_paths"])
            lines.append(
                f"| {name} | {row['site_packages_mb']:.1f} | {row['files']:,} "
                f"| {row['extension_modules']} ({extensions}) | {row['distributions']} "
                f"| {biggest} |"
            )
        ours = results.get(footprint.OURS_INSTALL, {})
        official = results.get(footprint.OFFICIAL_INSTALL, {})
        if "site_packages_mb" in ours and "site_packages_mb" in official:
            ratio = ours["site_packages_mb"] / official["site_packages_mb"]
            lines.append(f"| ours / official | {ratio:.2f} | | | | |")
            self.bars.append(Bar("footprint, site-packages MB", footprint.OURS_INSTALL, ratio))
        self._section(
            "6. Footprint",
            "What `pip install` of each client (with its runtime dependencies) adds to a "
            "fresh venv's site-packages (pip's own files left out): size, files, compiled "
            "extension modules (`*.so`, `*.pyd`) and the biggest top-level packages.",
            "\n".join(lines),
            notes,
        )

    def run_transports(self) -> None:
        """Our transports against a grpcio client on bytes (no official client involved)."""
        assert self.url is not None
        from benchmarks import transports

        seconds = 0.2 if self.quick else 0.5
        figures = transports.measure_all(self.url, seconds, self.runs)
        summary = transports.summarize(figures)
        self.cases["transports"] = {"seconds": seconds, "summary": summary}
        self._section(
            "Transports on bytes (no dispatch decoding)",
            f"Our transports against grpcio's asyncio client making generic calls on bytes "
            f"({seconds:g} s per figure; `benchmarks/transports.py`). The ratio here is to "
            "GrpclibTransport, not to the official client.",
            transports.table(summary),
            [],
        )

    def run_burst(self) -> None:
        """4,000 concurrent `get()` calls over a server allowing 100 concurrent streams."""
        plan = burst.QUICK if self.quick else burst.Plan()
        runs = burst.measure(plan, self.runs, _progress)
        summary = _report.summarize(runs, burst.METRICS, OFFICIAL)
        self.cases["burst"] = {"plan": asdict(plan), "runs_by_client": runs, "summary": summary}
        self._section(
            f"Burst: {plan.calls:,} concurrent `get()` calls, {plan.max_streams} streams",
            burst.describe(plan),
            _report.table(summary, burst.METRICS),
            _report.errors(runs),
        )
        ours = [c.name for c in CONTESTANTS if not c.is_official]
        self._ratio_bars(
            f"burst, {plan.calls:,} concurrent get()", summary, burst.METRICS[0], clients=ours
        )

    def run_pace(self) -> None:
        """How fast the server goes with 10 `get()` callers, for a client doing no work."""
        count = 200 if self.quick else 3000
        work = server_pace.BENCH_WORK
        _progress(f"pace: {count:,} get() calls by 10 callers, {len(work) + 5} clients in turn")
        results = server_pace.measure(self.runs, count, work)
        self.cases["pace"] = {"calls": count, "work_us": list(work), "runs_by_client": results}
        self._section(
            "How fast the server goes: 10 `get()` callers from a client doing no work",
            server_pace.describe(count, work),
            server_pace.report(results),
            [],
        )

    def _slower(self, case: str, metric: str) -> bool:
        """Whether ours (grpclib) was slower in `case`; True when the case did not run."""
        summary = self.cases.get(case, {}).get("summary")
        if summary is None:
            return True
        row = summary[metric].get(OURS_GRPCLIB)
        return bool(row and row.get("ratio") and row["ratio"] > 1.0)

    def _stream_slower(self) -> int | None:
        """The fewest receivers for which ours (grpclib) had fewer events/s, if any."""
        summary = self.cases.get("stream", {}).get("summary")
        if summary is None:
            return 1
        for key, case in summary.items():
            if not key.isdigit():
                continue
            ratio = case.get(OURS_GRPCLIB, {}).get("events_per_s_vs_official")
            if ratio is not None and ratio < 1.0:
                return int(key)
        return None

    def run_profile(self) -> None:
        """Where our time goes, in each of list / get / create where ours was slower."""
        assert self.url is not None
        plan = self.calls_plan
        largest = max(plan.page_sizes)
        wanted = {
            # A fifth of the list case's dispatches: the profiler slows it down a lot.
            "list": (max(100, plan.list_total // 5), largest, f"us_per_dispatch@{largest}"),
            "get": (plan.get_calls, 0, "get_p50_us"),
            "create": (plan.create_calls, 0, "create_p50_us"),
        }
        chosen = {
            what: (count, size)
            for what, (count, size, metric) in wanted.items()
            if self._slower(what, metric)
        }
        receivers = self._stream_slower()
        if receivers is not None:
            chosen["stream"] = (receivers, 0)
        results = hotspots.measure_hotspots(self.url, chosen, _progress)
        self.cases["profile"] = results
        if not results:
            return
        units = {
            "list": ("dispatch", "dispatches"),
            "get": ("call", "calls"),
            "create": ("call", "calls"),
            "stream": ("delivery", "deliveries (event x receiver)"),
        }
        parts = [
            f"A cProfile of ours ({OURS_GRPCLIB}) in each case where it was slower than the "
            "official client, in a fresh process, the profiler on for the measured calls "
            "only (`benchmarks/hotspots.py`): own time (tottime) by area, then the hottest "
            "functions."
        ]
        for what, result in results.items():
            if what == "list":
                title = f"`list()`, page size {largest:,}"
            elif what == "stream":
                title = f"Stream fan-out, {_receivers(chosen['stream'][0])}"
            else:
                title = f"`{what}()`"
            parts += ["", f"### {title}", "", hotspots.table(result, *units[what])]
        self.sections.append("## Where our time goes\n\n" + "\n".join(parts))


def _ceiling(
    ours_client: float | None,
    ours_server: float | None,
    official_client: float | None,
    official_server: float | None,
) -> float | None:
    """The calls/s ratio, ours / official, that the CPU alone allows with many callers.

    Client and server share the machine's cores, so a CPU-bound run makes at most
    cores / (client + server CPU per call) calls/s; the ratio of those bounds is
    (official client + server CPU) / (ours client + server CPU). None when a figure
    (a median CPU µs per call) is missing.
    """
    if ours_client is None or ours_server is None:
        return None
    if official_client is None or official_server is None:
        return None
    return (official_client + official_server) / (ours_client + ours_server)


def _pair(ours: float | None, official: float | None, *, unit: str = "") -> str:
    """'ours / official' with no decimals, or n/a when either is missing."""
    if ours is None or official is None:
        return "n/a"
    return f"{ours:,.0f}{unit} / {official:,.0f}{unit}"


def _median(summary: dict[str, Any], key: str, client: str) -> float | None:
    """A client's median of one figure in a case's summary, or None."""
    row = summary.get(key, {}).get(client)
    return None if not row else float(row["median"])


def _targets_table(
    rows: list[dict[str, Any]], previous: dict[tuple[str, str], float] | None = None
) -> str:
    """Markdown: issue 19's calls/s targets, ours / official (higher is better), met or not.

    Args:
        rows: `Runner._unary_targets` rows.
        previous: The previous run's chart (case, client) -> cost ratio, for a column of
            its ratio; None: no such column.

    Returns:
        The table.
    """
    head = (
        "| case | callers | client | calls/s ours / official (higher is better) | target "
        "| met | client CPU µs per call, ours / official "
        "| server CPU µs per call, ours / official | CPU-bound ceiling "
        "| server's busiest thread busy, ours / official |"
    )
    rule = "|---|---|---|---:|---:|---|---:|---:|---:|---:|"
    if previous is not None:
        head += " previous run |"
        rule += "---:|"
    lines = [head, rule]
    for row in rows:
        ratio, met = row["ratio"], row["met"]
        cpu = _pair(row.get("cpu_us"), row.get("official_cpu_us"))
        server = _pair(row.get("server_cpu_us"), row.get("official_server_cpu_us"))
        ceiling = row.get("ceiling")
        line = (
            f"| {row['case']} | {row['callers']} | {row['client']} "
            f"| {'n/a' if ratio is None else f'{ratio:.2f}'} | ≥ {row['target']:.1f} "
            f"| {'n/a' if met is None else ('yes' if met else 'no')} | {cpu} | {server} "
            f"| {'-' if ceiling is None else f'{ceiling:.2f}'} "
            f"| {row.get('server_busy') or '-'} |"
        )
        if previous is not None:
            old = previous.get((row["bar"], row["client"]))
            line += " - |" if not old else f" {1 / old:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def _markdown(report: dict[str, Any], sections: list[str], svg_name: str | None) -> str:
    machine = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `just bench` (python -m benchmarks); do not edit by hand. -->",
        "",
        f"Generated by `just bench` on {report['generated']} "
        f"(`{report['command']}`, {report['seconds'] / 60:.1f} minutes).",
        "",
        f"- Machine: {machine['platform']}, {machine['cpu']}, {machine['cpu_count']} CPUs",
        f"- Python {machine['python']}; dispatch-client {machine['dispatch_client']} "
        f"(commit {machine['commit']}); frequenz-client-dispatch "
        f"{machine['frequenz_client_dispatch']} (grpcio {machine['grpcio']}, protobuf "
        f"{machine['protobuf']}); betterproto2 {machine['betterproto2']}",
        f"- Runs per client: {report['runs']}, taking turns (A B C D A B C D ...); one "
        "grpcio server in its own process answers every client from pre-encoded responses.",
        "",
        "Each table gives min / median / max over the runs and the ratio of medians "
        "ours / official: below 1 is better for times and sizes, above 1 for rates. "
        "Every figure of every run is in `benchmarks.json`.",
        "",
    ]
    if svg_name:
        lines += [f"![ours / official per case, as a cost]({svg_name})", ""]
    if report["chart"]:
        previous = report.get("previous")
        if previous is None:
            header = ["| case | client | ours / official |", "|---|---|---:|"]
            before: dict[tuple[str, str], float] = {}
            since = ""
        else:
            header = [
                f"| case | client | ours / official | previous run (commit {previous['commit']}) |",
                "|---|---|---:|---:|",
            ]
            before = {(bar["case"], bar["client"]): bar["cost_ratio"] for bar in previous["chart"]}
            since = (
                f" The last column is the same figure in the run this page replaced "
                f"({previous['generated']}, commit {previous['commit']}); a dash: no such row then."
            )

        def row(bar: dict[str, Any]) -> str:
            cells = f"| {bar['case']} | {bar['client']} | {bar['cost_ratio']:.2f} |"
            if previous is None:
                return cells
            old = before.get((bar["case"], bar["client"]))
            return cells + (" - |" if old is None else f" {old:.2f} |")

        lines += [
            "## Summary",
            "",
            "Ours / official as a cost (time, memory or size; for rates, official / ours), "
            "medians: below 1 means ours is cheaper." + since,
            "",
            *header,
            *(row(bar) for bar in report["chart"]),
            "",
        ]
    if report.get("targets"):
        last = report.get("previous")
        old_chart = (
            None
            if last is None
            else {(bar["case"], bar["client"]): bar["cost_ratio"] for bar in last["chart"]}
        )
        lines += [
            "## Targets",
            "",
            "Issue 19: `get()` and `create()` calls/s at least 1.5x the official client's "
            "on asyncio and 1.3x on trio, sequential and with 10 concurrent callers "
            "(ratio of medians, higher is better), client CPU per call beside (medians).",
            "",
            _targets_table(report["targets"], old_chart),
            "",
        ]
    return "\n".join(lines) + "\n" + "\n\n".join(sections) + "\n"


def _previous_run(path: Path) -> dict[str, Any] | None:
    """The summary of the run a full run's page replaces (its chart), or None.

    So the page shows what changed since the last recorded run, figure by figure.
    """
    try:
        old = json.loads(path.read_text())
        return {
            "generated": str(old["generated"]),
            "commit": str(old["machine"]["commit"]),
            "chart": [
                {
                    "case": str(bar["case"]),
                    "client": str(bar["client"]),
                    "cost_ratio": float(bar["cost_ratio"]),
                }
                for bar in old["chart"]
            ],
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no page yet, or one written by another version: nothing to compare


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks: ours against the official client, side by side.",
    )
    parser.add_argument("--runs", type=int, help="runs per client (default: 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of small cases")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[*CASES, *ALIASES],
        metavar="CASE",
        help=f"run only these cases ({', '.join(CASES)}; rss = list)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("build/benchmarks/results.json"),
        help="where to write every figure (default: %(default)s)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        help="also write DIR/benchmarks.md, DIR/benchmarks.json and DIR/benchmarks.svg",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-max-streams", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen cases, print the tables, write the figures; return the exit status."""
    args = _parse(argv)
    if args.serve:
        _serve(args.serve_max_streams)
        return 0
    chosen = {ALIASES.get(case, case) for case in args.only or CASES}
    for name in ("frequenz", "dispatch_client", "grpc"):
        # The clients' per-drop and per-retry warnings would drown the progress lines.
        logging.getLogger(name).setLevel(logging.CRITICAL)

    started = time.monotonic()
    server = ServerProcess() if chosen & NETWORK_CASES else None
    runner = Runner(
        args.runs, args.quick, server.url if server else None, server.pid if server else None
    )
    steps: list[tuple[str, Callable[[], None]]] = [
        ("list", runner.run_list),
        ("decode", runner.run_decode),
        ("encode", runner.run_encode),
        ("get", lambda: runner.run_unary(tuple(c for c in ("get", "create") if c in chosen))),
        ("stream", runner.run_stream),
        ("scheduler", runner.run_scheduler),
        ("import", runner.run_import),
        ("footprint", runner.run_footprint),
        ("transports", runner.run_transports),
        ("burst", runner.run_burst),
        ("pace", runner.run_pace),
        ("profile", runner.run_profile),
    ]
    try:
        for case, step in steps:
            if case in chosen or (case == "get" and "create" in chosen):
                step()
    finally:
        if server is not None:
            server.stop()

    given = sys.argv[1:] if argv is None else argv
    report: dict[str, Any] = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m benchmarks", *given]),
        "machine": _machine(),
        "runs": args.runs,
        "quick": args.quick,
        "seconds": time.monotonic() - started,
        "chart": [asdict(bar) for bar in runner.bars],
        "targets": runner.targets,
        "cases": runner.cases,
    }
    if args.docs is not None:
        report["previous"] = _previous_run(args.docs / "benchmarks.json")
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    print(_markdown(report, runner.sections, None))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text)
    if args.docs is not None and (args.quick or chosen != set(CASES)):
        # The page is the record of a whole run: a smoke run or a few cases would
        # replace it with a partial one.
        _progress(f"{args.docs}/benchmarks.* left as they were: not a full run of every case")
    elif args.docs is not None:
        args.docs.mkdir(parents=True, exist_ok=True)
        (args.docs / "benchmarks.json").write_text(text)
        (args.docs / "benchmarks.svg").write_text(
            _report.svg_chart(runner.bars, "dispatch-client against frequenz-client-dispatch")
        )
        (args.docs / "benchmarks.md").write_text(
            _markdown(report, runner.sections, "benchmarks.svg")
        )
    _progress(f"figures written to {args.json} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
