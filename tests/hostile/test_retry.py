"""Retry classification, once for all transports: what the client repeats, and what not.

A call the server provably did not process (GOAWAY below its stream, REFUSED_STREAM,
no connection) is repeated even when it is not idempotent; one that may have been
processed is repeated only when it is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from dispatch_client import Client, RetryPolicy
from dispatch_client._client import TransportName
from transports import ConnectError, NotFound, Unavailable

from .kit import HostileServer, Request

pytestmark = pytest.mark.anyio

_FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=False)


def _first_then(
    fault: Callable[[Request], None], then: Callable[[Request], None]
) -> Callable[[Request], None]:
    """A handler applying `fault` to the first request and `then` to the others."""

    def handle(request: Request) -> None:
        (fault if request.number == 0 else then)(request)

    return handle


def _goaway_below(request: Request) -> None:
    request.link.goaway(last_stream_id=request.stream_id - 1)
    request.link.close()


def _goaway_at_then_close(request: Request) -> None:
    request.link.goaway(last_stream_id=request.stream_id)
    request.link.close()


def _refuse(request: Request) -> None:
    request.reset(0x7)


def _deleted(request: Request) -> None:
    request.answer(b"")


def _not_found(request: Request) -> None:
    request.fail(5, "no such dispatch")


def _client(url: str, transport_kind: str) -> Client:
    kind: TransportName = "grpclib" if transport_kind == "grpclib" else "h2"
    return Client(server_url=url, key="k", transport=kind, retry=_FAST)


@pytest.mark.parametrize("fault", [_goaway_below], ids=["goaway-below"])
async def test_delete_not_processed_is_retried(
    fault: Callable[[Request], None], transport_kind: str, no_fd_leak: None
) -> None:
    """A delete the server provably did not process (GOAWAY below it) is sent again."""
    with HostileServer(_first_then(fault, _deleted)) as server:
        async with _client(server.url, transport_kind) as client:
            with anyio.fail_after(20):
                await client.delete(microgrid_id=1, dispatch_id=2)
    assert server.requests == 2


async def test_delete_at_goaway_at_connect_is_retried(
    transport_kind: str, no_fd_leak: None
) -> None:
    """A delete on a server shutting down (GOAWAY with SETTINGS) is retried until it gives up."""
    with HostileServer(_deleted, goaway_with_settings=(0, 0)) as server:
        async with _client(server.url, transport_kind) as client:
            with anyio.fail_after(20), pytest.raises(Unavailable) as info:
                await client.delete(microgrid_id=1, dispatch_id=2)
    assert info.value.not_processed
    assert server.connections == 3  # the first attempt and two retries
    assert server.requests == 0


async def test_delete_may_have_been_processed_is_not_retried(
    transport_kind: str, no_fd_leak: None
) -> None:
    """A delete whose connection closed after the server accepted it is not sent again."""
    with HostileServer(_first_then(_goaway_at_then_close, _deleted)) as server:
        async with _client(server.url, transport_kind) as client:
            with anyio.fail_after(20), pytest.raises(ConnectError) as info:
                await client.delete(microgrid_id=1, dispatch_id=2)
    assert not info.value.not_processed
    assert server.requests == 1


async def test_get_may_have_been_processed_is_retried(
    transport_kind: str, no_fd_leak: None
) -> None:
    """A get (idempotent) is repeated even when its lost connection may have processed it."""
    with HostileServer(_first_then(_goaway_at_then_close, _not_found)) as server:
        async with _client(server.url, transport_kind) as client:
            with anyio.fail_after(20), pytest.raises(NotFound):
                await client.get(microgrid_id=1, dispatch_id=2)
    assert server.requests == 2


async def test_refused_delete_is_retried_past_the_transparent_repeats(
    transport_kind: str, no_fd_leak: None
) -> None:
    """Streams refused beyond the transport's own repeats make the client repeat a delete."""
    with HostileServer(
        lambda request: (_refuse if request.number < 6 else _deleted)(request)
    ) as server:
        async with _client(server.url, transport_kind) as client:
            with anyio.fail_after(20):
                await client.delete(microgrid_id=1, dispatch_id=2)
    # 1 + 5 transparent repeats refused, then the client's retry is answered.
    assert server.requests == 7


async def test_connection_refused_is_not_processed(transport_kind: str, no_fd_leak: None) -> None:
    """A call that found no server to connect to is marked not processed (any call may repeat)."""
    with HostileServer(_deleted) as server:
        url = server.url  # the port is closed once the server stopped
    async with _client(url, transport_kind) as client:
        with anyio.fail_after(20), pytest.raises(ConnectError) as info:
            await client.delete(microgrid_id=1, dispatch_id=2)
    assert info.value.not_processed
