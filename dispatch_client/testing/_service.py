"""`FakeDispatchService`: the Dispatch API's semantics, in process, for tests.

The service is a transport handler: `service(method, request, metadata)` answers one
call with the response bytes (unary methods) or an async iterator of them
(`StreamMicrogridDispatches`). Hand it to `transports.MemoryTransport` to run the real
client against it without sockets, or serve it over gRPC.

What it does, as the API describes it:

* **Auth**: every call needs a `key` metadata entry (any non-empty key, or one of
  `keys`); with a `sign_secret`, a valid `ts`/`nonce`/`sig` signature too (see
  `_verify.py`). Failures are `Unauthenticated`.
* **Ids** come from one counter for the whole service, start at 1 and are never reused,
  also across restarts on the same database. Dispatches belong to one microgrid: get,
  update and delete through another microgrid's id are `NotFound`.
* **create** and **update** validate the resulting dispatch (`InvalidArgument`, naming
  what is wrong), set `create_time`/`update_time` from the clock and compute `end_time`.
* **list** filters, sorts and pages (see `FakeDispatchService`), **stream** sends
  CREATED/UPDATED/DELETED events of one microgrid to each of its subscribers, in order.

Threads: a lock guards the store and the subscriber lists, so the service may be called
from several threads and event loops at once (a server thread with its own asyncio loop
while a trio test calls the service directly, say). A waiting stream is woken without
blocking the notifying thread: through its own event loop's thread-safe "call soon".
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import enum
import hashlib
import itertools
import json
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import Any, Final, Self

import anyio
import anyio.lowlevel
import attrs

from dispatch_client._codec._bridge import (
    decode_create_request,
    decode_delete_request,
    decode_get_request,
    decode_list_request,
    decode_stream_request,
    decode_update_request,
    encode_create_response,
    encode_delete_response,
    encode_get_response,
    encode_list_request,
    encode_list_response,
    encode_stream_response,
    encode_update_response,
)
from dispatch_client._errors import DecodeError
from dispatch_client._methods import CREATE, DELETE, GET, LIST, SERVICE, STREAM, UPDATE
from dispatch_client._recurrence import build_rrule, is_recurring
from dispatch_client._requests import RULE_ATTRIBUTES, DispatchFilter, ListRequest, TimeInterval
from dispatch_client._types import (
    Dispatch,
    DispatchEvent,
    ElectricalComponentCategory,
    Event,
    Frequency,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetCategory,
    TargetComponents,
    TargetIds,
    Weekday,
)
from transports import (
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    RpcError,
    Unavailable,
    Unimplemented,
)

from ._store import MemoryStore, SqliteStore, StoreCorrupt
from ._verify import RequestVerifier

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "MAX_QUEUED_EVENTS",
    "START_TIME_GRACE",
    "FakeDispatchService",
]

DEFAULT_PAGE_SIZE: Final = 100
"""The page size of a listing whose first request sets none."""

MAX_PAGE_SIZE: Final = 1000
"""Larger page sizes are lowered to this."""

START_TIME_GRACE: Final = timedelta(seconds=60)
"""How far in the past a new start time may lie (the client's clock and the network lag)."""

MAX_QUEUED_EVENTS: Final = 10_000
"""How many events a stream subscriber may fall behind before its stream fails."""

_RUN_EVALUATION_LIMIT: Final = 100_000
"""How many runs of a bounded series are iterated to find its last run (see `_end_time`)."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_TOKEN_VERSION: Final = 1

# The length of one period of the frequencies whose runs are plain arithmetic (in UTC,
# without by-filters): no calendar irregularities, so the last run needs no iteration.
_FIXED_PERIODS: Final = MappingProxyType(
    {
        Frequency.MINUTELY: timedelta(minutes=1),
        Frequency.HOURLY: timedelta(hours=1),
        Frequency.DAILY: timedelta(days=1),
        Frequency.WEEKLY: timedelta(weeks=1),
    }
)

_SORT_TIMES: Final[MappingProxyType[SortField, Callable[[Dispatch], datetime]]] = MappingProxyType(
    {
        SortField.START_TIME: lambda dispatch: dispatch.start_time,
        SortField.CREATE_TIME: lambda dispatch: dispatch.create_time,
        SortField.LAST_UPDATE_TIME: lambda dispatch: dispatch.update_time,
    }
)

_SortKey = tuple[int, int]
"""A dispatch's place in a listing: (sort time in microseconds since the epoch, id)."""


class _NoRuns(enum.Enum):
    """A recurring series whose filters never match."""

    NO_RUNS = enum.auto()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return value.isoformat()


# ---------------------------------------------------------------------- validation


def _check_start(start: datetime, now: datetime, what: str) -> datetime:
    """Check a start time a client asks for: set, and not in the past.

    Args:
        start: The start time from the request.
        now: The service's clock.
        what: Which request, for the message.

    Returns:
        The start time in UTC.

    Raises:
        InvalidArgument: If it is the epoch (an unset Timestamp) or lies more than
            `START_TIME_GRACE` in the past.
    """
    start = start.astimezone(UTC)
    if start == _EPOCH:
        raise InvalidArgument(
            f"{what}: start_time is missing (it is the epoch); set a start time in the future "
            "or start_immediately"
        )
    if start < now - START_TIME_GRACE:
        raise InvalidArgument(
            f"{what}: start_time {_iso(start)} is in the past (server time {_iso(now)}); "
            "give a future start time"
        )
    return start


def _check_target(target: TargetComponents, what: str) -> None:
    """Check that a target names components, in categories the API knows.

    Raises:
        InvalidArgument: For an empty target, category UNSPECIFIED or an unknown
            category or type number.
    """
    if not target:
        raise InvalidArgument(
            f"{what}: the target is empty; give component ids or component categories"
        )
    if isinstance(target, TargetCategories):
        for member in sorted(target, key=repr):
            if member.category is ElectricalComponentCategory.UNSPECIFIED:
                raise InvalidArgument(f"{what}: target category UNSPECIFIED is not a category")
            if member.category.is_unknown or (member.type is not None and member.type.is_unknown):
                raise InvalidArgument(f"{what}: target {member!r} is not known to this service")


def _check_recurrence(rule: RecurrenceRule | None, start: datetime, what: str) -> None:
    """Check a recurrence rule beyond what `RecurrenceRule` checks itself.

    Raises:
        InvalidArgument: For an unknown frequency or weekday number, weekday
            UNSPECIFIED, interval 0 with a frequency, or an `until` before the start.
    """
    if rule is None:
        return
    if rule.frequency.is_unknown:
        raise InvalidArgument(
            f"{what}: recurrence frequency {int(rule.frequency)} is not a known frequency"
        )
    if rule.frequency is not Frequency.UNSPECIFIED and rule.interval < 1:
        raise InvalidArgument(
            f"{what}: recurrence interval must be >= 1 with frequency {rule.frequency.name}, "
            f"got {rule.interval}"
        )
    for day in rule.byweekdays:
        if day is Weekday.UNSPECIFIED or day.is_unknown:
            raise InvalidArgument(f"{what}: recurrence byweekdays holds {day.name}, not a weekday")
    until = None if rule.end_criteria is None else rule.end_criteria.until
    if until is not None and until < start:
        raise InvalidArgument(
            f"{what}: recurrence end_criteria.until {_iso(until)} is before the start time "
            f"{_iso(start)}"
        )


def _check_dispatch(dispatch: Dispatch, what: str) -> None:
    """Check a dispatch as it would be stored (after a create or an update).

    Raises:
        InvalidArgument: Naming the first problem found.
    """
    if not dispatch.type.strip():
        raise InvalidArgument(f"{what}: type is empty; give the kind of dispatch, e.g. 'CHARGE'")
    _check_target(dispatch.target, what)
    _check_recurrence(dispatch.recurrence, dispatch.start_time, what)


# ------------------------------------------------------------------------ end time


def _last_run(start: datetime, rule: RecurrenceRule) -> datetime | _NoRuns | None:
    """Find the start of the last run of a bounded (count or until) recurring series.

    Args:
        start: The dispatch start time, in UTC.
        rule: A recurring rule with end criteria.

    Returns:
        The last run's start; `NO_RUNS` when the series has no run at all (its filters
        never match); None when the series is too long to evaluate (more than
        `_RUN_EVALUATION_LIMIT` runs of a filtered or calendar-based rule).
    """
    criteria = rule.end_criteria
    assert criteria is not None
    period = _FIXED_PERIODS.get(rule.frequency)
    filtered = rule.byminutes or rule.byhours or rule.byweekdays or rule.bymonthdays
    if period is not None and not filtered and not rule.bymonths:
        step = period * rule.interval
        if criteria.count is not None:
            return start + step * (criteria.count - 1)
        assert criteria.until is not None
        return start + step * ((criteria.until - start) // step)
    series = build_rrule(rule, start)
    if series is None:
        return _NoRuns.NO_RUNS
    last: datetime | None = None
    try:
        for index, run in enumerate(itertools.islice(series, _RUN_EVALUATION_LIMIT + 1)):
            if index == _RUN_EVALUATION_LIMIT:
                return None
            last = run
    except (ValueError, OverflowError):
        # Before the first run: dateutil found the filters out of the interval's reach.
        # After it: the series runs past the year 9999, so it never ends in practice.
        return _NoRuns.NO_RUNS if last is None else None
    if last is None:
        return _NoRuns.NO_RUNS
    # `build_rrule` drops the start's microseconds; every run has them back.
    return last + timedelta(microseconds=start.microsecond)


def _end_time(dispatch: Dispatch) -> datetime | None:
    """Compute when a dispatch ends for good.

    Returns:
        None without a duration (it runs until stopped) and for an endless recurrence;
        start + duration for a single run; for a series with a count or an until, the
        end of its last run (None if that is too long to evaluate, see `_last_run`, or
        after the year 9999, and the start time if the series has no run at all).
    """
    if dispatch.duration is None:
        return None
    rule = dispatch.recurrence
    if rule is None or not is_recurring(rule):
        try:
            return dispatch.start_time + dispatch.duration
        except OverflowError:
            return None
    if rule.end_criteria is None:
        return None
    try:
        last = _last_run(dispatch.start_time, rule)
        if last is _NoRuns.NO_RUNS:
            return dispatch.start_time
        return None if last is None else last + dispatch.duration
    except OverflowError:
        # The last run ends after the year 9999: no datetime (and no Timestamp) holds it.
        return None


# ------------------------------------------------------------------------ filtering


def _category_matches(wanted: TargetCategory, member: TargetCategory) -> bool:
    if wanted.type is None:
        return wanted.category is member.category
    return wanted == member


def _target_matches(target: TargetComponents, wanted: TargetComponents) -> bool:
    """Tell whether a dispatch target matches one filter target (see `FakeDispatchService`)."""
    if isinstance(wanted, TargetIds):
        return isinstance(target, TargetIds) and not target.isdisjoint(wanted)
    if not isinstance(target, TargetCategories):
        return False
    return any(_category_matches(w, member) for w in wanted for member in target)


def _in_interval(value: datetime, interval: TimeInterval | None) -> bool:
    if interval is None:
        return True
    if interval.start is not None and value < interval.start:
        return False
    return interval.end is None or value < interval.end


def _query_matches(query: str, dispatch: Dispatch) -> bool:
    digits = query[1:]
    if query.startswith("#") and digits.isascii() and digits.isdigit():
        return dispatch.id == int(digits)
    return query.casefold() in dispatch.type.casefold()


def _matches(dispatch: Dispatch, wanted: DispatchFilter) -> bool:
    """Tell whether a dispatch passes a filter (see `FakeDispatchService`)."""
    if wanted.targets and not any(_target_matches(dispatch.target, t) for t in wanted.targets):
        return False
    if wanted.active is not None and dispatch.active != wanted.active:
        return False
    if wanted.dry_run is not None and dispatch.dry_run != wanted.dry_run:
        return False
    if wanted.recurring is not None and is_recurring(dispatch.recurrence) != wanted.recurring:
        return False
    if not _in_interval(dispatch.start_time, wanted.start_time):
        return False
    if dispatch.end_time is None:
        # No end time means it never ends: later than any bound.
        if wanted.end_time is not None and wanted.end_time.end is not None:
            return False
    elif not _in_interval(dispatch.end_time, wanted.end_time):
        return False
    if not _in_interval(dispatch.update_time, wanted.update_time):
        return False
    if wanted.dispatch_ids and dispatch.id not in wanted.dispatch_ids:
        return False
    return not wanted.queries or any(_query_matches(q, dispatch) for q in wanted.queries)


# ----------------------------------------------------------------------- pagination


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def _sort_key(field: SortField) -> Callable[[Dispatch], _SortKey]:
    time_of = _SORT_TIMES[field]
    return lambda dispatch: (_micros(time_of(dispatch)), dispatch.id)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _make_token(query: ListRequest, after: _SortKey) -> str:
    """Build the opaque token of the page after `after`.

    Later requests carry only the token, so it holds the whole first request
    (microgrid, filter, sort, page size) in the API's wire format, plus the sort key of
    the last dispatch returned. Pages continue after that key: dispatches created or
    deleted meanwhile shift nothing, and tokens stay valid indefinitely, as the API
    promises, also across restarts. A checksum catches damaged tokens.
    """
    body = json.dumps(
        {"v": _TOKEN_VERSION, "q": _b64encode(encode_list_request(query)), "k": list(after)},
        separators=(",", ":"),
    ).encode()
    return f"{_b64encode(body)}.{hashlib.sha256(body).hexdigest()[:16]}"


def _read_token(token: str) -> tuple[ListRequest, _SortKey]:
    """Read a page token back.

    Raises:
        InvalidArgument: If it is not a token of this service.
    """
    problem = "it was not issued by this service or is damaged"
    try:
        encoded, checksum = token.split(".")
        body = _b64decode(encoded)
        if hashlib.sha256(body).hexdigest()[:16] != checksum:
            raise ValueError("checksum mismatch")
        content = json.loads(body)
        if not isinstance(content, dict) or content.get("v") != _TOKEN_VERSION:
            raise ValueError("unknown token version")
        key = content["k"]
        if (
            not isinstance(key, list)
            or len(key) != 2
            or not all(isinstance(part, int) and not isinstance(part, bool) for part in key)
        ):
            raise ValueError("bad sort key")
        query = decode_list_request(_b64decode(content["q"]))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidArgument(f"invalid page_token: {problem} ({exc})") from exc
    return query, (key[0], key[1])


def _continued(request: ListRequest) -> tuple[ListRequest, _SortKey]:
    """Return the first request and the cursor of a request carrying a page token.

    Raises:
        InvalidArgument: For a malformed token, or a request whose microgrid, filter or
            sort differ from those the token was issued for.
    """
    assert request.page_token is not None
    query, after = _read_token(request.page_token)
    if query.microgrid_id != request.microgrid_id:
        raise InvalidArgument(
            f"page_token belongs to a listing of microgrid {query.microgrid_id}, "
            f"not {request.microgrid_id}"
        )
    if request.filter not in (DispatchFilter(), query.filter):
        raise InvalidArgument(
            "page_token was issued for another filter; send only the page_token on later "
            "pages, or start a new listing"
        )
    if request.sort_field not in (SortField.UNSPECIFIED, query.sort_field) or (
        request.sort_order not in (SortOrder.UNSPECIFIED, query.sort_order)
    ):
        raise InvalidArgument("page_token was issued for another sort order")
    return query, after


def _first(request: ListRequest) -> ListRequest:
    """Normalize the first request of a listing: defaults filled in, size bounded.

    Raises:
        InvalidArgument: For a sort field or order number the API does not define.
    """
    if request.sort_field.is_unknown:
        raise InvalidArgument(f"unknown sort field {int(request.sort_field)}")
    if request.sort_order.is_unknown:
        raise InvalidArgument(f"unknown sort order {int(request.sort_order)}")
    field = request.sort_field
    if field is SortField.UNSPECIFIED:
        field = SortField.CREATE_TIME
    order = request.sort_order
    if order is SortOrder.UNSPECIFIED:
        order = SortOrder.DESCENDING
    size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    return attrs.evolve(request, sort_field=field, sort_order=order, page_size=size)


# ----------------------------------------------------------------------- streaming


def _scheduler() -> Callable[[Callable[[], object]], object]:
    """Return a non-blocking, thread-safe "call soon" into the running event loop.

    `anyio.from_thread.run_sync` would block the notifying thread until the call ran,
    and fails when called from the loop's own thread; a notifier may be either. The
    native loop tokens offer exactly what is needed: asyncio's loop has
    `call_soon_threadsafe`, trio's token `run_sync_soon`.

    Raises:
        Internal: Under an event loop that offers neither.
    """
    native = anyio.lowlevel.current_token().native_token
    call_soon = getattr(native, "call_soon_threadsafe", None) or getattr(
        native, "run_sync_soon", None
    )
    if call_soon is None:
        raise Internal(f"cannot wake a stream on this event loop ({type(native).__name__})")
    result: Callable[[Callable[[], object]], object] = call_soon
    return result


class _Subscriber:
    """One stream: a queue of encoded events and a wakeup for its reader.

    `push` and `end` may be called from any thread; `next` runs in the reader's loop.
    """

    def __init__(self, microgrid_id: int) -> None:
        self.microgrid_id = microgrid_id
        self._lock = threading.Lock()
        self._queue: collections.deque[bytes] = collections.deque()
        self._ended = False
        self._overflowed = False
        self._waiter: tuple[Callable[[Callable[[], object]], object], anyio.Event] | None = None

    def push(self, message: bytes) -> None:
        """Queue one event; a reader too far behind is failed instead."""
        with self._lock:
            if self._ended:
                return
            if len(self._queue) >= MAX_QUEUED_EVENTS:
                self._overflowed = self._ended = True
                self._queue.clear()
            else:
                self._queue.append(message)
            self._wake()

    def end(self) -> None:
        """End the stream after the queued events."""
        with self._lock:
            self._ended = True
            self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None:
            return
        call_soon, event = waiter
        # The reader's loop may have finished (RuntimeError on asyncio, RunFinishedError
        # on trio): then nobody is left to wake.
        with contextlib.suppress(Exception):
            call_soon(event.set)

    async def next(self) -> bytes | None:
        """Wait for the next event.

        Returns:
            The encoded event, or None when the stream has ended.

        Raises:
            ResourceExhausted: If the reader fell `MAX_QUEUED_EVENTS` events behind.
        """
        while True:
            with self._lock:
                if self._overflowed:
                    raise ResourceExhausted(
                        f"the stream of microgrid {self.microgrid_id} fell more than "
                        f"{MAX_QUEUED_EVENTS} events behind and was dropped; subscribe again"
                    )
                if self._queue:
                    return self._queue.popleft()
                if self._ended:
                    return None
                event = anyio.Event()
                self._waiter = (_scheduler(), event)
            await event.wait()


# -------------------------------------------------------------------------- service


class FakeDispatchService:
    """An in-process Dispatch service with the API's semantics, for tests.

    Call it as a transport handler (`transports.MemoryTransport(service)`), or serve it.

    **list** semantics (the API leaves some of them open; these are this service's):

    * Criteria combine with AND; the members of `targets`, `dispatch_ids` and `queries`
      each with OR.
    * Targets: a `TargetIds` filter matches a dispatch targeting at least one of its
      ids. A `TargetCategories` filter matches a dispatch targeting categories that
      shares a member with it, where a filter member without a type (BATTERY) matches
      every dispatch member of that category, with or without a type (BATTERY,
      BATTERY:LI_ION), and a member with a type (BATTERY:LI_ION) only that exact
      member. Ids never match categories.
    * `recurring`: a dispatch recurs when it has a rule with a frequency other than
      UNSPECIFIED.
    * Time intervals are `start <= t < end`, a None bound open. A dispatch without an
      end time never ends, so it matches an end-time interval only if that interval
      has no upper bound.
    * Queries: `#<digits>` matches that id; any other text is a case-insensitive
      substring of the type.
    * Sorting: by CREATE_TIME unless a field is given, DESCENDING unless an order is
      given (the API's documented default, newest first); ties are broken by id, in
      the same direction.
    * Pages hold `page_size` dispatches (`DEFAULT_PAGE_SIZE` if unset, at most
      `MAX_PAGE_SIZE`). The `next_page_token` carries the first request's microgrid,
      filter, sort and page size, so later requests need only the token; a later
      request that sends another filter or sort is `InvalidArgument`. `total_items` is
      the number of dispatches the filter matches now. The last page has no token.

    **create/update**: start times more than `START_TIME_GRACE` in the past are refused
    (an update only when it changes the start time); `end_time` is None without a
    duration or for an endless recurrence, else the end of the last run.

    **stream**: each subscriber gets every event of its microgrid from the moment it
    called, in order. Queues hold at most `MAX_QUEUED_EVENTS` events; a reader that
    falls further behind gets `ResourceExhausted`. `close()` ends every stream.

    Every failure is a `transports` error: `Unauthenticated`, `InvalidArgument`,
    `NotFound`, `Unimplemented` for unknown methods, `Unavailable` once closed, and
    `Internal` (naming the exception) for anything unexpected.
    """

    def __init__(
        self,
        *,
        keys: Iterable[str] | None = None,
        sign_secret: str | bytes | None = None,
        db_path: str | os.PathLike[str] | None = None,
        clock: Callable[[], datetime] | None = None,
        max_clock_skew: timedelta = timedelta(minutes=5),
    ) -> None:
        """Create the service.

        Args:
            keys: The accepted API keys; None accepts any non-empty key.
            sign_secret: With a secret, every request must be signed with it.
            db_path: An SQLite file to keep the dispatches in (created if missing), or
                None to keep them in memory.
            clock: Returns the current time (timezone-aware); defaults to the system
                clock. Tests pass a fixed clock for determinism.
            max_clock_skew: How far a signed request's `ts` may be from the clock, and
                how long a nonce is remembered.

        Raises:
            TypeError: For keys or a secret of the wrong type.
            ValueError: For an empty key or secret, a negative skew, or a database
                file that is not a FakeDispatchService database of a known layout.
            StoreCorrupt: If a stored dispatch cannot be read back.
        """
        self._clock = clock if clock is not None else _utcnow
        self._verifier = RequestVerifier(
            keys=keys, sign_secret=sign_secret, clock=self._now, max_clock_skew=max_clock_skew
        )
        self._store = MemoryStore() if db_path is None else SqliteStore(db_path)
        self._lock = threading.Lock()
        # Weak: a stream handed out but never read and then dropped must not stay
        # subscribed; the generator's frame holds the strong reference.
        self._subscribers: dict[int, weakref.WeakSet[_Subscriber]] = {}
        self._closed = False
        self._unary: dict[str, Callable[[bytes], bytes]] = {
            LIST: self._list,
            CREATE: self._create,
            UPDATE: self._update,
            GET: self._get,
            DELETE: self._delete,
        }

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<FakeDispatchService {state}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ public API

    def __call__(
        self, method: str, request: bytes, metadata: tuple[tuple[str, str | bytes], ...]
    ) -> bytes | AsyncIterator[bytes]:
        """Answer one call.

        Args:
            method: The full method path.
            request: The serialized request.
            metadata: The request metadata.

        Returns:
            The serialized response of a unary method; for
            `StreamMicrogridDispatches`, an async generator of serialized events that
            runs until it is closed or the service closes.

        Raises:
            RpcError: `Unimplemented`, `Unauthenticated`, `InvalidArgument`,
                `NotFound`, `Unavailable` (closed), or `Internal` for any unexpected
                failure; never another exception.
        """
        try:
            handler = self._unary.get(method)
            if handler is None and method != STREAM:
                raise Unimplemented(f"unknown method {method!r}: {SERVICE} does not have it")
            self._check_open()
            self._verifier.verify(method, metadata)
            data = bytes(request)
            if handler is None:
                return self._subscribe(data)
            return handler(data)
        except RpcError:
            raise
        except DecodeError as exc:
            message = str(exc)
            if not message.startswith("invalid"):
                # The framing check's messages ("truncated varint") do not say what.
                message = f"invalid {method.rsplit('/', 1)[-1]} request: {message}"
            raise InvalidArgument(message) from exc
        except StoreCorrupt as exc:
            raise Internal(f"the dispatch store is damaged: {exc}") from exc
        except Exception as exc:
            raise Internal(
                f"the fake dispatch service failed on {method}: {type(exc).__name__}: {exc}"
            ) from exc

    def dispatches(self, microgrid_id: int) -> list[Dispatch]:
        """Return a snapshot of a microgrid's dispatches (also after `close()`).

        Args:
            microgrid_id: The microgrid.

        Returns:
            Its dispatches in id order.
        """
        with self._lock:
            return self._store.of_microgrid(microgrid_id)

    def subscriber_count(self, microgrid_id: int) -> int:
        """Return how many streams of a microgrid are open right now.

        A client's stream is "connected" once its call is open; the service subscribes
        it a moment later. Tests that need every event from some point on wait until
        this count says the server has subscribed.

        Args:
            microgrid_id: The microgrid.

        Returns:
            The number of subscribed streams.
        """
        with self._lock:
            return len(self._subscribers.get(microgrid_id, ()))

    def close(self) -> None:
        """End every stream and close the database; idempotent.

        Calls made afterwards fail with `Unavailable`.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            subscribers = [s for group in self._subscribers.values() for s in group]
            self._subscribers.clear()
            self._store.close()
        for subscriber in subscribers:
            subscriber.end()

    # ---------------------------------------------------------------- internals

    def _now(self) -> datetime:
        """The clock's time, in UTC.

        Raises:
            ValueError: If the clock returns a naive datetime.
        """
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"the service clock returned a naive datetime: {now!r}")
        return now.astimezone(UTC)

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the fake dispatch service is closed")

    def _publish(self, microgrid_id: int, event: Event, dispatch: Dispatch) -> None:
        """Queue an event to the microgrid's subscribers; call with the lock held."""
        subscribers = self._subscribers.get(microgrid_id)
        if not subscribers:
            # A stream closed before its first read never ran its cleanup; its weak
            # entry is gone, so drop the empty group here.
            self._subscribers.pop(microgrid_id, None)
            return
        message = encode_stream_response(DispatchEvent(event=event, dispatch=dispatch))
        for subscriber in list(subscribers):
            subscriber.push(message)

    def _missing(self, microgrid_id: int, dispatch_id: int) -> NotFound:
        return NotFound(f"dispatch {dispatch_id} not found in microgrid {microgrid_id}")

    # ------------------------------------------------------------------- methods

    def _create(self, data: bytes) -> bytes:
        request = decode_create_request(data)
        now = self._now()
        what = f"create dispatch in microgrid {request.microgrid_id}"
        start = now if request.start_time == "NOW" else _check_start(request.start_time, now, what)
        dispatch = Dispatch(
            id=0,
            type=request.type,
            start_time=start,
            duration=request.duration,
            target=request.target,
            active=request.active,
            dry_run=request.dry_run,
            payload=request.payload,
            recurrence=request.recurrence,
            create_time=now,
            update_time=now,
        )
        _check_dispatch(dispatch, what)
        dispatch = attrs.evolve(dispatch, end_time=_end_time(dispatch))
        with self._lock:
            self._check_open()
            created = self._store.add(request.microgrid_id, dispatch)
            self._publish(request.microgrid_id, Event.CREATED, created)
        return encode_create_response(created)

    def _update(self, data: bytes) -> bytes:
        request = decode_update_request(data)
        now = self._now()
        microgrid_id, dispatch_id = request.microgrid_id, request.dispatch_id
        what = f"update dispatch {dispatch_id} in microgrid {microgrid_id}"
        with self._lock:
            self._check_open()
            current = self._store.get(microgrid_id, dispatch_id)
            if current is None:
                raise self._missing(microgrid_id, dispatch_id)
            updated = _apply_update(current, request.fields, now, what)
            self._store.replace(microgrid_id, updated)
            self._publish(microgrid_id, Event.UPDATED, updated)
        return encode_update_response(updated)

    def _get(self, data: bytes) -> bytes:
        microgrid_id, dispatch_id = decode_get_request(data)
        with self._lock:
            self._check_open()
            dispatch = self._store.get(microgrid_id, dispatch_id)
        if dispatch is None:
            raise self._missing(microgrid_id, dispatch_id)
        return encode_get_response(dispatch, microgrid_id=microgrid_id)

    def _delete(self, data: bytes) -> bytes:
        microgrid_id, dispatch_id = decode_delete_request(data)
        with self._lock:
            self._check_open()
            dispatch = self._store.get(microgrid_id, dispatch_id)
            if dispatch is None:
                raise self._missing(microgrid_id, dispatch_id)
            self._store.remove(dispatch_id)
            self._publish(microgrid_id, Event.DELETED, dispatch)
        return encode_delete_response(microgrid_id, dispatch_id)

    def _list(self, data: bytes) -> bytes:
        request = decode_list_request(data)
        if request.page_token is not None:
            query, after = _continued(request)
        else:
            query, after = _first(request), None
        with self._lock:
            self._check_open()
            candidates = self._store.of_microgrid(query.microgrid_id)
        key = _sort_key(query.sort_field)
        descending = query.sort_order is SortOrder.DESCENDING
        matched = sorted(
            (d for d in candidates if _matches(d, query.filter)), key=key, reverse=descending
        )
        remaining = matched
        if after is not None:
            remaining = [d for d in matched if (key(d) < after if descending else key(d) > after)]
        size = query.page_size or DEFAULT_PAGE_SIZE
        page = remaining[:size]
        token = _make_token(query, key(page[-1])) if len(remaining) > size else None
        return encode_list_response(page, next_page_token=token, total_items=len(matched))

    def _subscribe(self, data: bytes) -> AsyncIterator[bytes]:
        microgrid_id = decode_stream_request(data)
        subscriber = _Subscriber(microgrid_id)
        # Subscribed now, not on the first read: events from here on are kept.
        with self._lock:
            self._check_open()
            self._subscribers.setdefault(microgrid_id, weakref.WeakSet()).add(subscriber)
        return self._events(subscriber)

    async def _events(self, subscriber: _Subscriber) -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    message = await subscriber.next()
                except RpcError:
                    raise
                except Exception as exc:
                    raise Internal(
                        f"the stream of microgrid {subscriber.microgrid_id} failed: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                if message is None:
                    return
                yield message
        finally:
            self._unsubscribe(subscriber)

    def _unsubscribe(self, subscriber: _Subscriber) -> None:
        with self._lock:
            group = self._subscribers.get(subscriber.microgrid_id)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._subscribers[subscriber.microgrid_id]


def _apply_update(current: Dispatch, fields: Any, now: datetime, what: str) -> Dispatch:
    """Apply an update's fields (keyed by mask path) to a dispatch, and check the result.

    Args:
        current: The stored dispatch.
        fields: Mask path to new value, as `UpdateRequest.fields` holds them.
        now: The service's clock.
        what: Which request, for the messages.

    Returns:
        The updated dispatch, with a new `update_time` and `end_time`.

    Raises:
        InvalidArgument: If the result is not a valid dispatch.
    """
    changes: dict[str, Any] = {"update_time": now}
    rule_changes: dict[str, Any] = {}
    for path, value in fields.items():
        if path in RULE_ATTRIBUTES:
            rule_changes[RULE_ATTRIBUTES[path]] = value
        elif path == "start_time":
            changes["start_time"] = _check_start(value, now, what)
        elif path == "is_active":
            changes["active"] = value
        else:  # duration, target, payload: the domain field has the path's name
            changes[path] = value
    try:
        if rule_changes:
            # Only the named recurrence fields change; the others keep their values.
            changes["recurrence"] = attrs.evolve(
                current.recurrence or RecurrenceRule(), **rule_changes
            )
        updated = attrs.evolve(current, **changes)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{what}: the result is not a valid dispatch: {exc}") from exc
    _check_dispatch(updated, what)
    return attrs.evolve(updated, end_time=_end_time(updated))
