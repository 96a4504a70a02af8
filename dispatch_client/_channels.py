"""frequenz-channels interop: a `DispatchReceiver` as a `frequenz.channels.Receiver`.

Code written for the official client passes `client.stream(...)` to
`frequenz.channels.select()` or `merge()`, which need the channels `Receiver` interface
(`ready()` then `consume()`). `as_channels_receiver()` wraps our receiver in one.
frequenz-channels stays optional (the `channels` extra): it is imported when the
adapter is first built, never by `import dispatch_client`. frequenz-channels runs on
asyncio only, so the adapter does too.

Semantics, as frequenz-channels defines them: `ready()` waits for an event and returns
True, or returns False once the receiver has stopped (its client closed, or `close()`);
`consume()` returns that event, or raises `frequenz.channels.ReceiverStoppedError`.
When the stream ends with an error reconnecting cannot fix (`Unauthenticated`, ...),
`ready()` returns True and `consume()` raises that error, our own `GrpcError` subclass,
after the events received before it. Waiting in `ready()` may be cancelled (`select()`
does so for the receivers that lost) without losing an event: an event leaves our
receiver's buffer only when `ready()` takes it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, TypeVar

from transports import GrpcError

from ._errors import DecodeError
from ._stream import DispatchReceiver, ReceiverStoppedError

if TYPE_CHECKING:
    from frequenz.channels import Receiver

__all__ = ["as_channels_receiver"]

_T = TypeVar("_T")

_NOTHING: Any = object()


def as_channels_receiver(receiver: DispatchReceiver[_T]) -> Receiver[_T]:
    """Wrap a `DispatchReceiver` as a `frequenz.channels.Receiver` (needs frequenz-channels).

    ```python
    from frequenz.channels import select, selected_from

    async with client:
        one = as_channels_receiver(client.stream(1))
        two = as_channels_receiver(client.stream(2))
        async for selected in select(one, two):
            if selected_from(selected, one):
                print("microgrid 1:", selected.message)
    ```

    Closing the channels receiver closes `receiver`; closing the client stops both.

    Args:
        receiver: What `Client.stream()` returned.

    Returns:
        A `frequenz.channels.Receiver` of the same events, for `select()`, `merge()`,
        `map()` and `filter()`.

    Raises:
        TypeError: If `receiver` is not a `DispatchReceiver`.
        ImportError: If frequenz-channels is not installed.
    """
    if not isinstance(receiver, DispatchReceiver):
        raise TypeError(
            f"receiver must be a DispatchReceiver (from Client.stream()), "
            f"got {type(receiver).__name__}"
        )
    adapter: Receiver[_T] = _adapter_class()(receiver)
    return adapter


@functools.cache
def _adapter_class() -> type[Any]:
    """Build the adapter class on first use: it subclasses frequenz-channels' `Receiver`."""
    try:
        from frequenz.channels import Receiver
        from frequenz.channels import ReceiverStoppedError as ChannelsStopped
    except ImportError as error:
        raise ImportError(
            "as_channels_receiver() needs frequenz-channels: "
            'pip install "dispatch-client[channels]"'
        ) from error

    class ChannelsDispatchReceiver(Receiver[Any]):
        """A `DispatchReceiver` behind the frequenz-channels `Receiver` interface."""

        def __init__(self, inner: DispatchReceiver[Any]) -> None:
            self._inner = inner
            self._item: Any = _NOTHING
            self._error: GrpcError | DecodeError | None = None
            self._stopped = False

        @property
        def dispatch_receiver(self) -> DispatchReceiver[Any]:
            """The wrapped receiver (its `dropped`, `connected`, ...)."""
            return self._inner

        async def ready(self) -> bool:
            if self._item is not _NOTHING or self._error is not None:
                return True
            if self._stopped:
                return False
            try:
                self._item = await self._inner.receive()
            except ReceiverStoppedError:
                self._stopped = True
                return False
            except (GrpcError, DecodeError) as error:
                # Kept for consume(), which is where channels code expects errors.
                self._error = error
            return True

        def consume(self) -> Any:
            if self._error is not None:
                error, self._error = self._error, None
                self._stopped = True
                raise error
            if self._item is _NOTHING:
                if self._stopped:
                    raise ChannelsStopped(self)
                raise RuntimeError("consume() was called before ready() returned True")
            item, self._item = self._item, _NOTHING
            return item

        def close(self) -> None:
            self._inner.close()

        def __str__(self) -> str:
            return f"dispatch stream of microgrid {self._inner.microgrid_id}"

        def __repr__(self) -> str:
            return f"<ChannelsDispatchReceiver of {self._inner!r}>"

    return ChannelsDispatchReceiver
