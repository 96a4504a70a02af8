"""Soak: many clients, mixed calls and streams, for a while, with server restarts.

    python -m benchmarks.soak [--seconds 60] [--backend asyncio|trio|all]
                              [--transport default|grpclib|h2]

`just soak` runs it for 60 s on asyncio (GrpclibTransport and H2Transport) and on trio
(H2Transport). Each run, in this process, on loopback only:

* our fake server (`dispatch_client.testing`: FakeDispatchService over gRPC) on a fixed
  port, its dispatches in a SQLite file, so that they survive a restart;
* `--clients` clients (10), each making mixed unary calls (create, get, list, update,
  delete; each keeps at most `MAX_OWN` dispatches of its own) with a short pause between
  calls, and each following every one of `MICROGRIDS` microgrids with a resync receiver:
  10 x 5 = 50 stream calls;
* the server stopped and started again on the same port over the same file twice, at a
  third and two thirds of the run.

Afterwards the producers stop and every receiver must converge to what `list()` returns.
Bounds, each printed with its figure; the exit status is 1 when one fails:

* 0 unexpected errors: a call may fail only with a network error (`ConnectError`,
  `Unavailable`) while the server is down or just back (`GRACE` seconds), and a stream
  may not end at all;
* 0 lost stream events: every resync receiver's view equals the server's dispatches;
* the RSS at the end is at most 1.2x the RSS at 10 s (at half the run when it is
  shorter; the short test run reports it without asserting).

The test suite runs a 5-second version on asyncio and trio (`tests/test_soak.py`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio

from dispatch_client import (
    Client,
    ConnectError,
    Dispatch,
    DispatchEvent,
    DispatchReceiver,
    Event,
    TargetIds,
    Unavailable,
)
from dispatch_client.testing import FakeDispatchService, serve

__all__ = ["SoakResult", "main", "soak"]

MICROGRIDS = 5
"""Microgrids the clients create dispatches in, and stream."""
MAX_OWN = 8
"""Dispatches each client keeps at most (so the state, and every listing, stays small)."""
PAUSE = 0.02
"""Seconds each client waits between two calls."""
ERROR_PAUSE = 0.2
"""Seconds a client waits after a failed call, as an application would back off."""
GRACE = 5.0
"""Seconds after a restart during which network errors are still expected."""
DOWN = 0.5
"""Seconds the server stays down at each restart."""
RSS_BOUND = 1.2
"""The RSS at the end may be at most this times the RSS at the mark."""
CONVERGE_S = 30.0
"""Seconds the receivers get to converge once the producers stopped."""
_EXPECTED = (ConnectError, Unavailable)


def _rss_mb() -> float:
    """This process's resident set size now, in MB (Linux `/proc/self/statm`)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SoakResult:
    """What one soak run measured."""

    backend: str
    transport: str
    seconds: float
    calls: dict[str, int] = field(default_factory=dict)
    expected_errors: int = 0
    unexpected_errors: list[str] = field(default_factory=list)
    stream_events: int = 0
    restarts: int = 0
    lost_events: int = 0
    rss_mark_mb: float = 0.0
    rss_mark_at_s: float = 0.0
    rss_end_mb: float = 0.0
    check_rss: bool = True

    @property
    def rss_ratio(self) -> float:
        """RSS at the end over RSS at the mark."""
        return self.rss_end_mb / self.rss_mark_mb if self.rss_mark_mb else 0.0

    @property
    def failures(self) -> list[str]:
        """Every bound this run broke."""
        broken = []
        if self.unexpected_errors:
            broken.append(f"{len(self.unexpected_errors)} unexpected error(s)")
        if self.lost_events:
            broken.append(f"{self.lost_events} lost stream event(s)")
        if self.check_rss and self.rss_ratio > RSS_BOUND:
            broken.append(f"RSS grew {self.rss_ratio:.2f}x (bound {RSS_BOUND}x)")
        return broken

    def lines(self) -> list[str]:
        """The figures, one per line."""
        calls = ", ".join(f"{kind} {count:,}" for kind, count in sorted(self.calls.items()))
        rss = (
            f"RSS {self.rss_mark_mb:.1f} MB at {self.rss_mark_at_s:.0f} s, "
            f"{self.rss_end_mb:.1f} MB at the end ({self.rss_ratio:.2f}x"
            + (f", bound {RSS_BOUND}x)" if self.check_rss else ", not checked)")
        )
        out = [
            f"soak {self.backend} / {self.transport}: {self.seconds:.0f} s, "
            f"{self.restarts} server restarts",
            f"  calls: {sum(self.calls.values()):,} ({calls})",
            f"  errors: {self.expected_errors} expected (network, around restarts), "
            f"{len(self.unexpected_errors)} unexpected",
            f"  stream events delivered: {self.stream_events:,}; lost: {self.lost_events}",
            f"  {rss}",
        ]
        out += [f"  unexpected: {text}" for text in self.unexpected_errors[:5]]
        out.append(f"  {'FAILED: ' + '; '.join(self.failures) if self.failures else 'ok'}")
        return out


class _Run:
    """One soak run's state, shared by its tasks."""

    def __init__(self, result: SoakResult, port: int, database: Path) -> None:
        self.result = result
        self.port = port
        self.url = f"grpc://127.0.0.1:{port}?ssl=false"
        self.database = database
        self.started = time.monotonic()
        # (down at, back at) of every restart; back at is inf while it is down.
        self.windows: list[tuple[float, float]] = []
        self.stopping = False

    def now(self) -> float:
        return time.monotonic() - self.started

    def expected(self, error: BaseException, began: float) -> bool:
        """Whether a call begun at `began` may fail with `error` (the server was down)."""
        if not isinstance(error, _EXPECTED):
            return False
        ended = self.now()
        return any(began <= back + GRACE and ended >= down for down, back in self.windows)

    def record(self, kind: str, error: BaseException | None, began: float) -> None:
        calls = self.result.calls
        calls[kind] = calls.get(kind, 0) + 1
        if error is None:
            return
        if self.expected(error, began):
            self.result.expected_errors += 1
        else:
            self.result.unexpected_errors.append(
                f"{kind} at {began:.1f} s: {type(error).__name__}: {error}"
            )


def _later(rng: random.Random) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(hours=rng.randint(1, 48))


async def _producer(run: _Run, client: Client, seed: int, deadline: float) -> None:
    """Mixed unary calls on the client's own dispatches until `deadline`."""
    rng = random.Random(seed)
    own: dict[int, int] = {}  # dispatch id -> microgrid
    while run.now() < deadline:
        began = run.now()
        kind = rng.choice(("create", "create", "get", "list", "update", "delete"))
        if kind != "create" and not own:
            kind = "create"
        if kind == "create" and len(own) >= MAX_OWN:
            kind = "delete"
        target: int | None = None
        try:
            if kind == "create":
                microgrid = rng.randint(1, MICROGRIDS)
                made = await client.create(
                    microgrid, "SOAK", _later(rng), timedelta(minutes=15), TargetIds(seed)
                )
                own[made.id] = microgrid
            elif kind == "list":
                async for _ in client.list(rng.randint(1, MICROGRIDS)):
                    pass
            else:
                target = rng.choice(list(own))
                microgrid = own[target]
                if kind == "get":
                    await client.get(microgrid_id=microgrid, dispatch_id=target)
                elif kind == "update":
                    await client.update(
                        microgrid_id=microgrid,
                        dispatch_id=target,
                        new_fields={"start_time": _later(rng)},
                    )
                else:
                    del own[target]
                    await client.delete(microgrid_id=microgrid, dispatch_id=target)
        except Exception as error:  # every failure is counted, and judged
            run.record(kind, error, began)
            if target is not None:
                # It may or may not have happened: leave that dispatch alone.
                own.pop(target, None)
            await anyio.sleep(ERROR_PAUSE)  # the server is down: do not spin
        else:
            run.record(kind, None, began)
        await anyio.sleep(PAUSE)


async def _follow(
    run: _Run, receiver: DispatchReceiver[DispatchEvent], view: dict[int, Dispatch]
) -> None:
    """Apply a resync receiver's events to its view, as an application would."""
    began = run.now()
    try:
        async for event in receiver:
            run.result.stream_events += 1
            if event.event is Event.DELETED:
                view.pop(event.dispatch.id, None)
            else:
                view[event.dispatch.id] = event.dispatch
    except Exception as error:  # a stream must never end on its own
        run.record("stream", error, began)
        return
    if not run.stopping:
        run.result.unexpected_errors.append("a stream ended before the run did")


async def _server(run: _Run, seconds: float) -> None:
    """Serve, and restart twice (at a third and two thirds of the run), same port and file."""
    restarts_at = [seconds / 3, 2 * seconds / 3]
    while True:
        with FakeDispatchService(db_path=run.database, keys=["soak"]) as service:
            async with serve(service, port=run.port):
                if run.windows:
                    down, _ = run.windows[-1]
                    run.windows[-1] = (down, run.now())
                if not restarts_at:
                    await anyio.sleep_forever()
                await anyio.sleep(max(0.0, restarts_at.pop(0) - run.now()))
                run.windows.append((run.now(), float("inf")))
        run.result.restarts += 1
        await anyio.sleep(DOWN)


async def _listing(client: Client, microgrid: int) -> dict[int, Dispatch]:
    return {d.id: d async for page in client.list(microgrid) for d in page}


async def _converge(run: _Run, client: Client, views: list[tuple[int, dict[int, Dispatch]]]) -> int:
    """Wait for every view to equal the server's dispatches; return how many differ."""
    truth = {m: await _listing(client, m) for m in range(1, MICROGRIDS + 1)}

    def differing() -> int:
        return sum(
            len(truth[m].keys() ^ view.keys())
            + sum(1 for i in truth[m].keys() & view.keys() if truth[m][i] != view[i])
            for m, view in views
        )

    with anyio.move_on_after(CONVERGE_S):
        # Polling: the views change in the followers' tasks, with no event to wait on.
        while differing():  # noqa: ASYNC110
            await anyio.sleep(0.05)
    return differing()


async def soak(
    seconds: float,
    *,
    clients: int = 10,
    transport: Literal["default", "grpclib", "h2"] = "default",
    check_rss: bool = True,
    progress: Callable[[str], None] = lambda text: None,
) -> SoakResult:
    """Run one soak in the running event loop and return its figures.

    Args:
        seconds: How long the clients make calls.
        clients: How many clients (each also streams every microgrid).
        transport: The clients' transport; "default" picks by event loop.
        check_rss: Whether the RSS bound counts (off for short runs, where memory
            has not settled).
        progress: Called with a line of text now and then.
    """
    from dispatch_client._eventloop import running_library

    result = SoakResult(running_library(), transport, seconds, check_rss=check_rss)
    with tempfile.TemporaryDirectory(prefix="dispatch-soak-") as tmp:
        run = _Run(result, _free_port(), Path(tmp) / "dispatches.sqlite")
        mark_at = min(10.0, seconds / 2)
        result.rss_mark_at_s = mark_at
        chosen: Any = None if transport == "default" else transport
        with anyio.fail_after(seconds + CONVERGE_S + 120):
            async with anyio.create_task_group() as outer:
                outer.start_soon(_server, run, seconds)
                await anyio.sleep(0.5)  # the first server is up
                # Clients inside the task group: they close (ending their receivers,
                # so the followers) before it waits for its tasks.
                async with anyio.create_task_group() as work, AsyncExitStack() as stack:
                    opened: list[Client] = []
                    views: list[tuple[int, dict[int, Dispatch]]] = []
                    for index in range(clients):
                        client = Client(server_url=run.url, key="soak", transport=chosen)
                        await stack.enter_async_context(client)
                        opened.append(client)
                        for microgrid in range(1, MICROGRIDS + 1):
                            view: dict[int, Dispatch] = {}
                            views.append((microgrid, view))
                            work.start_soon(
                                _follow, run, client.stream(microgrid, resync=True), view
                            )
                        work.start_soon(_producer, run, client, index + 1, seconds)
                    progress(f"{clients} clients and {len(views)} streams running")
                    await anyio.sleep(max(0.0, mark_at - run.now()))
                    result.rss_mark_mb = _rss_mb()
                    progress(f"RSS {result.rss_mark_mb:.1f} MB at {run.now():.0f} s")
                    await anyio.sleep(max(0.0, seconds - run.now()))
                    await anyio.sleep(PAUSE * 10)  # the producers' last calls end
                    result.lost_events = await _converge(run, opened[0], views)
                    result.rss_end_mb = _rss_mb()
                    run.stopping = True
                outer.cancel_scope.cancel()
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the soak(s) asked for; print the figures; return 1 if a bound failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--backend", choices=("asyncio", "trio", "all"), default="all")
    parser.add_argument("--transport", choices=("default", "grpclib", "h2", "all"), default="all")
    args = parser.parse_args(argv)
    plans: list[tuple[str, str]] = []
    for backend in ("asyncio", "trio"):
        if args.backend not in (backend, "all"):
            continue
        for transport in ("grpclib", "h2") if args.transport == "all" else (args.transport,):
            if backend == "trio" and transport == "grpclib":
                continue  # grpclib runs on asyncio only
            plans.append((backend, transport))
    # Reconnect warnings are expected here (two restarts): keep the figures readable.
    logging.getLogger("dispatch_client").setLevel(logging.ERROR)
    failed = False
    for backend, transport in plans:
        print(f"soak {backend} / {transport} for {args.seconds:g} s ...", flush=True)
        result = anyio.run(
            functools.partial(
                soak,
                args.seconds,
                clients=args.clients,
                transport=transport,  # type: ignore[arg-type]
                check_rss=args.seconds >= 20,
                progress=lambda text: print(f"  {text}", flush=True),
            ),
            backend=backend,
        )
        print("\n".join(result.lines()), flush=True)
        failed = failed or bool(result.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
