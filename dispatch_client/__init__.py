"""A pure-Python client for the Frequenz Dispatch API, on asyncio and trio."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from transports import (
    Aborted,
    AlreadyExists,
    Cancelled,
    ConnectError,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    GrpcError,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ProtocolError,
    ReplayMismatch,
    ResourceExhausted,
    RpcError,
    StatusCode,
    TransportError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
)

from ._client import Client, DispatchApiClient, DispatchPage, TransportName
from ._errors import DecodeError
from ._requests import check_payload
from ._retry import RetryPolicy
from ._stream import (
    DispatchReceiver,
    ReceiverStoppedError,
    StreamConnected,
    StreamNotice,
    StreamReconnecting,
)
from ._types import (
    BatteryType,
    ComponentCategory,
    Dispatch,
    DispatchEvent,
    ElectricalComponentCategory,
    EndCriteria,
    EvChargerType,
    Event,
    Frequency,
    InverterType,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetCategory,
    TargetComponents,
    TargetIds,
    Weekday,
)

if TYPE_CHECKING:
    from ._channels import as_channels_receiver
    from ._scheduler import (
        Actor,
        ActorHooks,
        ChangeKind,
        Clock,
        DispatchInfo,
        Merge,
        RunningChange,
        Scheduler,
        ScheduleReceiver,
        WallClock,
    )

__all__ = [
    "Aborted",
    "Actor",
    "ActorHooks",
    "AlreadyExists",
    "BatteryType",
    "Cancelled",
    "ChangeKind",
    "Client",
    "Clock",
    "ComponentCategory",
    "ConnectError",
    "DataLoss",
    "DeadlineExceeded",
    "DecodeError",
    "Dispatch",
    "DispatchApiClient",
    "DispatchEvent",
    "DispatchInfo",
    "DispatchPage",
    "DispatchReceiver",
    "ElectricalComponentCategory",
    "EndCriteria",
    "EvChargerType",
    "Event",
    "FailedPrecondition",
    "Frequency",
    "GrpcError",
    "Internal",
    "InvalidArgument",
    "InverterType",
    "Merge",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ProtocolError",
    "ReceiverStoppedError",
    "RecurrenceRule",
    "ReplayMismatch",
    "ResourceExhausted",
    "RetryPolicy",
    "RpcError",
    "RunningChange",
    "ScheduleReceiver",
    "Scheduler",
    "SortField",
    "SortOrder",
    "StatusCode",
    "StreamConnected",
    "StreamNotice",
    "StreamReconnecting",
    "TargetCategories",
    "TargetCategory",
    "TargetComponents",
    "TargetIds",
    "TransportError",
    "TransportName",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "WallClock",
    "Weekday",
    "as_channels_receiver",
    "check_payload",
]

# A program that only makes calls should not pay for the scheduler (its actors, clock and
# change tracking) nor for the frequenz-channels adapter: both load on first use.
_LAZY = {
    "as_channels_receiver": "._channels",
    "Actor": "._scheduler",
    "ActorHooks": "._scheduler",
    "ChangeKind": "._scheduler",
    "Clock": "._scheduler",
    "DispatchInfo": "._scheduler",
    "Merge": "._scheduler",
    "RunningChange": "._scheduler",
    "ScheduleReceiver": "._scheduler",
    "Scheduler": "._scheduler",
    "WallClock": "._scheduler",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
