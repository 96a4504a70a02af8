"""How long a burst of tiny frames keeps the event loop busy, per transport (a script).

Usage, from the project root:

    python -m tools.measure_floods [--frames 100000]

The hostile-server kit runs in a child process and, for each call, first sends a burst
of frames, then the answer: WINDOW_UPDATE frames (harmless, so processed to the end)
and PING frames (a flood, so the connection is closed with ENHANCE_YOUR_CALM). A task
in the client's loop ticks every millisecond; the longest gap between two ticks is
how long frame processing held the loop. No assertion: numbers only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import struct
import time

import anyio

import transports


def _serve(pipe: multiprocessing.connection.Connection, frames: int) -> None:
    from tests.hostile.kit import FrameType, HostileServer, Request, frame

    update = frame(FrameType.WINDOW_UPDATE, 0, 0, struct.pack(">I", 1))

    def answer(request: Request) -> None:
        if request.message == b"PING":
            request.link.ping_flood(frames)
        else:
            for start in range(0, frames, 4096):
                request.link.send(update * min(4096, frames - start))
        request.answer(b"done")

    with HostileServer(answer) as server:
        pipe.send(server.url)
        pipe.recv()  # until the parent is done


async def _longest_gap(url: str, kind: str, flood: bytes) -> tuple[float, str]:
    transport: transports.Transport
    if kind == "grpclib":
        transport = transports.GrpclibTransport.from_url(url)
    else:
        transport = transports.H2Transport.from_url(url)
    gap = 0.0

    async def tick() -> None:
        nonlocal gap
        last = time.perf_counter()
        while True:
            await anyio.sleep(0.001)
            now = time.perf_counter()
            gap = max(gap, now - last)
            last = now

    async with transport, anyio.create_task_group() as tasks:
        tasks.start_soon(tick)
        try:
            outcome = repr(await transport.unary("/measure.Floods/Call", flood))
        except transports.GrpcError as error:
            outcome = type(error).__name__
        tasks.cancel_scope.cancel()
    return gap, outcome


async def _measure(url: str, backend: str) -> None:
    kinds = ["h2", "grpclib"] if backend == "asyncio" else ["h2"]
    for kind in kinds:
        for flood in (b"WINDOW_UPDATE", b"PING"):
            gap, outcome = await _longest_gap(url, kind, flood)
            print(
                f"{kind:8} {backend:8} {flood.decode():14} longest loop gap "
                f"{gap * 1000:6.1f} ms  ({outcome})"
            )


def main() -> None:
    """Measure every transport and backend and print one line per flood."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames per burst")
    frames = parser.parse_args().frames
    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(there, frames))
    server.start()
    try:
        url = here.recv()
        for backend in ("asyncio", "trio"):
            anyio.run(_measure, url, backend, backend=backend)
    finally:
        here.send("stop")
        server.join()


if __name__ == "__main__":
    main()
