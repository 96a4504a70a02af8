"""ReplayTransport: matching, order, repeats, recorded errors, pacing and bad files."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.lowlevel
import pytest

from transports import (
    Cancelled,
    CassetteError,
    ConnectError,
    DeadlineExceeded,
    Interaction,
    NotFound,
    ProtocolError,
    ReplayMismatch,
    ReplayTransport,
    TransportError,
    Unavailable,
    Unknown,
)
from transports._cassette import (
    Message,
    RecordedError,
    RecordedStatus,
    Response,
    new_header,
    write_cassette,
)

pytestmark = pytest.mark.anyio

GET = "/test.Service/Get"
LIST = "/test.Service/List"
OK = RecordedStatus(code=0)


def unary(request: bytes, response: bytes, *, method: str = GET, **extra: Any) -> Interaction:
    """A successful unary interaction."""
    return Interaction(
        method=method,
        kind="unary",
        started=0.0,
        request=Message(data=request, **extra),
        responses=(Response(data=response, at=0.001),),
        status=OK,
    )


def stream(request: bytes, responses: list[tuple[bytes, float]], **fields: Any) -> Interaction:
    """A streaming interaction; OK unless `status` or `error` is given."""
    fields.setdefault("status", OK)
    return Interaction(
        method=LIST,
        kind="server_stream",
        started=0.0,
        request=Message(data=request),
        responses=tuple(Response(data=data, at=at) for data, at in responses),
        **fields,
    )


def cassette(tmp_path: Path, *interactions: Interaction) -> Path:
    """Write the interactions to a new cassette and return its path."""
    path = tmp_path / "c.jsonl"
    write_cassette(path, new_header(), interactions)
    return path


class JsonRenderer:
    """Renders messages that are JSON text; anything else is unknown."""

    def render(
        self, method: str, direction: Literal["request", "response"], message: bytes
    ) -> tuple[str, Any] | None:
        """Return ("test.Json", the parsed JSON) or None."""
        try:
            return "test.Json", json.loads(message)
        except ValueError:
            return None


async def test_matches_method_and_request_bytes(tmp_path: Path) -> None:
    """Each call gets the recording with its method and exact request bytes."""
    path = cassette(tmp_path, unary(b"a", b"A"), unary(b"b", b"B"), unary(b"a", b"L", method=LIST))
    async with ReplayTransport(path) as replay:
        assert await replay.unary(GET, b"b") == b"B"
        assert await replay.unary(GET, b"a") == b"A"
        assert await replay.unary(LIST, b"a") == b"L"
        assert len(replay.interactions) == 3


async def test_plays_in_recorded_order_then_mismatches(tmp_path: Path) -> None:
    """Repeated calls take the recordings in order; one more than recorded is a mismatch."""
    path = cassette(tmp_path, unary(b"q", b"1"), unary(b"q", b"2"))
    async with ReplayTransport(path) as replay:
        assert await replay.unary(GET, b"q") == b"1"
        assert await replay.unary(GET, b"q") == b"2"
        with pytest.raises(ReplayMismatch, match="already replayed"):
            await replay.unary(GET, b"q")


async def test_allow_repeats_reuses_the_last_match(tmp_path: Path) -> None:
    """With allow_repeats, a call past the recorded ones reuses the last matching one."""
    path = cassette(tmp_path, unary(b"q", b"1"), unary(b"q", b"2"))
    async with ReplayTransport(path, allow_repeats=True) as replay:
        assert [await replay.unary(GET, b"q") for _ in range(4)] == [b"1", b"2", b"2", b"2"]


async def test_kind_must_match(tmp_path: Path) -> None:
    """A unary recording does not answer a streaming call of the same method and request."""
    path = cassette(tmp_path, unary(b"q", b"1"))
    async with ReplayTransport(path) as replay:
        with pytest.raises(ReplayMismatch, match=r"no recorded server_stream call.*another kind"):
            async with replay.server_stream(GET, b"q"):
                pass


async def test_match_ignore_compares_json_without_the_fields(tmp_path: Path) -> None:
    """match_ignore drops dotted fields (through lists) from both JSON renderings."""
    recorded = b'{"id": 1, "ts": "old", "items": [{"at": 1, "v": 2}]}'
    path = cassette(tmp_path, unary(recorded, b"R"))
    call = b'{"id": 1, "ts": "new", "items": [{"at": 9, "v": 2}]}'
    async with ReplayTransport(path, renderer=JsonRenderer()) as strict:
        with pytest.raises(ReplayMismatch):
            await strict.unary(GET, call)
    async with ReplayTransport(
        path, renderer=JsonRenderer(), match_ignore=["ts", "items.at"]
    ) as replay:
        assert await replay.unary(GET, call) == b"R"
    async with ReplayTransport(path, renderer=JsonRenderer(), match_ignore=["ts"]) as partial:
        with pytest.raises(ReplayMismatch):
            await partial.unary(GET, call)


async def test_match_ignore_uses_the_recorded_json(tmp_path: Path) -> None:
    """A recorded JSON rendering is compared as written, whatever the bytes re-render to."""
    path = cassette(tmp_path, unary(b"\x08\x01", b"R", type="test.Json", json={"id": 1, "ts": 5}))
    async with ReplayTransport(path, renderer=JsonRenderer(), match_ignore=["ts"]) as replay:
        assert await replay.unary(GET, b'{"id": 1, "ts": 6}') == b"R"


async def test_match_ignore_falls_back_to_bytes_for_unrendered_requests(tmp_path: Path) -> None:
    """A request the renderer cannot read still matches a recording with the same bytes."""
    path = cassette(tmp_path, unary(b"\x00binary", b"R"))
    async with ReplayTransport(path, renderer=JsonRenderer(), match_ignore=["ts"]) as replay:
        assert await replay.unary(GET, b"\x00binary") == b"R"
        with pytest.raises(ReplayMismatch):
            await replay.unary(GET, b"\x00other")


def test_match_ignore_needs_a_renderer(tmp_path: Path) -> None:
    """match_ignore without a renderer, or with an empty path, is a ValueError."""
    path = cassette(tmp_path)
    with pytest.raises(ValueError, match="renderer"):
        ReplayTransport(path, match_ignore=["ts"])
    with pytest.raises(ValueError, match="dotted"):
        ReplayTransport(path, renderer=JsonRenderer(), match_ignore=["a..b"])


async def test_mismatch_shows_a_json_diff_to_the_closest_request(tmp_path: Path) -> None:
    """The mismatch names the method and diffs the call against the most similar recording."""
    far = b'{"id": 1, "name": "zzz", "size": 100, "tags": ["x", "y"]}'
    near = b'{"id": 7, "name": "pump", "size": 3, "tags": ["a"]}'
    path = cassette(tmp_path, unary(far, b"1"), unary(near, b"2"))
    async with ReplayTransport(path, renderer=JsonRenderer()) as replay:
        with pytest.raises(ReplayMismatch) as info:
            await replay.unary(GET, b'{"id": 8, "name": "pump", "size": 3, "tags": ["a"]}')
    message = str(info.value)
    assert GET in message
    assert str(path) in message
    assert '-  "id": 7,' in message
    assert '+  "id": 8,' in message
    assert "zzz" not in message


async def test_mismatch_shows_hex_without_a_renderer(tmp_path: Path) -> None:
    """Without a rendering, the diff compares the request bytes as hex lines."""
    path = cassette(tmp_path, unary(b"\x01\x02\x03", b"1"))
    async with ReplayTransport(path) as replay:
        with pytest.raises(ReplayMismatch) as info:
            await replay.unary(GET, b"\x01\x02\x04")
    assert "-01 02 03" in str(info.value)
    assert "+01 02 04" in str(info.value)


async def test_mismatch_for_an_unrecorded_method_lists_what_is_recorded(tmp_path: Path) -> None:
    """A method with no recording says so and names the recorded methods."""
    path = cassette(tmp_path, unary(b"q", b"1"))
    async with ReplayTransport(path) as replay:
        with pytest.raises(ReplayMismatch, match="no recorded call of that method") as info:
            await replay.unary(LIST, b"q")
    assert f"{GET} (unary)" in str(info.value)


async def test_recorded_errors_come_back_typed(tmp_path: Path) -> None:
    """Status errors keep class, message, details and trailers; transport errors keep class."""
    trailers = (("x-why", "gone"), ("why-bin", b"\x00"))
    path = cassette(
        tmp_path,
        Interaction(
            method=GET,
            kind="unary",
            started=0,
            request=Message(data=b"nf"),
            status=RecordedStatus(code=5, message="no such thing", details=b"\x08\x05"),
            trailing_metadata=trailers,
        ),
        Interaction(
            method=GET,
            kind="unary",
            started=0,
            request=Message(data=b"net"),
            error=RecordedError(type="ConnectError", message="refused"),
        ),
        Interaction(
            method=GET,
            kind="unary",
            started=0,
            request=Message(data=b"proto"),
            error=RecordedError(type="ProtocolError", message="bad frame"),
        ),
        Interaction(
            method=GET,
            kind="unary",
            started=0,
            request=Message(data=b"other"),
            error=RecordedError(type="SomeFutureError", message="what"),
        ),
        Interaction(
            method=GET,
            kind="unary",
            started=0,
            request=Message(data=b"odd"),
            status=RecordedStatus(code=99, message="strange"),
        ),
        Interaction(
            method=GET,
            kind="unary",
            started=0,
            request=Message(data=b"left"),
            error=RecordedError(type="Cancelled", message="the caller left"),
        ),
    )
    async with ReplayTransport(path) as replay:
        with pytest.raises(NotFound) as info:
            await replay.unary(GET, b"nf")
        assert info.value.message == "no such thing"
        assert info.value.details == b"\x08\x05"
        assert info.value.trailing_metadata == trailers
        with pytest.raises(ConnectError, match="refused"):
            await replay.unary(GET, b"net")
        with pytest.raises(ProtocolError, match="bad frame"):
            await replay.unary(GET, b"proto")
        with pytest.raises(TransportError, match="what") as other:
            await replay.unary(GET, b"other")
        assert type(other.value) is TransportError
        with pytest.raises(Unknown, match="99"):
            await replay.unary(GET, b"odd")
        with pytest.raises(Cancelled, match="left by its caller"):
            await replay.unary(GET, b"left")


async def test_stream_yields_messages_then_its_error(tmp_path: Path) -> None:
    """A recorded stream yields its messages, then raises the error it ended with."""
    path = cassette(
        tmp_path,
        stream(b"ok", [(b"1", 0.0), (b"2", 0.1)]),
        stream(b"bad", [(b"1", 0.0)], status=RecordedStatus(code=14, message="bye")),
    )
    async with ReplayTransport(path) as replay:
        async with replay.server_stream(LIST, b"ok") as responses:
            assert [m async for m in responses] == [b"1", b"2"]
        got: list[bytes] = []

        async def read() -> None:
            async with replay.server_stream(LIST, b"bad") as responses:
                async for message in responses:
                    got.append(message)

        with pytest.raises(Unavailable, match="bye"):
            await read()
        assert got == [b"1"]


async def test_leaving_a_replayed_stream_early_is_fine(tmp_path: Path) -> None:
    """A caller may leave a replayed stream after any message."""
    path = cassette(tmp_path, stream(b"", [(b"1", 0.0), (b"2", 0.0), (b"3", 0.0)]))
    async with ReplayTransport(path) as replay, replay.server_stream(LIST, b"") as responses:
        async for message in responses:
            assert message == b"1"
            break


async def test_pace_sleeps_the_recorded_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pace=True the stream awaits anyio.sleep with each recorded gap; without, never."""
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    path = cassette(tmp_path, stream(b"", [(b"1", 0.5), (b"2", 0.75), (b"3", 2.0)]))
    replay = ReplayTransport(path, pace=True)
    async with replay, replay.server_stream(LIST, b"") as responses:
        assert [m async for m in responses] == [b"1", b"2", b"3"]
    assert slept == [0.25, 1.25]
    slept.clear()
    async with ReplayTransport(path) as replay, replay.server_stream(LIST, b"") as responses:
        assert [m async for m in responses] == [b"1", b"2", b"3"]
    assert slept == []


async def test_pacing_respects_the_call_timeout(tmp_path: Path) -> None:
    """A paced gap longer than the call's timeout ends the stream with DeadlineExceeded."""
    path = cassette(tmp_path, stream(b"", [(b"1", 0.0), (b"2", 3600.0)]))
    replay = ReplayTransport(path, pace=True)
    async with replay, replay.server_stream(LIST, b"", timeout=0.01) as responses:
        assert await anext(responses) == b"1"
        with pytest.raises(DeadlineExceeded, match="deadline"):
            await anext(responses)
        with pytest.raises(StopAsyncIteration):
            await anext(responses)


async def test_closed_transport_raises_cancelled(tmp_path: Path) -> None:
    """After aclose(), new calls and reads of open streams raise Cancelled."""
    path = cassette(tmp_path, unary(b"q", b"1"), stream(b"", [(b"1", 0.0), (b"2", 0.0)]))
    replay = ReplayTransport(path)
    async with replay.server_stream(LIST, b"") as responses:
        assert await anext(responses) == b"1"
        await replay.aclose()
        with pytest.raises(Cancelled):
            await anext(responses)
    with pytest.raises(Cancelled):
        await replay.unary(GET, b"q")


async def test_call_arguments_are_checked_first(tmp_path: Path) -> None:
    """Malformed calls raise ValueError or TypeError, not a mismatch."""
    path = cassette(tmp_path)
    async with ReplayTransport(path) as replay:
        with pytest.raises(ValueError, match="method"):
            await replay.unary("Get", b"")
        with pytest.raises(ValueError, match="timeout"):
            await replay.unary(GET, b"", timeout=-1)


async def test_a_recorded_session_of_another_writer_replays(tmp_path: Path) -> None:
    """A file written by hand (another language), with extra keys, replays."""
    header = {"format": "grpc-cassette", "version": 1, "created": "x", "library": "other 1.0"}
    line = {
        "method": GET,
        "kind": "unary",
        "started": 0,
        "request": {"base64": base64.b64encode(b"q").decode(), "type": None, "json": None},
        "metadata": [["x-a", "b"], ["x-b-bin", {"base64": "AA=="}]],
        "responses": [{"base64": base64.b64encode(b"r").decode(), "at": 0, "extra": 1}],
        "status": {"code": 0, "name": "OK", "message": "", "details": None},
        "trailing_metadata": [],
        "error": None,
        "duration": 0,
        "future_key": {"anything": True},
    }
    path = tmp_path / "hand.jsonl"
    path.write_text(json.dumps(header) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    async with ReplayTransport(path) as replay:
        assert await replay.unary(GET, b"q") == b"r"
    assert replay.interactions[0].metadata == (("x-a", "b"), ("x-b-bin", b"\x00"))


HEADER = json.dumps({"format": "grpc-cassette", "version": 1, "created": "x", "library": "y"})
GOOD = json.dumps(
    {
        "method": GET,
        "kind": "unary",
        "started": 0,
        "request": {"base64": "cQ==", "type": None, "json": None},
        "metadata": [],
        "responses": [{"base64": "cg==", "type": None, "json": None, "at": 0}],
        "status": {"code": 0, "name": "OK", "message": "", "details": None},
        "trailing_metadata": [],
        "error": None,
        "duration": 0,
    }
)


def _mutate(**changes: Any) -> str:
    line = json.loads(GOOD)
    for key, value in changes.items():
        if value is KeyError:
            del line[key]
        else:
            line[key] = value
    return json.dumps(line)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "empty file"),
        ('{"format": "vcr", "version": 1}\n', 1, "not a grpc-cassette file"),
        ("[1, 2]\n", 1, "not a grpc-cassette file"),
        ('{"format": "grpc-cassette", "version": 2}\n', 1, "newer than this library"),
        ('{"format": "grpc-cassette", "version": "1"}\n', 1, "bad version"),
        (f"{HEADER}\nnot json\n", 2, "not JSON"),
        (f"{HEADER}\n{GOOD}\n{GOOD[:40]}", 3, "truncated"),
        (f"{HEADER}\n\n{GOOD}\n", 2, "empty line"),
        (f"{HEADER}\n[]\n", 2, "must be a JSON object"),
        (f"{HEADER}\n{_mutate(method=KeyError)}\n", 2, "missing key method"),
        (f"{HEADER}\n{_mutate(kind='bidi')}\n", 2, "kind must be"),
        (f"{HEADER}\n{_mutate(started='soon')}\n", 2, "started must be a number"),
        (f"{HEADER}\n{_mutate(started=True)}\n", 2, "started must be a number"),
        (f"{HEADER}\n{_mutate(request={'base64': '***'})}\n", 2, "request.base64 is not valid"),
        (f"{HEADER}\n{_mutate(responses={})}\n", 2, "responses must be a list"),
        (f"{HEADER}\n{_mutate(responses=[])}\n", 2, "needs 1 response"),
        (f"{HEADER}\n{_mutate(metadata=[['a']])}\n", 2, "metadata[0] must be a [name, value]"),
        (f"{HEADER}\n{_mutate(status=None)}\n", 2, "status and error are both null"),
        (f"{HEADER}\n{_mutate(status={'code': 0})}\n", 2, "missing key status.message"),
        (f"{HEADER}\n{_mutate(error={'type': 1, 'message': ''})}\n", 2, "error.type must be"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    """Corrupt, truncated, foreign and future files raise CassetteError naming file:line."""
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CassetteError) as info:
        ReplayTransport(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert fragment in str(info.value)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported with their line."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(HEADER.encode() + b"\n\xff\n")
    with pytest.raises(CassetteError, match=r"bad\.jsonl:2: not UTF-8"):
        ReplayTransport(path)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    """A cassette that does not exist raises FileNotFoundError at construction."""
    with pytest.raises(FileNotFoundError):
        ReplayTransport(tmp_path / "nope.jsonl")
