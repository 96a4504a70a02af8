"""A whole client session recorded against the served fake service, then replayed.

The recording runs once per module on asyncio: our `Client`, signing every call, goes
through a `RecordingTransport` over `GrpclibTransport` to a served `FakeDispatchService`
(create, a listing in pages, update, get, delete, a NotFound, and a stream with the
events of all that). The server is gone afterwards; the tests replay the cassette on
asyncio and trio and get equal results, check that no secret reached the file, and
let the official grpcio-based client replay what our client recorded.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import transports
from dispatch_client import (
    Client,
    Dispatch,
    DispatchEvent,
    EndCriteria,
    Frequency,
    NotFound,
    RecurrenceRule,
    RetryPolicy,
    TargetIds,
    _methods,
)
from dispatch_client._auth import Credentials
from dispatch_client._codec import _bridge as bridge
from dispatch_client.testing import DispatchRenderer, FakeDispatchService, ReplayHandler, serve

_KEY = "session-key-7f3a9c"
_SECRET = "session-sign-secret-41d2"
_TIMEOUT = 20
"""Seconds any single step may take before the test fails instead of hanging."""
# Fixed times far in the future: the requests' bytes are the same on every run.
_START = datetime(2100, 1, 4, 8, 0, tzinfo=UTC)
_EVENTS = 5
"""Stream events the session produces: three creates, an update, a delete."""


@attrs.frozen
class Session:
    """What the session's calls returned: compared between recording and replays."""

    created: list[Dispatch]
    pages: list[list[Dispatch]]
    updated: Dispatch
    got: Dispatch
    not_found: tuple[str, str]
    events: list[DispatchEvent]


@attrs.frozen
class Recorded:
    """The recorded cassette and what the live session returned."""

    path: Path
    session: Session


async def _eventually(condition: Callable[[], bool]) -> None:
    """Poll `condition`: the fake offers no event to wait on for a new subscriber."""
    with anyio.fail_after(_TIMEOUT):
        for _ in iter(condition, True):
            await anyio.sleep(0.01)


async def _run_session(
    transport: transports.Transport, subscribed: Callable[[], Awaitable[None]] | None = None
) -> Session:
    """Run the session's calls through `transport` and return their results.

    Args:
        transport: The (entered) transport: recording or replaying.
        subscribed: Waits until the server has the stream's subscription (recording
            only: a replayed stream has all its messages at once).
    """
    credentials = Credentials(_KEY, _SECRET)
    client = Client(
        server_url="grpc://dispatch.test?ssl=false",
        key=_KEY,
        sign_secret=_SECRET,
        transport=transport,
    )
    async with (
        client,
        transport.server_stream(
            _methods.STREAM,
            bridge.encode_stream_request(1),
            metadata=credentials.metadata(_methods.STREAM),
        ) as stream,
    ):
        if subscribed is not None:
            await subscribed()
        with anyio.fail_after(_TIMEOUT):
            created = [
                await client.create(
                    1,
                    f"SESSION_{n}",
                    _START + timedelta(days=n),
                    timedelta(minutes=15),
                    TargetIds(n, n + 10),
                    payload={"n": n, "tags": ["a", "b"]},
                    recurrence=RecurrenceRule(
                        frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(count=3)
                    )
                    if n == 1
                    else None,
                )
                for n in range(3)
            ]
            pages = [list(page) async for page in client.list(1, page_size=2)]
            updated = await client.update(
                microgrid_id=1,
                dispatch_id=created[0].id,
                new_fields={"duration": timedelta(hours=1), "active": False},
            )
            got = await client.get(microgrid_id=1, dispatch_id=created[0].id)
            await client.delete(microgrid_id=1, dispatch_id=created[2].id)
            with pytest.raises(NotFound) as not_found:
                await client.get(microgrid_id=1, dispatch_id=created[2].id)
            events = []
            for _ in range(_EVENTS):
                events.append(bridge.decode_stream_response(await anext(stream)))
    error = not_found.value
    return Session(
        created=created,
        pages=pages,
        updated=updated,
        got=got,
        not_found=(type(error).__name__, error.message),
        events=events,
    )


async def _record(path: Path) -> Session:
    """Record the session against a served fake service (asyncio, grpclib)."""
    with FakeDispatchService(keys=[_KEY], sign_secret=_SECRET) as service:
        async with serve(service) as url:

            async def subscribed() -> None:
                await _eventually(lambda: bool(service._subscribers.get(1)))

            # grpclib: the stream is opened before the client enters the transport
            # (on its first call), and grpclib needs no entering.
            recording = transports.RecordingTransport(
                transports.GrpclibTransport.from_url(url),
                path,
                mode="all",
                renderer=DispatchRenderer(),
                secrets=[_KEY, _SECRET],
            )
            try:
                return await _run_session(recording, subscribed)
            finally:
                await recording.aclose()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Record the session once per module, on asyncio; the server is gone afterwards."""
    path = tmp_path_factory.mktemp("cassettes") / "session.jsonl"
    session = anyio.run(_record, path, backend="asyncio")
    return Recorded(path=path, session=session)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_recorded_session_is_what_the_server_did(recorded: Recorded) -> None:
    """The live session saw the fake service's semantics the replays are compared with."""
    session = recorded.session
    assert [len(page) for page in session.pages] == [2, 1]
    listed = sorted(d.id for page in session.pages for d in page)
    assert listed == sorted(d.id for d in session.created)
    assert session.updated.duration == timedelta(hours=1)
    assert not session.updated.active
    assert session.got == session.updated
    assert session.not_found[0] == "NotFound"
    assert [event.event.name for event in session.events] == [
        "CREATED",
        "CREATED",
        "CREATED",
        "UPDATED",
        "DELETED",
    ]


def test_cassette_lists_every_call_readably(recorded: Recorded) -> None:
    """The cassette has a header and one rendered interaction per call, in start order."""
    header, *interactions = _lines(recorded.path)
    assert header["format"] == "grpc-cassette"
    assert header["version"] == 1
    methods = [line["method"].rsplit("/", 1)[1] for line in interactions]
    assert methods == [
        "StreamMicrogridDispatches",
        *["CreateMicrogridDispatch"] * 3,
        *["ListMicrogridDispatches"] * 2,
        "UpdateMicrogridDispatch",
        "GetMicrogridDispatch",
        "DeleteMicrogridDispatch",
        "GetMicrogridDispatch",
    ]
    for line in interactions:
        assert line["request"]["type"].startswith("frequenz.api.dispatch.v1.")
        assert line["request"]["json"] is not None
        for response in line["responses"]:
            assert response["type"].startswith("frequenz.api.dispatch.v1.")
    stream, *_, missing = interactions
    assert stream["kind"] == "server_stream"
    assert [r["json"]["event"] for r in stream["responses"]] == [
        "EVENT_CREATED",
        "EVENT_CREATED",
        "EVENT_CREATED",
        "EVENT_UPDATED",
        "EVENT_DELETED",
    ]
    assert stream["error"] == {"type": "Cancelled", "message": "the caller left"}
    assert missing["status"]["name"] == "NOT_FOUND"
    list_requests = [line["request"]["json"] for line in interactions[4:6]]
    assert list_requests[0]["paginationParams"] == {"pageSize": 2}
    assert set(list_requests[1]["paginationParams"]) == {"pageToken"}


def test_cassette_holds_no_secret(recorded: Recorded) -> None:
    """Neither the API key nor the sign secret, plain or base64, is in the cassette."""
    text = recorded.path.read_text("utf-8")
    for secret in (_KEY, _SECRET):
        raw = secret.encode()
        forms = {
            secret,
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode(),
            base64.b64encode(raw).decode().rstrip("="),
        }
        for form in forms:
            assert form not in text
    # The redacted signing metadata is still listed, by name only.
    _header, first, *_ = _lines(recorded.path)
    assert dict(first["metadata"]) == {
        "key": "REDACTED",
        "ts": "REDACTED",
        "nonce": "REDACTED",
        "sig": "REDACTED",
    }


@pytest.mark.anyio
async def test_replay_gives_the_recorded_results(recorded: Recorded) -> None:
    """With the server gone, replaying the cassette gives the live session's results."""
    async with transports.ReplayTransport(recorded.path, renderer=DispatchRenderer()) as replay:
        assert await _run_session(replay) == recorded.session


@pytest.mark.anyio
async def test_client_stream_replays_the_recorded_events(
    recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    """Client.stream() over a replay gets the recorded events; a call past them ends it.

    The recorded stream ends where the recording client left it (CANCELLED), so the
    stream reconnects; the cassette has no second stream call, and that mismatch ends
    the receiver with `ReplayMismatch`, without a logged traceback.
    """
    async with (
        transports.ReplayTransport(recorded.path, renderer=DispatchRenderer()) as replay,
        Client(
            server_url="grpc://dispatch.test",
            key=_KEY,
            transport=replay,
            stream_retry=RetryPolicy(attempts=None, initial=0.01, maximum=0.01),
        ) as client,
        client.stream(1) as receiver,
    ):
        with anyio.fail_after(_TIMEOUT):
            events = [await receiver.receive() for _ in range(_EVENTS)]
            with pytest.raises(transports.ReplayMismatch, match="StreamMicrogridDispatches"):
                await receiver.receive()
    assert events == recorded.session.events
    assert [r.levelname for r in caplog.records if r.levelname == "ERROR"] == []


@pytest.mark.anyio
async def test_recording_transport_in_mode_none_replays(recorded: Recorded) -> None:
    """A RecordingTransport in mode none, with no server, replays the session too."""
    recording = transports.RecordingTransport(
        None, recorded.path, mode="none", renderer=DispatchRenderer()
    )
    async with recording:
        assert await _run_session(recording) == recorded.session


@pytest.mark.anyio
async def test_replay_of_a_changed_call_is_a_mismatch(recorded: Recorded) -> None:
    """A call the session did not make fails with a diff against the closest request."""
    async with (
        transports.ReplayTransport(recorded.path, renderer=DispatchRenderer()) as replay,
        Client(server_url="grpc://dispatch.test", key=_KEY, transport=replay) as client,
    ):
        with pytest.raises(transports.ReplayMismatch) as caught:
            await client.get(microgrid_id=1, dispatch_id=4242)
    report = str(caught.value)
    assert "GetMicrogridDispatch" in report
    assert "4242" in report


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_official_client_replays_our_cassette(recorded: Recorded) -> None:
    """The official grpcio client, against the served cassette, gets what ours got.

    Matching is by request bytes, so this also shows that both clients encode a get
    and a paged listing identically.
    """
    from frequenz.client.common.microgrid import MicrogridId
    from frequenz.client.dispatch import DispatchApiClient
    from frequenz.client.dispatch.types import DispatchId

    session = recorded.session
    async with (
        ReplayHandler(recorded.path) as handler,
        serve(handler) as url,
    ):
        official = DispatchApiClient(server_url=url, auth_key=_KEY, sign_secret=_SECRET)
        try:
            with anyio.fail_after(_TIMEOUT):
                got = await official.get(
                    microgrid_id=MicrogridId(1), dispatch_id=DispatchId(session.created[0].id)
                )
                pages = [
                    [int(d.id) for d in page]
                    async for page in official.list(MicrogridId(1), page_size=2)
                ]
        finally:
            await official.disconnect()
    assert int(got.id) == session.got.id
    assert got.type == session.got.type
    assert got.start_time == session.got.start_time
    assert got.duration == session.got.duration
    assert got.active is False
    assert pages == [[d.id for d in page] for page in session.pages]
