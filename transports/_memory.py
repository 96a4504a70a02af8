"""Placeholder until the MemoryTransport lands (issue 3); replaced, not extended."""

from __future__ import annotations

from ._base import BaseTransport


class MemoryTransport(BaseTransport):
    """Not implemented yet."""
