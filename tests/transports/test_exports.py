"""The public names of `transports`, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import transports


def test_all_is_sorted_and_resolves() -> None:
    """`__all__` is sorted and every name in it is an attribute of the package."""
    assert transports.__all__ == sorted(transports.__all__)
    for name in transports.__all__:
        assert getattr(transports, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A name the package does not have raises AttributeError, as for any module."""
    assert not hasattr(transports, "NoSuchTransport")


def test_import_does_not_load_network_stacks() -> None:
    """`import transports` loads neither grpclib nor h2 until a transport is used, and
    H2Transport (our own HTTP/2 core) never loads h2 nor grpclib."""
    code = (
        "import sys, transports\n"
        "print(sorted(m for m in ('grpclib', 'h2', 'asyncio') if m in sys.modules))\n"
        "transports.H2Transport\n"
        "print('h2' in sys.modules, 'grpclib' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "False False"]
