"""H2Transport's per-call shortcuts: remembered header parses, rounded grpc-timeout
values, direct socket writes by the anyio driver, asyncio's own deadlines and corked
writes on the asyncio driver; none may change what a call sees."""

from __future__ import annotations

import socket
import threading

import anyio
import anyio.abc
import pytest

from tests.hostile.kit import GRPC_HEAD, OK_TRAILERS, HostileServer, Request, grpc_message
from transports import DeadlineExceeded, H2Transport, NotFound, ProtocolError, _h2, _http2
from transports._h2_anyio import AnyioConnection
from transports._h2_asyncio import AsyncioConnection, AsyncioDeadlines
from transports._wire import decode_timeout

from .peers import method
from .test_h2 import eventually
from .test_h2_conformance import Service, h2_transport

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
_HANG = 30.0

_OK = [(b"grpc-status", b"0")]
_HEAD = [(b":status", b"200"), (b"content-type", b"application/grpc")]


@pytest.mark.parametrize(
    "remaining",
    [0.0001, 0.25, 0.999, 1.0, 1.0001, 5.55555, 9.99999, 10.0, 10.01, 59.99997, 3600.04],
)
def test_wire_timeout_never_shortens_the_deadline_and_repeats_for_long_ones(
    remaining: float,
) -> None:
    """The sent timeout is never below the time left, and at most 0.1 s (1 %) above it."""
    sent = _h2.wire_timeout(remaining)
    assert sent >= remaining
    assert sent - remaining <= max(0.1, remaining * 0.01) + 1e-9
    if remaining < 1.0:
        assert sent == remaining


def test_consecutive_long_deadlines_send_one_value() -> None:
    """Calls a few hundred microseconds apart under a 60 s timeout send the same value."""
    assert {_h2.wire_timeout(60.0 - i * 0.0005) for i in range(100)} == {60.0}


def test_remembered_trailers_still_give_each_call_its_own_error() -> None:
    """A repeated error trailer parses to equal statuses, but every call gets a new error."""
    trailers = [(b"grpc-status", b"5"), (b"grpc-message", b"no%20such%20dispatch")]
    first = _h2.parse_trailers(list(trailers))
    second = _h2.parse_trailers(list(trailers))
    assert first == second
    errors = [first.error(), second.error()]
    assert all(isinstance(error, NotFound) for error in errors)
    assert errors[0] is not errors[1]
    assert isinstance(errors[0], NotFound)
    assert errors[0].message == "no such dispatch"


def test_bad_response_headers_are_rejected_every_time() -> None:
    """A malformed head block raises on every call: failures are not remembered."""
    bad = [(b":status", b"2x0")]
    for _ in range(2):
        with pytest.raises(ProtocolError, match="invalid HTTP :status"):
            _h2.parse_head(bad)


def test_parse_caches_stay_bounded() -> None:
    """Blocks that never repeat (a message each) do not grow the caches without bound."""
    for index in range(1000):
        _h2.parse_trailers([(b"grpc-status", b"13"), (b"grpc-message", str(index).encode())])
        _h2.parse_head([*_HEAD, (b"x-index", str(index).encode())])
    assert len(_h2._trailers) <= _h2._PARSED_CACHE_SIZE
    assert len(_h2._heads) <= _h2._PARSED_CACHE_SIZE
    assert _h2.parse_trailers(_OK).ok


def test_requeued_bytes_go_out_before_later_ones() -> None:
    """Bytes the socket did not take are sent again ahead of what was queued after them."""
    core = _http2.ClientConnection()
    core.initiate()
    preface = core.data_to_send()
    core.ping(b"12345678")
    core.requeue(preface[10:])
    data = core.data_to_send()
    assert data.startswith(preface[10:])
    assert data.endswith(b"12345678")


async def test_grpc_timeout_sent_is_the_rounded_time_left(driver: str) -> None:
    """The server sees a timeout rounded up from the time left, never below it."""
    service = Service()
    with HostileServer(service) as server:
        with anyio.fail_after(_HANG):
            async with h2_transport(server.url, driver) as transport:
                answers = [
                    await transport.unary(method("Deadline"), b"", timeout=60) for _ in range(3)
                ]
    sent = {decode_timeout(answer) for answer in answers}
    assert sent == {60.0}


async def test_concurrent_large_writes_arrive_whole_and_in_order(driver: str) -> None:
    """Requests larger than the socket buffer, sent together, each arrive intact: the
    anyio driver's direct writes hand what the socket does not take to the slow path."""
    bodies = [bytes([index]) * (MiB + index * 4099) for index in range(6)]
    service = Service()
    with HostileServer(service) as server:
        with anyio.fail_after(_HANG):
            async with h2_transport(server.url, driver) as transport:
                replies: dict[int, bytes] = {}

                async def echo(index: int) -> None:
                    replies[index] = await transport.unary(method("Echo"), bodies[index])

                async with anyio.create_task_group() as tasks:
                    for index in range(len(bodies)):
                        tasks.start_soon(echo, index)
    assert [replies[index] for index in range(len(bodies))] == bodies


async def test_the_anyio_driver_writes_plain_trio_sockets_directly(anyio_backend: str) -> None:
    """Over plain TCP on trio the anyio driver writes to the socket itself; on asyncio
    it never does (the socket belongs to asyncio's transport and its write buffer)."""
    service = Service()
    with HostileServer(service) as server:
        with anyio.fail_after(_HANG):
            async with H2Transport.from_url(server.url, _driver="anyio") as transport:
                assert await transport.unary(method("Echo"), b"x") == b"x"
                conn = transport._connection_now
                assert conn is not None
                direct = getattr(conn, "raw_socket", None)
                assert (direct is not None) == (anyio_backend == "trio")


def test_checked_metadata_is_remembered_by_value_and_bad_metadata_still_fails() -> None:
    """Metadata equal to a tuple checked before passes as it is; anything else is
    checked in full, so a bad entry fails however often good metadata came first."""
    from transports._base import _CHECKED_LIMIT, _checked_metadata, check_call

    good = (("key", "secret"), ("x-data-bin", b"\x00"))
    assert check_call("/a.B/C", b"", good, None) == good
    assert check_call("/a.B/C", b"", tuple(good), 5) == good
    with pytest.raises(ValueError, match="reserved"):
        check_call("/a.B/C", b"", (*good, ("grpc-timeout", "1S")), None)
    with pytest.raises(TypeError, match="-bin"):
        check_call("/a.B/C", b"", (("key", "secret"), ("x-data-bin", "text")), None)
    with pytest.raises(TypeError, match="pairs"):
        check_call("/a.B/C", b"", (["key", "secret"],), None)
    with pytest.raises(ValueError, match="path like"):
        check_call("/a.B/C/", b"", good, None)
    for index in range(3 * _CHECKED_LIMIT):
        check_call("/a.B/C", b"", (("sig", str(index)),), None)
    assert len(_checked_metadata) <= _CHECKED_LIMIT


async def test_an_outer_cancel_scope_still_wins_over_a_calls_deadline(driver: str) -> None:
    """A caller's own cancel scope cancels a call quietly (no `DeadlineExceeded`), the
    call's own deadline inside a longer scope raises `DeadlineExceeded` without touching
    that scope, and the connection serves the next call either way."""
    service = Service()
    with HostileServer(service) as server:
        with anyio.fail_after(_HANG):
            async with h2_transport(server.url, driver) as transport:
                with anyio.move_on_after(0.2) as outer:
                    await transport.unary(method("Sleep"), b"1", timeout=20)
                assert outer.cancelled_caught
                with anyio.move_on_after(20) as longer:
                    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.2 s"):
                        await transport.unary(method("Sleep"), b"1", timeout=0.2)
                assert not longer.cancelled_caught
                assert await transport.unary(method("Echo"), b"after", timeout=20) == b"after"


async def test_asyncio_timeouts_around_a_call_stay_asyncio_timeouts(anyio_backend: str) -> None:
    """On asyncio, `asyncio.timeout` around a call with a longer deadline of its own
    raises the caller's `TimeoutError`, not the call's `DeadlineExceeded`."""
    if anyio_backend != "asyncio":
        pytest.skip("asyncio's own timeouts")
    import asyncio

    service = Service()
    with HostileServer(service) as server:
        with anyio.fail_after(_HANG):
            async with H2Transport.from_url(server.url) as transport:
                with pytest.raises(TimeoutError) as caught:
                    async with asyncio.timeout(0.2):
                        await transport.unary(method("Sleep"), b"1", timeout=20)
                assert not isinstance(caught.value, DeadlineExceeded)
                assert await transport.unary(method("Echo"), b"after", timeout=20) == b"after"


async def test_calls_with_mixed_deadlines_expire_in_turn(driver: str) -> None:
    """Concurrent calls each end at their own deadline, a short one started after a long
    one included, and the calls that finish in time are untouched."""
    service = Service()
    with HostileServer(service) as server:
        with anyio.fail_after(_HANG):
            async with h2_transport(server.url, driver) as transport:
                ended: dict[str, float] = {}
                results: dict[str, object] = {}
                start = anyio.current_time()

                async def call(name: str, sleep: str, timeout: float) -> None:
                    try:
                        results[name] = await transport.unary(
                            method("Sleep"), sleep.encode(), timeout=timeout
                        )
                    except DeadlineExceeded as error:
                        results[name] = error
                    ended[name] = anyio.current_time() - start

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(call, "long", "0.8", 20.0)
                    await anyio.sleep(0.05)
                    tasks.start_soon(call, "late", "1", 0.6)
                    tasks.start_soon(call, "short", "1", 0.2)
                assert results["long"] == b"slept"
                assert isinstance(results["short"], DeadlineExceeded)
                assert isinstance(results["late"], DeadlineExceeded)
                assert ended["short"] < ended["late"] < ended["long"]
                assert 0.2 <= ended["short"] < 0.6
                assert await transport.unary(method("Echo"), b"after", timeout=20) == b"after"


async def test_a_deadline_ends_a_wait_for_a_stream_slot(driver: str) -> None:
    """A call queued behind the server's stream limit ends at its own deadline, while
    the call holding the slot goes on, and the queue moves on after it."""
    service = Service()
    with HostileServer(service, max_concurrent_streams=1) as server:
        with anyio.fail_after(_HANG):
            async with h2_transport(server.url, driver) as transport:
                results: list[bytes] = []

                async def sleeper() -> None:
                    results.append(await transport.unary(method("Sleep"), b"1", timeout=20))

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(sleeper)
                    await eventually(
                        lambda: transport._connection_now and transport._connection_now.streams
                    )
                    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.2 s"):
                        await transport.unary(method("Echo"), b"queued", timeout=0.2)
                    assert results == []  # the slot's holder is still sleeping
                assert results == [b"slept"]
                assert await transport.unary(method("Echo"), b"after", timeout=20) == b"after"


async def test_a_deadline_ends_a_wait_to_write(driver: str) -> None:
    """A call that cannot write its request yet (another task's write holds the socket,
    or asyncio's write buffer is full) ends at its deadline; the next call goes through."""
    service = Service()
    with HostileServer(service) as server:
        with anyio.fail_after(_HANG):
            async with h2_transport(server.url, driver) as transport:
                assert await transport.unary(method("Echo"), b"first", timeout=20) == b"first"
                conn = transport._connection_now
                done = anyio.Event()

                async def writing(*, task_status: anyio.abc.TaskStatus[None]) -> None:
                    assert isinstance(conn, AnyioConnection)
                    async with conn.write_lock:  # a write under way in another task
                        task_status.started()
                        await done.wait()

                async with anyio.create_task_group() as tasks:
                    if isinstance(conn, AnyioConnection):
                        await tasks.start(writing)
                    else:
                        assert isinstance(conn, AsyncioConnection)
                        conn.paused = True  # as asyncio's `pause_writing` says
                    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.2 s"):
                        await transport.unary(method("Echo"), b"blocked", timeout=0.2)
                    done.set()
                    if isinstance(conn, AsyncioConnection):
                        conn.on_resume_writing()
                assert await transport.unary(method("Echo"), b"after", timeout=20) == b"after"
                assert [r.message for r in service.requests][-1] == b"after"


async def test_an_expired_call_leaves_its_task_uncancelled(anyio_backend: str) -> None:
    """On asyncio, a call's deadline never cancels the caller's task (the call's stream
    fails instead), and no deadline timer outlives the transport."""
    if anyio_backend != "asyncio":
        pytest.skip("asyncio's task cancellation counts")
    import asyncio

    service = Service()
    with HostileServer(service) as server:
        with anyio.fail_after(_HANG):
            async with H2Transport.from_url(server.url) as transport:
                task = asyncio.current_task()
                assert task is not None
                before = task.cancelling()
                with pytest.raises(DeadlineExceeded):
                    await transport.unary(method("Sleep"), b"1", timeout=0.1)
                assert task.cancelling() == before
                await transport.unary(method("Echo"), b"x", timeout=20)
                deadlines = transport._deadlines
                assert isinstance(deadlines, AsyncioDeadlines)
                assert deadlines._timer is not None  # armed for the last call's deadline
            assert deadlines._timer is None


class _CountingSocket:
    """A plain TCP socket that counts its reads, and the reads that found nothing."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.reads = 0
        self.empty = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)

    def fileno(self) -> int:
        return self._sock.fileno()

    def recv(self, size: int) -> bytes:
        self.reads += 1
        try:
            return self._sock.recv(size)
        except BlockingIOError:
            self.empty += 1
            raise


async def test_trio_driver_reads_the_socket_when_it_is_readable(anyio_backend: str) -> None:
    """On trio, the anyio driver reads a plain TCP socket itself, once it is readable:
    no read that finds nothing (trio's own `recv` tries first, then waits)."""
    if anyio_backend != "trio":
        pytest.skip("the anyio driver reads plain TCP sockets directly on trio")
    service = Service()
    with HostileServer(service) as server:
        with anyio.fail_after(_HANG):
            async with H2Transport.from_url(server.url) as transport:
                await transport.unary(method("Echo"), b"first", timeout=20)
                conn = transport._connection_now
                assert isinstance(conn, AnyioConnection)
                sock = conn.raw_socket
                assert sock is not None
                counting = _CountingSocket(sock)
                conn.raw_socket = counting  # type: ignore[assignment]
                for index in range(50):
                    reply = await transport.unary(method("Echo"), b"%d" % index, timeout=20)
                    assert reply == b"%d" % index
                # The read loop may have been waiting in the old socket's wait already.
                assert counting.reads >= 49
                assert counting.empty <= 2


def _headers_streams(data: bytes) -> set[int]:
    """The stream ids of the HEADERS frames in bytes we wrote (after the preface)."""
    found = set()
    view = data.removeprefix(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    while len(view) >= 9:
        length = int.from_bytes(view[:3], "big")
        if view[3] == 0x1:
            found.add(int.from_bytes(view[5:9], "big") & 0x7FFFFFFF)
        view = view[9 + length :]
    return found


async def test_calls_woken_by_one_read_send_their_requests_in_one_write(
    anyio_backend: str,
) -> None:
    """The asyncio driver corks: four calls answered in one server write, each making
    its next call at once, send those four requests in fewer writes than four."""
    if anyio_backend != "asyncio":
        pytest.skip("the asyncio driver's cork")
    held: list[Request] = []
    lock = threading.Lock()

    def handler(request: Request) -> None:
        if request.path.endswith(b"/Hold"):
            with lock:
                held.append(request)
                if len(held) < 4:
                    return
            # All four answers in one write: queued in h2, then flushed once.
            for each in held:
                each.link.h2.send_headers(each.stream_id, GRPC_HEAD)
                each.link.h2.send_data(each.stream_id, grpc_message(b"held"))
                each.link.h2.send_headers(each.stream_id, OK_TRAILERS, end_stream=True)
            request.link.flush()
        else:
            request.answer(request.message)

    writes: list[set[int]] = []
    with HostileServer(handler) as server:
        with anyio.fail_after(_HANG):
            async with H2Transport.from_url(server.url) as transport:
                assert await transport.unary(method("Echo"), b"warm") == b"warm"
                conn = transport._connection_now
                assert isinstance(conn, AsyncioConnection)
                assert conn.transport is not None
                real_write = conn.transport.write

                def write(data: bytes | bytearray | memoryview) -> None:
                    writes.append(_headers_streams(bytes(data)))
                    real_write(data)

                conn.transport.write = write  # type: ignore[method-assign]

                async def twice() -> None:
                    assert await transport.unary(method("Hold"), b"") == b"held"
                    assert await transport.unary(method("Echo"), b"next") == b"next"

                async with anyio.create_task_group() as tasks:
                    for _ in range(4):
                        tasks.start_soon(twice)
    follow_ups = {11, 13, 15, 17}  # streams 3-9 held, 1 warmed up
    carrying = [streams for streams in writes if streams & follow_ups]
    assert set().union(*carrying) == follow_ups
    assert len(carrying) < 4
