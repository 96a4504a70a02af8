"""Shared test configuration: every async test runs on asyncio and on trio.

Hypothesis runs without its per-example deadline: a deadline is a timing assertion,
and on a loaded machine (CI with other jobs, a suite run per Python version) a
correct example can take longer than 200 ms. Example counts stay bounded.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("dispatch-client", deadline=None)
settings.load_profile("dispatch-client")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each `@pytest.mark.anyio` test once per backend."""
    return str(request.param)
