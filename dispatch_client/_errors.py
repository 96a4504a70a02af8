"""Errors of `dispatch_client` itself; the network's errors are the `transports` tree.

Kept apart from the codec so that naming an error does not import the generated
messages.
"""

from __future__ import annotations

__all__ = ["DecodeError"]


class DecodeError(ValueError):
    """Received bytes are not a valid message of the expected type.

    Raised for bytes that do not parse and for messages whose content the domain types
    reject (a naive or out-of-range time, an inconsistent target, a bad recurrence, ...).
    The original problem is chained as `__cause__`.
    """
