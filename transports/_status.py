"""gRPC status codes."""

from __future__ import annotations

import enum


class StatusCode(enum.IntEnum):
    """The 17 gRPC status codes, numbered as on the wire."""

    OK = 0
    """Not an error: the call succeeded."""
    CANCELLED = 1
    """The call was cancelled, usually by the caller."""
    UNKNOWN = 2
    """An error the server could not classify."""
    INVALID_ARGUMENT = 3
    """The request is invalid whatever the state of the system."""
    DEADLINE_EXCEEDED = 4
    """The deadline passed before the call completed."""
    NOT_FOUND = 5
    """A requested entity does not exist."""
    ALREADY_EXISTS = 6
    """The entity a client tried to create exists already."""
    PERMISSION_DENIED = 7
    """The caller is known but may not do this."""
    RESOURCE_EXHAUSTED = 8
    """A quota or a size limit was exceeded."""
    FAILED_PRECONDITION = 9
    """The system is not in a state that allows the operation."""
    ABORTED = 10
    """The operation was aborted, typically by a concurrency conflict."""
    OUT_OF_RANGE = 11
    """The operation went past a valid range."""
    UNIMPLEMENTED = 12
    """The server does not implement the method."""
    INTERNAL = 13
    """An invariant of the server or the protocol is broken."""
    UNAVAILABLE = 14
    """The service is unavailable for now; retrying may help."""
    DATA_LOSS = 15
    """Unrecoverable data loss or corruption."""
    UNAUTHENTICATED = 16
    """The request has no valid credentials."""
