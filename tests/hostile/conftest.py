"""Fixtures of the hostile-server scenarios: each transport on each backend, fd counting."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import transports
from transports import Transport

from .kit import open_fds

TransportFactory = Callable[..., Transport]
"""`factory(url, **options)`: a new transport of the test's kind for `url`."""


@pytest.fixture(params=["h2", "grpclib", "h2-anyio"])
def transport_kind(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Each transport that runs on the test's backend (grpclib: asyncio only).

    "h2-anyio" is H2Transport forced onto its anyio driver, which is what "h2" runs
    off asyncio anyway: it runs on asyncio, for the tests that build their transport
    with `make_transport`.
    """
    kind = str(request.param)
    if kind == "grpclib" and anyio_backend != "asyncio":
        pytest.skip("GrpclibTransport runs on asyncio only")
    if kind == "h2-anyio" and anyio_backend != "asyncio":
        pytest.skip("off asyncio, H2Transport's anyio driver is what 'h2' runs")
    if kind == "h2-anyio" and "make_transport" not in request.fixturenames:
        pytest.skip("the client picks H2Transport's driver by itself")
    return kind


@pytest.fixture
def make_transport(transport_kind: str) -> TransportFactory:
    """`make_transport(url, **options)` builds a transport of the test's kind."""

    def build(url: str, **options: Any) -> Transport:
        if transport_kind == "grpclib":
            return transports.GrpclibTransport.from_url(url, **options)
        if transport_kind == "h2-anyio":
            return transports.H2Transport.from_url(url, _driver="anyio", **options)
        return transports.H2Transport.from_url(url, **options)

    return build


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    """Fail the test if it ends holding more file descriptors than it started with.

    The hostile server's sockets are closed when its `with` block ends, so this counts
    the client's alone once the test returns.
    """
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    after = open_fds()
    assert after <= before, f"{after - before} file descriptor(s) leaked"
