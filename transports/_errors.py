"""The one error tree of every transport.

```
GrpcError                       base of everything raised for a call
├── TransportError              no gRPC status was obtained
│   ├── ConnectError            could not connect, or the connection was lost
│   └── ProtocolError           the peer broke the gRPC or HTTP/2 protocol
├── RpcError                    the call ended with a non-OK status
│   ├── Cancelled               ├── NotFound             ├── Unimplemented
│   ├── Unknown                 ├── AlreadyExists        ├── Internal
│   ├── InvalidArgument         ├── PermissionDenied     ├── Unavailable
│   ├── DeadlineExceeded        ├── ResourceExhausted    ├── DataLoss
│   ├── FailedPrecondition      ├── Aborted              └── Unauthenticated
│   └── OutOfRange
└── ReplayMismatch              a replayed call has no recording
```

Every error has `not_processed`: True only when the server provably did not process
the call (the connection was never established, the request never left, a refused
stream, or a GOAWAY whose last stream id is below the call's), so repeating even a
call that is not idempotent cannot apply it twice. False means "may have been
processed" (or the server answered).

Caller mistakes (a malformed method path, bad metadata, a negative timeout) are not
part of this tree: they raise `ValueError` or `TypeError` before any I/O.
"""

from __future__ import annotations

from typing import ClassVar, Self

from ._base import Metadata
from ._status import StatusCode

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "ConnectError",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "GrpcError",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ProtocolError",
    "ReplayMismatch",
    "ResourceExhausted",
    "RpcError",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "error_for_status",
]


class GrpcError(Exception):
    """Base class of every error a transport raises for a call."""

    retryable: ClassVar[bool] = False
    """Whether repeating the same call later may succeed."""

    not_processed: bool = False
    """Whether the server provably did not process the call (see the module docstring).

    Set on the instance by the transport that raises the error; repeating such a call is
    safe whatever the method does."""

    def unprocessed(self) -> Self:
        """Mark this error as one for a call the server provably did not process.

        Returns:
            The error itself, for `raise error.unprocessed()`.
        """
        self.not_processed = True
        return self


class TransportError(GrpcError):
    """The call got no gRPC status: the connection or the protocol failed."""


class ConnectError(TransportError):
    """Could not connect (DNS, TCP, TLS), or the connection was lost mid-call."""

    retryable = True


class ProtocolError(TransportError):
    """The peer sent something that breaks the gRPC or HTTP/2 protocol."""


class ReplayMismatch(GrpcError):
    """A replayed call matches no recorded interaction."""


class RpcError(GrpcError):
    """A call that ended with a non-OK gRPC status.

    Attributes:
        status: The status code.
        message: The status message (`grpc-message`), already percent-decoded.
        details: The raw `grpc-status-details-bin` bytes (a serialized
            `google.rpc.Status`), or None when the server sent none.
        trailing_metadata: The trailing metadata as (name, value) pairs; values
            of `-bin` names are bytes.
    """

    status_code: ClassVar[StatusCode | None] = None

    def __init__(
        self,
        status: StatusCode,
        message: str = "",
        details: bytes | None = None,
        trailing_metadata: Metadata = (),
    ) -> None:
        self.status = StatusCode(status)
        self.message = message
        self.details = details
        self.trailing_metadata: tuple[tuple[str, str | bytes], ...] = tuple(trailing_metadata)
        super().__init__(status, message)

    def __str__(self) -> str:
        if self.message:
            return f"{self.status.name}: {self.message}"
        return self.status.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status.name}, message={self.message!r})"

    def with_context(self, context: str) -> RpcError:
        """Return a copy of this error whose message starts with `context`.

        Args:
            context: What was being done, e.g. "get dispatch 7 of microgrid 1".

        Returns:
            An error of the same class and status, with the original message kept
            after the context.
        """
        message = f"{context}: {self.message}" if self.message else context
        copy = error_for_status(self.status, message, self.details, self.trailing_metadata)
        copy.not_processed = self.not_processed
        copy.__cause__ = self
        return copy


class _FixedStatusError(RpcError):
    """An `RpcError` whose class fixes the status; built from a message alone."""

    def __init__(
        self,
        message: str = "",
        details: bytes | None = None,
        trailing_metadata: Metadata = (),
    ) -> None:
        assert self.status_code is not None
        super().__init__(self.status_code, message, details, trailing_metadata)


class Cancelled(_FixedStatusError):
    """The call was cancelled."""

    status_code = StatusCode.CANCELLED


class Unknown(_FixedStatusError):
    """The server reported an error it could not classify."""

    status_code = StatusCode.UNKNOWN


class InvalidArgument(_FixedStatusError):
    """The server rejected the request as invalid."""

    status_code = StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(_FixedStatusError):
    """The deadline passed, locally or on the server."""

    status_code = StatusCode.DEADLINE_EXCEEDED
    retryable = True


class NotFound(_FixedStatusError):
    """The requested entity does not exist."""

    status_code = StatusCode.NOT_FOUND


class AlreadyExists(_FixedStatusError):
    """The entity exists already."""

    status_code = StatusCode.ALREADY_EXISTS


class PermissionDenied(_FixedStatusError):
    """The caller is known but may not do this."""

    status_code = StatusCode.PERMISSION_DENIED


class ResourceExhausted(_FixedStatusError):
    """A quota or a size limit was exceeded."""

    status_code = StatusCode.RESOURCE_EXHAUSTED
    retryable = True


class FailedPrecondition(_FixedStatusError):
    """The system is not in a state that allows this."""

    status_code = StatusCode.FAILED_PRECONDITION


class Aborted(_FixedStatusError):
    """The operation was aborted by a conflict."""

    status_code = StatusCode.ABORTED
    retryable = True


class OutOfRange(_FixedStatusError):
    """The operation went past a valid range."""

    status_code = StatusCode.OUT_OF_RANGE


class Unimplemented(_FixedStatusError):
    """The server does not implement the method."""

    status_code = StatusCode.UNIMPLEMENTED


class Internal(_FixedStatusError):
    """The server hit an internal error."""

    status_code = StatusCode.INTERNAL


class Unavailable(_FixedStatusError):
    """The service is unavailable for now; a retry may succeed."""

    status_code = StatusCode.UNAVAILABLE
    retryable = True


class DataLoss(_FixedStatusError):
    """Unrecoverable data loss or corruption."""

    status_code = StatusCode.DATA_LOSS


class Unauthenticated(_FixedStatusError):
    """The request has no valid credentials."""

    status_code = StatusCode.UNAUTHENTICATED


_BY_STATUS: dict[StatusCode, type[_FixedStatusError]] = {
    cls.status_code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
    if cls.status_code is not None
}


def error_for_status(
    status: StatusCode | int,
    message: str = "",
    details: bytes | None = None,
    trailing_metadata: Metadata = (),
) -> RpcError:
    """Build the `RpcError` subclass for a non-OK status.

    Args:
        status: The status code; a number outside the 17 known codes becomes UNKNOWN,
            with the number kept in the message.
        message: The status message.
        details: Raw `grpc-status-details-bin` bytes, if any.
        trailing_metadata: The trailing metadata.

    Returns:
        The error, ready to raise.

    Raises:
        ValueError: For `StatusCode.OK`, which is no error.
    """
    try:
        code = StatusCode(status)
    except ValueError:
        message = f"unknown status code {status}" + (f": {message}" if message else "")
        code = StatusCode.UNKNOWN
    if code is StatusCode.OK:
        raise ValueError("status OK is not an error")
    return _BY_STATUS[code](message, details, trailing_metadata)
