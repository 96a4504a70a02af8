"""Run `dispatch-client` commands as real processes in tests: start, read the URL, clean up."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

import anyio
import anyio.abc

TIMEOUT = 20
"""Seconds a served process may take to start or to stop."""


def command(name: str) -> tuple[str, ...]:
    """The argv of the `dispatch-client` command `name`, run with this interpreter.

    `python -m dispatch_client` rather than the console script, so the processes run
    this interpreter's package whatever is first on PATH (`test_entry_point.py` checks
    the installed script itself).
    """
    return (sys.executable, "-m", "dispatch_client", name)


async def first_line(stream: anyio.abc.ByteReceiveStream) -> str:
    """Read up to the first newline of a process's output."""
    buffer = b""
    while b"\n" not in buffer:
        buffer += await stream.receive()
    return buffer.split(b"\n", 1)[0].decode()


@contextlib.asynccontextmanager
async def running(*argv: str) -> AsyncIterator[tuple[anyio.abc.Process, str]]:
    """Run `argv`; yield the process and the first line it prints (its URL).

    The process is killed if the test leaves it running.
    """
    with anyio.fail_after(TIMEOUT):
        process = await anyio.open_process(list(argv))
    async with process:
        try:
            assert process.stdout is not None
            with anyio.fail_after(TIMEOUT):
                url = await first_line(process.stdout)
            yield process, url
        finally:
            if process.returncode is None:
                process.kill()
