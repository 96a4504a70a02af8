"""The gRPC method paths of the Dispatch API (`frequenz.api.dispatch.v1`).

The transports carry a method path and bytes; the client, the fake service and its
server all name the methods through these constants.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CREATE",
    "DELETE",
    "GET",
    "LIST",
    "SERVICE",
    "STREAM",
    "STREAMING_METHODS",
    "UNARY_METHODS",
    "UPDATE",
]

SERVICE: Final = "frequenz.api.dispatch.v1.MicrogridDispatchService"
"""The fully qualified gRPC service name."""

LIST: Final = f"/{SERVICE}/ListMicrogridDispatches"
"""Unary: a page of a microgrid's dispatches."""
STREAM: Final = f"/{SERVICE}/StreamMicrogridDispatches"
"""Server streaming: the microgrid's dispatch events."""
CREATE: Final = f"/{SERVICE}/CreateMicrogridDispatch"
"""Unary: create a dispatch."""
UPDATE: Final = f"/{SERVICE}/UpdateMicrogridDispatch"
"""Unary: change some fields of a dispatch."""
GET: Final = f"/{SERVICE}/GetMicrogridDispatch"
"""Unary: one dispatch."""
DELETE: Final = f"/{SERVICE}/DeleteMicrogridDispatch"
"""Unary: delete a dispatch."""

UNARY_METHODS: Final = (LIST, CREATE, UPDATE, GET, DELETE)
"""The unary-unary methods."""
STREAMING_METHODS: Final = (STREAM,)
"""The unary-stream methods."""
