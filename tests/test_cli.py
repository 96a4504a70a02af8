"""`dispatch-client` client commands against a served FakeDispatchService, on asyncio and trio.

One `dispatch-client serve` process serves the module (real gRPC on loopback); each test
works in a microgrid of its own. Commands run in process through click's `CliRunner`
(their `anyio.run` on the chosen backend), with each (backend, transport) pair:
asyncio + grpclib, asyncio + h2, trio + h2. `stream` runs as a real process, so it can
be stopped with a signal.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dispatch_client.cli._commands import cli, resolve_credentials
from tests.cli_process import command

KEY = "cli-test-key"
MODES = [("asyncio", "grpclib"), ("asyncio", "h2"), ("trio", "h2")]
TIMEOUT = 30


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A `dispatch-client serve` process accepting KEY, for the whole module."""
    with subprocess.Popen(
        [*command("serve"), "--key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        assert line.startswith("grpc://"), line
        try:
            yield line
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(TIMEOUT)


_microgrids = itertools.count(100)


@pytest.fixture
def microgrid() -> int:
    """A microgrid no other test of the module touches."""
    return next(_microgrids)


@pytest.fixture(params=MODES, ids=["asyncio-grpclib", "asyncio-h2", "trio-h2"])
def mode(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The backend and transport the CLI runs with."""
    backend, transport = request.param
    return backend, transport


class Cli:
    """Run `dispatch-client` in process against the module's server."""

    def __init__(self, url: str, mode: tuple[str, str]) -> None:
        self.url = url
        self.backend, self.transport = mode

    def __call__(self, *args: str, env: dict[str, str] | None = None, key: str = KEY) -> Result:
        """Run one command with the URL, key, backend and transport options first."""
        options = ["--url", self.url, "--backend", self.backend, "--transport", self.transport]
        if key:
            options += ["--auth-key", key]
        runner = CliRunner(env={"COLUMNS": "250", **(env or {})})
        return runner.invoke(cli, [*options, *args], catch_exceptions=False)

    def ok(self, *args: str) -> Result:
        """Run a command that must succeed."""
        result = self(*args)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str) -> list[dict[str, Any]]:
        """Run a command with --json; return its objects, one per line."""
        result = self.ok("--json", *args)
        return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def run(url: str, mode: tuple[str, str]) -> Cli:
    """The CLI on this test's backend and transport."""
    return Cli(url, mode)


def _later(hours: float) -> str:
    """An ISO 8601 time `hours` from now, with its offset."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def test_create_get_list_delete(run: Cli, microgrid: int) -> None:
    """The basic round: what `create` printed, `get` and `list` give back; `delete` ends it."""
    (created,) = run.json(
        "create", str(microgrid), "BATTERY_CHARGE", "BATTERY:LI_ION,EV_CHARGER",
        _later(2), "1h30m", "--payload", '{"power_w": 2500, "reason": "surplus"}',
    )  # fmt: skip
    assert created["type"] == "BATTERY_CHARGE"
    assert created["duration"] == 5400
    assert created["target"] == {"categories": ["BATTERY:LI_ION", "EV_CHARGER"]}
    assert created["payload"] == {"power_w": 2500, "reason": "surplus"}
    assert created["recurrence"] is None
    assert created["active"] is True
    assert created["dry_run"] is False
    assert run.json("get", str(microgrid), str(created["id"])) == [created]
    assert run.json("list", str(microgrid)) == [created]
    deleted = run.ok("delete", str(microgrid), str(created["id"]))
    assert f"Deleted dispatch #{created['id']}" in deleted.stdout
    assert run.json("list", str(microgrid)) == []


def test_tables_for_people(run: Cli, microgrid: int) -> None:
    """Without --json: a table of dispatches, and a details table for one."""
    (created,) = run.json("create", str(microgrid), "PV_CURTAIL", "7,8", "in 2 hours", "15m")
    listing = run.ok("list", str(microgrid)).stdout
    assert f"Microgrid {microgrid}: 1 dispatch(es)" in listing
    assert "PV_CURTAIL" in listing
    assert "7,8" in listing
    assert "15m" in listing
    assert "waiting" in listing
    details = run.ok("get", str(microgrid), str(created["id"])).stdout
    assert f"Dispatch #{created['id']} of microgrid {microgrid}" in details
    assert "until stopped" not in details
    created_text = run.ok("create", str(microgrid), "X", "1", "NOW").stdout
    assert "Created dispatch #" in created_text
    assert "until stopped" in created_text
    assert "running" in created_text


def test_create_with_recurrence(run: Cli, microgrid: int) -> None:
    """The recurrence options build the rule the server stores."""
    (created,) = run.json(
        "create", str(microgrid), "CHARGE", "BATTERY", _later(1), "3600",
        "-f", "daily", "--by-weekday", "MON", "--by-weekday", "friday",
        "--by-hour", "14", "--by-minute", "0", "--count", "10",
    )  # fmt: skip
    assert created["recurrence"] == {
        "frequency": "DAILY",
        "interval": 1,
        "end_criteria": {"count": 10, "until": None},
        "byminutes": [0],
        "byhours": [14],
        "byweekdays": ["MONDAY", "FRIDAY"],
        "bymonthdays": [],
        "bymonths": [],
    }
    listed = run.json("list", str(microgrid), "--recurring", "true")
    assert [d["id"] for d in listed] == [created["id"]]


def test_create_now_starts_at_once_and_runs(run: Cli, microgrid: int) -> None:
    """START_TIME NOW starts the dispatch immediately; no DURATION runs until stopped."""
    (created,) = run.json("create", str(microgrid), "RUN", "INVERTER:PV", "NOW")
    start = datetime.fromisoformat(created["start_time"])
    assert abs((start - datetime.now(UTC)).total_seconds()) < 60
    assert created["duration"] is None
    assert [d["id"] for d in run.json("list", str(microgrid), "--running", "true")] == [
        created["id"]
    ]
    assert run.json("list", str(microgrid), "--running", "false") == []


def test_list_filters(run: Cli, microgrid: int) -> None:
    """Server-side filters and the two local ones (--type, --running) combine."""
    mg = str(microgrid)
    a = run.json("create", mg, "ALPHA_CHARGE", "BATTERY", _later(1), "1h")[0]
    b = run.json("create", mg, "BETA", "1,2", _later(3), "1h", "--active", "false")[0]
    c = run.json("create", mg, "ALPHA_TEST", "INVERTER:PV", _later(5), "--dry-run", "true")[0]

    def ids(*options: str) -> list[int]:
        return sorted(d["id"] for d in run.json("list", mg, *options))

    assert ids() == sorted([a["id"], b["id"], c["id"]])
    assert ids("--active", "false") == [b["id"]]
    assert ids("--dry-run", "true") == [c["id"]]
    assert ids("-t", "BATTERY") == [a["id"]]
    assert ids("-t", "1") == [b["id"]]
    assert ids("-q", "ALPHA") == sorted([a["id"], c["id"]])
    assert ids("--query", f"#{b['id']}") == [b["id"]]
    assert ids("-T", "ALPHA_TEST") == [c["id"]]
    assert ids("--id", f"{a['id']},{c['id']}") == sorted([a["id"], c["id"]])
    assert ids("--start-from", _later(2), "--start-to", _later(4)) == [b["id"]]
    ordered = run.json("list", mg, "--sort-by", "start-time", "--sort-order", "desc")
    assert [d["id"] for d in ordered] == [c["id"], b["id"], a["id"]]
    paged = run.json("list", mg, "--page-size", "1")
    assert sorted(d["id"] for d in paged) == ids()


def test_update(run: Cli, microgrid: int) -> None:
    """Only the fields given change; recurrence parts change alone."""
    mg = str(microgrid)
    (created,) = run.json(
        "create", mg, "CHARGE", "BATTERY", _later(1), "1h", "-f", "weekly", "--by-weekday", "MON"
    )
    dispatch_id = str(created["id"])
    (updated,) = run.json(
        "update", mg, dispatch_id, "--duration", "30 minutes", "--by-weekday", "TUE",
        "--by-weekday", "THU", "--payload", '{"limit": 5}', "--active", "false",
    )  # fmt: skip
    assert updated["duration"] == 1800
    assert updated["recurrence"]["frequency"] == "WEEKLY"
    assert updated["recurrence"]["byweekdays"] == ["TUESDAY", "THURSDAY"]
    assert updated["payload"] == {"limit": 5}
    assert updated["active"] is False
    assert updated["start_time"] == created["start_time"]
    (cleared,) = run.json("update", mg, dispatch_id, "--no-duration", "--no-recurrence")
    assert cleared["duration"] is None
    assert cleared["recurrence"] is None
    (moved,) = run.json("update", mg, dispatch_id, "--start-time", "tomorrow 14:00", "-t", "5")
    assert moved["target"] == {"ids": [5]}
    start = datetime.fromisoformat(moved["start_time"]).astimezone()
    assert (start.hour, start.minute) == (14, 0)
    assert run.json("get", mg, dispatch_id) == [moved]


def test_delete_ranges_and_missing_ids(run: Cli, microgrid: int) -> None:
    """Ranges and lists delete each id once; a missing id is reported, the rest deleted."""
    mg = str(microgrid)
    ids = [run.json("create", mg, "T", "1", _later(1))[0]["id"] for _ in range(5)]
    first, second, third, fourth, fifth = ids
    result = run("delete", mg, f"{first}-{second}", f"{first}..{third}", f"{fifth},999999")
    assert result.exit_code == 1
    assert "999999" in result.stderr
    assert "NotFound" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout.count("Deleted dispatch") == 4
    assert [d["id"] for d in run.json("list", mg)] == [fourth]
    missing = run("get", mg, str(first), str(fourth))
    assert missing.exit_code == 1
    assert f"get dispatch {first} of microgrid {microgrid}" in missing.stderr
    assert f"Dispatch #{fourth}" in missing.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["update", "1", "1"], "nothing to update"),
        (["update", "1", "1", "--duration", "1h", "--no-duration"], "not both"),
        (["update", "1", "1", "--no-recurrence", "--count", "2"], "--no-recurrence"),
        (["create", "1", "T", "BATTERYY", "NOW"], "BATTERYY"),
        (["create", "1", "T", "1", "whenever it suits"], "whenever it suits"),
        (["create", "1", "T", "1", "NOW", "1 fortnight"], "1 fortnight"),
        (["create", "1", "T", "1", "5 minutes ago"], "must be in the future"),
        (["create", "1", "T", "1", "NOW", "--by-hour", "3"], "--by-hour needs --frequency"),
        (["create", "1", "T", "1", "NOW", "-f", "daily", "--by-hour", "25"], "25"),
        (["create", "1", "T", "1", "NOW", "-f", "daily", "--count", "1", "--until", "NOW"], "not"),
        (["create", "1", "T", "1", "NOW", "--payload", "[1, 2]"], "JSON object"),
        (["delete", "1", "5-2"], "5-2"),
        (["get", "1"], "Missing argument"),
        (["list", "1", "--start-from", "yesterday-ish"], "yesterday-ish"),
    ],
)
def test_bad_input_is_a_usage_error(run: Cli, args: list[str], message: str) -> None:
    """Bad input exits 2 with one clear line, before any call reaches the server."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_server_errors_exit_1_without_the_key(run: Cli, microgrid: int) -> None:
    """A wrong key is the server's error: exit 1, one line, and the key is not printed."""
    secret = "wrong-key-that-must-not-show"
    result = run("list", str(microgrid), key=secret)
    assert result.exit_code == 1
    assert "Unauthenticated" in result.stderr
    assert secret not in result.output
    assert "Traceback" not in result.output


def test_unreachable_server_exits_1(mode: tuple[str, str], microgrid: int) -> None:
    """Nothing listening: a network error, exit 1, one line."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = Cli(f"grpc://127.0.0.1:{port}?ssl=false", mode)(
        "--timeout", "3", "get", str(microgrid), "1"
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_settings_from_the_environment(url: str, mode: tuple[str, str], microgrid: int) -> None:
    """URL, key, backend and transport can come from the environment; the older key name too."""
    backend, transport = mode
    env = {
        "DISPATCH_API_URL": url,
        "DISPATCH_API_KEY": KEY,
        "DISPATCH_CLI_BACKEND": backend,
        "DISPATCH_CLI_TRANSPORT": transport,
        "DISPATCH_API_AUTH_KEY": "",
    }
    result = CliRunner(env=env).invoke(cli, ["--json", "list", str(microgrid)])
    assert result.exit_code == 0, result.output
    env["DISPATCH_API_AUTH_KEY"] = "not-the-key"
    wrong = CliRunner(env=env).invoke(cli, ["list", str(microgrid)])
    assert wrong.exit_code == 1
    assert "Unauthenticated" in wrong.stderr
    given = CliRunner(env=env).invoke(cli, ["--api-key", KEY, "list", str(microgrid)])
    assert given.exit_code == 0, given.output
    env.update(DISPATCH_API_AUTH_KEY="", DISPATCH_API_KEY="", FREQUENZ_API_KEY=KEY)
    generic = CliRunner(env=env).invoke(cli, ["list", str(microgrid)])
    assert generic.exit_code == 0, generic.output


_NONE = (None, None, None)


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        (("k", None, None), {"DISPATCH_API_SIGN_SECRET": "s"}, ("k", None)),
        ((None, None, "s"), {"DISPATCH_API_AUTH_KEY": "k"}, (None, "s")),
        ((None, "old", None), {}, ("old", None)),
        (("new", "old", None), {}, ("new", None)),
        (_NONE, {"DISPATCH_API_KEY": "old", "DISPATCH_API_SIGN_SECRET": "s"}, ("old", "s")),
        (_NONE, {"DISPATCH_API_AUTH_KEY": "k", "DISPATCH_API_KEY": "old"}, ("k", None)),
        (_NONE, {"DISPATCH_API_AUTH_KEY": "k", "FREQUENZ_API_SECRET": "g"}, ("k", None)),
        (_NONE, {"DISPATCH_API_SIGN_SECRET": "s", "FREQUENZ_API_KEY": "g"}, (None, "s")),
        (_NONE, {"FREQUENZ_API_KEY": "g", "FREQUENZ_API_SECRET": "gs"}, ("g", "gs")),
        (_NONE, {"DISPATCH_API_AUTH_KEY": "", "FREQUENZ_API_KEY": "g"}, ("g", None)),
        (_NONE, {}, (None, None)),
    ],
)  # fmt: skip
def test_a_key_and_its_secret_come_from_one_source(
    options: tuple[str | None, str | None, str | None],
    env: dict[str, str],
    expected: tuple[str | None, str | None],
) -> None:
    """Options, then DISPATCH_API_*, then FREQUENZ_API_*: the pair never mixes sources."""
    assert resolve_credentials(*options, env) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "1"], "no server URL"),
        (["--url", "grpc://127.0.0.1:1", "list", "1"], "no API key"),
        (["--url", "http://x", "--auth-key", "k", "list", "1"], "grpc://"),
        (
            ["--url", "grpc://x", "--auth-key", "k", "--backend", "trio", "--transport",
             "grpclib", "list", "1"],
            "asyncio only",
        ),
    ],
)  # fmt: skip
def test_missing_settings_are_usage_errors(args: list[str], message: str) -> None:
    """No URL, no key, a bad URL or grpclib on trio: exit 2 before any I/O."""
    env = {
        "DISPATCH_API_URL": "",
        "DISPATCH_API_AUTH_KEY": "",
        "DISPATCH_API_KEY": "",
        "FREQUENZ_API_KEY": "",
    }
    result = CliRunner(env=env).invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_completion() -> None:
    """`completion bash` prints a script; completing a target offers category names."""
    script = CliRunner().invoke(cli, ["completion", "bash"])
    assert script.exit_code == 0
    assert "_DISPATCH_CLIENT_COMPLETE" in script.stdout
    env = {
        "_DISPATCH_CLIENT_COMPLETE": "bash_complete",
        "COMP_WORDS": "dispatch-client create 1 CHARGE BAT",
        "COMP_CWORD": "4",
    }
    offered = CliRunner(env=env).invoke(cli, [], prog_name="dispatch-client")
    assert "BATTERY" in offered.stdout


# ---------------------------------------------------------------------- stream


def _stream_process(url: str, backend: str, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "dispatch_client", "--url", url, "--auth-key", KEY,
            "--backend", backend, "stream", *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_stream_prints_changes(url: str, backend: str, microgrid: int) -> None:
    """`stream --resync --json --count 3` prints what exists, then the live changes."""
    run = Cli(url, (backend, "h2"))
    mg = str(microgrid)
    (created,) = run.json("create", mg, "FOLLOWED", "BATTERY", _later(1), "1h")
    with _stream_process(url, backend, mg, "--resync", "--json", "--count", "3") as process:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert first["event"] == "CREATED"
        assert first["synthesized"] is True
        assert first["dispatch"] == created
        run.ok("update", mg, str(created["id"]), "--duration", "2h")
        run.ok("delete", mg, str(created["id"]))
        out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["event"], e["synthesized"]) for e in events] == [
        ("UPDATED", False),
        ("DELETED", False),
    ]
    assert events[0]["dispatch"]["duration"] == 7200
    assert f"stream of microgrid {microgrid} connected" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_stream_stops_cleanly_on_sigint(url: str, backend: str, microgrid: int) -> None:
    """Ctrl-C ends a stream with exit code 0 and no traceback; readable lines until then."""
    run = Cli(url, (backend, "h2"))
    mg = str(microgrid)
    run.ok("create", mg, "SHOWN", "1,2", _later(1))
    with _stream_process(url, backend, mg, "--resync") as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "CREATED" in line
        assert "SHOWN" in line
        assert "synthesized" in line
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_stream_fatal_error_exits_1(url: str, microgrid: int) -> None:
    """A stream the server refuses (wrong key) ends with exit 1 and one line."""
    process = subprocess.run(
        [sys.executable, "-m", "dispatch_client", "--url", url, "--auth-key", "wrong",
         "stream", str(microgrid)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )  # fmt: skip
    assert process.returncode == 1, process.stderr
    assert "Unauthenticated" in process.stderr
    assert "Traceback" not in process.stderr


def test_the_reference_names_every_command_and_option() -> None:
    """docs/cli.md mentions each command and each visible option, so the two cannot drift."""
    import click

    from dispatch_client.cli._commands import cli as group

    text = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    missing: list[str] = []
    commands: list[click.Command] = [group, *group.commands.values()]
    for command_ in commands:
        if command_ is not group and f"### `{command_.name}" not in text:
            missing.append(f"command {command_.name}")
        for param in command_.params:
            if isinstance(param, click.Option) and not param.hidden:
                names = [name for name in param.opts if name.startswith("--")]
                if names and not any(
                    re.search(rf"(?<![\w-]){name}(?![\w-])", text) for name in names
                ):
                    missing.append(f"{command_.name} {names[0]}")
    assert not missing


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_stream_survives_a_server_restart(tmp_path: Path, backend: str) -> None:
    """The server goes away and comes back on the same port (same database): the stream
    says so on stderr, reconnects, and with --resync prints what changed meanwhile."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    serve = [*command("serve"), "--port", port, "--key", KEY, "--db", str(tmp_path / "db")]

    def start() -> subprocess.Popen[str]:
        server = subprocess.Popen(serve, stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        assert server.stdout.readline().startswith("grpc://")
        return server

    def stop(server: subprocess.Popen[str]) -> None:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=TIMEOUT)

    url = f"grpc://127.0.0.1:{port}?ssl=false"
    run = Cli(url, (backend, "h2"))
    server = start()
    try:
        (kept,) = run.json("create", "1", "KEPT", "1", _later(1))
        with _stream_process(url, backend, "1", "--resync", "--json", "--count", "2") as process:
            assert process.stdout is not None
            assert json.loads(process.stdout.readline())["dispatch"]["id"] == kept["id"]
            stop(server)
            # Changed while the stream's server is down, by another server on the database.
            with subprocess.Popen(
                [*command("serve"), "--key", KEY, "--db", str(tmp_path / "db")],
                stdout=subprocess.PIPE,
                text=True,
            ) as other:
                assert other.stdout is not None
                Cli(other.stdout.readline().strip(), (backend, "h2")).ok("delete", "1", "1")
                other.send_signal(signal.SIGINT)
                other.wait(TIMEOUT)
            server = start()
            out, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, err
        (event,) = [json.loads(line) for line in out.splitlines()]
        assert (event["event"], event["synthesized"]) == ("DELETED", True)
        assert event["dispatch"]["id"] == kept["id"]
        assert "stream of microgrid 1 lost (" in err
        assert re.search(r"stream of microgrid 1 connected \(after \d+ reconnects\)", err)
        assert "ended" not in err  # the library's own reconnect warning is not repeated
        assert "Traceback" not in err
    finally:
        stop(server)


def test_settings_repr_hides_the_secrets() -> None:
    """The settings object the commands share shows neither the key nor the secret."""
    from dispatch_client.cli._commands import _Settings

    settings = _Settings(
        url="grpc://x", key="the-key-1", sign_secret="the-secret-2", transport=None,
        backend="asyncio", call_timeout=1.0, json=False,
    )  # fmt: skip
    assert "the-key-1" not in repr(settings)
    assert "the-secret-2" not in repr(settings)
    assert "grpc://x" in repr(settings)


def _watch_process(url: str, backend: str, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "dispatch_client", "--url", url, "--auth-key", KEY,
            "--backend", backend, "watch", *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_watch_prints_starts_and_stops(url: str, backend: str, microgrid: int) -> None:
    """`watch --json --count 2` prints a dispatch's start, then its stop, on the real clock."""
    run = Cli(url, (backend, "h2"))
    mg = str(microgrid)
    (created,) = run.json(
        "create", mg, "WATCHED", "1,2", _later(3 / 3600), "1", "--payload", '{"p": 1}'
    )
    with _watch_process(url, backend, mg, "--type", "WATCHED", "--json", "-n", "2") as process:
        out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    changes = [json.loads(line) for line in out.splitlines()]
    assert [(c["change"], c["dispatch"]["id"]) for c in changes] == [
        ("STARTED", created["id"]),
        ("STOPPED", created["id"]),
    ]
    assert changes[0]["running"] == [created["id"]]
    assert changes[1]["running"] == []
    assert changes[0]["dispatch"]["payload"] == {"p": 1}
    assert "Traceback" not in err


def test_watch_prints_readable_lines_and_stops_on_sigint(url: str, microgrid: int) -> None:
    """`watch` prints one readable line per change; Ctrl-C ends it with exit code 0."""
    run = Cli(url, ("asyncio", "grpclib"))
    mg = str(microgrid)
    (created,) = run.json("create", mg, "SEEN", "BATTERY", _later(3 / 3600), "1h")
    with _watch_process(url, "asyncio", mg) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "STARTED" in line
        assert f"#{created['id']} SEEN" in line
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert "Traceback" not in err
