"""`dispatch-client watch`: print starts, stops and reconfigurations as dispatches run.

The command's logic, on the library's public API (`Scheduler`), kept out of the command
module so that module stays a list of commands.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import anyio
from rich.text import Text

from dispatch_client import ChangeKind, Client, GrpcError, Merge, RunningChange, Scheduler

from ._input import format_target
from ._output import dispatch_json, json_line, local_time

__all__ = ["MERGES", "change_json", "change_text", "watch"]

MERGES = {"none": Merge.NONE, "type": Merge.BY_TYPE, "type-target": Merge.BY_TYPE_AND_TARGET}
"""The `--merge` choices."""

_STYLES = {
    ChangeKind.STARTED: "green",
    ChangeKind.STOPPED: "red",
    ChangeKind.RECONFIGURED: "yellow",
}


def change_json(change: RunningChange) -> dict[str, Any]:
    """One running-state change as a JSON object."""
    return {
        "change": change.kind.name,
        "at": change.at.isoformat(),
        "dispatch": dispatch_json(change.dispatch),
        "running": [dispatch.id for dispatch in change.running],
    }


def change_text(change: RunningChange) -> Text:
    """One running-state change as a line: when, what, and the dispatch in force."""
    dispatch = change.dispatch
    line = Text(local_time(change.at, short=True) + " ")
    line.append(f"{change.kind.name:<12}", style=_STYLES[change.kind])
    line.append(f" #{dispatch.id} {dispatch.type}", style="bold")
    line.append(f"  target {format_target(dispatch.target)}")
    if dispatch.payload:
        line.append(f", payload {json_line(dispatch.payload)}")
    if dispatch.dry_run:
        line.append(", dry run")
    if len(change.running) > 1:
        others = ", ".join(f"#{d.id}" for d in change.running if d.id != dispatch.id)
        line.append(f"  (also running: {others})", style="dim")
    return line


async def watch(
    client: Client,
    microgrid_id: int,
    *,
    dispatch_type: str | None,
    merge: Merge,
    count: int | None,
    emit: Callable[[RunningChange], None],
    on_signal: Callable[[anyio.CancelScope], Any],
) -> None:
    """Follow a microgrid with a scheduler and hand each change to `emit`.

    Runs until `count` changes were emitted, or `on_signal` cancels it.

    Raises:
        GrpcError: The error that ended the scheduler (outside any task group).
    """
    failure: list[GrpcError] = []
    async with client, anyio.create_task_group() as tasks:
        tasks.start_soon(on_signal, tasks.cancel_scope)
        try:
            async with Scheduler(client, microgrid_id) as scheduler:
                seen = 0
                async with scheduler.running_state_changes(dispatch_type, merge=merge) as changes:
                    async for change in changes:
                        emit(change)
                        sys.stdout.flush()
                        seen += 1
                        if count is not None and seen >= count:
                            break
        except GrpcError as exc:
            failure.append(exc)
        tasks.cancel_scope.cancel()
    if failure:
        raise failure[0]
