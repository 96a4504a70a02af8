"""H2Transport against the third server: the `h2`-based hostile kit, behaving well.

`test_contract.py` runs every transport against grpcio and grpclib (plain, TLS and
mutual TLS); this module adds the kit's server, a different HTTP/2 implementation again
(python `h2` on blocking sockets), for the same ground: unary and streaming calls,
metadata both ways (`-bin` included), messages larger than a flow-control window and
than the largest frame, trailers-only errors, deadlines, cancellation and many
concurrent calls under a stream limit. Each test runs on both H2Transport drivers where
the backend has two (asyncio: the `asyncio.Protocol` driver and the anyio driver).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from tests.hostile.kit import (
    GRPC_HEAD,
    OK_TRAILERS,
    HostileServer,
    Request,
    StreamGone,
    grpc_message,
)
from transports import DeadlineExceeded, H2Transport, NotFound, PermissionDenied

from .peers import method, stream_message

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
_HANG = 30.0
"""Bound on every test: a hanging transport fails instead of blocking the run."""


def h2_transport(url: str, driver: str) -> H2Transport:
    """An H2Transport for `url` on `driver`."""
    if driver == "auto":
        return H2Transport.from_url(url)
    return H2Transport.from_url(url, _driver=driver)


class Service:
    """The peers' test service (see `peers.py`), as a kit handler.

    Attributes:
        requests: Every request received, in order.
        cancelled: Set when an `Endless` call saw its client reset the stream.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.cancelled = threading.Event()

    def __call__(self, request: Request) -> None:
        self.requests.append(request)
        name = request.path.rsplit(b"/", 1)[-1]
        body = request.message
        if name == b"Echo":
            # Echo the request, and its metadata as the response's initial metadata.
            extra = [(k, v) for k, v in request.headers if k.startswith(b"x-")]
            request.link.headers(request.stream_id, [*GRPC_HEAD, *extra])
            request.link.data(request.stream_id, grpc_message(body))
            request.link.headers(request.stream_id, OK_TRAILERS, end_stream=True)
        elif name == b"Stream":
            count, size = (int(part) for part in body.split(b":"))
            request.answer(*(stream_message(i, size) for i in range(count)))
        elif name == b"Big":
            request.answer(b"b" * int(body))
        elif name == b"Fail":
            code, text = body.decode().split(":", 1)
            request.fail(int(code), text)
        elif name == b"Deadline":
            request.answer(dict(request.headers).get(b"grpc-timeout", b"none"))
        elif name == b"Sleep":
            request.link.sleep(float(body))
            request.answer(b"slept")
        elif name == b"Endless":
            request.link.headers(request.stream_id, GRPC_HEAD)
            try:
                for _ in range(10_000):  # bounded: about a minute at most
                    request.link.data(request.stream_id, grpc_message(b"tick"))
                    request.link.sleep(0.005)
            except StreamGone:
                self.cancelled.set()
                raise
        else:
            request.fail(12, "unknown method")


@asynccontextmanager
async def kit(driver: str, **options: object) -> AsyncIterator[tuple[H2Transport, Service]]:
    """A well-behaved kit server and an H2Transport on `driver` connected to it."""
    service = Service()
    with HostileServer(service, **options) as server:  # type: ignore[arg-type]
        with anyio.fail_after(_HANG):
            async with h2_transport(server.url, driver) as transport:
                yield transport, service


async def test_unary(driver: str) -> None:
    """A unary call returns the kit server's answer."""
    async with kit(driver) as (transport, _):
        assert await transport.unary(method("Echo"), b"hello") == b"hello"
        assert await transport.unary(method("Echo"), b"") == b""


async def test_streaming(driver: str) -> None:
    """A server stream delivers its messages in order, then ends."""
    async with kit(driver) as (transport, _):
        async with transport.server_stream(method("Stream"), b"500:40") as responses:
            received = [message async for message in responses]
        assert received == [stream_message(i, 40) for i in range(500)]


async def test_metadata_both_ways(driver: str) -> None:
    """Request metadata (text and -bin) reaches the server; response metadata comes back."""
    raw = bytes(range(256))
    async with kit(driver) as (transport, service):
        metadata = (("x-text", "value"), ("x-data-bin", raw))
        async with transport.server_stream(method("Echo"), b"m", metadata=metadata) as responses:
            head = await responses.initial_metadata()
            assert [message async for message in responses] == [b"m"]
    sent = dict(service.requests[0].headers)
    assert sent[b"x-text"] == b"value"
    assert base64.b64decode(sent[b"x-data-bin"] + b"==") == raw
    assert sent[b"content-type"].startswith(b"application/grpc")
    assert sent[b"te"] == b"trailers"
    assert dict(head) == {"x-text": "value", "x-data-bin": raw}


async def test_large_messages_both_ways(driver: str) -> None:
    """Messages over a flow-control window and over the largest frame travel both ways."""
    request = bytes(range(256)) * (3 * MiB // 256)
    async with kit(driver, max_frame_size=16384) as (transport, service):
        assert await transport.unary(method("Echo"), request) == request
        assert await transport.unary(method("Big"), str(3 * MiB).encode()) == b"b" * (3 * MiB)
    assert service.requests[0].message == request


async def test_trailers_only_errors(driver: str) -> None:
    """A trailers-only error fails unary and streaming calls with its status and message."""
    async with kit(driver) as (transport, _):
        with pytest.raises(NotFound, match="no such thing"):
            await transport.unary(method("Fail"), b"5:no such thing")
        received: list[bytes] = []
        with pytest.raises(PermissionDenied, match="go away"):
            async with transport.server_stream(method("Fail"), b"7:go away") as responses:
                received.extend([message async for message in responses])
        assert received == []
        assert await transport.unary(method("Echo"), b"still fine") == b"still fine"


async def test_deadlines(driver: str) -> None:
    """The timeout goes out as grpc-timeout and a call outliving it fails locally."""
    async with kit(driver) as (transport, service):
        sent = await transport.unary(method("Deadline"), b"", timeout=30)
        assert sent != b"none"
        assert sent.endswith((b"m", b"u", b"S"))
        assert await transport.unary(method("Deadline"), b"") == b"none"
        with pytest.raises(DeadlineExceeded):
            await transport.unary(method("Sleep"), b"1", timeout=0.1)
        # The connection is still good after the abandoned call.
        assert await transport.unary(method("Echo"), b"after") == b"after"
        assert len(service.requests) == 4


async def test_cancellation_reaches_the_server(driver: str) -> None:
    """Leaving a stream early resets it: the server stops sending."""
    async with kit(driver) as (transport, service):
        async with transport.server_stream(method("Endless"), b"") as responses:
            async for message in responses:
                assert message == b"tick"
                break
        await anyio.to_thread.run_sync(service.cancelled.wait, 10)
        assert service.cancelled.is_set()
        assert await transport.unary(method("Echo"), b"next") == b"next"


async def test_many_concurrent_calls_under_a_stream_limit(driver: str) -> None:
    """200 concurrent calls over a server allowing 8 streams each get their own answer."""
    results: dict[int, bytes] = {}

    async def one(index: int) -> None:
        results[index] = await transport.unary(method("Echo"), b"%d" % index)

    async with (
        kit(driver, max_concurrent_streams=8) as (transport, _),
        anyio.create_task_group() as tasks,
    ):
        for index in range(200):
            tasks.start_soon(one, index)
    assert results == {index: b"%d" % index for index in range(200)}
