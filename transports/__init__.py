"""Generic gRPC client transports: method paths and bytes in, bytes out.

This package knows nothing about dispatches; `dispatch_client` builds on it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._base import BaseTransport, Metadata, ResponseStream, Transport
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
from ._status import StatusCode

if TYPE_CHECKING:
    from ._cassette import (
        CassetteError,
        Interaction,
        MessageRenderer,
        RecordMode,
        SecretInCassette,
    )
    from ._grpclib import GrpclibTransport
    from ._h2 import H2Transport
    from ._memory import Handler, HandlerResult, MemoryTransport
    from ._recording import RecordingTransport
    from ._replay import ReplayTransport
    from ._url import ChannelOptions, parse_url

__all__ = [
    "Aborted",
    "AlreadyExists",
    "BaseTransport",
    "Cancelled",
    "CassetteError",
    "ChannelOptions",
    "ConnectError",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "GrpcError",
    "GrpclibTransport",
    "H2Transport",
    "Handler",
    "HandlerResult",
    "Interaction",
    "Internal",
    "InvalidArgument",
    "MemoryTransport",
    "MessageRenderer",
    "Metadata",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ProtocolError",
    "RecordMode",
    "RecordingTransport",
    "ReplayMismatch",
    "ReplayTransport",
    "ResourceExhausted",
    "ResponseStream",
    "RpcError",
    "SecretInCassette",
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

# The concrete transports are imported on first use: each pulls in its own network stack
# (grpclib and asyncio, or h2), and a program needs one of them at most.
_LAZY = {
    # URL parsing and TLS options (an attrs class) load with the first URL parsed.
    "ChannelOptions": "._url",
    "parse_url": "._url",
    "GrpclibTransport": "._grpclib",
    "H2Transport": "._h2",
    "MemoryTransport": "._memory",
    "Handler": "._memory",
    "HandlerResult": "._memory",
    # The cassette format and the transports built on it are for tests and tools.
    "CassetteError": "._cassette",
    "Interaction": "._cassette",
    "MessageRenderer": "._cassette",
    "RecordMode": "._cassette",
    "SecretInCassette": "._cassette",
    "RecordingTransport": "._recording",
    "ReplayTransport": "._replay",
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
