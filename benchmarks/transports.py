"""Benchmark the gRPC client transports against one grpcio server.

Usage (the runner's case `transports`; `python benchmarks/transports.py ARGS` is the same):

    python -m benchmarks --only transports [--runs N] [--quick] [--json PATH]

The runner's grpcio (asyncio) server runs in a subprocess, so it does not share the
client's GIL. Each client measures, for half a second each (0.2 s with `--quick`):
sequential unary calls/s, unary calls/s with 10 concurrent callers, and streamed
messages/s. Clients take turns run by run (A B C D A B C D ...), so drifts of the
machine spread over all of them. The table gives min/median/max per case and the ratio
of medians to GrpclibTransport; the JSON file keeps every figure.

Clients: GrpclibTransport (asyncio), H2Transport on asyncio and on trio, and grpcio's
asyncio client (`grpc.aio`, generic calls on bytes). This is a script, not a test:
nothing asserts a timing.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

# This script is named like the package it measures, and Python puts the script's
# directory first on sys.path: take it off, or `import transports` finds this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
# The project root instead, for the scripts' shared module `benchmarks._server_process`.
sys.path.insert(0, str(_HERE.parent))

import anyio  # noqa: E402
import grpc  # noqa: E402
import grpc.aio  # noqa: E402

from transports import GrpclibTransport, H2Transport, Transport  # noqa: E402

SERVICE = "bench.Bench"
ECHO = f"/{SERVICE}/Echo"
STREAM = f"/{SERVICE}/Stream"
PAYLOAD = b"x" * 64
"""The unary request: about the size of a small dispatch request."""
STREAM_REQUEST = b"100000:64"
"""`COUNT:SIZE`: a stream longer than any measuring window, of 64-byte messages."""
CONCURRENCY = 10
CASES = ("unary calls/s", f"{CONCURRENCY}-concurrent calls/s", "streamed messages/s")


# --- the server (subprocess) -------------------------------------------------------------


def server_handlers() -> list[Any]:
    """The grpcio generic handlers of the echo and stream methods, on bytes."""

    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    async def stream(
        request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        count, _, size = request.partition(b":")
        message = b"m" * int(size)
        for _ in range(int(count)):
            yield message

    return [
        grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Echo": grpc.unary_unary_rpc_method_handler(echo),
                "Stream": grpc.unary_stream_rpc_method_handler(stream),
            },
        )
    ]


# --- the clients ------------------------------------------------------------------------


class Calls(Protocol):
    """What one benchmark client can do."""

    async def unary(self) -> None:
        """Make one unary Echo call."""
        ...

    def stream(self) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Start a long stream."""
        ...


class _TransportCalls:
    """Benchmark calls through a `transports.Transport`."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def unary(self) -> None:
        await self._transport.unary(ECHO, PAYLOAD)

    def stream(self) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        stream: AbstractAsyncContextManager[AsyncIterator[bytes]] = self._transport.server_stream(
            STREAM, STREAM_REQUEST
        )
        return stream


class _GrpcioCalls:
    """Benchmark calls through grpcio's asyncio channel, on bytes."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._unary = channel.unary_unary(ECHO)
        self._stream = channel.unary_stream(STREAM)

    async def unary(self) -> None:
        await self._unary(PAYLOAD)

    @asynccontextmanager
    async def stream(self) -> AsyncIterator[AsyncIterator[bytes]]:
        call = self._stream(STREAM_REQUEST)
        try:
            yield call.__aiter__()
        finally:
            call.cancel()


@asynccontextmanager
async def _grpclib(url: str) -> AsyncIterator[Calls]:
    async with GrpclibTransport.from_url(url) as transport:
        yield _TransportCalls(transport)


@asynccontextmanager
async def _h2(url: str) -> AsyncIterator[Calls]:
    async with H2Transport.from_url(url) as transport:
        yield _TransportCalls(transport)


@asynccontextmanager
async def _grpcio(url: str) -> AsyncIterator[Calls]:
    target = url.removeprefix("grpc://").partition("?")[0]
    async with grpc.aio.insecure_channel(target) as channel:
        yield _GrpcioCalls(channel)


ClientFactory = Callable[[str], AbstractAsyncContextManager[Calls]]


class Client:
    """A benchmarked client: how to open it, and on which backend."""

    def __init__(self, name: str, factory: ClientFactory, backend: str) -> None:
        self.name = name
        self.factory = factory
        self.backend = backend

    @property
    def available(self) -> bool:
        """Whether this client can run here (H2Transport may not be built yet)."""
        if self.factory is _h2:
            return callable(getattr(H2Transport, "from_url", None))
        return True


CLIENTS = (
    Client("GrpclibTransport (asyncio)", _grpclib, "asyncio"),
    Client("H2Transport (asyncio)", _h2, "asyncio"),
    Client("H2Transport (trio)", _h2, "trio"),
    Client("grpcio aio", _grpcio, "asyncio"),
)
BASELINE = CLIENTS[0].name


# --- measuring --------------------------------------------------------------------------


async def _sequential(calls: Calls, seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        await calls.unary()
        count += 1
    return count / (time.perf_counter() - start)


async def _concurrent(calls: Calls, seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    end = start + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < end:
            await calls.unary()
            count += 1

    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENCY):
            group.start_soon(worker)
    return count / (time.perf_counter() - start)


async def _streamed(calls: Calls, seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        async with calls.stream() as messages:
            async for _ in messages:
                count += 1
                # Checking the clock per message would cost more than the message.
                if count % 256 == 0 and time.perf_counter() >= end:
                    break
    return count / (time.perf_counter() - start)


MEASURES: tuple[Callable[[Calls, float], Awaitable[float]], ...] = (
    _sequential,
    _concurrent,
    _streamed,
)


async def _one_run(client: Client, url: str, seconds: float) -> list[float]:
    """Open a client, warm it up, and measure every case once."""
    async with client.factory(url) as calls:
        for _ in range(50):
            await calls.unary()
        return [await measure(calls, seconds) for measure in MEASURES]


def measure_all(url: str, seconds: float, runs: int) -> dict[str, dict[str, list[float]]]:
    """Run every available client `runs` times, taking turns; figures by case, by client."""
    figures: dict[str, dict[str, list[float]]] = {case: {} for case in CASES}
    for run in range(runs):
        for client in CLIENTS:
            if not client.available:
                continue
            print(f"run {run + 1}/{runs}: {client.name}", file=sys.stderr, flush=True)
            results = anyio.run(_one_run, client, url, seconds, backend=client.backend)
            for case, value in zip(CASES, results, strict=True):
                figures[case].setdefault(client.name, []).append(value)
    return figures


# --- reporting --------------------------------------------------------------------------


def summarize(figures: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, Any]]:
    """Min, median and max per case and client, and the ratio of medians to grpclib."""
    summary: dict[str, dict[str, Any]] = {}
    for case, by_client in figures.items():
        summary[case] = {}
        baseline = by_client.get(BASELINE)
        base_median = statistics.median(baseline) if baseline else None
        for client in CLIENTS:
            values = by_client.get(client.name)
            if not values:
                summary[case][client.name] = None
                continue
            median = statistics.median(values)
            summary[case][client.name] = {
                "runs": values,
                "min": min(values),
                "median": median,
                "max": max(values),
                "ratio_to_grpclib": median / base_median if base_median else None,
            }
    return summary


def table(summary: dict[str, dict[str, Any]]) -> str:
    """Render the summary as a markdown table."""
    lines = [
        "| case | client | min | median | max | vs grpclib (median) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for case, by_client in summary.items():
        for name, row in by_client.items():
            if row is None:
                lines.append(f"| {case} | {name} | n/a | n/a | n/a | n/a |")
                continue
            ratio = row["ratio_to_grpclib"]
            ratio_text = "n/a" if ratio is None else f"{ratio:.2f}x"
            lines.append(
                f"| {case} | {name} | {row['min']:,.0f} | {row['median']:,.0f} "
                f"| {row['max']:,.0f} | {ratio_text} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["--only", "transports", *sys.argv[1:]]))
