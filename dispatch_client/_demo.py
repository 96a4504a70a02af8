"""The demo behind `just demo`: `python -m dispatch_client._demo [--backend trio]`.

It starts `dispatch-cli serve` (the fake Dispatch service over real gRPC) on a free
port, then runs a short scripted session with the client: create a recurring dispatch
(charge the batteries every weekday at 14:00 in Berlin for an hour) and a one-off dry
run, list them page by page and with a filter, update one, get it back, delete the
other and show the typed error a missing dispatch gives, then stop the server. It also
shows what `Dispatch` computes locally: the next runs and the runs a scheduler offline
for a week would have missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ._client import Client
from ._types import (
    BatteryType,
    Dispatch,
    ElectricalComponentCategory,
    Frequency,
    RecurrenceRule,
    TargetCategories,
    TargetIds,
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
    """Run `dispatch-cli serve` on a free port in a child process; yield its URL.

    Args:
        key: The one API key the server accepts.

    Yields:
        The server's `grpc://` URL, read from the first line it prints.

    Raises:
        RuntimeError: If the server exits before printing its URL.
    """
    command = [sys.executable, "-m", "dispatch_client._cli", "serve", "--port", "0", "--key", key]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            if not url.startswith("grpc://"):
                raise RuntimeError(f"dispatch-cli serve did not start (it printed {url!r})")
            yield url
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


def _first_start(now: datetime) -> datetime:
    """The next weekday 14:00 in Berlin that is at least an hour away."""
    day = now.astimezone(BERLIN) + timedelta(days=1)
    start = day.replace(hour=14, minute=0, second=0, microsecond=0)
    while start.weekday() >= 5 or start - now < timedelta(hours=1):
        start += timedelta(days=1)
    return start


async def session(url: str, key: str, say: Callable[[str], None]) -> None:
    """Run the scripted session against the server at `url`, describing each step.

    Args:
        url: The server URL.
        key: The API key.
        say: Where each line of output goes.
    """
    from transports import NotFound

    now = datetime.now(UTC)
    async with Client(server_url=url, key=key) as client:
        charge = await client.create(
            MICROGRID,
            "BATTERY_CHARGE",
            _first_start(now),
            timedelta(hours=1),
            TargetCategories(BatteryType.LI_ION, ElectricalComponentCategory.EV_CHARGER),
            payload={"target_power_w": 25_000.0, "soc_limit_pct": 90, "reason": "solar surplus"},
            # The wire carries times in UTC, so rules are evaluated in UTC: the runs
            # start at the start time's UTC hour (byhours would count UTC hours too).
            recurrence=RecurrenceRule(frequency=Frequency.DAILY, interval=1, byweekdays=WEEKDAYS),
        )
        say(f"1. created #{charge.id}, recurring:")
        say("\n".join("   " + line for line in describe(charge)))
        say("   next three runs: " + ", ".join(_when(r) for r in next_runs(charge, now, 3)))
        test = await client.create(
            MICROGRID, "PV_CURTAIL_TEST", "NOW", timedelta(minutes=15), TargetIds(7, 8),
            dry_run=True,
        )  # fmt: skip
        say(f"2. created #{test.id}: {test.type}, a dry run starting now for 15 minutes")
        pages = [page async for page in client.list(MICROGRID, page_size=1)]
        summary = "; ".join(f"page {n}: #{p[0].id} {p[0].type}" for n, p in enumerate(pages, 1))
        say(f"3. list, page size 1: {len(pages)} pages ({summary})")
        recurring = [d.id async for page in client.list(MICROGRID, recurring=True) for d in page]
        say(f"4. list recurring=True: {recurring}")
        updated = await client.update(
            microgrid_id=MICROGRID,
            dispatch_id=charge.id,
            new_fields={
                "duration": timedelta(minutes=30),
                "recurrence.byweekdays": [Weekday.MONDAY, Weekday.WEDNESDAY, Weekday.FRIDAY],
                "payload": {"target_power_w": 18_000.0, "reason": "smaller surplus"},
            },
        )
        days = updated.recurrence.byweekdays if updated.recurrence is not None else ()
        weekdays = ", ".join(day.name.title()[:3] for day in days)
        say(f"5. updated #{updated.id}: lasts {updated.duration}, on {weekdays}")
        fetched = await client.get(microgrid_id=MICROGRID, dispatch_id=charge.id)
        say(
            f"6. get #{fetched.id}: payload {json.dumps(fetched.payload, sort_keys=True)}, "
            f"updated at {fetched.update_time:%H:%M:%S} UTC"
        )
        await client.delete(microgrid_id=MICROGRID, dispatch_id=test.id)
        say(f"7. deleted #{test.id}")
        try:
            await client.get(microgrid_id=MICROGRID, dispatch_id=test.id)
        except NotFound as error:
            say(f"8. get #{test.id} again: {type(error).__name__}: {error.message}")
        left = [d.id async for page in client.list(MICROGRID) for d in page]
        say(f"9. list: {left} left")
        transport = type(client.transport).__name__
    say(f"(client on {transport}; the server checked the API key on every call)")


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
        say(f"dispatch-cli serve is listening on {url}")
        say("")
        anyio.run(session, url, DEMO_KEY, say, backend=args.backend)
    say("")
    say("server stopped")
    say("")
    say("What Dispatch computes locally, for the example dispatch:")
    sys.stdout.write(render(datetime.now(UTC)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
