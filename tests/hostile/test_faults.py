"""Every hostile scenario, on every transport and backend, unary and streaming.

Each case asserts the one outcome `scenarios.SCENARIOS` documents (and
`docs/errors.md` shows): the error class, whether the server provably did not process
the call, and that no file descriptor is left behind.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from transports import GrpcError

from .conftest import TransportFactory
from .kit import HostileServer
from .scenarios import SCENARIOS, Scenario, table_row

pytestmark = pytest.mark.anyio

_IDS = [scenario.fault for scenario in SCENARIOS]
_DOCS = Path(__file__).parents[2] / "docs" / "errors.md"


async def _unary(make_transport: TransportFactory, scenario: Scenario) -> GrpcError | None:
    with HostileServer(scenario.handler, **scenario.server) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(20):
                try:
                    await transport.unary("/hostile.Test/Unary", b"request", timeout=15)
                except GrpcError as error:
                    return error
    return None


async def _stream(make_transport: TransportFactory, scenario: Scenario) -> GrpcError | None:
    with HostileServer(scenario.handler, **scenario.server) as server:
        async with make_transport(server.url) as transport:
            with anyio.fail_after(20):
                try:
                    async with transport.server_stream(
                        "/hostile.Test/Stream", b"request", timeout=15
                    ) as responses:
                        if scenario.late_reader:
                            while "sent" not in server.notes:  # noqa: ASYNC110 - a thread's note
                                await anyio.sleep(0.01)
                            await anyio.sleep(0.2)  # the burst is in our socket by now
                        async for _ in responses:
                            pass
                except GrpcError as error:
                    return error
    return None


def _check(scenario: Scenario, error: GrpcError | None) -> None:
    if scenario.error is None:
        assert error is None, f"expected success, got {error!r}"
        return
    assert type(error) is scenario.error, f"expected {scenario.error.__name__}, got {error!r}"
    assert error.not_processed is scenario.not_processed


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if not s.late_reader], ids=str)
async def test_unary_call_meets_the_documented_outcome(
    scenario: Scenario, make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """A unary call facing the fault ends as the table says, with none but our errors."""
    _check(scenario, await _unary(make_transport, scenario))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_streaming_call_meets_the_documented_outcome(
    scenario: Scenario, make_transport: TransportFactory, no_fd_leak: None
) -> None:
    """A streaming call facing the fault ends as the table says, with none but our errors."""
    _check(scenario, await _stream(make_transport, scenario))


def test_docs_table_matches_the_scenarios() -> None:
    """`docs/errors.md` lists every scenario with the outcome the tests check."""
    text = _DOCS.read_text(encoding="utf-8")
    missing = [table_row(scenario) for scenario in SCENARIOS if table_row(scenario) not in text]
    assert not missing, "rows missing from docs/errors.md:\n" + "\n".join(missing)
