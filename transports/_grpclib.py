"""Placeholder until the GrpclibTransport lands (issue 3); replaced, not extended."""

from __future__ import annotations

from ._base import BaseTransport


class GrpclibTransport(BaseTransport):
    """Not implemented yet."""
