"""Nothing is left behind when calls fail while their transport is still connecting."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest

from transports import DeadlineExceeded

from .conftest import TransportFactory
from .kit import HostileServer, Link

pytestmark = pytest.mark.anyio


def client_sockets(port: int) -> int:
    """How many sockets this process holds that are connected to loopback `port`.

    Counts the client's side only (the kit's server runs in this process too, and its
    accepted sockets have `port` as their local port, not their remote one).
    """
    inodes: set[str] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(name)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rpartition(":")[2], 16) == port:
                inodes.add(fields[9])
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the directory listing's own descriptor, closed meanwhile
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


def slow_settings(link: Link) -> None:
    """Accept, then send the server's SETTINGS only after 0.2 s: connecting is slow."""
    link.sleep(0.2)
    link.start()


async def test_deadlines_while_connecting_leave_no_socket_open(
    make_transport: TransportFactory,
) -> None:
    """300 calls whose deadline passes while the server is slow to send its SETTINGS
    leave no socket open, while the transport lives on."""
    with HostileServer(lambda request: request.answer(b"ok"), on_connect=slow_settings) as server:
        async with make_transport(server.url) as transport:
            failures: list[BaseException] = []

            async def call() -> None:
                try:
                    await transport.unary("/a.B/C", b"", timeout=0.05)
                except DeadlineExceeded as exc:
                    failures.append(exc)

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tasks:
                    # In waves, so that new connection attempts start all along.
                    for _ in range(30):
                        for _ in range(10):
                            tasks.start_soon(call)
                        await anyio.sleep(0.02)
                await anyio.sleep(0.5)  # the server's SETTINGS arrive on every socket left
            gc.collect()
            open_now = client_sockets(urlsplit(server.url).port or 0)
            assert len(failures) == 300
            assert open_now == 0, f"{open_now} socket(s) left open by calls that timed out"
            with anyio.fail_after(10):  # and the transport still works
                assert await transport.unary("/a.B/C", b"", timeout=5) == b"ok"
