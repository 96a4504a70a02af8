"""`ReplayTransport`: answers calls from a cassette, with no network and no server."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from typing import TypeAlias

import anyio

from ._base import BaseTransport, Metadata, ResponseStream, check_call
from ._cassette import (
    Interaction,
    Kind,
    Message,
    MessageRenderer,
    read_cassette,
    render_request,
    request_diff,
    strip_paths,
)
from ._errors import Cancelled, DeadlineExceeded, ProtocolError, ReplayMismatch

__all__ = ["PlayedStream", "Player", "ReplayTransport"]

_Key: TypeAlias = tuple[bytes, tuple[str, str] | None]
"""A request as matching sees it: its bytes, and its type and stripped JSON when rendered."""


class Player:
    """Finds the recorded interaction that answers a call, and plays it back.

    Shared by `ReplayTransport` and the replaying side of `RecordingTransport`.
    """

    def __init__(
        self,
        source: str,
        interactions: Iterable[Interaction],
        *,
        renderer: MessageRenderer | None,
        match_ignore: Iterable[str],
        allow_repeats: bool,
        pace: bool = False,
    ) -> None:
        """Prepare to replay `interactions`.

        Args:
            source: The cassette path, for messages.
            interactions: The recorded interactions, in recorded order.
            renderer: Renders requests as JSON (needed for `match_ignore`, used in diffs).
            match_ignore: Dotted JSON field paths ignored when matching requests.
            allow_repeats: Reuse a used interaction when no unused one matches.
            pace: Sleep the recorded gaps between stream messages.

        Raises:
            ValueError: For `match_ignore` without a renderer, or an empty path.
            TypeError: For a `match_ignore` entry that is not a str.
        """
        ignore = [match_ignore] if isinstance(match_ignore, str) else list(match_ignore)
        for path in ignore:
            if not isinstance(path, str):
                raise TypeError(f"match_ignore entries must be str, not {type(path).__name__}")
            if not path or "" in path.split("."):
                raise ValueError(f"match_ignore path {path!r} is not a dotted field path")
        if ignore and renderer is None:
            raise ValueError("match_ignore compares rendered JSON, so it needs a renderer")
        self.source = source
        self.interactions = list(interactions)
        self._renderer = renderer
        self._ignore = [path.split(".") for path in ignore]
        self._allow_repeats = allow_repeats
        self._pace = pace
        self._used = [False] * len(self.interactions)
        # The comparable key of each recorded request, computed once, on first need.
        self._keys: list[_Key] = []

    def _key(self, method: str, message: Message) -> _Key:
        """What matching compares: the bytes, and the JSON minus ignored fields if any."""
        if self._ignore:
            rendered = render_request(method, message, self._renderer)
            if rendered is not None:
                stripped = json.dumps(strip_paths(rendered[1], self._ignore), sort_keys=True)
                return message.data, (rendered[0], stripped)
        return message.data, None

    def _matches(self, index: int, key: _Key) -> bool:
        if len(self._keys) != len(self.interactions):
            self._keys = [self._key(i.method, i.request) for i in self.interactions]
        data, rendered = self._keys[index]
        # JSON when both sides rendered; a request the renderer cannot read matches by bytes.
        if rendered is not None and key[1] is not None:
            return rendered == key[1]
        return data == key[0]

    def find(self, method: str, kind: Kind, request: bytes) -> Interaction | None:
        """Take the interaction that answers a call, marking it used.

        Args:
            method: The call's method path.
            kind: The kind of call.
            request: The request bytes.

        Returns:
            The first unused matching interaction in recorded order; with `allow_repeats`,
            else the last used matching one; None when nothing matches.
        """
        key = self._key(method, Message(data=request))
        last_used: Interaction | None = None
        for index, interaction in enumerate(self.interactions):
            if interaction.method != method or interaction.kind != kind:
                continue
            if not self._matches(index, key):
                continue
            if not self._used[index]:
                self._used[index] = True
                return interaction
            last_used = interaction
        return last_used if self._allow_repeats else None

    def mismatch(self, method: str, kind: Kind, request: bytes) -> ReplayMismatch:
        """Build the error for a call nothing matches, with a diff to the closest recording.

        Args:
            method: The call's method path.
            kind: The kind of call.
            request: The request bytes.

        Returns:
            The error, ready to raise.
        """
        same = [
            (index, i)
            for index, i in enumerate(self.interactions)
            if i.method == method and i.kind == kind
        ]
        head = f"no recorded {kind} call of {method} in {self.source} matches this request"
        if not same:
            known = sorted({f"{i.method} ({i.kind})" for i in self.interactions})
            if any(i.method == method for i in self.interactions):
                return ReplayMismatch(f"{head}: that method was recorded as another kind of call")
            listing = "; it records: " + ", ".join(known) if known else "; it records no calls"
            return ReplayMismatch(f"{head}: there is no recorded call of that method{listing}")
        key = self._key(method, Message(data=request))
        if all(self._used[index] for index, _ in same) and any(
            self._matches(index, key) for index, _ in same
        ):
            return ReplayMismatch(
                f"{head}: every recorded call like it was already replayed "
                f"({len(same)} recorded, allow_repeats=False)"
            )
        unused = [i.request for index, i in same if not self._used[index]]
        diff = request_diff(
            method, Message(data=request), unused or [i.request for _, i in same], self._renderer
        )
        note = "" if unused else " (all recorded calls of it were already replayed)"
        return ReplayMismatch(f"{head}{note}; closest recorded request:\n{diff}")

    def unary(self, interaction: Interaction) -> bytes:
        """Play back a unary call: its response, or its error.

        Raises:
            GrpcError: The recorded error.
        """
        error = interaction.to_error()
        if error is not None:
            raise error
        if len(interaction.responses) != 1:
            raise ProtocolError(
                f"the recording of {interaction.method} has {len(interaction.responses)} "
                "responses; a unary call needs one"
            )
        return interaction.responses[0].data

    def start_stream(self, interaction: Interaction) -> AsyncGenerator[bytes, None]:
        """Begin playing a stream back; a call that failed before any message fails now.

        Raises:
            GrpcError: The recorded error of a stream that got no message, as real
                transports raise it when the block is entered.
        """
        if not interaction.responses and not interaction.abandoned:
            error = interaction.to_error()
            if error is not None:
                raise error
        return self.stream(interaction)

    async def stream(self, interaction: Interaction) -> AsyncGenerator[bytes, None]:
        """Play back a stream: its messages (paced if asked), then its error if it had one.

        Raises:
            GrpcError: The recorded error, after the recorded messages.
        """
        previous = 0.0
        for index, response in enumerate(interaction.responses):
            if self._pace and index > 0:
                await anyio.sleep(max(0.0, response.at - previous))
            else:
                # Yield to the loop between messages, as a real stream would.
                await anyio.lowlevel.checkpoint()
            previous = response.at
            yield response.data
        error = interaction.to_error()
        if error is not None:
            raise error


class ReplayTransport(BaseTransport):
    """A transport that answers every call from a cassette, with no network.

    Each call takes the first unused recorded interaction with the same method, kind
    and request (bytes, or JSON minus `match_ignore` fields), in recorded order. Unary
    calls return the recorded response; streams yield the recorded messages; recorded
    errors are raised as the same typed errors. A call nothing matches raises
    `ReplayMismatch` with a diff against the closest recorded request.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        renderer: MessageRenderer | None = None,
        match_ignore: Iterable[str] = (),
        allow_repeats: bool = False,
        pace: bool = False,
    ) -> None:
        """Load the whole cassette now, so a bad file fails before any call.

        Args:
            path: The cassette file.
            renderer: Renders requests as JSON: needed by `match_ignore`, and makes
                mismatch diffs readable for requests recorded without JSON.
            match_ignore: Dotted JSON field paths (e.g. `filter.startTimeInterval`)
                ignored when matching requests.
            allow_repeats: When every matching interaction was used, reuse the last one.
            pace: Sleep the recorded gaps between stream messages.

        Raises:
            CassetteError: For a corrupt, truncated, foreign or too new file.
            OSError: If the file cannot be read.
            ValueError: For `match_ignore` without a renderer.
        """
        self._path = os.fspath(path)
        cassette = read_cassette(path)
        self._player = Player(
            self._path,
            cassette.interactions,
            renderer=renderer,
            match_ignore=match_ignore,
            allow_repeats=allow_repeats,
            pace=pace,
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"<ReplayTransport {self._path!r}>"

    @property
    def interactions(self) -> Sequence[Interaction]:
        """The recorded interactions, in recorded order."""
        return tuple(self._player.interactions)

    async def unary(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> bytes:
        """Answer a unary call from the cassette.

        Args:
            method: The full method path.
            request: The serialized request.
            metadata: Request metadata (checked, not matched).
            timeout: Checked; a unary replay does not wait, so it cannot pass.

        Returns:
            The recorded response.

        Raises:
            ReplayMismatch: If no recorded interaction matches.
            RpcError: The recorded status error.
            TransportError: The recorded transport error.
            Cancelled: Once the transport is closed, or if the recorded caller left.
            TypeError, ValueError: For malformed arguments.
        """
        check_call(method, request, metadata, timeout)
        self._check_open()
        await anyio.lowlevel.checkpoint()
        interaction = self._take(method, "unary", bytes(request))
        return self._player.unary(interaction)

    @contextlib.asynccontextmanager
    async def server_stream(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> AsyncIterator[ResponseStream]:
        """Answer a streaming call from the cassette: its messages, then its error, if any.

        Raises as `unary()` does: a mismatch on entering the block, recorded errors
        after the recorded messages.
        """
        check_call(method, request, metadata, timeout)
        self._check_open()
        interaction = self._take(method, "server_stream", bytes(request))
        played = PlayedStream(
            self._player.start_stream(interaction), self._check_open, method, timeout
        )
        try:
            yield played
        finally:
            await played.aclose()

    async def aclose(self) -> None:
        """Close the transport: new calls, and reads of open streams, raise `Cancelled`."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise Cancelled("the transport is closed")

    def _take(self, method: str, kind: Kind, request: bytes) -> Interaction:
        interaction = self._player.find(method, kind, request)
        if interaction is None:
            raise self._player.mismatch(method, kind, request)
        return interaction


class PlayedStream(AsyncIterator[bytes]):
    """The messages of a replayed stream, as the caller iterates them.

    Reads raise `Cancelled` once the transport is closed, and `DeadlineExceeded` when
    the call's timeout passes while pacing waits for the next message.
    """

    def __init__(
        self,
        messages: AsyncGenerator[bytes, None],
        check_open: Callable[[], None],
        method: str,
        timeout: float | None,
    ) -> None:
        """Wrap the played messages of one call.

        Args:
            messages: The messages, from `Player.start_stream`.
            check_open: Raises if the transport was closed.
            method: The call's method path, for messages.
            timeout: The call's timeout in seconds, from now, or None.
        """
        self._messages = messages
        self._check_open = check_open
        self._method = method
        self._deadline = None if timeout is None else anyio.current_time() + timeout
        self._done = False

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        try:
            self._check_open()
            if self._deadline is None:
                return await anext(self._messages)
            with anyio.CancelScope(deadline=self._deadline):
                return await anext(self._messages)
            # Only reached when the deadline cancelled the wait.
            raise DeadlineExceeded(f"the deadline of {self._method} passed (local, replay)")
        except BaseException:
            self._done = True
            raise

    async def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The recorded call was answered: no metadata (cassettes keep none), at once.

        A recorded error surfaces while iterating, after the recorded messages.
        """
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return ()

    async def aclose(self) -> None:
        """Stop playing; idempotent."""
        self._done = True
        await self._messages.aclose()
