"""Argument checks every transport runs before any I/O."""

from __future__ import annotations

import pytest

from transports._base import check_call

M = "/pkg.Service/Method"


def test_valid() -> None:
    """Well-formed arguments pass and metadata comes back as a tuple."""
    assert check_call(M, b"", [("key", "v"), ("x-bin", b"\x00")], 1.5) == (
        ("key", "v"),
        ("x-bin", b"\x00"),
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("pkg.Service/Method", b"", (), None), ValueError),
        (("/only", b"", (), None), ValueError),
        ((1, b"", (), None), TypeError),
        ((M, "text", (), None), TypeError),
        ((M, b"", (), 0), ValueError),
        ((M, b"", (), -1.0), ValueError),
        ((M, b"", (), float("inf")), ValueError),
        ((M, b"", (), "5"), TypeError),
        ((M, b"", (), True), TypeError),
        ((M, b"", "key=v", None), TypeError),
        ((M, b"", [("Key", "v")], None), ValueError),
        ((M, b"", [(":path", "v")], None), ValueError),
        ((M, b"", [("grpc-timeout", "1S")], None), ValueError),
        ((M, b"", [("te", "trailers")], None), ValueError),
        ((M, b"", [("x-bin", "text")], None), TypeError),
        ((M, b"", [("key", b"bytes")], None), TypeError),
        ((M, b"", [("key", "caf\u00e9")], None), ValueError),
        ((M, b"", [("key", "a\nb")], None), ValueError),
        ((M, b"", [("key",)], None), TypeError),
    ],
)
def test_rejected(args: tuple[object, object, object, object], error: type[Exception]) -> None:
    """Each malformed argument is a TypeError or ValueError."""
    with pytest.raises(error):
        check_call(*args)
