"""Which async library runs the current task: the one place that looks by hand.

Everything else is written against anyio; only two choices depend on the library:
the client's default transport (grpclib, the fallback without a task group, is
asyncio-only) and where the test server runs grpclib (in the caller's loop on asyncio,
in a thread of its own under trio).
"""

from __future__ import annotations

import sys
from typing import Literal

__all__ = ["running_library"]


def running_library() -> Literal["asyncio", "trio"]:
    """Name the async library running this task.

    Returns:
        "asyncio" or "trio".

    Raises:
        RuntimeError: If neither runs in this thread.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return "trio"
    raise RuntimeError("no asyncio or trio event loop is running in this thread")
