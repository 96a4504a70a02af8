"""The hostile-server kit itself: a well-behaved answer, and its stream limit."""

from __future__ import annotations

import anyio
import pytest

from transports import H2Transport

from .conftest import TransportFactory
from .kit import HostileServer, Request

pytestmark = pytest.mark.anyio


async def test_kit_answers_like_a_grpc_server(
    make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """A handler answering normally gives every transport the message it sent."""
    with HostileServer(lambda request: request.answer(request.message[::-1])) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(10):
                assert await transport.unary("/a.B/C", b"abc") == b"cba"
    assert server.connections == 1
    assert server.requests == 1


async def test_kit_refuses_streams_past_its_limit() -> None:
    """A server announcing `max_concurrent_streams=2` holds two calls at once, refusing none."""
    held: list[Request] = []

    def hold(request: Request) -> None:
        held.append(request)
        if len(held) == 2:
            for one in held:
                one.answer(b"x")

    with HostileServer(hold, max_concurrent_streams=2) as server:
        async with H2Transport.from_url(server.url) as transport:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tasks:
                    for _ in range(2):
                        tasks.start_soon(transport.unary, "/a.B/C", b"")
    assert server.requests == 2
    assert server.refused == 0
