"""Generic gRPC client transports: method paths and bytes in, bytes out.

This package knows nothing about dispatches; `dispatch_client` builds on it.
"""

from __future__ import annotations

from ._base import BaseTransport, Metadata, Transport
from ._errors import (
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
    TransportError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    error_for_status,
)
from ._grpclib import GrpclibTransport
from ._h2 import H2Transport
from ._memory import MemoryTransport
from ._status import StatusCode
from ._url import ChannelOptions, parse_url

__all__ = [
    "Aborted",
    "AlreadyExists",
    "BaseTransport",
    "Cancelled",
    "ChannelOptions",
    "ConnectError",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "GrpcError",
    "GrpclibTransport",
    "H2Transport",
    "Internal",
    "InvalidArgument",
    "MemoryTransport",
    "Metadata",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ProtocolError",
    "ReplayMismatch",
    "ResourceExhausted",
    "RpcError",
    "StatusCode",
    "Transport",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "error_for_status",
    "parse_url",
]
