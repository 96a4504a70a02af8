"""Test helpers shipped with the library: a fake Dispatch service and a gRPC server for it.

```python
from dispatch_client import Client
from dispatch_client.testing import FakeDispatchService, serve
from transports import MemoryTransport

with FakeDispatchService(keys=["test-key"]) as service:
    # In process, no sockets:
    async with Client(server_url="grpc://fake", key="test-key",
                      transport=MemoryTransport(service)) as client:
        ...
    # Over real gRPC, from asyncio or trio:
    async with serve(service) as url, Client(server_url=url, key="test-key") as client:
        ...
```
"""

from __future__ import annotations

from ._cassettes import DispatchRenderer
from ._clock import FakeClock
from ._replay_server import ReplayHandler
from ._server import serve
from ._service import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, FakeDispatchService
from ._store import StoreCorrupt

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "DispatchRenderer",
    "FakeClock",
    "FakeDispatchService",
    "ReplayHandler",
    "StoreCorrupt",
    "serve",
]
