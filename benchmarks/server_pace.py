"""How fast the benchmark server can go: a client that does nothing, beside the others.

With 10 concurrent callers on a 2-core machine, `get()` calls/s depend on the grpcio
server as much as on the client. This case measures what a client doing no work gets:
a bare asyncio HTTP/2 client (`BareClient`) that sends a pre-encoded request, reads
frame headers, and hands back the message bytes, with no HPACK decoding, no checks and
no message decoding. Its calls/s are the most any client could show against this
server on this machine (give or take the server's own batching); ours and the official
client run beside it, taking turns, each in a fresh process.

A second row adds our decoding of the answer (`decode_get_response`) to the bare
client: the least a client that hands back a `Dispatch` could cost. `--work 15,30,60`
adds rows of the bare client spending that many µs of CPU per call (a busy loop after
each answer): calls/s against client CPU per call, with everything else equal, shows
how much work per call a client may do and still reach a given ratio.

    python -m benchmarks.server_pace [--runs N] [--calls N] [--work US,...] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from benchmarks._clients import (
    BY_NAME,
    OFFICIAL,
    OURS_H2,
    OURS_H2_TRIO,
    official_warnings_silenced,
)
from benchmarks._server_process import ROOT, ServerProcess
from benchmarks.calls import (
    CONCURRENCY,
    SERVICE,
    Timed,
    _concurrent,
    _ServerClock,
    open_calls,
)
from dispatch_client import Dispatch
from dispatch_client._codec._decode import decode_get_response

BARE = "bare HTTP/2 client (asyncio, does no work)"
BARE_DECODING = "bare HTTP/2 client + our decoding of the answer's Dispatch"
CLIENTS = (BARE, BARE_DECODING, OURS_H2, OURS_H2_TRIO, OFFICIAL)
_BARE_CLIENTS = (BARE, BARE_DECODING)  # ours here, on asyncio
GET_PATH = f"/{SERVICE}/GetMicrogridDispatch"
GET_REQUEST = bytes.fromhex("0801102a")  # microgrid_id 1, dispatch_id 42
WARMUP_CALLS = 200
BENCH_WORK = (30, 60)
"""The µs of work per call of the bare client's extra rows in `just bench`."""

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _SETTINGS, _PING, _GOAWAY, _WINDOW_UPDATE = 0, 1, 4, 6, 7, 8
_END_STREAM, _ACK, _END_HEADERS = 0x1, 0x1, 0x4
_BIG_WINDOW = 1 << 30
_READ_SIZE = 64 * 1024


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (
        len(payload).to_bytes(3, "big")
        + bytes((kind, flags))
        + stream_id.to_bytes(4, "big")
        + payload
    )


class BareClient(asyncio.BufferedProtocol):
    """The least a gRPC client over HTTP/2 can do per unary call, on asyncio.

    Windows of 1 GiB (so almost no WINDOW_UPDATE goes out), SETTINGS and PING acks, the
    requests of one loop pass in one write. It trusts the server: headers are not
    decoded, so a non-OK status goes unnoticed; only a call that ends without a message,
    a GOAWAY or a lost connection fails (RuntimeError). It reads into one kept 64 KiB
    buffer, as H2Transport does: asyncio's own 256 KiB reads can cost a malloc mmap and
    munmap each, depending on the process.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._read_buffer = bytearray(_READ_SIZE)
        self._waiting: dict[int, asyncio.Future[bytes]] = {}
        self._messages: dict[int, bytes] = {}
        self._next_stream = 1
        self._received = 0
        self._outgoing: list[bytes] = []
        self._block = b""
        self._error: RuntimeError | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, metadata: tuple[tuple[str, str], ...]
    ) -> BareClient:
        """Connect and send the preface; `metadata` goes with every call."""
        import hpack

        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(cls, host, port)
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", GET_PATH),
            (":authority", f"{host}:{port}"),
            ("te", "trailers"),
            ("content-type", "application/grpc"),
            ("grpc-timeout", "60S"),
            *metadata,
        ]
        # Never-indexed literals: the block leaves the server's table alone, so it can be
        # sent again and again as it is.
        client._block = hpack.Encoder().encode([(n, v, True) for n, v in headers])
        settings = (4).to_bytes(2, "big") + _BIG_WINDOW.to_bytes(4, "big")  # INITIAL_WINDOW
        client._write(
            _PREFACE
            + _frame(_SETTINGS, 0, 0, settings)
            + _frame(_WINDOW_UPDATE, 0, 0, (_BIG_WINDOW - 65535).to_bytes(4, "big"))
        )
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RuntimeError(f"the connection was lost ({exc!r})"))

    def close(self) -> None:
        """Close the connection."""
        if self._transport is not None:
            self._transport.close()

    async def get(self) -> bytes:
        """One `GetMicrogridDispatch` call: the response message's bytes, undecoded."""
        if self._error is not None:
            raise self._error
        stream_id = self._next_stream
        self._next_stream += 2
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[stream_id] = future
        message = b"\x00" + len(GET_REQUEST).to_bytes(4, "big") + GET_REQUEST
        self._queue(
            _frame(_HEADERS, _END_HEADERS, stream_id, self._block)
            + _frame(_DATA, _END_STREAM, stream_id, message)
        )
        return await future

    def _queue(self, data: bytes) -> None:
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(data)

    def _flush(self) -> None:
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        self._write(data)

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._read_buffer)

    def buffer_updated(self, nbytes: int) -> None:
        self._received_bytes(bytes(self._read_buffer[:nbytes]))

    def _received_bytes(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        pos = 0
        while len(buffer) - pos >= 9:
            length = int.from_bytes(buffer[pos : pos + 3], "big")
            if len(buffer) - pos - 9 < length:
                break
            kind, flags = buffer[pos + 3], buffer[pos + 4]
            stream_id = int.from_bytes(buffer[pos + 5 : pos + 9], "big") & 0x7FFF_FFFF
            payload = buffer[pos + 9 : pos + 9 + length]
            pos += 9 + length
            if kind == _DATA:
                self._messages[stream_id] = self._messages.get(stream_id, b"") + payload
                self._received += length
            elif kind == _HEADERS and flags & _END_STREAM:
                self._end(stream_id)
            elif kind == _SETTINGS and not flags & _ACK:
                self._queue(_frame(_SETTINGS, _ACK, 0, b""))
            elif kind == _PING and not flags & _ACK:
                self._queue(_frame(_PING, _ACK, 0, payload))
            elif kind == _GOAWAY:
                self._fail(RuntimeError("the server said GOAWAY"))
        self._buffer = buffer[pos:]
        if self._received > _BIG_WINDOW // 2:
            self._queue(_frame(_WINDOW_UPDATE, 0, 0, self._received.to_bytes(4, "big")))
            self._received = 0

    def _end(self, stream_id: int) -> None:
        future = self._waiting.pop(stream_id, None)
        body = self._messages.pop(stream_id, b"")
        if future is None or future.done():
            return
        if len(body) < 5:
            future.set_exception(RuntimeError(f"stream {stream_id} ended without a message"))
        else:
            future.set_result(body[5:])

    def _fail(self, error: RuntimeError) -> None:
        self._error = error
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(error)


def with_work(work_us: int) -> str:
    """The name of the bare client's row that spends `work_us` µs of CPU per call."""
    return f"{BARE} + {work_us} µs of CPU per call"


def _busy(call: Callable[[], Awaitable[bytes]], work_us: int) -> Callable[[], Awaitable[bytes]]:
    """`call`, then `work_us` µs of CPU spent in a busy loop (the thread's own clock)."""
    work = work_us / 1e6

    async def busy_call() -> bytes:
        answer = await call()
        done = time.thread_time() + work
        while time.thread_time() < done:
            pass
        return answer

    return busy_call


def _decoding(call: Callable[[], Awaitable[bytes]]) -> Callable[[], Awaitable[Dispatch]]:
    """`call`, its answer decoded by our codec (as `Client.get` decodes it)."""

    async def decoding_call() -> Dispatch:
        return decode_get_response(await call())

    return decoding_call


# --- one client in a fresh process --------------------------------------------------


async def _warm_then_shared(call: Callable[[], Awaitable[Any]], count: int) -> Timed:
    """`WARMUP_CALLS` calls alone, then `count` shared by `CONCURRENCY` callers."""
    for _ in range(WARMUP_CALLS):
        await call()
    return await _concurrent(call, count, _ServerClock(None))


async def _run(name: str, port: int, count: int, work_us: int) -> Timed:
    if name in _BARE_CLIENTS:
        client = await BareClient.connect("127.0.0.1", port, (("key", "bench"),))
        try:
            call: Callable[[], Awaitable[Any]] = client.get
            if name == BARE_DECODING:
                call = _decoding(client.get)
            elif work_us:
                call = _busy(client.get, work_us)
            return await _warm_then_shared(call, count)
        finally:
            client.close()
    async with open_calls(BY_NAME[name], f"grpc://127.0.0.1:{port}?ssl=false") as calls:
        return await _warm_then_shared(calls.get, count)


def child(name: str, port: int, count: int, work_us: int = 0) -> Timed:
    """In this process: one client's run against the server on `port`."""
    backend = "asyncio" if name in _BARE_CLIENTS else BY_NAME[name].backend
    with official_warnings_silenced():
        timed: Timed = anyio.run(_run, name, port, count, work_us, backend=backend)
    return timed


def measure(runs: int, count: int, work: tuple[int, ...] = ()) -> dict[str, list[dict[str, float]]]:
    """Every client (and the bare one with each `work` in µs), `runs` turns each in
    fresh processes, against one server.

    Returns:
        Row name -> one `{"calls_per_s", "cpu_us"}` per run.
    """
    rows = [(name, 0) for name in CLIENTS]
    rows[2:2] = [(BARE, work_us) for work_us in work]  # after the bare clients
    server = ServerProcess()
    results: dict[str, list[dict[str, float]]] = {}
    try:
        for _ in range(runs):
            for name, work_us in rows:
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.server_pace", "--child", name,
                     str(server.port), str(count), "--child-work", str(work_us)],
                    cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                )  # fmt: skip
                row = with_work(work_us) if work_us else name
                lines = done.stdout.strip().splitlines()
                if done.returncode != 0 or not lines:
                    tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
                    raise RuntimeError(f"{row}: exit status {done.returncode}: {tail[0]}")
                results.setdefault(row, []).append(json.loads(lines[-1]))
    finally:
        server.stop()
    return results


def describe(count: int, work: tuple[int, ...]) -> str:
    """What `measure(runs, count, work)` measures, for the benchmarks page."""
    spent = ", ".join(f"{work_us}" for work_us in work)
    return (
        f"{count:,} `get()` calls shared by {CONCURRENCY} concurrent callers per run, after "
        f"{WARMUP_CALLS} warm-up calls, each client in a fresh process, taking turns, "
        "against one grpcio server (`benchmarks/server_pace.py`, also `just bench-pace`). "
        "The bare client is an asyncio HTTP/2 client that does no work: pre-encoded "
        "requests, frame headers read, no HPACK decoding, no checks, the message bytes "
        "handed back. Its row is about the most any client can show against this server on "
        "this machine. The next row adds our decoding of each answer into a `Dispatch` (the "
        "least a client returning one could do), the ones after spend "
        f"{spent} µs of CPU per call in a busy loop: client and server share the "
        "machine's cores, and calls/s against client CPU per call, everything else equal, "
        "show how much a client may spend per call for a given ratio to the official client."
    )


def report(results: dict[str, list[dict[str, float]]]) -> str:
    """A markdown table: median calls/s and CPU per call, and calls/s over the official."""
    official = statistics.median(run["calls_per_s"] for run in results[OFFICIAL])
    lines = [
        f"| client | calls/s, {CONCURRENCY} callers (median; runs) | ÷ official "
        "| client CPU µs per call |",
        "|---|---:|---:|---:|",
    ]
    for name, runs in results.items():
        pace = statistics.median(run["calls_per_s"] for run in runs)
        cpu = statistics.median(run["cpu_us"] for run in runs)
        each = ", ".join(f"{run['calls_per_s']:,.0f}" for run in runs)
        lines.append(f"| {name} | {pace:,.0f} ({each}) | {pace / official:.2f} | {cpu:,.0f} |")
    return "\n".join(lines)


def _work_list(text: str) -> tuple[int, ...]:
    """`--work`: comma-separated whole µs, each > 0."""
    try:
        work = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole µs: {text!r}") from None
    if any(work_us <= 0 for work_us in work):
        raise argparse.ArgumentTypeError(f"each µs of work must be > 0: {text!r}")
    return work


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server_pace")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000, help="calls per run, 10 callers")
    parser.add_argument("--json", type=Path, help="also write the runs here")
    parser.add_argument(
        "--work",
        type=_work_list,
        default=(),
        metavar="US,...",
        help="also run the bare client spending each of these µs of CPU per call",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("CLIENT", "PORT", "CALLS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--child-work", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, port, count = args.child
        timed = child(name, int(port), int(count), args.child_work)
        print(json.dumps({"calls_per_s": timed.calls_per_s, "cpu_us": timed.cpu_us_per_call}))
        return 0
    results = measure(args.runs, args.calls, args.work)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
