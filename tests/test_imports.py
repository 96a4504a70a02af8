"""What `import dispatch_client` loads: the modules a program pays for before its first call.

Each check runs a fresh interpreter (`python -I`), since this process has imported
everything already. A new eager import of one of our modules fails
`test_a_bare_import_loads_only_these_modules_of_ours` by name: make it lazy, or add it to
`OURS` if every program needs it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
import pytest

import dispatch_client
import transports
from dispatch_client.testing import FakeDispatchService, serve

TIMEOUT = 60.0
"""Seconds a child interpreter may take (a few hundred ms are usual)."""

OURS = frozenset(
    {
        "dispatch_client",
        "dispatch_client._client",
        "dispatch_client._codec",
        "dispatch_client._codec._decode",
        "dispatch_client._codec._encode",
        "dispatch_client._codec._wire",
        "dispatch_client._errors",
        "dispatch_client._eventloop",
        "dispatch_client._log",
        "dispatch_client._methods",
        "dispatch_client._official",
        "dispatch_client._recurrence",
        "dispatch_client._requests",
        "dispatch_client._retry",
        "dispatch_client._stream",
        "dispatch_client._types",
        "transports",
        "transports._base",
        "transports._errors",
        "transports._status",
    }
)
"""Our modules a bare import loads: the client, its domain types, codec and errors."""

THIRD_PARTY = frozenset({"anyio", "attr", "attrs"})
"""The only distributions a bare import loads (anyio's top level is itself lazy)."""

NEVER_ON_IMPORT = frozenset(
    {
        # Until a TLS connection, a URL to parse, a TLS file option:
        "ssl",
        "_ssl",
        "socket",
        "urllib",
        "urllib.parse",
        "pathlib",
        # Until a stream logs, a signed call, a retry, a recurring series:
        "logging",
        "logging.handlers",
        "hashlib",
        "_hashlib",
        "hmac",
        "secrets",
        "random",
        "calendar",
        "dateutil",
        "dateutil.rrule",
        # Until a transport is chosen (grpclib runs on asyncio; h2 carries hpack):
        "asyncio",
        "grpclib",
        "h2",
        "hpack",
        "hyperframe",
        # The reference codec, the CLI, the test helpers, the scheduler, the channels
        # adapter and what they bring:
        "betterproto2",
        "google",
        "grpc",
        "click",
        "rich",
        "sqlite3",
        "_sqlite3",
        "frequenz",
        "dispatch_client._auth",
        "dispatch_client._channels",
        "dispatch_client._codec._bridge",
        "dispatch_client._proto",
        "dispatch_client._scheduler",
        "dispatch_client.cli",
        "dispatch_client.testing",
        "transports._url",
        "transports._wire",
        "transports._h2",
        "transports._grpclib",
        "transports._cassette",
    }
)
"""Modules a bare `import dispatch_client` must not load, and what defers each."""

_REPORT = "import json, sys; print(json.dumps(sorted(sys.modules)))"


def _modules_loaded_by(script: str) -> set[str]:
    """Run `script` in a fresh interpreter; the modules it loaded beyond start-up."""
    code = f"import sys; _before = set(sys.modules)\n{script}\n" + (
        "import json; print(json.dumps(sorted(set(sys.modules) - _before - {'json'})))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # The last line: the script may print lines of its own before it.
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return set(loaded)


def _covered(loaded: set[str], names: frozenset[str]) -> set[str]:
    """The loaded modules that are one of `names` or inside one of those packages."""
    return {
        module for module in loaded if any(module == n or module.startswith(n + ".") for n in names)
    }


def test_a_bare_import_loads_none_of_the_deferred_modules() -> None:
    """`import dispatch_client` loads no TLS, URL, logging, hashing, transport, CLI or test code."""
    loaded = _modules_loaded_by("import dispatch_client")
    assert "dispatch_client" in loaded
    assert sorted(_covered(loaded, NEVER_ON_IMPORT)) == []


def test_a_bare_import_loads_only_these_modules_of_ours() -> None:
    """The modules of ours a bare import loads are among `OURS`, and no other distribution."""
    loaded = _modules_loaded_by("import dispatch_client")
    ours = {m for m in loaded if m.split(".")[0] in ("dispatch_client", "transports")}
    assert sorted(ours - OURS) == [], "imported eagerly: make it lazy or list it in OURS"
    # One that stops loading is a gain, not a failure (a branch may drop an import that
    # another still has); the client, its types and codec are always there.
    assert {"dispatch_client._client", "dispatch_client._types", "dispatch_client._codec"} <= ours
    others = {m.split(".")[0] for m in loaded} - set(sys.stdlib_module_names)
    assert sorted(others - {"dispatch_client", "transports"}) == sorted(THIRD_PARTY)


def test_lazy_names_load_their_module_on_first_use() -> None:
    """A scheduler name loads the scheduler when first used; listing names loads nothing."""
    script = (
        "import sys, dispatch_client\n"
        "names = dir(dispatch_client)\n"
        "assert set(dispatch_client.__all__) <= set(names), names\n"
        "assert 'dispatch_client._scheduler' not in sys.modules\n"
        "from dispatch_client import Scheduler\n"
        "from dispatch_client._scheduler import Scheduler as Real\n"
        "assert Scheduler is Real\n"
    )
    loaded = _modules_loaded_by(script)
    assert "dispatch_client._scheduler" in loaded
    assert "dispatch_client._channels" not in loaded


def test_every_public_name_of_both_packages_resolves_to_its_definition() -> None:
    """Each name in `__all__` resolves (lazily or not) to the object its module defines."""
    for package in (dispatch_client, transports):
        for name in package.__all__:
            value = getattr(package, name)
            assert getattr(package, name) is value, name
            assert name in dir(package), name


@pytest.mark.parametrize("package", [dispatch_client, transports], ids=lambda p: p.__name__)
def test_an_unknown_attribute_is_an_attribute_error(package: object) -> None:
    """A name neither package has raises AttributeError naming the package and the name."""
    with pytest.raises(AttributeError, match=r"has no attribute 'Nonexistent'"):
        getattr(package, "Nonexistent")  # noqa: B009  # the name is the point


def test_ssl_loads_with_the_first_tls_context_only() -> None:
    """Parsing a TLS URL loads no ssl; building its context does, and a context with ALPN h2."""
    script = (
        "import sys\n"
        "from transports import parse_url\n"
        "plain = parse_url('grpc://127.0.0.1:1?ssl=false')\n"
        "assert plain.ssl_context() is None\n"
        "options = parse_url('grpc://127.0.0.1:1')\n"
        "assert 'ssl' not in sys.modules and 'pathlib' not in sys.modules\n"
        "context = options.ssl_context()\n"
        "import ssl\n"
        "assert isinstance(context, ssl.SSLContext)\n"
        "assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname\n"
    )
    loaded = _modules_loaded_by(script)
    assert {"ssl", "urllib.parse", "transports._url"} <= loaded
    assert "pathlib" not in loaded


def test_tls_file_options_load_pathlib_and_keep_paths() -> None:
    """TLS file options in a URL give `Path` values, pathlib loaded for them and no ssl yet."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from transports import parse_url\n"
        "options = parse_url('grpc://h:1?ssl_root_certificates_path=/ca.pem')\n"
        "assert options.root_certificates == Path('/ca.pem'), options\n"
        "assert 'ssl' not in sys.modules\n"
    )
    loaded = _modules_loaded_by(script)
    assert "ssl" not in loaded


def test_a_client_without_calls_loads_no_transport() -> None:
    """Making a plaintext client checks its URL and key but loads no transport, TLS or codec."""
    script = (
        "from dispatch_client import Client\n"
        "Client(server_url='grpc://127.0.0.1:1?ssl=false', key='k')\n"
        "try:\n"
        "    Client(server_url='grpc://127.0.0.1:1?nope=1', key='k')\n"
        "except ValueError as error:\n"
        "    assert 'unknown option' in str(error), error\n"
        "else:\n"
        "    raise AssertionError('a bad URL was accepted')\n"
    )
    loaded = _modules_loaded_by(script)
    assert {"transports._url", "dispatch_client._auth"} <= loaded
    unwanted = frozenset(
        {"ssl", "asyncio", "grpclib", "h2", "betterproto2", "dispatch_client._proto", "logging"}
    )
    assert sorted(_covered(loaded, unwanted)) == []


_CALL = """
import anyio
from datetime import UTC, datetime, timedelta
from dispatch_client import Client, TargetIds

async def main() -> None:
    async with Client(server_url={url!r}, key="k") as client:
        made = await client.create(
            microgrid_id=1,
            type="T",
            start_time=datetime(2030, 1, 1, tzinfo=UTC),
            duration=timedelta(minutes=5),
            target=TargetIds(4, 5),
        )
        got = await client.get(microgrid_id=1, dispatch_id=made.id)
        assert got == made, (got, made)
        print(made.id)

anyio.run(main, backend={backend!r})
"""


@pytest.mark.anyio
async def test_calls_on_the_fast_codec_load_no_generated_code(anyio_backend: str) -> None:
    """A client's real calls over gRPC load neither betterproto2 nor the generated messages."""
    with FakeDispatchService(keys=["k"]) as service:
        with anyio.fail_after(TIMEOUT):
            async with serve(service) as url:
                script = _CALL.format(url=url, backend=anyio_backend)
                code = f"import sys; _before = set(sys.modules)\n{script}\n" + _REPORT
                done = await anyio.run_process([sys.executable, "-I", "-c", code], check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert service.dispatches(1)[0].type == "T"
    created, report = done.stdout.decode().splitlines()[-2:]
    assert int(created) == service.dispatches(1)[0].id
    loaded = set(json.loads(report))
    unwanted = frozenset(
        {
            "betterproto2",
            "dispatch_client._proto",
            "dispatch_client._codec._bridge",
            "dispatch_client.testing",
            "dispatch_client.cli",
            "dispatch_client._scheduler",
            "sqlite3",
            "google",
            "grpc",
        }
    )
    assert sorted(_covered(loaded, unwanted)) == []
    # Today both transports import ssl with their module (H2Transport through anyio's TLS
    # stream); our own HTTP/2 core is to load it with the first TLS connection only.
    assert "transports._url" in loaded


def test_covered_matches_a_package_and_its_submodules_only() -> None:
    """`_covered` (the checks' helper) matches a name and its submodules, not a prefix."""
    assert _covered({"a", "a.b", "ab", "c.a"}, frozenset({"a"})) == {"a", "a.b"}


def test_the_lazy_logger_is_the_package_logger_and_reports_its_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The package's logger proxy logs as `dispatch_client`, honours levels, names its caller."""
    import logging

    from dispatch_client._log import logger

    with caplog.at_level(logging.WARNING, logger="dispatch_client"):
        logger.info("not shown at WARNING")
        logger.warning("shown %d", 1)
        assert not logger.isEnabledFor(logging.INFO)
    (record,) = caplog.records
    assert (record.name, record.getMessage()) == ("dispatch_client", "shown 1")
    assert record.funcName == "test_the_lazy_logger_is_the_package_logger_and_reports_its_caller"
    assert logger.warning.__self__ is logging.getLogger("dispatch_client")  # type: ignore[attr-defined]
    assert "lazy logger 'dispatch_client'" in repr(logger)
