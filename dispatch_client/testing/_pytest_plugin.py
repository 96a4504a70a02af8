"""A pytest plugin: tests that run the real client against recorded server answers.

Registered through the `pytest11` entry point `dispatch_client`, so installing
dispatch-client enables it. It adds:

* the option `--record-mode={none,once,new_episodes,all}`: how cassettes are used
  (vcrpy's modes; see `transports.RecordingTransport`). The default is `none` (replay
  only: a call with no recording fails the test) when the environment variable `CI` is
  set to a non-empty value, else `once` (record a missing cassette, replay an existing one);
* the marker `@pytest.mark.dispatch_cassette(name=None, match_ignore=(),
  allow_repeats=False)`: a test's cassette name (default: the test's name), the
  request JSON fields matching ignores (e.g. `"dispatchData.startTime"`), and whether a
  recorded interaction may answer a repeated call;
* the fixtures
  - `dispatch_record_mode`: the record mode in force;
  - `dispatch_cassette_path`: the test's cassette,
    `<test file dir>/cassettes/<test file stem>/<test name>.jsonl`, or the marker's name
    there (an absolute name is used as is);
  - `dispatch_inner_transport`: the transport that reaches a server when recording.
    Its default is None, which is enough for replaying; override it (in a conftest)
    to record against a real or served server;
  - `dispatch_secrets`: strings that must never reach a cassette (API keys, sign
    secrets); override it to return yours, and recording fails rather than write them;
  - `dispatch_transport`: a `transports.RecordingTransport` over the inner transport
    and the cassette, rendering messages with `DispatchRenderer`. Give it to a client:
    `Client(server_url=..., key=..., transport=dispatch_transport)`; the client closes it.

```python
@pytest.mark.anyio
@pytest.mark.dispatch_cassette(match_ignore=["dispatchData.startTime"])
async def test_create(dispatch_transport):
    async with Client(server_url="grpc://dispatch.example", key=KEY,
                      transport=dispatch_transport) as client:
        ...
```
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._cassettes import RECORD_MODES, DispatchRenderer, RecordModeName, cassette_path
from ._cassettes import default_record_mode as _default_record_mode

if TYPE_CHECKING:
    from transports import RecordingTransport, Transport

__all__ = [
    "dispatch_cassette_path",
    "dispatch_inner_transport",
    "dispatch_record_mode",
    "dispatch_secrets",
    "dispatch_transport",
    "pytest_addoption",
    "pytest_configure",
]

MARKER = "dispatch_cassette"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add `--record-mode` and its unambiguous spelling `--dispatch-record-mode`.

    pytest-recording (vcrpy's plugin) has a `--record-mode` of its own; two plugins
    adding one option name make pytest fail at start-up. So when pytest-recording is
    installed, or another plugin took the name first, only `--dispatch-record-mode` is
    added.
    """
    group = parser.getgroup("dispatch_client", "dispatch-client cassettes")
    options: dict[str, Any] = {
        "action": "store",
        "dest": "dispatch_record_mode",
        "default": None,
        "choices": RECORD_MODES,
        "help": "How dispatch cassettes are used: none (replay only), once (record missing "
        "cassettes), new_episodes (record calls with no recording), all (record every "
        "call again). Default: none when $CI is set, else once.",
    }
    if importlib.util.find_spec("pytest_recording") is None and not _taken(parser, "--record-mode"):
        group.addoption("--record-mode", "--dispatch-record-mode", **options)
    else:
        group.addoption("--dispatch-record-mode", **options)


def _taken(parser: pytest.Parser, name: str) -> bool:
    """Whether a plugin loaded earlier added the option `name` (in any group).

    pytest only checks names within one group; a clash across groups surfaces later as
    an argparse error that stops the whole run, so look before adding.
    """
    groups = [parser._anonymous, *parser._groups]
    return any(name in option.names() for group in groups for option in group.options)


def pytest_configure(config: pytest.Config) -> None:
    """Register the `dispatch_cassette` marker (so `--strict-markers` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name=None, match_ignore=(), allow_repeats=False): the test's "
        "dispatch cassette: its name, request JSON fields matching ignores, and "
        "whether recorded calls may answer repeated ones.",
    )


class _MarkerOptions:
    """The `dispatch_cassette` marker's arguments, checked."""

    def __init__(
        self,
        name: str | None = None,
        match_ignore: Sequence[str] = (),
        allow_repeats: bool = False,
    ) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r}")
        if isinstance(match_ignore, str) or not all(isinstance(p, str) for p in match_ignore):
            raise TypeError("match_ignore must be a sequence of field paths")
        if not isinstance(allow_repeats, bool):
            raise TypeError(f"allow_repeats must be a bool, got {allow_repeats!r}")
        self.name = name
        self.match_ignore = tuple(match_ignore)
        self.allow_repeats = allow_repeats


def _marker_options(request: pytest.FixtureRequest) -> _MarkerOptions:
    """The closest `dispatch_cassette` marker's options (the defaults without one)."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return _MarkerOptions()
    try:
        return _MarkerOptions(*marker.args, **marker.kwargs)
    except TypeError as exc:
        # Also an unknown or surplus argument, which Python words after `__init__`.
        reason = str(exc).replace(f"{_MarkerOptions.__name__}.__init__()", "it")
        pytest.fail(f"{request.node.nodeid}: {MARKER}: {reason}", pytrace=False)


@pytest.fixture
def dispatch_record_mode(request: pytest.FixtureRequest) -> RecordModeName:
    """The record mode: `--record-mode`, else none on CI ($CI set), else once."""
    chosen: Any = request.config.getoption("dispatch_record_mode")
    if chosen is None:
        return _default_record_mode()
    mode: RecordModeName = chosen
    return mode


@pytest.fixture
def dispatch_cassette_path(request: pytest.FixtureRequest) -> Path:
    """The test's cassette file: next to the test file, or the marker's name."""
    options = _marker_options(request)
    try:
        return cassette_path(request.path, request.node.name, options.name)
    except ValueError as exc:
        pytest.fail(f"{request.node.nodeid}: {MARKER}: {exc}", pytrace=False)


@pytest.fixture
def dispatch_inner_transport() -> Transport | None:
    """The transport recording goes through: none by default (replaying needs none).

    Override it to record, e.g. with a transport to a served `FakeDispatchService`
    or to a real server.
    """
    return None


@pytest.fixture
def dispatch_secrets() -> Sequence[str | bytes]:
    """Secrets a cassette must never contain; override to list your key and sign secret."""
    return ()


@pytest.fixture
def dispatch_transport(
    request: pytest.FixtureRequest,
    dispatch_cassette_path: Path,
    dispatch_inner_transport: Transport | None,
    dispatch_record_mode: RecordModeName,
    dispatch_secrets: Sequence[str | bytes],
) -> RecordingTransport:
    """A transport that replays the test's cassette, recording what the mode allows.

    Without an inner transport, only replaying is possible: the mode `once` with an
    existing cassette then replays it, and any mode that would record fails the test
    with a message naming the fixture to override.
    """
    from transports import RecordingTransport

    options = _marker_options(request)
    mode = dispatch_record_mode
    if dispatch_inner_transport is None:
        if mode == "once" and dispatch_cassette_path.exists():
            mode = "none"  # what `once` does with an existing cassette anyway
        elif mode != "none":
            pytest.fail(
                f"record mode {mode!r} needs a server to record {dispatch_cassette_path}: "
                "override the fixture `dispatch_inner_transport`, or replay with "
                "--record-mode=none",
                pytrace=False,
            )
    return RecordingTransport(
        dispatch_inner_transport,
        dispatch_cassette_path,
        mode=mode,
        renderer=DispatchRenderer(),
        secrets=dispatch_secrets,
        match_ignore=options.match_ignore,
        allow_repeats=options.allow_repeats,
    )
