"""Prove that `pip install .` gives a working client without grpcio or protobuf.

Usage:

    python tools/runtime_check.py

Creates a fresh virtual environment in a temporary directory, installs the project
from the repository root with no extras, and then, inside that environment, checks that
`import dispatch_client, transports` works while neither `grpc` nor `google.protobuf`
can be found. Prints the size of the environment's site-packages and a one-line
summary; exits 1 when any check fails. Slow (it runs pip), so it is a `just` recipe
(`just runtime-check`), not a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside the fresh environment; prints one JSON object on stdout.
_PROBE = """
import importlib.util, json, sys, sysconfig
result = {"site_packages": sysconfig.get_paths()["purelib"], "errors": []}
try:
    import dispatch_client, transports
    result["imported"] = [dispatch_client.__name__, transports.__name__]
except Exception as exc:  # report, do not crash: the caller prints the reason
    result["errors"].append(f"import dispatch_client, transports failed: {exc!r}")
for name in ("grpc", "google.protobuf"):
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package (google) is absent altogether
        found = False
    if found:
        result["errors"].append(f"{name} is importable in the runtime install")
loaded = sorted(
    m for m in sys.modules if m.split(".")[0] == "grpc" or m.startswith("google.protobuf")
)
if loaded:
    result["errors"].append(f"importing the packages loaded {loaded}")
print(json.dumps(result))
"""


# What `venv` itself puts into site-packages; not part of what our install costs.
_INSTALLER_PREFIXES = ("pip", "setuptools", "_distutils_hack", "distutils-precedence")


def _directory_size(path: Path, *, skip_installers: bool = False) -> int:
    """Return the total size in bytes of the regular files under `path`.

    Args:
        path: A site-packages directory.
        skip_installers: Leave out pip and setuptools, which every venv carries.
    """
    total = 0
    for entry in path.iterdir():
        if skip_installers and entry.name.startswith(_INSTALLER_PREFIXES):
            continue
        files = [entry] if entry.is_file() else entry.rglob("*")
        total += sum(p.stat().st_size for p in files if p.is_file() and not p.is_symlink())
    return total


def _run(command: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output, with pip's version nagging turned off."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    # An activated outer environment must not leak into the fresh one.
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def main() -> int:
    """Build the fresh environment, probe it and report.

    Returns:
        0 when every check passed, 1 otherwise.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="runtime-check-") as tmp:
        env_dir = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"

        # Run from a neutral directory so that the repository's own packages are never
        # on sys.path: the probe must see only what pip installed.
        install = _run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", str(ROOT)],
            cwd=Path(tmp),
        )
        if install.returncode != 0:
            print(install.stdout + install.stderr, file=sys.stderr)
            print("runtime check FAILED: `pip install .` failed")
            return 1

        probe = _run([str(python), "-I", "-c", _PROBE], cwd=Path(tmp))
        if probe.returncode != 0:
            print(probe.stdout + probe.stderr, file=sys.stderr)
            print("runtime check FAILED: the probe crashed")
            return 1
        result = json.loads(probe.stdout)
        site_packages = Path(result["site_packages"])
        size_mb = _directory_size(site_packages) / 1e6
        runtime_mb = _directory_size(site_packages, skip_installers=True) / 1e6
        freeze = _run([str(python), "-m", "pip", "freeze", "--all"], cwd=Path(tmp))
        installed = sorted(line.strip() for line in freeze.stdout.splitlines() if line.strip())

    elapsed = time.monotonic() - started
    print(f"installed: {', '.join(installed)}")
    print(
        f"site-packages size: {size_mb:.1f} MB"
        f" ({runtime_mb:.1f} MB without the pip and setuptools every venv carries)"
    )
    errors: list[str] = result["errors"]
    for error in errors:
        print(f"error: {error}")
    if errors:
        print(f"runtime check FAILED: {len(errors)} problem(s) ({elapsed:.0f} s)")
        return 1
    print(
        f"runtime check passed: `pip install .` imports dispatch_client and transports"
        f" without grpc or google.protobuf; {len(installed)} distributions,"
        f" {size_mb:.1f} MB site-packages, {runtime_mb:.1f} MB without pip/setuptools"
        f" ({elapsed:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
