"""Memory: receiving a 16 MiB message costs at most 1.5 times its size, on every transport."""

from __future__ import annotations

import gc
import tracemalloc

import anyio
import pytest

from .conftest import TransportFactory
from .kit import GRPC_HEAD, OK_TRAILERS, HostileServer, Request, grpc_message

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
_SIZE = 16 * MiB
# Framed once, before measuring: the kit's server runs in this process, and its
# sending must cost little next to the message (it sends 16 KiB slices of this).
_FRAMED = grpc_message(b"m" * _SIZE)


def _answer_big(request: Request) -> None:
    if request.message == b"small":
        request.answer(b"ok")
        return
    request.link.headers(request.stream_id, GRPC_HEAD)
    request.link.data(request.stream_id, _FRAMED)
    request.link.headers(request.stream_id, OK_TRAILERS, end_stream=True)


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_a_16_mib_message_peaks_below_one_and_a_half_times_its_size(
    streaming: bool, make_transport: TransportFactory
) -> None:
    """The peak of traced memory while a 16 MiB message arrives stays under 1.5 x 16 MiB.

    The transports used to hold the message two or three times over (chunks, a joined
    buffer, a copy of it); now it is written into place as it arrives.
    """
    with HostileServer(_answer_big) as server:
        async with make_transport(server.url, max_receive_message_length=32 * MiB) as transport:
            with anyio.fail_after(60):
                # The connection and its buffers exist before measuring.
                await transport.unary("/hostile.Test/Unary", b"small")
                gc.collect()
                tracemalloc.start()
                try:
                    baseline = tracemalloc.get_traced_memory()[0]
                    size = 0
                    if streaming:
                        async with transport.server_stream("/hostile.Test/Big", b"") as responses:
                            async for message in responses:
                                size += len(message)
                                del message
                    else:
                        size = len(await transport.unary("/hostile.Test/Big", b""))
                    peak = tracemalloc.get_traced_memory()[1]
                finally:
                    tracemalloc.stop()
    assert size == _SIZE
    assert peak - baseline <= 1.5 * _SIZE, f"peak {(peak - baseline) / _SIZE:.2f} x the message"
