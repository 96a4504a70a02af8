"""What `dispatch-client` prints: JSON objects for scripts, rich tables and lines for people.

JSON output is one object per line (JSON Lines), so a long listing or a stream can be
read line by line with `jq` or any JSON reader. Times are ISO 8601 with their offset
(the server's UTC), durations are seconds (null: until stopped) and enums are names.
The readable forms show times in the local time zone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from dispatch_client import Dispatch, DispatchEvent, Frequency, RecurrenceRule, TargetIds

from ._input import format_duration, format_target

__all__ = [
    "describe_recurrence",
    "dispatch_details",
    "dispatch_json",
    "dispatch_table",
    "event_json",
    "event_text",
    "json_line",
    "local_time",
]


def json_line(value: Any) -> str:
    """Serialize one JSON Lines record: compact, keys in a stable order, no trailing newline.

    Args:
        value: A JSON-compatible value.

    Returns:
        The line.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _seconds(duration: timedelta | None) -> int | float | None:
    if duration is None:
        return None
    seconds = duration.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _recurrence_json(rule: RecurrenceRule | None) -> dict[str, Any] | None:
    if rule is None or rule.frequency is Frequency.UNSPECIFIED:
        return None
    end = rule.end_criteria
    return {
        "frequency": rule.frequency.name,
        "interval": rule.interval,
        "end_criteria": None if end is None else {"count": end.count, "until": _time(end.until)},
        "byminutes": list(rule.byminutes),
        "byhours": list(rule.byhours),
        "byweekdays": [day.name for day in rule.byweekdays],
        "bymonthdays": list(rule.bymonthdays),
        "bymonths": list(rule.bymonths),
    }


def dispatch_json(dispatch: Dispatch) -> dict[str, Any]:
    """A dispatch as a JSON-compatible dict.

    `target` is `{"ids": [...]}` or `{"categories": ["BATTERY:LI_ION", ...]}`; a
    recurrence of frequency UNSPECIFIED is null.

    Args:
        dispatch: The dispatch.

    Returns:
        The dict, in a fixed key order.
    """
    target = dispatch.target
    if isinstance(target, TargetIds):
        target_json: dict[str, Any] = {"ids": sorted(target)}
    else:
        target_json = {"categories": format_target(target).split(",") if target else []}
    return {
        "id": dispatch.id,
        "type": dispatch.type,
        "start_time": _time(dispatch.start_time),
        "duration": _seconds(dispatch.duration),
        "target": target_json,
        "active": dispatch.active,
        "dry_run": dispatch.dry_run,
        "payload": dispatch.payload,
        "recurrence": _recurrence_json(dispatch.recurrence),
        "create_time": _time(dispatch.create_time),
        "update_time": _time(dispatch.update_time),
        "end_time": _time(dispatch.end_time),
    }


def event_json(event: DispatchEvent) -> dict[str, Any]:
    """A stream event as a JSON-compatible dict: event name, synthesized flag, dispatch.

    Args:
        event: The event.

    Returns:
        The dict.
    """
    return {
        "event": event.event.name,
        "synthesized": event.synthesized,
        "dispatch": dispatch_json(event.dispatch),
    }


def local_time(moment: datetime | None, *, short: bool = False) -> str:
    """Format a time in the local zone, or "-" for None.

    Args:
        moment: A timezone-aware time, or None.
        short: To the minute without the offset (for tables), instead of with seconds
            (when not zero) and the offset.

    Returns:
        E.g. `2026-12-01 14:00 +01:00`, or `2026-12-01 14:00` when short.
    """
    if moment is None:
        return "-"
    local = moment.astimezone()
    if short:
        return local.strftime("%Y-%m-%d %H:%M")
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")
    return f"{shown} {_offset(local)}"


def _offset(moment: datetime) -> str:
    """`+01:00` for an aware time."""
    text = moment.strftime("%z")
    return f"{text[:3]}:{text[3:5]}"


def describe_recurrence(rule: RecurrenceRule | None) -> str:
    """Describe a recurrence rule in a few words, e.g. `daily on Mon,Wed at :00, 3 times`.

    Args:
        rule: The rule, or None.

    Returns:
        The description; `once` for no recurrence.
    """
    if rule is None or rule.frequency is Frequency.UNSPECIFIED:
        return "once"
    unit = rule.frequency.name.lower()
    parts = [unit if rule.interval == 1 else f"every {rule.interval} ({unit})"]
    if rule.bymonths:
        parts.append("in months " + ",".join(map(str, rule.bymonths)))
    if rule.bymonthdays:
        parts.append("on days " + ",".join(map(str, rule.bymonthdays)))
    if rule.byweekdays:
        parts.append("on " + ",".join(day.name[:3].title() for day in rule.byweekdays))
    if rule.byhours:
        parts.append("at hours " + ",".join(map(str, rule.byhours)))
    if rule.byminutes:
        parts.append("at minutes " + ",".join(map(str, rule.byminutes)))
    end = rule.end_criteria
    if end is not None and end.count is not None:
        parts.append(f"{end.count} times")
    elif end is not None and end.until is not None:
        parts.append(f"until {local_time(end.until)}")
    return ", ".join(parts)


def _duration(duration: timedelta | None) -> str:
    return "until stopped" if duration is None else format_duration(duration)


def _state(dispatch: Dispatch, now: datetime) -> Text:
    if not dispatch.active:
        state = Text("inactive", style="dim")
    elif dispatch.started_at(now):
        state = Text("running", style="bold green")
    else:
        state = Text("waiting", style="yellow")
    if dispatch.dry_run:
        state.append(" (dry run)", style="cyan")
    return state


def dispatch_table(dispatches: Iterable[Dispatch], now: datetime, *, title: str) -> Table:
    """A table of dispatches, one row each.

    Args:
        dispatches: The dispatches.
        now: The time the state column (running, waiting, inactive) and the next run
            refer to.
        title: The table's title.

    Returns:
        The rich table.
    """
    caption = f"times in the local zone (UTC{_offset(now.astimezone())})"
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("ID", justify="right", style="bold", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Target")
    table.add_column("Start", no_wrap=True)
    table.add_column("Duration", no_wrap=True)
    table.add_column("Repeats")
    table.add_column("Next run", no_wrap=True)
    table.add_column("State")
    for dispatch in dispatches:
        table.add_row(
            str(dispatch.id),
            dispatch.type,
            format_target(dispatch.target),
            local_time(dispatch.start_time, short=True),
            _duration(dispatch.duration),
            describe_recurrence(dispatch.recurrence),
            local_time(dispatch.next_run_after(now), short=True),
            _state(dispatch, now),
        )
    return table


def dispatch_details(dispatch: Dispatch, now: datetime, *, title: str) -> Table:
    """One dispatch as a two-column table of its fields and computed times.

    Args:
        dispatch: The dispatch.
        now: The time the state and the next run refer to.
        title: The table's title.

    Returns:
        The rich table.
    """
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: list[tuple[str, str | Text]] = [
        ("id", str(dispatch.id)),
        ("type", dispatch.type),
        ("target", format_target(dispatch.target)),
        ("start", local_time(dispatch.start_time)),
        ("duration", _duration(dispatch.duration)),
        ("repeats", describe_recurrence(dispatch.recurrence)),
        ("next run", local_time(dispatch.next_run_after(now))),
        ("state", _state(dispatch, now)),
        ("payload", json.dumps(dispatch.payload, sort_keys=True, ensure_ascii=False)),
        ("created", local_time(dispatch.create_time)),
        ("updated", local_time(dispatch.update_time)),
        ("ends", local_time(dispatch.end_time)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


_EVENT_STYLES = {"CREATED": "green", "UPDATED": "yellow", "DELETED": "red"}


def event_text(event: DispatchEvent, received: datetime) -> Text:
    """One stream event as a line: time received, event, dispatch summary.

    Args:
        event: The event.
        received: When it arrived.

    Returns:
        The line, styled.
    """
    dispatch = event.dispatch
    name = event.event.name
    line = Text(received.astimezone().strftime("%H:%M:%S") + " ")
    line.append(f"{name:<8}", style=_EVENT_STYLES.get(name, "magenta"))
    line.append(f" #{dispatch.id} {dispatch.type}", style="bold")
    line.append(
        f"  target {format_target(dispatch.target)}, starts {local_time(dispatch.start_time)}"
        f", {_duration(dispatch.duration)}, {describe_recurrence(dispatch.recurrence)}"
        f", {'active' if dispatch.active else 'inactive'}"
    )
    if dispatch.dry_run:
        line.append(", dry run")
    if event.synthesized:
        line.append("  (synthesized by resync)", style="dim")
    return line
