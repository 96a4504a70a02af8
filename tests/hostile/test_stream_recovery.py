"""`stream()` facing a server fault reconnects; its receivers never die of a foreign error."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from dispatch_client import (
    Client,
    RetryPolicy,
    StreamConnected,
    StreamReconnecting,
)
from dispatch_client._client import TransportName
from transports import Unavailable

from .kit import GRPC_HEAD, FrameType, Handler, HostileServer, Link, Request, frame

pytestmark = pytest.mark.anyio

_FAST = RetryPolicy(attempts=None, initial=0.01, maximum=0.05, jitter=False)


def _shutting_down_first(link: Link) -> None:
    """The first connection gets SETTINGS and GOAWAY together; later ones are served."""
    if link.index == 0:
        link.send(frame(FrameType.SETTINGS, 0, 0) + frame(FrameType.GOAWAY, 0, 0, bytes(8)))
        link.close()
    else:
        link.start()


def _bad_bin_first(request: Request) -> None:
    """The first call ends with a status whose -bin trailer is corrupt; later ones stay open."""
    request.link.headers(request.stream_id, GRPC_HEAD)
    if request.number == 0:
        request.link.headers(
            request.stream_id,
            [(b"grpc-status", b"14"), (b"x-trace-bin", b"!!!")],
            end_stream=True,
        )


def _hold(request: Request) -> None:
    """Answer with response headers and then stay silent, as an idle dispatch stream."""
    request.link.headers(request.stream_id, GRPC_HEAD)


@pytest.mark.parametrize(
    ("handler", "on_connect"),
    [(_hold, _shutting_down_first), (_bad_bin_first, None)],
    ids=["goaway-with-settings", "bad-bin-trailer"],
)
async def test_stream_reconnects_after_a_server_fault(
    handler: Handler,
    on_connect: Callable[[Link], None] | None,
    transport_kind: str,
    no_fd_leak: None,
) -> None:
    """The first attempt fails with our own `Unavailable`; the stream reconnects and connects."""
    kind: TransportName = "grpclib" if transport_kind == "grpclib" else "h2"
    with HostileServer(handler, on_connect=on_connect) as server:
        client = Client(server_url=server.url, key="k", transport=kind, stream_retry=_FAST)
        async with client, client.stream(1, notices=True) as receiver:
            with anyio.fail_after(20):
                notices: list[object] = []
                async for item in receiver:
                    notices.append(item)
                    if isinstance(item, StreamConnected) and item.reconnects > 0:
                        break
    reconnecting = [n for n in notices if isinstance(n, StreamReconnecting)]
    assert reconnecting, notices
    cause = reconnecting[0].cause
    assert isinstance(cause, Unavailable)
