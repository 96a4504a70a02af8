"""Tests for when a dispatch runs: single runs, recurrence rules, DST, end of series."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch_client import (
    Dispatch,
    EndCriteria,
    Frequency,
    RecurrenceRule,
    TargetIds,
    Weekday,
)
from dispatch_client._recurrence import Schedule, build_rrule, existing_wall_time, is_recurring

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # a Monday
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def make_dispatch(**changes: Any) -> Dispatch:
    """Build an active one-hour dispatch starting at T0, with `changes` applied."""
    fields: dict[str, Any] = {
        "id": 1,
        "type": "CHARGE",
        "start_time": T0,
        "duration": HOUR,
        "target": TargetIds(1),
        "active": True,
        "dry_run": False,
        "payload": {},
        "recurrence": None,
        "create_time": T0 - DAY,
        "update_time": T0 - DAY,
    }
    fields.update(changes)
    return Dispatch(**fields)


def rule(frequency: Frequency, interval: int = 1, **changes: Any) -> RecurrenceRule:
    """Build a recurrence rule."""
    return RecurrenceRule(frequency=frequency, interval=interval, **changes)


def daily(**changes: Any) -> RecurrenceRule:
    """Build an every-day rule."""
    return rule(Frequency.DAILY, **changes)


# ------------------------------------------------------------------------ single run


@pytest.mark.parametrize("recurrence", [None, RecurrenceRule(), RecurrenceRule(interval=3)])
def test_without_recurrence_there_is_one_run(recurrence: RecurrenceRule | None) -> None:
    """No rule, or frequency UNSPECIFIED, means exactly one run, at the start time."""
    dispatch = make_dispatch(recurrence=recurrence)
    assert dispatch.next_run_after(T0 - DAY) == T0
    assert dispatch.next_run_after(T0) == T0
    assert dispatch.next_run_after(T0 + US) is None
    assert dispatch.missed_runs(T0 - DAY, T0 + 365 * DAY) == [T0]


def test_started_at_is_half_open() -> None:
    """A run covers [start, start + duration): on at the start, off at the end."""
    dispatch = make_dispatch()
    assert not dispatch.started_at(T0 - US)
    assert dispatch.started_at(T0)
    assert dispatch.started_at(T0 + HOUR - US)
    assert not dispatch.started_at(T0 + HOUR)


def test_until_at_is_the_end_of_the_current_run() -> None:
    """`until_at` is start + duration while running and None otherwise."""
    dispatch = make_dispatch()
    assert dispatch.until_at(T0 - US) is None
    assert dispatch.until_at(T0) == T0 + HOUR
    assert dispatch.until_at(T0 + HOUR - US) == T0 + HOUR
    assert dispatch.until_at(T0 + HOUR) is None


def test_inactive_dispatch_never_runs_but_keeps_its_schedule() -> None:
    """An inactive dispatch is never started and has no end, yet its runs are still listed."""
    dispatch = make_dispatch(active=False, recurrence=daily())
    assert not dispatch.started_at(T0)
    assert dispatch.until_at(T0) is None
    assert not dispatch.started
    assert dispatch.until is None
    assert dispatch.next_run_after(T0) == T0
    assert dispatch.missed_runs(T0, T0 + 2 * DAY) == [T0, T0 + DAY]


def test_without_duration_a_dispatch_runs_forever_once_started() -> None:
    """No duration: running from the first run on, with no end; later runs still listed."""
    dispatch = make_dispatch(duration=None, recurrence=daily())
    assert not dispatch.started_at(T0 - US)
    assert dispatch.started_at(T0)
    assert dispatch.started_at(T0 + 1000 * DAY)
    assert dispatch.until_at(T0 + DAY) is None
    assert dispatch.next_run_after(T0 + US) == T0 + DAY
    assert dispatch.missed_runs(T0 - DAY, T0 + 3 * DAY) == [T0, T0 + DAY, T0 + 2 * DAY]


def test_without_duration_the_recurrence_decides_the_first_run() -> None:
    """No duration: filters and end criteria are honoured (frequenz-dispatch ignores them)."""
    # T0 is 14:00; the rule only runs at 16:00, so the dispatch starts two hours later.
    later = make_dispatch(duration=None, recurrence=daily(byhours=[16]))
    assert not later.started_at(T0)
    assert not later.started_at(T0 + 2 * HOUR - US)
    assert later.started_at(T0 + 2 * HOUR)
    assert later.next_run_after(T0) == T0 + 2 * HOUR
    # Until before the first matching run: the series is empty and the dispatch never runs.
    never = make_dispatch(
        duration=None, recurrence=daily(byhours=[16], end_criteria=EndCriteria(until=T0 + HOUR))
    )
    assert not never.started_at(T0 + 30 * DAY)
    assert never.next_run_after(T0 - DAY) is None
    assert never.missed_runs(T0 - DAY, T0 + 30 * DAY) == []
    counted = make_dispatch(duration=None, recurrence=daily(end_criteria=EndCriteria(count=2)))
    assert counted.missed_runs(T0 - DAY, T0 + 30 * DAY) == [T0, T0 + DAY]
    assert counted.started_at(T0 + 30 * DAY)


def test_until_without_duration_is_none_not_an_error() -> None:
    """`until` of a running dispatch without duration is None (frequenz-dispatch raises)."""
    dispatch = make_dispatch(start_time=T0 - 10 * DAY, duration=None, recurrence=daily())
    assert dispatch.started
    assert dispatch.until is None
    assert dispatch.until_at(T0) is None


@pytest.mark.parametrize("duration", [None, timedelta(0), HOUR, 3 * DAY])
@pytest.mark.parametrize(
    "recurrence",
    [
        None,
        rule(Frequency.MINUTELY, 15),
        daily(end_criteria=EndCriteria(count=3)),
        daily(end_criteria=EndCriteria(until=T0 + 2 * DAY)),
        rule(Frequency.WEEKLY, byweekdays=[Weekday.MONDAY, Weekday.FRIDAY]),
    ],
)
def test_missed_runs_ends_on_runs_that_lie_on_its_bounds(
    duration: timedelta | None, recurrence: RecurrenceRule | None
) -> None:
    """`missed_runs` ends for every rule, even with runs exactly on both bounds, and is half-open.

    frequenz-dispatch's `missed_runs` loops forever: it steps with an inclusive
    `next_run_after` from a run that lies on its bound.
    """
    dispatch = make_dispatch(duration=duration, recurrence=recurrence)
    runs = dispatch.missed_runs(T0, T0 + 7 * DAY)
    assert runs
    assert runs[0] == T0
    assert all(T0 <= run < T0 + 7 * DAY for run in runs)
    assert runs == sorted(set(runs))
    # Each run is the next run after the previous one: none skipped, none repeated.
    for earlier, later in itertools.pairwise(runs):
        assert dispatch.next_run_after(earlier + US) == later
    # Windows that end on a run exclude it; the next window starts with it.
    assert dispatch.missed_runs(T0, T0) == []
    if len(runs) > 1:
        assert dispatch.missed_runs(T0, runs[1]) == [T0]
        assert dispatch.missed_runs(runs[1], runs[1] + US) == [runs[1]]


def test_missed_runs_limit_returns_the_oldest_runs() -> None:
    """`limit` bounds how many runs come back, oldest first, and is checked."""
    dispatch = make_dispatch(recurrence=rule(Frequency.MINUTELY), duration=None)
    year = 365 * DAY
    minute = timedelta(minutes=1)
    assert dispatch.missed_runs(T0, T0 + year, limit=3) == [T0, T0 + minute, T0 + 2 * minute]
    assert dispatch.missed_runs(T0, T0 + year, limit=0) == []
    berlin = make_dispatch(
        start_time=datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN), recurrence=rule(Frequency.HOURLY)
    )
    full = berlin.missed_runs(berlin.start_time, berlin.start_time + DAY)
    assert berlin.missed_runs(berlin.start_time, berlin.start_time + DAY, limit=4) == full[:4]
    with pytest.raises(ValueError, match="limit"):
        dispatch.missed_runs(T0, T0 + DAY, limit=-1)
    with pytest.raises(TypeError, match="limit"):
        dispatch.missed_runs(T0, T0 + DAY, limit=1.5)  # type: ignore[arg-type]


def test_zero_duration_never_runs() -> None:
    """A run of duration zero is an empty interval."""
    dispatch = make_dispatch(duration=timedelta(0))
    assert not dispatch.started_at(T0)
    assert dispatch.next_run_after(T0) == T0


def test_now_based_properties() -> None:
    """`started`, `until` and `next_run` evaluate at the current time."""
    past_forever = make_dispatch(start_time=T0 - 3650 * DAY, duration=None)
    assert past_forever.started
    assert past_forever.until is None
    assert past_forever.next_run is None
    far_future = make_dispatch(start_time=datetime(2999, 1, 1, tzinfo=UTC))
    assert not far_future.started
    assert far_future.next_run == datetime(2999, 1, 1, tzinfo=UTC)
    # Runs of one day, every day since 2020: always inside a run.
    always = make_dispatch(
        start_time=datetime(2020, 1, 1, tzinfo=UTC), duration=DAY, recurrence=daily()
    )
    assert always.started
    until = always.until
    assert until is not None
    assert until.time() == datetime.min.time()
    next_run = always.next_run
    assert next_run is not None
    assert next_run.time() == datetime.min.time()


@pytest.mark.parametrize("method", ["started_at", "until_at", "next_run_after"])
def test_queries_reject_naive_times(method: str) -> None:
    """A naive query time is a ValueError naming the argument."""
    dispatch = make_dispatch(recurrence=daily())
    with pytest.raises(ValueError, match="must be timezone-aware"):
        getattr(dispatch, method)(datetime(2026, 1, 5))


def test_missed_runs_rejects_bad_windows() -> None:
    """A naive bound or a window that ends before it starts is a ValueError."""
    dispatch = make_dispatch(recurrence=daily())
    with pytest.raises(ValueError, match="since must be timezone-aware"):
        dispatch.missed_runs(datetime(2026, 1, 5), T0)
    with pytest.raises(ValueError, match="until must be timezone-aware"):
        dispatch.missed_runs(T0, datetime(2026, 1, 5))
    with pytest.raises(ValueError, match="is after until"):
        dispatch.missed_runs(T0 + DAY, T0)
    with pytest.raises(TypeError, match="since must be a datetime"):
        dispatch.missed_runs("2026-01-05", T0)  # type: ignore[arg-type]
    assert dispatch.missed_runs(T0, T0) == []


# ----------------------------------------------------------------------- recurring


def test_daily_runs_are_inclusive_and_half_open() -> None:
    """`next_run_after` includes its bound; `missed_runs` includes since, excludes until."""
    dispatch = make_dispatch(recurrence=daily())
    assert dispatch.next_run_after(T0) == T0
    assert dispatch.next_run_after(T0 + US) == T0 + DAY
    assert dispatch.next_run_after(T0 + DAY) == T0 + DAY
    assert dispatch.missed_runs(T0, T0 + 2 * DAY) == [T0, T0 + DAY]
    assert dispatch.missed_runs(T0 + US, T0 + 2 * DAY + US) == [T0 + DAY, T0 + 2 * DAY]


def test_started_during_a_later_run() -> None:
    """A recurring dispatch runs in each run's window and not between them."""
    dispatch = make_dispatch(recurrence=daily(interval=2))
    assert dispatch.started_at(T0 + 2 * DAY + 30 * timedelta(minutes=1))
    assert dispatch.until_at(T0 + 2 * DAY) == T0 + 2 * DAY + HOUR
    assert not dispatch.started_at(T0 + DAY + 30 * timedelta(minutes=1))
    assert not dispatch.started_at(T0 + 2 * DAY + HOUR)


def test_overlapping_runs_end_with_the_latest_run() -> None:
    """When runs overlap (duration longer than the interval), the latest start counts."""
    dispatch = make_dispatch(duration=3 * HOUR, recurrence=rule(Frequency.HOURLY))
    now = T0 + 5 * HOUR + timedelta(minutes=10)
    assert dispatch.started_at(now)
    assert dispatch.until_at(now) == T0 + 8 * HOUR


def test_count_limits_the_series() -> None:
    """With count=3 there are three runs, then the series ends."""
    dispatch = make_dispatch(recurrence=daily(end_criteria=EndCriteria(count=3)))
    assert dispatch.missed_runs(T0 - DAY, T0 + 30 * DAY) == [T0, T0 + DAY, T0 + 2 * DAY]
    assert dispatch.next_run_after(T0 + 2 * DAY + US) is None
    assert dispatch.started_at(T0 + 2 * DAY + HOUR - US)
    assert not dispatch.started_at(T0 + 2 * DAY + HOUR)
    assert not dispatch.started_at(T0 + 5 * DAY)


def test_until_is_inclusive() -> None:
    """A run starting exactly at `until` is part of the series; none after it."""
    dispatch = make_dispatch(recurrence=daily(end_criteria=EndCriteria(until=T0 + 2 * DAY)))
    assert dispatch.missed_runs(T0, T0 + 30 * DAY) == [T0, T0 + DAY, T0 + 2 * DAY]
    assert dispatch.next_run_after(T0 + 2 * DAY + US) is None
    earlier = make_dispatch(recurrence=daily(end_criteria=EndCriteria(until=T0 + 2 * DAY - US)))
    assert earlier.missed_runs(T0, T0 + 30 * DAY) == [T0, T0 + DAY]


def test_until_before_start_means_no_runs() -> None:
    """A series that ends before it starts has no runs."""
    dispatch = make_dispatch(recurrence=daily(end_criteria=EndCriteria(until=T0 - US)))
    assert dispatch.next_run_after(T0 - DAY) is None
    assert not dispatch.started_at(T0)


def test_microseconds_of_the_start_are_kept() -> None:
    """Runs keep the start time's microseconds; the first run is the start time itself."""
    start = T0 + timedelta(microseconds=250_000)
    end = EndCriteria(until=start + DAY)
    dispatch = make_dispatch(start_time=start, recurrence=daily(end_criteria=end))
    assert dispatch.next_run_after(T0) == start
    assert dispatch.next_run_after(start) == start
    assert dispatch.next_run_after(start + US) == start + DAY
    assert dispatch.missed_runs(T0, T0 + 10 * DAY) == [start, start + DAY]
    assert not dispatch.started_at(T0)
    assert dispatch.started_at(start)
    assert dispatch.until_at(start) == start + HOUR


def test_start_not_matching_the_filters_is_not_a_run() -> None:
    """As in dateutil, the start time is a run only if it matches the by-filters."""
    wednesdays = daily(byweekdays=[Weekday.WEDNESDAY])
    dispatch = make_dispatch(recurrence=wednesdays)  # T0 is a Monday
    assert dispatch.next_run_after(T0) == T0 + 2 * DAY
    assert not dispatch.started_at(T0)


def test_weekday_hour_and_minute_filters() -> None:
    """Weekly on Mon and Fri at 08:15 and 08:45 gives exactly those times."""
    start = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    recurrence = rule(
        Frequency.WEEKLY,
        byweekdays=[Weekday.FRIDAY, Weekday.MONDAY],
        byhours=[8],
        byminutes=[45, 15],
    )
    dispatch = make_dispatch(start_time=start, recurrence=recurrence)
    runs = dispatch.missed_runs(start, start + 7 * DAY)
    assert runs == [
        datetime(2026, 1, 5, 8, 15, tzinfo=UTC),
        datetime(2026, 1, 5, 8, 45, tzinfo=UTC),
        datetime(2026, 1, 9, 8, 15, tzinfo=UTC),
        datetime(2026, 1, 9, 8, 45, tzinfo=UTC),
    ]


def test_minutely_with_interval() -> None:
    """Every 15 minutes."""
    dispatch = make_dispatch(recurrence=rule(Frequency.MINUTELY, interval=15))
    runs = dispatch.missed_runs(T0, T0 + HOUR)
    assert runs == [T0 + timedelta(minutes=m) for m in (0, 15, 30, 45)]


def test_negative_month_day_is_counted_from_the_end() -> None:
    """bymonthday -1 is the last day of each month, whatever its length."""
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    dispatch = make_dispatch(start_time=start, recurrence=rule(Frequency.MONTHLY, bymonthdays=[-1]))
    days = [run.date().isoformat() for run in dispatch.missed_runs(start, start + 120 * DAY)]
    assert days == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]


def test_month_day_31_skips_short_months() -> None:
    """bymonthday 31 only matches months that have a 31st."""
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    dispatch = make_dispatch(start_time=start, recurrence=rule(Frequency.MONTHLY, bymonthdays=[31]))
    days = [run.date().isoformat() for run in dispatch.missed_runs(start, start + 180 * DAY)]
    assert days == ["2026-01-31", "2026-03-31", "2026-05-31"]


def test_leap_day_yearly() -> None:
    """Yearly on February 29 runs only in leap years."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    recurrence = rule(Frequency.YEARLY, bymonths=[2], bymonthdays=[29])
    dispatch = make_dispatch(start_time=start, recurrence=recurrence)
    assert dispatch.next_run_after(start) == datetime(2028, 2, 29, tzinfo=UTC)
    assert dispatch.next_run_after(datetime(2028, 3, 1, tzinfo=UTC)) == datetime(
        2032, 2, 29, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("bymonthdays", "bymonths"),
    [([30, 31], [2]), ([-30, -31], [2]), ([31], [4, 6, 9, 11])],
)
def test_impossible_month_days_have_no_runs(bymonthdays: list[int], bymonths: list[int]) -> None:
    """Month days no selected month has give no runs (instead of a search to year 9999)."""
    recurrence = daily(bymonthdays=bymonthdays, bymonths=bymonths)
    dispatch = make_dispatch(recurrence=recurrence)
    assert dispatch.next_run_after(T0) is None
    assert dispatch.missed_runs(T0, T0 + 400 * DAY) == []
    assert not dispatch.started_at(T0)


def test_possible_month_days_with_months_still_run() -> None:
    """The 29th of February (leap years) and the 30th of April are possible."""
    dispatch = make_dispatch(recurrence=daily(bymonthdays=[30], bymonths=[4]))
    assert dispatch.next_run_after(T0) == datetime(2026, 4, 30, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    "recurrence",
    [
        RecurrenceRule(frequency=42, interval=1),
        daily(byweekdays=[Weekday.UNSPECIFIED]),
        daily(byweekdays=[Weekday.MONDAY, 12]),
    ],
)
def test_rules_this_client_cannot_evaluate_have_no_runs(recurrence: RecurrenceRule) -> None:
    """Unknown frequencies and weekdays (or UNSPECIFIED) yield no runs instead of crashing."""
    dispatch = make_dispatch(recurrence=recurrence)
    assert dispatch.next_run_after(T0 - DAY) is None
    assert dispatch.missed_runs(T0 - DAY, T0 + 30 * DAY) == []
    assert not dispatch.started_at(T0)
    assert dispatch.until_at(T0) is None
    # Without a duration the rule still decides: it has no run, so the dispatch never starts.
    forever = make_dispatch(recurrence=recurrence, duration=None)
    assert forever.next_run_after(T0 - DAY) is None
    assert not forever.started_at(T0 + DAY)


def test_results_are_in_the_start_time_zone() -> None:
    """Runs are reported in the start time's timezone, whatever zone the query uses."""
    start = datetime(2026, 1, 5, 14, tzinfo=BERLIN)
    dispatch = make_dispatch(start_time=start, recurrence=daily())
    found = dispatch.next_run_after(datetime(2026, 1, 5, 14, tzinfo=UTC))
    assert found == datetime(2026, 1, 6, 14, tzinfo=BERLIN)
    assert found is not None
    assert found.tzinfo is BERLIN


# ----------------------------------------------------------------------------- DST


def test_daily_wall_clock_time_survives_spring_forward() -> None:
    """Daily at 14:00 Berlin stays at 14:00 local across the March change (a 23 h day)."""
    start = datetime(2026, 3, 27, 14, tzinfo=BERLIN)
    dispatch = make_dispatch(start_time=start, recurrence=daily())
    runs = dispatch.missed_runs(start, start + 4 * DAY)
    assert [run.hour for run in runs] == [14, 14, 14, 14]
    utc = [run.astimezone(UTC) for run in runs]
    assert [b - a for a, b in itertools.pairwise(utc)] == [DAY, DAY - HOUR, DAY]


def test_daily_wall_clock_time_survives_fall_back() -> None:
    """Daily at 14:00 Berlin stays at 14:00 local across the October change (a 25 h day)."""
    start = datetime(2026, 10, 24, 14, tzinfo=BERLIN)
    dispatch = make_dispatch(start_time=start, recurrence=daily())
    utc = [run.astimezone(UTC) for run in dispatch.missed_runs(start, start + 3 * DAY)]
    assert [b - a for a, b in itertools.pairwise(utc)] == [DAY + HOUR, DAY]


def test_duration_is_elapsed_time_across_a_dst_change() -> None:
    """A two-hour run starting before the October change ends two real hours later."""
    start = datetime(2026, 10, 25, 1, 30, tzinfo=BERLIN)  # 23:30 UTC the day before
    dispatch = make_dispatch(start_time=start, duration=2 * HOUR, recurrence=daily())
    end = dispatch.until_at(start)
    assert end is not None
    # Compared in UTC: PEP 495 makes == across zones False for a fold=1 time.
    assert end.astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert end.tzinfo is BERLIN
    assert dispatch.started_at(datetime(2026, 10, 25, 1, 29, tzinfo=UTC))
    assert not dispatch.started_at(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))


def test_hourly_runs_across_spring_forward_are_distinct_instants() -> None:
    """Hourly in Berlin over the March gap lists each instant once, in order."""
    start = datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
    dispatch = make_dispatch(start_time=start, recurrence=rule(Frequency.HOURLY))
    runs = dispatch.missed_runs(start, start + 5 * HOUR)
    utc = [run.astimezone(UTC) for run in runs]
    assert utc == [datetime(2026, 3, 28, 23 + h, tzinfo=UTC) for h in (0,)] + [
        datetime(2026, 3, 29, h, tzinfo=UTC) for h in (0, 1, 2)
    ]


def test_queries_compare_instants_in_the_repeated_hour() -> None:
    """In October's repeated hour, a query in local time compares the real instants."""
    start = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
    dispatch = make_dispatch(start_time=start, recurrence=rule(Frequency.HOURLY))
    # 02:30 CET (fold=1) is 01:30 UTC: the next run is 02:00 UTC.
    later = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)
    assert dispatch.next_run_after(later) == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


# ------------------------------------------------------------------- _recurrence API


def test_build_rrule_requires_a_recurring_rule_and_an_aware_start() -> None:
    """`build_rrule` refuses naive starts and non-recurring rules."""
    with pytest.raises(ValueError, match="timezone-aware"):
        build_rrule(daily(), datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="not recurring"):
        build_rrule(RecurrenceRule(), T0)
    assert not is_recurring(None)
    assert not is_recurring(RecurrenceRule())
    assert is_recurring(RecurrenceRule(frequency=99))


def test_schedule_requires_an_aware_start() -> None:
    """A `Schedule` refuses a naive start time."""
    with pytest.raises(ValueError, match="timezone-aware"):
        Schedule(start_time=datetime(2026, 1, 1), duration=HOUR, rule=None)
    assert not Schedule(start_time=T0, duration=None, rule=daily()).is_single
    assert Schedule(start_time=T0, duration=None, rule=None).is_single
    assert not Schedule(start_time=T0, duration=HOUR, rule=daily()).is_single


def test_schedule_is_cached_per_dispatch() -> None:
    """The schedule is built once per dispatch and reused."""
    dispatch = make_dispatch(recurrence=daily())
    dispatch.next_run_after(T0)
    first = dispatch._schedule
    dispatch.missed_runs(T0, T0 + DAY)
    assert first is not None
    assert dispatch._schedule is first


# -------------------------------------------------------------------- properties


FAST_FREQUENCIES = [Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY, Frequency.YEARLY]


@st.composite
def recurrence_rules(draw: st.DrawFn) -> RecurrenceRule:
    """Draw valid recurring rules that stay cheap to evaluate."""
    frequency = draw(st.sampled_from([Frequency.MINUTELY, Frequency.HOURLY, *FAST_FREQUENCIES]))
    small = st.lists
    changes: dict[str, Any] = {
        "byminutes": draw(small(st.integers(0, 59), max_size=3)),
        "byhours": draw(small(st.integers(0, 23), max_size=3)),
    }
    if frequency in FAST_FREQUENCIES:
        changes["byweekdays"] = draw(
            small(st.sampled_from([d for d in Weekday if d is not Weekday.UNSPECIFIED]), max_size=3)
        )
        changes["bymonthdays"] = draw(
            small(st.integers(-31, 31).filter(lambda d: d != 0), max_size=2)
        )
        changes["bymonths"] = draw(small(st.integers(1, 12), max_size=3))
    end = draw(
        st.none()
        | st.builds(EndCriteria, count=st.integers(1, 20))
        | st.builds(
            EndCriteria,
            until=st.datetimes(
                min_value=datetime(2025, 6, 1),
                max_value=datetime(2028, 1, 1),
                timezones=st.just(UTC),
            ),
        )
    )
    return RecurrenceRule(
        frequency=frequency, interval=draw(st.integers(1, 4)), end_criteria=end, **changes
    )


NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # DST moves its clock by 30 minutes
DST_ZONES = [BERLIN, NEW_YORK, LORD_HOWE]
# Offset changes that are not whole hours, each in its own year: Caracas went from
# -04:30 to -04:00 (2016), Kathmandu from +05:30 to +05:45 (1986), Apia skipped a whole
# day (2011-12-30) and had DST around it.
ODD_ZONES = {
    ZoneInfo("America/Caracas"): 2016,
    ZoneInfo("Asia/Kathmandu"): 1986,
    ZoneInfo("Pacific/Apia"): 2011,
}


def _transitions(zone: ZoneInfo, first_year: int, last_year: int) -> list[datetime]:
    """The UTC instants in the years given at which `zone` changes its offset."""
    found: list[datetime] = []

    def offset(moment: datetime) -> timedelta | None:
        return moment.astimezone(zone).utcoffset()

    moment = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    while moment < end:
        step = moment + DAY
        if offset(step) != offset(moment):
            low, high = moment, step  # offset(low) differs from offset(high)
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
            found.append(high.replace(microsecond=0))
        moment = step
    return found


TRANSITIONS = [
    *((zone, t) for zone in DST_ZONES for t in _transitions(zone, 2025, 2027)),
    *((zone, t) for zone, year in ODD_ZONES.items() for t in _transitions(zone, year, year)),
]


@st.composite
def near_transitions(draw: st.DrawFn) -> datetime:
    """Draw an aware time close to an offset change, as an instant or as a wall time.

    Wall times may lie in the gap or either pass of the repeated hour (any `fold`).
    """
    zone, transition = draw(st.sampled_from(TRANSITIONS))
    distance = draw(
        st.integers(-3 * 3600, 3 * 3600) | st.integers(-3 * 86400, 3 * 86400),
        label="seconds from the change",
    )
    microseconds = draw(st.sampled_from([0, 0, 999_999]) | st.integers(0, 999_999))
    shift = timedelta(seconds=distance, microseconds=microseconds)
    if draw(st.booleans(), label="as a wall time"):
        wall = transition.astimezone(zone).replace(tzinfo=None) + shift
        return wall.replace(tzinfo=zone, fold=draw(st.integers(0, 1), label="fold"))
    return (transition + shift).astimezone(zone)


aware_times = (
    st.datetimes(
        min_value=datetime(2025, 1, 1),
        max_value=datetime(2027, 12, 31),
        timezones=st.sampled_from([UTC, *DST_ZONES]),
    )
    | near_transitions()
)


@st.composite
def dispatches(draw: st.DrawFn) -> Dispatch:
    """Draw dispatches with a recurring rule and an optional duration."""
    return make_dispatch(
        start_time=draw(aware_times),
        duration=draw(st.none() | st.integers(0, 3 * 86400).map(lambda s: timedelta(seconds=s))),
        recurrence=draw(recurrence_rules()),
    )


PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(dispatch=dispatches(), when=aware_times)
def test_next_run_after_is_the_first_run_at_or_after(dispatch: Dispatch, when: datetime) -> None:
    """`next_run_after(t)` is a run, is >= t, and no run starts in [t, it)."""
    found = dispatch.next_run_after(when)
    if found is None:
        assert dispatch.missed_runs(when, when + 400 * DAY)[:1] == []
        return
    # Instants, not wall times: Python compares datetimes of one tzinfo by wall clock.
    assert found.astimezone(UTC) >= when.astimezone(UTC)
    assert found.astimezone(UTC) >= dispatch.start_time.astimezone(UTC)
    assert dispatch.next_run_after(found) == found
    assert dispatch.missed_runs(when, found) == []
    # In UTC: one microsecond added to a wall time in the hour a DST change repeats
    # would land in the first pass of that hour, an hour earlier.
    assert dispatch.missed_runs(found, found.astimezone(UTC) + US) == [found]


@PROPERTY_SETTINGS
@given(dispatch=dispatches(), since=aware_times, hours=st.integers(0, 24 * 20))
def test_missed_runs_are_sorted_runs_in_the_window(
    dispatch: Dispatch, since: datetime, hours: int
) -> None:
    """`missed_runs` are strictly increasing, inside [since, until), and each one is a run."""
    # In UTC: wall-clock arithmetic and comparisons are ambiguous in a repeated hour.
    since_utc = since.astimezone(UTC)
    until = since_utc + timedelta(hours=hours)
    runs = dispatch.missed_runs(since, until)
    instants = [run.astimezone(UTC) for run in runs]
    assert all(a < b for a, b in itertools.pairwise(instants))
    assert all(since_utc <= run < until for run in instants)
    assert all(run >= dispatch.start_time.astimezone(UTC) for run in instants)
    for run in runs[:5]:
        assert dispatch.next_run_after(run) == run
    # The first run in the window is what next_run_after(since) finds.
    if runs:
        assert dispatch.next_run_after(since) == runs[0]


@PROPERTY_SETTINGS
@given(dispatch=dispatches(), now=aware_times)
def test_started_matches_until(dispatch: Dispatch, now: datetime) -> None:
    """With a duration, started_at(now) holds exactly when until_at(now) is a later time."""
    until = dispatch.until_at(now)
    if dispatch.duration is None:
        assert until is None
        # Running from the first run of the series on (the recurrence decides when).
        first = dispatch.next_run_after(dispatch.start_time)
        # In UTC: Python compares two datetimes of one zone by wall clock (a DST gap).
        expected = (
            dispatch.active and first is not None and now.astimezone(UTC) >= first.astimezone(UTC)
        )
        assert dispatch.started_at(now) == expected
        return
    assert dispatch.started_at(now) == (until is not None)
    if until is not None:
        # In UTC: a duration is elapsed time, wall-clock arithmetic is not.
        assert until.astimezone(UTC) > now.astimezone(UTC)
        assert until.astimezone(UTC) - dispatch.duration <= now.astimezone(UTC)


@settings(max_examples=150, deadline=None)
@given(
    recurrence=recurrence_rules(),
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ).map(lambda t: t.replace(microsecond=0)),
    data=st.data(),
)
def test_agrees_with_the_official_client(
    recurrence: RecurrenceRule, start: datetime, data: st.DataObject
) -> None:
    """For whole-second start times, the next run equals the official client's answer."""
    # The official client iterates from the start: keep sub-daily series short for it.
    sub_daily = recurrence.frequency in (Frequency.MINUTELY, Frequency.HOURLY)
    reach = 2 * DAY if sub_daily else 400 * DAY
    when = start + data.draw(st.timedeltas(min_value=-5 * DAY, max_value=reach), label="offset")
    from frequenz.client.dispatch import recurrence as official

    theirs = official.RecurrenceRule(
        frequency=official.Frequency(recurrence.frequency.value),
        interval=recurrence.interval,
        end_criteria=None
        if recurrence.end_criteria is None
        else official.EndCriteria(
            count=recurrence.end_criteria.count, until=recurrence.end_criteria.until
        ),
        byminutes=list(recurrence.byminutes),
        byhours=list(recurrence.byhours),
        byweekdays=[official.Weekday(d.value) for d in recurrence.byweekdays],
        bymonthdays=list(recurrence.bymonthdays),
        bymonths=list(recurrence.bymonths),
    )
    try:
        expected = theirs._as_rrule(start).after(when, inc=True)
    except ValueError:
        # dateutil refuses filters the interval never reaches; for us that is "no run".
        expected = None
    ours = make_dispatch(start_time=start, recurrence=recurrence).next_run_after(when)
    assert ours == expected


def test_unreachable_sub_daily_filters_have_no_runs() -> None:
    """Every 2 minutes from minute 1, at minute 0, never happens: no runs, no crash."""
    recurrence = rule(Frequency.MINUTELY, interval=2, byminutes=[0])
    dispatch = make_dispatch(start_time=T0 + timedelta(minutes=1), recurrence=recurrence)
    assert dispatch.next_run_after(T0) is None
    assert dispatch.missed_runs(T0, T0 + DAY) == []
    assert not dispatch.started_at(T0 + HOUR)


# ------------------------------------------------------------ fast-forwarded series


def _reference_instants(recurrence: RecurrenceRule, start: datetime) -> list[datetime]:
    """Every run of a finite series as sorted UTC instants, from dateutil's whole walk.

    The documented rules, applied naively: each wall time dateutil yields is read as
    Python reads it (a gap's wall time with the offset before the gap, a repeated
    one as its first pass); a run before the start is no run, except at the start's
    own wall time, which is the start.
    """
    series = build_rrule(recurrence, start)
    shift = timedelta(microseconds=start.microsecond)
    start_wall = existing_wall_time(start).replace(tzinfo=None, fold=0)
    first = start.astimezone(UTC)
    instants: set[datetime] = set()
    try:
        for found in [] if series is None else series:
            instant = (found + shift).astimezone(UTC)
            if instant < first:
                if found.replace(tzinfo=None) + shift != start_wall:
                    continue
                instant = first
            instants.add(instant)
    except ValueError:
        # dateutil found the filters out of the interval's reach: no runs.
        return []
    return sorted(instants)


@st.composite
def finite_cases(draw: st.DrawFn) -> tuple[Dispatch, datetime]:
    """Draw a dispatch whose series ends (count or until) plus a query time.

    Start and query times cluster around offset changes of zones with DST (and of
    zones with odd offsets), so few examples already cross gaps and repeated hours.
    """
    frequency = draw(st.sampled_from(list(_HORIZONS)))
    interval = draw(
        {
            Frequency.MINUTELY: st.integers(1, 3) | st.integers(7, 180),
            Frequency.HOURLY: st.integers(1, 30),
        }.get(frequency, st.integers(1, 3))
    )
    start = draw(near_transitions() | aware_times)
    if draw(st.booleans(), label="in UTC"):
        start = start.astimezone(UTC)
    horizon = draw(_HORIZONS[frequency], label="horizon")
    small = st.lists
    changes: dict[str, Any] = {
        "byminutes": draw(small(st.integers(0, 59), max_size=2)),
        "byhours": draw(small(st.integers(0, 23), max_size=3)),
    }
    if frequency not in (Frequency.MINUTELY, Frequency.HOURLY):
        changes["byweekdays"] = draw(
            small(st.sampled_from([d for d in Weekday if d is not Weekday.UNSPECIFIED]), max_size=3)
        )
        changes["bymonthdays"] = draw(small(st.integers(-31, 31).filter(bool), max_size=2))
        changes["bymonths"] = draw(small(st.integers(1, 12), max_size=3))
    until = start.astimezone(UTC) + horizon
    end = draw(st.just(EndCriteria(until=until)) | st.builds(EndCriteria, count=st.integers(1, 40)))
    dispatch = make_dispatch(
        start_time=start,
        duration=draw(st.none() | st.integers(1, 600).map(lambda m: timedelta(minutes=m))),
        recurrence=rule(frequency, interval, end_criteria=end, **changes),
    )
    offset = timedelta(
        seconds=draw(st.integers(-36000, int(horizon.total_seconds()) + 36000), label="query")
    )
    when = start.astimezone(UTC) + offset
    return dispatch, when.astimezone(draw(st.sampled_from([UTC, start.tzinfo])))


_HORIZONS = {
    # Short enough that dateutil's whole walk stays a few thousand steps.
    Frequency.MINUTELY: st.integers(60, 4 * 1440).map(lambda m: timedelta(minutes=m)),
    Frequency.HOURLY: st.integers(1, 25).map(lambda d: timedelta(days=d)),
    Frequency.DAILY: st.integers(1, 60).map(lambda d: timedelta(days=d)),
    Frequency.WEEKLY: st.integers(1, 200).map(lambda d: timedelta(days=d)),
    Frequency.MONTHLY: st.integers(1, 800).map(lambda d: timedelta(days=d)),
    Frequency.YEARLY: st.integers(1, 1500).map(lambda d: timedelta(days=d)),
}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=finite_cases(), limit=st.integers(1, 4))
def test_queries_match_the_full_series(case: tuple[Dispatch, datetime], limit: int) -> None:
    """Every query (fast-forwarded or not) agrees with the naive walk of the whole series."""
    dispatch, when = case
    assert dispatch.recurrence is not None
    instants = _reference_instants(dispatch.recurrence, dispatch.start_time)
    at_utc = when.astimezone(UTC)
    schedule = dispatch._runs()

    later = [run for run in instants if run >= at_utc]
    found = dispatch.next_run_after(when)
    assert (None if found is None else found.astimezone(UTC)) == (later[0] if later else None)
    first = schedule.first_run
    assert (None if first is None else first.astimezone(UTC)) == (instants[0] if instants else None)

    earlier = [run for run in instants if run <= at_utc]
    last = schedule.last_at_or_before(when)
    assert (None if last is None else last.astimezone(UTC)) == (earlier[-1] if earlier else None)
    if dispatch.duration is None:
        assert dispatch.until_at(when) is None
        assert dispatch.started_at(when) == bool(earlier)
    else:
        running = bool(earlier) and at_utc < earlier[-1] + dispatch.duration
        assert dispatch.started_at(when) == running
        end = dispatch.until_at(when)
        expected_end = earlier[-1] + dispatch.duration if running else None
        assert (None if end is None else end.astimezone(UTC)) == expected_end

    window_end = at_utc + timedelta(hours=30)
    missed = dispatch.missed_runs(when, window_end)
    expected = [run for run in instants if at_utc <= run < window_end]
    assert [run.astimezone(UTC) for run in missed] == expected
    limited = dispatch.missed_runs(when, window_end, limit=limit)
    assert [run.astimezone(UTC) for run in limited] == expected[:limit]
    for run in missed:
        # Each run is shown as an existing wall time of the start's zone.
        assert run.tzinfo is dispatch.start_time.tzinfo
        assert run.astimezone(UTC).astimezone(run.tzinfo) == run
        assert run.replace(tzinfo=None) == run.astimezone(UTC).astimezone(run.tzinfo).replace(
            tzinfo=None
        )


@pytest.mark.parametrize(
    ("frequency", "interval"),
    [
        (Frequency.DAILY, 7),
        (Frequency.DAILY, 14),
        (Frequency.HOURLY, 168),
        (Frequency.MINUTELY, 10080),
    ],
)
def test_whole_week_intervals_off_the_filtered_weekdays_have_no_runs(
    frequency: Frequency, interval: int
) -> None:
    """Every whole number of weeks from a Monday never lands on a Tuesday: no runs."""
    recurrence = rule(frequency, interval, byweekdays=[Weekday.TUESDAY])
    assert build_rrule(recurrence, T0) is None  # T0 is a Monday
    dispatch = make_dispatch(recurrence=recurrence)
    assert dispatch.next_run_after(T0 - DAY) is None
    assert not dispatch.started_at(T0 + DAY)


def test_whole_week_intervals_on_the_start_weekday_run() -> None:
    """Every 7 days from a Monday, filtered to Mondays (and Tuesdays), runs every Monday."""
    recurrence = daily(interval=7, byweekdays=[Weekday.TUESDAY, Weekday.MONDAY])
    dispatch = make_dispatch(recurrence=recurrence)
    assert dispatch.missed_runs(T0, T0 + 15 * DAY) == [T0, T0 + 7 * DAY, T0 + 14 * DAY]


def test_never_matching_rule_is_detected_once() -> None:
    """A rule whose filters never match is found empty when the schedule is built."""
    # Every 84 hours from Monday 00:00 lands on Mondays and Thursdays only. Starting
    # near the end of dateutil's calendar keeps the one exhaustive search short.
    start = datetime(9990, 1, 1, tzinfo=UTC)
    assert start.weekday() == 0
    recurrence = rule(Frequency.HOURLY, 84, byweekdays=[Weekday.WEDNESDAY])
    schedule = Schedule(start_time=start, duration=HOUR, rule=recurrence)
    assert schedule._rrule is None
    assert schedule.first_at_or_after(start) is None
    assert schedule.last_at_or_before(start + 30 * DAY) is None
    assert schedule.between(start, start + 30 * DAY) == []


def test_filters_found_unreachable_while_iterating_have_no_runs() -> None:
    """Every 2 hours from midnight never reaches 01:xx; dateutil finds out while iterating."""
    recurrence = rule(Frequency.MINUTELY, 120, byhours=[1])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert build_rrule(recurrence, start) is not None
    dispatch = make_dispatch(start_time=start, recurrence=recurrence)
    assert dispatch.next_run_after(start) is None
    assert dispatch.missed_runs(start, start + DAY) == []
    assert not dispatch.started_at(start + HOUR)


@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 3, 28, 0, 0, tzinfo=ZoneInfo("Europe/Berlin")),  # walks across the gap
        datetime(2026, 3, 29, 2, 53, tzinfo=ZoneInfo("Europe/Berlin")),  # starts inside it
    ],
)
def test_sub_hourly_runs_across_a_dst_gap_are_in_time_order(start: datetime) -> None:
    """Every 7 minutes across spring-forward: queries see the runs sorted and once each."""
    rule = RecurrenceRule(
        frequency=Frequency.MINUTELY,
        interval=7,
        end_criteria=EndCriteria(until=datetime(2026, 3, 30, tzinfo=UTC)),
    )
    dispatch = make_dispatch(start_time=start, duration=timedelta(minutes=1), recurrence=rule)
    since = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    runs = [run.astimezone(UTC) for run in dispatch.missed_runs(since, since + timedelta(hours=3))]
    assert runs == sorted(set(runs))
    assert runs
    first = dispatch.next_run_after(since)
    assert first is not None
    assert first.astimezone(UTC) == runs[0]
    # The run that starts at 01:00 UTC (03:00 CEST) comes after the gap's wall times in
    # dateutil's walk, but it is the earliest run at or after 01:00 UTC.
    at_one = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    later = [run for run in runs if run >= at_one]
    found = dispatch.next_run_after(at_one)
    assert found is not None
    assert found.astimezone(UTC) == later[0]


@pytest.mark.parametrize("duration", [None, timedelta(minutes=5)])
def test_a_start_in_the_repeated_hour_is_the_first_run(duration: timedelta | None) -> None:
    """A start in the second pass of a repeated hour is the first run, not an hour before."""
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 10, 26, 2, 0, fold=1, tzinfo=berlin)  # 01:00 UTC
    dispatch = make_dispatch(
        start_time=start,
        duration=duration,
        recurrence=RecurrenceRule(frequency=Frequency.MINUTELY, interval=1),
    )
    found = dispatch.next_run_after(datetime(2025, 1, 1, tzinfo=UTC))
    assert found is not None
    assert found.astimezone(UTC) == datetime(2025, 10, 26, 1, 0, tzinfo=UTC)
    # Runs step in wall time, which visits each wall time once: the rest of the
    # repeated hour's second pass has none, the next run is 03:00 CET.
    runs = dispatch.missed_runs(start - timedelta(hours=2), start + timedelta(hours=1, minutes=2))
    assert [run.astimezone(UTC) for run in runs] == [
        datetime(2025, 10, 26, 1, 0, tzinfo=UTC),
        datetime(2025, 10, 26, 2, 0, tzinfo=UTC),
        datetime(2025, 10, 26, 2, 1, tzinfo=UTC),
    ]


def test_a_filtered_start_in_the_repeated_hour_runs_after_it() -> None:
    """A start in a repeated hour that the filters skip leaves no earlier run hiding later ones."""
    start = datetime(2025, 10, 26, 2, 0, fold=1, tzinfo=BERLIN)  # 01:00 UTC
    recurrence = rule(Frequency.MINUTELY, byminutes=[1])
    dispatch = make_dispatch(start_time=start, duration=None, recurrence=recurrence)
    when = datetime(2025, 1, 1, tzinfo=UTC)
    # 02:01 CEST (00:01 UTC) is before the start: the first run is 03:01 CET.
    expected = datetime(2025, 10, 26, 2, 1, tzinfo=UTC)
    found = dispatch.next_run_after(when)
    assert found is not None
    assert found.astimezone(UTC) == expected
    assert dispatch.missed_runs(when, when + 400 * DAY, limit=1) == [found]
    assert not dispatch.started_at(expected - US)
    assert dispatch.started_at(expected)


@pytest.mark.parametrize("zone", [UTC, BERLIN])
def test_hour_filters_on_a_spring_forward_day(zone: Any) -> None:
    """Hourly at 02:59:59.999999 Berlin runs at 03:59:59.999999 CEST on the day 02:xx is skipped."""
    start = datetime(2026, 3, 20, 0, 59, 59, 999_999, tzinfo=BERLIN).astimezone(zone)
    recurrence = rule(Frequency.HOURLY, byhours=[2 if zone is BERLIN else 1])
    dispatch = make_dispatch(start_time=start, recurrence=recurrence)
    when = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    found = dispatch.next_run_after(when)
    assert found is not None
    assert found.astimezone(UTC) == datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=UTC)
    # Shown as a wall time that exists.
    assert found.astimezone(UTC).astimezone(found.tzinfo).replace(tzinfo=None) == found.replace(
        tzinfo=None
    )


def test_runs_in_a_gap_are_listed_once_as_existing_wall_times() -> None:
    """Every 30 minutes across New York's spring-forward: the gap's wall times are 03:xx EDT."""
    new_york = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 8, 1, 0, tzinfo=new_york)  # 06:00 UTC; 02:00-02:59 is skipped
    dispatch = make_dispatch(start_time=start, recurrence=rule(Frequency.MINUTELY, 30))
    runs = dispatch.missed_runs(start, start.astimezone(UTC) + 3 * HOUR)
    assert [(run.hour, run.minute, run.utcoffset()) for run in runs] == [
        (1, 0, timedelta(hours=-5)),
        (1, 30, timedelta(hours=-5)),
        (3, 0, timedelta(hours=-4)),  # 02:00 EST read with the offset before the gap
        (3, 30, timedelta(hours=-4)),
        (4, 0, timedelta(hours=-4)),
        (4, 30, timedelta(hours=-4)),
    ]


def test_a_run_right_after_a_gap_is_running_when_asked_in_local_time() -> None:
    """Asked in local time just after spring-forward, `started_at` finds the run there."""
    start = datetime(2025, 3, 30, 3, 0, tzinfo=BERLIN)  # 01:00 UTC, just after the gap
    dispatch = make_dispatch(
        start_time=start, duration=timedelta(minutes=1), recurrence=rule(Frequency.HOURLY)
    )
    assert dispatch.started_at(start)
    assert dispatch.until_at(start) == datetime(2025, 3, 30, 3, 1, tzinfo=BERLIN)
    assert not dispatch.started_at(datetime(2025, 3, 30, 3, 1, tzinfo=BERLIN))


def test_the_tables_written_out_to_spare_imports_match_calendar_and_dateutil() -> None:
    """Month lengths and weekday numbers, written out to load no calendar, match both."""
    import calendar

    from dateutil import rrule

    from dispatch_client import _recurrence

    longest = {m: max(calendar.monthrange(y, m)[1] for y in (2023, 2024)) for m in range(1, 13)}
    assert longest == _recurrence._MONTH_LENGTHS
    days = {name: rrule.weekday(n) for name, n in _recurrence._WEEKDAY_NUMBERS.items()}
    assert days == {
        "MONDAY": rrule.MO,
        "TUESDAY": rrule.TU,
        "WEDNESDAY": rrule.WE,
        "THURSDAY": rrule.TH,
        "FRIDAY": rrule.FR,
        "SATURDAY": rrule.SA,
        "SUNDAY": rrule.SU,
    }
    assert {w.name for w in Weekday} - {"UNSPECIFIED"} == set(_recurrence._WEEKDAY_NUMBERS)
