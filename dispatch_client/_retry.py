"""Retry policy: bounded exponential backoff with jitter, for calls safe to repeat."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs

from transports import ConnectError, GrpcError, Unavailable

__all__ = ["RetryPolicy", "may_retry"]


def may_retry(error: GrpcError, *, idempotent: bool) -> bool:
    """Whether a failed call may be repeated: the one retry decision of the client.

    Only `Unavailable` and `ConnectError` are worth repeating (the server or the network
    may be back in a moment). A call the server provably did not process
    (`error.not_processed`: the connection was never established, the request never
    left, REFUSED_STREAM, a GOAWAY below its stream) is repeated whatever it does; one
    that may have been processed only when repeating it is harmless (`idempotent`).

    Args:
        error: What the call raised.
        idempotent: Whether doing the call twice is the same as doing it once.

    Returns:
        True to repeat the call (within the retry policy).
    """
    if not isinstance(error, Unavailable | ConnectError):
        return False
    return idempotent or error.not_processed


def _seconds(value: timedelta | float) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected seconds or a timedelta, got {type(value).__name__}: {value!r}")
    return float(value)


def _check_attempts(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"RetryPolicy.attempts must be an int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"RetryPolicy.attempts must be >= 1 (1 means no retry), got {value}")


def _check_delay(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"RetryPolicy.{attribute.name} must be finite and >= 0, got {value}")


def _check_multiplier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"RetryPolicy.multiplier must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"RetryPolicy.multiplier must be finite and >= 1, got {value}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how patiently to repeat a call the server could not take.

    The client applies it to `get()` and to each page of `list()` when the call fails
    with `Unavailable` or `ConnectError`; `create()`, `update()` and `delete()` are
    repeated only when the server provably did not process the call (the error's
    `not_processed`), since otherwise it may have acted on a call whose answer was
    lost (`may_retry` is the rule). Pass `retry=None` to the
    client to turn retries off. Streams reconnect by their own policy, the client's
    `stream_retry`, which by default has no limit (`attempts=None`).

    The n-th pause (n = 0, 1, ...) is `initial * multiplier**n`, capped at `maximum`;
    with `jitter`, a random fraction of it between a half and the whole ("equal
    jitter"), so many clients retrying together spread out.
    """

    attempts: int | None = attrs.field(default=4, validator=_check_attempts)
    """Calls in all, the first included (4: the first and up to 3 retries); None: no limit."""
    initial: float = attrs.field(default=0.1, converter=_seconds, validator=_check_delay)
    """The first pause, in seconds (a timedelta is accepted)."""
    maximum: float = attrs.field(default=5.0, converter=_seconds, validator=_check_delay)
    """The longest pause, in seconds (a timedelta is accepted)."""
    multiplier: float = attrs.field(default=2.0, validator=_check_multiplier)
    """How much each pause grows over the previous one."""
    jitter: bool = attrs.field(default=True)
    """Whether pauses are randomised (see the class docstring)."""

    def __attrs_post_init__(self) -> None:
        """Check the bounds against each other.

        Raises:
            ValueError: If `maximum` is below `initial`.
        """
        if self.maximum < self.initial:
            raise ValueError(
                f"RetryPolicy.maximum ({self.maximum} s) must be >= initial ({self.initial} s)"
            )

    def pauses(self) -> Iterator[float]:
        """Yield the pauses before each retry: `attempts - 1` of them, or endless.

        Returns:
            An iterator of seconds to sleep.
        """
        import random  # with the first retry only, not with the package

        pause = self.initial
        retries = itertools.count() if self.attempts is None else range(self.attempts - 1)
        for _ in retries:
            capped = min(pause, self.maximum)
            yield capped * random.uniform(0.5, 1.0) if self.jitter else capped
            # Stop growing once capped: an endless policy must not overflow to inf.
            pause = min(pause * self.multiplier, self.maximum)
