"""Benchmark scripts (run them as files; see each module's docstring)."""

from __future__ import annotations
