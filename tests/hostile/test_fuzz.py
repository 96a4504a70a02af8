"""Random and mutated frame sequences from the server: only our errors, nothing hangs.

Hypothesis draws what the kit's server answers a call with: header blocks good and
bad, messages whole and cut, trailers, resets, GOAWAYs, PINGs, SETTINGS, window
updates, random frames and raw garbage, then a close. Whatever it draws, the call must
end within its deadline, either successfully or with an error of the `transports` tree.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transports import GrpcError

from .conftest import TransportFactory
from .kit import GRPC_HEAD, FrameType, HostileServer, Request, frame, grpc_message

pytestmark = pytest.mark.anyio

Action = Callable[[Request], None]

_HEADER_BLOCKS = [
    GRPC_HEAD,
    [(b"content-type", b"application/grpc")],
    [(b":status", b"200")],
    [(b":status", b"502"), (b"content-type", b"text/html")],
    [(b":status", b"abc")],
    [(b":status", b"200"), *GRPC_HEAD],
    [*GRPC_HEAD, (b"x-bin", b"!!!")],
    [(b"grpc-status", b"0")],
    [(b"grpc-status", b"5"), (b"grpc-message", b"%zz")],
    [(b"grpc-status", b"x")],
    [(b"grpc-status", b"99"), (b"grpc-status-details-bin", b"@@")],
    [(b":path", b"/pushed")],
]


def _headers(block: list[tuple[bytes, bytes]], end: bool) -> Action:
    return lambda r: r.link.raw_headers(r.stream_id, block, end_stream=end)


def _message(size: int, cut: int | None, flag: int, end: bool) -> Action:
    def act(r: Request) -> None:
        body = grpc_message(b"m" * size)
        if flag:
            body = bytes([flag]) + body[1:]
        r.link.raw_data(r.stream_id, body[:cut] if cut is not None else body, end_stream=end)

    return act


def _frame(kind: int, flags: int, on_stream: bool, payload: bytes) -> Action:
    return lambda r: r.link.send(frame(kind, flags, r.stream_id if on_stream else 0, payload))


def _garbage(data: bytes) -> Action:
    return lambda r: r.link.send(data)


def _goaway(below: bool, code: int) -> Action:
    return lambda r: r.link.goaway(r.stream_id - 1 if below else r.stream_id, code)


_FRAME_KINDS = [
    FrameType.PING,
    FrameType.SETTINGS,
    FrameType.WINDOW_UPDATE,
    FrameType.PRIORITY,
    FrameType.PUSH_PROMISE,
    FrameType.CONTINUATION,
    FrameType.RST_STREAM,
    0x42,  # a frame type HTTP/2 does not define: to be ignored
]

_actions = st.one_of(
    st.builds(_headers, st.sampled_from(_HEADER_BLOCKS), st.booleans()),
    st.builds(
        _message,
        st.integers(0, 70_000),
        st.none() | st.integers(0, 40),
        st.sampled_from([0, 0, 0, 1, 0x80]),
        st.booleans(),
    ),
    st.builds(lambda code: lambda r: r.reset(code), st.integers(0, 15)),
    st.builds(_goaway, st.booleans(), st.integers(0, 13)),
    st.builds(
        _frame,
        st.sampled_from(_FRAME_KINDS),
        st.integers(0, 255),
        st.booleans(),
        st.binary(max_size=24),
    ),
    st.builds(
        lambda increment: (
            lambda r: r.link.send(
                frame(FrameType.WINDOW_UPDATE, 0, r.stream_id, struct.pack(">I", increment))
            )
        ),
        st.sampled_from([0, 1, 2**31 - 1]),
    ),
    st.builds(_garbage, st.binary(min_size=1, max_size=64)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(_actions, max_size=6), streaming=st.booleans(), close=st.booleans())
async def test_random_frames_raise_only_our_errors(
    actions: list[Action], streaming: bool, close: bool, make_transport: TransportFactory
) -> None:
    """Whatever frames the server sends, a call ends in time with success or our error."""

    def handle(request: Request) -> None:
        for action in actions:
            action(request)
        if close:
            request.link.close()

    with HostileServer(handle) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(10):
                try:
                    if streaming:
                        async with transport.server_stream(
                            "/fuzz.Test/Stream", b"", timeout=0.3
                        ) as responses:
                            async for _ in responses:
                                pass
                    else:
                        await transport.unary("/fuzz.Test/Unary", b"", timeout=0.3)
                except GrpcError:
                    pass
