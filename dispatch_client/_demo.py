"""The demo behind `just demo`: `python -m dispatch_client._demo [--backend trio]`.

It starts `dispatch-client serve` (the fake Dispatch service over real gRPC) on a free
port, then runs a short scripted session of `dispatch-client` commands, each a real process:
create a recurring dispatch (charge the batteries every weekday from 14:00 tomorrow for
an hour) and a one-off dry run starting now, show the table, follow `stream` in the
background while one is updated and the other deleted, show the events it printed and
the error a missing dispatch gives, then stop the server. It also shows what `Dispatch`
computes locally: the next runs and the runs a scheduler offline for a week would have
missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from ._types import (
    BatteryType,
    Dispatch,
    ElectricalComponentCategory,
    Frequency,
    RecurrenceRule,
    TargetCategories,
    Weekday,
)

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = (Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY, Weekday.FRIDAY)


def example_dispatch() -> Dispatch:
    """Build the demo dispatch: a weekday battery charge at 14:00 Berlin time, one hour.

    Returns:
        The dispatch (the same one on every call).
    """
    created = datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
    return Dispatch(
        id=1,
        type="BATTERY_CHARGE",
        start_time=datetime(2026, 1, 5, 14, 0, tzinfo=BERLIN),
        duration=timedelta(hours=1),
        target=TargetCategories(BatteryType.LI_ION, ElectricalComponentCategory.EV_CHARGER),
        active=True,
        dry_run=False,
        payload={"target_power_w": 25_000.0, "soc_limit_pct": 90, "reason": "solar surplus"},
        recurrence=RecurrenceRule(
            frequency=Frequency.DAILY,
            interval=1,
            byweekdays=WEEKDAYS,
            byhours=(14,),
            byminutes=(0,),
        ),
        create_time=created,
        update_time=created,
    )


def _when(moment: datetime) -> str:
    """Format a datetime with weekday and UTC offset, e.g. `Mon 2026-01-05 14:00 +01:00`."""
    return moment.strftime("%a %Y-%m-%d %H:%M %z")[:-2] + ":" + moment.strftime("%z")[-2:]


def describe(dispatch: Dispatch) -> list[str]:
    """Describe a dispatch in a few readable lines.

    Args:
        dispatch: The dispatch.

    Returns:
        The lines, without trailing newlines.
    """
    rule = dispatch.recurrence
    if rule is None or rule.frequency is Frequency.UNSPECIFIED:
        repeats = "once"
    else:
        days = ", ".join(day.name.title()[:3] for day in rule.byweekdays) or "any day"
        repeats = f"{rule.frequency.name.lower()} (every {rule.interval}), on {days}"
    return [
        f"Dispatch #{dispatch.id}: {dispatch.type}",
        f"  target     {dispatch.target!r}",
        f"  starts     {_when(dispatch.start_time)} ({dispatch.start_time.tzinfo})",
        f"  lasts      {dispatch.duration if dispatch.duration is not None else 'until stopped'}",
        f"  repeats    {repeats}",
        f"  active     {dispatch.active}   dry run {dispatch.dry_run}",
        f"  payload    {json.dumps(dispatch.payload, sort_keys=True)}",
    ]


def next_runs(dispatch: Dispatch, after: datetime, count: int) -> list[datetime]:
    """Return up to `count` runs starting at or after `after`.

    Args:
        dispatch: The dispatch.
        after: A timezone-aware datetime.
        count: How many runs at most.

    Returns:
        The run starts, oldest first.
    """
    runs: list[datetime] = []
    found = dispatch.next_run_after(after)
    while found is not None and len(runs) < count:
        runs.append(found)
        found = dispatch.next_run_after(found + timedelta(microseconds=1))
    return runs


def render(now: datetime) -> str:
    """Render the whole demo as text, as seen at `now`.

    Args:
        now: The current time, timezone-aware.

    Returns:
        The text, ending with a newline.
    """
    dispatch = example_dispatch()
    lines = describe(dispatch)
    lines += ["", f"Now: {_when(now.astimezone(BERLIN))}", "", "Next five runs:"]
    lines += [f"  {_when(run)}" for run in next_runs(dispatch, now, 5)]
    until = dispatch.until_at(now)
    running = f"yes, until {_when(until)}" if until is not None else "no"
    lines += ["", f"Running now: {running} (started_at(now) = {dispatch.started_at(now)})"]
    missed = dispatch.missed_runs(now - timedelta(days=7), now)
    lines += ["", f"Missed while offline for the past week: {len(missed)} run(s)"]
    lines += [f"  {_when(run)}" for run in missed]
    return "\n".join(lines) + "\n"


DEMO_KEY = "demo-key"
"""The API key the demo's server accepts."""

MICROGRID = 1


@contextlib.contextmanager
def running_server(key: str = DEMO_KEY) -> Iterator[str]:
    """Run `dispatch-client serve` on a free port in a child process; yield its URL.

    Args:
        key: The one API key the server accepts.

    Yields:
        The server's `grpc://` URL, read from the first line it prints.

    Raises:
        RuntimeError: If the server exits before printing its URL.
    """
    command = [sys.executable, "-m", "dispatch_client", "serve", "--port", "0", "--key", key]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            if not url.startswith("grpc://"):
                raise RuntimeError(f"dispatch-client serve did not start (it printed {url!r})")
            yield url
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


_ID = re.compile(r"(?:Created|Updated) dispatch #(\d+)")


async def session(
    url: str, key: str, say: Callable[[str], None], *, backend: str = "asyncio"
) -> None:
    """Run the scripted `dispatch-client` session against the server at `url`.

    Every step is a real `dispatch-client` process (`python -m dispatch_client`), shown
    with its command line and output; `stream` runs in the background meanwhile.

    Args:
        url: The server URL.
        key: The API key.
        say: Where each line of output goes.
        backend: The async library the commands run on.

    Raises:
        RuntimeError: If a command fails unexpectedly or prints what the script does
            not expect.
    """
    import anyio
    from anyio.streams.buffered import BufferedByteReceiveStream

    env = {
        **os.environ,
        "DISPATCH_API_URL": url,
        "DISPATCH_API_AUTH_KEY": key,
        "DISPATCH_CLI_BACKEND": backend,
        # The commands print to a pipe: give them this terminal's width (150 without one).
        "COLUMNS": str(shutil.get_terminal_size((150, 24)).columns),
    }
    base = [sys.executable, "-m", "dispatch_client"]

    def show(args: Sequence[str], suffix: str = "") -> None:
        say("$ dispatch-client " + shlex.join(args) + suffix)

    async def cli(*args: str, expect: int = 0) -> str:
        show(args)
        done = await anyio.run_process([*base, *args], env=env, check=False)
        output = (done.stdout + done.stderr).decode()
        for line in output.rstrip("\n").splitlines():
            say(line)
        say("")
        if done.returncode != expect:
            raise RuntimeError(f"dispatch-client {args[0]} exited {done.returncode}: {output}")
        return output

    say(f"$ export DISPATCH_API_URL='{url}' DISPATCH_API_AUTH_KEY={key}")
    say("")
    charge = await cli(
        "create", str(MICROGRID), "BATTERY_CHARGE", "BATTERY:LI_ION,EV_CHARGER",
        "tomorrow 14:00", "1h", "--frequency", "daily",
        *(arg for day in ("MON", "TUE", "WED", "THU", "FRI") for arg in ("--by-weekday", day)),
        "--payload", '{"target_power_w": 25000, "reason": "solar surplus"}',
    )  # fmt: skip
    test = await cli(
        "create", str(MICROGRID), "PV_CURTAIL_TEST", "7,8", "NOW", "15 minutes",
        "--dry-run", "true",
    )  # fmt: skip
    charge_id, test_id = (_created_id(output) for output in (charge, test))
    await cli("list", str(MICROGRID))

    # Follow the stream meanwhile: --resync first reports the two dispatches that exist
    # (synthesized CREATED events), so once they are out, no later change can be missed.
    follow = ["stream", str(MICROGRID), "--resync", "--count", "4"]
    show(follow, " &   # in the background, stops after 4 events")
    say("")
    async with await anyio.open_process([*base, *follow], env=env) as stream:
        assert stream.stdout is not None
        lines = BufferedByteReceiveStream(stream.stdout)
        events = [await _next_line(lines) for _ in range(2)]
        await cli(
            "update", str(MICROGRID), charge_id, "--duration", "30m",
            *(arg for day in ("MON", "WED", "FRI") for arg in ("--by-weekday", day)),
            "--payload", '{"target_power_w": 18000, "reason": "smaller surplus"}',
        )  # fmt: skip
        await cli("delete", str(MICROGRID), test_id)
        events += [await _next_line(lines) for _ in range(2)]
        await stream.wait()
    say("(the background stream printed:)")
    for line in events:
        say(line)
    say("")
    await cli("get", str(MICROGRID), test_id, expect=1)
    await cli("--json", "list", str(MICROGRID))


def _created_id(output: str) -> str:
    """The dispatch id in a `create` or `update` command's output."""
    found = _ID.search(output)
    if found is None:
        raise RuntimeError(f"no dispatch id in the output: {output}")
    return found.group(1)


async def _next_line(stream: Any) -> str:
    """The next line of a process's output, without its newline.

    Raises:
        RuntimeError: If the output ends first.
    """
    import anyio

    try:
        line: bytes = await stream.receive_until(b"\n", 1 << 16)
    except anyio.IncompleteRead:
        raise RuntimeError("the stream ended early") from None
    return line.decode().rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo: a served fake, a scripted session, the local schedule.

    Args:
        argv: Command-line arguments (`--backend asyncio|trio`).

    Returns:
        The exit status: 0 on success.
    """
    import anyio

    parser = argparse.ArgumentParser(prog="python -m dispatch_client._demo")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    with running_server() as url:
        say(f"dispatch-client serve is listening on {url}")
        say("")
        anyio.run(partial(session, backend=args.backend), url, DEMO_KEY, say)
    say("")
    say("server stopped")
    say("")
    say("What Dispatch computes locally, for the example dispatch:")
    sys.stdout.write(render(datetime.now(UTC)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
