"""Actor management: run the user's work while the dispatches of a type run.

One supervisor task per running group. It starts the actor when the group starts,
restarts (function) or reconfigures (hooks) it when the dispatch in force changes,
cancels (function) or stops (hooks) it when the group stops, and restarts it after a
pause when it fails while its group still runs. Supervisors live in the scheduler's task
group, so none outlives the scheduler; nothing they do can fail that task group.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, TypeAlias, runtime_checkable

import anyio
import anyio.abc
import attrs

from dispatch_client._retry import RetryPolicy
from dispatch_client._types import Dispatch, TargetComponents

from ._changes import ChangeKind, RunningChange, Transition, View
from ._clock import Clock

__all__ = ["Actor", "ActorHooks", "ActorManager", "DispatchInfo"]

_log = logging.getLogger("dispatch_client.scheduler")

DEFAULT_ACTOR_RETRY: Final = RetryPolicy(attempts=None, initial=0.5, maximum=30.0)
"""Pauses between restarts of a failing actor: 0.5 s doubling to 30 s, without limit."""

STOP_TIMEOUT: Final = 10.0
"""Seconds a hooks actor's `stop()` may take when its scheduler closes, before it is cancelled."""


@attrs.frozen(kw_only=True)
class DispatchInfo:
    """What an actor is told to do: frequenz-dispatch's `DispatchInfo`, plus the dispatch."""

    target: TargetComponents
    """The components of the dispatch in force."""
    dry_run: bool
    """Whether the actor should only log what it would do."""
    options: dict[str, Any]
    """The payload of the dispatch in force."""
    dispatch: Dispatch
    """The dispatch in force."""
    running: tuple[Dispatch, ...]
    """Every dispatch of the group running now (more than one when merged)."""

    @classmethod
    def from_change(cls, change: RunningChange) -> DispatchInfo:
        """Build the info from a running-state change."""
        dispatch = change.dispatch
        return cls(
            target=dispatch.target,
            dry_run=dispatch.dry_run,
            options=dispatch.payload,
            dispatch=dispatch,
            running=change.running,
        )


@runtime_checkable
class ActorHooks(Protocol):
    """An actor as an object: called when its group starts, changes and stops."""

    async def start(self, info: DispatchInfo) -> None:
        """Start the work (the group started)."""
        ...

    async def reconfigure(self, info: DispatchInfo) -> None:
        """Apply a new dispatch in force (the group keeps running)."""
        ...

    async def stop(self, info: DispatchInfo) -> None:
        """Stop the work (the group stopped, or the scheduler closes)."""
        ...


ActorFunction: TypeAlias = Callable[[DispatchInfo], Awaitable[None]]
Actor: TypeAlias = ActorFunction | ActorHooks
"""An async function run while its group runs, or an `ActorHooks` object."""


class _Supervisor:
    """Runs one group's actor; `update()` and `stop()` steer it from the scheduler."""

    def __init__(self, actor: Actor, info: DispatchInfo, retry: RetryPolicy, clock: Clock) -> None:
        self._actor = actor
        self.info = info
        self._retry = retry
        self._clock = clock
        self.stopping = False
        self._changed = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self.done = anyio.Event()
        self.starts = 0

    def update(self, info: DispatchInfo) -> None:
        self.info = info
        if not isinstance(self._actor, ActorHooks) and self._scope is not None:
            self._scope.cancel()  # a function actor restarts with the new info
        self._changed.set()

    def stop(self) -> None:
        self.stopping = True
        if self._scope is not None:
            self._scope.cancel()
        self._changed.set()

    async def run(self) -> None:
        try:
            if isinstance(self._actor, ActorHooks):
                await self._run_hooks(self._actor)
            else:
                await self._run_function(self._actor)
        except Exception as exc:  # a bug here must not fail the scheduler's task group
            _log.error("an actor supervisor failed", exc_info=exc)
        finally:
            self.done.set()

    async def _pause(self, pauses: Iterator[float], changed: anyio.Event) -> None:
        """Wait out a retry pause (on the scheduler's clock) unless a change comes first."""
        delay = next(pauses, None)
        if delay is None:
            _log.error("an actor keeps failing; it stays stopped until its dispatch changes")
            await changed.wait()
            return
        async with anyio.create_task_group() as tasks:

            async def wake_on_change() -> None:
                await changed.wait()
                tasks.cancel_scope.cancel()

            tasks.start_soon(wake_on_change)
            await self._clock.sleep_until(self._clock.now() + timedelta(seconds=delay))
            tasks.cancel_scope.cancel()

    async def _run_function(self, actor: ActorFunction) -> None:
        pauses: Iterator[float] | None = None
        while not self.stopping:
            changed = self._changed = anyio.Event()
            info = self.info
            failed = False
            with anyio.CancelScope() as scope:
                self._scope = scope
                self.starts += 1
                try:
                    await actor(info)
                except Exception as exc:
                    failed = True
                    _log.warning(
                        "the actor for dispatch %d failed: %r", info.dispatch.id, exc, exc_info=exc
                    )
            self._scope = None
            if self.stopping:
                return
            if scope.cancelled_caught:
                pauses = None  # restarted for a new dispatch in force
            elif failed:
                if pauses is None:
                    pauses = self._retry.pauses()
                await self._pause(pauses, changed)
            else:
                await changed.wait()  # it finished its work: wait for news

    async def _run_hooks(self, actor: ActorHooks) -> None:
        pauses: Iterator[float] | None = None
        applied: DispatchInfo | None = None
        begun: DispatchInfo | None = None  # a start() was called (it may not have ended)
        try:
            while not self.stopping:
                changed = self._changed = anyio.Event()
                info = self.info
                with anyio.CancelScope() as scope:
                    self._scope = scope
                    try:
                        if applied is None:
                            self.starts += 1
                            begun = info
                            await actor.start(info)
                            applied = info
                        elif applied != info:
                            await actor.reconfigure(info)
                            applied = info
                        pauses = None
                    except Exception as exc:
                        _log.warning(
                            "the actor for dispatch %d failed: %r",
                            info.dispatch.id,
                            exc,
                            exc_info=exc,
                        )
                        if pauses is None:
                            pauses = self._retry.pauses()
                        self._scope = None
                        await self._pause(pauses, changed)
                        continue
                self._scope = None
                if not self.stopping and not scope.cancelled_caught:
                    await changed.wait()
        finally:
            if begun is not None:
                with anyio.move_on_after(STOP_TIMEOUT, shield=True):
                    try:
                        await actor.stop(self.info)
                    except Exception as exc:
                        _log.warning("stopping an actor failed: %r", exc, exc_info=exc)


@attrs.define
class _Managed:
    actor: Actor
    view: View
    retry: RetryPolicy
    groups: dict[Hashable, _Supervisor] = attrs.field(factory=dict)


def _check_actor(actor: object) -> Actor:
    if isinstance(actor, ActorHooks) or callable(actor):
        return actor
    raise TypeError(
        "actor must be an async function taking a DispatchInfo, or an object with async "
        f"start/reconfigure/stop methods; got {type(actor).__name__}: {actor!r}"
    )


class ActorManager:
    """The managed types of one scheduler and their supervisors."""

    def __init__(self, tasks: anyio.abc.TaskGroup, clock: Clock) -> None:
        self._tasks = tasks
        self._clock = clock
        self._managed: dict[str, _Managed] = {}

    def is_managed(self, dispatch_type: str) -> bool:
        return dispatch_type in self._managed

    def manage(
        self, dispatch_type: str, actor: object, view: View, retry: RetryPolicy | None
    ) -> None:
        checked = _check_actor(actor)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
        if dispatch_type in self._managed:
            raise ValueError(f"dispatch type {dispatch_type!r} is managed already")
        managed = _Managed(checked, view, retry or DEFAULT_ACTOR_RETRY)
        self._managed[dispatch_type] = managed
        for change in view.current(self._clock.now()):
            self._route(managed, change)

    def apply(self, transitions: list[Transition], at: datetime) -> None:
        for managed in self._managed.values():
            for change in managed.view.apply(transitions, at):
                self._route(managed, change)

    def _route(self, managed: _Managed, change: RunningChange) -> None:
        key = change.group
        supervisor = managed.groups.get(key)
        if change.kind is ChangeKind.STOPPED:
            if supervisor is not None:
                del managed.groups[key]
                supervisor.stop()
            return
        info = DispatchInfo.from_change(change)
        if supervisor is None:
            supervisor = _Supervisor(managed.actor, info, managed.retry, self._clock)
            managed.groups[key] = supervisor
            self._tasks.start_soon(supervisor.run)
        else:
            supervisor.update(info)

    async def stop_managing(self, dispatch_type: str) -> None:
        managed = self._managed.pop(dispatch_type)
        supervisors = list(managed.groups.values())
        managed.groups.clear()
        for supervisor in supervisors:
            supervisor.stop()
        for supervisor in supervisors:
            await supervisor.done.wait()

    async def aclose(self) -> None:
        for dispatch_type in list(self._managed):
            await self.stop_managing(dispatch_type)
