"""API key and request-signature checks of the fake Dispatch service.

A request carries its API key in the `key` metadata entry. When the service has a sign
secret, the request must also be signed:

* `ts`: the Unix time in whole seconds, as a decimal string;
* `nonce`: a random, single-use string (clients send url-safe base64 of 16 bytes);
* `sig`: url-safe base64, without padding, of
  `HMAC-SHA256(secret, key ‖ ts ‖ nonce ‖ method name)`, where the method name is the
  last segment of the method path (`GetMicrogridDispatch`). The body is not signed.

A signature is refused when its `ts` is farther than the allowed clock skew from the
service's clock (either way), and when its nonce was already used by a request whose
`ts` is still inside that window. A nonce older than the window cannot be replayed
(its `ts` is stale), so it is forgotten.

Every refusal is `transports.Unauthenticated`; no message repeats the key or the
signature it got.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from transports import Unauthenticated

__all__ = ["RequestVerifier", "sign"]

_MAX_NONCE_LENGTH: Final = 256
"""Longer nonces are refused, so remembering them stays cheap (clients send 24 chars)."""

_MAX_TS_DIGITS: Final = 20
"""A `ts` longer than this is refused (Unix seconds have 10 digits until the year 2286)."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def sign(secret: bytes, *, key: str, ts: str, nonce: str, method: str) -> str:
    """Compute a request signature as the API defines it.

    Args:
        secret: The shared sign secret.
        key: The API key the request carries.
        ts: The `ts` metadata value (Unix seconds, decimal).
        nonce: The `nonce` metadata value.
        method: The method name (the last path segment) or the full method path.

    Returns:
        The `sig` metadata value: url-safe base64 of the HMAC-SHA256, padding stripped.
    """
    name = method.rsplit("/", 1)[-1]
    message = f"{key}{ts}{nonce}{name}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _text(value: str | bytes) -> str | None:
    """A metadata value as text; None for bytes that are not ASCII."""
    if isinstance(value, str):
        return value
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return None


def _single(metadata: tuple[tuple[str, str | bytes], ...], name: str) -> str | None:
    """Return the one value of a metadata entry.

    Raises:
        Unauthenticated: If the entry is given more than once or is not ASCII.
    """
    values = [value for entry, value in metadata if entry.lower() == name]
    if not values:
        return None
    if len(values) > 1:
        raise Unauthenticated(f"the {name!r} metadata entry is given {len(values)} times")
    text = _text(values[0])
    if text is None:
        raise Unauthenticated(f"the {name!r} metadata entry is not ASCII text")
    return text


class RequestVerifier:
    """Check the API key and, with a sign secret, the signature of each request.

    Thread-safe: the nonce memory has its own lock.
    """

    def __init__(
        self,
        *,
        keys: Iterable[str] | None,
        sign_secret: str | bytes | None,
        clock: Callable[[], datetime],
        max_clock_skew: timedelta,
    ) -> None:
        """Configure the checks.

        Args:
            keys: The accepted API keys; None accepts any non-empty key.
            sign_secret: The HMAC secret (a str is UTF-8 encoded); None: no signing.
            clock: Returns the current, timezone-aware time.
            max_clock_skew: How far a request's `ts` may be from the clock.

        Raises:
            TypeError: If `keys` is a str (a key is never a sequence of characters)
                or holds a non-str, or `sign_secret` is neither str nor bytes.
            ValueError: If a key or the secret is empty, or the skew is negative.
        """
        if isinstance(keys, str):
            raise TypeError("keys must be an iterable of str, not a single str; wrap it in a list")
        self._keys: frozenset[str] | None = None
        if keys is not None:
            accepted = frozenset(keys)
            for key in accepted:
                if not isinstance(key, str):
                    raise TypeError(f"keys must be str, got {type(key).__name__}")
                if not key:
                    raise ValueError("keys must not contain an empty key")
            self._keys = accepted
        self._secret: bytes | None = None
        if sign_secret is not None:
            if isinstance(sign_secret, str):
                sign_secret = sign_secret.encode()
            if not isinstance(sign_secret, bytes):
                raise TypeError(
                    f"sign_secret must be str or bytes, got {type(sign_secret).__name__}"
                )
            if not sign_secret:
                raise ValueError("sign_secret must not be empty")
            self._secret = sign_secret
        if max_clock_skew < timedelta(0):
            raise ValueError(f"max_clock_skew must not be negative, got {max_clock_skew!r}")
        self._clock = clock
        self._skew = max_clock_skew
        self._lock = threading.Lock()
        # The nonces seen inside the window, and a heap of (ts, nonce) to forget them
        # in ts order.
        self._nonces: set[str] = set()
        self._expiry: list[tuple[int, str]] = []

    def verify(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        """Check one request's credentials.

        Args:
            method: The full method path.
            metadata: The request metadata.

        Raises:
            Unauthenticated: For a missing or unknown key, and with a sign secret, for a
                missing, malformed, stale or wrong signature or a reused nonce.
        """
        key = _single(metadata, "key")
        if not key:
            raise Unauthenticated("no API key: send it in the 'key' metadata entry")
        if self._keys is not None and key not in self._keys:
            raise Unauthenticated("the API key is not valid")
        if self._secret is not None:
            self._verify_signature(self._secret, key, method, metadata)

    def _verify_signature(
        self,
        secret: bytes,
        key: str,
        method: str,
        metadata: tuple[tuple[str, str | bytes], ...],
    ) -> None:
        ts = _single(metadata, "ts")
        nonce = _single(metadata, "nonce")
        sig = _single(metadata, "sig")
        missing = [
            name for name, value in (("ts", ts), ("nonce", nonce), ("sig", sig)) if not value
        ]
        if missing:
            raise Unauthenticated(
                f"the request is not signed: metadata {', '.join(map(repr, missing))} missing "
                "(this service requires ts, nonce and sig)"
            )
        assert ts is not None
        assert nonce is not None
        assert sig is not None
        # The length bound keeps int() away from Python's limit on digits.
        if not ts.isascii() or not ts.isdigit() or len(ts) > _MAX_TS_DIGITS:
            raise Unauthenticated(f"the 'ts' metadata entry must be Unix seconds, got {ts!r}")
        if len(nonce) > _MAX_NONCE_LENGTH:
            raise Unauthenticated(f"the nonce is longer than {_MAX_NONCE_LENGTH} characters")
        seconds = int(ts)
        now = self._now_seconds()
        skew = int(self._skew.total_seconds())
        if abs(now - seconds) > skew:
            raise Unauthenticated(
                f"the signature is stale: its ts {seconds} is {abs(now - seconds)} s from the "
                f"server's clock ({now}); at most {skew} s are allowed"
            )
        expected = sign(secret, key=key, ts=ts, nonce=nonce, method=method)
        # Padding is meaningless here; a client that keeps it is still correct.
        if not hmac.compare_digest(sig.rstrip("=").encode(), expected.encode()):
            raise Unauthenticated(
                "the request signature does not match (check the sign secret, and that the "
                "signed method name is the last segment of the method path)"
            )
        with self._lock:
            self._forget_before(now - skew)
            if nonce in self._nonces:
                raise Unauthenticated("the nonce was already used; send a fresh nonce per request")
            self._nonces.add(nonce)
            heapq.heappush(self._expiry, (seconds, nonce))

    def _forget_before(self, oldest: int) -> None:
        """Forget nonces whose ts is before `oldest`: their ts is stale, so replays fail."""
        while self._expiry and self._expiry[0][0] < oldest:
            _, nonce = heapq.heappop(self._expiry)
            self._nonces.discard(nonce)

    def _now_seconds(self) -> int:
        now = self._clock()
        return (now.astimezone(UTC) - _EPOCH) // timedelta(seconds=1)
