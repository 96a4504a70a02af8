"""H2Transport's asyncio driver: an `asyncio.BufferedProtocol` feeding the core.

asyncio reads received bytes into a buffer the protocol keeps and hands them over; the
protocol feeds the core and completes the waiting calls' futures directly: no reader
task, and no reader registration per wait (waiting through anyio's `wait_readable` adds
and removes a reader every time, which cost about a third of what leaving `h2` gained).
Writes go to the asyncio transport's buffer at once (so a frame is never cut in half by
a cancellation); a writer waits only while asyncio says the buffer is full
(`pause_writing`), at most `WRITE_TIMEOUT` before the peer is declared dead. The
connection's background task only sends keep-alive PINGs and closes the socket at the
end. Unary calls' deadlines share one loop timer per transport (`AsyncioDeadlines`).
"""

from __future__ import annotations

import asyncio
import math
import socket
from typing import TYPE_CHECKING, Any

import anyio

from . import _http2
from ._errors import GrpcError
from ._h2 import (
    CLOSE_TIMEOUT,
    NO_SCOPE,
    READ_SIZE,
    WRITE_TIMEOUT,
    Connection,
    Deadlines,
    Stream,
    WaitScope,
    broken,
    check_alpn,
    describe,
    ended_before_settings,
    fresh,
    lost,
)

if TYPE_CHECKING:
    import ssl

__all__ = ["AsyncioDeadlines", "open_asyncio_connection"]


_HAPPY_EYEBALLS_DELAY = 0.25  # as anyio's connect_tcp (RFC 8305's recommendation)


class AsyncioConnection(Connection):
    """A connection driven by asyncio's Protocol callbacks."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        keep_alive: tuple[float, float] | None,
        where: str,
        tls: bool,
    ) -> None:
        super().__init__(keep_alive=keep_alive, where=where)
        self.loop = loop
        self.tls = tls
        self.transport: asyncio.Transport | None = None
        self.paused = False  # asyncio's write buffer is full: writers wait
        self.drained: anyio.Event | None = None
        self.ready: asyncio.Future[None] = loop.create_future()  # the server's SETTINGS
        self.gone: asyncio.Future[None] = loop.create_future()  # connection_lost ran
        self.reading_paused = False
        # Corked: calls' writes wait in the core's buffer for `_uncork`, which runs
        # right after the tasks woken by one read (see `on_data`).
        self.corked = False
        self.woken = 0  # calls woken by the read being processed

    # --- wake-ups: one future per wait ------------------------------------------------

    async def wait(self, stream: Stream) -> None:
        future = self.loop.create_future()
        if stream.waiter is None:
            stream.waiter = future
        else:  # a second task waits on the same call (rare)
            if stream.waiters is None:
                stream.waiters = []
            stream.waiters.append(future)
        try:
            await future
        finally:
            if stream.waiter is future:
                stream.waiter = None

    def wake(self, stream: Stream) -> None:
        future = stream.waiter
        if future is not None:
            stream.waiter = None
            if not future.done():
                future.set_result(None)
                self.woken += 1
        if stream.waiters is not None:
            for other in stream.waiters:
                if not other.done():
                    other.set_result(None)
            stream.waiters = None

    # --- writing ----------------------------------------------------------------------

    def write_now(self) -> None:
        """Write what the core queued, without waiting (acks, answers to PINGs)."""
        transport = self.transport
        if self.core.pending and transport is not None and not transport.is_closing():
            transport.write(self.core.data_to_send())

    async def flush(self, wait_scope: WaitScope = None) -> None:
        if self.core.pending:
            if self.error is not None:
                raise fresh(self.error)
            if not self.corked:
                self.write_now()
            if self.paused:
                with NO_SCOPE if wait_scope is None else wait_scope():
                    await self._drain()
        if self.error is not None:
            raise fresh(self.error)

    async def _drain(self) -> None:
        event = self.drained
        if event is None:
            event = self.drained = anyio.Event()
        with anyio.move_on_after(WRITE_TIMEOUT) as scope:
            await event.wait()
        if scope.cancelled_caught:
            self.die(lost("the server stopped reading"))

    async def goodbye(self, error: GrpcError, *, code: int | None = _http2.NO_ERROR) -> None:
        self.say_goodbye(error, code=code)

    def say_goodbye(self, error: GrpcError, *, code: int | None = _http2.NO_ERROR) -> None:
        """`goodbye` without waiting: the GOAWAY goes to asyncio's buffer."""
        # Fail the calls first: they must see `error`, not the fallout of closing.
        if not self.fail_calls(error):
            return
        if code is not None:
            self.core.close(code)
        self.write_now()
        self.die(error)

    def closed(self) -> None:
        if self.transport is not None:
            # Flushes what is buffered (the GOAWAY), then closes; `run` aborts a
            # transport whose peer does not read within CLOSE_TIMEOUT.
            self.transport.close()
        self._wake_writers()

    def _wake_writers(self) -> None:
        event, self.drained = self.drained, None
        if event is not None:
            event.set()

    # --- the Protocol's callbacks ------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        """`data_received`: feed the core, wake the calls, write the acks."""
        if not self.ready.done():
            try:
                if self.preface(data, self.loop.time()):
                    self.ready.set_result(None)
            except GrpcError as exc:
                self._fail_ready(exc)
            return
        if self.error is not None:
            return
        self.woken = 0
        try:
            self.receive(data, self.loop.time())
        except _http2.ConnectionFailed as exc:
            self.say_goodbye(broken(exc), code=None)
            return
        if self.core.has_backlog and self.error is None:
            # More frames than one batch: let other tasks run before the next batch,
            # and read nothing more meanwhile.
            self._pause_reading()
            self.loop.call_soon(self._next_batch)
        if self.corked:
            return
        if self.woken > 1:
            # The calls just woken run next, in the order they were woken, and most
            # write at once (the next request, a window update): cork until they all
            # ran, so their frames leave in one write (one syscall here, one read for
            # the server) instead of one each. `_uncork` is queued after them, so no
            # request waits for more than the other woken calls' turns. A lone call
            # has nobody to share a write with: it writes at once.
            self.corked = True
            self.loop.call_soon(self._uncork)
        else:
            self.write_now()  # acks, answers to PINGs

    def _uncork(self) -> None:
        self.corked = False
        self.write_now()

    def _fail_ready(self, error: GrpcError) -> None:
        """Fail the opener waiting for the preface (if it still waits)."""
        if not self.ready.done():
            self.ready.set_exception(error)
            # Mark it retrieved: an opener cancelled before it awaited `ready` (its
            # deadline passed while connecting) must not leave an unretrieved error.
            self.ready.exception()

    def _next_batch(self) -> None:
        if self.error is not None:
            return
        try:
            self.receive(b"", self.loop.time())
        except _http2.ConnectionFailed as exc:
            self.say_goodbye(broken(exc), code=None)
            return
        self.write_now()
        if self.core.has_backlog and self.error is None:
            self.loop.call_soon(self._next_batch)
        elif self.reading_paused and self.transport is not None:
            self.reading_paused = False
            if not self.transport.is_closing():
                self.transport.resume_reading()

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def on_lost(self, exc: BaseException | None) -> None:
        """`connection_lost`: fail what is left."""
        if not self.gone.done():
            self.gone.set_result(None)
        if not self.ready.done():
            cause = describe(exc) if exc is not None else "end of stream"
            self._fail_ready(ended_before_settings(self.where, tls=self.tls, cause=cause))
        if exc is None:
            reason = f" after {self.goaway_reason}" if self.goaway_reason else ""
            self.die(lost(f"the server closed the connection{reason}"))
        else:
            self.die(lost(f"the connection was lost ({exc!r})"))
        self._wake_writers()

    def on_resume_writing(self) -> None:
        self.paused = False
        self._wake_writers()

    # --- the background task -----------------------------------------------------------

    async def run(self) -> None:
        try:
            with self.scope:
                if self.keep_alive is not None:
                    await self.keep_alive_loop(*self.keep_alive)
                else:
                    await anyio.sleep_forever()
        finally:
            self.die(lost("the connection was closed"))
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await asyncio.shield(self.gone)
            if self.transport is not None:
                self.transport.abort()


class AsyncioDeadlines(Deadlines):
    """`Deadlines` with a loop timer (`call_at`): no task."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(deadline, self._fired, deadline)

    def _fired(self, due: float) -> None:
        self._timer = None
        # The loop runs a timer up to its clock's resolution early: `due` has come.
        self.fire(max(self._loop.time(), due))
        if self._armed < math.inf:
            self._arm(self._armed)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = math.inf


class _Protocol(asyncio.BufferedProtocol):
    """Hands asyncio's callbacks to the connection.

    A buffered protocol: asyncio reads into one buffer the connection keeps, where a
    plain `Protocol` gets a fresh buffer of asyncio's read size (256 KiB) per read,
    which is mapped and unmapped again on every read in processes where glibc's malloc
    has left its mmap threshold at the default (see `_h2.READ_SIZE`).
    """

    __slots__ = ("_buffer", "conn")

    def __init__(self, conn: AsyncioConnection) -> None:
        self.conn = conn
        self._buffer = memoryview(bytearray(READ_SIZE))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.conn.transport = transport
        self.conn.write_now()  # our preface, before anything the server sends is read

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        # A copy of the bytes read: the core and the calls keep parts of them, and the
        # buffer is read into again.
        self.conn.on_data(self._buffer[:nbytes].tobytes())

    def eof_received(self) -> bool | None:
        return None  # let asyncio close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.on_lost(exc)

    def pause_writing(self) -> None:
        self.conn.paused = True

    def resume_writing(self) -> None:
        self.conn.on_resume_writing()


async def open_asyncio_connection(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    *,
    keep_alive: tuple[float, float] | None,
    where: str,
) -> AsyncioConnection:
    """Connect, check ALPN, and exchange the HTTP/2 prefaces.

    Waiting for the server's SETTINGS lets the first calls respect its stream limit.

    Raises:
        ProtocolError: If the server does not speak HTTP/2.
        ConnectError: If the TLS connection ended before the server's SETTINGS.
        Unavailable: If the server said GOAWAY with its first SETTINGS.
        Exception: Whatever connecting raised (the caller maps it to `ConnectError`).
    """
    loop = asyncio.get_running_loop()
    conn = AsyncioConnection(loop, keep_alive=keep_alive, where=where, tls=ssl_context is not None)
    conn.core.initiate()
    options: dict[str, Any] = {}
    if ssl_context is not None:
        options = {
            "ssl": ssl_context,
            "server_hostname": host,
            # HTTP/2 ends with GOAWAY; waiting long for TLS close_notify could hang.
            "ssl_shutdown_timeout": CLOSE_TIMEOUT,
        }
    # Resolve first: with a single address, connect without happy eyeballs, whose
    # race in asyncio can leave a just-connected socket unclosed when it is cancelled
    # (a call's deadline passing while connecting). With several, race them.
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if len(addresses) == 1:
        transport, _ = await loop.create_connection(
            lambda: _Protocol(conn), addresses[0], port, **options
        )
    else:
        transport, _ = await loop.create_connection(
            lambda: _Protocol(conn),
            host,
            port,
            happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY,
            **options,
        )
    try:
        if ssl_context is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            check_alpn(alpn, where)
        await conn.ready
        conn.write_now()  # our SETTINGS ack
    except BaseException:
        transport.abort()
        raise
    return conn
