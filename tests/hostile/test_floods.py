"""Floods: a server abusing PING or SETTINGS is cut off; one within bounds is served."""

from __future__ import annotations

import anyio
import pytest

from transports import ProtocolError
from transports._wire import ENHANCE_YOUR_CALM, FLOOD_LIMIT

from .conftest import TransportFactory
from .kit import Handler, HostileServer, Request

pytestmark = pytest.mark.anyio


def _flood_then_answer(count: int, kind: str) -> Handler:
    def handle(request: Request) -> None:
        if request.number == 0:
            if kind == "PING":
                request.link.ping_flood(count)
            else:
                request.link.settings_flood(count)
        request.answer(b"still here")

    return handle


@pytest.mark.parametrize("kind", ["PING", "SETTINGS"])
async def test_a_flood_closes_the_connection_with_enhance_your_calm(
    kind: str, make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """100,000 PINGs or SETTINGS end the call with ProtocolError; any GOAWAY says calm down."""
    with HostileServer(_flood_then_answer(100_000, kind)) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(20), pytest.raises(ProtocolError, match="flooded") as info:
                await transport.unary("/hostile.Test/Unary", b"")
            assert kind in str(info.value)
    # The client's GOAWAY may be lost when it closes with the flood unread (TCP reset),
    # but whatever arrives is ENHANCE_YOUR_CALM.
    assert set(server.goaways) <= {ENHANCE_YOUR_CALM}


@pytest.mark.parametrize("kind", ["PING", "SETTINGS"])
async def test_control_frames_within_the_limit_are_answered(
    kind: str, make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """A server sending many PINGs or SETTINGS, but no more than the limit, is served."""
    # The server's own first SETTINGS counts too: stay a few frames below the limit.
    with HostileServer(_flood_then_answer(FLOOD_LIMIT - 10, kind)) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(20):
                assert await transport.unary("/hostile.Test/Unary", b"") == b"still here"
                # The connection is still good for the next call.
                assert await transport.unary("/hostile.Test/Unary", b"") == b"still here"
    assert server.connections == 1
