"""H2Transport's anyio driver: an anyio byte stream read by one task per connection.

Used on trio (and any anyio backend but asyncio, which has its own driver). The
connection's task reads the socket, feeds the core and wakes the calls; calls wait on
an `anyio.Event` per wait and write under a lock, shielded, so a frame is never cut in
half by a cancellation.
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.lowlevel

from . import _http2
from ._errors import GrpcError
from ._h2 import (
    CLOSE_TIMEOUT,
    READ_SIZE,
    WRITE_TIMEOUT,
    Connection,
    Stream,
    WaitScope,
    broken,
    check_alpn,
    describe,
    ended_before_settings,
    fresh,
    library_clock,
    library_event,
    lost,
)

if TYPE_CHECKING:
    import ssl

__all__ = ["open_anyio_connection"]


class AnyioConnection(Connection):
    """A connection over an anyio byte stream, read by its own task."""

    def __init__(
        self,
        byte_stream: anyio.abc.ByteStream,
        *,
        keep_alive: tuple[float, float] | None,
        where: str,
    ) -> None:
        super().__init__(keep_alive=keep_alive, where=where)
        self.clock = library_clock()
        self.new_event = library_event()  # a call's wake-up (`wait`)
        self.byte_stream = byte_stream
        self.write_lock = anyio.Lock()
        # The plain TCP socket under an unencrypted stream on trio (None over TLS, whose
        # bytes must go through the TLS layer): `flush` first offers the bytes to it
        # directly, and `_receive` reads it directly.
        self.raw_socket: socket.socket | None = None

    # --- wake-ups ---------------------------------------------------------------------

    async def wait(self, stream: Stream) -> None:
        event = stream.waiter
        if event is None:
            event = stream.waiter = self.new_event()
        await event.wait()

    def wake(self, stream: Stream) -> None:
        event = stream.waiter
        if event is not None:
            stream.waiter = None
            event.set()

    # --- writing ----------------------------------------------------------------------

    async def flush(self, wait_scope: WaitScope = None) -> None:
        if not self.core.pending:
            # Nothing queued (most acks and reads queue nothing): skip the lock. Whatever
            # we queued earlier is already being written by the task that took it.
            if self.error is not None:
                raise fresh(self.error)
            return
        if self.raw_socket is not None and not self.write_lock.locked():
            # The common case: the socket takes the whole write at once. Sending it
            # directly (the socket is non-blocking) saves the scheduler passes, lock and
            # shielded scope of an awaited send; no other write is under way (the lock
            # is free) and nothing awaits between taking the bytes and sending them, so
            # writes stay in order. Whatever the socket does not take goes the slow way.
            data = self.core.data_to_send()
            try:
                sent = self.raw_socket.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self.die(lost(f"the connection was lost ({exc!r})"))
                raise fresh(self.error or lost("the connection was lost")) from None
            if sent == len(data):
                if self.error is not None:
                    raise fresh(self.error)
                return
            self.core.requeue(data[sent:])
        if self.write_lock.locked() and wait_scope is not None:
            with wait_scope():  # another task is writing: a wait the deadline may end
                await self.write_lock.acquire()
        else:
            await self.write_lock.acquire()
        try:
            data = self.core.data_to_send()
            if data:
                if self.error is not None:
                    raise fresh(self.error)
                # A frame cut in half by a cancellation would corrupt the connection for
                # every call on it, so a write always completes (or the connection dies).
                deadline = anyio.current_time() + WRITE_TIMEOUT
                with anyio.CancelScope(shield=True, deadline=deadline) as scope:
                    try:
                        await self.byte_stream.send(data)
                    except Exception as exc:
                        self.die(lost(f"the connection was lost ({exc!r})"))
                if scope.cancelled_caught:
                    self.die(lost("the server stopped reading"))
        finally:
            self.write_lock.release()
        if self.error is not None:
            raise fresh(self.error)

    async def goodbye(self, error: GrpcError, *, code: int | None = _http2.NO_ERROR) -> None:
        # Fail the calls first: they must see `error`, not the fallout of closing.
        if not self.fail_calls(error):
            return
        if code is not None:
            self.core.close(code)
        data = self.core.data_to_send()
        # Best effort: the connection is over anyway.
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(CLOSE_TIMEOUT),
            contextlib.suppress(Exception),
        ):
            async with self.write_lock:
                await self.byte_stream.send(data)
        self.die(error)

    # --- reading ----------------------------------------------------------------------

    async def run(self) -> None:
        try:
            with self.scope:
                async with anyio.create_task_group() as tasks:
                    if self.keep_alive is not None:
                        tasks.start_soon(self.keep_alive_loop, *self.keep_alive)
                    await self._read_loop()
                    tasks.cancel_scope.cancel()
        finally:
            self.die(lost("the connection was closed"))
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(self.byte_stream)

    async def _receive(self) -> bytes:
        """The next bytes the server sent.

        From the plain TCP socket when there is one (trio): wait until it is readable,
        then read it. trio's own `recv` tries the read first, so a read loop that waits
        for answers gets EAGAIN (a syscall and an exception) on most reads, and it
        yields once more after each successful read.

        Raises:
            anyio.EndOfStream: When the server closed the connection.
        """
        sock = self.raw_socket
        if sock is None:
            return await self.byte_stream.receive(READ_SIZE)
        while True:
            await anyio.wait_readable(sock)  # the checkpoint: one per read
            try:
                data = sock.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                raise anyio.EndOfStream
            return data

    async def _read_loop(self) -> None:
        try:
            while self.error is None:
                data = await self._receive()
                try:
                    self.receive(data, self.clock())
                    # A flood of tiny frames must not starve the program: the core
                    # stops after a batch, and other tasks run before the next one.
                    while self.core.has_backlog and self.error is None:
                        await self.flush()  # the previous batch's acks
                        await anyio.lowlevel.checkpoint()
                        self.receive(b"", self.clock())
                except _http2.ConnectionFailed as exc:
                    await self.goodbye(broken(exc), code=None)
                    return
                await self.flush()  # SETTINGS and PING acks, WINDOW_UPDATEs
        except anyio.EndOfStream:
            reason = f" after {self.goaway_reason}" if self.goaway_reason else ""
            self.die(lost(f"the server closed the connection{reason}"))
        except GrpcError as exc:
            self.die(exc)
        except Exception as exc:  # the edge: socket, TLS and anything else
            self.die(lost(f"the connection was lost ({exc!r})"))


async def open_anyio_connection(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    *,
    keep_alive: tuple[float, float] | None,
    where: str,
) -> AnyioConnection:
    """Connect, check ALPN, and exchange the HTTP/2 prefaces.

    Waiting for the server's SETTINGS lets the first calls respect its stream limit.

    Raises:
        ProtocolError: If the server does not speak HTTP/2.
        ConnectError: If the TLS connection ended before the server's SETTINGS.
        Unavailable: If the server said GOAWAY with its first SETTINGS.
        Exception: Whatever connecting raised (the caller maps it to `ConnectError`).
    """
    byte_stream: anyio.abc.ByteStream
    if ssl_context is None:
        byte_stream = await anyio.connect_tcp(host, port)
    else:
        from anyio.streams.tls import TLSAttribute

        byte_stream = await anyio.connect_tcp(
            host,
            port,
            ssl_context=ssl_context,
            # HTTP/2 ends with GOAWAY; waiting for TLS close_notify could hang.
            tls_standard_compatible=False,
        )
    try:
        if ssl_context is not None:
            check_alpn(byte_stream.extra(TLSAttribute.alpn_protocol, None), where)
        conn = AnyioConnection(byte_stream, keep_alive=keep_alive, where=where)
        if ssl_context is None:
            raw = byte_stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
            if isinstance(raw, socket.socket) and not raw.getblocking():
                conn.raw_socket = raw
        conn.core.initiate()
        try:
            await byte_stream.send(conn.core.data_to_send())
            while True:
                data = await byte_stream.receive(READ_SIZE)
                if conn.preface(data, anyio.current_time()):
                    break
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
            raise ended_before_settings(
                where, tls=ssl_context is not None, cause=describe(exc)
            ) from exc
        await byte_stream.send(conn.core.data_to_send())
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(byte_stream)
        raise
    return conn
