"""FakeDispatchService: the SQLite store survives restarts; bad files fail clearly."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2 as opb

from dispatch_client._codec import _bridge as convert
from dispatch_client._methods import CREATE, DELETE, GET, UPDATE
from dispatch_client._requests import CreateRequest, UpdateRequest
from dispatch_client._types import (
    BatteryType,
    Dispatch,
    ElectricalComponentCategory,
    EndCriteria,
    Frequency,
    RecurrenceRule,
    TargetCategories,
    TargetIds,
)
from dispatch_client.testing._service import FakeDispatchService
from dispatch_client.testing._store import SCHEMA_VERSION, StoreCorrupt
from transports import NotFound, Unavailable

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
METADATA = (("key", "k"),)


def clock() -> datetime:
    """A fixed clock."""
    return NOW


def call(service: FakeDispatchService, method: str, request: bytes) -> bytes:
    """Make one unary call directly (the handler answers synchronously)."""
    result = service(method, request, METADATA)
    assert isinstance(result, bytes)
    return result


def create(service: FakeDispatchService, microgrid_id: int = 1, **fields: Any) -> Dispatch:
    """Create a dispatch through the service."""
    values: dict[str, Any] = {
        "microgrid_id": microgrid_id,
        "type": "CHARGE",
        "start_time": NOW + timedelta(hours=1),
        "duration": timedelta(minutes=5),
        "target": TargetIds(4),
    }
    values.update(fields)
    request = convert.encode_create_request(CreateRequest(**values))
    return convert.decode_create_response(call(service, CREATE, request))


def test_dispatches_survive_a_restart(tmp_path: Path) -> None:
    """A new service on the same file sees every dispatch as the old one left it."""
    path = tmp_path / "dispatches.db"
    with FakeDispatchService(db_path=path, clock=clock) as service:
        one = create(service, 1, payload={"x": [1.0, "y"]}, dry_run=True)
        two = create(
            service,
            2,
            target=TargetCategories(BatteryType.LI_ION, ElectricalComponentCategory.METER),
            recurrence=RecurrenceRule(
                frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(count=3)
            ),
        )
        three = create(service, 1)
        update = UpdateRequest(microgrid_id=1, dispatch_id=one.id, fields={"is_active": False})
        one = convert.decode_update_response(
            call(service, UPDATE, convert.encode_update_request(update))
        )
        call(service, DELETE, convert.encode_delete_request(1, three.id))
    with FakeDispatchService(db_path=str(path), clock=clock) as service:
        assert service.dispatches(1) == [one]
        assert service.dispatches(2) == [two]
        got = convert.decode_get_response(call(service, GET, convert.encode_get_request(2, 2)))
        assert got == two
        with pytest.raises(NotFound):
            call(service, GET, convert.encode_get_request(1, three.id))


def test_the_id_counter_survives_a_restart(tmp_path: Path) -> None:
    """After a restart, ids continue after the highest ever given, even if it was deleted."""
    path = tmp_path / "dispatches.db"
    with FakeDispatchService(db_path=path, clock=clock) as service:
        for _ in range(3):
            create(service)
        call(service, DELETE, convert.encode_delete_request(1, 3))
    with FakeDispatchService(db_path=path, clock=clock) as service:
        assert create(service, 2).id == 4


def test_memory_services_are_independent() -> None:
    """Without a database each service starts empty, with ids from 1."""
    with FakeDispatchService(clock=clock) as first:
        create(first)
        create(first)
    with FakeDispatchService(clock=clock) as second:
        assert second.dispatches(1) == []
        assert create(second).id == 1


def test_every_change_is_committed_at_once(tmp_path: Path) -> None:
    """Another connection sees each change while the service still runs, in wire format."""
    path = tmp_path / "dispatches.db"
    with FakeDispatchService(db_path=path, clock=clock) as service:
        created = create(service, 7)
        reader = sqlite3.connect(path)
        try:
            rows = reader.execute("SELECT dispatch_id, microgrid_id, record FROM dispatches")
            ((dispatch_id, microgrid_id, record),) = rows.fetchall()
        finally:
            reader.close()
    assert (dispatch_id, microgrid_id) == (created.id, 7)
    message = opb.GetMicrogridDispatchResponse.FromString(record)
    assert message.microgrid_id == 7
    assert message.dispatch.metadata.dispatch_id == created.id
    assert message.dispatch.data.type == "CHARGE"


def test_a_closed_service_refuses_calls_but_keeps_its_snapshot(tmp_path: Path) -> None:
    """After close(), calls are UNAVAILABLE and dispatches() still answers."""
    service = FakeDispatchService(db_path=tmp_path / "d.db", clock=clock)
    created = create(service)
    service.close()
    with pytest.raises(Unavailable, match="closed"):
        create(service)
    assert service.dispatches(1) == [created]


def test_an_unknown_layout_version_is_refused(tmp_path: Path) -> None:
    """A database of a newer layout fails with a message naming both versions."""
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 6}")
    db.close()
    with pytest.raises(ValueError, match=rf"layout version {SCHEMA_VERSION + 6}.*reads layout 1"):
        FakeDispatchService(db_path=path)


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    """A database with foreign tables and no layout version is left alone."""
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    with pytest.raises(ValueError, match="another program"):
        FakeDispatchService(db_path=path)


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    """A file that is not SQLite fails with a clear message."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the tables you are looking for" * 20)
    with pytest.raises(ValueError, match="not an SQLite database"):
        FakeDispatchService(db_path=path)


def test_a_path_that_cannot_be_opened_is_refused(tmp_path: Path) -> None:
    """A directory is no database file: the error names the path."""
    with pytest.raises(ValueError, match="cannot open the dispatch database"):
        FakeDispatchService(db_path=tmp_path)


def test_a_damaged_record_is_reported(tmp_path: Path) -> None:
    """A stored dispatch that cannot be decoded fails the start, naming the dispatch."""
    path = tmp_path / "dispatches.db"
    with FakeDispatchService(db_path=path, clock=clock) as service:
        create(service)
    db = sqlite3.connect(path)
    db.execute("UPDATE dispatches SET record = ? WHERE dispatch_id = 1", (b"\xff\xff",))
    db.commit()
    db.close()
    with pytest.raises(StoreCorrupt, match="dispatch 1"):
        FakeDispatchService(db_path=path)
