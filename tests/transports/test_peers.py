"""The test servers themselves, driven by a grpcio client: they must do what the tests assume."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import grpc
import pytest

from .conftest import TlsFiles
from .peers import Peer, grpcio_peer, grpclib_peer, method, stream_message


def _channel(peer: Peer) -> grpc.Channel:
    return grpc.insecure_channel(
        f"127.0.0.1:{peer.port}", options=[("grpc.max_receive_message_length", 16 << 20)]
    )


def test_echo_records_metadata(peer: Peer) -> None:
    """Echo returns the request and records its metadata, -bin values as bytes."""
    with _channel(peer) as channel:
        reply = channel.unary_unary(method("Echo"))(
            b"hello", metadata=[("a", "b"), ("x-bin", b"\x00\xff")]
        )
    assert reply == b"hello"
    assert ("a", "b") in peer.last_metadata
    assert ("x-bin", b"\x00\xff") in peer.last_metadata


def test_stream_numbers_messages(peer: Peer) -> None:
    """Stream sends COUNT messages of SIZE bytes that name their index."""
    with _channel(peer) as channel:
        replies = list(channel.unary_stream(method("Stream"))(b"3:6"))
    assert replies == [stream_message(i, 6) for i in range(3)]
    assert replies[2] == b"2:xxxx"


def test_fail_sends_status_details_and_trailers(peer: Peer) -> None:
    """Fail ends with the requested status, message, details and a trailer."""
    with _channel(peer) as channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(method("Fail"))(b"5:gone away")
    error = info.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "gone away"
    trailers = dict(error.trailing_metadata() or ())
    assert trailers["grpc-status-details-bin"] == b"details-gone away"
    assert trailers["fail-trailer"] == "yes"


def test_deadline_is_recorded(peer: Peer) -> None:
    """Deadline reports the time left as the server saw it, and None without one."""
    with _channel(peer) as channel:
        channel.unary_unary(method("Deadline"))(b"", timeout=30)
        assert peer.last_deadline is not None
        assert 0 < peer.last_deadline <= 31
        assert channel.unary_unary(method("Deadline"))(b"") == b"none"
    assert peer.last_deadline is None


def test_endless_sees_cancellation(peer: Peer) -> None:
    """Endless sets `cancelled` when its client cancels the call."""
    with _channel(peer) as channel:
        call = channel.unary_stream(method("Endless"))(b"")
        assert next(call) == b"tick"
        assert not peer.cancelled.is_set()
        call.cancel()
        assert peer.cancelled.wait(5)


def test_big_and_sleep(peer: Peer) -> None:
    """Big sends N bytes; Sleep answers after sleeping."""
    with _channel(peer) as channel:
        assert len(channel.unary_unary(method("Big"))(b"8388608")) == 8 << 20
        assert channel.unary_unary(method("Sleep"))(b"0.01") == b"slept"


@pytest.mark.parametrize("factory", [grpclib_peer, grpcio_peer])
def test_restart_on_same_port(factory: Callable[..., AbstractContextManager[Peer]]) -> None:
    """A stopped server frees its port, and a new one can listen on it."""
    with factory() as first:
        port = first.port
    with factory(port=port) as second, _channel(second) as channel:
        assert second.port == port
        assert channel.unary_unary(method("Echo"))(b"again") == b"again"


def test_tls_peer_accepts_its_ca(tls_peer: Peer, tls_ca: TlsFiles) -> None:
    """A TLS peer serves clients that trust the test CA."""
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca.ca_path.read_bytes())
    with grpc.secure_channel(f"localhost:{tls_peer.port}", credentials) as channel:
        assert channel.unary_unary(method("Echo"))(b"tls") == b"tls"
    assert "ssl=true" in tls_peer.url
    assert str(tls_ca.ca_path) in tls_peer.url
