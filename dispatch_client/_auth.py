"""The API key and request signing: the metadata every call carries.

Every call sends the API key as the `key` metadata entry. With a sign secret, it also
sends three entries that prove the caller holds the secret without sending it:

* `ts`: the Unix time in whole seconds, as a decimal string;
* `nonce`: 16 random bytes, url-safe base64 with its padding;
* `sig`: HMAC-SHA256 keyed with the secret over `key ‖ ts ‖ nonce ‖ method name`
  (the method name is the last segment of the path, e.g. `GetMicrogridDispatch`),
  url-safe base64 without padding. The request body is not signed.

Neither the key nor the secret ever appears in a `repr()`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

__all__ = ["Credentials", "sign"]

_NONCE_BYTES = 16
_MAX_NAMES = 64


def _text_bytes(owner: str, value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"{owner} must be str or bytes, got {type(value).__name__}")


def sign(secret: bytes, key: str, ts: str, nonce: str, method_name: str) -> str:
    """Compute the `sig` metadata value of one call.

    Args:
        secret: The sign secret.
        key: The API key, as sent in `key`.
        ts: The `ts` value, as sent.
        nonce: The `nonce` value, as sent.
        method_name: The last segment of the method path, e.g. `GetMicrogridDispatch`.

    Returns:
        The url-safe base64 signature, padding stripped.
    """
    message = b"".join(part.encode() for part in (key, ts, nonce, method_name))
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Credentials:
    """An API key and an optional sign secret, turned into each call's metadata."""

    __slots__ = ("_clock", "_key", "_keyed", "_names", "_secret", "_static")

    def __init__(
        self,
        key: str,
        sign_secret: str | bytes | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Keep the key and the secret.

        Args:
            key: The API key; a non-empty str without line breaks.
            sign_secret: The secret to sign calls with (str is UTF-8 encoded), or None
                to send unsigned calls.
            clock: Seconds since the epoch, for `ts` (tests pass a fixed one).

        Raises:
            TypeError: If the key or the secret has the wrong type.
            ValueError: If the key or the secret is empty, or the key cannot be sent as
                a metadata value.
        """
        if not isinstance(key, str):
            raise TypeError(f"the API key must be a str, got {type(key).__name__}")
        if not key:
            raise ValueError("the API key must not be empty")
        if not key.isascii() or not key.isprintable():
            raise ValueError(
                "the API key must be printable ASCII (it travels as a gRPC metadata value)"
            )
        secret = None if sign_secret is None else _text_bytes("sign_secret", sign_secret)
        if secret is not None and not secret:
            raise ValueError("sign_secret must not be empty; pass None to send unsigned calls")
        self._key = key
        self._secret = secret
        self._clock = clock
        # Built once: unsigned calls all send this very tuple.
        self._static: tuple[tuple[str, str], ...] = (("key", key),)
        # The signed message starts with the key: an HMAC state that has taken it in,
        # copied per call, saves re-keying (two SHA-256 blocks) and hashing the key again.
        self._keyed: hmac.HMAC | None = (
            None if secret is None else hmac.new(secret, key.encode(), hashlib.sha256)
        )
        self._names: dict[str, bytes] = {}  # method path -> its last segment, encoded

    @property
    def signs(self) -> bool:
        """Whether calls are signed."""
        return self._secret is not None

    @property
    def key(self) -> str:
        """The API key (kept out of every repr)."""
        return self._key

    @property
    def secret(self) -> bytes | None:
        """The sign secret, or None (kept out of every repr)."""
        return self._secret

    def __repr__(self) -> str:
        signed = "signed" if self._secret is not None else "unsigned"
        return f"<Credentials key=*** {signed}>"

    def metadata(self, method: str) -> tuple[tuple[str, str], ...]:
        """Return the metadata for one call of `method`.

        Args:
            method: The full method path, `/package.Service/Method`.

        Returns:
            `key`, and with a sign secret `ts`, `nonce` and `sig` too; a fresh nonce
            and signature on every call. Unsigned, the same tuple (built once) every
            time.
        """
        keyed = self._keyed
        if keyed is None:
            return self._static
        name = self._names.get(method)
        if name is None:
            name = method.rpartition("/")[2].encode()
            if len(self._names) < _MAX_NAMES:  # a client calls a handful of methods
                self._names[method] = name
        ts = str(int(self._clock()))
        nonce = base64.urlsafe_b64encode(secrets.token_bytes(_NONCE_BYTES)).decode("ascii")
        mac = keyed.copy()
        mac.update(ts.encode() + nonce.encode() + name)
        sig = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")
        return (("key", self._key), ("ts", ts), ("nonce", nonce), ("sig", sig))
