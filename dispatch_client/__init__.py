"""A pure-Python client for the Frequenz Dispatch API, on asyncio and trio."""

from __future__ import annotations

__all__: list[str] = []
