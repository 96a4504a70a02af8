"""FakeDispatchService: API keys and request signatures.

Expected signatures are computed here by hand from the API's definition, independently
of the service's own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatch_client import Client, TargetIds
from dispatch_client._codec import _bridge as convert
from dispatch_client._methods import GET, LIST, STREAM
from dispatch_client._requests import ListRequest
from dispatch_client._types import SortField, SortOrder
from dispatch_client.testing._service import FakeDispatchService
from dispatch_client.testing._verify import sign
from transports import MemoryTransport, NotFound, Unauthenticated, Unimplemented

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
SECRET = b"sign-secret"
KEY = "the-key"
LIST_REQUEST = convert.encode_list_request(ListRequest(microgrid_id=1))

Metadata = tuple[tuple[str, str | bytes], ...]


def expected_signature(secret: bytes, key: str, ts: str, nonce: str, method_name: str) -> str:
    """HMAC-SHA256 of key ‖ ts ‖ nonce ‖ method name, url-safe base64 without padding."""
    digest = hmac.new(secret, (key + ts + nonce + method_name).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def fresh_nonce() -> str:
    """What clients send: url-safe base64 of 16 random bytes, padding kept."""
    return base64.urlsafe_b64encode(os.urandom(16)).decode()


def signed(
    method_name: str = "ListMicrogridDispatches",
    *,
    key: str = KEY,
    secret: bytes = SECRET,
    ts: int = NOW_TS,
    nonce: str | None = None,
) -> Metadata:
    """Metadata of a correctly signed request."""
    nonce = fresh_nonce() if nonce is None else nonce
    sig = expected_signature(secret, key, str(ts), nonce, method_name)
    return (("key", key), ("ts", str(ts)), ("nonce", nonce), ("sig", sig))


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def call(service: FakeDispatchService, metadata: Metadata, method: str = LIST) -> bytes:
    """Make one unary call directly (the handler answers synchronously)."""
    request = LIST_REQUEST if method == LIST else convert.encode_get_request(1, 1)
    result = service(method, request, metadata)
    assert isinstance(result, bytes)
    return result


# ------------------------------------------------------------------------- keys


def test_any_non_empty_key_is_accepted_without_a_key_list() -> None:
    """With keys=None, any non-empty key passes."""
    with FakeDispatchService() as service:
        page = convert.decode_list_response(call(service, (("key", "whatever"),)))
    assert page.total_items == 0


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param((), id="none"),
        pytest.param((("key", ""),), id="empty"),
        pytest.param((("authorization", "k"),), id="other-entry"),
    ],
)
def test_a_missing_key_is_unauthenticated(metadata: Metadata) -> None:
    """A call without a key is refused, saying where the key goes."""
    with FakeDispatchService() as service, pytest.raises(Unauthenticated, match="'key'"):
        call(service, metadata)


def test_only_listed_keys_are_accepted() -> None:
    """With a key list, a listed key passes and another is refused without being echoed."""
    with FakeDispatchService(keys=["alpha", "beta"]) as service:
        call(service, (("key", "beta"),))
        with pytest.raises(Unauthenticated) as caught:
            call(service, (("key", "gamma-secret-value"),))
    assert "not valid" in caught.value.message
    assert "gamma" not in str(caught.value)


def test_a_key_given_twice_is_refused() -> None:
    """Two `key` entries are ambiguous and refused."""
    with FakeDispatchService() as service, pytest.raises(Unauthenticated, match="2 times"):
        call(service, (("key", "a"), ("key", "b")))


def test_an_ascii_bytes_key_is_accepted() -> None:
    """A key sent as bytes is read as ASCII text."""
    with FakeDispatchService(keys=["alpha"]) as service:
        call(service, (("key", b"alpha"),))


def test_unknown_methods_are_unimplemented_before_auth() -> None:
    """An unknown method answers UNIMPLEMENTED even without credentials, as servers route first."""
    with FakeDispatchService(keys=["alpha"]) as service, pytest.raises(Unimplemented):
        service("/frequenz.api.dispatch.v1.MicrogridDispatchService/Nope", b"", ())


@pytest.mark.anyio
async def test_streams_need_a_key_too() -> None:
    """Opening a stream without a key is refused."""
    with FakeDispatchService(keys=["alpha"]) as service:
        transport = MemoryTransport(service)
        stream = transport.server_stream(STREAM, convert.encode_stream_request(1))
        with pytest.raises(Unauthenticated):
            await stream.__aenter__()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        pytest.param({"keys": "alpha"}, TypeError, "not a single str", id="str-keys"),
        pytest.param({"keys": [1]}, TypeError, "keys must be str", id="int-key"),
        pytest.param({"keys": [""]}, ValueError, "empty key", id="empty-key"),
        pytest.param({"sign_secret": ""}, ValueError, "must not be empty", id="empty-secret"),
        pytest.param({"sign_secret": 5}, TypeError, "str or bytes", id="int-secret"),
        pytest.param({"max_clock_skew": timedelta(seconds=-1)}, ValueError, "negative", id="skew"),
    ],
)
def test_bad_configuration_is_refused(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Wrong key lists, secrets and skews fail when the service is made."""
    with pytest.raises(error, match=message):
        FakeDispatchService(**arguments)


# -------------------------------------------------------------------- signatures


def test_sign_matches_the_definition() -> None:
    """The module's signer computes what the API defines, from a full path or a name."""
    nonce = fresh_nonce()
    expected = expected_signature(SECRET, KEY, "123", nonce, "GetMicrogridDispatch")
    assert sign(SECRET, key=KEY, ts="123", nonce=nonce, method=GET) == expected
    assert sign(SECRET, key=KEY, ts="123", nonce=nonce, method="GetMicrogridDispatch") == expected


@pytest.mark.parametrize("secret", [SECRET, SECRET.decode()])
def test_a_correct_signature_is_accepted(secret: str | bytes) -> None:
    """A request signed as the API defines passes (the secret may be str or bytes)."""
    with FakeDispatchService(sign_secret=secret, clock=Clock()) as service:
        call(service, signed())
        with pytest.raises(NotFound):
            call(service, signed("GetMicrogridDispatch"), method=GET)


def test_a_signature_with_padding_is_accepted() -> None:
    """Base64 padding on the signature is tolerated."""
    key, ts, nonce, sig = signed()
    metadata = (key, ts, nonce, ("sig", f"{sig[1]!s}="))
    with FakeDispatchService(sign_secret=SECRET, clock=Clock()) as service:
        call(service, metadata)


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(signed(secret=b"other-secret"), id="wrong-secret"),
        pytest.param(signed("GetMicrogridDispatch"), id="other-method"),
        pytest.param(
            tuple(
                ("key", "other-key") if name == "key" else (name, value) for name, value in signed()
            ),
            id="other-key",
        ),
    ],
)
def test_a_wrong_signature_is_refused(metadata: Metadata) -> None:
    """A signature made with another secret, method or key is refused."""
    with (
        FakeDispatchService(sign_secret=SECRET, clock=Clock()) as service,
        pytest.raises(Unauthenticated, match="signature does not match"),
    ):
        call(service, metadata)


@pytest.mark.parametrize("missing", ["ts", "nonce", "sig"])
def test_an_unsigned_request_is_refused(missing: str) -> None:
    """Without ts, nonce or sig the request is not signed, and the message says which."""
    metadata = tuple((n, v) for n, v in signed() if n != missing)
    with (
        FakeDispatchService(sign_secret=SECRET, clock=Clock()) as service,
        pytest.raises(Unauthenticated, match=f"not signed.*'{missing}'"),
    ):
        call(service, metadata)


@pytest.mark.parametrize("ts", ["soon", "-5", "1.5", "", "9" * 5000, "١٢٣"])
def test_a_malformed_ts_is_refused(ts: str) -> None:
    """A ts that is not whole Unix seconds is refused."""
    nonce = fresh_nonce()
    sig = expected_signature(SECRET, KEY, ts, nonce, "ListMicrogridDispatches")
    metadata = (("key", KEY), ("ts", ts), ("nonce", nonce), ("sig", sig))
    with (
        FakeDispatchService(sign_secret=SECRET, clock=Clock()) as service,
        pytest.raises(Unauthenticated, match="ts"),
    ):
        call(service, metadata)


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_a_stale_or_future_ts_is_refused(offset: int) -> None:
    """A ts farther than the allowed skew from the clock, either way, is refused."""
    with (
        FakeDispatchService(sign_secret=SECRET, clock=Clock()) as service,
        pytest.raises(Unauthenticated, match="stale"),
    ):
        call(service, signed(ts=NOW_TS + offset))


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_a_ts_within_the_skew_is_accepted(offset: int) -> None:
    """A ts up to the allowed skew away from the clock passes."""
    with FakeDispatchService(sign_secret=SECRET, clock=Clock()) as service:
        call(service, signed(ts=NOW_TS + offset))


def test_the_skew_is_configurable() -> None:
    """max_clock_skew sets how far ts may be from the clock."""
    with FakeDispatchService(
        sign_secret=SECRET, clock=Clock(), max_clock_skew=timedelta(seconds=10)
    ) as service:
        call(service, signed(ts=NOW_TS - 10))
        with pytest.raises(Unauthenticated, match="stale"):
            call(service, signed(ts=NOW_TS - 11))


def test_a_reused_nonce_is_refused() -> None:
    """The same nonce twice within the window is a replay, even with a new valid signature."""
    nonce = fresh_nonce()
    with FakeDispatchService(sign_secret=SECRET, clock=Clock()) as service:
        call(service, signed(nonce=nonce))
        with pytest.raises(Unauthenticated, match="nonce was already used"):
            call(service, signed(nonce=nonce))
        with pytest.raises(Unauthenticated, match="nonce was already used"):
            call(service, signed(nonce=nonce, ts=NOW_TS + 1))


def test_a_refused_request_does_not_burn_its_nonce() -> None:
    """A request with a bad signature does not use up the nonce it carried."""
    nonce = fresh_nonce()
    with FakeDispatchService(sign_secret=SECRET, clock=Clock()) as service:
        with pytest.raises(Unauthenticated, match="does not match"):
            call(service, signed(nonce=nonce, secret=b"wrong"))
        call(service, signed(nonce=nonce))


def test_nonces_are_forgotten_after_the_window() -> None:
    """Once a nonce's ts is stale, the nonce may appear again with a fresh ts."""
    clock = Clock()
    nonce = fresh_nonce()
    with FakeDispatchService(sign_secret=SECRET, clock=clock) as service:
        call(service, signed(nonce=nonce))
        clock.now = NOW + timedelta(minutes=6)
        call(service, signed(nonce=nonce, ts=NOW_TS + 360))
        with pytest.raises(Unauthenticated, match="nonce was already used"):
            call(service, signed(nonce=nonce, ts=NOW_TS + 361))


def test_an_overlong_nonce_is_refused() -> None:
    """Nonces longer than 256 characters are refused, so remembering them stays cheap."""
    with (
        FakeDispatchService(sign_secret=SECRET, clock=Clock()) as service,
        pytest.raises(Unauthenticated, match="longer than 256"),
    ):
        call(service, signed(nonce="n" * 257))


# ------------------------------------------------------------------ the real client


@pytest.mark.anyio
async def test_the_client_signs_as_the_service_verifies() -> None:
    """The library's Client, signing every call, creates, pages, updates, gets and deletes
    through the service (both sides written independently from the API's definition)."""
    start = datetime.now(UTC) + timedelta(days=1)
    with FakeDispatchService(keys=[KEY], sign_secret=SECRET) as service:
        async with Client(
            server_url="grpc://fake",
            key=KEY,
            sign_secret=SECRET,
            transport=MemoryTransport(service),
        ) as client:
            for index in range(5):
                await client.create(
                    1,
                    "charge" if index % 2 else "CHARGE",
                    start + index * timedelta(hours=1),
                    timedelta(hours=1),
                    TargetIds(index + 1),
                )
            pages = [
                [dispatch.id for dispatch in page]
                async for page in client.list(
                    1,
                    filter_queries=["charge"],
                    sort_by=SortField.START_TIME,
                    sort_order=SortOrder.ASCENDING,
                    page_size=2,
                )
            ]
            assert pages == [[1, 2], [3, 4], [5]]
            updated = await client.update(
                microgrid_id=1, dispatch_id=3, new_fields={"active": False}
            )
            assert updated.active is False
            assert await client.get(microgrid_id=1, dispatch_id=3) == updated
            await client.delete(microgrid_id=1, dispatch_id=3)
            assert [d.id for d in service.dispatches(1)] == [1, 2, 4, 5]
