"""The client's lean unary path: what it builds once, what it never does on success.

Behaviour only (no timing): per-client precomputed metadata, fresh signatures, no
formatting of the caller's values unless an error needs them, one encode and one decode
per call; over MemoryTransport on asyncio and trio.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import attrs
import pytest

from dispatch_client import Client, EndCriteria, Frequency, RecurrenceRule, TargetIds, _methods
from dispatch_client import _client as client_module
from dispatch_client._codec import FAST, Codec
from dispatch_client._codec import _bridge as bridge
from dispatch_client._demo import example_dispatch
from dispatch_client._requests import CreateRequest, check_payload
from transports import MemoryTransport, NotFound, ProtocolError

pytestmark = pytest.mark.anyio

URL = "grpc://dispatch.test:50051?ssl=false"
Meta = tuple[tuple[str, str | bytes], ...]


def _dispatch(number: int = 1) -> Any:
    return attrs.evolve(example_dispatch(), id=number)


def _answer(method: str, request: bytes) -> bytes:
    """A well-formed answer to each unary method (the fake's answers, in short)."""
    if method == _methods.GET:
        return bridge.encode_get_response(_dispatch(), microgrid_id=1)
    if method == _methods.CREATE:
        created: CreateRequest = bridge.decode_create_request(request)
        return bridge.encode_create_response(attrs.evolve(_dispatch(42), type=created.type))
    if method == _methods.UPDATE:
        return bridge.encode_update_response(_dispatch(3))
    if method == _methods.DELETE:
        return bridge.encode_delete_response(1, 1)
    if method == _methods.LIST:
        return bridge.encode_list_response(
            [_dispatch(1), _dispatch(2)], next_page_token=None, total_items=2
        )
    raise AssertionError(f"unexpected call of {method}")


class _Recorder:
    """A handler that answers every call and keeps each call's metadata object."""

    def __init__(self) -> None:
        self.metadata: list[Meta] = []

    def __call__(self, method: str, request: bytes, metadata: Meta) -> bytes:
        self.metadata.append(metadata)
        return _answer(method, request)


class _Loud(str):
    """A str that fails the test if anything formats it (str(), repr(), format())."""

    def __str__(self) -> str:
        raise AssertionError("formatted a value on the success path")

    def __repr__(self) -> str:
        raise AssertionError("formatted a value on the success path")

    def __format__(self, spec: str) -> str:
        raise AssertionError("formatted a value on the success path")


async def test_unsigned_metadata_is_per_client_and_carries_its_key() -> None:
    """Each client sends its own key, and every unsigned call of it the same metadata."""
    with anyio.fail_after(10):
        first, second = _Recorder(), _Recorder()
        async with (
            Client(server_url=URL, key="key-a", transport=MemoryTransport(first)) as a,
            Client(server_url=URL, key="key-b", transport=MemoryTransport(second)) as b,
        ):
            for _ in range(2):
                await a.get(microgrid_id=1, dispatch_id=1)
                await b.get(microgrid_id=1, dispatch_id=1)
            await a.delete(microgrid_id=1, dispatch_id=1)
    assert first.metadata == [(("key", "key-a"),)] * 3
    assert second.metadata == [(("key", "key-b"),)] * 2


async def test_signing_stays_fresh_per_call_and_per_method() -> None:
    """Signed calls get a new nonce and signature each time, each valid for its method."""
    with anyio.fail_after(10):
        recorder = _Recorder()
        async with Client(
            server_url=URL, key="k", sign_secret=b"s3cret", transport=MemoryTransport(recorder)
        ) as client:
            for _ in range(3):
                await client.get(microgrid_id=1, dispatch_id=1)
            await client.delete(microgrid_id=1, dispatch_id=1)
    names = ["GetMicrogridDispatch"] * 3 + ["DeleteMicrogridDispatch"]
    signatures = set()
    for metadata, name in zip(recorder.metadata, names, strict=True):
        entries = {key: str(value) for key, value in metadata}
        message = ("k" + entries["ts"] + entries["nonce"] + name).encode()
        digest = hmac.new(b"s3cret", message, hashlib.sha256).digest()
        assert entries["sig"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        signatures.add(entries["sig"])
    assert len(signatures) == 4


async def test_success_formats_none_of_the_callers_values() -> None:
    """A create() that succeeds formats neither its type nor its payload keys."""
    loud = _Loud("BATTERY_CHARGE")
    with anyio.fail_after(10):
        async with Client(
            server_url=URL, key="k", transport=MemoryTransport(_Recorder())
        ) as client:
            created = await client.create(
                1,
                loud,
                datetime.now(UTC) + timedelta(hours=1),
                timedelta(minutes=15),
                TargetIds(1, 2),
                payload={_Loud("power_w"): 5.0, "nested": {_Loud("limit"): [1, 2.5, "x"]}},
            )
    assert created.type == "BATTERY_CHARGE"


async def test_errors_still_name_the_call_and_its_values() -> None:
    """The context formatted only on failure is the same text: the call and its values."""

    def failing(method: str, request: bytes, metadata: Meta) -> bytes:
        if method == _methods.CREATE:
            return b"\xff\xff"  # not a CreateMicrogridDispatchResponse
        raise NotFound("no such dispatch")

    with anyio.fail_after(10):
        async with Client(server_url=URL, key="k", transport=MemoryTransport(failing)) as client:
            with pytest.raises(NotFound) as caught:
                await client.get(microgrid_id=4, dispatch_id=9)
            assert caught.value.message == "get dispatch 9 of microgrid 4: no such dispatch"
            with pytest.raises(
                ProtocolError,
                match=r"^create a dispatch of type 'X' in microgrid 2: the server's answer",
            ):
                await client.create(2, "X", "NOW", None, TargetIds(1))


def _counting(counts: Counter[str]) -> Codec:
    """The fast codec, counting each function's calls in `counts`."""

    def wrap(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            counts[name] += 1
            return function(*args)

        return counted

    return Codec(
        **{field.name: wrap(field.name, getattr(FAST, field.name)) for field in attrs.fields(Codec)}
    )


async def test_each_call_encodes_once_and_decodes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """get, create, update, delete and a list page each encode one request, decode one answer."""
    counts: Counter[str] = Counter()
    monkeypatch.setattr(client_module, "FAST", _counting(counts))
    rule = RecurrenceRule(frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(count=3))
    with anyio.fail_after(10):
        async with Client(
            server_url=URL, key="k", transport=MemoryTransport(_Recorder())
        ) as client:
            await client.get(microgrid_id=1, dispatch_id=1)
            await client.create(
                1, "T", datetime.now(UTC) + timedelta(hours=1), None, TargetIds(1),
                payload={"a": [1, {"b": None}]}, recurrence=rule,
            )  # fmt: skip
            await client.update(microgrid_id=1, dispatch_id=3, new_fields={"active": False})
            await client.delete(microgrid_id=1, dispatch_id=1)
            pages = [page async for page in client.list(1)]
    assert len(pages) == 1
    assert counts == Counter(
        {
            f"{verb}_{what}_{kind}": 1
            for what in ("get", "create", "update", "delete", "list")
            for verb, kind in (("encode", "request"), ("decode", "response"))
        }
    )


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        ({"limits": [1.0, float("nan")]}, ValueError, r"^payload\['limits'\]\[1\] = nan: NaN"),
        ({"a": {"b": 2**60}}, ValueError, r"^payload\['a'\]\['b'\] = 1152921504606846976 is"),
        ({"a": [{"b": object()}]}, TypeError, r"^payload\['a'\]\[0\]\['b'\] must be None"),
        ({"a": {3: 1}}, TypeError, r"^payload\['a'\] has a non-str key 3 \(int\)"),
        ({"x": float("-inf")}, ValueError, r"^payload\['x'\] = -inf: NaN and infinities"),
    ],
)
def test_payload_errors_still_give_the_path(
    payload: dict[str, Any], error: type[Exception], message: str
) -> None:
    """The path of a bad payload value, built only for the error, names every key and index."""
    with pytest.raises(error, match=message):
        check_payload(payload)


def test_payload_depth_limit_names_the_deepest_container() -> None:
    """Nesting past the limit is rejected with the path of the first container too deep."""
    payload: dict[str, Any] = {}
    node = payload
    for _ in range(45):
        node["k"] = {}
        node = node["k"]
    with pytest.raises(ValueError, match=r"^payload(\['k'\]){40} nests deeper than 40 levels"):
        check_payload(payload)
