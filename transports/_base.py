"""The transport interface every gRPC transport implements, and its argument checks."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

__all__ = ["BaseTransport", "Metadata", "ResponseStream", "Transport", "check_call"]

Metadata = Sequence[tuple[str, str | bytes]]
"""Call metadata: (name, value) pairs; names are lowercase, values of `-bin` names are bytes."""


@runtime_checkable
class ResponseStream(Protocol):
    """The responses of a server-streaming call: an async iterator of messages that
    can also tell when the server answered the call.

    Iterating it yields each response message (serialized bytes) and ends when the
    server ends the call with OK; a failed call raises its `GrpcError` instead.
    """

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """Wait until the server answered the call, and return its initial metadata.

        The server answered once its response headers arrived with HTTP 200 and a gRPC
        content type: it accepted the call. Sending the request proves nothing (a
        server may accept the connection and never answer). Messages that arrive
        meanwhile stay queued for iteration. A trailers-only answer with status OK
        returns `()`; with another status this raises that call's error, as iteration
        would. Bound the wait with the caller's own timeout (`anyio.fail_after`).

        Raises:
            GrpcError: The call failed before (or instead of) answering.
        """
        ...


# gRPC metadata names: lowercase ASCII letters, digits, '-', '_' and '.'.
_NAME = re.compile(r"[0-9a-z_.\-]+")
# Values of ASCII metadata: printable ASCII and space, no leading/trailing space needed.
_ASCII_VALUE = re.compile(r"[\x20-\x7e]*")
_METHOD = re.compile(r"/[^/\s]+/[^/\s]+")
# Names the transport itself owns; a caller setting them would break the call.
_RESERVED = frozenset({"te", "content-type", "user-agent", "host", "connection", "grpc-timeout"})


@runtime_checkable
class Transport(Protocol):
    """A gRPC client transport: bytes in, bytes out, over some channel.

    Methods are full paths such as
    `/frequenz.api.dispatch.v1.MicrogridDispatchService/GetMicrogridDispatch`, and
    messages are serialized protobuf bytes; encoding is the caller's business.

    Resource contract:

    * Use a transport inside `async with transport:`, entered and left by the same
      task: a transport may run background work (H2Transport's connection readers) in a
      task group that the block owns, and calls on a transport that needs this and was
      not entered raise `RuntimeError` before any I/O. Leaving the block closes it.
    * A transport may connect lazily, on its first call; `aclose()` releases every
      connection, fails calls in flight, and is safe to call twice and from any task.
    * `server_stream()` returns an async context manager whose value is a
      `ResponseStream`: iterate it for the messages, or await its `initial_metadata()`
      to know the server accepted the call. Leaving the block before the stream ended
      (break, exception, cancellation) cancels the call on the wire, and nothing of the
      call outlives the block.
    * Every failure of a call raises a `transports.GrpcError` subclass: `RpcError` (with
      a status) or `TransportError` (none). A local deadline raises `DeadlineExceeded`.
      No exception of the underlying library, and no `ExceptionGroup`, escapes.
    * Caller mistakes (malformed method path, bad metadata, a timeout <= 0) raise
      `ValueError` or `TypeError` before any I/O.
    """

    async def unary(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> bytes:
        """Make a unary-unary call and return the response message."""
        ...

    def server_stream(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> AbstractAsyncContextManager[ResponseStream]:
        """Start a unary-stream call; iterate the context's value for the responses."""
        ...

    async def aclose(self) -> None:
        """Close every connection the transport holds."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BaseTransport:
    """Shared `async with` support for the concrete transports."""

    async def aclose(self) -> None:
        """Release the transport's resources."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def check_call(
    method: object, request: object, metadata: object, timeout: object
) -> tuple[tuple[str, str | bytes], ...]:
    """Validate a call's arguments before any I/O.

    Args:
        method: Must be a full method path, `/package.Service/Method`.
        request: Must be `bytes` (or `bytearray`/`memoryview`).
        metadata: (name, value) pairs: names lowercase `[0-9a-z_.-]`, not reserved
            and not starting with `:` or `grpc-`; values `str` of printable ASCII,
            or `bytes` when the name ends in `-bin`.
        timeout: None, or a finite number of seconds greater than zero.

    Returns:
        The metadata as a tuple of pairs.

    Raises:
        TypeError: For arguments of the wrong type.
        ValueError: For arguments of the right type but a bad value.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, not {type(method).__name__}")
    if method not in _checked_methods:
        if not _METHOD.fullmatch(method):
            raise ValueError(
                f"method must be a path like '/package.Service/Method', got {method!r}"
            )
        _remember(_checked_methods, method)
    if not isinstance(request, bytes | bytearray | memoryview):
        raise TypeError(f"request must be bytes, not {type(request).__name__}")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
    if type(metadata) is tuple:
        # A client sends the same metadata with every call (its key, say): a tuple
        # equal to one already checked is valid as it is. Unhashable entries are
        # checked below, and rejected there.
        try:
            if metadata in _checked_metadata:
                return metadata
        except TypeError:
            pass
    if isinstance(metadata, str | bytes) or not isinstance(metadata, Sequence):
        raise TypeError("metadata must be a sequence of (name, value) pairs")
    pairs: list[tuple[str, str | bytes]] = []
    for item in metadata:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"metadata entries must be (name, value) pairs, got {item!r}")
        name, value = item
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"metadata name {name!r} must be lowercase ASCII letters, digits, '-', '_' or '.'"
            )
        if name in _RESERVED or name.startswith("grpc-"):
            raise ValueError(f"metadata name {name!r} is reserved for the transport")
        if name.endswith("-bin"):
            if not isinstance(value, bytes):
                raise TypeError(f"metadata {name!r} ends in -bin, so its value must be bytes")
        elif not isinstance(value, str):
            raise TypeError(f"metadata {name!r} must have a str value (only -bin names take bytes)")
        elif not _ASCII_VALUE.fullmatch(value):
            raise ValueError(f"metadata {name!r} has a value that is not printable ASCII")
        pairs.append((name, value))
    checked = tuple(pairs)
    _remember(_checked_metadata, checked)
    return checked


# What `check_call` found valid before, by value; bounded, since signed calls never
# repeat their metadata (cleared when full: the repeating entries come back at once).
_CHECKED_LIMIT = 256
_checked_methods: set[str] = set()
_checked_metadata: set[tuple[tuple[str, str | bytes], ...]] = set()


def _remember(checked: set[Any], value: Any) -> None:
    if len(checked) >= _CHECKED_LIMIT:
        checked.clear()
    checked.add(value)
