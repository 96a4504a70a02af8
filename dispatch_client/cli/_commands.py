"""The commands of `dispatch-client`: one click group, `cli`, and `main()`.

`list`, `get`, `create`, `update`, `delete` and `stream` talk to a Dispatch service
with `dispatch_client.Client`; `serve` runs the fake Dispatch service over gRPC for local
development and for tests of other programs, and `replay` serves a recorded cassette.

Exit codes: 0 on success, 2 for a usage error (bad option, unreadable time, an update
with nothing to change: caught before any I/O), 1 for an error from the server or the
network. Expected errors print one line to stderr, never a traceback.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import attrs
import click
import click.shell_completion

from dispatch_client import (
    Client,
    DecodeError,
    Dispatch,
    DispatchEvent,
    DispatchReceiver,
    EndCriteria,
    Frequency,
    GrpcError,
    NotFound,
    RecurrenceRule,
    RpcError,
    RunningChange,
    SortField,
    SortOrder,
    StreamConnected,
    StreamNotice,
    StreamReconnecting,
    TargetComponents,
    TransportName,
    Weekday,
)

from ._input import (
    DurationType,
    FrequencyType,
    IdsType,
    JsonObjectType,
    TargetType,
    TimeType,
    WeekdayType,
)

if TYPE_CHECKING:
    from rich.console import Console

    from dispatch_client.testing import FakeDispatchService, ReplayHandler

__all__ = ["cli", "main"]

_T = TypeVar("_T")

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


_MICROGRID = click.IntRange(min=0)
"""Microgrid ids: non-negative integers (the client checks the upper bound)."""


@attrs.frozen
class _Settings:
    """The group's options, shared by every client command."""

    url: str | None
    key: str | None = attrs.field(repr=False)  # secrets stay out of every repr
    sign_secret: str | None = attrs.field(repr=False)
    transport: TransportName | None = attrs.field()
    backend: Literal["asyncio", "trio"] = attrs.field()
    call_timeout: float = attrs.field()
    json: bool = attrs.field()

    def client(self) -> Client:
        """Build the client (no I/O yet), or fail with a usage error.

        Raises:
            click.UsageError: For a missing URL or key, a malformed URL, or a transport
                the backend cannot run.
        """
        if not self.url:
            raise click.UsageError("no server URL: give --url or set DISPATCH_API_URL")
        if not self.key:
            raise click.UsageError("no API key: give --auth-key or set DISPATCH_API_AUTH_KEY")
        if self.backend == "trio" and importlib.util.find_spec("trio") is None:
            raise click.UsageError("--backend trio needs trio: pip install trio")
        if self.backend == "trio" and self.transport == "grpclib":
            raise click.UsageError("--transport grpclib runs on asyncio only; use h2 with trio")
        try:
            return Client(
                server_url=self.url,
                auth_key=self.key,
                sign_secret=self.sign_secret,
                transport=self.transport,
                call_timeout=timedelta(seconds=self.call_timeout),
            )
        except ValueError as exc:
            raise click.UsageError(_one_line(exc)) from None

    def run(self, func: Callable[[], Awaitable[None]]) -> None:
        """Run `func()` on the chosen backend, turning expected errors into one line.

        Raises:
            click.ClickException: For an error from the server or the network (exit 1).
            click.UsageError: For an argument the client rejects before any I/O (exit 2).
        """
        try:
            with _library_log():
                anyio.run(func, backend=self.backend)
        except DecodeError as exc:
            message = f"the server's answer is invalid: {_one_line(exc)}"
            raise click.ClickException(message) from None
        except GrpcError as exc:
            raise click.ClickException(_network_error(exc)) from None
        except ValueError as exc:
            raise click.UsageError(_one_line(exc)) from None


_KEY_SOURCES = (
    ("DISPATCH_API_AUTH_KEY", "DISPATCH_API_KEY", "DISPATCH_API_SIGN_SECRET"),
    ("FREQUENZ_API_KEY", None, "FREQUENZ_API_SECRET"),
)
"""Environment sources of a key and a secret, in order: (key, older key name, secret)."""


def resolve_credentials(
    auth_key: str | None,
    api_key: str | None,
    sign_secret: str | None,
    env: Mapping[str, str],
) -> tuple[str | None, str | None]:
    """The API key and sign secret, each pair from one source, never mixed.

    The options come first (when any of the three is given); then the first
    environment source that sets any of its variables: `DISPATCH_API_AUTH_KEY` (or the
    older `DISPATCH_API_KEY`) with `DISPATCH_API_SIGN_SECRET`, then `FREQUENZ_API_KEY`
    with `FREQUENZ_API_SECRET`. Taking the pair from one place means a key is never
    sent signed with a secret meant for another. Empty values count as unset.

    Args:
        auth_key: `--auth-key`.
        api_key: `--api-key` (the older option).
        sign_secret: `--sign-secret`.
        env: The environment.

    Returns:
        The key (None if none is set) and the secret (None for unsigned calls).
    """
    if auth_key or api_key or sign_secret:
        return auth_key or api_key or None, sign_secret or None
    for key_name, older_name, secret_name in _KEY_SOURCES:
        key = env.get(key_name) or (env.get(older_name) if older_name else None)
        secret = env.get(secret_name)
        if key or secret:
            return key or None, secret or None
    return None, None


def _json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print JSON, one object per line, instead of tables.",
    )(function)


@click.group("dispatch-client", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dispatch-client", prog_name="dispatch-client")
@click.option(
    "--url",
    envvar="DISPATCH_API_URL",
    show_envvar=True,
    metavar="URL",
    help="The Dispatch API: grpc://host[:port][?ssl=false&...].",
)
@click.option(
    "--auth-key",
    metavar="KEY",
    help="The API key.  [env var: DISPATCH_API_AUTH_KEY, or FREQUENZ_API_KEY]",
)
@click.option(
    "--api-key",
    metavar="KEY",
    hidden=True,
    help="The API key (the older option; --auth-key wins).",
)
@click.option(
    "--sign-secret",
    metavar="SECRET",
    help="Sign every call with this secret (HMAC-SHA256).  [env var: "
    "DISPATCH_API_SIGN_SECRET, or FREQUENZ_API_SECRET; taken from where the key is]",
)
@click.option(
    "--transport",
    type=click.Choice(["grpclib", "h2"]),
    envvar="DISPATCH_CLI_TRANSPORT",
    help="How calls travel; default: h2 (our own HTTP/2 core).",
)
@click.option(
    "--backend",
    type=click.Choice(["asyncio", "trio"]),
    default="asyncio",
    show_default=True,
    envvar="DISPATCH_CLI_BACKEND",
    help="The async library to run on.",
)
@click.option(
    "--timeout",
    "call_timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long each call may take.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON, one object per line, instead of tables (every command).",
)
@click.option("--raw", is_flag=True, hidden=True, help="The official CLI's name for --json.")
@click.pass_context
def cli(
    ctx: click.Context,
    url: str | None,
    auth_key: str | None,
    api_key: str | None,
    sign_secret: str | None,
    transport: TransportName | None,
    backend: Literal["asyncio", "trio"],
    call_timeout: float,
    as_json: bool,
    raw: bool,
) -> None:
    """Work with the Frequenz Dispatch API.

    Connection settings come from the options below or their environment variables;
    `serve` and `replay` need none of them. Times read like `NOW`, `in 5 minutes`,
    `tomorrow 14:00` or ISO 8601 (local time unless a zone is given); durations like
    `90s`, `1h30m`, `90 minutes` or plain seconds; targets like `1,2,3`, `BATTERY`,
    `INVERTER:PV` or `BATTERY:LI_ION`.
    """
    key, secret = resolve_credentials(auth_key, api_key, sign_secret, os.environ)
    ctx.obj = _Settings(
        url=url,
        key=key,
        sign_secret=secret,
        transport=transport,
        backend=backend,
        call_timeout=call_timeout,
        json=as_json or raw,
    )


def _console() -> Console:
    """A rich console on stdout (created per command, so tests can swap stdout)."""
    from rich.console import Console

    return Console(highlight=False)


def _flatten(groups: Iterable[list[int]]) -> list[int]:
    """Join id lists in order, each id once."""
    return list(dict.fromkeys(i for group in groups for i in group))


def _network_error(exc: GrpcError) -> str:
    """One line for an error from the server or the network: its type, then its message.

    E.g. `NotFound: get dispatch 7 of microgrid 1: ...`: the class name users catch.
    """
    message = exc.message if isinstance(exc, RpcError) else str(exc)
    return _one_line(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def _error_line(exc: GrpcError) -> None:
    click.echo(f"Error: {_network_error(exc)}", err=True)


# ----------------------------------------------------------------------------- list


@cli.command("list")
@click.argument("microgrid_id", type=_MICROGRID)
@click.option(
    "-t",
    "--target",
    "targets",
    type=TargetType(),
    multiple=True,
    help="Only dispatches for this target (repeat: any of them).",
)
@click.option("--start-from", type=TimeType(), metavar="TIME", help="Start time at or after.")
@click.option("--start-to", type=TimeType(), metavar="TIME", help="Start time before.")
@click.option("--end-from", type=TimeType(), metavar="TIME", help="End time at or after.")
@click.option("--end-to", type=TimeType(), metavar="TIME", help="End time before.")
@click.option("--update-from", type=TimeType(), metavar="TIME", help="Last update at or after.")
@click.option("--update-to", type=TimeType(), metavar="TIME", help="Last update before.")
@click.option("--active", type=bool, help="Only active (true) or inactive (false) ones.")
@click.option("--dry-run", type=bool, help="Only dry runs (true) or real ones (false).")
@click.option("--recurring", type=bool, help="Only recurring (true) or one-off (false) ones.")
@click.option(
    "--id",
    "--dispatch-ids",
    "dispatch_ids",
    type=IdsType(),
    multiple=True,
    help="Only these ids (1,2,5 or 1-3; repeat for more).",
)
@click.option(
    "-q",
    "--query",
    "--filter-queries",
    "queries",
    multiple=True,
    help="Type contains this text, or `#N`: id N (repeat: any of them).",
)
@click.option(
    "--sort-by",
    type=click.Choice(["start-time", "create-time", "update-time"]),
    help="Sort on the server by this field.",
)
@click.option("--sort-order", type=click.Choice(["asc", "desc"]), help="Sort direction.")
@click.option("--page-size", type=click.IntRange(min=1), help="Dispatches per call.")
@click.option("--running", type=bool, help="Local filter: running now (true) or not (false).")
@click.option("-T", "--type", "type_", metavar="TYPE", help="Local filter: exactly this type.")
@_json_option
@click.pass_obj
def list_(
    settings: _Settings,
    /,
    microgrid_id: int,
    targets: tuple[TargetComponents, ...],
    start_from: datetime | None,
    start_to: datetime | None,
    end_from: datetime | None,
    end_to: datetime | None,
    update_from: datetime | None,
    update_to: datetime | None,
    active: bool | None,
    dry_run: bool | None,
    recurring: bool | None,
    dispatch_ids: tuple[list[int], ...],
    queries: tuple[str, ...],
    sort_by: str | None,
    sort_order: str | None,
    page_size: int | None,
    running: bool | None,
    type_: str | None,
    as_json: bool,
) -> None:
    """List the dispatches of a microgrid that match every filter given."""
    client = settings.client()
    sort_fields = {
        "start-time": SortField.START_TIME,
        "create-time": SortField.CREATE_TIME,
        "update-time": SortField.LAST_UPDATE_TIME,
    }
    orders = {"asc": SortOrder.ASCENDING, "desc": SortOrder.DESCENDING}
    filters: dict[str, Any] = {
        "target_components": targets,
        "start_from": start_from,
        "start_to": start_to,
        "end_from": end_from,
        "end_to": end_to,
        "update_from": update_from,
        "update_to": update_to,
        "active": active,
        "dry_run": dry_run,
        "recurring": recurring,
        "dispatch_ids": _flatten(dispatch_ids),
        "filter_queries": queries,
        "sort_by": sort_fields[sort_by] if sort_by else SortField.UNSPECIFIED,
        "sort_order": orders[sort_order] if sort_order else SortOrder.UNSPECIFIED,
        "page_size": page_size,
    }
    as_json = as_json or settings.json

    async def run() -> None:
        from ._output import dispatch_json, dispatch_table, json_line

        now = datetime.now(UTC)
        shown = []
        async with client:
            async for page in client.list(microgrid_id, **filters):
                for dispatch in page:
                    if type_ is not None and dispatch.type != type_:
                        continue
                    if running is not None and dispatch.started_at(now) != running:
                        continue
                    if as_json:
                        click.echo(json_line(dispatch_json(dispatch)))
                    else:
                        shown.append(dispatch)
        if not as_json:
            title = f"Microgrid {microgrid_id}: {len(shown)} dispatch(es)"
            _console().print(dispatch_table(shown, now, title=title))

    settings.run(run)


# ------------------------------------------------------------------------------ get


def _ids_command(function: Callable[..., None]) -> click.Command:
    """A command of MICROGRID_ID and IDS... (`get`, `delete`), with --json."""
    function = click.pass_obj(function)
    function = _json_option(function)
    function = click.argument(
        "dispatch_ids", type=IdsType(), nargs=-1, required=True, metavar="IDS..."
    )(function)
    function = click.argument("microgrid_id", type=_MICROGRID)(function)
    return cli.command()(function)


def _for_each_id(
    settings: _Settings,
    client: Client,
    dispatch_ids: tuple[list[int], ...],
    call: Callable[[int], Awaitable[_T]],
    show: Callable[[int, _T], None],
) -> None:
    """Run `call` for each id, in order and once each, and `show` each result.

    A missing dispatch is reported on stderr and the other ids still run; the exit code
    is then 1. Any other error ends the command.
    """
    missing: list[int] = []

    async def run() -> None:
        async with client:
            for dispatch_id in _flatten(dispatch_ids):
                try:
                    result = await call(dispatch_id)
                except NotFound as exc:
                    _error_line(exc)
                    missing.append(dispatch_id)
                    continue
                show(dispatch_id, result)

    settings.run(run)
    if missing:
        raise SystemExit(1)


@_ids_command
def get(
    settings: _Settings, /, microgrid_id: int, dispatch_ids: tuple[list[int], ...], as_json: bool
) -> None:
    """Show dispatches by id (`5`, `1-3`, `1..3`, `1,2,5`).

    A missing id is reported and the others are still shown; the exit code is then 1.
    """
    from ._output import dispatch_details, dispatch_json, json_line

    client = settings.client()
    now = datetime.now(UTC)

    def show(_: int, dispatch: Dispatch) -> None:
        if as_json or settings.json:
            click.echo(json_line(dispatch_json(dispatch)))
        else:
            title = f"Dispatch #{dispatch.id} of microgrid {microgrid_id}"
            _console().print(dispatch_details(dispatch, now, title=title))

    def call(dispatch_id: int) -> Awaitable[Dispatch]:
        return client.get(microgrid_id=microgrid_id, dispatch_id=dispatch_id)

    _for_each_id(settings, client, dispatch_ids, call, show)


# ------------------------------------------------------------------- create, update


def _recurrence_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The recurrence options `create` and `update` share."""
    options = [
        click.option(
            "-f",
            "--frequency",
            type=FrequencyType(),
            help="Repeat: minutely, hourly, daily, weekly, monthly or yearly.",
        ),
        click.option("--interval", type=int, help="Every INTERVAL frequency units (default 1)."),
        click.option("--count", type=int, help="End after this many runs."),
        click.option("--until", type=TimeType(), metavar="TIME", help="End at this time."),
        click.option("--by-minute", type=int, multiple=True, help="Only at these minutes."),
        click.option("--by-hour", type=int, multiple=True, help="Only at these hours (UTC)."),
        click.option(
            "--by-weekday",
            type=WeekdayType(),
            multiple=True,
            help="Only on these weekdays (MON, tuesday, ...).",
        ),
        click.option(
            "--by-monthday",
            type=int,
            multiple=True,
            help="Only on these days of the month (-1: the last).",
        ),
        click.option("--by-month", type=int, multiple=True, help="Only in these months (1-12)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@attrs.frozen(kw_only=True)
class _RecurrenceInput:
    """The recurrence options as given (None or empty: not given)."""

    frequency: Frequency | None
    interval: int | None
    count: int | None
    until: datetime | None
    by_minute: tuple[int, ...]
    by_hour: tuple[int, ...]
    by_weekday: tuple[Weekday, ...]
    by_monthday: tuple[int, ...]
    by_month: tuple[int, ...]

    def end_criteria(self) -> EndCriteria | None:
        if self.count is not None and self.until is not None:
            raise click.UsageError("give --count or --until, not both")
        if self.count is not None:
            return EndCriteria(count=self.count)
        if self.until is not None:
            return EndCriteria(until=self.until)
        return None

    def given(self) -> list[str]:
        """The options given besides --frequency, by their names."""
        values = {
            "--interval": self.interval is not None,
            "--count": self.count is not None,
            "--until": self.until is not None,
            "--by-minute": bool(self.by_minute),
            "--by-hour": bool(self.by_hour),
            "--by-weekday": bool(self.by_weekday),
            "--by-monthday": bool(self.by_monthday),
            "--by-month": bool(self.by_month),
        }
        return [name for name, present in values.items() if present]

    def rule(self) -> RecurrenceRule | None:
        """The whole rule for `create`, or None when no option was given."""
        if self.frequency is None:
            if self.given():
                raise click.UsageError(f"{self.given()[0]} needs --frequency")
            return None
        try:
            return RecurrenceRule(
                frequency=self.frequency,
                interval=1 if self.interval is None else self.interval,
                end_criteria=self.end_criteria(),
                byminutes=self.by_minute,
                byhours=self.by_hour,
                byweekdays=self.by_weekday,
                bymonthdays=self.by_monthday,
                bymonths=self.by_month,
            )
        except (TypeError, ValueError) as exc:
            raise click.UsageError(_one_line(exc)) from None

    def fields(self) -> dict[str, Any]:
        """The `recurrence.*` update keys for the options given."""
        fields: dict[str, Any] = {}
        if self.frequency is not None:
            fields["recurrence.frequency"] = self.frequency
        if self.interval is not None:
            fields["recurrence.interval"] = self.interval
        end = self.end_criteria()
        if end is not None:
            fields["recurrence.end_criteria"] = end
        pairs: Mapping[str, tuple[Any, ...]] = {
            "recurrence.byminutes": self.by_minute,
            "recurrence.byhours": self.by_hour,
            "recurrence.byweekdays": self.by_weekday,
            "recurrence.bymonthdays": self.by_monthday,
            "recurrence.bymonths": self.by_month,
        }
        fields.update({path: list(values) for path, values in pairs.items() if values})
        return fields


def _print_dispatch(settings: _Settings, /, as_json: bool, title: str, dispatch: Any) -> None:
    from ._output import dispatch_details, dispatch_json, json_line

    if as_json or settings.json:
        click.echo(json_line(dispatch_json(dispatch)))
    else:
        _console().print(dispatch_details(dispatch, datetime.now(UTC), title=title))


@cli.command()
@click.argument("microgrid_id", type=_MICROGRID)
@click.argument("type_", metavar="TYPE")
@click.argument("target", type=TargetType())
@click.argument("start_time", type=TimeType(now_literal=True))
@click.argument("duration", type=DurationType(), required=False)
@click.option("--active", type=bool, default=True, show_default=True, help="Execute it at all.")
@click.option(
    "--dry-run",
    type=bool,
    default=False,
    show_default=True,
    help="Actors only log what they would do.",
)
@click.option("-p", "--payload", type=JsonObjectType(), help="A JSON object for the actors.")
@_recurrence_options
@_json_option
@click.pass_obj
def create(
    settings: _Settings,
    /,
    microgrid_id: int,
    type_: str,
    target: TargetComponents,
    start_time: datetime | Literal["NOW"],
    duration: timedelta | None,
    active: bool,
    dry_run: bool,
    payload: dict[str, Any] | None,
    as_json: bool,
    **recurrence: Any,
) -> None:
    """Create a dispatch of TYPE for TARGET from START_TIME, lasting DURATION.

    START_TIME `NOW` starts it at once; without DURATION it runs until stopped.
    The recurrence options (--frequency first) make it repeat, e.g.
    `-f daily --by-weekday MON --by-weekday FRI --count 10`.
    """
    client = settings.client()
    rule = _RecurrenceInput(**recurrence).rule()

    async def run() -> None:
        async with client:
            dispatch = await client.create(
                microgrid_id,
                type_,
                start_time,
                duration,
                target,
                active=active,
                dry_run=dry_run,
                payload=payload,
                recurrence=rule,
            )
        _print_dispatch(settings, as_json, f"Created dispatch #{dispatch.id}", dispatch)

    settings.run(run)


@cli.command()
@click.argument("microgrid_id", type=_MICROGRID)
@click.argument("dispatch_id", type=click.IntRange(min=0))
@click.option("--start-time", type=TimeType(), metavar="TIME", help="A new start time.")
@click.option("--duration", type=DurationType(), help="A new duration.")
@click.option("--no-duration", is_flag=True, help="Run until stopped.")
@click.option("-t", "--target", type=TargetType(), help="A new target.")
@click.option("--active", type=bool, help="Execute it (true) or not (false).")
@click.option("-p", "--payload", type=JsonObjectType(), help="A new payload (a JSON object).")
@_recurrence_options
@click.option("--no-recurrence", is_flag=True, help="Remove the recurrence: run once.")
@_json_option
@click.pass_obj
def update(
    settings: _Settings,
    /,
    microgrid_id: int,
    dispatch_id: int,
    start_time: datetime | None,
    duration: timedelta | None,
    no_duration: bool,
    target: TargetComponents | None,
    active: bool | None,
    payload: dict[str, Any] | None,
    no_recurrence: bool,
    as_json: bool,
    **recurrence: Any,
) -> None:
    """Change fields of a dispatch; only the options given change.

    Its type and dry-run flag cannot change. A recurrence option changes that part of
    the rule alone (e.g. `--by-weekday MON` keeps the frequency).
    """
    fields: dict[str, Any] = {}
    if start_time is not None:
        fields["start_time"] = start_time
    if duration is not None and no_duration:
        raise click.UsageError("give --duration or --no-duration, not both")
    if duration is not None or no_duration:
        fields["duration"] = duration
    if target is not None:
        fields["target"] = target
    if active is not None:
        fields["active"] = active
    if payload is not None:
        fields["payload"] = payload
    rule = _RecurrenceInput(**recurrence)
    if no_recurrence:
        if rule.frequency is not None or rule.given():
            raise click.UsageError("--no-recurrence cannot go with other recurrence options")
        fields["recurrence"] = RecurrenceRule()
    fields.update(rule.fields())
    if not fields:
        raise click.UsageError("nothing to update: give at least one field option (see --help)")
    client = settings.client()

    async def run() -> None:
        async with client:
            dispatch = await client.update(
                microgrid_id=microgrid_id, dispatch_id=dispatch_id, new_fields=fields
            )
        _print_dispatch(settings, as_json, f"Updated dispatch #{dispatch.id}", dispatch)

    settings.run(run)


# --------------------------------------------------------------------------- delete


@_ids_command
def delete(
    settings: _Settings, /, microgrid_id: int, dispatch_ids: tuple[list[int], ...], as_json: bool
) -> None:
    """Delete dispatches by id (`5`, `1-3`, `1..3`, `1,2,5`).

    A missing id is reported and the others are still deleted; the exit code is then 1.
    """
    from ._output import json_line

    client = settings.client()

    def show(dispatch_id: int, _: None) -> None:
        if as_json or settings.json:
            click.echo(json_line({"deleted": dispatch_id, "microgrid_id": microgrid_id}))
        else:
            click.echo(f"Deleted dispatch #{dispatch_id} of microgrid {microgrid_id}")

    def call(dispatch_id: int) -> Awaitable[None]:
        return client.delete(microgrid_id=microgrid_id, dispatch_id=dispatch_id)

    _for_each_id(settings, client, dispatch_ids, call, show)


# --------------------------------------------------------------------------- stream


@cli.command()
@click.argument("microgrid_id", type=_MICROGRID)
@click.option(
    "--resync",
    is_flag=True,
    help="Start with the dispatches that exist (as synthesized CREATED events) and "
    "fill every reconnect's gap the same way.",
)
@click.option("-n", "--count", type=click.IntRange(min=1), help="Stop after this many events.")
@_json_option
@click.pass_obj
def stream(
    settings: _Settings, /, microgrid_id: int, resync: bool, count: int | None, as_json: bool
) -> None:
    """Print the changes to a microgrid's dispatches as they happen.

    Runs until Ctrl-C (or SIGTERM, or --count events); reconnects on its own, and says
    so on stderr. Events go to stdout, one per line.
    """
    client = settings.client()
    as_json = as_json or settings.json

    async def follow(receiver: DispatchReceiver[DispatchEvent | StreamNotice]) -> None:
        from ._output import event_json, event_text, json_line

        console = _console()
        seen = 0
        async for item in receiver:
            if isinstance(item, StreamConnected):
                again = f" (after {item.reconnects} reconnects)" if item.reconnects else ""
                click.echo(f"stream of microgrid {microgrid_id} connected{again}", err=True)
            elif isinstance(item, StreamReconnecting):
                cause = _network_error(item.cause) if item.cause else "the server ended it"
                click.echo(
                    f"stream of microgrid {microgrid_id} lost ({cause}); attempt "
                    f"{item.attempt} in {item.delay:.1f} s",
                    err=True,
                )
            elif isinstance(item, DispatchEvent):
                if as_json:
                    click.echo(json_line(event_json(item)))
                else:
                    console.print(event_text(item, datetime.now(UTC)), soft_wrap=True)
                sys.stdout.flush()
                seen += 1
                if count is not None and seen >= count:
                    return

    async def run() -> None:
        # The error that ended the stream, raised outside the task group (which would
        # wrap it in an ExceptionGroup).
        failure: list[GrpcError | DecodeError] = []
        with _library_log():
            async with client, anyio.create_task_group() as tasks:
                tasks.start_soon(_cancel_on_signal, tasks.cancel_scope)
                try:
                    async with client.stream(microgrid_id, resync=resync, notices=True) as receiver:
                        await follow(receiver)
                except (GrpcError, DecodeError) as exc:
                    failure.append(exc)
                tasks.cancel_scope.cancel()
        if failure:
            raise failure[0]

    settings.run(run)


@cli.command()
@click.argument("microgrid_id", type=_MICROGRID)
@click.option("-t", "--type", "dispatch_type", help="Only dispatches of this type.")
@click.option(
    "--merge",
    type=click.Choice(["none", "type", "type-target"]),
    default="none",
    show_default=True,
    help="Group dispatches that run at the same time: each on its own, by type, or by "
    "type and target.",
)
@click.option("-n", "--count", type=click.IntRange(min=1), help="Stop after this many changes.")
@_json_option
@click.pass_obj
def watch(
    settings: _Settings,
    /,
    microgrid_id: int,
    dispatch_type: str | None,
    merge: str,
    count: int | None,
    as_json: bool,
) -> None:
    """Print when dispatches start, stop or are reconfigured, as it happens.

    Runs a scheduler on this machine's clock: one line per change, with the dispatch in
    force (a payload change while running is a reconfiguration). Runs until Ctrl-C (or
    SIGTERM, or --count changes); reconnects on its own and catches up on what changed
    meanwhile.
    """
    from ._output import json_line
    from ._watch import MERGES, change_json, change_text, watch

    client = settings.client()
    as_json = as_json or settings.json
    console = _console()

    def emit(change: RunningChange) -> None:
        if as_json:
            click.echo(json_line(change_json(change)))
        else:
            console.print(change_text(change), soft_wrap=True)

    async def run() -> None:
        await watch(
            client,
            microgrid_id,
            dispatch_type=dispatch_type,
            merge=MERGES[merge],
            count=count,
            emit=emit,
            on_signal=_cancel_on_signal,
        )

    settings.run(run)


class _EchoHandler(logging.Handler):
    """Write the library's log records to stderr as `dispatch-client: LEVEL: message`.

    Drops the stream's "ended ...; reconnecting" warnings: `stream` prints its own
    notices for those.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("dispatch-client: %(levelname)s: %(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("the stream of microgrid %d ended")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _library_log() -> Iterator[None]:
    """Show the library's warnings and errors on stderr while the block runs."""
    logger = logging.getLogger("dispatch_client")
    handler = _EchoHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


async def _cancel_on_signal(scope: anyio.CancelScope) -> None:
    """Cancel `scope` at SIGINT or SIGTERM: the normal way to stop following a stream."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            _log.info("stopping on %s", signal.Signals(signum).name)
            scope.cancel()
            return


# ----------------------------------------------------------------------- completion


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    E.g. `eval "$(dispatch-client completion bash)"` in ~/.bashrc. Commands, options,
    target names, weekdays and frequencies complete.
    """
    completer = click.shell_completion.get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "dispatch-client", "_DISPATCH_CLIENT_COMPLETE").source())


# ---------------------------------------------------------------------------- serve


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
    # Imported here: `dispatch-client --help` and other commands need none of it.
    from dispatch_client.testing import FakeDispatchService, StoreCorrupt

    try:
        service = FakeDispatchService(keys=list(keys) or None, sign_secret=sign_secret, db_path=db)
    except (OSError, ValueError, StoreCorrupt) as exc:
        raise click.ClickException(f"cannot start the service: {exc}") from None
    with service:
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.INFO if verbose else logging.WARNING,
            format="dispatch-client serve: %(levelname)s: %(name)s: %(message)s",
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
    # Imported here: `dispatch-client --help` and other commands need none of it.
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
        format="dispatch-client replay: %(levelname)s: %(name)s: %(message)s",
    )
    try:
        anyio.run(_replay_until_stopped, handler, host, port, backend="asyncio")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers were in place: still a clean stop.
        pass


def _one_line(exc: object) -> str:
    """An error's message (or any text) on one line (a click error must not spill over lines)."""
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
    """Run `dispatch-client`: the console entry point.

    Args:
        argv: The arguments after the program name; None takes them from `sys.argv`.

    Raises:
        SystemExit: Always, with the command's exit code (click's standalone mode).
    """
    cli.main(args=None if argv is None else list(argv), prog_name="dispatch-client")
