"""When a dispatch runs: recurrence evaluation on top of python-dateutil's `rrule`.

A dispatch's schedule is a sorted series of *run starts*. Each run lasts the dispatch's
duration and the runs are half-open intervals `[start, start + duration)`.

- Without recurrence (no rule, or a rule whose frequency is `UNSPECIFIED`) the series is
  exactly one run, at the start time.
- Otherwise the series is the rrule built from the rule with the start time as `dtstart`.
  As in dateutil (and the official client), the start time itself is a run only if it
  matches the rule's `by*` filters. This holds with or without a duration: a dispatch
  without one runs forever from its *first run* on (which the filters and end criteria
  decide, so it may be later than the start time, or never), and its later runs are
  still listed. (frequenz-dispatch ignores the recurrence of such a dispatch.)

Runs are computed in the start time's timezone (wall-clock arithmetic, so "daily at 14:00
Europe/Berlin" stays at 14:00 across DST changes); dispatches decoded from the wire carry
UTC start times, so their runs are computed in UTC, as the server does. Every query
follows the same rules across DST changes (docs/domain-model.md explains them to users):

- The rule steps through wall times, as dateutil does; each wall time is visited once.
- A wall time dateutil yields is read as RFC 5545 and Python (`fold=0`) read it: one in a
  gap with the offset before the gap (02:30 on the spring-forward day is 03:30 CEST),
  one in a repeated hour as its first pass. Runs at one instant are listed once, and
  every run is returned as a wall time that exists.
- No run is before the start instant. From a start in the second pass of a repeated
  hour, the walk meets that hour's wall times in their first pass, before the start: the
  start's own wall time is the start itself (the first run), the others are no runs.
- A start in a gap is the instant Python gives it; the series steps from that instant's
  real wall time (`existing_wall_time`).

All comparisons are between UTC instants: Python compares datetimes that share a tzinfo
by wall clock, which is wrong in a repeated hour.

A rule this client cannot evaluate (an unknown frequency or weekday number, a
`Weekday.UNSPECIFIED` filter) or that can never match (impossible month days, filters the
interval never reaches) has no runs: one odd dispatch from a server must not break a
scheduler loop, nor make each query search dateutil's calendar to the year 9999.

This module maps the domain enums to dateutil **by name** and imports `_types` only for
type checking, so `_types` can import it without a cycle.
"""

from __future__ import annotations

import functools
import heapq
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from dateutil import rrule

    from ._types import RecurrenceRule

__all__ = ["Schedule", "build_rrule", "is_recurring"]

# dateutil.rrule (with calendar and locale) loads with the first recurring series built,
# not with the package: a program that never asks when a dispatch runs never pays for it.

_WEEKDAY_NUMBERS: Final[dict[str, int]] = {
    "MONDAY": 0,
    "TUESDAY": 1,
    "WEDNESDAY": 2,
    "THURSDAY": 3,
    "FRIDAY": 4,
    "SATURDAY": 5,
    "SUNDAY": 6,
}
"""Python's (and dateutil's) weekday numbers by the name of our `Weekday` member."""


@functools.cache
def _frequencies() -> dict[str, int]:
    """dateutil frequency constants by the name of our `Frequency` member."""
    from dateutil import rrule

    return {
        "MINUTELY": rrule.MINUTELY,
        "HOURLY": rrule.HOURLY,
        "DAILY": rrule.DAILY,
        "WEEKLY": rrule.WEEKLY,
        "MONTHLY": rrule.MONTHLY,
        "YEARLY": rrule.YEARLY,
    }


_FAST_FORWARD_STEPS: Final[dict[str, timedelta]] = {
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
}
"""The wall-clock length of one period, for the frequencies `Schedule` fast-forwards."""

_UNITS_PER_WEEK: Final[dict[str, int]] = {"MINUTELY": 7 * 24 * 60, "HOURLY": 7 * 24, "DAILY": 7}
"""How many periods of a sub-weekly frequency make a week."""

_MICROSECOND: Final = timedelta(microseconds=1)

_FAST_FORWARD_MARGIN: Final = timedelta(days=2)
"""How far before a query a fast-forwarded series starts (covers any backward clock jump)."""

# Longest length of each month over all years (February counts its leap day).
_MONTH_LENGTHS: Final[dict[int, int]] = {
    1: 31,
    2: 29,
    3: 31,
    4: 30,
    5: 31,
    6: 30,
    7: 31,
    8: 31,
    9: 30,
    10: 31,
    11: 30,
    12: 31,
}


def is_recurring(rule: RecurrenceRule | None) -> bool:
    """Tell whether a rule asks for more than the single run at the start time.

    Args:
        rule: The rule, or None for no recurrence.

    Returns:
        False for no rule and for a rule whose frequency is `UNSPECIFIED`, True otherwise
        (including a frequency number this client does not know).
    """
    return rule is not None and rule.frequency.value != 0


def existing_wall_time(moment: datetime) -> datetime:
    """Return `moment` with a wall time that exists in its timezone.

    A wall time inside a DST gap (02:30 in Berlin on the last Sunday of March) does not
    exist; Python gives it the offset before the gap. dateutil steps recurrences in wall
    time, so from such a start its next runs would come earlier than the first one.
    The same instant written as an existing wall time (03:30 CEST) avoids that.

    Args:
        moment: A timezone-aware datetime.

    Returns:
        The same instant, as an existing wall time in the same timezone (`moment`
        itself unless it lies in a gap).
    """
    back = moment.astimezone(UTC).astimezone(moment.tzinfo)
    if back.replace(tzinfo=None, fold=0) == moment.replace(tzinfo=None, fold=0):
        return moment
    return back


def build_rrule(rule: RecurrenceRule, start_time: datetime) -> rrule.rrule | None:
    """Build the dateutil rrule of a recurring rule.

    dateutil drops `dtstart`'s microseconds, so the rrule is built on the start time
    truncated to whole seconds; `Schedule` adds the microseconds back to every run.

    Args:
        rule: A recurring rule (`is_recurring(rule)` is True).
        start_time: The timezone-aware start time of the dispatch.

    Returns:
        The rrule, or None when the rule cannot produce any run: a frequency or weekday
        number unknown to this client, a `Weekday.UNSPECIFIED` filter, month days that
        no selected month has (the 30th of February: dateutil would search such a rule
        until the year 9999), or minute/hour filters the interval never reaches.

    Raises:
        ValueError: If `start_time` is naive or the rule is not recurring.
    """
    if start_time.tzinfo is None or start_time.utcoffset() is None:
        raise ValueError(f"start_time must be timezone-aware, got {start_time!r}")
    if not is_recurring(rule):
        raise ValueError(f"rule is not recurring (frequency {rule.frequency.name})")
    freq = _frequencies().get(rule.frequency.name)
    if freq is None:
        return None
    from dateutil import rrule

    weekdays: list[rrule.weekday] = []
    for weekday in rule.byweekdays:
        number = _WEEKDAY_NUMBERS.get(weekday.name)
        if number is None:
            return None
        weekdays.append(rrule.weekday(number))
    if not _month_days_possible(rule.bymonthdays, rule.bymonths):
        return None
    if not _weekdays_reachable(rule, start_time):
        return None

    start_time = existing_wall_time(start_time)
    microseconds = timedelta(microseconds=start_time.microsecond)
    count: int | None = None
    until: datetime | None = None
    if rule.end_criteria is not None:
        count = rule.end_criteria.count
        if rule.end_criteria.until is not None:
            # Runs are shifted by the start's microseconds after dateutil computed them,
            # so shift the inclusive bound the other way to keep it exact.
            until = rule.end_criteria.until - microseconds
    try:
        return rrule.rrule(
            freq,  # type: ignore[arg-type]  # the stubs want a Literal, the values are right
            dtstart=start_time.replace(microsecond=0),
            interval=rule.interval,
            count=count,
            until=until,
            byminute=rule.byminutes or None,
            byhour=rule.byhours or None,
            byweekday=weekdays or None,
            bymonthday=rule.bymonthdays or None,
            bymonth=rule.bymonths or None,
            cache=False,
        )
    except ValueError:
        # dateutil refuses sub-daily rules whose interval never reaches the filtered
        # minutes or hours (every 2 minutes from minute 1, at minute 0): no run exists.
        return None


def _month_days_possible(monthdays: tuple[int, ...], months: tuple[int, ...]) -> bool:
    """Tell whether some selected month has some selected day (an empty filter selects all).

    Args:
        monthdays: Days of the month, 1..31 or -31..-1 counted from the end.
        months: Months 1..12.

    Returns:
        True if the combination can ever match.
    """
    if not monthdays:
        return True
    longest = max(_MONTH_LENGTHS[m] for m in months or range(1, 13))
    return any(abs(day) <= longest for day in monthdays)


def _weekdays_reachable(rule: RecurrenceRule, start_time: datetime) -> bool:
    """Tell whether a weekday filter can match, for intervals of whole weeks.

    A daily rule every 7 days (or hourly every 168 hours, minutely every 10080 minutes)
    only ever lands on the start's weekday; a filter without that weekday, a common
    mistake for "weekly on Tuesday", would make dateutil search until the year 9999.

    Args:
        rule: A recurring rule with known frequency and weekdays.
        start_time: The timezone-aware start time.

    Returns:
        False if the rule can never land on a filtered weekday.
    """
    week = _UNITS_PER_WEEK.get(rule.frequency.name)
    if not rule.byweekdays or week is None or rule.interval % week:
        return True
    # dateutil steps by wall clock, so the weekday is the local one.
    return any(_WEEKDAY_NUMBERS[day.name] == start_time.weekday() for day in rule.byweekdays)


def _has_a_run(series: rrule.rrule) -> bool:
    """Tell whether a series yields at least one run.

    Args:
        series: The rrule.

    Returns:
        False when it yields nothing, or when dateutil finds, while iterating, that the
        minute or hour filters are out of the interval's reach.
    """
    try:
        return next(iter(series), None) is not None
    except ValueError:
        return False


class _Unset:
    """The type of `_UNSET`: a value not computed yet (None is a valid result)."""

    __slots__ = ()


_UNSET: Final = _Unset()


class Schedule:
    """The run starts of one dispatch: start time, duration and recurrence rule.

    Queries are exact and timezone-aware; every returned datetime is in the start time's
    timezone, written as a wall time that exists there. All queries follow the rules of
    the module docstring (DST gaps, repeated hours, no run before the start), so they
    agree with each other. A schedule is immutable and safe to share.
    """

    __slots__ = (
        "_first",
        "_fixed",
        "_microseconds",
        "_moved",
        "_period",
        "_rrule",
        "_single",
        "_start_time",
        "_start_utc",
        "_start_wall",
        "_tz",
    )

    def __init__(
        self,
        *,
        start_time: datetime,
        duration: timedelta | None,
        rule: RecurrenceRule | None,
    ) -> None:
        """Create the schedule.

        Args:
            start_time: The timezone-aware start time of the dispatch.
            duration: How long each run lasts; None means forever. The run starts do
                not depend on it (a run without end still has a recurrence that
                decides when it first starts), so it is accepted for symmetry only.
            rule: The recurrence rule, or None.

        Raises:
            ValueError: If `start_time` is naive.
        """
        if start_time.tzinfo is None or start_time.utcoffset() is None:
            raise ValueError(f"start_time must be timezone-aware, got {start_time!r}")
        del duration  # see Args
        self._start_time = start_time
        self._start_utc = start_time.astimezone(UTC)
        # The wall time the series starts from (as build_rrule() starts it): the start
        # itself unless it lies in a DST gap.
        wall = existing_wall_time(start_time)
        self._start_wall = wall.replace(tzinfo=None, fold=0)
        self._tz = start_time.tzinfo
        # A fixed offset (UTC, how the API sends times) has no gaps and no repeated
        # hours: wall-clock order is time order and every check below can be skipped.
        self._fixed = isinstance(self._tz, timezone)
        self._microseconds = timedelta(microseconds=start_time.microsecond)
        self._first: datetime | _Unset | None = _UNSET
        # The last series `_series_from` moved, by how many periods: a scheduler asks
        # about nearby times again and again, and building an rrule costs more than
        # most queries.
        self._moved: tuple[int, rrule.rrule] | None = None
        self._single = rule is None or not is_recurring(rule)
        self._rrule = None if self._single or rule is None else build_rrule(rule, start_time)
        # A rule whose filters never match makes every dateutil query scan to the year
        # 9999. Find out once, here, so such a schedule answers every later query at once.
        if self._rrule is not None and not _has_a_run(self._rrule):
            self._rrule = None
        self._period: timedelta | None = None
        if self._rrule is not None and rule is not None:
            step = _FAST_FORWARD_STEPS.get(rule.frequency.name)
            counted = rule.end_criteria is not None and rule.end_criteria.count is not None
            if step is not None and not counted:
                self._period = step * rule.interval

    def _series_from(self, lower: datetime) -> rrule.rrule | None:
        """Return an rrule with the same runs as the series at and after `lower`.

        dateutil always iterates from `dtstart`, which costs one step per minute for a
        minutely rule started months ago. For minutely, hourly and daily rules without a
        count, moving `dtstart` forward by whole periods (in wall-clock time, as dateutil
        steps) leaves the lattice of candidate times, the default filters taken from
        `dtstart` and the `until` bound unchanged, so every run from the new start on is
        the same. A count needs the runs from the real start, so it is never moved.

        Args:
            lower: A UTC datetime; runs before it may be missing from the result.

        Returns:
            The rrule (possibly the full series), or None when there are no runs.
        """
        if self._rrule is None or self._period is None:
            return self._rrule
        tz = self._tz
        local = lower.astimezone(tz)
        wall_lower = local.replace(tzinfo=None, fold=0)
        if not self._fixed:
            # A wall time in a DST gap that just ended (02:30 on the spring-forward day)
            # is a run after the gap's start instant (01:30 UTC), yet its wall time is
            # before `lower`'s (03:10 CEST for 01:10 UTC), by less than the jump. So move
            # less far by the clock's forward jump over the last two days (zones change
            # their offset months apart; the longest jump ever was a skipped day).
            offset = local.utcoffset()
            assert offset is not None  # aware: tz came from an aware start
            earliest = min(
                (lower - _FAST_FORWARD_MARGIN).astimezone(tz).utcoffset() or offset,
                (lower - _FAST_FORWARD_MARGIN / 2).astimezone(tz).utcoffset() or offset,
            )
            if earliest < offset:
                wall_lower -= offset - earliest
        periods = (wall_lower - self._start_wall.replace(microsecond=0)) // self._period
        if periods <= 0:
            return self._rrule
        cached = self._moved
        if cached is not None and cached[0] == periods:
            return cached[1]
        moved = (self._start_wall.replace(microsecond=0) + periods * self._period).replace(
            tzinfo=tz
        )
        series = self._rrule.replace(dtstart=moved)
        self._moved = (periods, series)  # one tuple, replaced whole: safe to share
        return series

    @property
    def is_single(self) -> bool:
        """Whether the schedule is exactly one run, at the start time."""
        return self._single

    @property
    def first_run(self) -> datetime | None:
        """The first run's start (computed once), or None when the series has no run."""
        first = self._first
        if isinstance(first, _Unset):
            first = self.first_at_or_after(self._start_time)
            self._first = first
        return first

    def first_at_or_after(self, when: datetime) -> datetime | None:
        """Return the first run starting at or after `when` (inclusive).

        Args:
            when: A timezone-aware datetime.

        Returns:
            The run start, or None when the series ended before `when`.
        """
        when = _as_utc("when", when)
        if self._single:
            return self._start_time if when <= self._start_time else None
        runs = self._window(when, None, 1)
        return runs[0] if runs else None

    def last_at_or_before(
        self, when: datetime, *, not_before: datetime | None = None
    ) -> datetime | None:
        """Return the last run starting at or before `when` (inclusive).

        Args:
            when: A timezone-aware datetime.
            not_before: Ignore runs starting before this timezone-aware datetime; a close
                bound (such as `when` minus the run duration) keeps the search short.

        Returns:
            The run start, or None when no run started by `when` (and at or after
            `not_before`).
        """
        when = _as_utc("when", when)
        lower = None if not_before is None else _as_utc("not_before", not_before)
        if self._single:
            found_single = self._start_time if self._start_time <= when else None
            if found_single is None or (lower is not None and found_single < lower):
                return None
            return found_single
        start = self._start_utc if lower is None else max(lower, self._start_utc)
        if when < start:
            return None  # no run is before the start
        if self._period is not None:
            # A fast-forwarded series: look back over growing windows, so finding the
            # run of a minutely rule a minute ago walks a few minutes, not the whole
            # `not_before` bound (a day of runs for a day-long duration).
            span = 2 * self._period
            while True:
                low = start if span >= when - start else when - span
                runs = self._window(low, when + _MICROSECOND)
                if runs or low == start:
                    return runs[-1] if runs else None
                span *= 4
        # Without fast-forward dateutil walks from the real start anyway: let it find the
        # last run of its walk at or before `when`. No later run in time comes before
        # that one in the walk (see `_window` for the order), so the window from it on
        # holds the answer.
        series = self._rrule
        if series is None:
            return None
        found = series.before(when - self._microseconds, inc=True)
        if found is not None:
            start = max(start, (found + self._microseconds).astimezone(UTC))
        runs = self._window(start, when + _MICROSECOND)
        return runs[-1] if runs else None

    def between(
        self, since: datetime, until: datetime, *, limit: int | None = None
    ) -> list[datetime]:
        """Return the runs starting in the half-open window `[since, until)`, sorted.

        Args:
            since: Inclusive, timezone-aware start of the window.
            until: Exclusive, timezone-aware end of the window.
            limit: Return at most this many (the oldest) runs; None for all.

        Returns:
            The run starts in the window, oldest first, each instant once.

        Raises:
            ValueError: If a bound is naive, `since` is after `until`, or `limit` < 0.
        """
        since = _as_utc("since", since)
        until = _as_utc("until", until)
        if since > until:
            raise ValueError(f"since ({since.isoformat()}) is after until ({until.isoformat()})")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if limit == 0:
            return []
        if self._single:
            return [self._start_time] if since <= self._start_time < until else []
        return self._window(since, until, limit)

    def _window(
        self, since: datetime, until: datetime | None, limit: int | None = None
    ) -> list[datetime]:
        """The runs of a recurring schedule in `[since, until)` (UTC bounds), in time order.

        dateutil steps in wall-clock time, and wall-clock order is not always time
        order. A wall time in a DST gap is read with the offset before the gap, so the
        gap's wall times (02:00-02:59 in Berlin) are the same instants as the hour after
        it (03:00-03:59 CEST), and the walk goes back in time when it leaves the gap.
        Everywhere else the walk never goes back in time: from a run at an existing
        wall time on, every later run in the walk is at the same instant or later. So
        the walk stops at the first run at or after `until` whose wall time exists; the
        runs are sorted by instant and each instant is kept once. With a `limit`, the
        bound moves down to just after the `limit`-th earliest run found so far.

        A walk from a start in the second pass of a repeated hour meets that hour's
        wall times in their first pass, before the start: the start's own wall time is
        the start (the first run), the others are no runs.

        Args:
            since: Inclusive UTC bound.
            until: Exclusive UTC bound, or None for no bound (then `limit` must be set,
                or the series must be finite).
            limit: At most this many runs (the earliest); None for all.

        Returns:
            The runs, in the start time's timezone.
        """
        first = self._start_utc
        # No run is before the start, so the series never needs to begin earlier.
        series = self._series_from(max(since, first))
        if series is None:
            return []
        tz = self._tz
        fixed = self._fixed
        microseconds = self._microseconds
        runs: dict[datetime, datetime] = {}
        # With a limit: the `limit` earliest instants so far, as distances back from the
        # start (`heapq` is a min-heap: its top is then the latest of them).
        kept: list[timedelta] = []
        stop = until
        # From a start in a repeated hour's second pass, the start's own wall time in
        # the walk is an instant before it (and before `since` when `since` is the
        # start): walk from the beginning then, so that run is seen and is the start.
        walk = iter(series) if since <= first else series.xafter(since - microseconds, inc=True)
        for found in walk:
            run = found + microseconds
            instant = run.astimezone(UTC)
            exists = True
            # Only a wall time whose two readings (`fold`) differ can be in a gap; the
            # check is cheaper than converting every run back.
            if not fixed and run.utcoffset() != run.replace(fold=1).utcoffset():
                # Written as an existing wall time: a gap's 02:05 is 03:05 CEST.
                local = instant.astimezone(tz)
                exists = local.replace(tzinfo=None, fold=0) == run.replace(tzinfo=None)
                run = local
            if stop is not None and instant >= stop:
                if exists:
                    break
                continue  # in a gap: runs after it in the walk can be earlier
            if instant < first:
                if found.replace(tzinfo=None) + microseconds != self._start_wall:
                    continue
                run, instant = self._start_time, first
            if instant < since or instant in runs or (stop is not None and instant >= stop):
                continue
            runs[instant] = run
            if limit is not None:
                heapq.heappush(kept, first - instant)
                if len(kept) > limit:
                    heapq.heappop(kept)
                if len(kept) == limit:
                    bound = first - kept[0] + _MICROSECOND
                    stop = bound if stop is None else min(stop, bound)
        ordered = sorted(runs)
        if limit is not None:
            ordered = ordered[:limit]
        return [runs[instant] for instant in ordered]


def _as_utc(name: str, value: datetime) -> datetime:
    """Check that a datetime is timezone-aware and return it in UTC.

    Python compares two datetimes that share a tzinfo by wall clock, which is ambiguous in
    the hour a DST zone repeats; in UTC every comparison is between instants.

    Args:
        name: The argument name for the message.
        value: The datetime to check.

    Returns:
        The same instant in UTC.

    Raises:
        TypeError: If `value` is not a datetime.
        ValueError: If `value` is naive.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)
