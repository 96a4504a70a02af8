"""The sans-IO HTTP/2 client core: real exchanges with h2 as the server, frame-level rules."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events

from transports import _wire
from transports._http2 import (
    ClientConnection,
    Data,
    Event,
    RequestHeaderEncoder,
    ResponseHeaders,
    SettingsChanged,
    Trailers,
)

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
