"""The client over MemoryTransport: arguments, metadata, pagination, errors, retries, lifecycle.

A small scripted handler stands in for the server here, so each test can say exactly
what the server answers; tests against the fake service with the API's full semantics
live in tests/testing/.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from dispatch_client import (
    Cancelled,
    Client,
    ConnectError,
    DispatchApiClient,
    DispatchPage,
    EndCriteria,
    Frequency,
    InvalidArgument,
    NotFound,
    ProtocolError,
    RecurrenceRule,
    RetryPolicy,
    SortField,
    SortOrder,
    TargetIds,
    Unavailable,
    _methods,
)
from dispatch_client._codec import _bridge as bridge
from dispatch_client._demo import example_dispatch
from dispatch_client._requests import CreateRequest, ListRequest
from transports import MemoryTransport, Transport

pytestmark = pytest.mark.anyio

URL = "grpc://dispatch.test:50051?ssl=false"
Meta = tuple[tuple[str, str | bytes], ...]
FAST = RetryPolicy(attempts=3, initial=0, maximum=0)


@attrs.define
class Server:
    """A scripted server: answers by method, remembers every call."""

    answers: dict[str, Callable[[bytes], bytes]] = attrs.field(factory=dict)
    calls: list[tuple[str, bytes, Meta]] = attrs.field(factory=list)

    def __call__(self, method: str, request: bytes, metadata: Meta) -> bytes:
        self.calls.append((method, request, metadata))
        try:
            answer = self.answers[method]
        except KeyError:
            raise AssertionError(f"unexpected call of {method}") from None
        return answer(request)

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.calls]


def _client(server: Server, **options: Any) -> Client:
    options.setdefault("key", "secret-key")
    options.setdefault("retry", FAST)
    return Client(server_url=URL, transport=MemoryTransport(server), **options)


def _dispatch(number: int = 1) -> Any:
    return attrs.evolve(example_dispatch(), id=number)


def _future() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


# --- construction --------------------------------------------------------------------


def test_the_official_names_are_one_class() -> None:
    """`DispatchApiClient` is `Client`, so code written for the official client runs."""
    assert DispatchApiClient is Client


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({}, TypeError),
        ({"key": "a", "auth_key": "b"}, TypeError),
        ({"key": ""}, ValueError),
        ({"key": 5}, TypeError),
        ({"key": "a", "sign_secret": ""}, ValueError),
        ({"key": "a", "call_timeout": 5}, TypeError),
        ({"key": "a", "call_timeout": timedelta(0)}, ValueError),
        ({"key": "a", "transport": "grpcio"}, ValueError),
        ({"key": "a", "transport": object()}, TypeError),
        ({"key": "a", "retry": 3}, TypeError),
    ],
)
def test_bad_arguments_fail_at_construction(
    options: dict[str, Any], error: type[Exception]
) -> None:
    """Missing, doubled or malformed constructor arguments raise before anything else."""
    with pytest.raises(error):
        Client(server_url=URL, **options)


@pytest.mark.parametrize("url", ["http://x", "grpc://", "grpc://h?ssl=maybe", "grpc://h?color=1"])
def test_a_bad_url_is_a_value_error(url: str) -> None:
    """A malformed server URL raises ValueError at construction."""
    with pytest.raises(ValueError, match=r"."):
        Client(server_url=url, key="k")


def test_repr_hides_the_key_and_the_secret() -> None:
    """Neither the API key nor the sign secret appears in the client's repr."""
    client = Client(server_url=URL, auth_key="KEY-123", sign_secret="SECRET-456")
    text = repr(client) + repr(client._credentials)
    assert "KEY-123" not in text
    assert "SECRET-456" not in text
    assert URL in repr(client)


def test_properties() -> None:
    """The URL, connection state, timeout and retry policy are readable."""
    client = Client(server_url=URL, key="k", connect=False, call_timeout=timedelta(seconds=3))
    assert client.server_url == URL
    assert not client.is_connected
    assert client.call_timeout == timedelta(seconds=3)
    assert client.retry == RetryPolicy()
    assert client.transport is None
    client.connect()
    assert client.is_connected


# --- metadata ------------------------------------------------------------------------


async def test_every_call_carries_the_key() -> None:
    """The API key goes in the `key` metadata entry, and nothing else without a secret."""
    server = Server(
        {_methods.GET: lambda _: bridge.encode_get_response(_dispatch(), microgrid_id=1)}
    )
    async with _client(server, auth_key=None, key="my-key") as client:
        await client.get(microgrid_id=1, dispatch_id=1)
    assert server.calls[0][2] == (("key", "my-key"),)


async def test_signed_calls_carry_a_valid_signature() -> None:
    """With a sign secret, ts, nonce and sig follow the API's recipe, with a fresh nonce."""
    server = Server(
        {_methods.GET: lambda _: bridge.encode_get_response(_dispatch(), microgrid_id=1)}
    )
    async with _client(server, key="my-key", sign_secret="s3cret") as client:
        await client.get(microgrid_id=1, dispatch_id=1)
        await client.get(microgrid_id=1, dispatch_id=1)
    nonces = []
    for _, _, metadata in server.calls:
        entries = dict(metadata)
        assert entries["key"] == "my-key"
        ts, nonce, sig = (str(entries[name]) for name in ("ts", "nonce", "sig"))
        assert abs(int(ts) - time.time()) < 60
        assert len(base64.urlsafe_b64decode(nonce)) == 16
        message = b"my-key" + ts.encode() + nonce.encode() + b"GetMicrogridDispatch"
        expected = base64.urlsafe_b64encode(
            hmac.new(b"s3cret", message, hashlib.sha256).digest()
        ).rstrip(b"=")
        assert sig == expected.decode()
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


# --- list ----------------------------------------------------------------------------


def _paged_server(total: int, page: int) -> Server:
    """A server listing dispatches 1..total in pages of `page`, tokens 'p<offset>'."""

    def answer(data: bytes) -> bytes:
        request = bridge.decode_list_request(data)
        offset = int(request.page_token[1:]) if request.page_token else 0
        end = min(offset + page, total)
        token = f"p{end}" if end < total else None
        return bridge.encode_list_response(
            [_dispatch(n) for n in range(offset + 1, end + 1)],
            next_page_token=token,
            total_items=total,
        )

    return Server({_methods.LIST: answer})


async def test_list_yields_every_page() -> None:
    """Pages come one request at a time until the server sends no next token."""
    server = _paged_server(total=7, page=3)
    async with _client(server) as client:
        pages = [page async for page in client.list(1, page_size=3)]
    assert [len(page) for page in pages] == [3, 3, 1]
    assert all(isinstance(page, DispatchPage) and page.total_items == 7 for page in pages)
    assert [d.id for page in pages for d in page] == list(range(1, 8))
    requests = [bridge.decode_list_request(data) for _, data, _ in server.calls]
    assert [(r.page_size, r.page_token) for r in requests] == [
        (3, None),
        (None, "p3"),
        (None, "p6"),
    ]


async def test_list_sends_every_filter_on_every_page() -> None:
    """Every criterion, sort option included, reaches the server on each request."""
    server = _paged_server(total=2, page=1)
    now = datetime.now(UTC)
    async with _client(server) as client:
        pages = client.list(
            5,
            target_components=[TargetIds(1, 2)],
            start_from=now,
            start_to=now + timedelta(days=1),
            end_from=now,
            update_to=now,
            active=True,
            dry_run=False,
            recurring=True,
            dispatch_ids=[3, 4],
            filter_queries=["#3", "charge"],
            sort_by=SortField.CREATE_TIME,
            sort_order=SortOrder.DESCENDING,
            page_size=1,
        )
        assert server.calls == []  # lazy: nothing is sent before iterating
        async for _ in pages:
            pass
    requests = [bridge.decode_list_request(data) for _, data, _ in server.calls]
    assert len(requests) == 2
    for request in requests:
        assert request.microgrid_id == 5
        criteria = request.filter
        assert criteria.targets == (TargetIds(1, 2),)
        assert (criteria.active, criteria.dry_run, criteria.recurring) == (True, False, True)
        assert criteria.start_time is not None
        assert criteria.start_time.start == now
        assert criteria.end_time is not None
        assert criteria.end_time.end is None
        assert criteria.update_time is not None
        assert criteria.update_time.start is None
        assert criteria.dispatch_ids == (3, 4)
        assert criteria.queries == ("#3", "charge")
        assert (request.sort_field, request.sort_order) == (
            SortField.CREATE_TIME,
            SortOrder.DESCENDING,
        )


async def test_list_takes_the_07_spelling() -> None:
    """`component_selectors` is the same filter as `target_components`."""
    server = _paged_server(total=0, page=1)
    async with _client(server) as client:
        async for _ in client.list(1, component_selectors=[TargetIds(9)]):
            pass
    request = bridge.decode_list_request(server.calls[0][1])
    assert request.filter.targets == (TargetIds(9),)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"start_from": datetime(2030, 1, 1)}, ValueError),
        (
            {
                "start_from": datetime(2030, 1, 2, tzinfo=UTC),
                "start_to": datetime(2030, 1, 1, tzinfo=UTC),
            },
            ValueError,
        ),
        ({"page_size": 0}, ValueError),
        ({"page_size": "10"}, TypeError),
        ({"active": "yes"}, TypeError),
        ({"filter_queries": "charge"}, TypeError),
        ({"dispatch_ids": [0]}, ValueError),
        ({"target_components": [1]}, TypeError),
        ({"target_components": [], "component_selectors": []}, TypeError),
    ],
)
def test_list_checks_arguments_at_once(options: dict[str, Any], error: type[Exception]) -> None:
    """Malformed list arguments raise when `list()` is called, before any I/O."""
    server = Server()
    client = _client(server)
    with pytest.raises(error):
        client.list(1, **options)
    assert server.calls == []


async def test_list_decodes_a_bad_answer_as_protocol_error() -> None:
    """An answer that is not a valid list response raises ProtocolError naming the call."""
    server = Server({_methods.LIST: lambda _: b"\xff\xff"})
    async with _client(server) as client:
        with pytest.raises(ProtocolError, match="list dispatches of microgrid 1"):
            async for _ in client.list(1):
                pass


# --- create --------------------------------------------------------------------------


def _created(data: bytes) -> bytes:
    request: CreateRequest = bridge.decode_create_request(data)
    start = datetime.now(UTC) if request.start_time == "NOW" else request.start_time
    return bridge.encode_create_response(
        attrs.evolve(_dispatch(42), type=request.type, start_time=start, duration=request.duration)
    )


async def test_create_sends_the_request_and_returns_the_dispatch() -> None:
    """create() sends every field and returns what the server stored."""
    server = Server({_methods.CREATE: _created})
    start = _future()
    rule = RecurrenceRule(frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(count=3))
    async with _client(server) as client:
        created = await client.create(
            7, "CHARGE", start, timedelta(minutes=15), TargetIds(1, 2),
            active=False, dry_run=True, payload={"power": 5}, recurrence=rule,
        )  # fmt: skip
    assert created.id == 42
    assert created.type == "CHARGE"
    request = bridge.decode_create_request(server.calls[0][1])
    assert request == CreateRequest(
        microgrid_id=7,
        type="CHARGE",
        start_time=request.start_time,
        duration=timedelta(minutes=15),
        target=TargetIds(1, 2),
        active=False,
        dry_run=True,
        payload={"power": 5},
        recurrence=rule,
    )
    assert isinstance(request.start_time, datetime)
    assert abs(request.start_time - start) < timedelta(seconds=1)


async def test_create_now_and_the_07_selector() -> None:
    """`"NOW"` asks the server to start at once; `selector` is the 0.7 name of `target`."""
    server = Server({_methods.CREATE: _created})
    async with _client(server) as client:
        await client.create(1, "X", "NOW", None, selector=TargetIds(3))
    request = bridge.decode_create_request(server.calls[0][1])
    assert request.start_time == "NOW"
    assert request.target == TargetIds(3)


@pytest.mark.parametrize(
    ("args", "options", "error"),
    [
        (("X", datetime(2000, 1, 1, tzinfo=UTC), None, TargetIds(1)), {}, ValueError),
        (("X", datetime(2100, 1, 1), None, TargetIds(1)), {}, ValueError),
        (("X", "LATER", None, TargetIds(1)), {}, ValueError),
        (("X", "NOW", timedelta(seconds=-1), TargetIds(1)), {}, ValueError),
        (("X", "NOW", 60, TargetIds(1)), {}, TypeError),
        (("X", "NOW", None), {}, TypeError),
        (("X", "NOW", None, TargetIds(1)), {"selector": TargetIds(1)}, TypeError),
        (("X", "NOW", None, TargetIds(1)), {"payload": {"nan": float("nan")}}, ValueError),
        (("X", "NOW", None, TargetIds(1)), {"payload": [1]}, TypeError),
        (("X", "NOW", None, TargetIds(1)), {"recurrence": "daily"}, TypeError),
    ],
)
async def test_create_checks_arguments_before_any_io(
    args: tuple[Any, ...], options: dict[str, Any], error: type[Exception]
) -> None:
    """Past or naive starts, negative durations and bad payloads raise before a call."""
    server = Server()
    async with _client(server) as client:
        with pytest.raises(error):
            await client.create(1, *args, **options)
    assert server.calls == []


def test_a_recurrence_with_interval_zero_is_invalid() -> None:
    """A recurrence rule with a frequency and interval 0 cannot even be built."""
    with pytest.raises(ValueError, match="interval"):
        RecurrenceRule(frequency=Frequency.DAILY, interval=0)


# --- update, get, delete -------------------------------------------------------------


async def test_update_sends_the_mask() -> None:
    """update() sends the official keys as the API's mask paths."""
    server = Server({_methods.UPDATE: lambda _: bridge.encode_update_response(_dispatch(3))})
    async with _client(server) as client:
        updated = await client.update(
            microgrid_id=1,
            dispatch_id=3,
            new_fields={
                "active": False,
                "duration": None,
                "recurrence.frequency": Frequency.HOURLY,
            },
        )
    assert updated.id == 3
    request = bridge.decode_update_request(server.calls[0][1])
    assert (request.microgrid_id, request.dispatch_id) == (1, 3)
    assert dict(request.fields) == {
        "duration": None,
        "is_active": False,
        "recurrence.freq": Frequency.HOURLY,
    }


@pytest.mark.parametrize(
    "new_fields",
    [
        {},
        {"type": "OTHER"},
        {"dry_run": True},
        {"colour": "blue"},
        {"recurrence.colour": 1},
        {"recurrence": 3},
        {"active": True, "is_active": False},
        {"start_time": datetime(2000, 1, 1, tzinfo=UTC)},
        {"start_time": datetime(2100, 1, 1)},
    ],
)
async def test_bad_updates_are_value_errors(new_fields: dict[str, Any]) -> None:
    """Empty, unknown, forbidden, malformed or past updates raise ValueError before a call."""
    server = Server()
    async with _client(server) as client:
        with pytest.raises(ValueError, match=r"."):
            await client.update(microgrid_id=1, dispatch_id=1, new_fields=new_fields)
    assert server.calls == []


async def test_get_and_delete() -> None:
    """get() returns the dispatch; delete() returns None; both send the two ids."""
    server = Server(
        {
            _methods.GET: lambda _: bridge.encode_get_response(_dispatch(8), microgrid_id=2),
            _methods.DELETE: lambda _: bridge.encode_delete_response(2, 8),
        }
    )
    async with _client(server) as client:
        assert (await client.get(microgrid_id=2, dispatch_id=8)).id == 8
        await client.delete(microgrid_id=2, dispatch_id=8)
    assert bridge.decode_get_request(server.calls[0][1]) == (2, 8)
    assert bridge.decode_delete_request(server.calls[1][1]) == (2, 8)


@pytest.mark.parametrize("bad", [0, -1, 2**64, "1", 1.0, True])
async def test_bad_ids_fail_before_io(bad: Any) -> None:
    """Ids that are not positive uint64 ints raise TypeError or ValueError at once."""
    server = Server()
    async with _client(server) as client:
        with pytest.raises((TypeError, ValueError)):
            await client.get(microgrid_id=bad, dispatch_id=1)
        with pytest.raises((TypeError, ValueError)):
            await client.delete(microgrid_id=1, dispatch_id=bad)
    assert server.calls == []


# --- errors and retries --------------------------------------------------------------


def _failing(*errors: Exception, then: bytes | None = None) -> Callable[[bytes], bytes]:
    queue: Iterator[Exception] = iter(errors)

    def answer(_: bytes) -> bytes:
        error = next(queue, None)
        if error is not None:
            raise error
        assert then is not None
        return then

    return answer


async def test_errors_name_the_operation_and_ids() -> None:
    """A status error keeps its type and status and gains the operation in its message."""
    server = Server({_methods.GET: _failing(NotFound("no such dispatch"))})
    async with _client(server) as client:
        with pytest.raises(NotFound) as caught:
            await client.get(microgrid_id=4, dispatch_id=9)
    assert caught.value.message == "get dispatch 9 of microgrid 4: no such dispatch"
    assert isinstance(caught.value.__cause__, NotFound)


async def test_transport_errors_name_the_operation() -> None:
    """A network failure keeps its type and gains the operation in its message."""
    server = Server({_methods.DELETE: _failing(ConnectError("connection refused"))})
    async with _client(server) as client:
        with pytest.raises(ConnectError, match="delete dispatch 2 of microgrid 1: connection"):
            await client.delete(microgrid_id=1, dispatch_id=2)


async def test_get_retries_unavailable() -> None:
    """get() repeats a call that failed with Unavailable, up to the policy's attempts."""
    reply = bridge.encode_get_response(_dispatch(), microgrid_id=1)
    server = Server({_methods.GET: _failing(Unavailable("a"), Unavailable("b"), then=reply)})
    async with _client(server) as client:
        assert (await client.get(microgrid_id=1, dispatch_id=1)).id == 1
    assert len(server.calls) == 3


async def test_retries_are_bounded() -> None:
    """After the last attempt the Unavailable error reaches the caller, with context."""
    server = Server({_methods.GET: _failing(*[Unavailable("down")] * 3)})
    async with _client(server) as client:
        with pytest.raises(Unavailable, match="get dispatch 1 of microgrid 1: down"):
            await client.get(microgrid_id=1, dispatch_id=1)
    assert len(server.calls) == 3


async def test_list_pages_retry_each() -> None:
    """Each page of a listing is repeated on its own after Unavailable."""
    paged = _paged_server(total=2, page=1).answers[_methods.LIST]
    failures = iter([True, False, True, False])

    def flaky(data: bytes) -> bytes:
        if next(failures):
            raise Unavailable("busy")
        return paged(data)

    server = Server({_methods.LIST: flaky})
    async with _client(server) as client:
        pages = [page async for page in client.list(1, page_size=1)]
    assert len(pages) == 2
    assert len(server.calls) == 4


@pytest.mark.parametrize("method", ["create", "update", "delete"])
async def test_changes_are_never_retried(method: str) -> None:
    """create, update and delete fail at the first Unavailable: the server may have acted."""
    server = Server({path: _failing(Unavailable("maybe done")) for path in _methods.UNARY_METHODS})
    async with _client(server) as client:
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "create": lambda: client.create(1, "X", "NOW", None, TargetIds(1)),
            "update": lambda: client.update(
                microgrid_id=1, dispatch_id=1, new_fields={"active": True}
            ),
            "delete": lambda: client.delete(microgrid_id=1, dispatch_id=1),
        }
        with pytest.raises(Unavailable):
            await calls[method]()
    assert len(server.calls) == 1


async def test_retry_none_turns_retries_off() -> None:
    """With `retry=None` a get() fails at the first Unavailable."""
    server = Server({_methods.GET: _failing(Unavailable("down"))})
    async with _client(server, retry=None) as client:
        with pytest.raises(Unavailable):
            await client.get(microgrid_id=1, dispatch_id=1)
    assert len(server.calls) == 1


def test_retry_policy_pauses() -> None:
    """Pauses grow by the multiplier up to the maximum; jitter keeps them in [half, whole]."""
    policy = RetryPolicy(attempts=5, initial=1, maximum=3, multiplier=2, jitter=False)
    assert list(policy.pauses()) == [1, 2, 3, 3]
    jittered = list(RetryPolicy(attempts=4, initial=timedelta(seconds=2), maximum=8).pauses())
    assert [low / 2 <= pause <= low for pause, low in zip(jittered, [2, 4, 8], strict=True)] == [
        True
    ] * 3
    for bad in (
        {"attempts": 0},
        {"initial": -1},
        {"initial": 2, "maximum": 1},
        {"multiplier": 0.5},
    ):
        with pytest.raises(ValueError, match=r"."):
            RetryPolicy(**bad)


def test_retry_policy_without_limit() -> None:
    """attempts=None pauses without end, capped at the maximum, never overflowing."""
    import itertools

    policy = RetryPolicy(attempts=None, initial=0.5, maximum=30, multiplier=10, jitter=False)
    pauses = policy.pauses()
    assert list(itertools.islice(pauses, 5)) == [0.5, 5, 30, 30, 30]
    assert next(itertools.islice(pauses, 5000, None)) == 30
    with pytest.raises(TypeError, match="int or None"):
        RetryPolicy(attempts=1.5)  # type: ignore[arg-type]


def test_stream_settings_are_checked() -> None:
    """stream_retry and stream_timeout are checked in the constructor and readable."""
    client = Client(server_url=URL, key="k", stream_timeout=timedelta(minutes=5))
    assert client.stream_timeout == timedelta(minutes=5)
    assert client.stream_retry == RetryPolicy(attempts=None, initial=0.5, maximum=30)
    assert Client(server_url=URL, key="k", stream_retry=None).stream_retry is None
    with pytest.raises(TypeError, match="stream_retry"):
        Client(server_url=URL, key="k", stream_retry=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="stream_timeout"):
        Client(server_url=URL, key="k", stream_timeout=300)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stream_timeout"):
        Client(server_url=URL, key="k", stream_timeout=timedelta(0))


# --- lifecycle -----------------------------------------------------------------------


async def test_calls_need_a_connection() -> None:
    """A client built with connect=False refuses calls until connect()."""
    server = Server(
        {_methods.GET: lambda _: bridge.encode_get_response(_dispatch(), microgrid_id=1)}
    )
    client = _client(server, connect=False)
    with pytest.raises(RuntimeError, match="connect"):
        await client.get(microgrid_id=1, dispatch_id=1)
    client.connect()
    assert (await client.get(microgrid_id=1, dispatch_id=1)).id == 1
    await client.disconnect()
    assert not client.is_connected


async def test_leaving_the_block_closes_the_transport() -> None:
    """The client closes the transport it was given when its block ends."""
    transport = MemoryTransport(Server({_methods.GET: lambda _: b""}))
    async with Client(server_url=URL, key="k", transport=transport) as client:
        assert client.transport is transport
    with pytest.raises(Cancelled):
        await transport.unary(_methods.GET, b"")


async def test_a_given_transport_cannot_reconnect_once_closed() -> None:
    """After disconnect() closed a given transport, connect() says so instead of failing later."""
    transport = MemoryTransport(Server({_methods.GET: lambda _: b""}))
    async with Client(server_url=URL, key="k", transport=transport) as client:
        await client.disconnect()
        with pytest.raises(RuntimeError, match="cannot be reopened"):
            client.connect()
        assert not client.is_connected
        with pytest.raises(RuntimeError, match="not connected"):
            client.stream(1)
    with pytest.raises(RuntimeError, match="cannot be reopened"):
        client.connect()


async def test_a_client_building_its_transport_reconnects() -> None:
    """disconnect() then connect() works when the client builds its own transports."""
    client = Client(server_url=URL, key="k", transport="h2", connect=True)
    await client.disconnect()
    client.connect()
    assert client.is_connected
    await client.disconnect()


async def test_a_given_transport_cannot_change_server() -> None:
    """connect() to another URL with a given transport instance is a ValueError."""
    client = _client(Server())
    with pytest.raises(ValueError, match="transport"):
        client.connect("grpc://elsewhere:1?ssl=false")
    client.connect(URL)  # the same URL is fine


async def test_h2_needs_the_async_with_block() -> None:
    """H2Transport runs background tasks, so using it outside `async with` is a RuntimeError."""
    client = Client(server_url=URL, key="k", transport="h2")
    with pytest.raises(RuntimeError, match="async with"):
        await client.get(microgrid_id=1, dispatch_id=1)


async def test_the_default_transport_is_h2_on_every_backend() -> None:
    """Without a choice, the client builds H2Transport, on asyncio and on trio."""
    from transports import H2Transport

    async with Client(server_url="grpc://127.0.0.1:9?ssl=false", key="k", retry=None) as client:
        with pytest.raises(ConnectError):
            await client.get(microgrid_id=1, dispatch_id=1)
        assert isinstance(client.transport, H2Transport)
        assert isinstance(client.transport, Transport)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_without_async_with_the_default_on_asyncio_is_grpclib() -> None:
    """A client used without `async with` on asyncio (as the official client's README does)
    builds GrpclibTransport, which needs no task group, instead of H2Transport."""
    from transports import GrpclibTransport

    client = Client(server_url="grpc://127.0.0.1:9?ssl=false", key="k", retry=None)
    try:
        with pytest.raises(ConnectError):
            await client.get(microgrid_id=1, dispatch_id=1)
        assert isinstance(client.transport, GrpclibTransport)
    finally:
        await client.disconnect()


async def test_reconnecting_to_another_url_replaces_the_transport() -> None:
    """connect(new_url) retires the built transport; the next call builds a new one."""
    async with Client(server_url="grpc://127.0.0.1:9?ssl=false", key="k", retry=None) as client:
        with pytest.raises(ConnectError):
            await client.get(microgrid_id=1, dispatch_id=1)
        first = client.transport
        client.connect("grpc://127.0.0.1:10?ssl=false")
        assert client.transport is None
        with pytest.raises(ConnectError):
            await client.get(microgrid_id=1, dispatch_id=1)
        assert client.transport is not first


async def test_invalid_request_errors_keep_their_type() -> None:
    """A server's InvalidArgument reaches the caller as InvalidArgument with context."""
    server = Server({_methods.CREATE: _failing(InvalidArgument("start time is in the past"))})
    async with _client(server) as client:
        with pytest.raises(InvalidArgument, match="create a dispatch of type 'X' in microgrid 1"):
            await client.create(1, "X", "NOW", None, TargetIds(1))


def test_list_request_page_token_and_size_exclusive() -> None:
    """The request record refuses page_size and page_token together."""
    with pytest.raises(ValueError, match="not both"):
        ListRequest(microgrid_id=1, page_size=1, page_token="t")
