"""The sans-IO HTTP/2 client core: real exchanges with h2 as the server, frame-level rules."""

from __future__ import annotations

import contextlib
import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports import _http2, _wire
from transports._http2 import (
    ClientConnection,
    ConnectionFailed,
    Data,
    Event,
    GoAway,
    PingAcked,
    RequestHeaderEncoder,
    ResponseHeaders,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
)

from . import frames
from .frames import Frame, Server, parse_frames
from .peers import Peer, stream_message

METHOD = "/frequenz.api.dispatch.v1.MicrogridDispatchService/GetMicrogridDispatch"


def _h2_server() -> h2.connection.H2Connection:
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    server.initiate_connection()
    return server


def _exchange(
    client: ClientConnection, server: h2.connection.H2Connection
) -> tuple[list[Event], list[h2.events.Event]]:
    """Pass bytes both ways until neither side has anything to send."""
    client_events: list[Event] = []
    server_events: list[h2.events.Event] = []
    for _ in range(20):
        outgoing = client.data_to_send()
        if outgoing:
            server_events += server.receive_data(outgoing)
        incoming = server.data_to_send()
        if incoming:
            client_events += client.receive(incoming, 0.0)
        if not outgoing and not incoming:
            return client_events, server_events
    raise AssertionError("the exchange did not settle")


def test_unary_exchange_with_h2_server() -> None:
    """A gRPC-shaped request and response with trailers go through against h2's server."""
    client = ClientConnection()
    client.initiate()
    server = _h2_server()
    events, _ = _exchange(client, server)
    assert client.settings_received
    assert any(isinstance(e, SettingsChanged) for e in events)

    encoder = RequestHeaderEncoder(scheme="http", authority="127.0.0.1:50051", user_agent="t/1")
    block = encoder.encode(METHOD, [("key", "secret")], 5.0)
    stream_id = client.open_stream(block)
    body = _wire.encode_message(b"\x08\x01" * 10)
    assert client.send_data(stream_id, body, end_stream=True) == len(body)
    _, server_events = _exchange(client, server)
    received = [e for e in server_events if isinstance(e, h2.events.RequestReceived)]
    assert len(received) == 1
    assert received[0].headers == _wire.request_headers(
        scheme="http",
        authority="127.0.0.1:50051",
        path=METHOD,
        user_agent="t/1",
        timeout=5.0,
        metadata=[("key", "secret")],
    )
    got = b"".join(e.data for e in server_events if isinstance(e, h2.events.DataReceived))
    assert got == body
    assert any(isinstance(e, h2.events.StreamEnded) for e in server_events)

    server.send_headers(stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")])
    server.send_data(stream_id, _wire.encode_message(b"reply"))
    server.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)
    events, _ = _exchange(client, server)
    kinds = [type(e) for e in events]
    assert kinds == [ResponseHeaders, Data, Trailers]
    head, chunk, trailers = events
    assert isinstance(head, ResponseHeaders)
    assert head.stream_id == stream_id
    assert head.headers == [(b":status", b"200"), (b"content-type", b"application/grpc")]
    assert isinstance(chunk, Data)
    assert chunk.data == _wire.encode_message(b"reply")
    assert isinstance(trailers, Trailers)
    assert trailers.headers == [(b"grpc-status", b"0")]
    client.ack(stream_id, chunk.flow_length)
    assert client.open_streams == 0


def test_repeated_requests_use_the_servers_table_with_h2_server() -> None:
    """Requests whose fields repeat reach h2's server intact as references to its table."""
    client = ClientConnection()
    client.initiate()
    server = _h2_server()
    _exchange(client, server)
    encoder = RequestHeaderEncoder(scheme="http", authority="127.0.0.1:50051", user_agent="t/1")
    metadata = (("key", "secret"), ("x-tenant", "a"))
    sizes = []
    for method in (METHOD, METHOD, METHOD, "/other.S/M", METHOD):
        stream_id = client.open_request(encoder, method, metadata, 5.0, end_stream=True)
        wire = client.data_to_send()
        (headers,) = parse_frames(wire)
        sizes.append(len(headers.payload))
        events = server.receive_data(wire)
        (received,) = [e for e in events if isinstance(e, h2.events.RequestReceived)]
        assert received.stream_id == stream_id
        assert received.headers == _wire.request_headers(
            scheme="http",
            authority="127.0.0.1:50051",
            path=method,
            user_agent="t/1",
            timeout=5.0,
            metadata=metadata,
        )
    assert sizes[2] < sizes[0] // 3  # the third time: references
    assert sizes[4] == sizes[2]


# --- frame-level rules ---------------------------------------------------------------


def _connected(**options: int) -> tuple[ClientConnection, Server]:
    """A client past the handshake: server SETTINGS received, ours acknowledged."""
    client = ClientConnection(**options)
    client.initiate()
    events = client.receive(frames.settings() + frames.settings_ack(), 0.0)
    assert [type(e) for e in events] == [SettingsChanged]
    assert client.settings_acked
    client.data_to_send()
    return client, Server()


def _open(client: ClientConnection, *, end_stream: bool = True) -> int:
    encoder = RequestHeaderEncoder(scheme="http", authority="h:1", user_agent="t")
    return client.open_stream(encoder.encode(METHOD, (), None), end_stream=end_stream)


def _sent(client: ClientConnection) -> list[Frame]:
    return parse_frames(client.data_to_send())


def _receive_all(client: ClientConnection, chunks: list[tuple[bytes, float]]) -> list[Event]:
    """Feed each (bytes, time) in turn; return all events."""
    events: list[Event] = []
    for wire, now in chunks:
        events += client.receive(wire, now)
    return events


def _fails(client: ClientConnection, wire: bytes, code: int) -> ConnectionFailed:
    """Feed `wire`, expect a connection error with `code` and our GOAWAY queued."""
    with pytest.raises(ConnectionFailed) as caught:
        client.receive(wire, 0.0)
    assert caught.value.code == code, caught.value
    goaways = [f for f in _sent(client) if f.kind == frames.GOAWAY]
    assert len(goaways) == 1
    assert int.from_bytes(goaways[0].payload[4:8], "big") == code
    return caught.value


def test_initiate_queues_preface_settings_and_window() -> None:
    """initiate() queues the preface, our SETTINGS and the connection window's growth."""
    client = ClientConnection(stream_window=1000, connection_window=1 << 20)
    client.initiate()
    sent = parse_frames(client.data_to_send(), preface=True)
    assert [f.kind for f in sent] == [frames.SETTINGS, frames.WINDOW_UPDATE]
    pairs = [
        (
            int.from_bytes(sent[0].payload[i : i + 2], "big"),
            int.from_bytes(sent[0].payload[i + 2 : i + 6], "big"),
        )
        for i in range(0, len(sent[0].payload), 6)
    ]
    assert pairs == [(2, 0), (4, 1000), (6, _http2.DEFAULT_MAX_HEADER_LIST_SIZE), (5, 16384)]
    assert int.from_bytes(sent[1].payload, "big") == (1 << 20) - 65535


@pytest.mark.parametrize(
    "options",
    [
        {"stream_window": -1},
        {"connection_window": 1},
        {"max_frame_size": 100},
        {"max_header_list_size": 0},
    ],
)
def test_bad_options_raise_value_error(options: dict[str, int]) -> None:
    """Out-of-range sizes raise ValueError when the connection is created."""
    with pytest.raises(ValueError, match="must be"):
        ClientConnection(**options)


def test_first_frame_must_be_settings() -> None:
    """A server that does not start with SETTINGS fails the connection at once."""
    client = ClientConnection()
    client.initiate()
    client.data_to_send()
    failure = _fails(client, frames.ping(), _http2.PROTOCOL_ERROR)
    assert "does not speak HTTP/2" in str(failure)


def test_http1_answer_fails_from_its_first_bytes() -> None:
    """An HTTP/1.1 answer is recognised from its first 9 bytes, without waiting for more."""
    client = ClientConnection()
    client.initiate()
    client.data_to_send()
    failure = _fails(client, b"HTTP/1.1 400 Bad Request\r\n", _http2.PROTOCOL_ERROR)
    assert "HTTP/1.1" in str(failure)


def test_failure_repeats_and_goaway_is_queued_once() -> None:
    """After a connection error, receive() raises again and close() queues no second GOAWAY."""
    client, _ = _connected()
    _fails(client, frames.data(0, b"x"), _http2.PROTOCOL_ERROR)
    with pytest.raises(ConnectionFailed):
        client.receive(b"", 0.0)
    client.close()
    assert client.data_to_send() == b""
    assert client.closed


def test_settings_are_acked_and_applied() -> None:
    """SETTINGS are acknowledged, reported, and their limits applied."""
    client, _ = _connected()
    events = client.receive(frames.settings([(3, 7), (5, 20000), (0x99, 1)]), 0.0)
    assert [type(e) for e in events] == [SettingsChanged]
    assert client.max_concurrent_streams == 7
    assert _sent(client) == [Frame(frames.SETTINGS, frames.ACK, 0, b"")]


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (frames.settings([(4, 2**31)]), _http2.FLOW_CONTROL_ERROR),
        (frames.settings([(5, 16383)]), _http2.PROTOCOL_ERROR),
        (frames.settings([(5, 2**24)]), _http2.PROTOCOL_ERROR),
        (frames.settings([(2, 2)]), _http2.PROTOCOL_ERROR),
        (frames.settings([(8, 2)]), _http2.PROTOCOL_ERROR),
        (frames.frame(frames.SETTINGS, 0, 0, b"\0\0\0"), _http2.FRAME_SIZE_ERROR),
        (frames.frame(frames.SETTINGS, 0, 1, b""), _http2.PROTOCOL_ERROR),
        (frames.frame(frames.SETTINGS, frames.ACK, 0, b"\0" * 6), _http2.FRAME_SIZE_ERROR),
    ],
)
def test_bad_settings_fail_the_connection(wire: bytes, code: int) -> None:
    """SETTINGS with a bad value, length or stream are connection errors."""
    client, _ = _connected()
    _fails(client, wire, code)


def test_initial_window_change_adjusts_open_streams() -> None:
    """A new INITIAL_WINDOW_SIZE shifts open streams' send windows, even below zero."""
    client, _ = _connected()
    stream_id = _open(client, end_stream=False)
    assert client.send_data(stream_id, b"x" * 1000, end_stream=False) == 1000
    assert client.send_window(stream_id) == 65535 - 1000
    client.receive(frames.settings([(4, 500)]), 0.0)
    assert client.send_window(stream_id) == 0
    assert client._streams[stream_id].send_window == -500
    assert client.send_data(stream_id, b"y", end_stream=True) == 0
    events = client.receive(frames.window_update(stream_id, 501), 0.0)
    assert [type(e) for e in events] == [WindowUpdated]
    assert client.send_window(stream_id) == 1
    assert client.send_data(stream_id, b"y", end_stream=True) == 1


def test_initial_window_overflowing_a_stream_fails() -> None:
    """An INITIAL_WINDOW_SIZE that pushes a stream's window past 2**31-1 is an error."""
    client, _ = _connected()
    stream_id = _open(client, end_stream=False)
    client.receive(frames.window_update(stream_id, 2**31 - 1 - 65535), 0.0)
    _fails(client, frames.settings([(4, 65536)]), _http2.FLOW_CONTROL_ERROR)


def test_send_data_respects_windows_and_frame_size() -> None:
    """send_data takes what the windows allow, in frames of the server's maximum size."""
    client, _ = _connected()
    client.receive(frames.settings([(5, 20000)]), 0.0)
    client.data_to_send()
    stream_id = _open(client, end_stream=False)
    client.data_to_send()
    body = bytes(range(256)) * 400  # 102,400 bytes, more than the 65,535 window
    taken = client.send_data(stream_id, body, end_stream=True)
    assert taken == 65535
    sent = _sent(client)
    assert [len(f.payload) for f in sent] == [20000, 20000, 20000, 5535]
    assert all(f.kind == frames.DATA and f.flags == 0 for f in sent)
    assert client.send_window(stream_id) == 0
    client.receive(frames.window_update(0, 50000) + frames.window_update(stream_id, 50000), 0.0)
    assert (
        client.send_data(stream_id, memoryview(body)[taken:], end_stream=True) == len(body) - taken
    )
    sent = _sent(client)
    assert [f.flags for f in sent] == [0, frames.END_STREAM]
    assert b"".join(f.payload for f in sent) == body[taken:]
    with pytest.raises(ValueError, match="not open"):
        client.send_data(stream_id, b"", end_stream=True)


def test_empty_data_with_end_stream() -> None:
    """An empty send with end_stream queues an empty DATA frame with END_STREAM."""
    client, _ = _connected()
    stream_id = _open(client, end_stream=False)
    client.data_to_send()
    assert client.send_data(stream_id, b"", end_stream=True) == 0
    assert _sent(client) == [Frame(frames.DATA, frames.END_STREAM, stream_id, b"")]


def test_large_header_block_goes_out_with_continuation() -> None:
    """A header block over the server's frame size is split into HEADERS + CONTINUATION."""
    client, _ = _connected()
    encoder = RequestHeaderEncoder(scheme="https", authority="h:1", user_agent="t")
    block = encoder.encode(METHOD, [("big", "v" * 40000)], None)
    stream_id = client.open_stream(block, end_stream=True)
    sent = _sent(client)
    assert [f.kind for f in sent] == [frames.HEADERS, frames.CONTINUATION, frames.CONTINUATION]
    assert [f.flags for f in sent] == [frames.END_STREAM, 0, frames.END_HEADERS]
    assert all(f.stream_id == stream_id for f in sent)
    assert b"".join(f.payload for f in sent) == block
    decoded = list(hpack.Decoder(max_header_list_size=1 << 20).decode(block, raw=True))
    assert (b"big", b"v" * 40000) in decoded


def test_response_with_padding_and_priority() -> None:
    """Padded HEADERS (with priority) and padded DATA are read; padding counts as flow."""
    client, server = _connected()
    stream_id = _open(client)
    wire = server.headers(stream_id, pad=10, with_priority=True) + frames.data(
        stream_id, b"hello", pad=20
    )
    wire += frames.frame(
        frames.HEADERS,
        frames.END_STREAM | frames.END_HEADERS | frames.PADDED,
        stream_id,
        b"\x03" + server.block(frames.OK_TRAILERS) + b"\0\0\0",
    )
    head, chunk, trailers = client.receive(wire, 0.0)
    assert isinstance(head, ResponseHeaders)
    assert head.headers == frames.RESPONSE_HEADERS
    assert isinstance(chunk, Data)
    assert (chunk.data, chunk.flow_length) == (b"hello", 26)
    assert isinstance(trailers, Trailers)
    assert trailers.headers == frames.OK_TRAILERS


@pytest.mark.parametrize(
    "wire",
    [
        frames.frame(frames.DATA, frames.PADDED, 1, b"\x06abcde"),
        frames.frame(frames.DATA, frames.PADDED, 1, b""),
        frames.frame(frames.HEADERS, frames.PADDED | frames.END_HEADERS, 1, b"\x09\x88"),
        frames.frame(frames.HEADERS, frames.PRIORITY_FLAG | frames.END_HEADERS, 1, b"\0\0"),
    ],
)
def test_bad_padding_fails(wire: bytes) -> None:
    """Padding as long as the frame, or a frame too short for its fields, is an error."""
    client, server = _connected()
    _open(client)
    client.receive(server.headers(1), 0.0)
    with pytest.raises(ConnectionFailed) as caught:
        client.receive(wire, 0.0)
    assert caught.value.code in (_http2.PROTOCOL_ERROR, _http2.FRAME_SIZE_ERROR)


def test_continuation_in() -> None:
    """A header block split over HEADERS and CONTINUATION frames is decoded whole."""
    client, server = _connected()
    stream_id = _open(client)
    block = server.block([*frames.RESPONSE_HEADERS, (b"x-long", b"z" * 100)])
    wire = frames.frame(frames.HEADERS, 0, stream_id, block[:10])
    wire += frames.frame(frames.CONTINUATION, 0, stream_id, block[10:50])
    wire += frames.frame(frames.CONTINUATION, frames.END_HEADERS, stream_id, block[50:])
    (head,) = client.receive(wire, 0.0)
    assert isinstance(head, ResponseHeaders)
    assert head.headers[-1] == (b"x-long", b"z" * 100)


@pytest.mark.parametrize(
    "tail",
    [
        frames.ping(),
        frames.frame(frames.CONTINUATION, frames.END_HEADERS, 3, b""),
    ],
)
def test_interrupted_header_block_fails(tail: bytes) -> None:
    """Any frame but a CONTINUATION of the same stream inside a header block is an error."""
    client, _ = _connected()
    _open(client)
    _open(client)
    _fails(client, frames.frame(frames.HEADERS, 0, 1, b"\x88") + tail, _http2.PROTOCOL_ERROR)


def test_continuation_without_headers_fails() -> None:
    """A CONTINUATION that continues nothing is a connection error."""
    client, _ = _connected()
    _open(client)
    _fails(
        client,
        frames.frame(frames.CONTINUATION, frames.END_HEADERS, 1, b"\x88"),
        _http2.PROTOCOL_ERROR,
    )


def test_endless_header_block_is_bounded() -> None:
    """A header block growing past the bound through CONTINUATIONs fails the connection."""
    client, _ = _connected(max_header_list_size=1000)
    _open(client)
    wire = frames.frame(frames.HEADERS, 0, 1, b"\x88")
    wire += frames.frame(frames.CONTINUATION, 0, 1, b"\0" * 16000) * 2
    _fails(client, wire, _http2.PROTOCOL_ERROR)


def test_empty_continuation_flood() -> None:
    """Endless empty CONTINUATION frames are a flood."""
    client, _ = _connected()
    _open(client)
    wire = frames.frame(frames.HEADERS, 0, 1, b"\x88")
    wire += frames.frame(frames.CONTINUATION, 0, 1, b"") * (_wire.FLOOD_LIMIT + 1)
    chunks = [(wire, 0.0)] + [(b"", 0.0)] * 100
    with pytest.raises(ConnectionFailed) as caught:
        _receive_all(client, chunks)
    assert caught.value.flood == "empty CONTINUATION"


@pytest.mark.parametrize(
    "make",
    [
        lambda s: frames.data(3, b"x"),
        lambda s: frames.data(2, b"x"),
        lambda s: s.headers(2),
        lambda s: s.headers(5),
        lambda s: frames.rst_stream(3, 8),
        lambda s: frames.window_update(3, 10),
        lambda s: frames.frame(frames.PUSH_PROMISE, frames.END_HEADERS, 1, b"\0\0\0\x02\x88"),
    ],
)
def test_frames_on_idle_streams_fail(make: object) -> None:
    """DATA, HEADERS, RST_STREAM, WINDOW_UPDATE on streams never opened, and PUSH_PROMISE, fail."""
    client, server = _connected()
    _open(client)
    assert callable(make)
    _fails(client, make(server), _http2.PROTOCOL_ERROR)


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (frames.data(0, b"x"), _http2.PROTOCOL_ERROR),
        (frames.frame(frames.HEADERS, frames.END_HEADERS, 0, b"\x88"), _http2.PROTOCOL_ERROR),
        (frames.rst_stream(0, 8), _http2.PROTOCOL_ERROR),
        (frames.frame(frames.RST_STREAM, 0, 1, b"\0\0\0"), _http2.FRAME_SIZE_ERROR),
        (frames.frame(frames.PING, 0, 1, b"12345678"), _http2.PROTOCOL_ERROR),
        (frames.frame(frames.PING, 0, 0, b"1234567"), _http2.FRAME_SIZE_ERROR),
        (frames.frame(frames.GOAWAY, 0, 1, b"\0" * 8), _http2.PROTOCOL_ERROR),
        (frames.frame(frames.GOAWAY, 0, 0, b"\0" * 7), _http2.FRAME_SIZE_ERROR),
        (frames.frame(frames.WINDOW_UPDATE, 0, 0, b"\0\0\0\0\0"), _http2.FRAME_SIZE_ERROR),
        (frames.window_update(0, 0), _http2.PROTOCOL_ERROR),
        (frames.window_update(0, 2**31 - 1), _http2.FLOW_CONTROL_ERROR),
        (frames.priority(0), _http2.PROTOCOL_ERROR),
        (frames.frame(frames.DATA, 0, 1, b"x" * 16385), _http2.FRAME_SIZE_ERROR),
    ],
)
def test_malformed_frames_fail(wire: bytes, code: int) -> None:
    """Frames on the wrong stream, of the wrong size, or growing a window too far fail."""
    client, _ = _connected()
    _open(client)
    _fails(client, wire, code)


def test_oversized_frame_fails_before_its_payload_arrives() -> None:
    """A frame header announcing more than our maximum fails without waiting for the payload."""
    client, _ = _connected()
    _fails(
        client,
        frames.frame(frames.DATA, 0, 1, b"")[:3].replace(b"\0\0\0", b"\x01\0\0")
        + b"\0\x00\0\0\0\x01",
        _http2.FRAME_SIZE_ERROR,
    )


def test_larger_max_frame_size_is_accepted() -> None:
    """With a larger max_frame_size of ours, frames up to it are accepted."""
    client, server = _connected(max_frame_size=32768)
    stream_id = _open(client)
    events = client.receive(server.headers(stream_id) + frames.data(stream_id, b"x" * 30000), 0.0)
    assert [type(e) for e in events] == [ResponseHeaders, Data]


def test_stream_window_overrun_fails() -> None:
    """DATA beyond a stream's receive window is a flow-control error."""
    client = ClientConnection(stream_window=100)
    client.initiate()
    client.receive(frames.settings() + frames.settings_ack(), 0.0)
    client.data_to_send()
    stream_id = _open(client)
    client.receive(Server().headers(stream_id), 0.0)
    _fails(client, frames.data(stream_id, b"x" * 101), _http2.FLOW_CONTROL_ERROR)


def test_stream_window_is_the_default_until_our_settings_are_acked() -> None:
    """Before the server acknowledges our SETTINGS, a stream's receive window is 65,535."""
    client = ClientConnection(stream_window=1 << 20)
    client.initiate()
    client.receive(frames.settings(), 0.0)
    assert not client.settings_acked
    client.data_to_send()
    server = Server()
    stream_id = _open(client)
    client.receive(server.headers(stream_id), 0.0)
    wire = frames.data(stream_id, b"x" * 16384) * 4  # 65,536 bytes: one too many
    _fails(client, wire, _http2.FLOW_CONTROL_ERROR)


def test_connection_window_overrun_fails() -> None:
    """DATA beyond the connection's receive window is a flow-control error."""
    client = ClientConnection(connection_window=65535, stream_window=1 << 20)
    client.initiate()
    client.receive(frames.settings() + frames.settings_ack(), 0.0)
    client.data_to_send()
    server = Server()
    first, second = _open(client), _open(client)
    wire = server.headers(first) + server.headers(second)
    wire += frames.data(first, b"x" * 16384) * 3 + frames.data(second, b"x" * 16384)
    _fails(client, wire, _http2.FLOW_CONTROL_ERROR)


def test_acks_are_batched_per_half_window() -> None:
    """WINDOW_UPDATEs go out once half a window is owed, for the stream and the connection."""
    client = ClientConnection(stream_window=40000, connection_window=100000)
    client.initiate()
    client.receive(frames.settings() + frames.settings_ack(), 0.0)
    client.data_to_send()
    server = Server()
    stream_id = _open(client)
    client.data_to_send()
    events = client.receive(
        server.headers(stream_id) + frames.data(stream_id, b"x" * 15000) * 2, 0.0
    )
    chunks = [e for e in events if isinstance(e, Data)]
    client.ack(stream_id, chunks[0].flow_length)
    assert client.data_to_send() == b""
    client.ack(stream_id, chunks[1].flow_length)
    assert _sent(client) == [frames_window_update(stream_id, 30000)]
    events = client.receive(frames.data(stream_id, b"x" * 15000) * 2, 0.0)
    client.ack(stream_id, 15000)
    client.ack(stream_id, 15000)
    assert _sent(client) == [frames_window_update(0, 60000), frames_window_update(stream_id, 30000)]


def frames_window_update(stream_id: int, increment: int) -> Frame:
    """The WINDOW_UPDATE frame the client is expected to send."""
    return Frame(frames.WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


def test_data_on_closed_streams_is_ignored_but_credited() -> None:
    """DATA for a stream that was reset or forgotten is ignored; its window comes back."""
    client = ClientConnection(connection_window=65535)
    client.initiate()
    client.receive(frames.settings() + frames.settings_ack(), 0.0)
    client.data_to_send()
    server = Server()
    stream_id = _open(client)
    client.data_to_send()
    client.receive(server.headers(stream_id), 0.0)
    client.reset_stream(stream_id)
    assert _sent(client) == [Frame(frames.RST_STREAM, 0, stream_id, b"\0\0\0\x08")]
    events = client.receive(
        frames.data(stream_id, b"x" * 16000) * 3 + server.trailers(stream_id), 0.0
    )
    assert events == []
    assert _sent(client) == [frames_window_update(0, 48000)]
    client.reset_stream(stream_id)
    assert client.data_to_send() == b""


def test_data_before_response_headers_resets_the_stream() -> None:
    """DATA before a stream's response headers resets that stream only."""
    client, server = _connected()
    first, second = _open(client), _open(client)
    client.data_to_send()
    events = client.receive(frames.data(first, b"x") + server.headers(second), 0.0)
    reset, head = events
    assert isinstance(reset, StreamReset)
    assert (reset.stream_id, reset.error_code, reset.remote) == (
        first,
        _http2.PROTOCOL_ERROR,
        False,
    )
    assert isinstance(head, ResponseHeaders)
    assert _sent(client) == [Frame(frames.RST_STREAM, 0, first, b"\0\0\0\x01")]


def test_trailers_without_end_stream_reset_the_stream() -> None:
    """A second header block without END_STREAM resets the stream with PROTOCOL_ERROR."""
    client, server = _connected()
    stream_id = _open(client)
    events = client.receive(
        server.headers(stream_id) + server.headers(stream_id, frames.OK_TRAILERS), 0.0
    )
    assert isinstance(events[1], StreamReset)
    assert events[1].error_code == _http2.PROTOCOL_ERROR


def test_trailers_only_response() -> None:
    """A first header block with END_STREAM is a trailers-only response and closes the stream."""
    client, server = _connected()
    stream_id = _open(client)
    (head,) = client.receive(
        server.headers(stream_id, [(b":status", b"200"), (b"grpc-status", b"5")], end_stream=True),
        0.0,
    )
    assert isinstance(head, ResponseHeaders)
    assert head.end_stream
    assert client.open_streams == 0


def test_informational_headers_are_dropped() -> None:
    """1xx header blocks are dropped; the next block is the response."""
    client, server = _connected()
    stream_id = _open(client)
    events = client.receive(
        server.headers(stream_id, [(b":status", b"100")]) + server.headers(stream_id), 0.0
    )
    assert [type(e) for e in events] == [ResponseHeaders]
    assert events[0].headers == frames.RESPONSE_HEADERS  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"application/grpc")],
        [(b":status", b"200"), (b"Content-Type", b"application/grpc")],
        [(b":status", b"200"), (b"connection", b"close")],
        [(b":status", b"200"), (b":status", b"200")],
        [(b"content-type", b"application/grpc"), (b":status", b"200")],
        [(b":status", b"200"), (b":path", b"/")],
    ],
)
def test_malformed_response_headers_reset_the_stream(headers: list[tuple[bytes, bytes]]) -> None:
    """A malformed response header block resets its stream with PROTOCOL_ERROR."""
    client, server = _connected()
    stream_id = _open(client)
    (reset,) = client.receive(server.headers(stream_id, headers), 0.0)
    assert isinstance(reset, StreamReset)
    assert (reset.error_code, reset.remote) == (_http2.PROTOCOL_ERROR, False)


def test_pseudo_header_in_trailers_resets_the_stream() -> None:
    """Trailers carrying a pseudo-header reset the stream."""
    client, server = _connected()
    stream_id = _open(client)
    events = client.receive(
        server.headers(stream_id)
        + server.trailers(stream_id, [(b":status", b"200"), (b"grpc-status", b"0")]),
        0.0,
    )
    assert isinstance(events[-1], StreamReset)


def test_server_reset() -> None:
    """The server's RST_STREAM is reported as remote and the stream forgotten."""
    client, _ = _connected()
    stream_id = _open(client)
    client.data_to_send()
    (reset,) = client.receive(frames.rst_stream(stream_id, _http2.REFUSED_STREAM), 0.0)
    assert isinstance(reset, StreamReset)
    assert (reset.stream_id, reset.error_code, reset.remote) == (stream_id, 7, True)
    assert client.open_streams == 0
    client.reset_stream(stream_id)
    assert client.data_to_send() == b""
    assert client.receive(frames.rst_stream(stream_id, 8), 0.0) == []


def test_window_update_rules_per_stream() -> None:
    """A zero or overflowing stream WINDOW_UPDATE resets that stream only."""
    client, _ = _connected()
    first, second = _open(client, end_stream=False), _open(client, end_stream=False)
    client.data_to_send()
    events = client.receive(
        frames.window_update(first, 0) + frames.window_update(second, 2**31 - 65535), 0.0
    )
    assert [(type(e), e.error_code) for e in events] == [  # type: ignore[union-attr]
        (StreamReset, _http2.PROTOCOL_ERROR),
        (StreamReset, _http2.FLOW_CONTROL_ERROR),
    ]
    assert [f.kind for f in _sent(client)] == [frames.RST_STREAM, frames.RST_STREAM]


def test_ping_is_answered_and_acks_reported() -> None:
    """A PING is answered with the same payload; a PING ack is reported."""
    client, _ = _connected()
    assert client.receive(frames.ping(b"abcdefgh"), 0.0) == []
    assert _sent(client) == [Frame(frames.PING, frames.ACK, 0, b"abcdefgh")]
    client.ping(b"12345678")
    assert _sent(client) == [Frame(frames.PING, 0, 0, b"12345678")]
    (acked,) = client.receive(frames.ping(b"12345678", ack=True), 0.0)
    assert isinstance(acked, PingAcked)
    assert acked.data == b"12345678"
    with pytest.raises(ValueError, match="8 bytes"):
        client.ping(b"short")


def test_goaway_keeps_the_connection_readable() -> None:
    """After a GOAWAY, streams up to its last stream id still finish."""
    client, server = _connected()
    first, _second = _open(client), _open(client)
    events = client.receive(frames.goaway(first, 0, b"bye") + server.response(first, b"ok"), 0.0)
    goaway = events[0]
    assert isinstance(goaway, GoAway)
    assert (goaway.error_code, goaway.last_stream_id, goaway.debug) == (0, first, b"bye")
    assert client.goaway_received == first
    assert [type(e) for e in events[1:]] == [ResponseHeaders, Data, Trailers]


def test_close_queues_goaway() -> None:
    """close() queues one GOAWAY with our code and debug data."""
    client, _ = _connected()
    client.close(_http2.NO_ERROR, b"done")
    client.close()
    assert _sent(client) == [Frame(frames.GOAWAY, 0, 0, b"\0\0\0\0\0\0\0\0done")]


def test_priority_and_unknown_frames_are_ignored() -> None:
    """PRIORITY and frames of unknown types change nothing."""
    client, server = _connected()
    stream_id = _open(client)
    wire = frames.priority(stream_id) + frames.priority(99) + frames.frame(0xF0, 0xFF, 0, b"?" * 10)
    wire += frames.frame(0x20, 0, stream_id, b"") + server.headers(stream_id)
    assert [type(e) for e in client.receive(wire, 0.0)] == [ResponseHeaders]
    events = client.receive(frames.priority(stream_id, b"\0" * 4), 0.0)
    assert isinstance(events[0], StreamReset)


@pytest.mark.parametrize(
    ("kind", "wire"),
    [
        ("PING", frames.ping()),
        ("SETTINGS", frames.settings()),
        ("empty DATA", frames.data(1, b"")),
    ],
)
def test_floods_end_the_connection(kind: str, wire: bytes) -> None:
    """More than FLOOD_LIMIT PING, SETTINGS or empty DATA frames in the window is a flood."""
    client, server = _connected()
    _open(client)
    client.receive(server.headers(1), 0.0)
    step = _wire.FLOOD_WINDOW / 2 / _wire.FLOOD_LIMIT
    chunks = [(wire, count * step) for count in range(_wire.FLOOD_LIMIT + 10)]
    with pytest.raises(ConnectionFailed) as caught:
        _receive_all(client, chunks)
    assert caught.value.code == _http2.ENHANCE_YOUR_CALM
    assert caught.value.flood == kind
    assert "flooded" in str(caught.value)


def test_frames_spread_over_time_are_no_flood() -> None:
    """The same number of PINGs spread past the window is no flood."""
    client, _ = _connected()
    for count in range(_wire.FLOOD_LIMIT * 3):
        client.receive(frames.ping(), count * (2 * _wire.FLOOD_WINDOW / _wire.FLOOD_LIMIT))
    assert len(_sent(client)) == _wire.FLOOD_LIMIT * 3


def test_frames_are_processed_in_batches() -> None:
    """At most FRAMES_PER_BATCH frames are processed per call; has_backlog says more wait."""
    client, _ = _connected()
    client.receive(frames.ping() * 300 + frames.ping()[:5], 0.0)
    assert client.has_backlog
    assert len(_sent(client)) == _wire.FRAMES_PER_BATCH
    client.receive(b"", 0.0)
    assert client.has_backlog
    client.receive(b"", 0.0)
    assert not client.has_backlog
    assert len(_sent(client)) == 300 - _wire.FRAMES_PER_BATCH
    client.receive(frames.ping()[5:], 0.0)
    assert len(_sent(client)) == 1


def test_byte_by_byte_equals_all_at_once() -> None:
    """Bytes fed one at a time give the same events as the same bytes fed at once."""

    def run(chunks: list[bytes]) -> list[str]:
        client, _ = _connected()
        stream_id = _open(client)
        assert stream_id == 1
        seen = []
        for chunk in chunks:
            seen += [repr(e) for e in client.receive(chunk, 0.0)]
        return seen

    wire = Server().response(1, b"payload" * 100) + frames.ping()
    whole = run([wire])
    assert whole == run([wire[i : i + 1] for i in range(len(wire))])
    assert whole == run([bytearray(wire[:50]), memoryview(wire)[50:]])  # type: ignore[list-item]
    assert len(whole) == 3


def test_stream_ids_exhausted() -> None:
    """Opening a stream past the last client stream id raises StreamIdsExhausted."""
    client, _ = _connected()
    client._next_id = 2**31 - 1
    assert _open(client) == 2**31 - 1
    with pytest.raises(_http2.StreamIdsExhausted):
        _open(client)


def test_lowered_table_size_is_signalled() -> None:
    """After the server lowers HEADER_TABLE_SIZE, our next block starts with a size update."""
    client, _ = _connected()
    client.receive(frames.settings([(1, 0)]), 0.0)
    client.data_to_send()
    _open(client)
    _open(client)
    first, second = _sent(client)
    assert first.payload[0] == 0x20
    assert second.payload[0] != 0x20
    decoder = hpack.Decoder()
    decoder.header_table_size = 0  # as a server whose setting is 0 would
    assert decoder.decode(first.payload, raw=True) == decoder.decode(second.payload, raw=True)


def test_lowered_table_size_empties_the_request_table() -> None:
    """Blocks that used the server's table, then its lowering to 0: all decode in order,
    and the blocks after it add nothing."""
    client, _ = _connected()
    encoder = RequestHeaderEncoder(scheme="http", authority="h:1", user_agent="t")
    decoder = hpack.Decoder()
    expected = _wire.request_headers(
        scheme="http", authority="h:1", path=METHOD, user_agent="t", metadata=[("x", "y")]
    )
    for _ in range(3):
        client.open_request(encoder, METHOD, (("x", "y"),), None, end_stream=True)
    client.receive(frames.settings([(1, 0)]), 0.0)  # queues our acknowledgement
    for _ in range(3):
        client.open_request(encoder, METHOD, (("x", "y"),), None, end_stream=True)
    sent = _sent(client)
    blocks = [frame.payload for frame in sent if frame.kind == frames.HEADERS]
    assert [frame.kind for frame in sent].index(frames.SETTINGS) == 3
    for index, block in enumerate(blocks):
        if index == 3:
            decoder.max_allowed_table_size = 0  # the server applies it on our ack
        assert decoder.decode(block, raw=True) == expected
        if index == 2:
            assert len(decoder.header_table.dynamic_entries) == 6  # no timeout
    assert blocks[3][0] == 0x20
    assert len(decoder.header_table.dynamic_entries) == 0


def test_invalid_hpack_fails_with_compression_error() -> None:
    """A header block that is not valid HPACK is a COMPRESSION_ERROR."""
    client, _ = _connected()
    _open(client)
    _fails(
        client,
        frames.frame(frames.HEADERS, frames.END_HEADERS, 1, b"\xff\xff\xff\xff\x0f"),
        _http2.COMPRESSION_ERROR,
    )


def test_oversized_header_list_fails() -> None:
    """A header list over our MAX_HEADER_LIST_SIZE fails the connection."""
    client, server = _connected(max_header_list_size=200)
    _open(client)
    _fails(
        client, server.headers(1, [(b":status", b"200"), (b"x", b"y" * 300)]), _http2.PROTOCOL_ERROR
    )


def test_header_blocks_of_closed_streams_keep_hpack_in_step() -> None:
    """Blocks for a forgotten stream are still decoded, so later blocks decode right."""
    client, server = _connected()
    first, second = _open(client), _open(client)
    client.reset_stream(first)
    wire = server.headers(first, [(b":status", b"200"), (b"x-new", b"indexed")])
    wire += server.headers(second, [(b":status", b"200"), (b"x-new", b"indexed")])
    (head,) = client.receive(wire, 0.0)
    assert isinstance(head, ResponseHeaders)
    assert head.headers == [(b":status", b"200"), (b"x-new", b"indexed")]


def test_connection_error_after_close_still_queues_its_goaway() -> None:
    """A connection error after close() queues a GOAWAY with the error's code."""
    client, _ = _connected()
    client.close()
    client.data_to_send()
    _fails(client, frames.data(0, b"x"), _http2.PROTOCOL_ERROR)


# --- random exchanges against h2's server --------------------------------------------


class _H2Peer:
    """h2's server side, answering each request with a body of a chosen size."""

    def __init__(self, initial_window: int, max_frame_size: int) -> None:
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.conn.initiate_connection()
        # Sent as a second SETTINGS: h2 applies them once we acknowledge, as it should.
        self.conn.update_settings(
            {
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: max_frame_size,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            }
        )
        self.requests: dict[int, list[tuple[bytes, bytes]]] = {}
        self.bodies: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.pending: dict[int, memoryview] = {}

    def feed(
        self, wire: bytes, replies: dict[int, tuple[bytes, list[tuple[bytes, bytes]]]]
    ) -> None:
        for event in self.conn.receive_data(wire):
            if isinstance(event, h2.events.RequestReceived):
                assert event.stream_id is not None
                self.requests[event.stream_id] = list(event.headers or [])
                self.bodies[event.stream_id] = bytearray()
            elif isinstance(event, h2.events.DataReceived):
                assert event.stream_id is not None
                assert event.data is not None
                self.bodies[event.stream_id] += event.data
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
            elif isinstance(event, h2.events.StreamEnded):
                assert event.stream_id is not None
                self.ended.add(event.stream_id)
                body, extra = replies[event.stream_id]
                self.conn.send_headers(
                    event.stream_id,
                    [(b":status", b"200"), (b"content-type", b"application/grpc"), *extra],
                )
                self.pending[event.stream_id] = memoryview(body)
        self.send_bodies()

    def send_bodies(self) -> None:
        for stream_id, rest in list(self.pending.items()):
            window = min(self.conn.local_flow_control_window(stream_id), len(rest))
            while window > 0:
                size = min(window, self.conn.max_outbound_frame_size)
                self.conn.send_data(stream_id, bytes(rest[:size]))
                rest = rest[size:]
                window -= size
            self.pending[stream_id] = rest
            if not rest:
                del self.pending[stream_id]
                self.conn.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)


@settings(max_examples=30, deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.integers(0, 50000), st.integers(0, 50000), st.booleans()),
        min_size=1,
        max_size=4,
    ),
    stream_window=st.integers(1000, 70000),
    connection_window=st.integers(65535, 150000),
    server_window=st.integers(500, 70000),
    server_frame=st.sampled_from([16384, 20000]),
    chunk=st.sampled_from([97, 1000, 16384, 1 << 20]),
)
def test_random_exchanges_with_h2_server(
    calls: list[tuple[int, int, bool]],
    stream_window: int,
    connection_window: int,
    server_window: int,
    server_frame: int,
    chunk: int,
) -> None:
    """Concurrent calls of any body sizes, under any windows and read sizes, arrive intact."""
    client = ClientConnection(stream_window=stream_window, connection_window=connection_window)
    client.initiate()
    peer = _H2Peer(server_window, server_frame)
    # As a driver does, calls start once the server's SETTINGS arrived.
    for _ in range(3):
        peer.feed(client.data_to_send(), {})
        client.receive(peer.conn.data_to_send(), 0.0)
    assert client.settings_received
    encoder = RequestHeaderEncoder(scheme="http", authority="h:1", user_agent="t")
    replies: dict[int, tuple[bytes, list[tuple[bytes, bytes]]]] = {}
    to_send: dict[int, memoryview] = {}
    expected: dict[int, tuple[bytes, list[tuple[str, str | bytes]]]] = {}
    for number, (request_size, reply_size, big_headers) in enumerate(calls):
        metadata: list[tuple[str, str | bytes]] = [("x-call", str(number))]
        extra: list[tuple[bytes, bytes]] = []
        if big_headers:  # over the frame size: CONTINUATION both ways
            metadata.append(("x-big", "m" * 20000))
            extra.append((b"x-big", b"r" * 20000))
        stream_id = client.open_stream(encoder.encode(METHOD, metadata, None))
        body = bytes([number]) * request_size
        to_send[stream_id] = memoryview(body)
        replies[stream_id] = (bytes([number + 100]) * reply_size, extra)
        expected[stream_id] = (body, metadata)
    received: dict[int, bytearray] = {stream_id: bytearray() for stream_id in to_send}
    trailers: dict[int, list[tuple[bytes, bytes]]] = {}
    for _ in range(5000):
        for stream_id, rest in list(to_send.items()):
            taken = client.send_data(stream_id, rest, end_stream=True)
            if taken == len(rest):
                del to_send[stream_id]
            else:
                to_send[stream_id] = rest[taken:]
        outgoing = client.data_to_send()
        if outgoing:
            peer.feed(outgoing, replies)
        else:
            peer.send_bodies()
        incoming = peer.conn.data_to_send()
        for start in range(0, len(incoming), chunk):
            for event in client.receive(incoming[start : start + chunk], 0.0):
                assert not isinstance(event, StreamReset), event
                if isinstance(event, Data):
                    received[event.stream_id] += event.data
                    client.ack(event.stream_id, event.flow_length)
                elif isinstance(event, Trailers):
                    trailers[event.stream_id] = event.headers
            while client.has_backlog:
                client.receive(b"", 0.0)
        if len(trailers) == len(calls) and not outgoing and not incoming:
            break
    else:
        raise AssertionError("the exchange did not finish")
    for stream_id, (body, metadata) in expected.items():
        assert peer.bodies[stream_id] == body
        assert peer.requests[stream_id] == _wire.request_headers(
            scheme="http", authority="h:1", path=METHOD, user_agent="t", metadata=metadata
        )
        assert received[stream_id] == replies[stream_id][0]
        assert trailers[stream_id] == [(b"grpc-status", b"0")]
    assert client.open_streams == 0


# --- the core against real gRPC servers, over a blocking socket ----------------------


class _Call:
    """One call driven by `_SocketDriver`: what it sent and what came back."""

    def __init__(self, stream_id: int, body: bytes) -> None:
        self.stream_id = stream_id
        self.rest: memoryview | None = memoryview(body)
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.data = bytearray()
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.done = False


class _SocketDriver:
    """The smallest possible driver: a blocking loopback socket, calls run to completion."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.client = ClientConnection()
        self.client.initiate()
        self.encoder = RequestHeaderEncoder(
            scheme="http", authority=f"127.0.0.1:{port}", user_agent="core-test"
        )
        self.flush()
        for _ in range(100):
            if self.client.settings_received:
                break
            self.pump({})
        assert self.client.settings_received

    def flush(self) -> None:
        data = self.client.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, calls: dict[int, _Call]) -> None:
        received = self.sock.recv(1 << 16)
        assert received, "the server closed the connection"
        events = self.client.receive(received, time.monotonic())
        while self.client.has_backlog:
            events += self.client.receive(b"", time.monotonic())
        for event in events:
            assert not isinstance(event, (StreamReset, GoAway)), event
            call = calls.get(getattr(event, "stream_id", 0))
            if isinstance(event, ResponseHeaders) and call is not None:
                call.headers = event.headers
                call.done = event.end_stream
            elif isinstance(event, Data) and call is not None:
                call.data += event.data
                call.done = event.end_stream
                self.client.ack(event.stream_id, event.flow_length)
            elif isinstance(event, Trailers) and call is not None:
                call.trailers = event.headers
                call.done = True
        self.send_bodies(calls)

    def send_bodies(self, calls: dict[int, _Call]) -> None:
        for call in calls.values():
            if call.rest is not None and (self.client.send_window(call.stream_id) or not call.rest):
                taken = self.client.send_data(call.stream_id, call.rest, end_stream=True)
                call.rest = call.rest[taken:] if taken < len(call.rest) else None
        self.flush()

    def run(self, requests: list[tuple[str, bytes, list[tuple[str, str | bytes]]]]) -> list[_Call]:
        calls: dict[int, _Call] = {}
        for name, message, metadata in requests:
            block = self.encoder.encode(f"/peer.Test/{name}", metadata, 10.0)
            stream_id = self.client.open_stream(block)
            calls[stream_id] = _Call(stream_id, _wire.encode_message(message))
        self.send_bodies(calls)
        for _ in range(10_000):
            if all(call.done for call in calls.values()):
                break
            self.pump(calls)
        assert all(call.done for call in calls.values())
        for call in calls.values():
            self.client.forget_stream(call.stream_id)
        return list(calls.values())

    def close(self) -> None:
        self.client.close()
        with contextlib.suppress(OSError):
            self.flush()
        self.sock.close()


def _messages(data: bytes | bytearray) -> list[bytes]:
    decoder = _wire.MessageDecoder(1 << 26)
    messages = decoder.feed(data)
    decoder.close()
    return messages


def test_core_against_real_servers(peer: Peer) -> None:
    """Concurrent calls through the core work against grpcio's and grpclib's servers.

    Large messages both ways need flow control in both directions (our WINDOW_UPDATEs
    for a 3 MiB reply past our 1 MiB stream window, the server's for a 2 MiB request).
    """
    driver = _SocketDriver(peer.port)
    try:
        big_request = bytes(range(256)) * 8192  # 2 MiB
        calls = driver.run(
            [
                ("Echo", b"hello", [("x-token", "abc"), ("x-raw-bin", b"\0\1\2")]),
                ("Echo", big_request, []),
                ("Big", b"3000000", []),
                ("Stream", b"4:300000", []),
                ("Fail", b"5:missing", []),
            ]
        )
        echo, big_echo, big, stream, fail = calls
        for call in (echo, big_echo, big, stream):
            assert call.headers is not None
            assert call.headers[0] == (b":status", b"200")
            assert call.trailers is not None
            assert (b"grpc-status", b"0") in call.trailers
        assert _messages(echo.data) == [b"hello"]
        assert _messages(big_echo.data) == [big_request]
        assert _messages(big.data) == [b"b" * 3_000_000]
        assert _messages(stream.data) == [stream_message(i, 300000) for i in range(4)]
        assert fail.headers is not None
        assert fail.trailers is None
        assert (b"grpc-status", b"5") in fail.headers
        # The connection stays usable for more calls; metadata arrives as sent.
        (again,) = driver.run([("Echo", b"again", [("x-token", "abc"), ("x-raw-bin", b"\0\1")])])
        assert _messages(again.data) == [b"again"]
        assert ("x-token", "abc") in peer.last_metadata
        assert ("x-raw-bin", b"\0\1") in peer.last_metadata
    finally:
        driver.close()


def test_core_benchmark_runs() -> None:
    """The core's micro-benchmark runs its exchanges (a smoke check, no timing asserted)."""
    from benchmarks import http2_core

    http2_core._ours(20)()
    http2_core._h2(5)()


def test_forget_stream() -> None:
    """Forgetting an ended stream sends nothing; forgetting a half-open one resets it."""
    client, server = _connected()
    ended, early = _open(client), _open(client, end_stream=False)
    client.data_to_send()
    client.receive(server.response(ended, b"ok"), 0.0)
    client.forget_stream(ended)
    assert client.data_to_send() == b""
    # The server answers before the request was sent whole.
    client.receive(
        server.headers(early, [(b":status", b"200"), (b"grpc-status", b"3")], end_stream=True), 0.0
    )
    client.forget_stream(early)
    assert _sent(client) == [Frame(frames.RST_STREAM, 0, early, b"\0\0\0\x08")]
    client.forget_stream(early)
    assert client.data_to_send() == b""
    assert client.open_streams == 0
