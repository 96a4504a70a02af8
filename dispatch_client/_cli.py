"""`dispatch-cli`: the command line of dispatch-client.

Commands are subcommands of one click group, `cli`; `main()` is the console entry point.
Today there are two: `serve` runs the fake Dispatch service over gRPC for local
development and for tests of other programs, and `replay` serves a recorded cassette.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import click

if TYPE_CHECKING:
    from dispatch_client.testing import FakeDispatchService, ReplayHandler

__all__ = ["cli", "main"]

_log = logging.getLogger(__name__)


_host_option = click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 listens on every IPv4 interface.",
)
_port_option = click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="TCP port to listen on; 0 picks a free one.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dispatch-client", prog_name="dispatch-cli")
def cli() -> None:
    """Work with the Frequenz Dispatch API."""


@cli.command()
@_host_option
@_port_option
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY",
    help="An API key to accept (repeat for several). Without --key, any non-empty key is accepted.",
)
@click.option(
    "--sign-secret",
    metavar="SECRET",
    help="Accept only requests signed with this secret (HMAC-SHA256, as the clients sign).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file that keeps the dispatches across runs (created if missing). "
    "Without it they live in memory.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log more (INFO level) to stderr.")
def serve(
    host: str,
    port: int,
    keys: tuple[str, ...],
    sign_secret: str | None,
    db: Path | None,
    verbose: bool,
) -> None:
    """Run a fake Dispatch service over gRPC (no TLS) until interrupted.

    The service has the real API's semantics: validation, filters, pagination, streams,
    API keys and request signatures. Its URL, e.g. grpc://127.0.0.1:50051?ssl=false,
    is the first line on stdout; logs go to stderr. Ctrl-C or SIGTERM stops it
    (exit code 0). Settings come from these options only, not from the environment.
    """
    # Imported here: `dispatch-cli --help` and other commands need none of it.
    from dispatch_client.testing import FakeDispatchService, StoreCorrupt

    try:
        service = FakeDispatchService(keys=list(keys) or None, sign_secret=sign_secret, db_path=db)
    except (OSError, ValueError, StoreCorrupt) as exc:
        raise click.ClickException(f"cannot start the service: {exc}") from None
    with service:
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.INFO if verbose else logging.WARNING,
            format="dispatch-cli serve: %(levelname)s: %(name)s: %(message)s",
        )
        try:
            anyio.run(_serve_until_stopped, service, host, port, backend="asyncio")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None
        except KeyboardInterrupt:
            # Ctrl-C before the signal handlers were in place: still a clean stop.
            pass


async def _serve_until_stopped(service: FakeDispatchService, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM; print the URL once listening."""
    from dispatch_client.testing import serve as serve_handler

    # The handlers go in before the server starts, so no signal finds the process
    # without them once the URL is out.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve_handler(service, host=host, port=port) as url:
            click.echo(url)
            # A parent reading the URL from a pipe must get it now, not at exit.
            sys.stdout.flush()
            async for signum in signals:
                _log.info("stopping on %s", signal.Signals(signum).name)
                break


@cli.command()
@click.argument("cassette", type=click.Path(dir_okay=False, path_type=Path))
@_host_option
@_port_option
@click.option(
    "--allow-repeats",
    is_flag=True,
    help="Answer a call again with an interaction already used when no unused one matches.",
)
@click.option(
    "--match-ignore",
    multiple=True,
    metavar="PATH",
    help="A dotted proto3-JSON field path of the requests to ignore when matching, "
    "e.g. filter.startTimeInterval (repeat for several).",
)
@click.option("--pace", is_flag=True, help="Send stream messages with the recorded gaps.")
@click.option("-v", "--verbose", is_flag=True, help="Log more (INFO level) to stderr.")
def replay(
    cassette: Path,
    host: str,
    port: int,
    allow_repeats: bool,
    match_ignore: tuple[str, ...],
    pace: bool,
    verbose: bool,
) -> None:
    """Serve a recorded cassette over gRPC (no TLS) until interrupted.

    Each call is answered with the first unused recorded call of the same method and
    request, in recorded order; a call with no recording fails with UNIMPLEMENTED and
    the closest recorded request (logged to stderr as well). Any gRPC client, in any
    language, can run against it. Its URL, e.g. grpc://127.0.0.1:50051?ssl=false, is
    the first line on stdout; logs go to stderr. Ctrl-C or SIGTERM stops it (exit 0).
    """
    # Imported here: `dispatch-cli --help` and other commands need none of it.
    from dispatch_client.testing import ReplayHandler
    from transports import CassetteError

    try:
        handler = ReplayHandler(
            cassette, allow_repeats=allow_repeats, match_ignore=match_ignore, pace=pace
        )
    except FileNotFoundError:
        raise click.ClickException(f"cannot replay: no such cassette: {cassette}") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot replay {cassette}: {reason}") from None
    except (CassetteError, ValueError) as exc:
        # One line: a corrupt file's message names the file and line already.
        raise click.ClickException(f"cannot replay: {_one_line(exc)}") from None
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="dispatch-cli replay: %(levelname)s: %(name)s: %(message)s",
    )
    try:
        anyio.run(_replay_until_stopped, handler, host, port, backend="asyncio")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers were in place: still a clean stop.
        pass


def _one_line(exc: BaseException) -> str:
    """An error's message on one line (a click error must not spill over lines)."""
    return " ".join(str(exc).split())


async def _replay_until_stopped(handler: ReplayHandler, host: str, port: int) -> None:
    """Serve the cassette until SIGINT or SIGTERM; print the URL once listening."""
    from dispatch_client.testing import serve as serve_handler

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with handler, serve_handler(handler, host=host, port=port) as url:
            click.echo(url)
            sys.stdout.flush()
            async for signum in signals:
                _log.info("stopping on %s", signal.Signals(signum).name)
                break


def main(argv: Sequence[str] | None = None) -> None:
    """Run `dispatch-cli`: the console entry point.

    Args:
        argv: The arguments after the program name; None takes them from `sys.argv`.

    Raises:
        SystemExit: Always, with the command's exit code (click's standalone mode).
    """
    cli.main(args=None if argv is None else list(argv), prog_name="dispatch-cli")


if __name__ == "__main__":
    main()
