"""The cold-import benchmark's set-up: a failed venv build falls back and says so.

The venv build itself needs the package index (or pip's cache) and takes a while; the
full run (`python -m benchmarks --only import`) exercises it. No timing is asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import footprint


def _no_venv(venv: Path, requirement: str, module: str) -> tuple[str, str]:
    raise RuntimeError(f"pip install {requirement} failed: no index")


def test_without_venvs_each_import_runs_here_and_the_report_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When no venv can be built, every import is timed in this environment, marked fallback."""
    monkeypatch.setattr(footprint, "_import_venv", _no_venv)
    progress: list[str] = []
    results, installs = footprint.measure_imports(1, progress.append)
    assert set(results) == set(footprint.IMPORTS)
    for name, runs in results.items():
        assert len(runs) == 1, name
        assert runs[0]["import_ms"] > 0, name
    for name in (footprint.OURS_IMPORT, footprint.OFFICIAL_IMPORT):
        assert installs[name].startswith("fallback to the benchmark's own environment"), name
        assert "RuntimeError: pip install" in installs[name], name
    ours = next(line for line in progress if line.startswith(f"import: {footprint.OURS_IMPORT}"))
    assert ours.endswith(str(Path("dispatch_client", "__init__.py"))), ours
