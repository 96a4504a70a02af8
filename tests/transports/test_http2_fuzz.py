"""Fuzzing the HTTP/2 core's frame parser: whatever arrives, only events or ConnectionFailed."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transports._http2 import (
    ClientConnection,
    ConnectionFailed,
    Data,
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
from .frames import Server, parse_frames

_EVENTS = (
    ResponseHeaders,
    Trailers,
    Data,
    StreamReset,
    WindowUpdated,
    SettingsChanged,
    PingAcked,
    GoAway,
)
_FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _client() -> ClientConnection:
    """A client that received a valid server preface and opened three streams."""
    client = ClientConnection(stream_window=70000, connection_window=200000)
    client.initiate()
    client.receive(frames.settings([(4, 100), (5, 16384)]) + frames.settings_ack(), 0.0)
    encoder = RequestHeaderEncoder(scheme="http", authority="h:1", user_agent="fuzz")
    for _ in range(3):
        client.open_stream(encoder.encode("/s/m", [("key", "k")], 1.0), end_stream=False)
    client.data_to_send()
    return client


def _check(client: ClientConnection, events: list[object]) -> None:
    """Events are of the core's types; the driver acks DATA and sends, as a real one would."""
    for event in events:
        assert isinstance(event, _EVENTS)
        if isinstance(event, Data):
            client.ack(event.stream_id, event.flow_length)
    if client.send_window(3):
        client.send_data(3, b"x", end_stream=False)


def _feed(client: ClientConnection, chunks: list[bytes]) -> None:
    """Feed chunks, working off backlogs in a bounded loop; check the outcome's shape."""
    now = 0.0
    total = sum(len(chunk) for chunk in chunks)
    failure: ConnectionFailed | None = None
    try:
        for chunk in chunks:
            now += 0.001
            _check(client, list(client.receive(chunk, now)))
            # Every round processes at least one frame of >= 9 bytes, so this bounds it.
            for _ in range(total // 9 + 2):
                if not client.has_backlog:
                    break
                _check(client, list(client.receive(b"", now)))
            assert not client.has_backlog, "the backlog never drained"
    except ConnectionFailed as exc:
        failure = exc
    if failure is not None:
        sent = parse_frames(client.data_to_send())
        assert any(f.kind == frames.GOAWAY for f in sent), "no GOAWAY queued"
        assert not client.has_backlog
        assert client.closed
    # Whatever happened, the state is still usable for sending what is queued.
    parse_frames(client.data_to_send())
    client.ping(b"\0" * 8)
    assert client.data_to_send()


@st.composite
def _chunked(draw: st.DrawFn, wire: bytes) -> list[bytes]:
    """Cut `wire` at random places."""
    cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    pieces = []
    start = 0
    for cut in cuts:
        pieces.append(wire[start:cut])
        start = cut
    pieces.append(wire[start:])
    return pieces


@_FUZZ
@given(data=st.data(), wire=st.binary(max_size=600))
def test_arbitrary_bytes(data: st.DataObject, wire: bytes) -> None:
    """Arbitrary bytes after a valid preface give only events or ConnectionFailed."""
    _feed(_client(), data.draw(_chunked(wire)))


def _valid_frame(server: Server) -> st.SearchStrategy[bytes]:
    stream = st.sampled_from([1, 3, 5, 7, 2, 0])
    small = st.binary(max_size=40)
    return st.one_of(
        st.builds(lambda s: server.headers(s), stream),
        st.builds(lambda s: server.trailers(s), stream),
        st.builds(lambda s, p, e: frames.data(s, p, end_stream=e), stream, small, st.booleans()),
        st.builds(lambda s, p, n: frames.data(s, p, pad=n), stream, small, st.integers(0, 20)),
        st.builds(lambda s, c: frames.rst_stream(s, c), stream, st.integers(0, 15)),
        st.builds(lambda s, n: frames.window_update(s, n), stream, st.integers(0, 2**31 - 1)),
        st.builds(
            lambda p, a: frames.ping(p, ack=a), st.binary(min_size=8, max_size=8), st.booleans()
        ),
        st.builds(lambda n, c: frames.goaway(n, c, b"dbg"), st.integers(0, 9), st.integers(0, 15)),
        st.builds(
            lambda pairs: frames.settings(pairs),
            st.lists(st.tuples(st.integers(0, 9), st.integers(0, 2**32 - 1)), max_size=4),
        ),
        st.builds(lambda s: frames.priority(s), stream),
        st.builds(
            lambda s, p, f: frames.frame(frames.CONTINUATION, f, s, p),
            stream,
            small,
            st.sampled_from([0, frames.END_HEADERS]),
        ),
        st.builds(lambda k, p: frames.frame(k, 0, 1, p), st.integers(10, 255), small),
    )


@_FUZZ
@given(data=st.data())
def test_mutated_valid_frames(data: st.DataObject) -> None:
    """Valid frame sequences with bytes changed, cut anywhere, give events or ConnectionFailed."""
    server = Server()
    wire = bytearray(b"".join(data.draw(st.lists(_valid_frame(server), max_size=15))))
    if wire:
        for _ in range(data.draw(st.integers(0, 4))):
            position = data.draw(st.integers(0, len(wire) - 1))
            wire[position] = data.draw(st.integers(0, 255))
    _feed(_client(), data.draw(_chunked(bytes(wire))))


@_FUZZ
@given(data=st.data())
def test_valid_frames(data: st.DataObject) -> None:
    """Valid frames in any order and chunking give events or ConnectionFailed."""
    server = Server()
    wire = b"".join(data.draw(st.lists(_valid_frame(server), max_size=25)))
    _feed(_client(), data.draw(_chunked(wire)))


@_FUZZ
@given(data=st.data(), wire=st.binary(max_size=200))
def test_arbitrary_first_bytes(data: st.DataObject, wire: bytes) -> None:
    """Arbitrary bytes as the server's very first bytes give only events or ConnectionFailed."""
    client = ClientConnection()
    client.initiate()
    client.data_to_send()
    _feed(
        client,
        data.draw(_chunked(frames.settings()[:3] + wire if data.draw(st.booleans()) else wire)),
    )
