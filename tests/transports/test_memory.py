"""MemoryTransport: handler-answered calls on asyncio and trio, without sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from transports import (
    Cancelled,
    ConnectError,
    DeadlineExceeded,
    Internal,
    MemoryTransport,
    Metadata,
    NotFound,
    Transport,
    Unknown,
)

pytestmark = pytest.mark.anyio

ECHO = "/test.Service/Echo"
LIST = "/test.Service/List"
Pairs = tuple[tuple[str, str | bytes], ...]


async def _drain(
    transport: Transport,
    method: str,
    request: bytes = b"",
    *,
    timeout: float | None = None,
    metadata: Metadata = (),
) -> list[bytes]:
    """Make a streaming call and return all its messages."""
    async with transport.server_stream(
        method, request, timeout=timeout, metadata=metadata
    ) as responses:
        return [message async for message in responses]


class Closed:
    """Records whether a handler's generator was closed, and how."""

    def __init__(self) -> None:
        self.closed = False
        self.sent = 0


def _endless(record: Closed) -> AsyncIterator[bytes]:
    async def generate() -> AsyncIterator[bytes]:
        try:
            while True:
                record.sent += 1
                yield b"tick"
                await anyio.lowlevel.checkpoint()
        finally:
            record.closed = True

    return generate()


async def test_is_a_transport() -> None:
    """MemoryTransport satisfies the Transport protocol."""
    assert isinstance(MemoryTransport(lambda m, r, md: r), Transport)


async def test_unary_passes_method_request_and_metadata() -> None:
    """The handler gets the method, the request and the metadata as a tuple of pairs."""
    seen: list[tuple[str, bytes, Pairs]] = []

    def handler(method: str, request: bytes, metadata: Pairs) -> bytearray:
        seen.append((method, request, metadata))
        return bytearray(b"re: " + request)

    async with MemoryTransport(handler) as transport:
        reply = await transport.unary(ECHO, b"hi", metadata=[("key", "k"), ("x-bin", b"\x00")])
    assert reply == b"re: hi"
    assert type(reply) is bytes
    assert seen == [(ECHO, b"hi", (("key", "k"), ("x-bin", b"\x00")))]


async def test_async_handler() -> None:
    """An async handler is awaited, for unary and streaming calls."""

    async def handler(method: str, request: bytes, metadata: Pairs) -> bytes | list[bytes]:
        await anyio.lowlevel.checkpoint()
        return [b"a", b"b"] if method == LIST else request

    async with MemoryTransport(handler) as transport:
        assert await transport.unary(ECHO, b"x") == b"x"
        assert await _drain(transport, LIST) == [b"a", b"b"]


async def test_stream_sources() -> None:
    """A stream comes from a list, a generator, an async generator, or one bytes message."""

    def sync_gen() -> Iterator[bytes]:
        yield from (b"1", b"2")

    async def async_gen() -> AsyncIterator[bytes]:
        for item in (b"3", b"4"):
            yield item

    sources: dict[str, object] = {
        "/s.S/List": [b"a", bytearray(b"b")],
        "/s.S/Gen": sync_gen(),
        "/s.S/AGen": async_gen(),
        "/s.S/One": b"only",
    }

    def handler(method: str, request: bytes, metadata: Pairs) -> Any:
        return sources[method]

    transport = MemoryTransport(handler)
    assert await _drain(transport, "/s.S/List") == [b"a", b"b"]
    assert await _drain(transport, "/s.S/Gen") == [b"1", b"2"]
    assert await _drain(transport, "/s.S/AGen") == [b"3", b"4"]
    assert await _drain(transport, "/s.S/One") == [b"only"]


async def test_rpc_errors_pass_through() -> None:
    """An RpcError or TransportError the handler raises reaches the caller unchanged."""
    not_found = NotFound("no dispatch 7", b"details")

    def handler(method: str, request: bytes, metadata: Pairs) -> bytes:
        if request == b"lost":
            raise ConnectError("simulated network failure")
        raise not_found

    transport = MemoryTransport(handler)
    with pytest.raises(NotFound) as info:
        await transport.unary(ECHO, b"")
    assert info.value is not_found
    with pytest.raises(ConnectError, match="simulated"):
        await transport.unary(ECHO, b"lost")
    with pytest.raises(NotFound):
        await _drain(transport, LIST)


async def test_other_exceptions_become_unknown() -> None:
    """Any other exception of the handler becomes Unknown, naming it and chained to it."""

    def handler(method: str, request: bytes, metadata: Pairs) -> bytes:
        raise KeyError("dispatch 7")

    with pytest.raises(Unknown, match="KeyError") as info:
        await MemoryTransport(handler).unary(ECHO, b"")
    assert isinstance(info.value.__cause__, KeyError)


async def test_exception_midway_through_a_stream() -> None:
    """A generator failing after some messages delivers them, then raises Unknown."""

    async def generate() -> AsyncIterator[bytes]:
        yield b"first"
        raise RuntimeError("disk on fire")

    received: list[bytes] = []

    async def read(transport: Transport) -> None:
        async with transport.server_stream(LIST, b"") as responses:
            async for message in responses:
                received.append(message)

    with pytest.raises(Unknown, match="RuntimeError: disk on fire"):
        await read(MemoryTransport(lambda m, r, md: generate()))
    assert received == [b"first"]


async def test_a_stream_for_a_unary_call_is_internal() -> None:
    """A handler returning a stream to a unary call raises Internal and is closed."""
    record = Closed()
    transport = MemoryTransport(lambda m, r, md: _endless(record))
    with pytest.raises(Internal, match="unary"):
        await transport.unary(ECHO, b"")
    assert record.sent == 0


async def test_results_that_are_not_bytes_are_internal() -> None:
    """A handler returning or streaming something other than bytes raises Internal."""

    def wrong(method: str, request: bytes, metadata: Pairs) -> Any:
        return {ECHO: 42, LIST: ["text"]}.get(method, "text")

    transport = MemoryTransport(wrong)
    with pytest.raises(Internal, match="int"):
        await transport.unary(ECHO, b"")
    with pytest.raises(Internal, match="str"):
        await _drain(transport, LIST)
    with pytest.raises(Internal, match="str"):
        await transport.unary("/test.Service/Text", b"")


async def test_unary_timeout() -> None:
    """A handler taking longer than the timeout fails the call with DeadlineExceeded."""

    async def slow(method: str, request: bytes, metadata: Pairs) -> bytes:
        await anyio.sleep(10)
        return b"late"

    with anyio.fail_after(5):
        with pytest.raises(DeadlineExceeded):
            await MemoryTransport(slow).unary(ECHO, b"", timeout=0.05)


async def test_stream_timeout_closes_the_generator() -> None:
    """A stream outliving its timeout raises DeadlineExceeded and closes the generator."""
    record = Closed()
    transport = MemoryTransport(lambda m, r, md: _endless(record))
    with anyio.fail_after(5):
        with pytest.raises(DeadlineExceeded):
            await _drain(transport, LIST, timeout=0.05)
    assert record.closed


async def test_leaving_a_stream_early_closes_the_generator() -> None:
    """Breaking out of a stream closes the handler's generator: memory's cancellation."""
    record = Closed()
    async with MemoryTransport(lambda m, r, md: _endless(record)) as transport:
        async with transport.server_stream(LIST, b"") as responses:
            async for _ in responses:
                break
        assert record.closed
        assert record.sent == 1


async def test_an_error_in_the_block_closes_the_generator() -> None:
    """An exception in the block passes through unchanged and closes the generator."""
    record = Closed()
    transport = MemoryTransport(lambda m, r, md: _endless(record))

    async def fail_midway() -> None:
        async with transport.server_stream(LIST, b"") as responses:
            await responses.__anext__()
            raise LookupError("caller bug")

    with pytest.raises(LookupError, match="caller bug"):
        await fail_midway()
    assert record.closed


async def test_cancelling_the_reader_closes_the_generator() -> None:
    """Cancelling the task reading a stream closes the handler's generator."""
    record = Closed()
    transport = MemoryTransport(lambda m, r, md: _endless(record))

    async def read() -> None:
        async with transport.server_stream(LIST, b"") as responses:
            async for _ in responses:
                pass

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(read)
            while record.sent < 3:
                await anyio.lowlevel.checkpoint()
            group.cancel_scope.cancel()
    assert record.closed


async def test_closed_transport() -> None:
    """After aclose(), calls and open streams raise Cancelled; aclose() is idempotent."""
    record = Closed()
    transport = MemoryTransport(lambda m, r, md: _endless(record) if m == LIST else r)
    async with transport.server_stream(LIST, b"") as responses:
        assert await responses.__anext__() == b"tick"
        await transport.aclose()
        with pytest.raises(Cancelled):
            await responses.__anext__()
    assert record.closed
    await transport.aclose()
    with pytest.raises(Cancelled, match="closed"):
        await transport.unary(ECHO, b"")
    with pytest.raises(Cancelled):
        await _drain(transport, LIST)


async def test_bad_arguments_never_reach_the_handler() -> None:
    """Malformed calls raise ValueError or TypeError before the handler runs."""
    calls: list[str] = []

    def handler(method: str, request: bytes, metadata: Pairs) -> bytes:
        calls.append(method)
        return b""

    transport = MemoryTransport(handler)
    with pytest.raises(ValueError, match="method"):
        await transport.unary("Echo", b"")
    with pytest.raises(ValueError, match="timeout"):
        await transport.unary(ECHO, b"", timeout=-1)
    with pytest.raises(ValueError, match="reserved"):
        await _drain(transport, LIST, metadata=[("grpc-x", "1")])
    assert calls == []
    # A valid call does reach it.
    await transport.unary(ECHO, b"")
    assert calls == [ECHO]


def test_handler_must_be_callable() -> None:
    """A handler that is not callable is refused at construction."""
    with pytest.raises(TypeError, match="callable"):
        MemoryTransport(b"reply")  # type: ignore[arg-type]


async def test_many_concurrent_calls() -> None:
    """Concurrent calls on one MemoryTransport each get their own answer."""

    async def handler(method: str, request: bytes, metadata: Pairs) -> bytes:
        await anyio.lowlevel.checkpoint()
        return request * 2

    results: dict[int, bytes] = {}
    transport = MemoryTransport(handler)

    async def call(index: int) -> None:
        results[index] = await transport.unary(ECHO, b"%d" % index)

    async with anyio.create_task_group() as group:
        for index in range(100):
            group.start_soon(call, index)
    assert results == {index: b"%d" % index * 2 for index in range(100)}
