"""Placeholder until the H2Transport lands (issue 3); replaced, not extended."""

from __future__ import annotations

from ._base import BaseTransport


class H2Transport(BaseTransport):
    """Not implemented yet."""
