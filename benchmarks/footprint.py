"""Benchmark what a client costs before its first call: cold import, and disk footprint.

Cold start: `python -I -c "import dispatch_client"` against
`python -I -c "import frequenz.client.dispatch"`, each a fresh process, taking turns; the
wall time of the whole process, interpreter start-up included (nothing is subtracted;
`python -I -c pass` is measured alongside for reference). Both packages are imported
from non-editable installs, as users get them: two fresh virtual environments in a
temporary directory, one with `pip install PROJECT_ROOT`, one with
`pip install frequenz-client-dispatch==VERSION` (the version installed here). When a
venv cannot be built (no package index, no cache), that package is imported from this
environment instead (ours then editable) and the report says so.

Footprint: two fresh virtual environments in a temporary directory, one with
`pip install PROJECT_ROOT`, one with `pip install frequenz-client-dispatch==VERSION` (the
version installed here); the size of what each install added to site-packages, its
number of files and of compiled extension modules (`*.so`, `*.pyd`), and its biggest
top-level packages. Needs the package index (or pip's cache).
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._server_process import ROOT

OURS_IMPORT = "ours: import dispatch_client"
OFFICIAL_IMPORT = "official: import frequenz.client.dispatch"
BARE_PYTHON = "reference: python -I -c pass"
IMPORTS = {
    OURS_IMPORT: "import dispatch_client",
    OFFICIAL_IMPORT: "import frequenz.client.dispatch",
    BARE_PYTHON: "pass",
}
OURS_INSTALL = "ours: pip install dispatch-client (this checkout)"
OFFICIAL_INSTALL = "official: pip install frequenz-client-dispatch"
SCHEDULER_INSTALL = "frequenz-dispatch 1.0.4: pip install frequenz-dispatch==1.0.4"
"""What the scheduler replaces (frequenz-dispatch, with frequenz-sdk and numpy)."""
EXTENSION_SUFFIXES = (".so", ".pyd")
PIP_TIMEOUT = 600.0


def _time_import(python: str, statement: str) -> float:
    """Milliseconds a fresh `python -I -c STATEMENT` takes, start to exit.

    No `timeout=`: with one, `subprocess` polls for the exit with sleeps of up to 50 ms,
    which would add up to that much to every figure.
    """
    started = time.perf_counter()
    subprocess.run(
        [python, "-I", "-c", statement],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return (time.perf_counter() - started) * 1000


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _make_venv(venv: Path) -> None:
    """Make a venv at `venv` with this interpreter (raises if it cannot)."""
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        check=True,
        capture_output=True,
        timeout=PIP_TIMEOUT,
    )


def _pip_install(venv: Path, requirement: str) -> str | None:
    """`pip install` `requirement` into the venv; None, or why it failed (pip's last line)."""
    done = subprocess.run(
        [
            str(_venv_python(venv)),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )
    if done.returncode == 0:
        return None
    tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
    return f"pip install {requirement} failed: {tail[0]}"


def _import_venv(venv: Path, requirement: str, module: str) -> tuple[str, str]:
    """Make a venv with `requirement` installed; its python and where `module` comes from.

    Raises:
        RuntimeError: When the venv or the install fails (the last line pip wrote).
    """
    _make_venv(venv)
    failure = _pip_install(venv, requirement)
    if failure is not None:
        raise RuntimeError(failure)
    python = str(_venv_python(venv))
    where = subprocess.run(
        [python, "-I", "-c", f"import {module} as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=True,
    )
    return python, where.stdout.strip()


def _here(module: str) -> str:
    """Where `module` comes from in this environment (a checkout when installed editable)."""
    where = subprocess.run(
        [sys.executable, "-I", "-c", f"import {module} as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=True,
    )
    return where.stdout.strip()


def measure_imports(
    runs: int, progress: Callable[[str], None]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Time each import in fresh processes of non-editable installs, taking turns.

    First builds a fresh venv per package (at once), then one untimed round writes any
    missing bytecode caches, which a user's second start finds too. The bare
    interpreter runs from our venv (the same base Python, the same `site` work).

    Returns:
        Per import, one `{"import_ms": ...}` per run; and per import, how its package was
        installed and the file it was imported from.
    """
    version = importlib.metadata.version("frequenz-client-dispatch")
    packages = {
        OURS_IMPORT: (str(ROOT), "dispatch_client"),
        OFFICIAL_IMPORT: (f"frequenz-client-dispatch=={version}", "frequenz.client.dispatch"),
    }
    progress("import: installing both clients into fresh venvs (non-editable)")
    with (
        tempfile.TemporaryDirectory(prefix="dispatch-bench-import-") as tmp,
        ThreadPoolExecutor(len(packages)) as pool,
    ):
        futures = {
            name: pool.submit(_import_venv, Path(tmp) / f"venv{index}", requirement, module)
            for index, (name, (requirement, module)) in enumerate(packages.items())
        }
        pythons: dict[str, str] = {}
        installs: dict[str, str] = {}
        for name, future in futures.items():
            requirement, module = packages[name]
            try:
                pythons[name], origin = future.result()
                installs[name] = f"fresh venv, `pip install {requirement}` (non-editable)"
            except (OSError, subprocess.SubprocessError, RuntimeError) as error:
                # No index and no cache: still measure, from this environment, and say so.
                pythons[name], origin = sys.executable, _here(module)
                installs[name] = (
                    f"fallback to the benchmark's own environment ({origin}): "
                    f"the fresh venv failed: {type(error).__name__}: {error}"
                )
            progress(f"import: {name} from {origin}")
        pythons[BARE_PYTHON] = pythons[OURS_IMPORT]
        installs[BARE_PYTHON] = "the interpreter of our venv, importing nothing"

        for name, statement in IMPORTS.items():
            _time_import(pythons[name], statement)
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in IMPORTS}
        for run in range(runs):
            progress(f"import run {run + 1}/{runs}")
            for name, statement in IMPORTS.items():
                results[name].append({"import_ms": _time_import(pythons[name], statement)})
    return results, installs


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages")) or sorted(venv.glob("Lib/site-packages"))
    return found[0]


def _files(root: Path) -> dict[Path, int]:
    """Every file under `root` (relative path) and its size in bytes."""
    return {
        path.relative_to(root): path.stat().st_size
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


def _install(venv: Path, requirement: str) -> dict[str, Any]:
    """Make a venv, install `requirement` into it, and measure what the install added."""
    _make_venv(venv)
    site = _site_packages(venv)
    before = _files(site)
    failure = _pip_install(venv, requirement)
    if failure is not None:
        return {"error": failure}
    added = {path: size for path, size in _files(site).items() if path not in before}
    by_package: dict[str, int] = {}
    for path, size in added.items():
        top = path.parts[0]
        if top.endswith(".dist-info"):
            top = "*.dist-info"
        by_package[top] = by_package.get(top, 0) + size
    biggest = sorted(by_package.items(), key=lambda item: -item[1])[:6]
    return {
        "requirement": requirement,
        "site_packages_mb": sum(added.values()) / 1e6,
        "files": len(added),
        "extension_modules": sum(1 for path in added if path.suffix in EXTENSION_SUFFIXES),
        "extension_paths": sorted(str(p) for p in added if p.suffix in EXTENSION_SUFFIXES),
        "distributions": sum(
            1 for path in {p.parts[0] for p in added} if path.endswith(".dist-info")
        ),
        "biggest_mb": {name: size / 1e6 for name, size in biggest},
    }


def measure_footprint(progress: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Install each client (and frequenz-dispatch) into its own fresh venv, at once; measure.

    Returns:
        Per client: `site_packages_mb`, `files`, `extension_modules` (and their
        `extension_paths`), `distributions`,
        `biggest_mb` (top-level package to MB), or `error`.
    """
    version = importlib.metadata.version("frequenz-client-dispatch")
    requirements = {
        OURS_INSTALL: str(ROOT),
        OFFICIAL_INSTALL: f"frequenz-client-dispatch=={version}",
        SCHEDULER_INSTALL: "frequenz-dispatch==1.0.4",
    }
    progress("footprint: installing both clients and frequenz-dispatch into fresh venvs")
    with (
        tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp,
        ThreadPoolExecutor(len(requirements)) as pool,
    ):
        futures = {
            name: pool.submit(_install, Path(tmp) / f"venv{index}", requirement)
            for index, (name, requirement) in enumerate(requirements.items())
        }
        results = {}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except (OSError, subprocess.SubprocessError) as error:
                results[name] = {"error": f"{type(error).__name__}: {error}"}
    return results
