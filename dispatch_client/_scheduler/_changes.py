"""Running-state changes: what a receiver is told when dispatches start, stop or change.

A `_View` turns the scheduler's per-dispatch run transitions into the changes of one
receiver: filtered by type, grouped by the merge strategy, with the dispatch in force
for each group. Pure bookkeeping, no I/O and no awaiting, so it is exact and testable.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import Any

import attrs

from dispatch_client._types import Dispatch

__all__ = ["ChangeKind", "Merge", "Run", "RunningChange", "Transition"]


class Merge(enum.Enum):
    """How a running-state receiver groups dispatches that run at the same time.

    Overlapping dispatches of one group make one stretch of "running": the receiver is
    told `STARTED` when the first of them starts, `STOPPED` when the last one stops, and
    `RECONFIGURED` whenever the dispatch *in force* changes in between. The dispatch in
    force is the running member whose current run started last (ties: the one updated
    last, then the higher id), so when a later dispatch ends while an earlier one still
    runs, the earlier one's payload is in force again.
    """

    NONE = "none"
    """Every dispatch on its own (frequenz-dispatch without a merge strategy)."""
    BY_TYPE = "by_type"
    """One group per dispatch type (frequenz-dispatch `MergeByType`)."""
    BY_TYPE_AND_TARGET = "by_type_and_target"
    """One group per type and target (frequenz-dispatch `MergeByTypeTarget`)."""

    def key(self, dispatch: Dispatch) -> Hashable:
        """Return the group of `dispatch` under this strategy."""
        if self is Merge.NONE:
            return dispatch.id
        if self is Merge.BY_TYPE:
            return dispatch.type
        return (dispatch.type, dispatch.target)


class ChangeKind(enum.Enum):
    """What happened to a group of running dispatches."""

    STARTED = "started"
    """It was not running and now is."""
    STOPPED = "stopped"
    """It was running and now is not (its runs ended, or it was deactivated, changed or
    deleted)."""
    RECONFIGURED = "reconfigured"
    """It keeps running, but the dispatch in force is another one or changed its type,
    target, duration, dry-run flag or payload."""


@attrs.frozen(kw_only=True)
class RunningChange:
    """A change of running state, as a running-state receiver gets it."""

    kind: ChangeKind
    """Started, stopped or reconfigured."""
    dispatch: Dispatch
    """The dispatch in force now; for `STOPPED`, the one that was in force until now."""
    running: tuple[Dispatch, ...]
    """Every dispatch of the group running now, by id (empty for `STOPPED`)."""
    merge: Merge
    """The receiver's merge strategy, which decided the group."""
    at: datetime
    """The scheduler's time when it noticed (a timer's wake-up or the event's arrival)."""

    @property
    def group(self) -> Hashable:
        """The group: the dispatch id, its type, or its (type, target), by `merge`."""
        return self.merge.key(self.dispatch)


@attrs.frozen
class Run:
    """A dispatch running now, with the start of its current run."""

    dispatch: Dispatch
    start: datetime
    """The start of the current run (UTC); for a dispatch without duration, its first."""


@attrs.frozen
class Transition:
    """One dispatch's running state before and after a scheduler step."""

    dispatch_id: int
    old: Run | None
    new: Run | None


def _in_force_order(run: Run) -> tuple[datetime, datetime, int]:
    return (run.start, run.dispatch.update_time, run.dispatch.id)


def _shape(dispatch: Dispatch) -> tuple[Any, ...]:
    """The fields whose change reconfigures a running group (as frequenz-dispatch)."""
    return (
        dispatch.id,
        dispatch.type,
        dispatch.target,
        dispatch.duration,
        dispatch.dry_run,
        dispatch.payload,
    )


class View:
    """The running groups one receiver (or actor manager) sees, and their changes."""

    __slots__ = ("_groups", "_in_force", "merge", "type")

    def __init__(self, type: str | None, merge: Merge) -> None:
        self.type = type
        self.merge = merge
        self._groups: dict[Hashable, dict[int, Run]] = {}
        self._in_force: dict[Hashable, Dispatch] = {}

    def _matches(self, run: Run | None) -> Run | None:
        if run is None or (self.type is not None and run.dispatch.type != self.type):
            return None
        return run

    def apply(self, transitions: Iterable[Transition], at: datetime) -> list[RunningChange]:
        """Apply one step's transitions; return the changes, starts before stops.

        At one instant a start comes before a stop (as in frequenz-dispatch), so an
        actor handed over from one group to another never sees both stopped at once.
        """
        before: dict[Hashable, Dispatch | None] = {}
        for transition in transitions:
            old = self._matches(transition.old)
            new = self._matches(transition.new)
            if old is None and new is None:
                continue
            for run in (old, new):
                if run is not None:
                    key = self.merge.key(run.dispatch)
                    if key not in before:
                        before[key] = self._in_force.get(key)
            if old is not None:
                key = self.merge.key(old.dispatch)
                members = self._groups.get(key)
                if members is not None:
                    members.pop(transition.dispatch_id, None)
            if new is not None:
                self._groups.setdefault(self.merge.key(new.dispatch), {})[
                    transition.dispatch_id
                ] = new
        started: list[RunningChange] = []
        reconfigured: list[RunningChange] = []
        stopped: list[RunningChange] = []
        for key, previous in before.items():
            members = self._groups.get(key)
            current: Dispatch | None = None
            if members:
                current = max(members.values(), key=_in_force_order).dispatch
                self._in_force[key] = current
            else:
                self._groups.pop(key, None)
                self._in_force.pop(key, None)
            if previous is None and current is not None:
                started.append(self._change(ChangeKind.STARTED, current, key, at))
            elif previous is not None and current is None:
                stopped.append(self._change(ChangeKind.STOPPED, previous, key, at))
            elif (
                previous is not None and current is not None and _shape(previous) != _shape(current)
            ):
                reconfigured.append(self._change(ChangeKind.RECONFIGURED, current, key, at))
        return started + reconfigured + stopped

    def current(self, at: datetime) -> list[RunningChange]:
        """A `STARTED` change for every group running now (for a receiver that joins)."""
        return [
            self._change(ChangeKind.STARTED, dispatch, key, at)
            for key, dispatch in self._in_force.items()
        ]

    def _change(
        self, kind: ChangeKind, dispatch: Dispatch, key: Hashable, at: datetime
    ) -> RunningChange:
        members = self._groups.get(key, {}) if kind is not ChangeKind.STOPPED else {}
        running = tuple(run.dispatch for _, run in sorted(members.items()))
        return RunningChange(kind=kind, dispatch=dispatch, running=running, merge=self.merge, at=at)
