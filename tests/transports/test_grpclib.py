"""GrpclibTransport specifics: asyncio only, construction, closing, error translation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest

from transports import (
    Cancelled,
    DeadlineExceeded,
    GrpclibTransport,
    Transport,
    Unavailable,
    parse_url,
)
from transports import _grpclib as grpclib_module

from .peers import Peer, grpcio_peer, method

asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


def test_is_a_transport() -> None:
    """GrpclibTransport satisfies the Transport protocol and builds outside any loop."""
    transport = GrpclibTransport.from_url("grpc://example.com")
    assert isinstance(transport, Transport)
    assert repr(transport) == "<GrpclibTransport example.com:443 TLS>"
    plain = GrpclibTransport(parse_url("grpc://[::1]:50051?ssl=false"))
    assert repr(plain) == "<GrpclibTransport [::1]:50051 plain>"


def test_bad_construction() -> None:
    """Bad URLs, options and TLS files are refused when the transport is built."""
    with pytest.raises(ValueError, match="grpc://"):
        GrpclibTransport.from_url("http://example.com")
    with pytest.raises(ValueError, match="unknown option"):
        GrpclibTransport.from_url("grpc://example.com?colour=blue")
    with pytest.raises(ValueError, match="max_receive_message_length"):
        GrpclibTransport.from_url("grpc://example.com", max_receive_message_length=-1)
    with pytest.raises(ValueError, match="connect_timeout"):
        GrpclibTransport.from_url("grpc://example.com", connect_timeout=0)
    with pytest.raises(TypeError, match="max_receive_message_length"):
        GrpclibTransport.from_url("grpc://example.com", max_receive_message_length=True)
    with pytest.raises(ValueError, match="TLS files"):
        GrpclibTransport.from_url("grpc://example.com?ssl_root_certificates_path=/no/such.pem")
    with pytest.raises(TypeError, match="ChannelOptions"):
        GrpclibTransport("grpc://example.com")  # type: ignore[arg-type]


def test_bad_certificate_file(tmp_path: Path) -> None:
    """A root certificate file that is not PEM is refused when the transport is built."""
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ValueError, match="TLS files"):
        GrpclibTransport.from_url(f"grpc://example.com?ssl_root_certificates_path={bogus}")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_refuses_trio(peer: Peer) -> None:
    """Under trio, every call fails at once with a RuntimeError that names H2Transport."""
    transport = GrpclibTransport.from_url(peer.url)
    with pytest.raises(RuntimeError, match="H2Transport"):
        await transport.unary(method("Echo"), b"")
    with pytest.raises(RuntimeError, match="H2Transport"):
        async with transport.server_stream(method("Stream"), b"1:1"):
            pass
    await transport.aclose()
    assert peer.calls == 0


def test_bound_to_one_event_loop(peer: Peer) -> None:
    """A transport used on a second event loop refuses, instead of mixing loops."""
    transport = GrpclibTransport.from_url(peer.url)

    async def first() -> None:
        assert await transport.unary(method("Echo"), b"one") == b"one"
        await transport.aclose()

    async def second() -> None:
        await transport.unary(method("Echo"), b"two")

    asyncio.run(first())
    with pytest.raises(RuntimeError, match="event loop"):
        asyncio.run(second())


@pytest.mark.anyio
@asyncio_only
async def test_aclose_is_idempotent_and_final(peer: Peer) -> None:
    """aclose() may be called twice; afterwards calls raise Cancelled, without I/O."""
    transport = GrpclibTransport.from_url(peer.url)
    await transport.aclose()  # never connected: nothing to do
    async with transport:
        pass
    await transport.aclose()
    with pytest.raises(Cancelled, match="closed"):
        await transport.unary(method("Echo"), b"")
    with pytest.raises(Cancelled):
        async with transport.server_stream(method("Stream"), b"1:1"):
            pass
    assert peer.calls == 0


@pytest.mark.anyio
@asyncio_only
async def test_closing_fails_running_calls(peer: Peer) -> None:
    """Calls running when the transport closes raise Cancelled, and the server sees it."""
    transport = GrpclibTransport.from_url(peer.url)
    outcome: list[BaseException] = []

    async def read() -> None:
        try:
            async with transport.server_stream(method("Endless"), b"") as responses:
                async for _ in responses:
                    started.set()
        except Exception as exc:
            outcome.append(exc)

    started = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(read)
            await started.wait()
            await transport.aclose()
    assert len(outcome) == 1
    assert isinstance(outcome[0], Cancelled)
    assert await anyio.to_thread.run_sync(peer.cancelled.wait, 5)


@pytest.mark.anyio
@asyncio_only
async def test_deadline_leaves_the_task_clean(peer: Peer) -> None:
    """After a local deadline, the task has no stray cancel request (grpclib cancels tasks)."""
    async with GrpclibTransport.from_url(peer.url) as transport:
        with pytest.raises(DeadlineExceeded):
            await transport.unary(method("Sleep"), b"10", timeout=0.1)
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0
        # Cancel scopes of the same task still work as they should.
        with anyio.move_on_after(0.05) as scope:
            await anyio.sleep(5)
        assert scope.cancelled_caught
        assert await transport.unary(method("Echo"), b"fine") == b"fine"


@pytest.mark.anyio
@asyncio_only
async def test_keep_alive_options_reach_grpclib(peer: Peer) -> None:
    """URL keep-alive options drive our own PINGs (grpclib's own stay off); calls still work."""
    url = peer.url + "&keep_alive_interval_s=7&keep_alive_timeout_s=3"
    async with GrpclibTransport.from_url(url) as transport:
        assert transport._keep_alive == (7, 3)
        assert transport._config.__for_client__()._keepalive_time is None
        assert await transport.unary(method("Echo"), b"alive") == b"alive"
    off = GrpclibTransport.from_url(peer.url + "&keep_alive=false")
    assert off._keep_alive is None


@pytest.mark.anyio
@asyncio_only
async def test_too_many_pings_halves_the_ping_rate(grpcio_server: Peer) -> None:
    """A server's too_many_pings GOAWAY doubles the keep-alive interval of later connections."""
    url = f"{grpcio_server.url}&keep_alive_interval_s=0.02&keep_alive_timeout_s=1"
    async with GrpclibTransport.from_url(url) as transport:
        with pytest.raises(Unavailable, match=r"(?i)too many pings"):
            await transport.unary(method("Sleep"), b"5", timeout=5)
        channel = transport._channel
        assert channel is not None
        assert channel._keep_alive == pytest.approx((0.04, 1))
        assert await transport.unary(method("Echo"), b"again") == b"again"


@asyncio_only
@pytest.mark.anyio
async def test_slot_waiters_are_woken_once_per_freed_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 calls over a 10-stream limit all finish, each freed slot waking one waiting call
    (grpclib's own event woke every waiting call per freed slot)."""
    queues: list[grpclib_module._SlotQueue] = []

    class CountingQueue(grpclib_module._SlotQueue):
        def __init__(self) -> None:
            super().__init__()
            queues.append(self)

    monkeypatch.setattr(grpclib_module, "_SlotQueue", CountingQueue)
    with grpcio_peer(max_concurrent_streams=10) as limited:
        transport = GrpclibTransport.from_url(limited.url)
        try:
            await transport.unary(method("Echo"), b"warm-up")  # one connection, limit known
            results: list[bytes] = []

            async def call(i: int) -> None:
                results.append(await transport.unary(method("Echo"), b"%d" % i))

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tasks:
                    for i in range(300):
                        tasks.start_soon(call, i)
        finally:
            await transport.aclose()
    assert sorted(results) == sorted(b"%d" % i for i in range(300))
    assert len(queues) == 1
    # Linear: one wake-up per freed slot, and a woken call finds its slot still counted
    # as open now and then (h2 closes a stream a little after grpclib frees it), which
    # costs it one more. Woken all at once per freed slot, it was about 9,000.
    assert 0 < queues[0].wake_ups <= 2 * 300
