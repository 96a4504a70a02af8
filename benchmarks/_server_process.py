"""The benchmarks' one grpcio server, in a subprocess of the runner.

The runner starts `python -m benchmarks --serve` in a child process (so the server does
not share the clients' GIL); the child calls `serve_until_stdin_closes()` with the
handlers of every case, prints the port it listens on, and stops when the parent closes
its stdin (`ServerProcess.stop()`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "ServerProcess",
    "serve_until_stdin_closes",
    "thread_cpu_seconds",
]


async def serve_until_stdin_closes(
    handlers: Sequence[Any], *, max_concurrent_streams: int | None = None
) -> None:
    """Serve grpcio generic handlers on a free loopback port until stdin closes.

    grpcio's asyncio server: its thread-pool server hands every call to a thread and
    would be the bottleneck of every case. The port is printed first, alone on a line.

    Args:
        handlers: `grpc.GenericRpcHandler`s.
        max_concurrent_streams: The HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS to announce
            (grpcio's default, unlimited, when None).
    """
    # Only the server process needs grpcio (a test and benchmark dependency).
    import grpc.aio

    options = []
    if max_concurrent_streams is not None:
        options.append(("grpc.max_concurrent_streams", max_concurrent_streams))
    server = grpc.aio.server(handlers=handlers, options=options)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    # The parent closes our stdin to stop us.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(grace=None)


ROOT = Path(__file__).resolve().parent.parent
"""The project root, from which `python -m benchmarks` runs."""


def thread_cpu_seconds(pid: int) -> dict[int, float] | None:
    """The CPU time each thread of another process has used so far, by thread id.

    From Linux's `/proc/PID/task/TID/stat`; None where there is no such directory. A
    thread that ends between listing and reading is left out.
    """
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    found = {}
    for tid in threads:
        seconds = _stat_cpu_seconds(f"/proc/{pid}/task/{tid}/stat")
        if seconds is not None:
            found[int(tid)] = seconds
    return found


def _stat_cpu_seconds(path: str) -> float | None:
    """User + system CPU seconds from a `/proc` stat file, or None if it cannot be read."""
    try:
        with open(path, encoding="ascii") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: count fields after its ")".
    fields = text[text.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime and stime: fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """The benchmark server, run as `python -m benchmarks --serve` in a subprocess."""

    def __init__(self, *, max_concurrent_streams: int | None = None) -> None:
        """Start the server and wait for its port.

        Args:
            max_concurrent_streams: The stream limit the server announces (none if None).

        Raises:
            RuntimeError: If the server does not print its port.
        """
        command = [sys.executable, "-m", "benchmarks", "--serve"]
        if max_concurrent_streams is not None:
            command += ["--serve-max-streams", str(max_concurrent_streams)]
        self._process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        self.port = int(line)
        self.url = f"grpc://127.0.0.1:{self.port}?ssl=false"
        self.pid = self._process.pid

    def stop(self) -> None:
        """Stop the server and reap the process."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
