"""Run one example program and print, as JSON, what it printed, in a client-neutral form.

`python -m tests.migration_runner URL KEY < example.py` runs the example (read from
stdin) with its placeholder URL and key replaced by URL and KEY, and with `print`
collecting its arguments. Each argument is normalised by its shape, so the official
client's objects and ours compare equal when they hold the same data: a dispatch
becomes a dict of its fields (ids as ints, enums as names, targets as sorted lists, no
server-side timestamps), an event a pair of its kind and dispatch. The example runs in
a process of its own because the official client's grpcio channel is left open by
examples that never close their client.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

PLACEHOLDER_URLS = (
    "grpc://dispatch.example.com",
    "grpc://dispatch.url.goes.here.example.com",
)
"""Server URLs the examples use; replaced by the fake server's."""

PLACEHOLDER_KEYS = ("your_api_key", "my-key")
"""API keys the examples use; replaced by the fake server's."""


def substitute(source: str, url: str, key: str) -> str:
    """Point an example at the fake server: its placeholder URL and key replaced."""
    for placeholder in PLACEHOLDER_URLS:
        source = source.replace(f'"{placeholder}"', json.dumps(url))
    for placeholder in PLACEHOLDER_KEYS:
        source = source.replace(f'"{placeholder}"', json.dumps(key))
    return source


def _rule(rule: Any) -> Any:
    """A recurrence rule as a dict; None for no recurrence (official: an empty rule)."""
    if rule is None or rule.frequency.name == "UNSPECIFIED":
        return None
    end = rule.end_criteria
    return {
        "frequency": rule.frequency.name,
        "interval": rule.interval,
        "end": None if end is None else [end.count, normal(end.until)],
        "byminutes": list(rule.byminutes),
        "byhours": list(rule.byhours),
        "byweekdays": [day.name for day in rule.byweekdays],
        "bymonthdays": list(rule.bymonthdays),
        "bymonths": list(rule.bymonths),
    }


def _target(target: Iterable[Any]) -> list[Any]:
    """Target ids or categories as a sorted list (ids as ints, categories by name)."""
    return sorted((normal(getattr(member, "target", member)) for member in target), key=str)


def normal(value: Any) -> Any:
    """A JSON-able, client-neutral form of `value` (see the module docstring)."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, int):
        return value
    if hasattr(value, "str_prefix"):  # an official typed id
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if hasattr(value, "event") and hasattr(value, "dispatch"):
        return {"event": normal(value.event), "dispatch": normal(value.dispatch)}
    if hasattr(value, "dry_run") and hasattr(value, "payload"):
        return {
            "id": normal(value.id),
            "type": value.type,
            "start_time": normal(value.start_time),
            "duration": normal(value.duration),
            "target": _target(value.target),
            "active": value.active,
            "dry_run": value.dry_run,
            "payload": value.payload,
            "recurrence": _rule(value.recurrence),
        }
    if isinstance(value, frozenset):
        return _target(value)
    if isinstance(value, list | tuple):
        return [normal(item) for item in value]
    if isinstance(value, dict):
        return {str(k): normal(v) for k, v in value.items()}
    raise TypeError(f"the runner cannot compare a {type(value).__name__}: {value!r}")


def main() -> None:
    """Run the example on stdin against the server in argv; print its results as JSON."""
    url, key = sys.argv[1], sys.argv[2]
    source = substitute(sys.stdin.read(), url, key)
    printed: list[Any] = []

    def collect(*values: Any, **_: Any) -> None:
        printed.append([normal(value) for value in values])

    namespace: dict[str, Any] = {"__name__": "__main__", "print": collect}
    exec(compile(source, "<example>", "exec"), namespace)
    sys.stdout.write(json.dumps(printed) + "\n")


if __name__ == "__main__":
    main()
