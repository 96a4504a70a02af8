"""Keep-alive against dead, trickling and idle-but-alive peers, on every transport.

Small keep-alive settings from the URL keep these fast; the defaults (15 s + 10 s)
are measured by `tools/dead_peer.py`, not here (tests never assert timings).
"""

from __future__ import annotations

import anyio
import pytest

from transports import ConnectError, parse_url
from transports._url import DEFAULT_KEEP_ALIVE_INTERVAL, DEFAULT_KEEP_ALIVE_TIMEOUT

from .conftest import TransportFactory
from .kit import (
    GRPC_HEAD,
    OK_TRAILERS,
    FrameType,
    HostileServer,
    Request,
    frame,
    grpc_message,
)

pytestmark = pytest.mark.anyio

FAST = "&keep_alive_interval_s=0.1&keep_alive_timeout_s=0.2"


def test_keep_alive_is_on_by_default_and_finds_a_dead_peer_within_30_s() -> None:
    """Without URL options keep-alive is on, and interval plus timeout stay within 30 s."""
    options = parse_url("grpc://127.0.0.1:1?ssl=false")
    assert options.keep_alive
    assert options.keep_alive_interval == DEFAULT_KEEP_ALIVE_INTERVAL
    assert options.keep_alive_timeout == DEFAULT_KEEP_ALIVE_TIMEOUT
    assert DEFAULT_KEEP_ALIVE_INTERVAL + DEFAULT_KEEP_ALIVE_TIMEOUT <= 30


async def test_dark_peer_under_a_unary_call_is_found_dead(
    make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """A server that stops reading and answering under a call fails it with ConnectError."""
    with HostileServer(lambda request: request.link.go_dark(), url_options=FAST) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(10), pytest.raises(ConnectError, match="keep-alive") as caught:
                await transport.unary("/a.B/C", b"")
            assert caught.value.retryable
            assert "may have processed" in str(caught.value)


async def test_dark_peer_under_an_open_stream_is_found_dead(
    make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """A stream that got a message, then a server gone dark, ends with ConnectError."""

    def respond(request: Request) -> None:
        request.link.headers(request.stream_id, GRPC_HEAD)
        request.link.data(request.stream_id, grpc_message(b"first"))
        request.link.flush()
        request.link.go_dark()

    with HostileServer(respond, url_options=FAST) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(10):
                async with transport.server_stream("/a.B/C", b"") as responses:
                    assert await anext(responses) == b"first"
                    with pytest.raises(ConnectError, match="keep-alive"):
                        await anext(responses)


async def test_trickled_bytes_do_not_stand_in_for_a_ping_answer(
    make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """A server trickling a message byte by byte but never answering PINGs is found dead."""

    def respond(request: Request) -> None:
        request.link.headers(request.stream_id, GRPC_HEAD)
        # 100 s of trickle, a byte every 20 ms: far longer than the test may take.
        body = grpc_message(b"x" * 5000)
        frames = b"".join(
            frame(FrameType.DATA, 0, request.stream_id, body[i : i + 1]) for i in range(len(body))
        )
        request.link.trickle(frames, interval=0.02, size=10)

    with HostileServer(respond, answer_pings=False, url_options=FAST) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(10), pytest.raises(ConnectError, match="keep-alive"):
                await transport.unary("/a.B/C", b"")
    assert server.pings >= 1


async def test_an_idle_but_alive_server_keeps_the_call(
    make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """A server silent for many keep-alive intervals but answering PINGs keeps the call up."""

    def respond(request: Request) -> None:
        request.link.headers(request.stream_id, GRPC_HEAD)
        request.link.flush()

        def finish() -> None:
            request.link.data(request.stream_id, grpc_message(b"late"))
            request.link.headers(request.stream_id, OK_TRAILERS, end_stream=True)

        request.link.call_later(1.0, finish)

    url_options = "&keep_alive_interval_s=0.05&keep_alive_timeout_s=0.5"
    with HostileServer(respond, url_options=url_options) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(10):
                async with transport.server_stream("/a.B/C", b"") as responses:
                    assert [message async for message in responses] == [b"late"]
    assert server.pings >= 5  # it was pinged all along, and answered
