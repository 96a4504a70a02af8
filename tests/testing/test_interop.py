"""The official client (frequenz-client-dispatch, on grpcio) against our served fake service.

This proves the fake is a drop-in test server for the whole ecosystem: the official
client's create, get, list with filters and pages, update, delete and its stream all work
against `FakeDispatchService` served over grpclib. asyncio only: the official client runs
on nothing else. The official client emits its own DeprecationWarnings (from its
dependencies), which are not ours to fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatch_client.testing import FakeDispatchService, serve

official = pytest.importorskip("frequenz.client.dispatch")
grpc = pytest.importorskip("grpc")

from frequenz.client.common.microgrid import MicrogridId  # noqa: E402
from frequenz.client.dispatch.recurrence import (  # noqa: E402
    EndCriteria,
    Frequency,
    RecurrenceRule,
)
from frequenz.client.dispatch.types import (  # noqa: E402
    BatteryType,
    Event,
    TargetCategories,
    TargetIds,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

KEY = "official-key"
MICROGRID = MicrogridId(1)


@pytest.fixture
async def client(anyio_backend: str) -> AsyncIterator[Any]:
    """An official DispatchApiClient connected to a served fake service."""
    with FakeDispatchService(keys=[KEY]) as service:
        async with serve(service) as url:
            the_client = official.DispatchApiClient(server_url=url, auth_key=KEY)
            try:
                yield the_client
            finally:
                for broadcaster in list(the_client._streams.values()):
                    await broadcaster.stop()
                await the_client.disconnect()


def _later(hours: float = 1) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


async def test_create_get_update_delete(client: Any) -> None:
    """The official client's unary calls round-trip through the fake."""
    rule = RecurrenceRule(frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(count=2))
    created = await client.create(
        microgrid_id=MICROGRID,
        type="CHARGE",
        start_time=_later(),
        duration=timedelta(minutes=5),
        target=TargetIds(1, 2),
        payload={"power": 1.5},
        recurrence=rule,
    )
    assert int(created.id) >= 1
    assert created.recurrence == rule
    assert created.payload == {"power": 1.5}
    assert await client.get(microgrid_id=MICROGRID, dispatch_id=created.id) == created

    updated = await client.update(
        microgrid_id=MICROGRID,
        dispatch_id=created.id,
        new_fields={"active": False, "recurrence.interval": 3, "duration": None},
    )
    assert updated.active is False
    assert updated.recurrence.interval == 3
    assert updated.duration is None

    await client.delete(microgrid_id=MICROGRID, dispatch_id=created.id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.get(microgrid_id=MICROGRID, dispatch_id=created.id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_with_filters_and_pages(client: Any) -> None:
    """The official client's paging (size first, then tokens) and filters work."""
    for n in range(7):
        await client.create(
            microgrid_id=MICROGRID,
            type="CHARGE" if n % 2 else "DISCHARGE",
            start_time=_later(1 + n),
            duration=None,
            target=TargetIds(n + 1),
            dry_run=n == 0,
        )
    pages = [list(page) async for page in client.list(microgrid_id=MICROGRID, page_size=3)]
    assert [len(page) for page in pages] == [3, 3, 1]
    queried = [
        d
        async for page in client.list(microgrid_id=MICROGRID, filter_queries=["DIS"])
        for d in page
    ]
    assert len(queried) == 4
    targeted = [
        d
        async for page in client.list(
            microgrid_id=MICROGRID, target_components=[TargetIds(1), TargetIds(2)]
        )
        for d in page
    ]
    assert sorted(int(next(iter(d.target))) for d in targeted) == [1, 2]
    dry = [d async for page in client.list(microgrid_id=MICROGRID, dry_run=True) for d in page]
    assert len(dry) == 1
    window = [
        d
        async for page in client.list(
            microgrid_id=MICROGRID, start_from=_later(0.5), start_to=_later(2.5)
        )
        for d in page
    ]
    assert len(window) == 2


async def test_stream_events(client: Any) -> None:
    """The official client's stream receives CREATED, UPDATED and DELETED in order."""
    receiver = client.stream(MICROGRID)
    # The official stream connects in a background task; give it a moment, then check
    # that events made after that arrive.
    await asyncio.sleep(0.3)
    created = await client.create(
        microgrid_id=MICROGRID,
        type="X",
        start_time="NOW",
        duration=None,
        target=TargetCategories(BatteryType.LI_ION),
    )
    await client.update(
        microgrid_id=MICROGRID, dispatch_id=created.id, new_fields={"active": False}
    )
    await client.delete(microgrid_id=MICROGRID, dispatch_id=created.id)
    events = [await asyncio.wait_for(receiver.receive(), 10) for _ in range(3)]
    assert [event.event for event in events] == [Event.CREATED, Event.UPDATED, Event.DELETED]
    assert {event.dispatch.id for event in events} == {created.id}
    assert events[1].dispatch.active is False
