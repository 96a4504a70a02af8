"""The public API of `dispatch_client`: exactly these names, sorted, all resolvable."""

from __future__ import annotations

import dispatch_client

EXPECTED = [
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


def test_all_is_pinned() -> None:
    """`__all__` lists exactly the public names we mean to support."""
    assert dispatch_client.__all__ == EXPECTED


def test_all_is_sorted() -> None:
    """`__all__` is kept sorted so additions show up in the right place in a diff."""
    assert dispatch_client.__all__ == sorted(dispatch_client.__all__)


def test_every_name_resolves() -> None:
    """Every name in `__all__` is an attribute of the package."""
    for name in dispatch_client.__all__:
        assert getattr(dispatch_client, name) is not None, name


def test_no_public_name_is_left_out() -> None:
    """Every public class the package namespace holds is listed in `__all__`."""
    public = {
        name
        for name, value in vars(dispatch_client).items()
        if not name.startswith("_") and isinstance(value, type)
    }
    assert public <= set(dispatch_client.__all__)
