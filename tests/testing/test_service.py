"""FakeDispatchService: the API's semantics, driven through a MemoryTransport."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import attrs
import pytest
from frequenz.api.common.v1alpha8.microgrid.electrical_components import (
    electrical_components_pb2 as components_pb2,
)
from frequenz.api.dispatch.v1 import dispatch_pb2 as opb
from google.protobuf import field_mask_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch_client._codec import _bridge as convert
from dispatch_client._methods import CREATE, DELETE, GET, LIST, STREAM, UPDATE
from dispatch_client._requests import (
    CreateRequest,
    DispatchFilter,
    ListRequest,
    TimeInterval,
    UpdateRequest,
)
from dispatch_client._types import (
    BatteryType,
    Dispatch,
    ElectricalComponentCategory,
    EndCriteria,
    Event,
    Frequency,
    InverterType,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetIds,
    Weekday,
)
from dispatch_client.testing import _service
from dispatch_client.testing._service import FakeDispatchService
from tests.strategies import create_requests, list_requests, update_requests
from transports import (
    Internal,
    InvalidArgument,
    MemoryTransport,
    NotFound,
    ResourceExhausted,
    RpcError,
    Unavailable,
    Unimplemented,
)

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
METADATA = (("key", "test-key"),)
BATTERY = ElectricalComponentCategory.BATTERY
METER = ElectricalComponentCategory.METER
INVERTER = ElectricalComponentCategory.INVERTER


class Clock:
    """A settable clock for the service."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Api:
    """The service's methods as coroutines over a MemoryTransport (the client's codecs)."""

    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport

    async def call(self, method: str, request: bytes) -> bytes:
        return await self.transport.unary(method, request, metadata=METADATA)

    async def create(self, **fields: Any) -> Dispatch:
        values: dict[str, Any] = {
            "microgrid_id": 1,
            "type": "CHARGE",
            "start_time": NOW + HOUR,
            "duration": timedelta(minutes=15),
            "target": TargetIds(1, 2),
        }
        values.update(fields)
        request = convert.encode_create_request(CreateRequest(**values))
        return convert.decode_create_response(await self.call(CREATE, request))

    async def get(self, microgrid_id: int, dispatch_id: int) -> Dispatch:
        request = convert.encode_get_request(microgrid_id, dispatch_id)
        return convert.decode_get_response(await self.call(GET, request))

    async def update(self, microgrid_id: int, dispatch_id: int, **fields: Any) -> Dispatch:
        request = UpdateRequest(microgrid_id=microgrid_id, dispatch_id=dispatch_id, fields=fields)
        data = await self.call(UPDATE, convert.encode_update_request(request))
        return convert.decode_update_response(data)

    async def delete(self, microgrid_id: int, dispatch_id: int) -> None:
        await self.call(DELETE, convert.encode_delete_request(microgrid_id, dispatch_id))

    async def list(self, **fields: Any) -> convert.ListPage:
        values: dict[str, Any] = {"microgrid_id": 1}
        values.update(fields)
        request = convert.encode_list_request(ListRequest(**values))
        return convert.decode_list_response(await self.call(LIST, request))


@pytest.fixture
def clock() -> Clock:
    """The service's clock, at NOW."""
    return Clock(NOW)


@pytest.fixture
def service(clock: Clock) -> Iterator[FakeDispatchService]:
    """A service in memory with a fixed clock."""
    with FakeDispatchService(clock=clock) as service:
        yield service


@pytest.fixture
def api(service: FakeDispatchService) -> Api:
    """The service behind a MemoryTransport."""
    return Api(MemoryTransport(service))


def _pb_create(
    *,
    start: datetime | None = NOW + HOUR,
    start_immediately: bool | None = None,
    type_: str = "CHARGE",
    target: opb.TargetComponents | None = None,
    recurrence: opb.RecurrenceRule | None = None,
) -> bytes:
    """A create request built with the official protobuf classes, to send what our
    domain types refuse to build."""
    data = opb.DispatchData(type=type_, duration=60, is_active=True)
    if start is not None:
        data.start_time.FromDatetime(start)
    data.target.CopyFrom(
        target
        if target is not None
        else opb.TargetComponents(component_ids=opb.TargetComponents.IdSet(ids=[1]))
    )
    if recurrence is not None:
        data.recurrence.CopyFrom(recurrence)
    request = opb.CreateMicrogridDispatchRequest(microgrid_id=1, dispatch_data=data)
    if start_immediately is not None:
        request.start_immediately = start_immediately
    serialized: bytes = request.SerializeToString()
    return serialized


# ----------------------------------------------------------------- create and get


@pytest.mark.anyio
async def test_create_returns_the_dispatch_with_server_fields(api: Api) -> None:
    """A create answers the dispatch as asked, with id 1, the clock's times and an end time."""
    created = await api.create(payload={"power": 5.0}, dry_run=True)
    assert created.id == 1
    assert created.type == "CHARGE"
    assert created.start_time == NOW + HOUR
    assert created.duration == timedelta(minutes=15)
    assert created.target == TargetIds(1, 2)
    assert created.active is True
    assert created.dry_run is True
    assert created.payload == {"power": 5.0}
    assert created.create_time == created.update_time == NOW
    assert created.end_time == NOW + HOUR + timedelta(minutes=15)
    assert await api.get(1, 1) == created


@pytest.mark.anyio
async def test_start_immediately_starts_now(api: Api, clock: Clock) -> None:
    """A create with start_immediately gets the clock's time as its start time."""
    clock.advance(timedelta(seconds=7))
    created = await api.create(start_time="NOW")
    assert created.start_time == NOW + timedelta(seconds=7)


@pytest.mark.anyio
async def test_a_start_within_the_grace_period_is_accepted(api: Api) -> None:
    """A start time a little in the past (clock skew) is accepted."""
    created = await api.create(start_time=NOW - timedelta(seconds=30))
    assert created.start_time == NOW - timedelta(seconds=30)


@pytest.mark.anyio
async def test_ids_are_unique_across_microgrids_and_never_reused(api: Api) -> None:
    """Ids come from one counter for every microgrid and a deleted id is not given again."""
    first = await api.create(microgrid_id=1)
    second = await api.create(microgrid_id=2)
    await api.delete(2, second.id)
    third = await api.create(microgrid_id=1)
    assert (first.id, second.id, third.id) == (1, 2, 3)


@pytest.mark.anyio
async def test_another_microgrids_dispatch_is_not_found(api: Api) -> None:
    """Get, update and delete through another microgrid's id answer NOT_FOUND."""
    created = await api.create(microgrid_id=1)
    with pytest.raises(NotFound, match="dispatch 1 not found in microgrid 2"):
        await api.get(2, created.id)
    with pytest.raises(NotFound, match="dispatch 1 not found in microgrid 2"):
        await api.update(2, created.id, is_active=False)
    with pytest.raises(NotFound, match="dispatch 1 not found in microgrid 2"):
        await api.delete(2, created.id)
    assert await api.get(1, created.id) == created


@pytest.mark.anyio
async def test_delete_removes_the_dispatch(api: Api, service: FakeDispatchService) -> None:
    """After a delete, get and a second delete answer NOT_FOUND."""
    created = await api.create()
    await api.delete(1, created.id)
    assert service.dispatches(1) == []
    with pytest.raises(NotFound, match="dispatch 1 not found in microgrid 1"):
        await api.get(1, created.id)
    with pytest.raises(NotFound):
        await api.delete(1, created.id)


@pytest.mark.anyio
async def test_dispatches_is_a_snapshot_in_id_order(api: Api, service: FakeDispatchService) -> None:
    """`dispatches()` lists one microgrid's dispatches by id."""
    one = await api.create(microgrid_id=1)
    await api.create(microgrid_id=2)
    three = await api.create(microgrid_id=1)
    assert service.dispatches(1) == [one, three]
    assert service.dispatches(3) == []


_DAILY = opb.RecurrenceRule.Frequency.FREQUENCY_DAILY
_FREQUENCY = opb.RecurrenceRule.Frequency.ValueType
_WEEKDAY = opb.RecurrenceRule.Weekday.ValueType
_CATEGORY_UNSPECIFIED = components_pb2.ElectricalComponentCategory.ValueType(0)


@pytest.mark.parametrize(
    ("request_bytes", "message"),
    [
        pytest.param(_pb_create(type_=""), "type is empty", id="empty-type"),
        pytest.param(_pb_create(type_="  "), "type is empty", id="blank-type"),
        pytest.param(_pb_create(start=None), "neither a start time", id="no-start"),
        pytest.param(
            _pb_create(start=datetime(1970, 1, 1, tzinfo=UTC)), "start_time is missing", id="epoch"
        ),
        pytest.param(_pb_create(start=NOW - 2 * HOUR), "is in the past", id="past"),
        pytest.param(
            _pb_create(target=opb.TargetComponents()), "the target is empty", id="no-target"
        ),
        pytest.param(
            _pb_create(
                target=opb.TargetComponents(component_ids=opb.TargetComponents.IdSet(ids=[]))
            ),
            "the target is empty",
            id="empty-ids",
        ),
        pytest.param(
            _pb_create(
                target=opb.TargetComponents(
                    component_categories_types=opb.TargetComponents.CategoryTypeSet(
                        categories=[
                            opb.TargetComponents.CategoryAndType(category=_CATEGORY_UNSPECIFIED)
                        ]
                    )
                )
            ),
            "category UNSPECIFIED",
            id="unspecified-category",
        ),
        pytest.param(
            _pb_create(recurrence=opb.RecurrenceRule(freq=_DAILY, interval=0)),
            "interval must be >= 1",
            id="interval-0",
        ),
        pytest.param(
            _pb_create(recurrence=opb.RecurrenceRule(freq=_FREQUENCY(99), interval=1)),
            "frequency 99 is not a known frequency",
            id="unknown-frequency",
        ),
        pytest.param(
            _pb_create(
                recurrence=opb.RecurrenceRule(freq=_DAILY, interval=1, byweekdays=[_WEEKDAY(0)])
            ),
            "byweekdays holds UNSPECIFIED",
            id="weekday-unspecified",
        ),
        pytest.param(b"\xff\xff", "invalid CreateMicrogridDispatch", id="garbage"),
    ],
)
@pytest.mark.anyio
async def test_invalid_creates_are_refused(api: Api, request_bytes: bytes, message: str) -> None:
    """Each invalid create answers INVALID_ARGUMENT naming the problem, and stores nothing."""
    with pytest.raises(InvalidArgument, match=message):
        await api.call(CREATE, request_bytes)
    assert (await api.list()).total_items == 0


@pytest.mark.anyio
async def test_until_before_start_is_refused(api: Api) -> None:
    """A recurrence that ends before the dispatch starts answers INVALID_ARGUMENT."""
    rule = RecurrenceRule(
        frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(until=NOW + HOUR / 2)
    )
    with pytest.raises(InvalidArgument, match=r"until .* is before the start time"):
        await api.create(recurrence=rule)


# ------------------------------------------------------------------------ end time


def _rule(frequency: Frequency, **fields: Any) -> RecurrenceRule:
    return RecurrenceRule(frequency=frequency, interval=fields.pop("interval", 1), **fields)


START = datetime(2030, 7, 31, 9, 30, 0, 250_000, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("duration", "recurrence", "end_time"),
    [
        pytest.param(None, None, None, id="no-duration"),
        pytest.param(HOUR, None, START + HOUR, id="single"),
        pytest.param(HOUR, RecurrenceRule(), START + HOUR, id="frequency-unspecified"),
        pytest.param(HOUR, _rule(Frequency.DAILY), None, id="endless"),
        pytest.param(
            None, _rule(Frequency.DAILY, end_criteria=EndCriteria(count=3)), None, id="no-duration"
        ),
        pytest.param(
            HOUR,
            _rule(Frequency.DAILY, end_criteria=EndCriteria(count=3)),
            START + 2 * DAY + HOUR,
            id="daily-count",
        ),
        pytest.param(
            HOUR,
            _rule(Frequency.HOURLY, interval=5, end_criteria=EndCriteria(until=START + DAY)),
            START + 20 * HOUR + HOUR,
            id="hourly-until",
        ),
        pytest.param(
            HOUR,
            _rule(Frequency.WEEKLY, interval=2, end_criteria=EndCriteria(count=2)),
            START + timedelta(weeks=2) + HOUR,
            id="weekly-count",
        ),
        pytest.param(
            HOUR,
            _rule(
                Frequency.DAILY,
                byweekdays=[Weekday.FRIDAY],
                end_criteria=EndCriteria(count=2),
            ),
            START + timedelta(days=9) + HOUR,
            id="filtered-count",
        ),
        pytest.param(
            HOUR,
            _rule(Frequency.MONTHLY, end_criteria=EndCriteria(count=3)),
            # The 31st: June, September and November have none, so dateutil skips them.
            datetime(2030, 10, 31, 9, 30, 0, 250_000, tzinfo=UTC) + HOUR,
            id="monthly-count",
        ),
        pytest.param(
            HOUR,
            _rule(Frequency.YEARLY, bymonths=[2], end_criteria=EndCriteria(count=2)),
            # Only Februaries with a 31st would match: no run at all.
            START,
            id="no-runs",
        ),
    ],
)
@pytest.mark.anyio
async def test_end_time_is_the_end_of_the_last_run(
    api: Api,
    duration: timedelta | None,
    recurrence: RecurrenceRule | None,
    end_time: datetime | None,
) -> None:
    """end_time is None when nothing bounds the dispatch, else the end of its last run."""
    created = await api.create(start_time=START, duration=duration, recurrence=recurrence)
    assert created.end_time == end_time


@pytest.mark.anyio
async def test_end_time_is_unknown_for_series_too_long_to_evaluate(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filtered series longer than the evaluation limit gets no end time."""
    monkeypatch.setattr(_service, "_RUN_EVALUATION_LIMIT", 5)
    rule = _rule(Frequency.DAILY, byhours=[1, 2], end_criteria=EndCriteria(count=6))
    assert (await api.create(start_time=START, duration=HOUR, recurrence=rule)).end_time is None
    rule = _rule(Frequency.DAILY, byhours=[1, 2], end_criteria=EndCriteria(count=5))
    assert (await api.create(start_time=START, duration=HOUR, recurrence=rule)).end_time == (
        START.replace(hour=1) + 3 * DAY + HOUR
    )


# -------------------------------------------------------------------------- update


@pytest.mark.anyio
async def test_update_changes_only_the_masked_fields(api: Api, clock: Clock) -> None:
    """An update changes what its mask names, sets update_time and recomputes end_time."""
    created = await api.create(payload={"a": 1.0})
    clock.advance(timedelta(minutes=3))
    updated = await api.update(
        1,
        created.id,
        start_time=NOW + 2 * HOUR,
        duration=HOUR,
        target=TargetCategories(BATTERY),
        is_active=False,
        payload={"b": "x"},
    )
    assert updated.start_time == NOW + 2 * HOUR
    assert updated.duration == HOUR
    assert updated.target == TargetCategories(BATTERY)
    assert updated.active is False
    assert updated.payload == {"b": "x"}
    assert (updated.type, updated.dry_run, updated.recurrence) == (
        created.type,
        created.dry_run,
        created.recurrence,
    )
    assert updated.create_time == NOW
    assert updated.update_time == NOW + timedelta(minutes=3)
    assert updated.end_time == NOW + 3 * HOUR
    assert await api.get(1, created.id) == updated


@pytest.mark.anyio
async def test_update_to_no_duration_clears_it_and_the_end_time(api: Api) -> None:
    """Updating duration to None clears it, and the dispatch then never ends."""
    created = await api.create()
    updated = await api.update(1, created.id, duration=None)
    assert updated.duration is None
    assert updated.end_time is None


@pytest.mark.anyio
async def test_recurrence_fields_are_updated_one_by_one(api: Api) -> None:
    """Each recurrence.* path changes that field of the rule only."""
    rule = _rule(
        Frequency.DAILY,
        interval=2,
        end_criteria=EndCriteria(count=4),
        byhours=[8],
        bymonths=[7, 8],
    )
    created = await api.create(duration=HOUR, recurrence=rule)
    updated = await api.update(1, created.id, **{"recurrence.interval": 3})
    assert updated.recurrence == _rule(
        Frequency.DAILY,
        interval=3,
        end_criteria=EndCriteria(count=4),
        byhours=[8],
        bymonths=[7, 8],
    )
    updated = await api.update(
        1,
        created.id,
        **{
            "recurrence.freq": Frequency.WEEKLY,
            "recurrence.byweekdays": [Weekday.MONDAY],
            "recurrence.byminutes": [5],
            "recurrence.bymonthdays": [1],
        },
    )
    assert updated.recurrence == RecurrenceRule(
        frequency=Frequency.WEEKLY,
        interval=3,
        end_criteria=EndCriteria(count=4),
        byminutes=[5],
        byhours=[8],
        byweekdays=[Weekday.MONDAY],
        bymonthdays=[1],
        bymonths=[7, 8],
    )


@pytest.mark.anyio
async def test_clearing_end_criteria_makes_the_series_endless(api: Api) -> None:
    """Updating recurrence.end_criteria to None removes the bound and the end time."""
    rule = _rule(Frequency.DAILY, end_criteria=EndCriteria(count=2))
    created = await api.create(duration=HOUR, recurrence=rule)
    assert created.end_time is not None
    updated = await api.update(1, created.id, **{"recurrence.end_criteria": None})
    assert updated.recurrence == _rule(Frequency.DAILY)
    assert updated.end_time is None


@pytest.mark.anyio
async def test_a_recurrence_can_be_added_by_fields(api: Api) -> None:
    """Frequency and interval updates on a one-off dispatch give it a recurrence."""
    created = await api.create(duration=HOUR)
    updated = await api.update(
        1,
        created.id,
        **{
            "recurrence.freq": Frequency.HOURLY,
            "recurrence.interval": 2,
            "recurrence.end_criteria": EndCriteria(count=2),
        },
    )
    assert updated.recurrence == _rule(
        Frequency.HOURLY, interval=2, end_criteria=EndCriteria(count=2)
    )
    assert updated.end_time == NOW + HOUR + 2 * HOUR + HOUR


@pytest.mark.anyio
async def test_a_frequency_without_interval_is_refused(api: Api) -> None:
    """A frequency set on a dispatch without recurrence leaves interval 0: INVALID_ARGUMENT."""
    created = await api.create()
    with pytest.raises(InvalidArgument, match="interval must be >= 1"):
        await api.update(1, created.id, **{"recurrence.freq": Frequency.DAILY})
    assert await api.get(1, created.id) == created


@pytest.mark.anyio
async def test_an_update_into_the_past_is_refused(api: Api, clock: Clock) -> None:
    """A new start time in the past answers INVALID_ARGUMENT; other updates of a started
    dispatch are fine."""
    created = await api.create()
    clock.advance(2 * HOUR)
    with pytest.raises(InvalidArgument, match="is in the past"):
        await api.update(1, created.id, start_time=NOW + HOUR)
    updated = await api.update(1, created.id, is_active=False)
    assert updated.start_time == created.start_time


@pytest.mark.anyio
async def test_an_update_to_an_empty_target_is_refused(api: Api) -> None:
    """The updated dispatch is checked like a new one."""
    created = await api.create()
    with pytest.raises(InvalidArgument, match="the target is empty"):
        await api.update(1, created.id, target=TargetIds())


@pytest.mark.anyio
async def test_an_update_moving_until_before_start_is_refused(api: Api) -> None:
    """A start time moved after the recurrence's until answers INVALID_ARGUMENT."""
    rule = _rule(Frequency.DAILY, end_criteria=EndCriteria(until=NOW + DAY))
    created = await api.create(recurrence=rule)
    with pytest.raises(InvalidArgument, match="is before the start time"):
        await api.update(1, created.id, start_time=NOW + 2 * DAY)


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        pytest.param(["type"], "unknown update-mask path.*'type'", id="type"),
        pytest.param(["dry_run"], "unknown update-mask path.*'dry_run'", id="dry_run"),
        pytest.param([], "an update needs at least one field", id="empty"),
    ],
)
@pytest.mark.anyio
async def test_bad_update_masks_are_refused(api: Api, paths: list[str], message: str) -> None:
    """An empty mask or a path the API does not have answers INVALID_ARGUMENT naming it."""
    created = await api.create()
    request = opb.UpdateMicrogridDispatchRequest(
        microgrid_id=1, dispatch_id=created.id, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    with pytest.raises(InvalidArgument, match=message):
        await api.call(UPDATE, request.SerializeToString())


# ------------------------------------------------------------------------- listing


async def _populate(api: Api, clock: Clock) -> dict[int, Dispatch]:
    """Five dispatches in microgrid 1 (and one in microgrid 2), one minute apart."""
    specs: list[dict[str, Any]] = [
        {"type": "CHARGE", "target": TargetIds(1, 2), "start_time": NOW + HOUR, "duration": HOUR},
        {
            "type": "discharge_fast",
            "target": TargetIds(3),
            "start_time": NOW + 2 * HOUR,
            "duration": None,
            "active": False,
            "dry_run": True,
        },
        {
            "type": "Charge_slow",
            "target": TargetCategories(BATTERY),
            "start_time": NOW + 3 * HOUR,
            "duration": HOUR / 2,
            "recurrence": _rule(Frequency.DAILY, end_criteria=EndCriteria(count=2)),
        },
        {
            "type": "PV",
            "target": TargetCategories(BatteryType.LI_ION, METER),
            "start_time": NOW + 4 * HOUR,
            "duration": HOUR,
            "recurrence": _rule(Frequency.DAILY),
        },
        {
            "type": "idle",
            "target": TargetCategories(InverterType.PV),
            "start_time": NOW + 5 * HOUR,
            "duration": timedelta(minutes=10),
            "recurrence": RecurrenceRule(),
        },
    ]
    created = {}
    for spec in specs:
        clock.advance(timedelta(minutes=1))
        dispatch = await api.create(**spec)
        created[dispatch.id] = dispatch
    clock.advance(timedelta(minutes=1))
    await api.create(microgrid_id=2, type="CHARGE", target=TargetIds(1))
    clock.advance(timedelta(minutes=5))  # NOW + 11 min
    created[2] = await api.update(1, 2, payload={"changed": True})
    return created


@pytest.mark.parametrize(
    ("dispatch_filter", "expected"),
    [
        pytest.param(DispatchFilter(), {1, 2, 3, 4, 5}, id="all"),
        pytest.param(DispatchFilter(targets=[TargetIds(2, 9)]), {1}, id="one-shared-id"),
        pytest.param(DispatchFilter(targets=[TargetIds(3), TargetIds(1)]), {1, 2}, id="ids-or"),
        pytest.param(DispatchFilter(targets=[TargetIds()]), set(), id="no-ids"),
        pytest.param(
            DispatchFilter(targets=[TargetCategories(BATTERY)]), {3, 4}, id="category-any-type"
        ),
        pytest.param(
            DispatchFilter(targets=[TargetCategories(BatteryType.LI_ION)]), {4}, id="exact-type"
        ),
        pytest.param(
            DispatchFilter(targets=[TargetCategories(BatteryType.NA_ION)]), set(), id="other-type"
        ),
        pytest.param(DispatchFilter(targets=[TargetCategories(METER)]), {4}, id="meter"),
        pytest.param(
            # InverterType.PV and METER share the number 2: they must not be confused.
            DispatchFilter(targets=[TargetCategories(InverterType.PV)]),
            {5},
            id="inverter-pv",
        ),
        pytest.param(DispatchFilter(targets=[TargetCategories(INVERTER)]), {5}, id="inverter"),
        pytest.param(
            DispatchFilter(targets=[TargetIds(1), TargetCategories(BATTERY)]),
            {1, 3, 4},
            id="ids-or-categories",
        ),
        pytest.param(DispatchFilter(active=True), {1, 3, 4, 5}, id="active"),
        pytest.param(DispatchFilter(active=False), {2}, id="inactive"),
        pytest.param(DispatchFilter(dry_run=True), {2}, id="dry-run"),
        pytest.param(DispatchFilter(dry_run=False), {1, 3, 4, 5}, id="real"),
        pytest.param(DispatchFilter(recurring=True), {3, 4}, id="recurring"),
        pytest.param(DispatchFilter(recurring=False), {1, 2, 5}, id="one-off"),
        pytest.param(
            DispatchFilter(start_time=TimeInterval(start=NOW + 2 * HOUR, end=NOW + 4 * HOUR)),
            {2, 3},
            id="start-half-open",
        ),
        pytest.param(
            DispatchFilter(start_time=TimeInterval(start=NOW + 4 * HOUR)), {4, 5}, id="start-from"
        ),
        pytest.param(
            DispatchFilter(end_time=TimeInterval(end=NOW + 6 * HOUR)), {1, 5}, id="end-before"
        ),
        pytest.param(
            DispatchFilter(end_time=TimeInterval(start=NOW + 5 * HOUR)),
            {2, 3, 4, 5},
            id="end-from-includes-endless",
        ),
        pytest.param(
            DispatchFilter(end_time=TimeInterval(start=NOW + 2 * HOUR, end=NOW + 2 * HOUR + HOUR)),
            {1},
            id="end-inclusive-start",
        ),
        pytest.param(
            DispatchFilter(update_time=TimeInterval(start=NOW + timedelta(minutes=10))),
            {2},
            id="updated-since",
        ),
        pytest.param(DispatchFilter(dispatch_ids=[2, 4, 99]), {2, 4}, id="ids"),
        pytest.param(DispatchFilter(queries=["#3"]), {3}, id="query-id"),
        pytest.param(DispatchFilter(queries=["charge"]), {1, 2, 3}, id="query-any-case"),
        pytest.param(DispatchFilter(queries=["#3", "PV"]), {3, 4}, id="queries-or"),
        pytest.param(DispatchFilter(queries=["#x"]), set(), id="query-hash-text"),
        pytest.param(DispatchFilter(queries=["slow"]), {3}, id="query-substring"),
        pytest.param(DispatchFilter(active=True, queries=["charge"]), {1, 3}, id="criteria-and"),
    ],
)
@pytest.mark.anyio
async def test_list_filters(
    api: Api, clock: Clock, dispatch_filter: DispatchFilter, expected: set[int]
) -> None:
    """Each filter criterion selects the dispatches its documented rule describes."""
    await _populate(api, clock)
    page = await api.list(filter=dispatch_filter)
    assert {d.id for d in page.dispatches} == expected
    assert page.total_items == len(expected)
    assert page.next_page_token is None


@pytest.mark.anyio
async def test_updated_before_uses_the_current_update_time(api: Api, clock: Clock) -> None:
    """The update-time filter sees the last change, not the creation (dispatch 2 moved)."""
    await _populate(api, clock)
    page = await api.list(filter=DispatchFilter(update_time=TimeInterval(end=NOW + HOUR / 10)))
    assert {d.id for d in page.dispatches} == {1, 3, 4, 5}


@pytest.mark.parametrize(
    ("field", "order", "expected"),
    [
        pytest.param(SortField.UNSPECIFIED, SortOrder.UNSPECIFIED, [5, 4, 3, 2, 1], id="default"),
        pytest.param(SortField.START_TIME, SortOrder.ASCENDING, [1, 2, 3, 4, 5], id="start-asc"),
        pytest.param(SortField.START_TIME, SortOrder.DESCENDING, [5, 4, 3, 2, 1], id="start-desc"),
        pytest.param(SortField.CREATE_TIME, SortOrder.ASCENDING, [1, 2, 3, 4, 5], id="create-asc"),
        pytest.param(
            SortField.LAST_UPDATE_TIME, SortOrder.ASCENDING, [1, 3, 4, 5, 2], id="update-asc"
        ),
        pytest.param(
            SortField.LAST_UPDATE_TIME, SortOrder.DESCENDING, [2, 5, 4, 3, 1], id="update-desc"
        ),
    ],
)
@pytest.mark.anyio
async def test_list_sorts(
    api: Api, clock: Clock, field: SortField, order: SortOrder, expected: list[int]
) -> None:
    """Listings sort by the requested time (create time, newest first, by default)."""
    await _populate(api, clock)
    page = await api.list(sort_field=field, sort_order=order)
    assert [d.id for d in page.dispatches] == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [(SortOrder.ASCENDING, [1, 2, 3]), (SortOrder.DESCENDING, [3, 2, 1])],
)
@pytest.mark.anyio
async def test_ties_are_broken_by_id(api: Api, order: SortOrder, expected: list[int]) -> None:
    """Dispatches with equal sort times come in id order, in the sort's direction."""
    for _ in range(3):
        await api.create()
    page = await api.list(sort_field=SortField.START_TIME, sort_order=order)
    assert [d.id for d in page.dispatches] == expected


@pytest.mark.parametrize(
    ("field", "order", "message"),
    [
        (SortField(9), SortOrder.ASCENDING, "unknown sort field 9"),
        (SortField.START_TIME, SortOrder(7), "unknown sort order 7"),
    ],
)
@pytest.mark.anyio
async def test_unknown_sort_numbers_are_refused(
    api: Api, field: SortField, order: SortOrder, message: str
) -> None:
    """A sort field or order number the API does not define answers INVALID_ARGUMENT."""
    with pytest.raises(InvalidArgument, match=message):
        await api.list(sort_field=field, sort_order=order)


# ---------------------------------------------------------------------- pagination


@pytest.mark.anyio
async def test_paging_through_250_dispatches(api: Api) -> None:
    """250 dispatches in pages of 100 come as 100, 100 and 50, each once, in order."""
    for _ in range(250):
        await api.create()
    await api.create(microgrid_id=2)
    sizes: list[int] = []
    ids: list[int] = []
    page = await api.list(page_size=100, sort_field=SortField.CREATE_TIME)
    while True:
        assert page.total_items == 250
        sizes.append(len(page.dispatches))
        ids.extend(d.id for d in page.dispatches)
        if page.next_page_token is None:
            break
        page = await api.list(page_token=page.next_page_token)
    assert sizes == [100, 100, 50]
    # All created at the same instant: the id breaks the tie, newest first.
    assert ids == list(range(250, 0, -1))


@pytest.mark.anyio
async def test_the_token_carries_the_filter_and_sort(api: Api) -> None:
    """Later pages, requested with the token only, keep the first request's filter and sort."""
    for index in range(7):
        await api.create(type="even" if index % 2 == 0 else "odd", start_time=NOW + index * HOUR)
    first = await api.list(
        filter=DispatchFilter(queries=["even"]),
        sort_field=SortField.START_TIME,
        sort_order=SortOrder.ASCENDING,
        page_size=2,
    )
    assert [d.id for d in first.dispatches] == [1, 3]
    assert first.next_page_token is not None
    second = await api.list(page_token=first.next_page_token)
    assert [d.id for d in second.dispatches] == [5, 7]
    assert second.total_items == 4
    assert second.next_page_token is None


@pytest.mark.anyio
async def test_pages_continue_after_the_last_seen_dispatch(api: Api) -> None:
    """Dispatches deleted or created between pages shift nothing: no repeats, no gaps."""
    for _ in range(6):
        await api.create()
    first = await api.list(
        page_size=3, sort_field=SortField.CREATE_TIME, sort_order=SortOrder.ASCENDING
    )
    assert [d.id for d in first.dispatches] == [1, 2, 3]
    await api.delete(1, 2)
    await api.create()
    assert first.next_page_token is not None
    second = await api.list(page_token=first.next_page_token)
    assert [d.id for d in second.dispatches] == [4, 5, 6]
    assert second.total_items == 6
    assert second.next_page_token is not None
    third = await api.list(page_token=second.next_page_token)
    assert [d.id for d in third.dispatches] == [7]
    assert third.next_page_token is None


@pytest.mark.anyio
async def test_page_size_default_and_cap(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a page size the default applies; larger sizes are lowered to the cap."""
    monkeypatch.setattr(_service, "DEFAULT_PAGE_SIZE", 2)
    monkeypatch.setattr(_service, "MAX_PAGE_SIZE", 3)
    for _ in range(5):
        await api.create()
    assert len((await api.list()).dispatches) == 2
    assert len((await api.list(page_size=1000)).dispatches) == 3
    assert len((await api.list(page_size=1)).dispatches) == 1


@pytest.mark.anyio
async def test_an_exact_last_page_has_no_token(api: Api) -> None:
    """When the dispatches fill the page exactly, no next-page token is sent."""
    for _ in range(4):
        await api.create()
    page = await api.list(page_size=4)
    assert len(page.dispatches) == 4
    assert page.next_page_token is None


@pytest.mark.parametrize(
    "token",
    ["garbage", "e30.0000000000000000", "a.b.c", "%%%.123"],
)
@pytest.mark.anyio
async def test_a_malformed_token_is_refused(api: Api, token: str) -> None:
    """A token the service did not issue answers INVALID_ARGUMENT."""
    with pytest.raises(InvalidArgument, match="invalid page_token"):
        await api.list(page_token=token)


@pytest.mark.anyio
async def test_a_tampered_token_is_refused(api: Api) -> None:
    """A token with one character changed fails its checksum."""
    for _ in range(3):
        await api.create()
    token = (await api.list(page_size=1)).next_page_token
    assert token is not None
    tampered = ("B" if token[5] != "B" else "C").join((token[:5], token[6:]))
    with pytest.raises(InvalidArgument, match="invalid page_token"):
        await api.list(page_token=tampered)


@pytest.mark.anyio
async def test_a_token_cannot_change_filter_sort_or_microgrid(api: Api) -> None:
    """A later request whose microgrid, filter or sort differ from the token's is refused."""
    for _ in range(3):
        await api.create()
    token = (await api.list(page_size=1)).next_page_token
    assert token is not None
    with pytest.raises(InvalidArgument, match="microgrid 1, not 2"):
        await api.list(microgrid_id=2, page_token=token)
    with pytest.raises(InvalidArgument, match="another filter"):
        await api.list(page_token=token, filter=DispatchFilter(active=False))
    with pytest.raises(InvalidArgument, match="another sort"):
        await api.list(page_token=token, sort_field=SortField.START_TIME)
    page = await api.list(page_token=token, sort_field=SortField.CREATE_TIME)
    assert [d.id for d in page.dispatches] == [2]


# -------------------------------------------------------------------------- stream


async def _next_event(events: Any) -> tuple[Event, Dispatch]:
    event = convert.decode_stream_response(await anext(events))
    return event.event, event.dispatch


@pytest.mark.anyio
async def test_stream_events_reach_every_subscriber_of_the_microgrid(api: Api) -> None:
    """Two subscribers of microgrid 1 see create, update and delete in order; microgrid 2's
    subscriber sees none of them."""
    transport = api.transport
    stream_1 = convert.encode_stream_request(1)
    stream_2 = convert.encode_stream_request(2)
    async with (
        transport.server_stream(STREAM, stream_1, metadata=METADATA) as first,
        transport.server_stream(STREAM, stream_1, metadata=METADATA) as second,
        transport.server_stream(STREAM, stream_2, metadata=METADATA) as other,
    ):
        created = await api.create()
        updated = await api.update(1, created.id, is_active=False)
        await api.delete(1, created.id)
        elsewhere = await api.create(microgrid_id=2)
        expected = [(Event.CREATED, created), (Event.UPDATED, updated), (Event.DELETED, updated)]
        for events in (first, second):
            assert [await _next_event(events) for _ in range(3)] == expected
        assert await _next_event(other) == (Event.CREATED, elsewhere)


@pytest.mark.anyio
async def test_close_ends_every_stream(api: Api, service: FakeDispatchService) -> None:
    """After close(), streams deliver what was queued and then end; new calls are refused."""
    async with api.transport.server_stream(
        STREAM, convert.encode_stream_request(1), metadata=METADATA
    ) as events:
        created = await api.create()
        async with anyio.create_task_group() as group:

            async def close_soon() -> None:
                await anyio.sleep(0.01)
                service.close()

            group.start_soon(close_soon)
            received = [convert.decode_stream_response(message) async for message in events]
        assert [(e.event, e.dispatch) for e in received] == [(Event.CREATED, created)]
    with pytest.raises(Unavailable, match="closed"):
        await api.get(1, created.id)
    service.close()  # idempotent


@pytest.mark.anyio
async def test_events_from_another_thread_wake_the_stream(
    api: Api, service: FakeDispatchService
) -> None:
    """A create made from a worker thread wakes a stream waiting in the event loop."""
    request = convert.encode_create_request(
        CreateRequest(
            microgrid_id=1,
            type="CHARGE",
            start_time=NOW + HOUR,
            duration=None,
            target=TargetIds(1),
        )
    )

    def create_in_thread() -> bytes:
        assert threading.current_thread() is not threading.main_thread()
        response = service(CREATE, request, METADATA)
        assert isinstance(response, bytes)
        return response

    async with api.transport.server_stream(
        STREAM, convert.encode_stream_request(1), metadata=METADATA
    ) as events:
        async with anyio.create_task_group() as group:
            results: list[bytes] = []

            async def create_later() -> None:
                await anyio.sleep(0.01)  # let the stream start waiting first
                results.append(await anyio.to_thread.run_sync(create_in_thread))

            group.start_soon(create_later)
            with anyio.fail_after(5):
                event, dispatch = await _next_event(events)
        assert event is Event.CREATED
        assert dispatch == convert.decode_create_response(results[0])


@pytest.mark.anyio
async def test_concurrent_creates_from_threads_are_streamed_in_id_order(
    api: Api, service: FakeDispatchService
) -> None:
    """Creates racing in four threads get distinct ids, and a stream sees them in id order."""
    request = convert.encode_create_request(
        CreateRequest(
            microgrid_id=1, type="T", start_time=NOW + HOUR, duration=None, target=TargetIds(1)
        )
    )

    def create_many() -> None:
        for _ in range(25):
            service(CREATE, request, METADATA)

    async with (
        api.transport.server_stream(
            STREAM, convert.encode_stream_request(1), metadata=METADATA
        ) as events,
        anyio.create_task_group() as group,
    ):
        for _ in range(4):
            group.start_soon(anyio.to_thread.run_sync, create_many)
        with anyio.fail_after(10):
            received = [(await _next_event(events))[1].id for _ in range(100)]
    assert received == list(range(1, 101))
    assert [d.id for d in service.dispatches(1)] == received


@pytest.mark.anyio
async def test_leaving_a_stream_unsubscribes(api: Api, service: FakeDispatchService) -> None:
    """A stream closed by its reader gets no more events and holds nothing in the service."""
    async with api.transport.server_stream(
        STREAM, convert.encode_stream_request(1), metadata=METADATA
    ) as events:
        await api.create()
        await _next_event(events)
    assert service._subscribers == {}
    await api.create()  # nobody to tell: no error


def test_a_dropped_unread_stream_is_unsubscribed(service: FakeDispatchService) -> None:
    """A stream handed out, never read and dropped stops receiving events."""
    stream = service(STREAM, convert.encode_stream_request(1), METADATA)
    assert len(service._subscribers[1]) == 1
    del stream
    gc.collect()
    assert len(service._subscribers[1]) == 0
    created = service(CREATE, _pb_create(), METADATA)  # nobody to tell: no error
    assert isinstance(created, bytes)


@pytest.mark.anyio
async def test_a_reader_too_far_behind_is_dropped(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subscriber that falls more than MAX_QUEUED_EVENTS behind gets RESOURCE_EXHAUSTED."""
    monkeypatch.setattr(_service, "MAX_QUEUED_EVENTS", 2)
    async with api.transport.server_stream(
        STREAM, convert.encode_stream_request(1), metadata=METADATA
    ) as events:
        for _ in range(3):
            await api.create()
        with pytest.raises(ResourceExhausted, match="fell more than 2 events behind"):
            await anext(events)


# ---------------------------------------------------------------------- edge cases


@pytest.mark.anyio
async def test_an_unknown_method_is_unimplemented(api: Api) -> None:
    """A method the service does not have answers UNIMPLEMENTED."""
    with pytest.raises(Unimplemented, match="Nope"):
        await api.call("/frequenz.api.dispatch.v1.MicrogridDispatchService/Nope", b"")


@pytest.mark.parametrize("method", [CREATE, GET, DELETE, LIST, UPDATE])
@pytest.mark.anyio
async def test_malformed_requests_are_invalid_arguments(api: Api, method: str) -> None:
    """Bytes that do not decode answer INVALID_ARGUMENT naming the request."""
    name = method.rsplit("/", 1)[-1]
    with pytest.raises(InvalidArgument, match=f"invalid {name}"):
        await api.call(method, b"\x08")


@pytest.mark.anyio
async def test_a_malformed_stream_request_is_an_invalid_argument(api: Api) -> None:
    """A stream request that does not decode fails when the stream is opened."""
    stream = api.transport.server_stream(STREAM, b"\x08", metadata=METADATA)
    with pytest.raises(InvalidArgument, match="invalid StreamMicrogridDispatches"):
        await stream.__aenter__()


@pytest.mark.anyio
async def test_unexpected_failures_are_internal(api: Api, clock: Clock) -> None:
    """An exception inside the service becomes INTERNAL naming it."""
    clock.now = datetime(2030, 1, 1)  # naive: the service cannot use it
    with pytest.raises(Internal, match="ValueError: the service clock returned a naive"):
        await api.create()


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from([CREATE, UPDATE, GET, DELETE, LIST, STREAM]),
    request=st.binary(max_size=64),
)
def test_any_bytes_get_an_answer_or_a_grpc_error(method: str, request: bytes) -> None:
    """Whatever bytes arrive, the service answers or raises a `transports` RpcError."""
    with FakeDispatchService(clock=Clock(NOW)) as service:
        try:
            result = service(method, request, METADATA)
        except RpcError:
            return
        if method == STREAM:
            assert not isinstance(result, bytes)
            service.close()  # ends the (unread) stream
        else:
            assert isinstance(result, bytes)


@settings(max_examples=150, deadline=None)
@given(
    request=create_requests(),
    offset=st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)),
)
def test_any_create_is_stored_or_refused_as_invalid(
    request: CreateRequest, offset: timedelta | None
) -> None:
    """A create is stored as asked (with a consistent end time) or is INVALID_ARGUMENT."""
    if offset is not None:
        request = attrs.evolve(request, start_time=NOW + offset)
    with FakeDispatchService(clock=Clock(NOW)) as service:
        try:
            result = service(CREATE, convert.encode_create_request(request), METADATA)
        except InvalidArgument:
            return
    assert isinstance(result, bytes)
    created = convert.decode_create_response(result)
    assert (created.type, created.target, created.recurrence) == (
        request.type,
        request.target,
        request.recurrence,
    )
    assert created.start_time == (NOW if request.start_time == "NOW" else request.start_time)
    if created.end_time is not None:
        assert created.duration is not None
        assert created.end_time >= created.start_time


@settings(max_examples=150, deadline=None)
@given(request=update_requests())
def test_any_update_is_applied_or_refused_as_invalid(request: UpdateRequest) -> None:
    """An update of an existing dispatch is applied or is INVALID_ARGUMENT, never INTERNAL."""
    request = attrs.evolve(request, microgrid_id=1, dispatch_id=1)
    with FakeDispatchService(clock=Clock(NOW)) as service:
        create = CreateRequest(
            microgrid_id=1,
            type="CHARGE",
            start_time=NOW + HOUR,
            duration=HOUR,
            target=TargetIds(1),
            recurrence=_rule(Frequency.DAILY, end_criteria=EndCriteria(count=3)),
        )
        service(CREATE, convert.encode_create_request(create), METADATA)
        try:
            result = service(UPDATE, convert.encode_update_request(request), METADATA)
        except InvalidArgument:
            return
    assert isinstance(result, bytes)
    updated = convert.decode_update_response(result)
    assert updated.update_time == NOW
    for path, value in request.fields.items():
        if path == "is_active":
            assert updated.active == value
        elif path in ("duration", "target", "payload"):
            assert getattr(updated, path) == value


@settings(max_examples=100, deadline=None)
@given(request=list_requests())
def test_any_list_is_answered_or_refused_as_invalid(request: ListRequest) -> None:
    """A list request is answered or is INVALID_ARGUMENT, never INTERNAL."""
    with FakeDispatchService(clock=Clock(NOW)) as service:
        try:
            result = service(LIST, convert.encode_list_request(request), METADATA)
        except InvalidArgument:
            return
    assert isinstance(result, bytes)
    assert convert.decode_list_response(result).total_items == 0
