"""Answer Dispatch API calls from a cassette: a handler for `dispatch_client.testing.serve()`.

```python
from dispatch_client.testing import ReplayHandler, serve

async with ReplayHandler("session.jsonl") as handler, serve(handler) as url:
    ...  # any gRPC client, in any language, calls `url` and gets the recorded answers
```

`dispatch-client replay CASSETTE` does the same from the command line.

Each call is looked up in the cassette by `transports.ReplayTransport`: method plus
request bytes, in recorded order (see its documentation for `match_ignore` and
`allow_repeats`). Recorded answers travel as they were recorded: messages, statuses,
status messages, details and trailing metadata. What a gRPC server cannot send as
such becomes a status:

* a call with no recording (`transports.ReplayMismatch`): UNIMPLEMENTED, the status
  message holding the mismatch report (the closest recorded request as a diff); it is
  logged as a warning too, since a client rarely shows the whole message;
* a recorded failure that got no status (`transports.TransportError`, e.g. a lost
  connection): UNAVAILABLE, naming the recorded error;
* a stream the recording client left early: its recorded messages, then CANCELLED
  (what `ReplayTransport` raises for it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Iterable
from types import TracebackType
from typing import Self

from dispatch_client._methods import STREAMING_METHODS
from transports import (
    ReplayMismatch,
    StatusCode,
    TransportError,
    error_for_status,
)

from ._cassettes import DispatchRenderer

__all__ = ["ReplayHandler"]

_log = logging.getLogger(__name__)


class ReplayHandler:
    """Answers calls with a cassette's recorded interactions (a `transports.Handler`).

    Use it in `async with` (or call `aclose()`), in the event loop that runs `serve()`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        allow_repeats: bool = False,
        match_ignore: Iterable[str] = (),
        pace: bool = False,
    ) -> None:
        """Load the cassette.

        Args:
            path: The cassette file.
            allow_repeats: Answer a call again with an interaction already used when no
                unused one matches (a client that retries, or runs twice).
            match_ignore: Dotted JSON field paths left out when matching requests
                (e.g. `filter.startTimeInterval`).
            pace: Send stream messages with the recorded gaps between them.

        Raises:
            transports.CassetteError: If the file is not a cassette this version reads.
            OSError: If the file cannot be read.
        """
        # Imported here: `transports` loads the cassette machinery on first use.
        from transports import ReplayTransport

        self._path = os.fspath(path)
        self._transport = ReplayTransport(
            path,
            renderer=DispatchRenderer(),
            match_ignore=tuple(match_ignore),
            allow_repeats=allow_repeats,
            pace=pace,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path!r})"

    def __call__(
        self, method: str, request: bytes, metadata: tuple[tuple[str, str | bytes], ...]
    ) -> Awaitable[bytes] | AsyncIterator[bytes]:
        """Answer one call: a stream for the streaming methods, else one message.

        The caller's metadata takes no part in matching (signatures and nonces differ
        on every run, and the recorder redacted them), so it is not passed on.
        """
        if method in STREAMING_METHODS:
            return self._stream(method, request)
        return self._unary(method, request)

    async def _unary(self, method: str, request: bytes) -> bytes:
        try:
            return await self._transport.unary(method, request)
        except (ReplayMismatch, TransportError) as exc:
            raise _as_status(method, exc) from None

    async def _stream(self, method: str, request: bytes) -> AsyncIterator[bytes]:
        try:
            async with self._transport.server_stream(method, request) as messages:
                async for message in messages:
                    yield message
        except (ReplayMismatch, TransportError) as exc:
            raise _as_status(method, exc) from None

    async def aclose(self) -> None:
        """Release the cassette's transport; idempotent."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _as_status(method: str, exc: ReplayMismatch | TransportError) -> Exception:
    """The status a server sends for a replay failure that has no status of its own."""
    if isinstance(exc, ReplayMismatch):
        _log.warning("no recording for a call of %s: %s", method, exc)
        return error_for_status(StatusCode.UNIMPLEMENTED, f"no recording for this call: {exc}")
    return error_for_status(
        StatusCode.UNAVAILABLE, f"the recorded call failed: {type(exc).__name__}: {exc}"
    )
