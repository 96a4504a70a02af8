"""The hostile scenarios and the one outcome each must have on every transport.

`SCENARIOS` is the table `docs/errors.md` shows ("Faults and what you get"); a test
checks that the page and this table agree, and `test_faults.py` runs every row on
every transport and backend, unary and streaming.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import h2.errors

from transports import (
    Cancelled,
    ConnectError,
    GrpcError,
    Internal,
    NotFound,
    PermissionDenied,
    ProtocolError,
    ResourceExhausted,
    Unavailable,
)

from .kit import GRPC_HEAD, OK_TRAILERS, FrameType, Request, frame, grpc_message

MiB = 1024 * 1024


@attrs.frozen
class Scenario:
    """One fault, how the kit produces it, and the documented outcome.

    Attributes:
        fault: The fault, as `docs/errors.md` names it.
        handler: The kit handler producing it.
        error: The error class every transport raises, or None for success.
        not_processed: The error's `not_processed` (the server provably did not
            process the call).
        server: Extra `HostileServer` options.
        late_reader: Only for streaming calls whose reader waits for the server's
            `"sent"` note before reading (flow control is only overrun for sure while
            the client grants nothing more; a unary call reads as data arrives).
    """

    fault: str
    handler: Callable[[Request], None]
    error: type[GrpcError] | None
    not_processed: bool = False
    server: Mapping[str, Any] = attrs.field(factory=dict)
    late_reader: bool = False

    def __str__(self) -> str:
        return self.fault

    @property
    def retried(self) -> str:
        """What the client does with it: retried always, if idempotent, or never."""
        if self.error is None:
            return "-"
        if self.error not in (Unavailable, ConnectError):
            return "no"
        return "yes, any call" if self.not_processed else "if idempotent (get, list)"


def _head(request: Request, block: list[tuple[bytes, bytes]], *, end: bool = False) -> None:
    request.link.headers(request.stream_id, block, end_stream=end)


def _message(request: Request, body: bytes) -> None:
    request.link.data(request.stream_id, grpc_message(body))


def _trailers(request: Request, block: list[tuple[bytes, bytes]]) -> None:
    request.link.headers(request.stream_id, block, end_stream=True)


def _ok(request: Request) -> None:
    request.answer(b"ok")


def _goaway_below(request: Request) -> None:
    request.link.goaway(last_stream_id=request.stream_id - 1)
    request.link.close()


def _goaway_at_then_close(request: Request) -> None:
    request.link.goaway(last_stream_id=request.stream_id)
    request.link.close()


def _goaway_at_then_answer(request: Request) -> None:
    request.link.goaway(last_stream_id=request.stream_id)
    request.answer(b"ok")


def _missing_status(request: Request) -> None:
    _head(request, [(b"content-type", b"application/grpc")])
    _message(request, b"x")
    _trailers(request, OK_TRAILERS)


def _duplicate_status(request: Request) -> None:
    _head(request, [(b":status", b"200"), *GRPC_HEAD])
    _message(request, b"x")
    _trailers(request, OK_TRAILERS)


def _no_content_type(request: Request) -> None:
    _head(request, [(b":status", b"200")])
    _message(request, b"x")
    _trailers(request, OK_TRAILERS)


def _missing_trailers(request: Request) -> None:
    _head(request, GRPC_HEAD)
    request.link.data(request.stream_id, grpc_message(b"x"), end_stream=True)


def _trailers_without_status(request: Request) -> None:
    _head(request, GRPC_HEAD)
    _message(request, b"x")
    _trailers(request, [(b"x-note", b"no status")])


def _invalid_status(request: Request) -> None:
    _head(request, GRPC_HEAD)
    _trailers(request, [(b"grpc-status", b"abc")])


def _duplicate_grpc_status(request: Request) -> None:
    _head(request, GRPC_HEAD)
    _trailers(request, [(b"grpc-status", b"0"), (b"grpc-status", b"5")])


def _bad_bin_trailer(request: Request) -> None:
    _head(request, GRPC_HEAD)
    _trailers(request, [(b"grpc-status", b"5"), (b"x-trace-bin", b"!!!not base64")])


def _bad_bin_trailer_ok(request: Request) -> None:
    _head(request, GRPC_HEAD)
    _message(request, b"x")
    _trailers(request, [(b"grpc-status", b"0"), (b"x-trace-bin", b"!!!not base64")])


def _bad_details_bin(request: Request) -> None:
    _head(request, GRPC_HEAD)
    _trailers(request, [(b"grpc-status", b"5"), (b"grpc-status-details-bin", b"!!!x")])


def _bad_bin_header(request: Request) -> None:
    _head(request, [*GRPC_HEAD, (b"x-trace-bin", b"%%%")])
    _message(request, b"x")
    _trailers(request, OK_TRAILERS)


def _http_502_html(request: Request) -> None:
    _head(request, [(b":status", b"502"), (b"content-type", b"text/html")])
    request.link.data(request.stream_id, b"<html><h1>502 Bad Gateway</h1></html>", end_stream=True)


def _reset(code: int) -> Callable[[Request], None]:
    def reset(request: Request) -> None:
        request.reset(code)

    return reset


def _close_mid_frame(request: Request) -> None:
    _head(request, GRPC_HEAD)
    whole = frame(FrameType.DATA, 0, request.stream_id, grpc_message(b"x" * 100))
    request.link.send(whole[:30])
    request.link.close()


def _close_mid_message(request: Request) -> None:
    _head(request, GRPC_HEAD)
    request.link.data(request.stream_id, grpc_message(b"x" * 100)[:50])
    request.link.close()


def _end_mid_message(request: Request) -> None:
    _head(request, GRPC_HEAD)
    request.link.data(request.stream_id, grpc_message(b"x" * 100)[:50])
    _trailers(request, OK_TRAILERS)


def _message_over_limit(request: Request) -> None:
    _head(request, GRPC_HEAD)
    _message(request, b"x" * (4 * MiB + 1))
    _trailers(request, OK_TRAILERS)


def _huge_length_prefix(request: Request) -> None:
    _head(request, GRPC_HEAD)
    request.link.data(request.stream_id, grpc_message(b"x", length=2**31))
    _trailers(request, OK_TRAILERS)


def _huge_header_block(request: Request) -> None:
    request.link.raw_headers(request.stream_id, [*GRPC_HEAD, (b"x-big", b"a" * MiB)])
    request.link.sleep(5)  # no more: the client must fail on the block alone


def _overrun(request: Request) -> None:
    # Past what both the stream's and the connection's windows allow, in one go.
    _head(request, GRPC_HEAD)
    window = request.link.h2.local_flow_control_window(request.stream_id)
    request.link.raw_data(request.stream_id, grpc_message(b"x" * (window + 64 * 1024)))
    request.link.server.note("sent")
    request.link.sleep(5)


def _flood(kind: str) -> Callable[[Request], None]:
    def flood(request: Request) -> None:
        _head(request, GRPC_HEAD)
        if kind == "PING":
            request.link.ping_flood(100_000)
        elif kind == "SETTINGS":
            request.link.settings_flood(100_000)
        else:
            request.link.empty_data_flood(request.stream_id, 100_000)
        request.link.sleep(5)

    return flood


_RESET_OUTCOMES: dict[int, type[GrpcError]] = {
    h2.errors.ErrorCodes.REFUSED_STREAM: Unavailable,
    h2.errors.ErrorCodes.CANCEL: Cancelled,
    h2.errors.ErrorCodes.ENHANCE_YOUR_CALM: ResourceExhausted,
    h2.errors.ErrorCodes.INADEQUATE_SECURITY: PermissionDenied,
}

SCENARIOS: list[Scenario] = [
    Scenario("a well-behaved answer", _ok, None),
    Scenario(
        "GOAWAY with the first SETTINGS (server shutting down)",
        _ok,
        Unavailable,
        not_processed=True,
        server={"goaway_with_settings": (0, 0)},
    ),
    Scenario("GOAWAY, last stream id below the call's", _goaway_below, Unavailable, True),
    Scenario(
        "GOAWAY including the call, then the connection closes", _goaway_at_then_close, ConnectError
    ),
    Scenario("GOAWAY including the call, which is then answered", _goaway_at_then_answer, None),
    Scenario("response headers without :status", _missing_status, ProtocolError),
    Scenario("response headers with :status twice", _duplicate_status, ProtocolError),
    Scenario("HTTP 200 without a gRPC content-type", _no_content_type, ProtocolError),
    Scenario("response ends without trailers", _missing_trailers, ProtocolError),
    Scenario("trailers without grpc-status", _trailers_without_status, ProtocolError),
    Scenario("grpc-status not a number", _invalid_status, ProtocolError),
    Scenario("grpc-status twice (0, then 5: the last counts)", _duplicate_grpc_status, NotFound),
    Scenario("bad base64 in a -bin trailer, status NOT_FOUND", _bad_bin_trailer, NotFound),
    Scenario("bad base64 in a -bin trailer, status OK", _bad_bin_trailer_ok, None),
    Scenario("bad base64 in grpc-status-details-bin", _bad_details_bin, NotFound),
    Scenario("bad base64 in a -bin response header", _bad_bin_header, None),
    Scenario("HTTP 502 with an HTML body", _http_502_html, Unavailable),
    *(
        Scenario(
            f"RST_STREAM {h2.errors.ErrorCodes(code).name}",
            _reset(code),
            _RESET_OUTCOMES.get(code, Internal),
            not_processed=code == h2.errors.ErrorCodes.REFUSED_STREAM,
        )
        for code in range(14)
    ),
    Scenario("connection closed mid-frame", _close_mid_frame, ConnectError),
    Scenario("connection closed mid-message", _close_mid_message, ConnectError),
    Scenario("response ends mid-message", _end_mid_message, ProtocolError),
    Scenario("message over the 4 MiB receive limit", _message_over_limit, ResourceExhausted),
    Scenario("length prefix of 2 GiB", _huge_length_prefix, ResourceExhausted),
    Scenario("header block of 1 MiB", _huge_header_block, ProtocolError),
    Scenario("DATA beyond the flow-control window", _overrun, ProtocolError, late_reader=True),
    Scenario("PING flood (100,000)", _flood("PING"), ProtocolError),
    Scenario("SETTINGS flood (100,000)", _flood("SETTINGS"), ProtocolError),
    Scenario("empty DATA flood (100,000)", _flood("DATA"), ProtocolError),
]
"""Every fault the kit scenario tests cover, in the order of `docs/errors.md`."""


def table_row(scenario: Scenario) -> str:
    """The scenario's row in `docs/errors.md`."""
    outcome = "success" if scenario.error is None else f"`{scenario.error.__name__}`"
    processed = "-" if scenario.error is None else str(scenario.not_processed)
    return f"| {scenario.fault} | {outcome} | {processed} | {scenario.retried} |"
