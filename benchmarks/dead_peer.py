"""How long each transport takes, with default settings, to notice a dead peer.

    python -m benchmarks.dead_peer

A stream call to our fake server (`dispatch_client.testing`) goes through a loopback
proxy (`tests/hostile/proxy.py`); one second after the server answered, the proxy turns
the connection dark both ways (nothing forwarded or read, sockets left open: a host that
vanished). The figure is the time from then until the call fails. The transports run
at once, each in a thread with its own event loop, with the URL's keep-alive defaults
(a PING every 15 s while calls are in flight, 10 s to answer): the worst case is
interval + timeout, 25 s, when the peer dies just after answering a PING. Freezing one
second after connecting is close to that worst case. A script, not a test: nothing
asserts a time.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import anyio

from dispatch_client._codec._encode import encode_stream_request
from dispatch_client._methods import STREAM
from dispatch_client.testing import FakeDispatchService, serve
from tests.hostile.proxy import FreezingProxy
from transports import GrpcError, GrpclibTransport, H2Transport, Transport

__all__ = ["main", "measure"]

LIMIT_S = 120.0
"""Seconds after which a transport counts as never noticing."""
CASES = (
    ("GrpclibTransport (asyncio)", "grpclib", "asyncio"),
    ("H2Transport (asyncio)", "h2", "asyncio"),
    ("H2Transport (trio)", "h2", "trio"),
)


async def measure(kind: str) -> dict[str, Any]:
    """Open a stream through a proxy, freeze the proxy, time until the call fails."""
    with FakeDispatchService(keys=["k"]) as service:
        async with serve(service) as direct:
            port = int(direct.rpartition(":")[2].partition("?")[0])
            with FreezingProxy(port) as proxy:
                transport: Transport = (
                    GrpclibTransport.from_url(proxy.url())
                    if kind == "grpclib"
                    else H2Transport.from_url(proxy.url())
                )
                request = encode_stream_request(1)
                async with (
                    transport,
                    transport.server_stream(STREAM, request, metadata=[("key", "k")]) as responses,
                ):
                    await responses.initial_metadata()
                    await anyio.sleep(1.0)
                    proxy.freeze()
                    frozen = time.monotonic()
                    with anyio.move_on_after(LIMIT_S):
                        try:
                            async for _ in responses:
                                pass
                        except GrpcError as error:
                            return {
                                "seconds": time.monotonic() - frozen,
                                "error": f"{type(error).__name__}: {error}",
                            }
                    return {"seconds": None, "error": f"not noticed within {LIMIT_S:g} s"}


def main() -> int:
    """Measure every transport at once; print one line each."""
    results: dict[str, dict[str, Any]] = {}

    def run(name: str, kind: str, backend: str) -> None:
        results[name] = anyio.run(measure, kind, backend=backend)

    threads = [threading.Thread(target=run, args=case) for case in CASES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, _, _ in CASES:
        row = results.get(name, {"seconds": None, "error": "the run failed"})
        seconds = "n/a" if row["seconds"] is None else f"{row['seconds']:.1f} s"
        print(f"{name}: dead peer noticed after {seconds} ({row['error']})")
    return 0 if all(row.get("seconds") is not None for row in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
