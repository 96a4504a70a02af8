"""`as_channels_receiver()`: our stream receivers in frequenz-channels' select() and merge().

frequenz-channels runs on asyncio only, so these tests pin asyncio. The server is a
FakeDispatchService behind MemoryTransport; each stream uses `resync=True`, which
delivers the dispatches that exist as CREATED events, so no test races a subscription.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from frequenz.channels import Receiver, merge, select, selected_from

from dispatch_client import (
    Client,
    DispatchEvent,
    Event,
    TargetIds,
    Unauthenticated,
    as_channels_receiver,
)
from dispatch_client import _channels as channels_module
from dispatch_client.testing import FakeDispatchService
from transports import MemoryTransport

TIMEOUT = 10


@pytest.fixture
def anyio_backend() -> str:
    """frequenz-channels runs on asyncio only."""
    return "asyncio"


@asynccontextmanager
async def _client(key: str = "k") -> AsyncIterator[Client]:
    """A client on a fresh service that accepts the key "k"."""
    with FakeDispatchService(keys=["k"]) as service:
        async with Client(
            server_url="grpc://fake?ssl=false", key=key, transport=MemoryTransport(service)
        ) as client:
            yield client


async def _create(client: Client, microgrid_id: int, kind: str) -> int:
    start = datetime.now(UTC) + timedelta(hours=1)
    created = await client.create(microgrid_id, kind, start, None, TargetIds(1))
    return created.id


@pytest.mark.anyio
async def test_select_tells_the_receivers_apart(anyio_backend: str) -> None:
    """select() over two wrapped receivers yields each microgrid's events from its receiver."""
    with anyio.fail_after(TIMEOUT):
        async with _client() as client:
            first = await _create(client, 1, "ONE")
            second = await _create(client, 2, "TWO")
            one = as_channels_receiver(client.stream(1, resync=True))
            two = as_channels_receiver(client.stream(2, resync=True))
            assert isinstance(one, Receiver)
            seen: dict[str, int] = {}
            async for selected in select(one, two):
                if selected_from(selected, one):
                    seen["one"] = selected.message.dispatch.id
                elif selected_from(selected, two):
                    seen["two"] = selected.message.dispatch.id
                if len(seen) == 2:
                    break
            assert seen == {"one": first, "two": second}
            one.close()
            two.close()


@pytest.mark.anyio
async def test_merge_and_map(anyio_backend: str) -> None:
    """merge() of wrapped receivers delivers every event; map() works on the adapter."""
    with anyio.fail_after(TIMEOUT):
        async with _client() as client:
            ids = {await _create(client, 1, "A"), await _create(client, 2, "B")}
            merged = merge(
                as_channels_receiver(client.stream(1, resync=True)),
                as_channels_receiver(client.stream(2, resync=True)).map(lambda e: e),
            )
            got: set[int] = set()
            async for event in merged:
                assert isinstance(event, DispatchEvent)
                assert event.event is Event.CREATED
                got.add(event.dispatch.id)
                if got == ids:
                    break
            merged.close()


@pytest.mark.anyio
async def test_iteration_ends_when_the_client_closes(anyio_backend: str) -> None:
    """Closing the client stops the adapter: ready() is False and iteration ends."""
    with anyio.fail_after(TIMEOUT):
        async with _client() as client:
            wrapped = as_channels_receiver(client.stream(1))
        assert [event async for event in wrapped] == []
        assert await wrapped.ready() is False


@pytest.mark.anyio
async def test_a_fatal_stream_error_comes_from_consume(anyio_backend: str) -> None:
    """A stream refused for good raises our Unauthenticated from consume(), not a channels error."""
    with anyio.fail_after(TIMEOUT):
        async with _client(key="wrong") as client:
            wrapped = as_channels_receiver(client.stream(1))
            assert await wrapped.ready() is True
            with pytest.raises(Unauthenticated):
                wrapped.consume()
            assert await wrapped.ready() is False


def test_rejects_other_receivers() -> None:
    """Only what Client.stream() returns can be wrapped."""
    with pytest.raises(TypeError, match="DispatchReceiver"):
        as_channels_receiver([])  # type: ignore[arg-type]


def test_without_frequenz_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without frequenz-channels installed the adapter says which extra to install."""
    monkeypatch.setitem(sys.modules, "frequenz.channels", None)
    channels_module._adapter_class.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"dispatch-client\[channels\]"):
            channels_module._adapter_class()
    finally:
        channels_module._adapter_class.cache_clear()
