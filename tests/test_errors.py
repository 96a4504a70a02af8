"""The transports error tree."""

from __future__ import annotations

import pytest

import transports
from transports import RpcError, StatusCode, error_for_status


def test_every_status_has_its_class() -> None:
    """Each non-OK status maps to a subclass carrying that status."""
    for code in StatusCode:
        if code is StatusCode.OK:
            continue
        error = error_for_status(code, "why", b"\x01", [("a", "b")])
        assert type(error) is not RpcError
        assert isinstance(error, RpcError)
        assert error.status is code
        assert type(error).status_code is code
        assert (error.message, error.details, error.trailing_metadata) == (
            "why",
            b"\x01",
            (("a", "b"),),
        )


def test_retryable() -> None:
    """Only statuses a retry may fix are marked retryable."""
    assert transports.Unavailable.retryable
    assert transports.DeadlineExceeded.retryable
    assert transports.ConnectError.retryable
    assert not transports.NotFound.retryable
    assert not transports.InvalidArgument.retryable
    assert not transports.ProtocolError.retryable


def test_unknown_number_and_ok() -> None:
    """An unknown status number becomes UNKNOWN with the number kept; OK is no error."""
    error = error_for_status(42, "odd")
    assert isinstance(error, transports.Unknown)
    assert "42" in error.message
    with pytest.raises(ValueError, match="OK"):
        error_for_status(StatusCode.OK)


def test_with_context() -> None:
    """with_context keeps the class and status and prefixes the message."""
    error = transports.NotFound("no such dispatch").with_context("get dispatch 7")
    assert isinstance(error, transports.NotFound)
    assert error.message == "get dispatch 7: no such dispatch"
    assert str(error) == "NOT_FOUND: get dispatch 7: no such dispatch"
