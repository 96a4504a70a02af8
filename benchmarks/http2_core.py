"""The HTTP/2 client core alone: per-call cost of one unary exchange, no I/O, no event loop.

    python -m benchmarks.http2_core [--calls N] [--runs N]

One call is what a driver asks of the core for a unary gRPC call: `open_request` (the
request header block from the connection's block cache, see `_hpack.RequestTable`),
`send_data` with END_STREAM, `data_to_send`, then `receive` the server's
HEADERS + DATA + trailers in one read (the header blocks are repeated, so the decode
cache answers), `ack` the DATA and `forget_stream`. The server's bytes are prepared
before timing. For scale, the same exchange through `h2`'s client connection (what
`H2Transport` used before) is timed beside it.

Not part of `just bench`: it isolates the sans-IO layer, so its numbers say what the
core costs per call, not what a call costs end to end.
"""

from __future__ import annotations

import argparse
import gc
import struct
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import hpack

from transports import _wire
from transports._http2 import ClientConnection, Data, RequestHeaderEncoder

_METHOD = "/frequenz.api.dispatch.v1.MicrogridDispatchService/GetMicrogridDispatch"
_METADATA = (("key", "0123456789abcdef0123456789abcdef"),)
_REQUEST = _wire.encode_message(b"\x08\x01\x10\x02")
_REPLY = _wire.encode_message(b"\x0a\x20" + b"r" * 32)
_HEAD = struct.Struct(">IBI")


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return _HEAD.pack(len(payload) << 8 | kind, flags, stream_id) + payload


def _responses(count: int) -> list[bytes]:
    """The server's answer to each of `count` calls (stream 1, 3, 5, ...), in order."""
    encoder = hpack.Encoder()
    answers = []
    for index in range(count):
        stream_id = 2 * index + 1
        head = encoder.encode([(b":status", b"200"), (b"content-type", b"application/grpc")])
        trailers = encoder.encode([(b"grpc-status", b"0"), (b"grpc-message", b"")])
        answers.append(
            _frame(0x1, 0x4, stream_id, head)
            + _frame(0x0, 0x0, stream_id, _REPLY)
            + _frame(0x1, 0x5, stream_id, trailers)
        )
    return answers


def _settings() -> bytes:
    return _frame(0x4, 0, 0, b"") + _frame(0x4, 0x1, 0, b"")


def _ours(calls: int) -> Callable[[], None]:
    client = ClientConnection()
    client.initiate()
    client.receive(_settings(), 0.0)
    client.data_to_send()
    encoder = RequestHeaderEncoder(scheme="http", authority="127.0.0.1:50051", user_agent="b/1")
    answers = _responses(calls)

    def run() -> None:
        received = 0
        for answer in answers:
            stream_id = client.open_request(encoder, _METHOD, _METADATA, 10.0)
            client.send_data(stream_id, _REQUEST, end_stream=True)
            client.data_to_send()
            for event in client.receive(answer, 1.0):
                if type(event) is Data:
                    received += len(event.data)
                    client.ack(stream_id, event.flow_length)
            client.forget_stream(stream_id)
        # A benchmark that silently stopped doing its work would look fast.
        if received != len(answers) * len(_REPLY) or client.open_streams:
            raise RuntimeError("the exchanges did not complete")

    return run


def _h2(calls: int) -> Callable[[], None]:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    client.receive_data(_settings())
    client.data_to_send()
    answers = _responses(calls)

    def run() -> None:
        received = 0
        for answer in answers:
            stream_id = client.get_next_available_stream_id()
            headers = _wire.request_headers(
                scheme="http",
                authority="127.0.0.1:50051",
                path=_METHOD,
                user_agent="b/1",
                timeout=10.0,
                metadata=_METADATA,
            )
            client.send_headers(stream_id, headers)
            client.send_data(stream_id, _REQUEST, end_stream=True)
            client.data_to_send()
            for event in client.receive_data(answer):
                if isinstance(event, h2.events.DataReceived):
                    received += len(event.data or b"")
                    client.acknowledge_received_data(event.flow_controlled_length, stream_id)
            client.data_to_send()
        if received != len(answers) * len(_REPLY):
            raise RuntimeError("the exchanges did not complete")

    return run


def _best(make: Callable[[int], Callable[[], None]], calls: int, runs: int) -> float:
    """Best µs per call over `runs` fresh connections of `calls` calls each."""
    best = float("inf")
    for _ in range(runs):
        run = make(calls)
        gc.collect()
        start = time.perf_counter_ns()
        run()
        elapsed = time.perf_counter_ns() - start
        best = min(best, elapsed / calls / 1000)
    return best


def main() -> None:
    """Print µs per unary exchange for our core and for h2."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per connection")
    parser.add_argument("--runs", type=int, default=5, help="connections (best one counts)")
    args = parser.parse_args()
    ours = _best(_ours, args.calls, args.runs)
    theirs = _best(_h2, args.calls, args.runs)
    print(f"{'our HTTP/2 core':<22}{ours:>8.2f} µs per unary exchange")
    print(f"{'h2 (before)':<22}{theirs:>8.2f} µs per unary exchange  ({theirs / ours:.1f}x ours)")


if __name__ == "__main__":
    main()
