"""`dispatch-client serve`: the fake service as a process, reached over real gRPC.

The served process runs `python -m dispatch_client`; the test side calls it with
`H2Transport` on asyncio and trio.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import anyio
import anyio.abc
import pytest
from click.testing import CliRunner

import transports
from dispatch_client import _methods
from dispatch_client._auth import Credentials
from dispatch_client._codec import _bridge as bridge
from dispatch_client._requests import CreateRequest, ListRequest
from dispatch_client._types import TargetIds
from dispatch_client.cli._commands import cli
from tests.cli_process import TIMEOUT as _TIMEOUT
from tests.cli_process import command, running

_KEY = "k"
_METADATA = (("key", _KEY),)
_COMMAND = command("serve")


async def _rest(stream: anyio.abc.ByteReceiveStream) -> str:
    """Read a process's output to its end."""
    chunks = [chunk async for chunk in stream]
    return b"".join(chunks).decode()


def _served(*options: str) -> contextlib.AbstractAsyncContextManager[tuple[anyio.abc.Process, str]]:
    """Run `dispatch-client serve` with `options`; yield the process and its URL."""
    return running(*_COMMAND, *options)


async def _stop(process: anyio.abc.Process, signum: signal.Signals = signal.SIGINT) -> str:
    """Send a signal, wait for the process to exit, and return its stderr."""
    process.send_signal(signum)
    assert process.stderr is not None
    with anyio.fail_after(_TIMEOUT):
        await process.wait()
        return await _rest(process.stderr)


async def _list(url: str) -> list[int]:
    """Return the ids of microgrid 1's dispatches, listed over the wire."""
    request = bridge.encode_list_request(ListRequest(microgrid_id=1))
    async with transports.H2Transport.from_url(url) as transport:
        reply = await transport.unary(_methods.LIST, request, metadata=_METADATA)
    return [dispatch.id for dispatch in bridge.decode_list_response(reply).dispatches]


def test_help() -> None:
    """`dispatch-client --help` lists `serve`, and `serve --help` its options."""
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    assert "serve" in top.output
    sub = runner.invoke(cli, ["serve", "--help"])
    assert sub.exit_code == 0
    for option in ("--host", "--port", "--key", "--sign-secret", "--db"):
        assert option in sub.output


@pytest.mark.anyio
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_serves_until_signalled(signum: signal.Signals) -> None:
    """The URL comes first; calls with the key work, others are refused; a signal exits 0."""
    async with _served("--key", _KEY) as (process, url):
        assert url.startswith("grpc://127.0.0.1:")
        assert url.endswith("?ssl=false")
        assert await _list(url) == []
        async with transports.H2Transport.from_url(url) as transport:
            with pytest.raises(transports.Unauthenticated):
                await transport.unary(
                    _methods.LIST,
                    bridge.encode_list_request(ListRequest(microgrid_id=1)),
                    metadata=(("key", "wrong"),),
                )
        stderr = await _stop(process, signum)
    assert process.returncode == 0
    assert "Traceback" not in stderr


@pytest.mark.anyio
async def test_sign_secret_requires_signed_calls() -> None:
    """With --sign-secret, a call signed with it works and an unsigned one is refused."""
    credentials = Credentials(_KEY, "s3cret")
    request = bridge.encode_list_request(ListRequest(microgrid_id=1))
    async with _served("--key", _KEY, "--sign-secret", "s3cret") as (process, url):
        async with transports.H2Transport.from_url(url) as transport:
            signed = credentials.metadata(_methods.LIST)
            await transport.unary(_methods.LIST, request, metadata=signed)
            with pytest.raises(transports.Unauthenticated):
                await transport.unary(_methods.LIST, request, metadata=_METADATA)
        await _stop(process)
    assert process.returncode == 0


@pytest.mark.anyio
async def test_db_keeps_dispatches_across_runs(tmp_path: Path) -> None:
    """A dispatch created in one run is listed by the next run on the same --db."""
    db = str(tmp_path / "dispatches.sqlite")
    create = CreateRequest(
        microgrid_id=1,
        type="CHARGE",
        start_time="NOW",
        duration=timedelta(minutes=5),
        target=TargetIds(1, 2),
    )
    async with _served("--key", _KEY, "--db", db) as (process, url):
        async with transports.H2Transport.from_url(url) as transport:
            reply = await transport.unary(
                _methods.CREATE, bridge.encode_create_request(create), metadata=_METADATA
            )
        created = bridge.decode_create_response(reply)
        await _stop(process, signal.SIGTERM)
    assert process.returncode == 0
    async with _served("--key", _KEY, "--db", db) as (process, url):
        assert await _list(url) == [created.id]
        await _stop(process)
    assert process.returncode == 0


def test_port_in_use_is_one_line_and_exit_1() -> None:
    """Serving on a port in use prints one error line and exits 1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*_COMMAND, "--port", str(port)], capture_output=True, timeout=_TIMEOUT, check=False
        )
    assert done.returncode == 1
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert str(port) in lines[0]
    assert "in use" in lines[0]


@pytest.mark.parametrize(
    "options", [["--key", ""], ["--sign-secret", ""]], ids=["empty-key", "empty-secret"]
)
def test_bad_service_options_are_one_line_and_exit_1(options: list[str]) -> None:
    """Options the service refuses print one error line and exit 1, before listening."""
    result = CliRunner().invoke(cli, ["serve", *options])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot start the service:")
    assert len(result.output.splitlines()) == 1
