"""The official client's typed ids and enums, accepted where ours go (migration by imports).

The values are the real ones from frequenz-client-dispatch 1.x and frequenz-client-common
(test dependencies); the library recognises them by their shape without importing them.
Calls run against a FakeDispatchService over MemoryTransport, so what the official types
turn into is what the server stores.
"""

from __future__ import annotations

import enum
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import anyio
import pytest
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.common.microgrid.components import ComponentCategory as OldCategory
from frequenz.client.common.microgrid.electrical_components import (
    ElectricalComponentCategory as TheirCategory,
)
from frequenz.client.common.microgrid.electrical_components import ElectricalComponentId
from frequenz.client.dispatch import recurrence as their_recurrence
from frequenz.client.dispatch import types as their_types

from dispatch_client import (
    BatteryType,
    Client,
    Dispatch,
    ElectricalComponentCategory,
    EvChargerType,
    Frequency,
    InverterType,
    NotFound,
    RecurrenceRule,
    TargetCategories,
    TargetCategory,
    TargetIds,
    Weekday,
)
from dispatch_client._requests import check_id, update_from_new_fields
from dispatch_client.testing import FakeDispatchService
from transports import MemoryTransport

DispatchId = their_types.DispatchId
TIMEOUT = 10


@asynccontextmanager
async def _client() -> AsyncIterator[Client]:
    """A client on a fresh FakeDispatchService, in process."""
    with FakeDispatchService() as service:
        async with Client(
            server_url="grpc://fake?ssl=false", key="k", transport=MemoryTransport(service)
        ) as client:
            yield client


def _later() -> datetime:
    return (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)


# --- typed ids ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_typed_ids_reach_the_server_as_their_numbers(anyio_backend: str) -> None:
    """MicrogridId, DispatchId and component ids work in every call, as their numbers."""
    with anyio.fail_after(TIMEOUT):
        async with _client() as client:
            created = await client.create(
                MicrogridId(3),
                "CHARGE",
                _later(),
                timedelta(minutes=5),
                TargetIds(ElectricalComponentId(7), 8),
            )
            assert created.target == TargetIds(7, 8)
            dispatch_id = DispatchId(created.id)
            got = await client.get(microgrid_id=MicrogridId(3), dispatch_id=dispatch_id)
            assert got == created
            pages = [
                page
                async for page in client.list(
                    MicrogridId(3), dispatch_ids=[dispatch_id, DispatchId(999)]
                )
            ]
            assert [d.id for page in pages for d in page] == [created.id]
            updated = await client.update(
                microgrid_id=MicrogridId(3), dispatch_id=dispatch_id, new_fields={"active": False}
            )
            assert updated.active is False
            await client.delete(microgrid_id=MicrogridId(3), dispatch_id=dispatch_id)
            with pytest.raises(NotFound):
                await client.get(microgrid_id=3, dispatch_id=dispatch_id)
            async with client.stream(MicrogridId(3)) as receiver:
                assert receiver.microgrid_id == 3


@pytest.mark.anyio
async def test_typed_id_of_another_kind_is_refused(anyio_backend: str) -> None:
    """A DispatchId as a microgrid id (or the reverse) is a TypeError naming both, before I/O."""
    with anyio.fail_after(TIMEOUT):
        async with _client() as client:
            with pytest.raises(TypeError, match=r"microgrid_id must be a microgrid id.*DispatchId"):
                await client.get(microgrid_id=DispatchId(1), dispatch_id=1)
            with pytest.raises(TypeError, match=r"dispatch_id must be a dispatch id.*MicrogridId"):
                await client.delete(microgrid_id=1, dispatch_id=MicrogridId(1))
            with pytest.raises(TypeError, match=r"dispatch_ids\[0\].*MicrogridId"):
                client.list(1, dispatch_ids=[MicrogridId(2)])
            with pytest.raises(TypeError, match="MicrogridId"):
                client.stream(DispatchId(1))
    with pytest.raises(TypeError, match=r"TargetIds id #0 must be a component id.*MicrogridId"):
        TargetIds(MicrogridId(1))


@pytest.mark.anyio
@pytest.mark.parametrize("bad", [True, 1.0, Decimal(1), Fraction(1), "1", b"1", None], ids=repr)
async def test_numbers_that_are_not_ints_stay_refused(anyio_backend: str, bad: object) -> None:
    """bool, float, Decimal, Fraction, str, bytes and None are no ids, typed or not."""
    with anyio.fail_after(TIMEOUT):
        async with _client() as client:
            with pytest.raises(TypeError, match="microgrid_id must be a positive int"):
                await client.get(microgrid_id=bad, dispatch_id=1)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="dispatch_id must be a positive int"):
                await client.get(microgrid_id=1, dispatch_id=bad)  # type: ignore[arg-type]
    if bad is not True:  # TargetIds refuses bool with its own wording
        with pytest.raises(TypeError, match="TargetIds id #0 must be an integer"):
            TargetIds(bad)  # type: ignore[arg-type]


def test_duck_typed_id_without_frequenz() -> None:
    """Any object with `__int__` and the official `str_prefix` passes: no frequenz class needed."""

    class LookAlike:
        str_prefix = "MID"

        def __int__(self) -> int:
            return 12

    class NoPrefix:
        def __int__(self) -> int:
            return 12

    assert TargetIds(ElectricalComponentId(4)) == TargetIds(4)
    assert check_id("microgrid_id", LookAlike()) == 12
    with pytest.raises(TypeError, match="got NoPrefix"):
        check_id("microgrid_id", NoPrefix())


def test_dispatch_accepts_a_typed_dispatch_id() -> None:
    """Dispatch(id=DispatchId(5)) stores the int 5."""
    now = datetime.now(UTC)
    dispatch = Dispatch(
        id=DispatchId(5),  # type: ignore[arg-type]
        type="T",
        start_time=now,
        duration=None,
        target=TargetIds(1),
        active=True,
        dry_run=False,
        payload={},
        recurrence=None,
        create_time=now,
        update_time=now,
        end_time=None,
    )
    assert dispatch.id == 5
    assert type(dispatch.id) is int


def test_importing_never_loads_frequenz() -> None:
    """Importing dispatch_client and checking typed ids loads no frequenz module."""
    code = (
        "import sys, dispatch_client\n"
        "from dispatch_client._requests import check_id\n"
        "class Id:\n"
        "    str_prefix = 'DID'\n"
        "    def __int__(self): return 3\n"
        "assert check_id('dispatch_id', Id()) == 3\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'frequenz')\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


# --- enums ----------------------------------------------------------------------------


def test_official_category_and_type_enums_in_targets() -> None:
    """TargetCategories and TargetCategory take the official enums, converted to ours."""
    theirs = TargetCategories(
        TheirCategory.BATTERY,
        their_types.BatteryType.LI_ION,
        their_types.InverterType.SOLAR,
        their_types.EvChargerType.DC,
        TheirCategory.CHP,
    )
    assert theirs == TargetCategories(
        ElectricalComponentCategory.BATTERY,
        BatteryType.LI_ION,
        InverterType.PV,
        EvChargerType.DC,
        ElectricalComponentCategory.CHP,
    )
    assert TargetCategory(TheirCategory.METER).target is ElectricalComponentCategory.METER


def test_deprecated_component_category_converts_by_name() -> None:
    """The old ComponentCategory numbering converts by name (CHP stays CHP), renames mapped."""
    assert TargetCategories(
        OldCategory.CHP, OldCategory.GRID, OldCategory.RELAY
    ) == TargetCategories(
        ElectricalComponentCategory.CHP,
        ElectricalComponentCategory.GRID_CONNECTION_POINT,
        ElectricalComponentCategory.BREAKER,
    )
    with pytest.raises(
        ValueError, match=r"ComponentCategory.FUSE has no ElectricalComponentCategory"
    ):
        TargetCategories(OldCategory.FUSE)


def test_official_recurrence_enums() -> None:
    """RecurrenceRule takes the official Frequency and Weekday; update fields do too."""
    rule = RecurrenceRule(
        frequency=their_recurrence.Frequency.WEEKLY,
        interval=1,
        byweekdays=[their_recurrence.Weekday.MONDAY, their_recurrence.Weekday.SUNDAY],
    )
    assert rule.frequency is Frequency.WEEKLY
    assert rule.byweekdays == (Weekday.MONDAY, Weekday.SUNDAY)
    request = update_from_new_fields(
        {"recurrence.freq": their_recurrence.Frequency.DAILY}, microgrid_id=1, dispatch_id=2
    )
    assert request.fields["recurrence.freq"] is Frequency.DAILY


def test_enum_mismatch_is_a_clear_error() -> None:
    """An enum of another name, or a member whose name or value differs, is refused."""
    with pytest.raises(TypeError, match=r"must be a Frequency, got Weekday.MONDAY"):
        RecurrenceRule(frequency=their_recurrence.Weekday.MONDAY, interval=1)
    with pytest.raises(TypeError, match="must be an integer"):
        RecurrenceRule(frequency=Weekday.MONDAY, interval=1)
    with pytest.raises(ValueError, match=r"'recurrence.freq'.*Weekday"):
        update_from_new_fields({"recurrence.freq": Weekday.MONDAY}, microgrid_id=1, dispatch_id=2)

    class Frequency2(enum.Enum):
        DAILY = 9

    Frequency2.__name__ = "Frequency"
    with pytest.raises(ValueError, match=r"Frequency.DAILY \(value 9\) does not match.*ours is 3"):
        RecurrenceRule(frequency=Frequency2.DAILY, interval=1)  # type: ignore[arg-type]

    class Unrelated(enum.Enum):
        BATTERY = 5

    with pytest.raises(TypeError, match="TargetCategories member #0"):
        TargetCategories(Unrelated.BATTERY)


# --- stream() outside `async with` ----------------------------------------------------


def test_stream_outside_async_with_says_what_to_write() -> None:
    """stream() on a client not entered raises a RuntimeError that shows the code to write."""
    with FakeDispatchService() as service:
        client = Client(
            server_url="grpc://fake?ssl=false", key="k", transport=MemoryTransport(service)
        )
        with pytest.raises(RuntimeError) as caught:
            client.stream(MicrogridId(1))
    message = str(caught.value)
    assert "async with client:" in message
    assert "async for event in client.stream(1)" in message
