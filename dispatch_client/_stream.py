"""Live dispatch streams: one upstream call per microgrid, fanned out to receivers.

`Client.stream()` hands out `DispatchReceiver`s. All receivers of one microgrid share
one `_Upstream`: a task in the client's task group that holds the
`StreamMicrogridDispatches` call open, decodes each message once and pushes the event
to every receiver's bounded buffer. It reconnects with backoff when the call fails in a
way retrying can fix, ends every receiver with a typed error when it cannot, and ends
them cleanly when the client closes.

With `resync=True` the upstream also keeps a mirror of the microgrid's dispatches
(listed on connect and after every reconnect, kept current by the events). A resync
receiver remembers what it has delivered (its view); whenever the view may have fallen
behind the mirror (when it joins, after a reconnect, after its buffer overflowed), it
delivers the differences as synthesized events before any live one, and skips live
events its view already holds.
"""

from __future__ import annotations

import math
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from types import TracebackType
from typing import Final, Generic, Self, TypeVar, cast

import anyio
import anyio.abc
import attrs

from transports import (
    ConnectError,
    DeadlineExceeded,
    GrpcError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ProtocolError,
    ResponseStream,
    RpcError,
    TransportError,
    Unauthenticated,
    Unimplemented,
)

from ._errors import DecodeError
from ._log import logger as _log
from ._retry import RetryPolicy
from ._types import Dispatch, DispatchEvent, Event

__all__ = [
    "FATAL_ERRORS",
    "DispatchReceiver",
    "ReceiverStoppedError",
    "StreamConnected",
    "StreamNotice",
    "StreamReconnecting",
]

FATAL_ERRORS: Final = (Unauthenticated, PermissionDenied, InvalidArgument, Unimplemented, NotFound)
"""Statuses that reconnecting cannot fix: they end every receiver of the stream."""

ORPHAN_CHECK_INTERVAL = 5.0
"""Seconds between checks for a call whose receivers were all dropped without closing."""

DEFAULT_HEADER_TIMEOUT = 30.0
"""Seconds a stream call may wait for the server's response headers before it is retried."""

OpenStream = Callable[[int, float | None], Awaitable[AbstractAsyncContextManager[ResponseStream]]]
"""Start the stream call of a microgrid, with an optional deadline in seconds."""
ListAll = Callable[[int], Awaitable[dict[int, Dispatch]]]
"""List every dispatch of a microgrid, keyed by id."""
Decode = Callable[[bytes], DispatchEvent]
"""Decode one stream message."""


class ReceiverStoppedError(Exception):
    """The receiver has stopped: it was closed, or its client was.

    `receive()` raises it; `async for` simply ends instead.
    """


@attrs.frozen
class StreamNotice:
    """Something that happened to a stream's connection (receivers with `notices=True`)."""

    microgrid_id: int
    """The microgrid whose stream it is."""


@attrs.frozen
class StreamConnected(StreamNotice):
    """The server answered the stream call (HTTP 200, gRPC): events flow from here on.

    Sending the request is not enough: a server that takes the call but never answers
    it is retried after the client's `stream_header_timeout`.
    """

    reconnects: int
    """How many times the stream had to reconnect before this (0 on the first connect)."""


@attrs.frozen
class StreamReconnecting(StreamNotice):
    """The stream call ended; the next attempt starts after `delay`."""

    attempt: int
    """The attempt about to be made, counted from 1 since the last good connection."""
    delay: float
    """Seconds until the attempt."""
    cause: GrpcError | None
    """Why the call ended; None when the server ended it normally."""


_T = TypeVar("_T", covariant=True)


class DispatchReceiver(Generic[_T]):
    """The events of one microgrid's dispatches, as `Client.stream()` delivers them.

    ```python
    async with client.stream(microgrid_id=1) as receiver:
        async for event in receiver:
            print(event.event.name, event.dispatch.id)
    ```

    Iterate it, or `await receiver.receive()` one event at a time. Iteration ends when
    the receiver or its client is closed (`receive()` then raises
    `ReceiverStoppedError`); when the stream fails in a way reconnecting cannot fix,
    both raise that error (`Unauthenticated`, `PermissionDenied`, ...) after the
    events received before it.

    Each receiver has its own bounded buffer, so a slow one never holds up the others:
    when the buffer is full the oldest event is dropped and `dropped` counts it (a
    receiver with `resync=True` instead catches up from the mirror, see
    `Client.stream()`).
    """

    # Slots: a thousand receivers of a stream are common enough to keep each small.
    __slots__ = (
        "__weakref__",
        "_behind",
        "_buffer",
        "_catch_up",
        "_closed",
        "_error",
        "_in_burst",
        "_notices",
        "_resync",
        "_size",
        "_stopped",
        "_upstream",
        "_view",
        "_waiter",
        "dropped",
    )

    def __init__(
        self, upstream: _Upstream, *, buffer_size: int, resync: bool, notices: bool
    ) -> None:
        self._upstream = upstream
        self._size = buffer_size
        self._resync = resync
        self._notices = notices
        self._buffer: deque[DispatchEvent | StreamNotice] = deque()
        # Resync receivers: what the consumer has been told, whether it waits for a
        # mirror to catch up from, and the synthesized events of the catch-up.
        self._view: dict[int, Dispatch] = {}
        self._behind = False
        # Only resync receivers use it: an empty deque costs ~600 bytes per receiver.
        self._catch_up: deque[DispatchEvent | StreamNotice] | None = None
        self._waiter: anyio.Event | None = None
        self._error: BaseException | None = None
        self._stopped = False
        self._closed = False
        self._in_burst = False
        self.dropped = 0
        """How many events were dropped because this receiver's buffer was full."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "stopped" if self._stopped else "open"
        return (
            f"<DispatchReceiver microgrid {self.microgrid_id} {state}, "
            f"{len(self._buffer)} buffered, {self.dropped} dropped>"
        )

    # --- state ------------------------------------------------------------------------

    @property
    def microgrid_id(self) -> int:
        """The microgrid whose events this receiver delivers."""
        return self._upstream.microgrid_id

    @property
    def connected(self) -> bool:
        """Whether the server has answered the stream call and it is open right now.

        False while (re)connecting, and until the server's response headers (HTTP 200,
        a gRPC content type) arrived: a request sent is not yet a stream connected.
        """
        return self._upstream.connected and not self._stopped and not self._closed

    @property
    def resync(self) -> bool:
        """Whether gaps are filled with synthesized events (see `Client.stream()`)."""
        return self._resync

    @property
    def buffer_size(self) -> int:
        """How many events the receiver holds before dropping the oldest."""
        return self._size

    @property
    def closed(self) -> bool:
        """Whether the receiver will deliver nothing more (closed or stopped)."""
        return self._closed or (self._stopped and not self._has_items())

    # --- consuming --------------------------------------------------------------------

    async def receive(self) -> _T:
        """Wait for the next event (or notice, for receivers that asked for them).

        Returns:
            The next item.

        Raises:
            ReceiverStoppedError: Once the receiver or its client is closed.
            GrpcError: The error that ended the stream, after the events before it.
        """
        while True:
            item = self._next_item()
            if item is not None:
                return cast(_T, item)
            if self._closed:
                raise ReceiverStoppedError(
                    f"the receiver of microgrid {self.microgrid_id} is closed"
                )
            if self._stopped:
                if self._error is not None:
                    raise self._error
                raise ReceiverStoppedError(
                    f"the stream of microgrid {self.microgrid_id} has ended (its client closed)"
                )
            if self._waiter is None or self._waiter.is_set():
                self._waiter = anyio.Event()
            await self._waiter.wait()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _T:
        try:
            return await self.receive()
        except ReceiverStoppedError:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop receiving; the last receiver of a microgrid ends its stream call. Idempotent."""
        self.close()

    def close(self) -> None:
        """Stop receiving, as `aclose()` does, from synchronous code."""
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._catch_up = None
        self._wake()
        self._upstream.detach(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- fed by the upstream ----------------------------------------------------------

    def _push(self, item: DispatchEvent | StreamNotice) -> None:
        if self._closed or self._stopped:
            return
        if self._resync and isinstance(item, DispatchEvent):
            if self._behind:
                return  # the catch-up will include it: the mirror does
            if len(self._buffer) >= self._size:
                # Rather than lose events for good, replace the buffered ones by a
                # catch-up from the mirror, which holds all of them and this one.
                self._count_drops(sum(isinstance(i, DispatchEvent) for i in self._buffer) + 1)
                self.catch_up()
                return
        elif len(self._buffer) >= self._size:
            oldest = self._buffer.popleft()
            if isinstance(oldest, DispatchEvent):  # `dropped` counts events, not notices
                self._count_drops(1)
        self._buffer.append(item)
        self._wake()

    def _count_drops(self, count: int) -> None:
        self.dropped += count
        if not self._in_burst:
            self._in_burst = True
            _log.warning(
                "a receiver of microgrid %d is too slow: its buffer of %d is full, %s "
                "(further drops until it catches up are counted in receiver.dropped, "
                "not logged)",
                self.microgrid_id,
                self._size,
                "it will catch up from the mirror" if self._resync else "dropping the oldest",
            )

    def catch_up(self) -> None:
        """Replace undelivered events by the differences from the delivered view to the mirror.

        Called when the receiver joins, when the mirror is (re)listed and when the
        buffer overflows; without a mirror yet, the receiver waits for one and ignores
        events meanwhile (the listing will hold them).
        """
        if not self._resync or self._closed or self._stopped:
            return
        mirror = self._upstream.mirror
        # Notices not yet delivered came before this moment, so before the catch-up.
        pending = (*(self._catch_up or ()), *self._buffer)
        notices = [i for i in pending if isinstance(i, StreamNotice)]
        self._buffer = deque()
        if mirror is None:
            self._buffer.extend(notices)
            self._catch_up = None
            self._behind = True
            return
        self._catch_up = deque([*notices, *_differences(self._view, mirror)])
        self._behind = False
        self._wake()

    def _stop(self, error: BaseException | None) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.set()

    def _has_items(self) -> bool:
        return bool(self._buffer or self._catch_up)

    def _next_item(self) -> DispatchEvent | StreamNotice | None:
        if self._closed:
            return None
        while True:
            if self._catch_up:
                caught_up = self._catch_up.popleft()
                if isinstance(caught_up, DispatchEvent):
                    _apply(self._view, caught_up)
                return caught_up
            if not self._buffer:
                self._in_burst = False
                return None
            item = self._buffer.popleft()
            if self._resync and isinstance(item, DispatchEvent):
                if not _is_news(self._view, item):
                    continue
                _apply(self._view, item)
            if not self._buffer:
                self._in_burst = False
            return item


def _apply(view: dict[int, Dispatch], event: DispatchEvent) -> None:
    """Apply an event to a view (a mirror or what a receiver has delivered)."""
    dispatch = event.dispatch
    if event.event is Event.DELETED:
        view.pop(dispatch.id, None)
    elif event.event in (Event.CREATED, Event.UPDATED):
        current = view.get(dispatch.id)
        # Never go back in time: an event older than what a listing returned is stale.
        if current is None or current.update_time <= dispatch.update_time:
            view[dispatch.id] = dispatch


def _is_news(view: dict[int, Dispatch], event: DispatchEvent) -> bool:
    """Whether a live event tells a receiver with this view something it does not know."""
    dispatch = event.dispatch
    current = view.get(dispatch.id)
    if event.event is Event.DELETED:
        return current is not None
    if event.event not in (Event.CREATED, Event.UPDATED) or current is None:
        return True
    if current.update_time > dispatch.update_time:
        return False
    return current != dispatch


def _differences(view: dict[int, Dispatch], mirror: dict[int, Dispatch]) -> list[DispatchEvent]:
    """The synthesized events that turn `view` into `mirror`: deletions, updates, creations."""
    deleted = [
        DispatchEvent(event=Event.DELETED, dispatch=view[i], synthesized=True)
        for i in sorted(view.keys() - mirror.keys())
    ]
    updated = [
        DispatchEvent(event=Event.UPDATED, dispatch=mirror[i], synthesized=True)
        for i in sorted(view.keys() & mirror.keys())
        if view[i] != mirror[i]
    ]
    created = [
        DispatchEvent(event=Event.CREATED, dispatch=mirror[i], synthesized=True)
        for i in sorted(mirror.keys() - view.keys())
    ]
    return deleted + updated + created


class _Upstream:
    """The one stream call of a microgrid, shared by its receivers.

    Runs as a task of the client's task group (`run()`); `stop()` ends it and every
    receiver from any task. Nothing but cancellation escapes `run()`: a failure ends
    the receivers with the error instead, so the client's task group never fails.
    """

    def __init__(
        self,
        microgrid_id: int,
        *,
        open_stream: OpenStream,
        list_all: ListAll,
        decode: Decode,
        retry: RetryPolicy | None,
        timeout: float | None,
        on_done: Callable[[_Upstream], None],
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    ) -> None:
        self.microgrid_id = microgrid_id
        self._open_stream = open_stream
        self._list_all = list_all
        self._decode = decode
        self._retry = retry
        self._timeout = timeout
        self._header_timeout = header_timeout
        self._on_done = on_done
        self._receivers: weakref.WeakSet[DispatchReceiver[object]] = weakref.WeakSet()
        self._scope = anyio.CancelScope()
        self._ended = False
        self.connected = False
        self.reconnects = 0
        # Resync: the mirror (None until listed), whether one is wanted, the events
        # received while a late listing runs, and which connection they belong to.
        self.mirror: dict[int, Dispatch] | None = None
        self._want_mirror = False
        self._early: list[DispatchEvent] | None = None
        self._connection = 0
        self._tasks: anyio.abc.TaskGroup | None = None
        # The reading of the open call, and why a late listing cut it (see _fill_mirror).
        self._reading: anyio.CancelScope | None = None
        self._listing_error: Exception | None = None

    @property
    def stopping(self) -> bool:
        """Whether the upstream is ending; new receivers need a new one."""
        return self._ended or self._scope.cancel_called

    def attach(self, *, buffer_size: int, resync: bool, notices: bool) -> DispatchReceiver[object]:
        """Add a receiver."""
        receiver: DispatchReceiver[object] = DispatchReceiver(
            self, buffer_size=buffer_size, resync=resync, notices=notices
        )
        self._receivers.add(receiver)
        if notices and self.connected:
            receiver._push(StreamConnected(self.microgrid_id, self.reconnects))
        receiver.catch_up()  # after the notice: a catch-up delivers queued notices first
        if resync and not self._want_mirror:
            self._want_mirror = True
            # Connected already: list beside the running call. Otherwise the connect
            # lists before it reads anything.
            if self.connected and self._tasks is not None:
                self._early = []
                self._tasks.start_soon(self._fill_mirror, self._connection)
        return receiver

    def detach(self, receiver: DispatchReceiver[object]) -> None:
        """Remove a receiver; the last one out ends the call."""
        self._receivers.discard(receiver)
        if not self._receivers:
            self.stop()

    def stop(self, error: BaseException | None = None) -> None:
        """End the call and every receiver (with `error`, or cleanly)."""
        if not self._ended:
            self._ended = True
            self._on_done(self)
        self._scope.cancel()
        for receiver in list(self._receivers):
            receiver._stop(error)

    async def run(self) -> None:
        """Hold the call open until stopped; reconnect as the policy says."""
        error: BaseException | None = None
        try:
            with self._scope:
                async with anyio.create_task_group() as tasks:
                    self._tasks = tasks
                    tasks.start_soon(self._end_when_orphaned)
                    error = await self._follow()
                    tasks.cancel_scope.cancel()
        finally:
            self._tasks = None
            self.connected = False
            self.stop(error)

    async def _end_when_orphaned(self) -> None:
        """End the call once every receiver was dropped unclosed, even with no events.

        The receiver set is weak: a receiver nobody references any more leaves it when
        garbage collected, and a quiet microgrid may send nothing to notice that by.
        """
        while True:
            await anyio.sleep(ORPHAN_CHECK_INTERVAL)
            if not self._receivers:
                self.stop()
                return

    async def _follow(self) -> BaseException | None:
        """Keep the call going; return the error that ends the receivers, if any."""
        context = f"stream dispatches of microgrid {self.microgrid_id}"
        pauses = None
        attempt = 0
        while self._receivers:
            opened_at: float | None = None
            started = anyio.current_time()
            try:
                streaming = await self._open_stream(self.microgrid_id, self._timeout)
                async with streaming as responses:
                    await self._answered(responses)
                    opened_at = anyio.current_time()
                    self._connection += 1
                    self._set_connected(True)
                    if self._want_mirror:
                        await self._relist()
                    with anyio.CancelScope() as self._reading:
                        async for data in responses:
                            try:
                                event = self._decode(data)
                            except DecodeError as exc:
                                raise ProtocolError(f"an invalid stream message: {exc}") from exc
                            if attempt:
                                pauses, attempt = None, 0  # a good connection: start over
                            self._publish(event)
                    if self._listing_error is not None:
                        raise self._listing_error
                cause: GrpcError | None = None
            except FATAL_ERRORS as exc:
                return exc.with_context(context)
            except RpcError as exc:
                cause = exc.with_context(context)
            except TransportError as exc:
                cause = type(exc)(f"{context}: {exc}")
                cause.__cause__ = exc
            except GrpcError as exc:
                # Neither a status nor the network: a replayed session that has no
                # recording of another call. Retrying cannot change that.
                return exc
            except Exception as exc:  # a bug or a misuse: never the task group's problem
                if self._ended:
                    # Stopped before the call opened (the client closed or disconnected
                    # right after stream()): the client refusing the call is expected.
                    return None
                _log.error("the stream of microgrid %d failed", self.microgrid_id, exc_info=exc)
                return exc
            finally:
                self._reading = self._listing_error = None
                self._set_connected(False)
            if not self._receivers:
                return None
            lived = 0.0 if opened_at is None else anyio.current_time() - opened_at
            if isinstance(cause, DeadlineExceeded) and self._deadline_passed(started):
                # The deadline the user asked for: renew the call at once. Not a failure,
                # so also without a retry policy.
                delay = 0.0
                pauses, attempt = None, 0
            elif self._retry is None:
                return cause
            else:
                if lived >= self._retry.maximum:
                    pauses, attempt = None, 0  # it held long enough: start over
                if pauses is None:
                    pauses = self._retry.pauses()
                next_delay = next(pauses, None)
                if next_delay is None:
                    return cause
                delay = next_delay
            attempt += 1
            self.reconnects += 1
            _log.warning(
                "the stream of microgrid %d ended (%s); reconnecting in %.2f s (attempt %d)",
                self.microgrid_id,
                cause if cause is not None else "the server ended it",
                delay,
                attempt,
            )
            self._notify(StreamReconnecting(self.microgrid_id, attempt, delay, cause))
            await anyio.sleep(delay)
        return None

    async def _answered(self, responses: ResponseStream) -> None:
        """Wait for the server to answer the call (its response headers), within bounds.

        Raises:
            ConnectError: No answer within the header timeout: the call is retried
                with backoff, like a lost connection.
            GrpcError: The call failed first.
        """
        with anyio.move_on_after(self._header_timeout) as waiting:
            await responses.initial_metadata()
        if waiting.cancelled_caught:
            raise ConnectError(
                f"the server took the call but sent no response headers within "
                f"{self._header_timeout:g} s"
            )

    def _deadline_passed(self, started: float) -> bool:
        """Whether the stream_timeout of a call started at `started` has passed.

        A DeadlineExceeded that comes sooner is the server's own, a failure like any
        other: renewing it at once would spin. The slack allows for clock rounding and
        for a grpc-timeout header rounded down to its unit.
        """
        if self._timeout is None:
            return False
        return anyio.current_time() - started >= 0.9 * self._timeout

    def _set_connected(self, connected: bool) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        if connected:
            if self.reconnects:
                _log.info("the stream of microgrid %d is connected again", self.microgrid_id)
            self._notify(StreamConnected(self.microgrid_id, self.reconnects))

    def _notify(self, notice: StreamNotice) -> None:
        for receiver in list(self._receivers):
            if receiver._notices:
                receiver._push(notice)

    def _publish(self, event: DispatchEvent) -> None:
        if not self._receivers:
            # Every receiver was dropped without being closed (the set is weak): nobody
            # listens any more, so the call ends as if the last one had closed.
            self.stop()
            return
        if self.mirror is not None:
            _apply(self.mirror, event)
        elif self._early is not None:
            self._early.append(event)
        for receiver in list(self._receivers):
            receiver._push(event)

    async def _relist(self) -> None:
        """Replace the mirror by a fresh listing (the call is open, nothing read yet)."""
        self.mirror = await self._list_all(self.microgrid_id)
        self._early = None
        for receiver in list(self._receivers):
            receiver.catch_up()

    async def _fill_mirror(self, connection: int) -> None:
        """List beside a running call, for a resync receiver that joined late.

        If the listing fails, the call is ended with its error: the reconnect lists
        again, with the policy's backoff (or a fatal error ends the receivers), where
        resync receivers would otherwise wait for a mirror until the call next failed.
        """
        try:
            listed = await self._list_all(self.microgrid_id)
        except Exception as exc:
            _log.warning(
                "listing the dispatches of microgrid %d for a resync failed: %s",
                self.microgrid_id,
                exc,
            )
            if connection == self._connection and self._reading is not None:
                self._listing_error = exc
                self._reading.cancel()
            return
        if connection != self._connection or self.mirror is not None:
            return  # a reconnect listed meanwhile
        for event in self._early or ():
            _apply(listed, event)
        self._early = None
        self.mirror = listed
        for receiver in list(self._receivers):
            receiver.catch_up()


def check_buffer_size(value: object) -> int:
    """Check a receiver's buffer size: an int >= 1.

    Args:
        value: The size given.

    Returns:
        The size.

    Raises:
        TypeError: If it is not an int.
        ValueError: If it is below 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"buffer_size must be an int, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"buffer_size must be >= 1, got {value}")
    return value


def positive_seconds(name: str, value: object, expected: str = "a timedelta") -> float:
    """Check a timeout argument: a positive, finite timedelta.

    Args:
        name: The argument's name, for the messages.
        value: The value given.
        expected: What the argument accepts, for the type error's message.

    Returns:
        Seconds.

    Raises:
        TypeError: If it is not a timedelta.
        ValueError: If it is not positive and finite.
    """
    if not isinstance(value, timedelta):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}: {value!r}")
    seconds = value.total_seconds()
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return seconds


def check_header_timeout(value: object) -> float:
    """Check the stream header timeout: a positive timedelta.

    Args:
        value: The timeout given.

    Returns:
        Seconds.

    Raises:
        TypeError: If it is not a timedelta.
        ValueError: If it is not positive and finite.
    """
    return positive_seconds("stream_header_timeout", value)


def check_stream_timeout(value: object) -> float | None:
    """Check the stream deadline: None, or a positive timedelta.

    Args:
        value: The deadline given.

    Returns:
        Seconds, or None.

    Raises:
        TypeError: If it is not a timedelta or None.
        ValueError: If it is not positive.
    """
    if value is None:
        return None
    return positive_seconds("stream_timeout", value, "a timedelta or None")
