"""A tour of the domain model: `python -m dispatch_client._demo`.

It builds a recurring dispatch (charge the batteries every weekday at 14:00 in Berlin for
an hour), then prints it, its next five runs, whether it runs right now, and the runs a
scheduler that was offline for the past week missed. No network, no server: everything
here is computed locally by `Dispatch`. The output depends only on the current time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ._types import (
    BatteryType,
    Dispatch,
    ElectricalComponentCategory,
    Frequency,
    RecurrenceRule,
    TargetCategories,
    Weekday,
)

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = (Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY, Weekday.FRIDAY)


def example_dispatch() -> Dispatch:
    """Build the demo dispatch: a weekday battery charge at 14:00 Berlin time, one hour.

    Returns:
        The dispatch (the same one on every call).
    """
    created = datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
    return Dispatch(
        id=1,
        type="BATTERY_CHARGE",
        start_time=datetime(2026, 1, 5, 14, 0, tzinfo=BERLIN),
        duration=timedelta(hours=1),
        target=TargetCategories(BatteryType.LI_ION, ElectricalComponentCategory.EV_CHARGER),
        active=True,
        dry_run=False,
        payload={"target_power_w": 25_000.0, "soc_limit_pct": 90, "reason": "solar surplus"},
        recurrence=RecurrenceRule(
            frequency=Frequency.DAILY,
            interval=1,
            byweekdays=WEEKDAYS,
            byhours=(14,),
            byminutes=(0,),
        ),
        create_time=created,
        update_time=created,
    )


def _when(moment: datetime) -> str:
    """Format a datetime with weekday and UTC offset, e.g. `Mon 2026-01-05 14:00 +01:00`."""
    return moment.strftime("%a %Y-%m-%d %H:%M %z")[:-2] + ":" + moment.strftime("%z")[-2:]


def describe(dispatch: Dispatch) -> list[str]:
    """Describe a dispatch in a few readable lines.

    Args:
        dispatch: The dispatch.

    Returns:
        The lines, without trailing newlines.
    """
    rule = dispatch.recurrence
    if rule is None or rule.frequency is Frequency.UNSPECIFIED:
        repeats = "once"
    else:
        days = ", ".join(day.name.title()[:3] for day in rule.byweekdays) or "any day"
        repeats = f"{rule.frequency.name.lower()} (every {rule.interval}), on {days}"
    return [
        f"Dispatch #{dispatch.id}: {dispatch.type}",
        f"  target     {dispatch.target!r}",
        f"  starts     {_when(dispatch.start_time)} ({dispatch.start_time.tzinfo})",
        f"  lasts      {dispatch.duration if dispatch.duration is not None else 'until stopped'}",
        f"  repeats    {repeats}",
        f"  active     {dispatch.active}   dry run {dispatch.dry_run}",
        f"  payload    {json.dumps(dispatch.payload, sort_keys=True)}",
    ]


def next_runs(dispatch: Dispatch, after: datetime, count: int) -> list[datetime]:
    """Return up to `count` runs starting at or after `after`.

    Args:
        dispatch: The dispatch.
        after: A timezone-aware datetime.
        count: How many runs at most.

    Returns:
        The run starts, oldest first.
    """
    runs: list[datetime] = []
    found = dispatch.next_run_after(after)
    while found is not None and len(runs) < count:
        runs.append(found)
        found = dispatch.next_run_after(found + timedelta(microseconds=1))
    return runs


def render(now: datetime) -> str:
    """Render the whole demo as text, as seen at `now`.

    Args:
        now: The current time, timezone-aware.

    Returns:
        The text, ending with a newline.
    """
    dispatch = example_dispatch()
    lines = describe(dispatch)
    lines += ["", f"Now: {_when(now.astimezone(BERLIN))}", "", "Next five runs:"]
    lines += [f"  {_when(run)}" for run in next_runs(dispatch, now, 5)]
    until = dispatch.until_at(now)
    running = f"yes, until {_when(until)}" if until is not None else "no"
    lines += ["", f"Running now: {running} (started_at(now) = {dispatch.started_at(now)})"]
    missed = dispatch.missed_runs(now - timedelta(days=7), now)
    lines += ["", f"Missed while offline for the past week: {len(missed)} run(s)"]
    lines += [f"  {_when(run)}" for run in missed]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the demo for the current time.

    Args:
        argv: Ignored; the demo takes no arguments.

    Returns:
        The exit status, 0.
    """
    del argv
    sys.stdout.write(render(datetime.now(UTC)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
