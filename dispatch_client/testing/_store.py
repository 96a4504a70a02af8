"""Where the fake Dispatch service keeps its dispatches: in memory or in SQLite.

Both stores hold every dispatch in a dict keyed by id, plus the id counter; the SQLite
store writes each change through to its database file (and commits it) before the
change is visible, and reads the whole file back when it opens. So a service started
again on the same file sees every dispatch and continues the id sequence.

The stores are not thread-safe on their own: the service serializes every call with
its lock. One database file is meant for one service at a time.

Database layout (`PRAGMA user_version` 1)::

    dispatches(dispatch_id INTEGER PRIMARY KEY, microgrid_id INTEGER, record BLOB)
    counters(name TEXT PRIMARY KEY, value INTEGER)   -- 'last_dispatch_id'

`record` is a serialized `GetMicrogridDispatchResponse` (the dispatch and its microgrid
id), written and read through `_codec._bridge`'s codecs, so the file holds the API's own
wire format.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Final

import attrs

from dispatch_client._codec._bridge import decode_get_response, encode_get_response
from dispatch_client._errors import DecodeError
from dispatch_client._types import Dispatch

__all__ = ["SCHEMA_VERSION", "MemoryStore", "SqliteStore", "StoreCorrupt"]

SCHEMA_VERSION: Final = 1
"""The database layout this module writes and reads."""

_LAST_ID: Final = "last_dispatch_id"

_SCHEMA: Final = (
    "CREATE TABLE dispatches ("
    " dispatch_id INTEGER PRIMARY KEY,"
    " microgrid_id INTEGER NOT NULL,"
    " record BLOB NOT NULL)",
    "CREATE INDEX dispatches_by_microgrid ON dispatches (microgrid_id)",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    f"INSERT INTO counters (name, value) VALUES ('{_LAST_ID}', 0)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


class StoreCorrupt(Exception):
    """A stored record cannot be read back."""


class MemoryStore:
    """Dispatches in a dict: gone when the process ends."""

    def __init__(self) -> None:
        """Start empty, with the id counter at 0 (the first id is 1)."""
        self._dispatches: dict[int, tuple[int, Dispatch]] = {}
        self._last_id = 0

    def get(self, microgrid_id: int, dispatch_id: int) -> Dispatch | None:
        """Return a dispatch of a microgrid.

        Args:
            microgrid_id: The microgrid.
            dispatch_id: The dispatch.

        Returns:
            The dispatch, or None if that microgrid has no dispatch with that id.
        """
        entry = self._dispatches.get(dispatch_id)
        if entry is None or entry[0] != microgrid_id:
            return None
        return entry[1]

    def of_microgrid(self, microgrid_id: int) -> list[Dispatch]:
        """Return a microgrid's dispatches, in id order.

        Args:
            microgrid_id: The microgrid.

        Returns:
            A new list.
        """
        found = [d for mg, d in self._dispatches.values() if mg == microgrid_id]
        found.sort(key=lambda dispatch: dispatch.id)
        return found

    def add(self, microgrid_id: int, dispatch: Dispatch) -> Dispatch:
        """Store a new dispatch under the next id.

        Args:
            microgrid_id: The microgrid.
            dispatch: The dispatch; its `id` is replaced.

        Returns:
            The stored dispatch, with its id.
        """
        created = attrs.evolve(dispatch, id=self._last_id + 1)
        self._write_new(microgrid_id, created)
        self._last_id = created.id
        self._dispatches[created.id] = (microgrid_id, created)
        return created

    def replace(self, microgrid_id: int, dispatch: Dispatch) -> None:
        """Store a changed version of an existing dispatch.

        Args:
            microgrid_id: The microgrid it belongs to.
            dispatch: The new version.
        """
        self._write_changed(microgrid_id, dispatch)
        self._dispatches[dispatch.id] = (microgrid_id, dispatch)

    def remove(self, dispatch_id: int) -> None:
        """Delete a dispatch (the id is never used again).

        Args:
            dispatch_id: The dispatch.
        """
        self._write_removed(dispatch_id)
        self._dispatches.pop(dispatch_id, None)

    def close(self) -> None:
        """Release resources; idempotent."""

    # Write-through hooks for a persistent subclass; each runs before memory changes,
    # so a failed write leaves memory as it was.

    def _write_new(self, microgrid_id: int, dispatch: Dispatch) -> None:
        """Persist a new dispatch and the id counter."""

    def _write_changed(self, microgrid_id: int, dispatch: Dispatch) -> None:
        """Persist a changed dispatch."""

    def _write_removed(self, dispatch_id: int) -> None:
        """Persist a deletion."""


class SqliteStore(MemoryStore):
    """Dispatches in memory, written through to an SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (or create) the database and load every dispatch.

        Args:
            path: The database file; created with the current layout if missing.

        Raises:
            ValueError: If the file cannot be opened, is not an SQLite database, is
                another program's database, or has a layout version this module does not
                know.
            StoreCorrupt: If a stored dispatch cannot be read back.
        """
        super().__init__()
        self._path = os.fspath(path)
        # The service's lock serializes all use, from whichever thread calls it.
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self._path, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise ValueError(f"cannot open the dispatch database {self._path}: {exc}") from exc
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        db = self._connection()
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self._path} is not an SQLite database: {exc}") from exc
        if version == 0:
            if tables:
                raise ValueError(
                    f"{self._path} is an SQLite database of another program (it has tables "
                    "but no FakeDispatchService layout version); use a new file"
                )
            with _transaction(db):
                for statement in _SCHEMA:
                    db.execute(statement)
        elif version != SCHEMA_VERSION:
            raise ValueError(
                f"{self._path} has FakeDispatchService database layout version {version}; "
                f"this version reads layout {SCHEMA_VERSION} only"
            )
        row = db.execute("SELECT value FROM counters WHERE name = ?", (_LAST_ID,)).fetchone()
        if row is None:
            raise StoreCorrupt(f"{self._path} has no {_LAST_ID} counter")
        self._last_id = int(row[0])
        for dispatch_id, microgrid_id, record in db.execute(
            "SELECT dispatch_id, microgrid_id, record FROM dispatches"
        ):
            try:
                dispatch = decode_get_response(bytes(record))
            except DecodeError as exc:
                raise StoreCorrupt(
                    f"dispatch {dispatch_id} in {self._path} cannot be read: {exc}"
                ) from exc
            if dispatch.id != dispatch_id:
                raise StoreCorrupt(
                    f"the record of dispatch {dispatch_id} in {self._path} holds id {dispatch.id}"
                )
            self._dispatches[dispatch_id] = (int(microgrid_id), dispatch)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"the dispatch store {self._path} is closed")
        return self._db

    def _write_new(self, microgrid_id: int, dispatch: Dispatch) -> None:
        db = self._connection()
        record = encode_get_response(dispatch, microgrid_id=microgrid_id)
        # The dispatch and the counter change together, or not at all.
        with _transaction(db):
            db.execute(
                "INSERT INTO dispatches (dispatch_id, microgrid_id, record) VALUES (?, ?, ?)",
                (dispatch.id, microgrid_id, record),
            )
            db.execute("UPDATE counters SET value = ? WHERE name = ?", (dispatch.id, _LAST_ID))

    def _write_changed(self, microgrid_id: int, dispatch: Dispatch) -> None:
        db = self._connection()
        record = encode_get_response(dispatch, microgrid_id=microgrid_id)
        with _transaction(db):
            db.execute(
                "UPDATE dispatches SET record = ? WHERE dispatch_id = ?", (record, dispatch.id)
            )

    def _write_removed(self, dispatch_id: int) -> None:
        db = self._connection()
        with _transaction(db):
            db.execute("DELETE FROM dispatches WHERE dispatch_id = ?", (dispatch_id,))

    def close(self) -> None:
        """Close the database; idempotent."""
        db, self._db = self._db, None
        if db is not None:
            db.close()


class _transaction:  # lowercase: it reads like a function, `with _transaction(db):`
    """Run a block in one explicit transaction: commit on success, roll back on error.

    The connection is in autocommit mode (`isolation_level=None`), so the transaction
    boundaries are exactly these, also for DDL.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
