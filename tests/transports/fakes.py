"""Misbehaving servers for the transport tests, running in the test's own event loop.

* `fake_server`: a tiny HTTP/2 server written with `h2`, answering each request through
  a function, for what a well-behaved gRPC server never does (refused streams, GOAWAY
  at a chosen moment, no PING answers, wrong headers, garbage frames...).
* `raw_server`: a TCP server that does not speak HTTP/2 at all (HTTP/1.1 text,
  garbage, an immediate close, or silence).

Both are anyio code, so they serve tests on asyncio and on trio alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import attrs
import h2.config
import h2.connection
import h2.events
import h2.exceptions
from hyperframe.frame import GoAwayFrame

from transports._wire import encode_message

__all__ = [
    "OK_HEAD",
    "OK_TRAILERS",
    "FakeServer",
    "Request",
    "Responder",
    "fake_server",
    "goaway",
    "raw_server",
    "serve_one",
]

OK_HEAD = [(b":status", b"200"), (b"content-type", b"application/grpc")]
OK_TRAILERS = [(b"grpc-status", b"0")]


@attrs.define
class Request:
    """One request the fake server received, and how to answer it.

    Attributes:
        conn: The server side `h2` connection, to queue the answer on.
        stream_id: The request's stream.
        index: Which connection (0 for the first) carried it.
        number: Which request (0 for the first) it is, over all connections.
        raw: Bytes to write after what `conn` queued (hand-made frames).
        then: What to do next: `"continue"`, `"close"` the connection, or `"hang"`
            (stop reading and answering anything, PINGs included).
    """

    conn: h2.connection.H2Connection
    stream_id: int
    index: int
    number: int = 0
    raw: bytearray = attrs.field(factory=bytearray)
    then: str = "continue"

    def answer(self, body: bytes = b"ok") -> None:
        """Queue a complete OK response with one message."""
        self.conn.send_headers(self.stream_id, OK_HEAD)
        self.conn.send_data(self.stream_id, encode_message(body))
        self.conn.send_headers(self.stream_id, OK_TRAILERS, end_stream=True)


@attrs.define
class FakeServer:
    """What the fake server saw.

    Attributes:
        url: The URL reaching it.
        connections: How many connections it accepted.
        requests: How many requests it saw.
        resets: (stream id, error code) of every RST_STREAM the client sent.
        early: Whether to answer on the request headers, before the request body.
    """

    url: str = ""
    connections: int = 0
    requests: int = 0
    resets: list[tuple[int, int]] = attrs.field(factory=list)
    early: bool = False


Responder = Callable[[Request], None]


def goaway(last_stream_id: int, error: int = 0) -> bytes:
    """A raw GOAWAY frame (sent by hand so the server's own `h2` stays open)."""
    frame = GoAwayFrame(0)
    frame.last_stream_id = last_stream_id
    frame.error_code = error
    return bytes(frame.serialize())


async def serve_one(stream: anyio.abc.ByteStream, server: FakeServer, respond: Responder) -> None:
    """Serve one connection of the fake server until the client or `respond` ends it."""
    index = server.connections
    server.connections += 1
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    conn.initiate_connection()
    async with stream:
        try:
            await stream.send(conn.data_to_send())
            while True:
                data = await stream.receive()
                request: Request | None = None
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.StreamReset):
                        server.resets.append(
                            (int(event.stream_id or 0), int(event.error_code or 0))
                        )
                    elif isinstance(event, h2.events.RequestReceived):
                        server.requests += 1
                        if server.early:
                            request = Request(
                                conn, int(event.stream_id or 0), index, server.requests - 1
                            )
                            respond(request)
                    elif isinstance(event, h2.events.StreamEnded) and not server.early:
                        request = Request(
                            conn, int(event.stream_id or 0), index, server.requests - 1
                        )
                        respond(request)
                await stream.send(conn.data_to_send() + bytes(request.raw if request else b""))
                if request is not None and request.then == "close":
                    return
                if request is not None and request.then == "hang":
                    await anyio.sleep_forever()
        except (anyio.EndOfStream, anyio.BrokenResourceError, h2.exceptions.ProtocolError):
            return


@asynccontextmanager
async def fake_server(
    respond: Responder, options: str = "", *, early: bool = False
) -> AsyncIterator[FakeServer]:
    """Run a fake HTTP/2 server on loopback for the block; `options` go in its URL query."""
    server = FakeServer(early=early)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    server.url = f"grpc://127.0.0.1:{port}?ssl=false{options}"

    async def handle(stream: anyio.abc.SocketStream) -> None:
        await serve_one(stream, server, respond)

    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, handle)
        try:
            yield server
        finally:
            tasks.cancel_scope.cancel()


@asynccontextmanager
async def raw_server(answer: bytes | None, *, close: bool = False) -> AsyncIterator[str]:
    """Serve plain TCP on loopback, not HTTP/2; yield the URL reaching it.

    Args:
        answer: Bytes to send once the client's first bytes arrived, or None to send
            nothing.
        close: Close each connection right after accepting it instead.
    """

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            if close:
                return
            with contextlib.suppress(anyio.BrokenResourceError, anyio.EndOfStream):
                await client.receive()
                if answer is not None:
                    await client.send(answer)
                # Stay connected: the client must judge the answer, not a closed socket.
                while True:
                    await client.receive()

    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as group,
    ):
        group.start_soon(listener.serve, handle)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        yield f"grpc://127.0.0.1:{port}?ssl=false"
        group.cancel_scope.cancel()
