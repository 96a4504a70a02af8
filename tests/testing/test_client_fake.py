"""The whole client API against FakeDispatchService: in memory and served over real gRPC.

Every test runs through `MemoryTransport` and through a served instance with H2Transport
(asyncio and trio) and GrpclibTransport (asyncio only), so the client, the transports,
the server adapter and the fake's semantics are exercised together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from dispatch_client import (
    BatteryType,
    Client,
    DispatchApiClient,
    ElectricalComponentCategory,
    EndCriteria,
    Frequency,
    InvalidArgument,
    NotFound,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetIds,
    Unauthenticated,
    Weekday,
)
from dispatch_client._client import TransportName
from dispatch_client.testing import FakeDispatchService, serve
from transports import MemoryTransport

pytestmark = pytest.mark.anyio

KEY = "test-key"
SECRET = "sign-me"
ClientFactory = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture(params=["memory", "h2", "grpclib"])
def open_client(request: pytest.FixtureRequest, anyio_backend: str) -> ClientFactory:
    """Open a client on a fresh service, through the transport the parameter names."""
    kind = str(request.param)
    if kind == "grpclib" and anyio_backend != "asyncio":
        pytest.skip("GrpclibTransport runs on asyncio only")

    @asynccontextmanager
    async def factory(
        key: str = KEY,
        sign_secret: str | None = None,
        accepted: list[str] | None = None,
        server_secret: str | None = None,
    ) -> AsyncIterator[Client]:
        with FakeDispatchService(keys=accepted, sign_secret=server_secret) as service:
            if kind == "memory":
                async with DispatchApiClient(
                    server_url="grpc://fake?ssl=false",
                    auth_key=key,
                    sign_secret=sign_secret,
                    transport=MemoryTransport(service),
                ) as client:
                    yield client
            else:
                name: TransportName = "h2" if kind == "h2" else "grpclib"
                async with (
                    serve(service) as url,
                    Client(
                        server_url=url, key=key, sign_secret=sign_secret, transport=name
                    ) as client,
                ):
                    yield client

    return factory


def _later(hours: float = 1) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


async def test_create_get_update_delete(open_client: ClientFactory) -> None:
    """A dispatch goes through its whole life with the server's ids and times."""
    start = _later()
    rule = RecurrenceRule(
        frequency=Frequency.DAILY,
        interval=1,
        end_criteria=EndCriteria(count=3),
        byweekdays=(Weekday.MONDAY, Weekday.FRIDAY),
    )
    async with open_client() as client:
        created = await client.create(
            1,
            "BATTERY_CHARGE",
            start,
            timedelta(minutes=30),
            TargetCategories(BatteryType.LI_ION, ElectricalComponentCategory.INVERTER),
            payload={"power": 5.5, "nested": {"list": [1, "two", None]}},
            recurrence=rule,
        )
        assert created.id >= 1
        assert created.start_time == start
        assert created.recurrence == rule
        assert created.payload == {"power": 5.5, "nested": {"list": [1, "two", None]}}
        assert created.end_time is not None
        assert await client.get(microgrid_id=1, dispatch_id=created.id) == created

        updated = await client.update(
            microgrid_id=1,
            dispatch_id=created.id,
            new_fields={
                "duration": None,
                "active": False,
                "recurrence.interval": 2,
                "target": TargetIds(4, 5),
            },
        )
        assert updated.duration is None
        assert not updated.active
        assert updated.recurrence is not None
        assert updated.recurrence.interval == 2
        assert updated.recurrence.byweekdays == rule.byweekdays  # untouched sub-field
        assert updated.target == TargetIds(4, 5)
        assert updated.update_time >= created.update_time
        assert updated.create_time == created.create_time

        await client.delete(microgrid_id=1, dispatch_id=created.id)
        with pytest.raises(NotFound, match=f"get dispatch {created.id} of microgrid 1"):
            await client.get(microgrid_id=1, dispatch_id=created.id)
        with pytest.raises(NotFound):
            await client.delete(microgrid_id=1, dispatch_id=created.id)


async def test_create_now_starts_at_once(open_client: ClientFactory) -> None:
    """`"NOW"` makes the server set the start time to its current time."""
    async with open_client() as client:
        before = datetime.now(UTC) - timedelta(seconds=1)
        created = await client.create(1, "X", "NOW", None, TargetIds(1))
        assert before <= created.start_time <= datetime.now(UTC) + timedelta(seconds=1)
        assert created.end_time is None


async def test_other_microgrids_do_not_see_a_dispatch(open_client: ClientFactory) -> None:
    """A dispatch id of one microgrid is NotFound through another."""
    async with open_client() as client:
        created = await client.create(1, "X", _later(), None, TargetIds(1))
        with pytest.raises(NotFound):
            await client.get(microgrid_id=2, dispatch_id=created.id)
        pages = [page async for page in client.list(2)]
        assert [len(page) for page in pages] == [0]


async def test_pages_and_filters(open_client: ClientFactory) -> None:
    """Listing pages through the filtered set in the requested order, totals included."""
    base = _later(0)  # one reference time: a second boundary between calls must not matter
    async with open_client() as client:
        for n in range(25):
            await client.create(
                1,
                "CHARGE" if n % 2 else "DISCHARGE",
                base + timedelta(hours=1 + n),
                timedelta(minutes=5),
                TargetIds(n % 3 + 1),
                dry_run=n % 5 == 0,
                recurrence=RecurrenceRule(frequency=Frequency.HOURLY, interval=1)
                if n < 4
                else None,
            )
        pages = [
            page
            async for page in client.list(
                1, page_size=10, sort_by=SortField.START_TIME, sort_order=SortOrder.ASCENDING
            )
        ]
        assert [len(page) for page in pages] == [10, 10, 5]
        assert {page.total_items for page in pages} == {25}
        starts = [d.start_time for page in pages for d in page]
        assert starts == sorted(starts)

        async def ids(**criteria: object) -> list[int]:
            return sorted([d.id async for page in client.list(1, **criteria) for d in page])  # type: ignore[arg-type]

        everything = await ids()
        assert len(everything) == 25
        assert len(await ids(filter_queries=["DIS"])) == 13
        assert (
            await ids(filter_queries=[f"#{everything[0]}", f"#{everything[1]}"]) == everything[:2]
        )
        assert len(await ids(dry_run=True)) == 5
        assert len(await ids(recurring=True)) == 4
        assert len(await ids(recurring=False)) == 21
        assert len(await ids(target_components=[TargetIds(1)])) == 9
        assert len(await ids(target_components=[TargetIds(1), TargetIds(2)])) == 17
        assert await ids(dispatch_ids=everything[3:5]) == everything[3:5]
        assert (
            len(await ids(start_from=base + timedelta(hours=1), start_to=base + timedelta(hours=3)))
            == 2
        )
        assert len(await ids(active=False)) == 0


async def test_validation_is_invalid_argument(open_client: ClientFactory) -> None:
    """The server rejects what the client cannot check, with InvalidArgument."""
    async with open_client() as client:
        with pytest.raises(InvalidArgument, match="create a dispatch"):
            await client.create(1, "", _later(), None, TargetIds(1))
        with pytest.raises(InvalidArgument):
            await client.create(1, "X", _later(), None, TargetIds())


async def test_unknown_keys_are_unauthenticated(open_client: ClientFactory) -> None:
    """A key the service does not accept is Unauthenticated, and its message hides the key."""
    async with open_client(key="wrong-key", accepted=[KEY]) as client:
        with pytest.raises(Unauthenticated) as caught:
            await client.get(microgrid_id=1, dispatch_id=1)
    assert "wrong-key" not in str(caught.value)


async def test_signed_calls_pass_the_fakes_check(open_client: ClientFactory) -> None:
    """The client's signatures satisfy the fake's independent verifier."""
    async with open_client(sign_secret=SECRET, accepted=[KEY], server_secret=SECRET) as client:
        created = await client.create(1, "X", _later(), None, TargetIds(1))
        assert (await client.get(microgrid_id=1, dispatch_id=created.id)).id == created.id


@pytest.mark.parametrize("client_secret", [None, "another-secret"])
async def test_unsigned_or_wrongly_signed_calls_fail(
    open_client: ClientFactory, client_secret: str | None
) -> None:
    """A service that wants signatures rejects unsigned calls and wrong secrets."""
    async with open_client(sign_secret=client_secret, server_secret=SECRET) as client:
        with pytest.raises(Unauthenticated):
            await client.get(microgrid_id=1, dispatch_id=1)
