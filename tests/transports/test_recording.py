"""RecordingTransport: calls pass through unchanged and are recorded, line by line, atomically."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.lowlevel
import attrs
import pytest

from transports import (
    ConnectError,
    GrpcError,
    Interaction,
    MemoryTransport,
    NotFound,
    ReplayMismatch,
    ReplayTransport,
    RpcError,
    SecretInCassette,
    Transport,
    Unavailable,
)
from transports import RecordingTransport as Recorder
from transports._cassette import Message, RecordedStatus, new_header, read_cassette, write_cassette

from .conftest import TransportFactory
from .peers import Peer, method

pytestmark = pytest.mark.anyio

ECHO = "/test.Service/Echo"
FAIL = "/test.Service/Fail"
DOWN = "/test.Service/Down"
LIST = "/test.Service/List"
BROKEN = "/test.Service/Broken"
ENDLESS = "/test.Service/Endless"
Pairs = tuple[tuple[str, str | bytes], ...]


def handler(method: str, request: bytes, metadata: Pairs) -> Any:
    """Answer each test method: echo, a status error, a transport error, or streams."""
    if method == ECHO:
        return b"echo:" + request
    if method == FAIL:
        raise NotFound("no such thing", b"\x08\x05", (("x-why", "gone"), ("why-bin", b"\x00\xff")))
    if method == DOWN:
        raise ConnectError("connection refused")
    if method == LIST:
        return [b"one", b"two", b"three"]
    if method == BROKEN:

        async def broken() -> AsyncIterator[bytes]:
            yield b"first"
            raise Unavailable("going away")

        return broken()
    if method == ENDLESS:

        async def endless() -> AsyncIterator[bytes]:
            n = 0
            while True:
                n += 1
                yield str(n).encode()

        return endless()
    raise AssertionError(method)


def outcome(error: GrpcError) -> tuple[Any, ...]:
    """What a caller can see of an error."""
    if isinstance(error, RpcError):
        return (type(error).__name__, error.message, error.details, error.trailing_metadata)
    return (type(error).__name__, str(error))


async def session(transport: Transport) -> list[Any]:
    """Make one call of every kind and return what the caller saw of each."""
    seen: list[Any] = [await transport.unary(ECHO, b"hi", metadata=(("x-user", "ada"),))]
    for path in (FAIL, DOWN):
        try:
            await transport.unary(path, b"?")
        except GrpcError as exc:
            seen.append(outcome(exc))
    async with transport.server_stream(LIST, b"all") as responses:
        seen.append([message async for message in responses])
    got: list[bytes] = []
    try:
        async with transport.server_stream(BROKEN, b"") as responses:
            async for message in responses:
                got.append(message)
    except GrpcError as exc:
        seen.append((got, outcome(exc)))
    async with transport.server_stream(ENDLESS, b"") as responses:
        got = []
        async for message in responses:
            got.append(message)
            if len(got) == 2:
                break
        seen.append(got)
    return seen


async def test_round_trip_of_every_kind(tmp_path: Path) -> None:
    """A recorded session behaves like the real one, and replays the same from the file."""
    path = tmp_path / "session.jsonl"
    direct = await session(MemoryTransport(handler))
    async with Recorder(MemoryTransport(handler), path, mode="all") as recorder:
        assert await session(recorder) == direct
    async with ReplayTransport(path) as replay:
        assert await session(replay) == direct
    async with Recorder(None, path, mode="none") as replaying:
        assert await session(replaying) == direct


async def test_lines_follow_the_format(tmp_path: Path) -> None:
    """Each kind of call is written as the contract says: status, error, responses, timing."""
    path = tmp_path / "session.jsonl"
    async with Recorder(MemoryTransport(handler), path, mode="all") as recorder:
        await session(recorder)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(list(line) == sorted(line) for line in lines)
    header, echo, fail, down, listed, broken, left = lines
    assert header["format"] == "grpc-cassette"
    assert header["version"] == 1
    assert header["created"].endswith("Z")
    assert header["library"].startswith("dispatch-client")
    assert echo["kind"] == "unary"
    assert echo["request"] == {
        "base64": base64.b64encode(b"hi").decode(),
        "type": None,
        "json": None,
    }
    assert echo["metadata"] == [["x-user", "ada"]]
    assert [r["base64"] for r in echo["responses"]] == [base64.b64encode(b"echo:hi").decode()]
    assert echo["status"] == {"code": 0, "name": "OK", "message": "", "details": None}
    assert echo["error"] is None
    assert fail["status"] == {
        "code": 5,
        "name": "NOT_FOUND",
        "message": "no such thing",
        "details": base64.b64encode(b"\x08\x05").decode(),
    }
    assert fail["trailing_metadata"] == [["x-why", "gone"], ["why-bin", {"base64": "AP8="}]]
    assert down["status"] is None
    assert down["error"] == {"type": "ConnectError", "message": "connection refused"}
    assert listed["kind"] == "server_stream"
    assert len(listed["responses"]) == 3
    assert broken["status"]["name"] == "UNAVAILABLE"
    assert len(broken["responses"]) == 1
    assert left["status"] is None
    assert left["error"] == {"type": "Cancelled", "message": "the caller left"}
    assert len(left["responses"]) == 2
    starts = [line["started"] for line in lines[1:]]
    assert starts == sorted(starts)
    for line in lines[1:]:
        assert line["duration"] >= 0
        ats = [response["at"] for response in line["responses"]]
        assert ats == sorted(ats)


async def test_unary_cancelled_by_its_caller_is_recorded_as_left(tmp_path: Path) -> None:
    """A unary call whose caller is cancelled is written with error Cancelled and no status."""
    started = anyio.Event()

    async def hang(method: str, request: bytes, metadata: Pairs) -> bytes:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    path = tmp_path / "c.jsonl"
    recorder = Recorder(MemoryTransport(hang), path, mode="all")
    async with recorder, anyio.create_task_group() as tg:
        tg.start_soon(recorder.unary, ECHO, b"")
        await started.wait()
        tg.cancel_scope.cancel()
    (interaction,) = read_cassette(path).interactions
    assert interaction.abandoned
    assert interaction.status is None


class Counting:
    """A handler that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, method: str, request: bytes, metadata: Pairs) -> Any:
        self.calls += 1
        return handler(method, request, metadata)


async def test_mode_once_records_a_missing_file_then_only_replays(tmp_path: Path) -> None:
    """`once` records when the file is missing; with the file, it replays and never calls inner."""
    path = tmp_path / "once.jsonl"
    first = Counting()
    async with Recorder(MemoryTransport(first), path, mode="once") as recorder:
        assert recorder.recording
        assert await recorder.unary(ECHO, b"a") == b"echo:a"
    assert first.calls == 1
    second = Counting()
    async with Recorder(MemoryTransport(second), path, mode="once") as recorder:
        assert not recorder.recording
        assert await recorder.unary(ECHO, b"a") == b"echo:a"
        with pytest.raises(ReplayMismatch, match="Echo"):
            await recorder.unary(ECHO, b"new")
    assert second.calls == 0


async def test_mode_once_without_calls_leaves_an_empty_cassette(tmp_path: Path) -> None:
    """A `once` session with no call still writes the header, so the next run replays."""
    path = tmp_path / "empty.jsonl"
    async with Recorder(MemoryTransport(handler), path, mode="once"):
        pass
    assert read_cassette(path).interactions == ()
    async with Recorder(MemoryTransport(handler), path, mode="once") as recorder:
        assert not recorder.recording


async def test_mode_none_only_replays(tmp_path: Path) -> None:
    """`none` never calls inner; a missing file makes every call a mismatch that says so."""
    path = tmp_path / "missing.jsonl"
    async with Recorder(None, path, mode="none") as recorder:
        with pytest.raises(ReplayMismatch, match="does not exist") as info:
            await recorder.unary(ECHO, b"a")
        assert "records no calls" in str(info.value)
    assert not path.exists()


async def test_mode_new_episodes_replays_known_calls_and_appends_new_ones(tmp_path: Path) -> None:
    """`new_episodes` replays what matches, sends the rest to inner and appends it."""
    path = tmp_path / "episodes.jsonl"
    async with Recorder(MemoryTransport(handler), path, mode="all") as recorder:
        await recorder.unary(ECHO, b"old")
    counting = Counting()
    async with Recorder(MemoryTransport(counting), path, mode="new_episodes") as recorder:
        assert await recorder.unary(ECHO, b"old") == b"echo:old"
        assert counting.calls == 0
        assert await recorder.unary(ECHO, b"new") == b"echo:new"
        assert counting.calls == 1
    requests = [i.request.data for i in read_cassette(path).interactions]
    assert requests == [b"old", b"new"]


async def test_mode_all_overwrites(tmp_path: Path) -> None:
    """`all` sends every call to inner and replaces what the file held."""
    path = tmp_path / "all.jsonl"
    for request in (b"first", b"second"):
        counting = Counting()
        async with Recorder(MemoryTransport(counting), path, mode="all") as recorder:
            await recorder.unary(ECHO, request)
        assert counting.calls == 1
    assert [i.request.data for i in read_cassette(path).interactions] == [b"second"]


@pytest.mark.parametrize(("ci", "expected"), [("true", "none"), ("", "once"), (None, "once")])
def test_default_mode_follows_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str | None, expected: str
) -> None:
    """Without a mode, a non-empty CI variable means `none`, anything else `once`."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    recorder = Recorder(MemoryTransport(handler), tmp_path / "x.jsonl")
    assert recorder.mode == expected


def test_bad_arguments_fail_at_construction(tmp_path: Path) -> None:
    """Unknown modes, a missing inner for recording, and wrong types raise before any call."""
    path = tmp_path / "x.jsonl"
    with pytest.raises(ValueError, match="mode"):
        Recorder(MemoryTransport(handler), path, mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="inner transport"):
        Recorder(None, path, mode="all")
    with pytest.raises(TypeError, match="transport"):
        Recorder(object(), path, mode="all")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="renderer"):
        Recorder(MemoryTransport(handler), path, mode="all", match_ignore=["a"])
    with pytest.raises(TypeError, match="scrub"):
        Recorder(MemoryTransport(handler), path, mode="all", scrub=1)  # type: ignore[arg-type]


async def test_call_checks_come_first(tmp_path: Path) -> None:
    """A malformed call raises ValueError/TypeError before inner or the cassette sees it."""
    counting = Counting()
    path = tmp_path / "x.jsonl"
    async with Recorder(MemoryTransport(counting), path, mode="all") as recorder:
        with pytest.raises(ValueError, match="method"):
            await recorder.unary("Echo", b"")
        with pytest.raises(TypeError, match="request"):
            async with recorder.server_stream(LIST, "text"):  # type: ignore[arg-type]
                pass
    assert counting.calls == 0
    assert read_cassette(path).interactions == ()


class Owned(MemoryTransport):
    """A memory transport that records how it is entered and left."""

    def __init__(self) -> None:
        super().__init__(handler)
        self.events: list[str] = []

    async def __aenter__(self) -> Owned:
        self.events.append("enter")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.events.append("exit")
        await self.aclose()


async def test_the_recorder_is_a_transport_that_owns_inner(tmp_path: Path) -> None:
    """The recorder satisfies Transport, enters inner with itself and leaves it with itself."""
    inner = Owned()
    recorder = Recorder(inner, tmp_path / "x.jsonl", mode="all")
    assert isinstance(recorder, Transport)
    assert isinstance(ReplayTransport(_empty(tmp_path)), Transport)
    async with recorder:
        assert inner.events == ["enter"]
    assert inner.events == ["enter", "exit"]
    with pytest.raises(GrpcError, match="closed"):
        await inner.unary(ECHO, b"")


def _empty(tmp_path: Path) -> Path:
    """Write an empty cassette and return its path."""
    path = tmp_path / "empty.jsonl"
    write_cassette(path, new_header(), [])
    return path


async def test_closed_transport_refuses_calls(tmp_path: Path) -> None:
    """After aclose(), calls raise Cancelled."""
    recorder = Recorder(MemoryTransport(handler), tmp_path / "x.jsonl", mode="all")
    await recorder.aclose()
    await recorder.aclose()
    with pytest.raises(GrpcError, match="closed"):
        await recorder.unary(ECHO, b"")


async def test_default_and_extra_metadata_names_are_redacted(tmp_path: Path) -> None:
    """key, sig, nonce, ts, authorization and the extra names (any case) are never written."""
    path = tmp_path / "r.jsonl"
    metadata: Pairs = (
        ("key", "k-123"),
        ("sig", "s-123"),
        ("nonce", "n-123"),
        ("ts", "1700000000"),
        ("authorization", "Bearer t-123"),
        ("x-team", "blue-123"),
        ("x-keep", "visible"),
        ("x-token-bin", b"\x01\x02"),
    )
    async with Recorder(
        MemoryTransport(handler), path, mode="all", redact=["X-Team", "x-token-bin"]
    ) as recorder:
        await recorder.unary(ECHO, b"", metadata=metadata)
    text = path.read_text(encoding="utf-8")
    assert "123" not in text
    assert "AQI=" not in text
    (interaction,) = read_cassette(path).interactions
    assert dict(interaction.metadata) == {
        "key": "REDACTED",
        "sig": "REDACTED",
        "nonce": "REDACTED",
        "ts": "REDACTED",
        "authorization": "REDACTED",
        "x-team": "REDACTED",
        "x-keep": "visible",
        "x-token-bin": "REDACTED",
    }


SECRET = "s3cr3t-v@lue?"


@pytest.mark.parametrize(
    ("where", "form"),
    [
        ("metadata", SECRET),
        ("metadata", base64.b64encode(SECRET.encode()).decode()),
        ("metadata", base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("=")),
        ("body", SECRET),
        ("body", "prefix " + SECRET + " suffix"),
        ("body", base64.urlsafe_b64encode(SECRET.encode()).decode()),
    ],
)
async def test_secrets_are_never_written(tmp_path: Path, where: str, form: str) -> None:
    """A secret in any form, in metadata or inside a body, stops the write with SecretInCassette."""
    path = tmp_path / "s.jsonl"
    async with Recorder(MemoryTransport(handler), path, mode="all", secrets=[SECRET]) as recorder:
        await recorder.unary(ECHO, b"clean")
        before = path.read_bytes()
        metadata: Pairs = (("x-note", form),) if where == "metadata" else ()
        body = form.encode() if where == "body" else b"clean"
        with pytest.raises(SecretInCassette) as info:
            await recorder.unary(ECHO, body, metadata=metadata)
        message = str(info.value)
        assert SECRET not in message
        assert form not in message
        assert "secret #1" in message
        assert ("metadata 'x-note'" if where == "metadata" else "request body") in message
        assert path.read_bytes() == before
        # The refused interaction stays out of later writes too.
        await recorder.unary(ECHO, b"later")
    assert [i.request.data for i in read_cassette(path).interactions] == [b"clean", b"later"]


async def test_old_recordings_are_checked_before_being_written_again(tmp_path: Path) -> None:
    """In new_episodes, a secret in a recording read back stops the write and names its line."""
    path = tmp_path / "s.jsonl"
    async with Recorder(MemoryTransport(handler), path, mode="all") as recorder:
        await recorder.unary(ECHO, SECRET.encode())
    before = path.read_bytes()
    async with Recorder(
        MemoryTransport(handler), path, mode="new_episodes", secrets=[SECRET]
    ) as recorder:
        with pytest.raises(SecretInCassette, match=r"on line 2 of .*s\.jsonl \(/test"):
            await recorder.unary(ECHO, b"new")
    assert path.read_bytes() == before


async def test_redacted_secret_is_fine(tmp_path: Path) -> None:
    """A secret sent only under a redacted name does not stop the recording."""
    path = tmp_path / "s.jsonl"
    async with Recorder(
        MemoryTransport(handler), path, mode="all", secrets=[SECRET, b""]
    ) as recorder:
        await recorder.unary(ECHO, b"x", metadata=(("key", SECRET),))
    assert SECRET not in path.read_text(encoding="utf-8")


async def test_scrub_hook_rewrites_what_is_written(tmp_path: Path) -> None:
    """The scrub hook sees the redacted interaction and its result is what gets written."""
    seen: list[Interaction] = []

    def scrub(interaction: Interaction) -> Interaction:
        seen.append(interaction)
        responses = tuple(attrs.evolve(r, data=b"echo:scrubbed") for r in interaction.responses)
        return attrs.evolve(interaction, request=Message(data=b"scrubbed"), responses=responses)

    path = tmp_path / "s.jsonl"
    async with Recorder(
        MemoryTransport(handler), path, mode="all", scrub=scrub, secrets=["private"]
    ) as recorder:
        # The secret is in the body the server sees, but the hook removes it before the scan.
        assert await recorder.unary(ECHO, b"private") == b"echo:private"
    assert seen[0].request.data == b"private"
    (interaction,) = read_cassette(path).interactions
    assert interaction.request.data == b"scrubbed"
    assert interaction.responses[0].data == b"echo:scrubbed"


async def test_scrub_hook_must_return_an_interaction(tmp_path: Path) -> None:
    """A hook returning something else is a TypeError, and nothing is written."""
    path = tmp_path / "s.jsonl"
    bad: Callable[[Interaction], Interaction] = lambda interaction: None  # type: ignore[assignment,return-value]  # noqa: E731
    async with Recorder(MemoryTransport(handler), path, mode="all", scrub=bad) as recorder:
        with pytest.raises(TypeError, match="Interaction"):
            await recorder.unary(ECHO, b"")


class JsonRenderer:
    """Renders messages that are JSON text; anything else is unknown."""

    def render(
        self, method: str, direction: Literal["request", "response"], message: bytes
    ) -> tuple[str, Any] | None:
        """Return ("test.Json", the parsed JSON) or None."""
        try:
            return f"test.{direction}", json.loads(message)
        except ValueError:
            return None


async def test_renderer_output_is_written(tmp_path: Path) -> None:
    """With a renderer, requests and responses carry their type and JSON next to the bytes."""
    path = tmp_path / "j.jsonl"
    async with Recorder(
        MemoryTransport(lambda m, r, md: b'{"b": [1, 2]}'),
        path,
        mode="all",
        renderer=JsonRenderer(),
    ) as recorder:
        await recorder.unary(ECHO, b'{"a": 1}')
        await recorder.unary(ECHO, b"not json")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[1]["request"]["type"] == "test.request"
    assert lines[1]["request"]["json"] == {"a": 1}
    assert lines[1]["responses"][0]["json"] == {"b": [1, 2]}
    assert lines[2]["request"]["json"] is None


def _count(path: Path) -> int:
    """How many interactions the cassette holds now (0 before it exists)."""
    return len(read_cassette(path).interactions) if path.exists() else 0


def _names(directory: Path) -> list[str]:
    """The sorted names of a directory's entries."""
    return sorted(p.name for p in directory.iterdir())


async def test_concurrent_calls_are_separate_complete_lines(tmp_path: Path) -> None:
    """Ten calls at once, ending in reverse order, give ten complete lines in start order."""
    path = tmp_path / "c.jsonl"
    release = [anyio.Event() for _ in range(10)]
    entered = 0

    async def slow(method: str, request: bytes, metadata: Pairs) -> bytes:
        nonlocal entered
        entered += 1
        await release[int(request)].wait()
        return request

    lines_seen: list[int] = []
    recorder = Recorder(MemoryTransport(slow), path, mode="all")
    async with recorder, anyio.create_task_group() as tg:
        for n in range(10):
            tg.start_soon(recorder.unary, ECHO, str(n).encode())
            # Start order is the order of the task starts.
            while entered <= n:
                await anyio.lowlevel.checkpoint()
        for n in reversed(range(10)):
            release[n].set()
            while _count(path) < 10 - n:
                await anyio.lowlevel.checkpoint()
            # The file is whole and valid after every interaction.
            lines_seen.append(_count(path))
    assert lines_seen == list(range(1, 11))
    interactions = read_cassette(path).interactions
    assert [i.request.data for i in interactions] == [str(n).encode() for n in range(10)]
    assert all(i.responses[0].data == i.request.data for i in interactions)


async def test_failed_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the rename fails, the cassette keeps its previous content and no temp file remains."""
    path = tmp_path / "a.jsonl"
    async with Recorder(MemoryTransport(handler), path, mode="all") as recorder:
        await recorder.unary(ECHO, b"one")
        before = path.read_bytes()

        def fail(src: str, dst: str) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(OSError, match="disk full"):
            await recorder.unary(ECHO, b"two")
        monkeypatch.undo()
    assert _names(tmp_path) == ["a.jsonl"]
    assert path.read_bytes() == before


async def test_stream_error_on_enter_is_recorded(tmp_path: Path) -> None:
    """A stream whose call fails before its first message is recorded with that error."""
    path = tmp_path / "e.jsonl"
    async with Recorder(MemoryTransport(handler), path, mode="all") as recorder:
        with pytest.raises(NotFound):
            async with recorder.server_stream(FAIL, b""):
                pass
    (interaction,) = read_cassette(path).interactions
    assert interaction.kind == "server_stream"
    assert interaction.status is not None
    assert interaction.status.name == "NOT_FOUND"
    async with ReplayTransport(path) as replay:
        with pytest.raises(NotFound, match="no such thing"):
            async with replay.server_stream(FAIL, b""):
                pass


async def test_an_error_in_the_callers_block_is_the_caller_leaving(tmp_path: Path) -> None:
    """An exception raised in the caller's own block records the stream as left, not failed."""
    path = tmp_path / "l.jsonl"

    async def read_then_fail(recorder: Recorder) -> None:
        async with recorder.server_stream(LIST, b"") as responses:
            await anext(responses)
            raise NotFound("from another call")

    async with Recorder(MemoryTransport(handler), path, mode="all") as recorder:
        with pytest.raises(NotFound, match="another call"):
            await read_then_fail(recorder)
    (interaction,) = read_cassette(path).interactions
    assert interaction.abandoned
    assert [r.data for r in interaction.responses] == [b"one"]


async def _over_the_wire(transport: Transport) -> list[Any]:
    """Calls of every kind against the peer test service; what the caller saw of each."""
    seen: list[Any] = [await transport.unary(method("Echo"), b"hello")]
    try:
        await transport.unary(method("Fail"), b"5:gone")
    except GrpcError as exc:
        seen.append(outcome(exc))
    async with transport.server_stream(method("Stream"), b"3:4") as responses:
        seen.append([message async for message in responses])
    async with transport.server_stream(method("Endless"), b"") as responses:
        seen.append(await anext(responses))
    return seen


async def test_records_a_real_transport_and_replays_without_the_server(
    tmp_path: Path, transport_factory: TransportFactory, peer: Peer
) -> None:
    """A session over real gRPC is recorded through the transport and replays identically."""
    path = tmp_path / "wire.jsonl"
    async with Recorder(transport_factory(peer.url), path, mode="all") as recorder:
        recorded = await _over_the_wire(recorder)
    assert recorded[0] == b"hello"
    assert recorded[1][:3] == ("NotFound", "gone", b"details-gone")
    calls = peer.calls
    async with Recorder(None, path, mode="none") as replay:
        assert await _over_the_wire(replay) == recorded
    assert peer.calls == calls


async def test_interleaved_streams_are_recorded_apart(tmp_path: Path) -> None:
    """Two streams read in turns are two interactions, each with only its own messages."""
    path = tmp_path / "i.jsonl"
    async with (
        Recorder(MemoryTransport(handler), path, mode="all") as recorder,
        recorder.server_stream(LIST, b"first") as first,
        recorder.server_stream(ENDLESS, b"second") as second,
    ):
        assert await anext(first) == b"one"
        assert await anext(second) == b"1"
        assert await anext(first) == b"two"
        assert await anext(second) == b"2"
        assert [m async for m in first] == [b"three"]
    one, two = read_cassette(path).interactions
    assert (one.request.data, [r.data for r in one.responses]) == (
        b"first",
        [b"one", b"two", b"three"],
    )
    assert one.status == RecordedStatus(code=0)
    assert (two.request.data, [r.data for r in two.responses]) == (b"second", [b"1", b"2"])
    assert two.abandoned
