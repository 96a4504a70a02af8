"""`Client`: list, get, create, update and delete dispatches over any transport.

The client validates every argument before any I/O, encodes requests with
`_codec` (fast by default), sends them through a `transports.Transport` with the API key (and a
signature) in the metadata, and decodes the answers into domain types. Errors are the
`transports` error tree, their messages naming the operation and the ids.

Lifecycle: `async with Client(...) as client:` opens a task group the client owns; the
transports it uses run their background work in it, and leaving the block closes them.
Outside a block, the client still works with transports that need no background work
(grpclib, memory); H2Transport needs the block.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self, SupportsIndex, TypeVar, overload

import anyio
import anyio.abc

from transports import (
    ConnectError,
    GrpcError,
    ProtocolError,
    ResponseStream,
    RpcError,
    Transport,
    TransportError,
    Unavailable,
)

from . import _methods
from ._codec import FAST, Codec, reference
from ._errors import DecodeError
from ._eventloop import running_library
from ._official import AnyId
from ._requests import (
    CreateRequest,
    DispatchFilter,
    ListRequest,
    TimeInterval,
    check_id,
    update_from_new_fields,
)
from ._retry import RetryPolicy, may_retry
from ._stream import (
    DispatchReceiver,
    StreamNotice,
    _Upstream,
    check_buffer_size,
    check_header_timeout,
    check_stream_timeout,
    positive_seconds,
)
from ._types import (
    Dispatch,
    DispatchEvent,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetComponents,
)

if TYPE_CHECKING:
    from ._requests import ListPage

__all__ = ["Client", "DispatchApiClient", "DispatchPage", "TransportName"]

TransportName = Literal["grpclib", "h2"]
"""The transports the client can build by name from its server URL."""

_TRANSPORT_NAMES: Final = ("grpclib", "h2")
_T = TypeVar("_T")
_DEFAULT_RETRY: Final = RetryPolicy()
_DEFAULT_STREAM_RETRY: Final = RetryPolicy(attempts=None, initial=0.5, maximum=30.0)


class DispatchPage(Sequence[Dispatch]):
    """One page of a listing: a sequence of dispatches and the listing's total size."""

    __slots__ = ("_dispatches", "total_items")

    def __init__(self, dispatches: builtins.list[Dispatch], total_items: int) -> None:
        self._dispatches = dispatches
        self.total_items = total_items
        """How many dispatches the whole (filtered) listing has, as the server counts them."""

    @overload
    def __getitem__(self, index: int) -> Dispatch: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Dispatch]: ...
    def __getitem__(self, index: int | slice) -> Dispatch | Sequence[Dispatch]:
        return self._dispatches[index]

    def __len__(self) -> int:
        return len(self._dispatches)

    def __iter__(self) -> Iterator[Dispatch]:
        return iter(self._dispatches)

    def __repr__(self) -> str:
        return f"<DispatchPage {len(self._dispatches)} of {self.total_items}>"


class _Prefix:
    """What every call of one method sends besides its request, built once per client.

    The method path and, for unsigned calls, the metadata tuple (the API key): the same
    objects on every call, so nothing is rebuilt per call and a transport may cache
    what it derives from them (an encoded header block). Signed calls get fresh
    metadata (a new nonce and signature) from `Credentials` on every call.
    """

    __slots__ = ("metadata", "method")

    def __init__(self, method: str, metadata: tuple[tuple[str, str], ...] | None) -> None:
        self.method = method
        self.metadata = metadata
        """The metadata of every call, or None when each call signs its own."""


class _Held:
    """A transport entered by a keeper task in the client's task group."""

    def __init__(self) -> None:
        self.ready = anyio.Event()
        self.done = anyio.Event()
        self.error: BaseException | None = None


def _interval(name: str, start: datetime | None, end: datetime | None) -> TimeInterval | None:
    if start is None and end is None:
        return None
    try:
        return TimeInterval(start=start, end=end)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _one_of(
    first: tuple[str, Any], second: tuple[str, Any], *, required: bool, default: Any = None
) -> Any:
    """Return the value given under one of two spellings of an argument."""
    (name_a, a), (name_b, b) = first, second
    if a is not None and b is not None:
        raise TypeError(f"give {name_a} or {name_b}, not both (they are the same argument)")
    if a is None and b is None:
        if required:
            raise TypeError(f"missing required keyword argument: {name_a!r} (or {name_b!r})")
        return default
    return a if a is not None else b


def _codec_choice(fast_codec: bool | None, fast_decode: bool | None) -> bool:
    """Whether a client uses the fast codec, from its two spellings of the switch.

    Raises:
        TypeError: For a value that is not a bool (or None: not given).
        ValueError: For the two spellings given contradicting each other.
    """
    for name, value in (("fast_codec", fast_codec), ("fast_decode", fast_decode)):
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    if fast_codec is not None and fast_decode is not None and fast_codec != fast_decode:
        raise ValueError(
            f"fast_codec={fast_codec} contradicts fast_decode={fast_decode}; "
            "fast_decode is the earlier name of fast_codec: pass one of them"
        )
    choice = fast_codec if fast_codec is not None else fast_decode
    return True if choice is None else choice


class Client:
    """A client of the Frequenz Dispatch API, on asyncio and trio.

    ```python
    async with Client(server_url="grpc://dispatch.example.com", key="...") as client:
        async for page in client.list(microgrid_id=1, active=True):
            for dispatch in page:
                print(dispatch.id, dispatch.type)
    ```

    `key` and `auth_key` are the two spellings of the API key users of the official
    clients know (0.7 and 1.x); give exactly one. `repr()` shows neither the key nor
    the sign secret.

    `transport` chooses how calls travel: None builds `H2Transport` (asyncio and trio)
    when the first call is made (`GrpclibTransport` for a client used on asyncio
    without `async with`, which H2Transport needs);
    `"grpclib"` or `"h2"` builds that one from `server_url`; a `transports.Transport`
    instance (memory, recording, replay, ...) is used as is, and the client then owns
    it: it enters it inside `async with` and closes it on `disconnect()`.
    """

    def __init__(
        self,
        *,
        server_url: str,
        key: str | None = None,
        auth_key: str | None = None,
        sign_secret: str | bytes | None = None,
        connect: bool = True,
        call_timeout: timedelta = timedelta(seconds=60),
        transport: TransportName | Transport | None = None,
        retry: RetryPolicy | None = _DEFAULT_RETRY,
        stream_retry: RetryPolicy | None = _DEFAULT_STREAM_RETRY,
        stream_timeout: timedelta | None = None,
        stream_header_timeout: timedelta = timedelta(seconds=30),
        fast_codec: bool | None = None,
        fast_decode: bool | None = None,
    ) -> None:
        """Prepare a client; no I/O happens until the first call.

        Args:
            server_url: `grpc://host[:port][?options]` (see `transports.parse_url`).
            key: The API key (the 0.7 spelling).
            auth_key: The API key (the 1.x spelling).
            sign_secret: Sign every call with this secret (HMAC-SHA256), or None.
            connect: Whether the client is connected from the start; else call
                `connect()` before making calls.
            call_timeout: The deadline of each unary call.
            transport: None, `"grpclib"`, `"h2"` or a `transports.Transport`.
            retry: How calls repeat: `get()` and each `list()` page after
                `Unavailable` or `ConnectError`, any call the server provably did not
                process (`GrpcError.not_processed`);
                None turns retries off.
            stream_retry: How streams reconnect (by default without limit, pauses from
                0.5 s doubling up to 30 s, jittered); None: a stream's first failure
                ends its receivers.
            stream_timeout: A deadline for each stream call, renewed at once when it
                passes (the official client's 5-minute habit); None (the default):
                the call stays open as long as the server keeps it.
            stream_header_timeout: How long a stream call may wait for the server's
                response headers (its answer) before it is retried with backoff as
                `stream_retry` says; a stream counts as connected only once answered.
                Once answered, silence is normal and never times out (keep-alive
                finds a dead server).
            fast_codec: Encode requests and decode responses with the hand-written
                codec, straight between domain objects and wire bytes (True, the
                default); False goes through the generated betterproto2 messages
                instead, the slower reference path. Both write the same messages,
                give equal results and raise the same errors.
            fast_decode: The earlier name of `fast_codec`, which it sets the same way.

        Raises:
            TypeError: For a missing or doubled API key, or an argument of the wrong type.
            ValueError: For a malformed URL, an empty key, a bad timeout or an unknown
                transport name.
        """
        # hashlib, hmac and secrets (OpenSSL's libcrypto among them) load with the first
        # client, not with the package.
        from ._auth import Credentials

        api_key = _one_of(("key", key), ("auth_key", auth_key), required=True)
        self._credentials = Credentials(api_key, sign_secret)
        self._timeout = positive_seconds("call_timeout", call_timeout)
        self._call_timeout = call_timeout
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
        self._retry = retry
        if stream_retry is not None and not isinstance(stream_retry, RetryPolicy):
            raise TypeError(
                f"stream_retry must be a RetryPolicy or None, got {type(stream_retry).__name__}"
            )
        self._stream_retry = stream_retry
        self._stream_timeout = check_stream_timeout(stream_timeout)
        self._stream_header_timeout = check_header_timeout(stream_header_timeout)
        self._fast_codec = _codec_choice(fast_codec, fast_decode)
        # The reference codec imports the generated code: looked up on first use only.
        self._chosen_codec: Codec | None = FAST if self._fast_codec else None
        if isinstance(transport, str):
            if transport not in _TRANSPORT_NAMES:
                raise ValueError(
                    f"unknown transport {transport!r}; use 'grpclib', 'h2', None or a "
                    "transports.Transport instance"
                )
        elif transport is not None and not isinstance(transport, Transport):
            raise TypeError(
                "transport must be 'grpclib', 'h2', None or a transports.Transport, "
                f"got {type(transport).__name__}"
            )
        self._choice: TransportName | None = transport if isinstance(transport, str) else None
        self._given: Transport | None = None if isinstance(transport, str) else transport
        self._given_closed = False
        self._server_url = self._checked_url(server_url)
        self._connected = False
        self._transport: Transport | None = None
        self._held: dict[int, _Held] = {}
        self._tasks: anyio.abc.TaskGroup | None = None
        self._retired: builtins.list[Transport] = []
        self._upstreams: dict[int, _Upstream] = {}
        static = None if self._credentials.signs else self._credentials.metadata(_methods.GET)
        self._prefixes: dict[str, _Prefix] = {
            method: _Prefix(method, static)
            for method in (*_methods.UNARY_METHODS, *_methods.STREAMING_METHODS)
        }
        if connect:
            self.connect()

    @staticmethod
    def _checked_url(url: object) -> str:
        if not isinstance(url, str):
            raise TypeError(f"server_url must be a str, got {type(url).__name__}")
        from transports import parse_url  # with the first client, not with the package

        parse_url(url)
        return url

    def __repr__(self) -> str:
        state = "connected" if self._connected else "disconnected"
        return f"<Client {self._server_url} {state}>"

    # --- properties -----------------------------------------------------------------

    @property
    def server_url(self) -> str:
        """The URL of the server the client talks (or will talk) to."""
        return self._server_url

    @property
    def is_connected(self) -> bool:
        """Whether calls may be made (between `connect()` and `disconnect()`)."""
        return self._connected

    @property
    def transport(self) -> Transport | None:
        """The transport calls use; None until it is built by the first call."""
        return self._transport if self._transport is not None else self._given

    @property
    def call_timeout(self) -> timedelta:
        """The deadline of each unary call."""
        return self._call_timeout

    @property
    def retry(self) -> RetryPolicy | None:
        """How calls are repeated (see `retry` of the constructor); None: never."""
        return self._retry

    @property
    def stream_retry(self) -> RetryPolicy | None:
        """How streams reconnect; None: a stream's first failure ends its receivers."""
        return self._stream_retry

    @property
    def stream_timeout(self) -> timedelta | None:
        """The deadline of each stream call (renewed when it passes), or None for none."""
        return None if self._stream_timeout is None else timedelta(seconds=self._stream_timeout)

    @property
    def stream_header_timeout(self) -> timedelta:
        """How long a stream call waits for the server's answer before it is retried."""
        return timedelta(seconds=self._stream_header_timeout)

    # --- lifecycle ------------------------------------------------------------------

    def connect(self, server_url: str | None = None) -> None:
        """Connect to `server_url` (the current one if None); no I/O happens yet.

        Connecting to another URL retires the transport built for the old one (it is
        closed on the next call, `disconnect()` or the end of `async with`). A given
        transport instance is bound to its own peer: changing the URL then is an error,
        and so is reconnecting once `disconnect()` (or the end of `async with`) closed it.

        Args:
            server_url: The new server URL, or None to keep the current one.

        Raises:
            ValueError: For a malformed URL, or a new URL with a given transport.
            TypeError: If the URL is not a str.
            RuntimeError: If the client's given transport instance was closed.
        """
        if self._given_closed:
            raise RuntimeError(
                "the transport instance this client was given was closed when it "
                "disconnected, and a transport cannot be reopened: create a new Client "
                "with a new transport"
            )
        if server_url is not None and server_url != self._server_url:
            url = self._checked_url(server_url)
            if self._given is not None:
                raise ValueError(
                    "this client uses a given transport instance, which cannot change its "
                    "server; create a new client"
                )
            if self._transport is not None:
                self._retired.append(self._transport)
                self._transport = None
            self._server_url = url
        self._connected = True

    async def disconnect(self) -> None:
        """Close the transport and end every stream; calls in flight fail with `Cancelled`.

        Receivers of streams stop (their iteration ends). Idempotent.

        `connect()` makes the client usable again with a new transport; a client given
        a transport instance cannot reconnect (its transport is closed), and its
        `connect()` raises `RuntimeError`.
        """
        self._connected = False
        for upstream in builtins.list(self._upstreams.values()):
            upstream.stop()
        transport, self._transport = self._transport, None
        if self._given is not None:
            transport = self._given  # the only transport such a client ever uses
            self._given_closed = True
        if transport is not None:
            self._retired.append(transport)
        await self._close_retired()

    async def _close_retired(self) -> None:
        retired, self._retired = self._retired, []
        for transport in retired:
            await transport.aclose()
            held = self._held.pop(id(transport), None)
            if held is not None:
                held.done.set()

    async def __aenter__(self) -> Self:
        if self._tasks is not None:
            raise RuntimeError("a Client can be entered only once at a time")
        tasks = anyio.create_task_group()
        await tasks.__aenter__()
        self._tasks = tasks
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tasks = self._tasks
        try:
            with anyio.CancelScope(shield=True):
                await self.disconnect()
        finally:
            self._tasks = None
            if tasks is not None:
                tasks.cancel_scope.cancel()
                # Nothing of the body is handed to the task group, which would wrap it
                # in an ExceptionGroup; the keepers end quietly once cancelled.
                await tasks.__aexit__(None, None, None)

    async def _keep(self, transport: Transport, held: _Held) -> None:
        """Hold `transport` entered until it is retired (a task of the client's group)."""
        try:
            async with transport:
                held.ready.set()
                await held.done.wait()
        except Exception as error:  # reported to the callers waiting on `ready`
            held.error = error
            held.ready.set()

    def _build_transport(self) -> Transport:
        if self._given is not None:
            return self._given
        kind = self._choice
        if kind is None:
            # Our own HTTP/2 core, on asyncio and trio alike; a client used without
            # `async with` on asyncio has no task group for H2Transport: grpclib.
            kind = "h2" if self._tasks is not None or running_library() != "asyncio" else "grpclib"
        if kind == "grpclib":
            from transports import GrpclibTransport

            return GrpclibTransport.from_url(self._server_url)
        from transports import H2Transport

        return H2Transport.from_url(self._server_url)

    async def _transport_for_call(self) -> Transport:
        """The transport for the next call: built, and entered when in `async with`."""
        if not self._connected:
            raise RuntimeError("the client is not connected; call connect() first")
        if self._retired:
            await self._close_retired()
        transport = self._transport
        if transport is None:
            transport = self._transport = self._build_transport()
        if self._tasks is None:
            if _needs_context(transport):
                raise RuntimeError(
                    f"{type(transport).__name__} runs background work in the client's task "
                    "group: use the client as `async with Client(...) as client:`"
                )
            return transport
        held = self._held.get(id(transport))
        if held is None:
            held = self._held[id(transport)] = _Held()
            self._tasks.start_soon(self._keep, transport, held)
        if not held.ready.is_set():
            # Waiting on a set event would still yield to the event loop on every call.
            await held.ready.wait()
        if held.error is not None:
            raise RuntimeError(f"the transport could not be entered: {held.error}") from (
                held.error
            )
        return transport

    # --- calls ------------------------------------------------------------------------

    async def _unary(
        self,
        prefix: _Prefix,
        request: bytes,
        context: str,
        args: tuple[object, ...],
        *,
        retry: bool,
    ) -> bytes:
        """Make a unary call; errors get `context % args` in their message.

        The context is formatted only when an error needs it. `retry` says whether the
        call is idempotent; `may_retry` decides, and even a call that is not is repeated
        when the server provably did not process it. The retry policy's pauses are only
        drawn once a call failed.
        """
        transport = await self._transport_for_call()
        method = prefix.method
        metadata = prefix.metadata
        pauses: Iterator[float] | None = None
        while True:
            try:
                return await transport.unary(
                    method,
                    request,
                    metadata=(self._credentials.metadata(method) if metadata is None else metadata),
                    timeout=self._timeout,
                )
            except (Unavailable, ConnectError) as error:
                if pauses is None:
                    pauses = self._retry.pauses() if self._retry is not None else iter(())
                pause = next(pauses, None) if may_retry(error, idempotent=retry) else None
                if pause is None:
                    raise _in_context(error, context % args) from error
                await anyio.sleep(pause)
            except (RpcError, TransportError) as error:
                raise _in_context(error, context % args) from error

    def _codec(self) -> Codec:
        """The codec that encodes this client's requests and decodes its answers."""
        codec = self._chosen_codec
        if codec is None:
            codec = self._chosen_codec = reference()
        return codec

    @staticmethod
    def _decoded(
        context: str, args: tuple[object, ...], decode: Callable[[bytes], _T], data: bytes
    ) -> _T:
        try:
            return decode(data)
        except DecodeError as error:
            raise ProtocolError(
                f"{context % args}: the server's answer is invalid: {error}"
            ) from error

    def list(
        self,
        microgrid_id: AnyId,
        *,
        target_components: Iterable[TargetComponents] | None = None,
        component_selectors: Iterable[TargetComponents] | None = None,
        start_from: datetime | None = None,
        start_to: datetime | None = None,
        end_from: datetime | None = None,
        end_to: datetime | None = None,
        update_from: datetime | None = None,
        update_to: datetime | None = None,
        active: bool | None = None,
        dry_run: bool | None = None,
        recurring: bool | None = None,
        dispatch_ids: Iterable[AnyId] = (),
        filter_queries: Iterable[str] = (),
        sort_by: SortField = SortField.UNSPECIFIED,
        sort_order: SortOrder = SortOrder.UNSPECIFIED,
        page_size: SupportsIndex | None = None,
    ) -> AsyncIterator[DispatchPage]:
        """List a microgrid's dispatches, page by page.

        ```python
        async for page in client.list(1, active=True, page_size=100):
            for dispatch in page:
                ...
        ```

        Arguments are checked here, before any I/O; each page is fetched when the
        iteration reaches it. Criteria combine with AND; the members of
        `target_components`, `dispatch_ids` and `filter_queries` each with OR. A query
        `#4` matches dispatch id 4; other text matches the type as a substring.

        Args:
            microgrid_id: The microgrid.
            target_components: Dispatches for any of these targets (1.x spelling).
            component_selectors: The same (0.7 spelling); give one of the two.
            start_from: Start time >= this.
            start_to: Start time < this.
            end_from: End time >= this.
            end_to: End time < this.
            update_from: Last update >= this.
            update_to: Last update < this.
            active: Only active (True) or inactive (False) dispatches.
            dry_run: Only dry-run (True) or real (False) dispatches.
            recurring: Only recurring (True) or one-off (False) dispatches.
            dispatch_ids: Dispatches with any of these ids.
            filter_queries: Free-text queries (see above).
            sort_by: What to sort by; UNSPECIFIED leaves it to the server.
            sort_order: Which way; UNSPECIFIED leaves it to the server.
            page_size: The largest page wanted, or None for the server's default.

        Returns:
            An async iterator of `DispatchPage`s.

        Raises:
            TypeError, ValueError: For a malformed argument (naive datetimes, a window
                whose start is after its end, ...), at once.
        """
        targets = _one_of(
            ("target_components", target_components),
            ("component_selectors", component_selectors),
            required=False,
            default=(),
        )
        first = ListRequest(
            microgrid_id=microgrid_id,
            filter=DispatchFilter(
                targets=targets,
                active=active,
                dry_run=dry_run,
                recurring=recurring,
                start_time=_interval("start_from/start_to", start_from, start_to),
                end_time=_interval("end_from/end_to", end_from, end_to),
                update_time=_interval("update_from/update_to", update_from, update_to),
                dispatch_ids=dispatch_ids,
                queries=filter_queries,
            ),
            sort_field=sort_by,
            sort_order=sort_order,
            page_size=page_size,
        )
        return self._pages(first)

    async def _pages(self, first: ListRequest) -> AsyncIterator[DispatchPage]:
        context, args = "list dispatches of microgrid %d", (first.microgrid_id,)
        prefix = self._prefixes[_methods.LIST]
        codec = self._codec()
        request = first
        while True:
            data = await self._unary(
                prefix, codec.encode_list_request(request), context, args, retry=True
            )
            page: ListPage = self._decoded(context, args, codec.decode_list_response, data)
            yield DispatchPage(page.dispatches, page.total_items)
            if page.next_page_token is None:
                return
            # Later pages carry the token instead of a size; the filter and sort stay.
            request = ListRequest(
                microgrid_id=first.microgrid_id,
                filter=first.filter,
                sort_field=first.sort_field,
                sort_order=first.sort_order,
                page_token=page.next_page_token,
            )

    async def create(
        self,
        microgrid_id: AnyId,
        type: str,
        start_time: datetime | Literal["NOW"],
        duration: timedelta | None,
        target: TargetComponents | None = None,
        *,
        selector: TargetComponents | None = None,
        active: bool = True,
        dry_run: bool = False,
        payload: Mapping[str, Any] | None = None,
        recurrence: RecurrenceRule | None = None,
    ) -> Dispatch:
        """Create a dispatch and return it as the server stored it.

        Repeated automatically only when the server provably did not process the call
        (the error's `not_processed`): otherwise it may have created the dispatch even
        when the answer was lost.

        Args:
            microgrid_id: The microgrid.
            type: The user-defined kind of dispatch.
            start_time: A timezone-aware time in the future, or `"NOW"`.
            duration: How long each run lasts (rounded to whole seconds), or None to
                run until stopped.
            target: The components (1.x spelling).
            selector: The same (0.7 spelling); give one of the two.
            active: Whether the dispatch is to be executed.
            dry_run: Whether actors should only log what they would do.
            payload: JSON-like data for the actors.
            recurrence: How the dispatch repeats, or None.

        Returns:
            The created dispatch, with its id and times.

        Raises:
            TypeError, ValueError: For a malformed argument, a naive or past start time,
                a negative duration, an invalid recurrence, before any I/O.
            GrpcError: What the server or the network answered.
        """
        chosen = _one_of(("target", target), ("selector", selector), required=True)
        request = CreateRequest(
            microgrid_id=microgrid_id,
            type=type,
            start_time=start_time,
            duration=duration,
            target=chosen,
            active=active,
            dry_run=dry_run,
            payload=_payload(payload),
            recurrence=recurrence,
        )
        if isinstance(request.start_time, datetime) and request.start_time <= datetime.now(UTC):
            raise ValueError(
                f"start_time must be in the future, got {request.start_time.isoformat()}; "
                'use "NOW" to start immediately'
            )
        context = "create a dispatch of type %r in microgrid %d"
        args = (request.type, request.microgrid_id)
        codec = self._codec()
        data = await self._unary(
            self._prefixes[_methods.CREATE],
            codec.encode_create_request(request),
            context,
            args,
            retry=False,
        )
        return self._decoded(context, args, codec.decode_create_response, data)

    async def update(
        self,
        *,
        microgrid_id: AnyId,
        dispatch_id: AnyId,
        new_fields: Mapping[str, Any],
    ) -> Dispatch:
        """Change some fields of a dispatch and return it as the server stored it.

        Keys of `new_fields` and the mask paths they send: `start_time`, `duration`
        (None clears it), `target`, `active` / `is_active`, `payload`,
        `recurrence.freq` / `recurrence.frequency`, `recurrence.interval`,
        `recurrence.end_criteria`, `recurrence.byminutes`, `recurrence.byhours`,
        `recurrence.byweekdays`, `recurrence.bymonthdays`, `recurrence.bymonths`, or
        `recurrence` (a whole `RecurrenceRule`). `type` and `dry_run` cannot change.
        Repeated automatically only when the server provably did not process the call.

        Args:
            microgrid_id: The microgrid.
            dispatch_id: The dispatch.
            new_fields: The changes, keyed as above.

        Returns:
            The updated dispatch.

        Raises:
            ValueError: For an empty update and for unknown, forbidden, malformed or
                doubled keys and bad values, before any I/O.
            TypeError: For ids of the wrong type.
            GrpcError: What the server or the network answered (`NotFound`, ...).
        """
        request = update_from_new_fields(
            new_fields,
            microgrid_id=check_id("microgrid_id", microgrid_id),
            dispatch_id=check_id("dispatch_id", dispatch_id),
        )
        if "start_time" in request.fields and request.fields["start_time"] <= datetime.now(UTC):
            raise ValueError(
                "new start_time must be in the future, got "
                f"{request.fields['start_time'].isoformat()}"
            )
        context = "update dispatch %d of microgrid %d"
        args = (request.dispatch_id, request.microgrid_id)
        codec = self._codec()
        data = await self._unary(
            self._prefixes[_methods.UPDATE],
            codec.encode_update_request(request),
            context,
            args,
            retry=False,
        )
        return self._decoded(context, args, codec.decode_update_response, data)

    async def get(self, *, microgrid_id: AnyId, dispatch_id: AnyId) -> Dispatch:
        """Fetch one dispatch (repeated after `Unavailable` or `ConnectError`, as `retry` says).

        Args:
            microgrid_id: The microgrid.
            dispatch_id: The dispatch.

        Returns:
            The dispatch.

        Raises:
            TypeError, ValueError: For malformed ids, before any I/O.
            GrpcError: What the server or the network answered (`NotFound`, ...).
        """
        microgrid = check_id("microgrid_id", microgrid_id)
        dispatch_number = check_id("dispatch_id", dispatch_id)
        context, args = "get dispatch %d of microgrid %d", (dispatch_number, microgrid)
        codec = self._codec()
        data = await self._unary(
            self._prefixes[_methods.GET],
            codec.encode_get_request(microgrid, dispatch_number),
            context,
            args,
            retry=True,
        )
        return self._decoded(context, args, codec.decode_get_response, data)

    async def delete(self, *, microgrid_id: AnyId, dispatch_id: AnyId) -> None:
        """Delete a dispatch; repeated only when the server provably did not process it.

        Args:
            microgrid_id: The microgrid.
            dispatch_id: The dispatch.

        Raises:
            TypeError, ValueError: For malformed ids, before any I/O.
            GrpcError: What the server or the network answered (`NotFound`, ...).
        """
        microgrid = check_id("microgrid_id", microgrid_id)
        dispatch_number = check_id("dispatch_id", dispatch_id)
        context, args = "delete dispatch %d of microgrid %d", (dispatch_number, microgrid)
        codec = self._codec()
        data = await self._unary(
            self._prefixes[_methods.DELETE],
            codec.encode_delete_request(microgrid, dispatch_number),
            context,
            args,
            retry=False,
        )
        self._decoded(context, args, codec.decode_delete_response, data)

    # --- streams ----------------------------------------------------------------------

    @overload
    def stream(
        self,
        microgrid_id: AnyId,
        *,
        buffer_size: int = ...,
        resync: bool = ...,
        notices: Literal[False] = ...,
    ) -> DispatchReceiver[DispatchEvent]: ...
    @overload
    def stream(
        self,
        microgrid_id: AnyId,
        *,
        buffer_size: int = ...,
        resync: bool = ...,
        notices: Literal[True],
    ) -> DispatchReceiver[DispatchEvent | StreamNotice]: ...
    def stream(
        self,
        microgrid_id: AnyId,
        *,
        buffer_size: int = 1000,
        resync: bool = False,
        notices: bool = False,
    ) -> DispatchReceiver[DispatchEvent] | DispatchReceiver[DispatchEvent | StreamNotice]:
        """Follow the changes to a microgrid's dispatches as they happen.

        ```python
        async with Client(server_url=url, key=key) as client:
            async with client.stream(1) as receiver:
                async for event in receiver:
                    print(event.event.name, event.dispatch.id)
        ```

        All receivers of one microgrid share one stream call, started with the first
        and ended after the last one closes; it runs in the client's task group, so
        this needs `async with Client(...)`. When the call fails it reconnects as
        `stream_retry` says (by default forever); events that happen while it is
        down are lost, unless `resync` is on. `Unauthenticated`, `PermissionDenied`,
        `InvalidArgument`, `Unimplemented` and `NotFound` end every receiver of the
        microgrid with that error, since reconnecting cannot help. Closing the
        client ends every receiver's iteration.

        `resync=True` makes the receiver's events add up to the server's state: the
        stream keeps a mirror of the microgrid's dispatches (a full `list()` on
        connect and after every reconnect); the receiver first delivers the current
        dispatches as CREATED events, and after a reconnect, or when its buffer
        overflowed, the differences between what it delivered and the mirror as
        CREATED / UPDATED / DELETED events, all with `synthesized=True`. Cost: a full
        listing per (re)connect, the mirror (one reference per dispatch), and per
        resync receiver a dict of what it delivered.

        Args:
            microgrid_id: The microgrid.
            buffer_size: How many undelivered events the receiver holds; when full,
                the oldest is dropped and `receiver.dropped` counts it.
            resync: Deliver synthesized events that fill gaps (see above).
            notices: Also deliver `StreamConnected` and `StreamReconnecting` notices,
                in order with the events.

        Returns:
            A `DispatchReceiver`: an async iterator and async context manager.

        Raises:
            TypeError, ValueError: For malformed arguments.
            RuntimeError: Outside `async with Client(...)`, or when not connected.
        """
        microgrid = check_id("microgrid_id", microgrid_id)
        size = check_buffer_size(buffer_size)
        for name, value in (("resync", resync), ("notices", notices)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__}: {value!r}")
        if self._tasks is None:
            # The official client starts a free-running background task here; ours runs
            # the call in the task group `async with` opens, so no task outlives it.
            raise RuntimeError(
                "stream() runs its call in the task group `async with client:` opens; "
                "write `async with Client(...) as client:` (or `async with client:`) "
                "around the code that uses the stream, e.g. "
                "`async with client: async for event in client.stream(1): ...`"
            )
        if not self._connected:
            raise RuntimeError("the client is not connected; call connect() first")
        upstream = self._upstreams.get(microgrid)
        if upstream is None or upstream.stopping:
            upstream = _Upstream(
                microgrid,
                open_stream=self._open_stream,
                list_all=self._list_all,
                decode=self._codec().decode_stream_response,
                retry=self._stream_retry,
                timeout=self._stream_timeout,
                on_done=self._forget_upstream,
                header_timeout=self._stream_header_timeout,
            )
            self._upstreams[microgrid] = upstream
            self._tasks.start_soon(upstream.run)
        return upstream.attach(buffer_size=size, resync=resync, notices=notices)  # type: ignore[return-value]

    def _forget_upstream(self, upstream: _Upstream) -> None:
        if self._upstreams.get(upstream.microgrid_id) is upstream:
            del self._upstreams[upstream.microgrid_id]

    async def _open_stream(
        self, microgrid_id: int, timeout: float | None
    ) -> AbstractAsyncContextManager[ResponseStream]:
        """Start a microgrid's stream call (for its upstream)."""
        transport = await self._transport_for_call()
        return transport.server_stream(
            _methods.STREAM,
            self._codec().encode_stream_request(microgrid_id),
            metadata=self._prefixes[_methods.STREAM].metadata
            or self._credentials.metadata(_methods.STREAM),
            timeout=timeout,
        )

    async def _list_all(self, microgrid_id: int) -> dict[int, Dispatch]:
        """Every dispatch of a microgrid by id (for a resync mirror)."""
        return {
            dispatch.id: dispatch
            async for page in self._pages(ListRequest(microgrid_id=microgrid_id))
            for dispatch in page
        }


def _payload(payload: object) -> Any:
    """The payload as CreateRequest takes it: a dict (None is empty); others it rejects."""
    if payload is None:
        return {}
    if isinstance(payload, Mapping):
        return dict(payload)
    return payload


def _needs_context(transport: Transport) -> bool:
    """Whether `transport` must be entered before calls (it runs background tasks)."""
    h2 = sys.modules.get("transports._h2")
    return h2 is not None and isinstance(transport, h2.H2Transport)


DispatchApiClient = Client
"""The name of the official 1.x client; the same class."""


def _in_context(error: GrpcError, context: str) -> GrpcError:
    """A copy of a transport error whose message starts with `context` (what was done).

    The copy keeps the class, the status and `not_processed`.
    """
    if isinstance(error, RpcError):
        return error.with_context(context)
    copy = type(error)(f"{context}: {error}")
    copy.not_processed = error.not_processed
    return copy
