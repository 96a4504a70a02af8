"""Peak memory of receiving one large message, per transport and backend (a script).

Usage, from the project root:

    python -m tools.measure_memory [--mib 16]

The server (the hostile-server kit, answering well) runs in a child process, so only
the client's allocations are traced; the result is the peak of `tracemalloc` above
the baseline while one message arrives, as a multiple of the message's size.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import multiprocessing.connection
import tracemalloc

import anyio

import transports

_MiB = 1024 * 1024


def _serve(pipe: multiprocessing.connection.Connection, size: int) -> None:
    from tests.hostile.kit import HostileServer, Request

    payload = b"m" * size

    def answer(request: Request) -> None:
        request.answer(payload if request.message == b"big" else b"ok")

    with HostileServer(answer) as server:
        pipe.send(server.url)
        pipe.recv()  # until the parent is done


async def _peak(url: str, kind: str, streaming: bool, size: int) -> float:
    transport: transports.Transport
    if kind == "grpclib":
        transport = transports.GrpclibTransport.from_url(url, max_receive_message_length=2 * size)
    else:
        transport = transports.H2Transport.from_url(url, max_receive_message_length=2 * size)
    async with transport:
        await transport.unary("/measure.Memory/Small", b"small")
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            if streaming:
                async with transport.server_stream("/measure.Memory/Big", b"big") as messages:
                    async for message in messages:
                        del message
            else:
                await transport.unary("/measure.Memory/Big", b"big")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return (peak - baseline) / size


async def _measure(url: str, backend: str, size: int) -> None:
    kinds = ["h2", "grpclib"] if backend == "asyncio" else ["h2"]
    for kind in kinds:
        for streaming in (False, True):
            ratio = await _peak(url, kind, streaming, size)
            call = "stream" if streaming else "unary"
            print(f"{kind:8} {backend:8} {call:7} peak above baseline: {ratio:.2f} x the message")


def main() -> None:
    """Measure every transport and backend and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16, help="message size in MiB")
    size = parser.parse_args().mib * _MiB
    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(there, size))
    server.start()
    try:
        url = here.recv()
        for backend in ("asyncio", "trio"):
            anyio.run(_measure, url, backend, size, backend=backend)
    finally:
        here.send("stop")
        server.join()


if __name__ == "__main__":
    main()
