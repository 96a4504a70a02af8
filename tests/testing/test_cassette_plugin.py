"""The pytest plugin, run on a small example suite with `pytester`.

The example suite records its cassettes against an in-process `FakeDispatchService`
(the conftest overrides `dispatch_inner_transport`), then runs again with no server at
all and replays them. Plugins are loaded explicitly with `-p` and entry-point
autoloading is off, so the runs do not depend on how dispatch-client is installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatch_client.testing._cassettes import cassette_path

pytest_plugins = ["pytester"]

_CONFTEST = """
import os

import pytest

from dispatch_client.testing import FakeDispatchService
from transports import MemoryTransport


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def dispatch_inner_transport():
    if os.environ.get("EXAMPLE_OFFLINE"):
        yield None  # no server: replaying must be enough
        return
    with FakeDispatchService(keys=["example-key"]) as service:
        yield MemoryTransport(service)


@pytest.fixture
def dispatch_secrets():
    return ["example-key"]
"""

_TESTS = """
from datetime import UTC, datetime, timedelta

import pytest

from dispatch_client import Client, TargetIds

START = datetime(2100, 5, 1, 9, 30, tzinfo=UTC)


def client(transport):
    return Client(server_url="grpc://example", key="example-key", transport=transport)


@pytest.mark.anyio
async def test_create_and_get(dispatch_transport):
    async with client(dispatch_transport) as c:
        created = await c.create(1, "EXAMPLE", START, timedelta(minutes=1), TargetIds(7))
        assert await c.get(microgrid_id=1, dispatch_id=created.id) == created


@pytest.mark.anyio
@pytest.mark.dispatch_cassette(name="shared/listing", allow_repeats=True)
async def test_list_twice(dispatch_transport, dispatch_cassette_path):
    assert dispatch_cassette_path.parts[-2:] == ("shared", "listing.jsonl")
    async with client(dispatch_transport) as c:
        for _ in range(2):
            assert [page async for page in c.list(1)] != []
"""

_INI = """
[pytest]
addopts = -p anyio.pytest_plugin -p dispatch_client.testing._pytest_plugin --strict-markers
filterwarnings = error
"""


@pytest.fixture
def example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The example suite in a fresh directory, with only the plugins it names loaded."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("EXAMPLE_OFFLINE", raising=False)
    pytester.makeini(_INI)
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile(test_example=_TESTS)
    return pytester


def _cassettes(root: Path) -> dict[str, list[str]]:
    """The example suite's cassettes: relative path -> the method names recorded."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / "cassettes").rglob("*.jsonl")):
        lines = path.read_text("utf-8").splitlines()
        methods = [json.loads(line)["method"].rsplit("/", 1)[1] for line in lines[1:]]
        found[path.relative_to(root).as_posix()] = methods
    return found


def test_records_then_replays_without_a_server(
    example: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mode once records missing cassettes next to the tests; CI then replays them offline."""
    example.runpytest("--record-mode=once").assert_outcomes(passed=2)
    recorded = _cassettes(example.path)
    assert recorded == {
        "cassettes/test_example/test_create_and_get.jsonl": [
            "CreateMicrogridDispatch",
            "GetMicrogridDispatch",
        ],
        "cassettes/test_example/shared/listing.jsonl": [
            "ListMicrogridDispatches",
            "ListMicrogridDispatches",
        ],
    }
    text = (example.path / "cassettes/test_example/test_create_and_get.jsonl").read_text()
    assert "example-key" not in text

    monkeypatch.setenv("EXAMPLE_OFFLINE", "1")
    monkeypatch.setenv("CI", "true")  # the default mode becomes none
    example.runpytest().assert_outcomes(passed=2)
    # Replaying wrote nothing.
    assert _cassettes(example.path) == recorded


def test_replay_only_fails_a_call_with_no_recording(
    example: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In mode none, a test whose calls changed fails with the mismatch report."""
    example.runpytest("--record-mode=once").assert_outcomes(passed=2)
    source = example.path / "test_example.py"
    source.write_text(source.read_text().replace('"EXAMPLE"', '"CHANGED"'))
    monkeypatch.setenv("EXAMPLE_OFFLINE", "1")
    result = example.runpytest("--record-mode=none")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ReplayMismatch*CreateMicrogridDispatch*"])
    result.stdout.fnmatch_lines(["*CHANGED*"])


def test_new_episodes_appends_new_calls(example: pytest.Pytester) -> None:
    """Mode new_episodes replays what it has and records only the new calls.

    The new call must not depend on what the replayed ones did: the server behind
    the inner transport never saw them (here, a fresh fake service).
    """
    example.runpytest("--record-mode=once").assert_outcomes(passed=2)
    source = example.path / "test_example.py"
    source.write_text(
        source.read_text().replace(
            "        assert await c.get(microgrid_id=1, dispatch_id=created.id) == created\n",
            "        assert await c.get(microgrid_id=1, dispatch_id=created.id) == created\n"
            "        assert [d async for page in c.list(2) for d in page] == []\n",
        )
    )
    example.runpytest("--record-mode=new_episodes").assert_outcomes(passed=2)
    assert _cassettes(example.path)["cassettes/test_example/test_create_and_get.jsonl"] == [
        "CreateMicrogridDispatch",
        "GetMicrogridDispatch",
        "ListMicrogridDispatches",
    ]


def test_recording_without_a_server_says_which_fixture_to_override(
    example: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recording mode with no inner transport fails naming dispatch_inner_transport."""
    monkeypatch.setenv("EXAMPLE_OFFLINE", "1")
    result = example.runpytest("--record-mode=all")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*record mode 'all' needs a server*dispatch_inner_transport*"])


def test_default_record_mode_follows_ci(
    example: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --record-mode, the mode is none when $CI is set and once otherwise."""
    example.makepyfile(
        test_mode="""
        import os

        def test_mode(dispatch_record_mode):
            assert dispatch_record_mode == os.environ["EXPECTED_MODE"]
        """
    )
    for ci, expected in (("", "once"), ("1", "none")):
        monkeypatch.setenv("CI", ci)
        monkeypatch.setenv("EXPECTED_MODE", expected)
        example.runpytest("test_mode.py").assert_outcomes(passed=1)
    monkeypatch.setenv("EXPECTED_MODE", "all")
    example.runpytest("test_mode.py", "--record-mode=all").assert_outcomes(passed=1)


def test_bad_marker_arguments_are_reported_clearly(example: pytest.Pytester) -> None:
    """A dispatch_cassette marker with bad arguments errors the test, saying what is wrong."""
    example.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.dispatch_cassette(match_ignore="startTime")
        def test_string(dispatch_transport):
            pass

        @pytest.mark.dispatch_cassette(nmae="x")
        def test_unknown(dispatch_transport):
            pass

        @pytest.mark.dispatch_cassette(name="../elsewhere")
        def test_climbing(dispatch_transport):
            pass
        """
    )
    result = example.runpytest("test_bad.py")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*test_string: dispatch_cassette: match_ignore must be a sequence*",
            "*test_unknown: dispatch_cassette: it got an unexpected keyword argument 'nmae'*",
            "*test_climbing: dispatch_cassette: a relative cassette name must not contain '..'*",
        ],
        consecutive=False,
    )


@pytest.mark.parametrize(
    ("test_name", "name", "expected"),
    [
        ("test_a", None, "cassettes/test_mod/test_a.jsonl"),
        ("test_a[x/y z-1]", None, "cassettes/test_mod/test_a[x-y-z-1].jsonl"),
        ("test_a", "shared", "cassettes/test_mod/shared.jsonl"),
        ("test_a", "deep/one.json", "cassettes/test_mod/deep/one.json"),
    ],
)
def test_cassette_path_is_next_to_the_test_file(
    tmp_path: Path, test_name: str, name: str | None, expected: str
) -> None:
    """Cassettes live in cassettes/<file stem>/, named after the test or the marker."""
    path = cassette_path(tmp_path / "test_mod.py", test_name, name)
    assert path == tmp_path / expected


def test_cassette_path_takes_an_absolute_name(tmp_path: Path) -> None:
    """An absolute marker name is used as it is."""
    chosen = tmp_path / "elsewhere" / "c.jsonl"
    assert cassette_path(tmp_path / "test_mod.py", "test_a", str(chosen)) == chosen


def test_unknown_record_mode_is_refused(example: pytest.Pytester) -> None:
    """--record-mode accepts only the four modes."""
    result = example.runpytest("--record-mode=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--record-mode*invalid choice*"])


def test_dispatch_record_mode_is_the_same_option(
    example: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dispatch-record-mode` sets the mode too (the spelling that never clashes)."""
    example.makepyfile(
        test_mode="""
        def test_mode(dispatch_record_mode):
            assert dispatch_record_mode == "all"
        """
    )
    example.runpytest("test_mode.py", "--dispatch-record-mode=all").assert_outcomes(passed=1)


def test_a_taken_record_mode_name_leaves_the_long_spelling(example: pytest.Pytester) -> None:
    """When a plugin loaded earlier owns --record-mode, ours is only --dispatch-record-mode."""
    example.makepyfile(
        other_plugin="""
        def pytest_addoption(parser):
            parser.addoption("--record-mode", dest="other_record_mode", default="x")
        """
    )
    example.syspathinsert()
    example.makeini(_INI.replace("addopts = ", "addopts = -p other_plugin "))
    example.makepyfile(
        test_mode="""
        def test_mode(dispatch_record_mode, request):
            assert dispatch_record_mode == "none"
            assert request.config.getoption("other_record_mode") == "rewrite"
        """
    )
    result = example.runpytest(
        "test_mode.py", "--record-mode=rewrite", "--dispatch-record-mode=none"
    )
    result.assert_outcomes(passed=1)
