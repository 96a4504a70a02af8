"""The benchmarked clients, named once for every case."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

OURS_GRPCLIB = "ours, GrpclibTransport (asyncio)"
OURS_H2 = "ours, H2Transport (asyncio)"
OURS_H2_TRIO = "ours, H2Transport (trio)"
OFFICIAL = "official DispatchApiClient (asyncio, grpcio)"


@dataclass(frozen=True)
class Contestant:
    """A benchmarked client: its name, our transport (None: the official client), its loop."""

    name: str
    transport: Literal["grpclib", "h2"] | None
    backend: Literal["asyncio", "trio"]

    @property
    def is_official(self) -> bool:
        """Whether this is the official client."""
        return self.transport is None


CONTESTANTS = (
    Contestant(OURS_GRPCLIB, "grpclib", "asyncio"),
    Contestant(OURS_H2, "h2", "asyncio"),
    Contestant(OURS_H2_TRIO, "h2", "trio"),
    Contestant(OFFICIAL, None, "asyncio"),
)
BY_NAME = {contestant.name: contestant for contestant in CONTESTANTS}


@contextmanager
def official_warnings_silenced() -> Iterator[None]:
    """Silence the DeprecationWarnings the official client and its dependencies emit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield
