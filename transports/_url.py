"""`grpc://` URLs: parsing and validation, shared by every network transport."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

# ssl, pathlib and urllib.parse cost a third of a bare `import dispatch_client`; they are
# imported where they are first needed: a TLS context, TLS file options, a URL to parse.
if TYPE_CHECKING:
    from pathlib import Path
    from ssl import SSLContext

__all__ = ["ChannelOptions", "parse_url"]

DEFAULT_PORT = 443
DEFAULT_KEEP_ALIVE_INTERVAL = 15.0
"""Seconds between keep-alive PINGs while calls are in flight."""
DEFAULT_KEEP_ALIVE_TIMEOUT = 10.0
"""Seconds a PING may go unanswered before the connection is declared dead.

With the interval, a dead peer under an open call is found within 25 s by default
(within 30 s is the promise; the official client's 60 s + 20 s took 80 s)."""

_TRUE = frozenset({"true", "on", "1"})
_FALSE = frozenset({"false", "off", "0"})
_SSL_FILES = ("ssl_root_certificates_path", "ssl_private_key_path", "ssl_certificate_chain_path")
_KEEP_ALIVE_NUMBERS = ("keep_alive_interval_s", "keep_alive_timeout_s")
_KNOWN = frozenset({"ssl", "keep_alive", *_SSL_FILES, *_KEEP_ALIVE_NUMBERS})


@attrs.frozen(kw_only=True)
class ChannelOptions:
    """Where and how to connect, as a `grpc://` URL says.

    Attributes:
        host: Host name or IP address (IPv6 without brackets).
        port: TCP port; 443 when the URL names none.
        ssl: Whether to use TLS (on unless `ssl=false`).
        root_certificates: PEM file of trusted CAs; None means the system store.
        private_key: PEM file of the client's private key (mutual TLS).
        certificate_chain: PEM file of the client's certificate chain (mutual TLS).
        keep_alive: Whether to send HTTP/2 keep-alive PINGs.
        keep_alive_interval: Seconds between PINGs.
        keep_alive_timeout: Seconds to wait for a PING's answer before the connection
            is declared dead.
    """

    host: str
    port: int = DEFAULT_PORT
    ssl: bool = True
    root_certificates: Path | None = None
    private_key: Path | None = None
    certificate_chain: Path | None = None
    keep_alive: bool = True
    keep_alive_interval: float = DEFAULT_KEEP_ALIVE_INTERVAL
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT

    @property
    def authority(self) -> str:
        """The `:authority` of requests: host and port, IPv6 in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def ssl_context(self, *, alpn: tuple[str, ...] = ("h2",)) -> SSLContext | None:
        """Build the client TLS context these options ask for, or None without TLS.

        Certificates are verified against `root_certificates`, or the system store
        when none is given; the host name is checked.

        Raises:
            ValueError: When a certificate or key file cannot be read or parsed.
        """
        if not self.ssl:
            return None
        import ssl

        try:
            context = ssl.create_default_context(
                cafile=str(self.root_certificates) if self.root_certificates else None
            )
            if self.certificate_chain is not None:
                context.load_cert_chain(
                    str(self.certificate_chain),
                    str(self.private_key) if self.private_key else None,
                )
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load the TLS files of this channel: {exc}") from exc
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context


def _flag(url: str, name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} in {url!r} must be one of true/false, on/off, 1/0")


def _seconds(url: str, name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} in {url!r} must be a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name}={value!r} in {url!r} must be a number of seconds > 0")
    return seconds


def parse_url(url: str) -> ChannelOptions:
    """Parse `grpc://host[:port][?option=value&...]`.

    Options: `ssl`, `ssl_root_certificates_path`, `ssl_private_key_path`,
    `ssl_certificate_chain_path`, `keep_alive`, `keep_alive_interval_s`,
    `keep_alive_timeout_s`. Booleans take true/false, on/off or 1/0.

    Raises:
        TypeError: If `url` is not a str.
        ValueError: For another scheme, a missing host, a path, user info or fragment,
            an unknown or repeated option, a bad value, TLS files with `ssl=false`,
            keep-alive timings with `keep_alive=false`, or a private key without a
            certificate chain (or the reverse). Files are not read here.
    """
    if not isinstance(url, str):
        raise TypeError(f"the server URL must be a str, not {type(url).__name__}")
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    if parts.scheme != "grpc":
        raise ValueError(f"the server URL {url!r} must start with grpc://")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"the server URL {url!r} must not carry user info")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError(f"the server URL {url!r} must have no path or fragment")
    if not parts.hostname:
        raise ValueError(f"the server URL {url!r} names no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the server URL {url!r} has an invalid port") from None
    if port == 0:
        raise ValueError(f"the server URL {url!r} has port 0")

    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name not in _KNOWN:
            known = ", ".join(sorted(_KNOWN))
            raise ValueError(f"unknown option {name!r} in {url!r}; known options: {known}")
        if name in query:
            raise ValueError(f"option {name!r} is given twice in {url!r}")
        query[name] = value

    use_ssl = _flag(url, "ssl", query["ssl"]) if "ssl" in query else True
    files: dict[str, Path] = {}
    if any(name in query for name in _SSL_FILES):
        from pathlib import Path

        files = {name: Path(query[name]) for name in _SSL_FILES if name in query}
    for name, path in files.items():
        if not str(path) or str(path) == ".":
            raise ValueError(f"{name} in {url!r} is empty")
    if not use_ssl and files:
        raise ValueError(f"{', '.join(files)} in {url!r} contradict ssl=false")
    if ("ssl_private_key_path" in files) != ("ssl_certificate_chain_path" in files):
        raise ValueError(
            f"{url!r}: ssl_private_key_path and ssl_certificate_chain_path go together"
        )

    keep_alive = _flag(url, "keep_alive", query["keep_alive"]) if "keep_alive" in query else True
    timings = {
        name: _seconds(url, name, query[name]) for name in _KEEP_ALIVE_NUMBERS if name in query
    }
    if not keep_alive and timings:
        raise ValueError(f"{', '.join(timings)} in {url!r} contradict keep_alive=false")

    return ChannelOptions(
        host=parts.hostname,
        port=DEFAULT_PORT if port is None else port,
        ssl=use_ssl,
        root_certificates=files.get("ssl_root_certificates_path"),
        private_key=files.get("ssl_private_key_path"),
        certificate_chain=files.get("ssl_certificate_chain_path"),
        keep_alive=keep_alive,
        keep_alive_interval=timings.get("keep_alive_interval_s", DEFAULT_KEEP_ALIVE_INTERVAL),
        keep_alive_timeout=timings.get("keep_alive_timeout_s", DEFAULT_KEEP_ALIVE_TIMEOUT),
    )
