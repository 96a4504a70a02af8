"""Serving a cassette: `ReplayHandler` with `serve()`, and `dispatch-client replay`.

`cassettes/example_session.jsonl` is a real recording of `_example_session` (our client,
signing, against the served fake service). To record it anew after a change of the
session or of the encoding, run `python -m tests.testing.test_replay_server`.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

import transports
from dispatch_client import Client, Dispatch, Event, NotFound, TargetIds, _methods
from dispatch_client._auth import Credentials
from dispatch_client._codec import _bridge as bridge
from dispatch_client._requests import CreateRequest
from dispatch_client.testing import DispatchRenderer, FakeDispatchService, ReplayHandler, serve
from tests.cli_process import TIMEOUT as _TIMEOUT
from tests.cli_process import command, running

EXAMPLE = Path(__file__).parent / "cassettes" / "example_session.jsonl"
_KEY = "example-key"
_SECRET = "example-secret"
_START = datetime(2100, 3, 1, 12, 0, tzinfo=UTC)
_COMMAND = command("replay")


async def _example_session(
    transport: transports.Transport,
    server: FakeDispatchService | None = None,
    *,
    url: str = "grpc://example?ssl=false",
) -> tuple[Dispatch, list[Dispatch], str, Event]:
    """Create, get, list, delete and get again (NotFound), with a stream open throughout.

    Args:
        transport: The transport: recording (with `server`) or replaying; it carries
            the stream. The client gets it too, unless it is an H2Transport, which
            can be entered only once: the client then builds its own for `url`.
        server: The fake service when recording, to wait for the stream's subscription.
        url: The server's URL.

    Returns:
        The created dispatch, the listing, the NotFound message and the streamed event.
    """
    async with (
        Client(
            server_url=url,
            key=_KEY,
            sign_secret=_SECRET,
            transport="h2" if isinstance(transport, transports.H2Transport) else transport,
        ) as client,
        transport.server_stream(
            _methods.STREAM,
            bridge.encode_stream_request(1),
            metadata=Credentials(_KEY, _SECRET).metadata(_methods.STREAM),
        ) as stream,
    ):
        with anyio.fail_after(_TIMEOUT):
            if server is not None:
                for _ in iter(lambda: bool(server._subscribers.get(1)), True):
                    await anyio.sleep(0.01)
            created = await client.create(
                1, "EXAMPLE", _START, timedelta(minutes=5), TargetIds(4), payload={"kw": 2.5}
            )
            assert await client.get(microgrid_id=1, dispatch_id=created.id) == created
            listed = [d async for page in client.list(1, page_size=10) for d in page]
            await client.delete(microgrid_id=1, dispatch_id=created.id)
            with pytest.raises(NotFound) as missing:
                await client.get(microgrid_id=1, dispatch_id=created.id)
            event = bridge.decode_stream_response(await anext(stream))
    return created, listed, missing.value.message, event.event


async def _record_example(path: Path) -> None:
    """Record `_example_session` into `path` against a served fake service."""
    with FakeDispatchService(keys=[_KEY], sign_secret=_SECRET) as service:
        async with serve(service) as url:
            recording = transports.RecordingTransport(
                transports.GrpclibTransport.from_url(url),
                path,
                mode="all",
                renderer=DispatchRenderer(),
                secrets=[_KEY, _SECRET],
            )
            try:
                await _example_session(recording, service)
            finally:
                await recording.aclose()


def _check_example(result: tuple[Dispatch, list[Dispatch], str, Event]) -> None:
    created, listed, missing, event = result
    assert created.type == "EXAMPLE"
    assert created.start_time == _START
    assert created.payload == {"kw": 2.5}
    assert listed == [created]
    assert str(created.id) in missing
    assert event is Event.CREATED


pytestmark = pytest.mark.anyio


async def test_committed_cassette_replays_through_the_client() -> None:
    """The committed real cassette replays the example session with no server."""
    async with transports.ReplayTransport(EXAMPLE, renderer=DispatchRenderer()) as replay:
        _check_example(await _example_session(replay))


async def test_replay_handler_serves_the_cassette() -> None:
    """Over real gRPC, the served cassette answers unary calls, errors and the stream."""
    async with (
        ReplayHandler(EXAMPLE) as handler,
        serve(handler) as url,
        transports.H2Transport.from_url(url) as h2,
    ):
        _check_example(await _example_session(h2, url=url))


async def test_served_stream_the_recording_left_ends_cancelled() -> None:
    """A served stream that the recording client left gives its messages, then CANCELLED."""
    async with (
        ReplayHandler(EXAMPLE) as handler,
        serve(handler) as url,
        transports.H2Transport.from_url(url) as h2,
        h2.server_stream(_methods.STREAM, bridge.encode_stream_request(1)) as stream,
    ):
        with anyio.fail_after(_TIMEOUT):
            event = bridge.decode_stream_response(await anext(stream))
            with pytest.raises(transports.Cancelled):
                await anext(stream)
    assert event.event is Event.CREATED


async def test_replay_handler_reports_a_call_with_no_recording() -> None:
    """A call the cassette lacks fails with UNIMPLEMENTED and the closest request's diff."""
    async with (
        ReplayHandler(EXAMPLE) as handler,
        serve(handler) as url,
        Client(server_url=url, key=_KEY, transport="h2") as client,
    ):
        with pytest.raises(transports.Unimplemented) as caught:
            await client.get(microgrid_id=1, dispatch_id=31337)
    assert "no recording" in caught.value.message
    assert "31337" in caught.value.message


async def test_replay_handler_uses_each_interaction_once_unless_allowed() -> None:
    """A repeated call finds its interaction used, unless repeats are allowed."""
    request = bridge.encode_get_request(1, _example_id())
    for allow_repeats in (False, True):
        async with (
            ReplayHandler(EXAMPLE, allow_repeats=allow_repeats) as handler,
            serve(handler) as url,
            transports.H2Transport.from_url(url) as h2,
        ):
            first = await h2.unary(_methods.GET, request)
            if allow_repeats:
                # The last matching interaction: the NotFound after the delete.
                with pytest.raises(transports.NotFound):
                    await h2.unary(_methods.GET, request)
                with pytest.raises(transports.NotFound):
                    await h2.unary(_methods.GET, request)
            else:
                with pytest.raises(transports.NotFound):
                    await h2.unary(_methods.GET, request)
                with pytest.raises(transports.Unimplemented):
                    await h2.unary(_methods.GET, request)
            assert bridge.decode_get_response(first).id == _example_id()


async def test_match_ignore_takes_camel_case_json_paths() -> None:
    """A create at another start time matches once its JSON path is ignored, else diffs."""
    request = bridge.encode_create_request(
        CreateRequest(
            microgrid_id=1,
            type="EXAMPLE",
            start_time=_START + timedelta(days=1),
            duration=timedelta(minutes=5),
            target=TargetIds(4),
            payload={"kw": 2.5},
        )
    )
    renderer = DispatchRenderer()
    async with transports.ReplayTransport(EXAMPLE, renderer=renderer) as strict:
        with pytest.raises(transports.ReplayMismatch) as caught:
            await strict.unary(_methods.CREATE, request)
    assert "startTime" in str(caught.value)
    assert "2100-03-02T12:00:00Z" in str(caught.value)
    async with transports.ReplayTransport(
        EXAMPLE, renderer=renderer, match_ignore=["dispatchData.startTime"]
    ) as lenient:
        created = bridge.decode_create_response(await lenient.unary(_methods.CREATE, request))
    assert created.start_time == _START  # the recorded answer


def _example_id() -> int:
    """The id the recorded create got."""
    for line in EXAMPLE.read_text("utf-8").splitlines()[1:]:
        interaction = json.loads(line)
        if interaction["method"] == _methods.CREATE:
            return int(interaction["responses"][0]["json"]["dispatch"]["metadata"]["dispatchId"])
    raise AssertionError("the example cassette has no create")


def _cassette(tmp_path: Path, *interactions: dict[str, Any]) -> Path:
    """Write a cassette by hand, as another language's tool would."""
    header = {
        "created": "2026-11-25T11:00:00.000000Z",
        "format": "grpc-cassette",
        "library": "hand-written",
        "version": 1,
    }
    lines = [json.dumps(value, sort_keys=True) for value in (header, *interactions)]
    path = tmp_path / "hand.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


async def test_recorded_transport_failure_is_served_as_unavailable(tmp_path: Path) -> None:
    """A recorded call that got no status (lost connection) is served as UNAVAILABLE."""
    path = _cassette(
        tmp_path,
        {
            "method": _methods.DELETE,
            "kind": "unary",
            "started": 0.0,
            "request": {"base64": "", "type": None, "json": None},
            "metadata": [],
            "responses": [],
            "status": None,
            "trailing_metadata": [],
            "error": {"type": "ConnectError", "message": "connection lost"},
            "duration": 0.01,
        },
    )
    async with (
        ReplayHandler(path) as handler,
        serve(handler) as url,
        transports.H2Transport.from_url(url) as h2,
    ):
        with pytest.raises(transports.Unavailable) as caught:
            await h2.unary(_methods.DELETE, b"")
    assert "ConnectError" in caught.value.message
    assert "connection lost" in caught.value.message


def test_replay_handler_rejects_a_corrupt_cassette(tmp_path: Path) -> None:
    """A file that is not a cassette fails when the handler is built, naming the file."""
    path = tmp_path / "broken.jsonl"
    path.write_text('{"format": "something-else", "version": 1}\n', "utf-8")
    with pytest.raises(transports.CassetteError, match=r"broken\.jsonl"):
        ReplayHandler(path)


# --- dispatch-client replay, as a process ------------------------------------------------


def _replaying(
    *arguments: str,
) -> contextlib.AbstractAsyncContextManager[tuple[anyio.abc.Process, str]]:
    """Run `dispatch-client replay` with `arguments`; yield the process and its URL."""
    return running(*_COMMAND, *arguments)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cli_replay_serves_until_interrupted() -> None:
    """`dispatch-client replay` prints its URL, answers the session, and stops on Ctrl-C.

    The options are given too: they must parse and leave this session's replay alone.
    """
    options = ("--allow-repeats", "--pace", "--match-ignore", "dispatchData.startTime")
    async with _replaying(str(EXAMPLE), "--port", "0", *options) as (process, url):
        assert url.startswith("grpc://127.0.0.1:")
        assert url.endswith("?ssl=false")
        async with transports.H2Transport.from_url(url) as h2:
            _check_example(await _example_session(h2, url=url))
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(_TIMEOUT):
            assert await process.wait() == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such cassette"),
        ('{"format": "grpc-cassette", "version": 99}\n', "version"),
        ("not json\n", "c.jsonl:1"),
    ],
)
def test_cli_replay_bad_cassette_is_a_one_line_error(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    """A missing, too new or corrupt cassette exits 1 with one line on stderr."""
    path = tmp_path / "c.jsonl"
    if content is not None:
        path.write_text(content, "utf-8")
    result = subprocess.run(
        [*_COMMAND, str(path)], capture_output=True, text=True, timeout=_TIMEOUT, check=False
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: cannot replay")
    assert expected in lines[0]


def test_cli_replay_port_in_use_is_a_one_line_error() -> None:
    """A port another socket holds exits 1 with one line naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*_COMMAND, str(EXAMPLE), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")


if __name__ == "__main__":
    EXAMPLE.parent.mkdir(exist_ok=True)
    anyio.run(_record_example, EXAMPLE, backend="asyncio")
    print(f"recorded {EXAMPLE}")
