"""The receivers a `Scheduler` hands out: unbounded, in order, ended when it closes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

import anyio

from dispatch_client._stream import ReceiverStoppedError

__all__ = ["ScheduleReceiver"]

_T = TypeVar("_T")


class ScheduleReceiver(Generic[_T]):
    """The changes a `Scheduler` sends one consumer, in order, each exactly once.

    ```python
    async with scheduler.running_state_changes("CHARGE") as changes:
        async for change in changes:
            ...
    ```

    The buffer is unbounded: a scheduler never drops or merges a change, because a
    lost "stopped" would leave work running. (A change is small, and a scheduler sends
    at most a few per dispatch run.) Iteration ends when the receiver or the scheduler
    is closed; `receive()` then raises `ReceiverStoppedError`. When the scheduler
    ends because its stream failed for good, `receive()` raises that error after the
    changes queued before it.
    """

    __slots__ = ("_closed", "_ended", "_error", "_items", "_on_close", "_waiter")

    def __init__(self, on_close: Callable[[ScheduleReceiver[_T]], None]) -> None:
        self._items: deque[_T] = deque()
        self._waiter: anyio.Event | None = None
        self._closed = False
        self._ended = False
        self._error: BaseException | None = None
        self._on_close = on_close

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ended" if self._ended else "open"
        return f"<ScheduleReceiver {state}, {len(self._items)} queued>"

    @property
    def closed(self) -> bool:
        """Whether nothing more will come (closed, or ended with nothing queued)."""
        return self._closed or (self._ended and not self._items)

    def pending(self) -> int:
        """How many changes are queued, not yet received."""
        return len(self._items)

    async def receive(self) -> _T:
        """Wait for the next change.

        Returns:
            The change.

        Raises:
            ReceiverStoppedError: Once the receiver or its scheduler is closed.
            GrpcError: The error that ended the scheduler's stream, after the changes
                queued before it.
        """
        while True:
            if self._closed:
                raise ReceiverStoppedError("the scheduler receiver is closed")
            if self._items:
                return self._items.popleft()
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise ReceiverStoppedError("the scheduler has stopped")
            if self._waiter is None or self._waiter.is_set():
                self._waiter = anyio.Event()
            await self._waiter.wait()

    def receive_nowait(self) -> _T | None:
        """Return the next queued change, or None when none is queued."""
        return self._items.popleft() if self._items and not self._closed else None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _T:
        try:
            return await self.receive()
        except ReceiverStoppedError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving; the scheduler forgets the receiver. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._items.clear()
        self._wake()
        self._on_close(self)

    async def aclose(self) -> None:
        """Stop receiving, as `close()` does."""
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- fed by the scheduler ----------------------------------------------------------

    def _push(self, item: _T) -> None:
        if self._closed or self._ended:
            return
        self._items.append(item)
        self._wake()

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.set()
