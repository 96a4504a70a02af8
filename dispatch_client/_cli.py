"""`dispatch-cli`: the command line of dispatch-client.

Commands are subcommands of one click group, `cli`; `main()` is the console entry point.
Today there is one, `serve`, which runs the fake Dispatch service over gRPC for local
development and for tests of other programs.
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
    from dispatch_client.testing import FakeDispatchService

__all__ = ["cli", "main"]

_log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dispatch-client", prog_name="dispatch-cli")
def cli() -> None:
    """Work with the Frequenz Dispatch API."""


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 listens on every IPv4 interface.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="TCP port to listen on; 0 picks a free one.",
)
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
