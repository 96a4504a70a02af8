"""grpc:// URL parsing shared by the network transports."""

from __future__ import annotations

from pathlib import Path

import pytest

from transports import ChannelOptions, parse_url


def test_defaults() -> None:
    """A bare host gets port 443, TLS and keep-alive with the documented timings."""
    assert parse_url("grpc://example.com") == ChannelOptions(host="example.com")
    options = parse_url("grpc://example.com")
    assert (options.port, options.ssl, options.keep_alive) == (443, True, True)
    assert (options.keep_alive_interval, options.keep_alive_timeout) == (15.0, 10.0)


def test_all_options() -> None:
    """Every documented query option is read."""
    options = parse_url(
        "grpc://[::1]:50051?ssl=on&ssl_root_certificates_path=/ca.pem"
        "&ssl_private_key_path=/k.pem&ssl_certificate_chain_path=/c.pem"
        "&keep_alive=1&keep_alive_interval_s=5&keep_alive_timeout_s=2.5"
    )
    assert options.host == "::1"
    assert options.authority == "[::1]:50051"
    assert options.root_certificates == Path("/ca.pem")
    assert options.private_key == Path("/k.pem")
    assert options.certificate_chain == Path("/c.pem")
    assert (options.keep_alive_interval, options.keep_alive_timeout) == (5.0, 2.5)


@pytest.mark.parametrize("value", ["false", "FALSE", "off", "0"])
def test_ssl_off(value: str) -> None:
    """ssl accepts false/off/0 in any case."""
    assert parse_url(f"grpc://h:1?ssl={value}").ssl is False


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://h:1", "grpc://"),
        ("grpc://:1", "names no host"),
        ("grpc://h:1/path", "no path"),
        ("grpc://u:p@h:1", "user info"),
        ("grpc://h:1#frag", "no path or fragment"),
        ("grpc://h:99999", "invalid port"),
        ("grpc://h:0", "port 0"),
        ("grpc://h:1?sll=true", "unknown option 'sll'"),
        ("grpc://h:1?ssl=true&ssl=false", "twice"),
        ("grpc://h:1?ssl=maybe", "true/false"),
        ("grpc://h:1?ssl=false&ssl_root_certificates_path=/ca", "contradict ssl=false"),
        ("grpc://h:1?ssl_private_key_path=/k", "go together"),
        ("grpc://h:1?keep_alive=false&keep_alive_timeout_s=3", "contradict keep_alive=false"),
        ("grpc://h:1?keep_alive_interval_s=-1", "> 0"),
        ("grpc://h:1?keep_alive_interval_s=soon", "number of seconds"),
        ("grpc://h:1?keep_alive_timeout_s=nan", "> 0"),
    ],
)
def test_rejected(url: str, fragment: str) -> None:
    """Malformed, unknown or contradictory URLs raise a ValueError that says why."""
    with pytest.raises(ValueError, match=fragment):
        parse_url(url)


def test_not_a_string() -> None:
    """A URL that is not a str is a TypeError."""
    with pytest.raises(TypeError):
        parse_url(b"grpc://h:1")  # type: ignore[arg-type]


def test_unreadable_tls_files(tmp_path: Path) -> None:
    """A root CA file that does not exist is a ValueError when the context is built."""
    options = parse_url(f"grpc://h:1?ssl_root_certificates_path={tmp_path / 'missing.pem'}")
    with pytest.raises(ValueError, match="TLS files"):
        options.ssl_context()
    assert parse_url("grpc://h:1?ssl=false").ssl_context() is None
