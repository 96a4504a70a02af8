"""`MemoryTransport`: calls answered in-process by a handler function, no sockets.

Tests drive the real client through it (the double sits at the transport seam), on
asyncio and on trio alike.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TypeAlias

import anyio

from ._base import BaseTransport, Metadata, ResponseStream, check_call
from ._errors import Cancelled, DeadlineExceeded, GrpcError, Internal, Unknown

__all__ = ["Handler", "HandlerResult", "MemoryTransport"]

Message: TypeAlias = bytes | bytearray | memoryview
Reply: TypeAlias = Message | Iterable[Message] | AsyncIterable[Message]
HandlerResult: TypeAlias = Reply | Awaitable[Reply]
"""What a handler returns: one message, a stream of them, or an awaitable of either."""

Handler: TypeAlias = Callable[[str, bytes, tuple[tuple[str, str | bytes], ...]], HandlerResult]
"""`handler(method, request, metadata)`, answering one call."""


class MemoryTransport(BaseTransport):
    """A transport whose calls a handler answers in-process, on anyio.

    The handler gets `(method, request, metadata)`: the full method path, the request
    bytes and the metadata as a tuple of (name, value) pairs, already validated. It
    returns the response:

    * `bytes`: one message. A streaming call then yields that one message, as it
      would over the wire when a unary method is called as a stream.
    * an iterable or async iterable of `bytes` (e.g. an async generator): the
      messages of a streaming call. For a unary call this is a handler mistake and
      raises `Internal`.
    * an awaitable of either (an `async def` handler).

    Or it raises: an `RpcError` (e.g. `NotFound("no such dispatch")`) or any other
    `GrpcError` (e.g. `ConnectError` to simulate a network failure) reaches the
    caller as is; any other exception becomes `Unknown`, its message naming the
    exception, which is kept as `__cause__`.

    A `timeout` is enforced locally, over the handler and the whole stream:
    `DeadlineExceeded` when it passes. Leaving a `server_stream()` block early closes
    the handler's (async) generator, which is how a handler sees cancellation.
    After `aclose()`, new calls raise `Cancelled`, and so does the next read of a
    stream still open; a unary handler already running is left to finish.
    """

    def __init__(self, handler: Handler) -> None:
        """Answer every call with `handler`.

        Args:
            handler: `handler(method, request, metadata)`; see the class docstring.

        Raises:
            TypeError: If `handler` is not callable.
        """
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        self._handler = handler
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryTransport {self._handler!r}>"

    async def unary(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> bytes:
        """Call the handler and return its one response message.

        Args:
            method: The full method path, `/package.Service/Method`.
            request: The serialized request message.
            metadata: Request metadata as (name, value) pairs.
            timeout: Seconds the handler may take.

        Returns:
            The response message.

        Raises:
            RpcError: What the handler raised; `Unknown` for a non-gRPC exception,
                `Internal` for a stream or a non-bytes result, `DeadlineExceeded`
                when the timeout passes, `Cancelled` once the transport is closed.
            TransportError: What the handler raised.
            TypeError, ValueError: For malformed arguments, before the handler runs.
        """
        pairs = check_call(method, request, metadata, timeout)
        deadline = _deadline(timeout)
        self._check_open()
        with _within(deadline, method):
            reply = await self._call(method, bytes(request), pairs)
            if isinstance(reply, bytes | bytearray | memoryview):
                return bytes(reply)
            await _close_quietly(reply)
            raise Internal(
                f"the handler of {method} returned a stream ({type(reply).__name__}) to a "
                "unary call; return bytes"
            )

    @contextlib.asynccontextmanager
    async def server_stream(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> AsyncIterator[ResponseStream]:
        """Call the handler and iterate its response messages.

        The handler's return is the server's answer: `initial_metadata()` returns `()`
        at once. Leaving the block before the stream ended closes the handler's generator.
        Raises as `unary()` does, on entering the block or while iterating.
        """
        pairs = check_call(method, request, metadata, timeout)
        deadline = _deadline(timeout)
        self._check_open()
        with _within(deadline, method):
            reply = await self._call(method, bytes(request), pairs)
        responses = _Responses(self, method, reply, deadline)
        try:
            yield responses
        finally:
            # Shielded: a cancelled caller must still close the handler's generator.
            with anyio.CancelScope(shield=True):
                await responses.aclose()

    async def aclose(self) -> None:
        """Close the transport: new calls, and reads of open streams, raise `Cancelled`."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise Cancelled("the transport is closed")

    async def _call(
        self, method: str, request: bytes, metadata: tuple[tuple[str, str | bytes], ...]
    ) -> Reply:
        """Run the handler, awaiting its result if it is awaitable."""
        with _handler_errors(method):
            result = self._handler(method, request, metadata)
            if inspect.isawaitable(result):
                result = await result
        if isinstance(result, bytes | bytearray | memoryview):
            return result
        if isinstance(result, AsyncIterable | Iterable) and not isinstance(result, str):
            return result
        raise Internal(
            f"the handler of {method} returned {type(result).__name__}; "
            "expected bytes or an (async) iterable of bytes"
        )


class _Responses(AsyncIterator[bytes]):
    """The messages of one streaming call, read from the handler's result."""

    def __init__(
        self, transport: MemoryTransport, method: str, reply: Reply, deadline: float | None
    ) -> None:
        self._transport = transport
        self._method = method
        self._deadline = deadline
        self._source: Reply | None = reply
        self._sync: Iterator[Message] | None = None
        self._async: AsyncIterator[Message] | None = None
        if isinstance(reply, bytes | bytearray | memoryview):
            self._sync = iter((reply,))
        elif isinstance(reply, AsyncIterable):
            self._async = aiter(reply)
        else:
            self._sync = iter(reply)
        self._done = False

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        try:
            self._transport._check_open()
            with _within(self._deadline, self._method):
                message = await self._next()
        except BaseException:
            # Ended, failed or cancelled: `server_stream()` closes the source on exit.
            self._done = True
            raise
        if not isinstance(message, bytes | bytearray | memoryview):
            self._done = True
            raise Internal(
                f"the handler of {self._method} streamed a {type(message).__name__}, not bytes"
            )
        return bytes(message)

    async def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The handler answered when it returned: no metadata, at once."""
        self._transport._check_open()
        await anyio.lowlevel.checkpoint()
        return ()

    async def _next(self) -> Message:
        with _handler_errors(self._method):
            if self._async is not None:
                return await anext(self._async)
            assert self._sync is not None
            # A blocking iterator would stall the loop; let others run between messages.
            await anyio.lowlevel.checkpoint()
            try:
                return next(self._sync)
            except StopIteration:
                raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Close the handler's generator, if it has one; idempotent."""
        self._done = True
        source, self._source = self._source, None
        if source is not None:
            await _close_quietly(self._async if self._async is not None else self._sync)


async def _close_quietly(source: object) -> None:
    """Close a generator (sync or async) the caller abandons; errors it raises are lost.

    Raises:
        Exception: Never; the generator's own errors are dropped, as a server's
            would be once its client has gone.
    """
    with contextlib.suppress(Exception):
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
            return
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _deadline(timeout: float | None) -> float | None:
    """Turn a call's timeout into an absolute anyio clock deadline."""
    return None if timeout is None else anyio.current_time() + timeout


@contextlib.contextmanager
def _within(deadline: float | None, method: str) -> Iterator[None]:
    """Run a block until `deadline`, raising `DeadlineExceeded` if it passes."""
    if deadline is None:
        yield
        return
    if anyio.current_time() >= deadline:
        raise DeadlineExceeded(f"the deadline of {method} passed (local)")
    with anyio.CancelScope(deadline=deadline) as scope:
        yield
    if scope.cancelled_caught:
        raise DeadlineExceeded(f"the deadline of {method} passed (local)")


@contextlib.contextmanager
def _handler_errors(method: str) -> Iterator[None]:
    """Let gRPC errors through; turn any other exception of the handler into `Unknown`."""
    try:
        yield
    except (GrpcError, StopAsyncIteration):
        raise
    except Exception as exc:
        raise Unknown(f"the handler of {method} raised {type(exc).__name__}: {exc}") from exc
