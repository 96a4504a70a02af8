"""Where our time goes: cProfile of our client in a case where it is slower.

Cases: `list` (page size 1,000), `get`, `create`, and `stream` (fan-out to N receivers,
as `benchmarks/stream.py` measures it).

Each profile runs in a fresh process (`python -m benchmarks.hotspots WHAT URL COUNT
PAGE_SIZE [CLIENT]`), ours on asyncio with GrpclibTransport unless CLIENT names another
of ours (`benchmarks._clients`, e.g. "ours, H2Transport (trio)"; `get` and `create`
only), against the runner's server: after a warm-up, the profiler is on for the measured
calls only. The result is the hottest
functions by own time (tottime), and the own time summed by area (betterproto2, our
conversion code, the transport and event loop, ...).
"""

from __future__ import annotations

import cProfile
import json
import pstats
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import anyio

from benchmarks._clients import BY_NAME, OURS_GRPCLIB, official_warnings_silenced
from benchmarks._server_process import ROOT
from benchmarks.calls import CHILD_TIMEOUT, open_calls

TOP = 12
"""How many functions a profile lists."""
_AREAS = (
    ("/betterproto2/", "betterproto2 (message parsing and encoding)"),
    ("/dispatch_client/_codec/_bridge.py", "dispatch_client._codec._bridge (reference codec)"),
    ("/dispatch_client/_codec/_decode.py", "dispatch_client._codec._decode (wire to domain)"),
    ("/dispatch_client/_codec/_encode.py", "dispatch_client._codec._encode (domain to wire)"),
    ("/dispatch_client/_codec/_wire.py", "dispatch_client._codec._wire (wire primitives)"),
    ("/dispatch_client/_types.py", "dispatch_client._types (domain types, validation)"),
    ("<attrs generated", "dispatch_client._types (domain types, validation)"),
    ("<string>", "generated __init__ methods (dataclasses: betterproto2 messages)"),
    ("/dispatch_client/", "dispatch_client (client, other)"),
    ("/transports/", "transports (our gRPC framing, HTTP/2 core, adapters)"),
    ("/grpclib/", "grpclib, h2, multidict (HTTP/2)"),
    ("/h2/", "grpclib, h2, multidict (HTTP/2)"),
    ("/hpack/", "grpclib, h2, multidict (HTTP/2)"),
    ("/multidict/", "grpclib, h2, multidict (HTTP/2)"),
    ("/asyncio/", "asyncio, anyio, sockets (event loop)"),
    ("/anyio/", "asyncio, anyio, sockets (event loop)"),
    ("/trio/", "trio (event loop)"),
    ("<method 'send'", "asyncio, anyio, sockets (event loop)"),
    ("<method 'recv", "asyncio, anyio, sockets (event loop)"),
    ("<method 'poll'", "asyncio, anyio, sockets (event loop)"),
    ("/selectors.py", "asyncio, anyio, sockets (event loop)"),
    ("/dateutil/", "dateutil"),
    ("/site-packages/", "other packages"),
    ("/lib/python3", "Python standard library"),
)


def _area(filename: str, function: str) -> str:
    where = function if filename == "~" else filename
    for marker, area in _AREAS:
        if marker in where:
            return area
    return "builtins (len, isinstance, BytesIO.read, ...)" if filename == "~" else "other"


def _where(key: tuple[str, int, str]) -> str:
    """`path:line(function)`, the path shortened to its package."""
    filename, line, function = key
    if filename == "~":
        return function  # a builtin, like "<method 'send' of '_socket.socket' objects>"
    for anchor in ("site-packages/", f"{ROOT}/", "/lib/"):
        if anchor in filename:
            filename = filename.split(anchor, 1)[1]
            break
    return f"{filename}:{line}({function})"


def digest(profile: cProfile.Profile, calls: int) -> dict[str, Any]:
    """The hottest functions and the own time by area of a finished profile.

    Args:
        profile: The profile.
        calls: The number of profiled units (dispatches or calls), for per-unit times.

    Returns:
        `total_s`, `units`, `top` (function, ncalls, tottime_s, cumtime_s) and
        `areas` (area to own seconds), both sorted by time.
    """
    table: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    table = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values())
    ranked = sorted(table.items(), key=lambda item: -item[1][2])
    top = [
        {"function": _where(key), "ncalls": entry[1], "tottime_s": entry[2], "cumtime_s": entry[3]}
        for key, entry in ranked[:TOP]
    ]
    areas: dict[str, float] = {}
    for key, entry in table.items():
        area = _area(key[0], key[2])
        areas[area] = areas.get(area, 0.0) + entry[2]
    return {
        "total_s": total,
        "units": calls,
        "top": top,
        "areas": dict(sorted(areas.items(), key=lambda item: -item[1])),
    }


async def _profile_stream(profile: cProfile.Profile, url: str, receivers: int) -> dict[str, Any]:
    """Profile one stream fan-out case of ours; the units are deliveries (event x receiver)."""
    from benchmarks import stream

    @contextmanager
    def measuring() -> Iterator[None]:
        profile.enable()
        try:
            yield
        finally:
            profile.disable()

    contestant = next(c for c in stream.CONTESTANTS if c.name == OURS_GRPCLIB)
    # A short latency run: its waits between events would only add idle polling.
    plan = replace(stream.Plan(), latency_seconds=0.05)
    figures = await stream.measured_case(contestant, url, receivers, plan, measuring)
    for phase in ("throughput", "latency"):
        if "error" in figures[phase]:
            return {"error": f"{phase} run: {figures[phase]['error']}"}
    events = figures["throughput"]["events"] + figures["latency"]["events"]
    return digest(profile, events * receivers)


async def _profile(
    what: str, url: str, count: int, page_size: int, client: str = OURS_GRPCLIB
) -> dict[str, Any]:
    profile = cProfile.Profile()
    if what == "stream":
        return await _profile_stream(profile, url, count)
    async with open_calls(BY_NAME[client], url) as calls:
        for _ in range(20):
            await calls.get()
        if what == "list":
            profile.enable()
            held = await calls.list_all(count, page_size)
            profile.disable()
            if len(held) != count:
                return {"error": f"received {len(held)} of {count} dispatches"}
        else:
            call = calls.get if what == "get" else calls.create
            await call()
            profile.enable()
            for _ in range(count):
                await call()
            profile.disable()
    return digest(profile, count)


def hotspots_child(argv: list[str]) -> int:
    """In a fresh process: profile one case and print the digest as JSON.

    Args:
        argv: What (`list`, `get`, `create` or `stream`), server URL, count (of
            dispatches, calls or receivers), page size, and optionally which of our
            clients (by its name in `benchmarks._clients`; GrpclibTransport if left out).

    Returns:
        The exit status.
    """
    what, url, count, page_size, *rest = argv
    client = rest[0] if rest else OURS_GRPCLIB
    contestant = BY_NAME.get(client)
    if contestant is None or contestant.is_official:
        print(f"not one of our clients: {client!r}", file=sys.stderr)
        return 2
    with official_warnings_silenced():
        result = anyio.run(
            _profile, what, url, int(count), int(page_size), client, backend=contestant.backend
        )
    print(json.dumps(result))
    return 0


def measure_hotspots(
    url: str, cases: dict[str, tuple[int, int]], progress: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Profile each case (`what` -> (count, page size)), one fresh process each.

    Returns:
        Per case, the `digest()` or an `error`.
    """
    results: dict[str, dict[str, Any]] = {}
    for what, (count, page_size) in cases.items():
        progress(f"profile of ours ({OURS_GRPCLIB}): {what}")
        command = [sys.executable, "-m", "benchmarks.hotspots", what, url, str(count)]
        try:
            done = subprocess.run(
                [*command, str(page_size)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            results[what] = {"error": f"no answer within {CHILD_TIMEOUT:g} s"}
            continue
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            results[what] = {"error": f"exit status {done.returncode}: {tail[0]}"}
            continue
        results[what] = json.loads(lines[-1])
    return results


def table(result: dict[str, Any], unit: str, units: str) -> str:
    """Markdown: own time by area, then the hottest functions.

    Args:
        result: A `digest()`, or an `error`.
        unit: What one profiled unit is ("dispatch", "call").
        units: The plural.

    Returns:
        The markdown.
    """
    if "error" in result:
        return f"Not profiled: {result['error']}"
    total, count = result["total_s"], result["units"]
    lines = [
        f"Profiled: {count:,} {units}, {total:.2f} s of own time under the profiler "
        f"({total / count * 1e6:,.0f} µs per {unit}; the profiler slows "
        "everything down, the shares are what counts).",
        "",
        "| area | own time s | share |",
        "|---|---:|---:|",
        *(
            f"| {area} | {seconds:.2f} | {seconds / total:.0%} |"
            for area, seconds in result["areas"].items()
            if seconds / total >= 0.005
        ),
        "",
        "| function | calls | tottime s | cumtime s |",
        "|---|---:|---:|---:|",
        *(
            f"| `{row['function']}` | {row['ncalls']:,} | {row['tottime_s']:.2f} "
            f"| {row['cumtime_s']:.2f} |"
            for row in result["top"]
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(hotspots_child(sys.argv[1:]))
