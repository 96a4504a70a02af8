"""Act on dispatches: start, stop and reconfigure work as a microgrid's dispatches run.

Built on the public `Client` and its stream only, like any user's program.
"""

from __future__ import annotations

from ._actors import Actor, ActorHooks, DispatchInfo
from ._changes import ChangeKind, Merge, RunningChange
from ._clock import Clock, WallClock
from ._core import Scheduler
from ._receiver import ScheduleReceiver

__all__ = [
    "Actor",
    "ActorHooks",
    "ChangeKind",
    "Clock",
    "DispatchInfo",
    "Merge",
    "RunningChange",
    "ScheduleReceiver",
    "Scheduler",
    "WallClock",
]
