"""`RecordingTransport`: passes calls through another transport and records them to a cassette."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, get_args

import anyio

from ._base import BaseTransport, Metadata, ResponseStream, Transport, check_call
from ._cassette import (
    DEFAULT_REDACTED,
    Interaction,
    Kind,
    Message,
    MessageRenderer,
    RecordedError,
    RecordedStatus,
    RecordMode,
    Response,
    SecretScanner,
    dumps_line,
    interaction_to_json,
    new_header,
    read_cassette,
    redact_metadata,
    status_of,
    write_cassette,
)
from ._errors import Cancelled, GrpcError, RpcError
from ._replay import PlayedStream, Player

__all__ = ["RecordingTransport"]

_MODES: frozenset[str] = frozenset(get_args(RecordMode))

_LEFT = RecordedError(type="Cancelled", message="the caller left")


class _Call:
    """One call being recorded: filled in as it runs, turned into an `Interaction` at its end."""

    def __init__(
        self,
        slot: int,
        method: str,
        kind: Kind,
        request: bytes,
        metadata: tuple[tuple[str, str | bytes], ...],
        started: float,
    ) -> None:
        self.slot = slot
        self.method = method
        self.kind = kind
        self.request = request
        self.metadata = metadata
        self.started = started
        self.responses: list[tuple[bytes, float]] = []
        self.status: RecordedStatus | None = None
        self.trailing_metadata: tuple[tuple[str, str | bytes], ...] = ()
        self.error: RecordedError | None = None
        self.duration = 0.0
        self.done = False
        self._clock = time.monotonic()

    def respond(self, message: bytes) -> None:
        self.responses.append((message, time.monotonic() - self._clock))

    def end_ok(self) -> None:
        self._end(status=RecordedStatus(code=0))

    def end_failed(self, error: GrpcError) -> None:
        if isinstance(error, RpcError):
            self.trailing_metadata = error.trailing_metadata
            self._end(status=status_of(error))
        else:
            self._end(error=RecordedError(type=type(error).__name__, message=str(error)))

    def end_left(self) -> None:
        self._end(error=_LEFT)

    def _end(
        self, *, status: RecordedStatus | None = None, error: RecordedError | None = None
    ) -> None:
        if self.done:
            return
        self.done = True
        self.status = status
        self.error = error
        self.duration = time.monotonic() - self._clock


class RecordingTransport(BaseTransport):
    """A transport that records the calls it passes to `inner` into a cassette.

    It wraps `inner` (and owns it: `async with` enters it, `aclose()` closes it). Calls
    pass through unchanged, the same bytes, errors and cancellation, and each call is
    written as one interaction when it completes: when it succeeds, fails, or its
    caller leaves. The file is rewritten atomically every time, so it is always whole.

    Record modes (vcrpy's):

    * `none`: replay only; a call with no recording raises `ReplayMismatch`.
    * `once`: when the file does not exist, record every call; else replay only.
    * `new_episodes`: replay calls that match a recording, record (append) the rest.
    * `all`: record every call, replacing the file.

    Before writing, metadata named `key`, `sig`, `nonce`, `ts`, `authorization` or in
    `redact` is replaced by `REDACTED`, the `scrub` hook runs, and the interaction is
    searched for every one of `secrets` (and their base64 forms): a hit raises
    `SecretInCassette` and writes nothing.
    """

    def __init__(
        self,
        inner: Transport | None,
        path: str | os.PathLike[str],
        *,
        mode: RecordMode | None = None,
        renderer: MessageRenderer | None = None,
        redact: Iterable[str] = (),
        secrets: Iterable[str | bytes] = (),
        scrub: Callable[[Interaction], Interaction] | None = None,
        match_ignore: Iterable[str] = (),
        allow_repeats: bool = False,
    ) -> None:
        """Open the cassette for `mode`, reading it now when calls may be replayed.

        Args:
            inner: The transport that makes real calls; None only for mode `none`.
            path: The cassette file.
            mode: The record mode; None means `none` when the environment variable `CI`
                is set (non-empty), else `once`.
            renderer: Renders messages as JSON for the cassette, for `match_ignore`
                and for mismatch diffs.
            redact: Further metadata names whose values are never written
                (case-insensitive).
            secrets: Values that must never be written, in any field, as text, bytes
                or base64.
            scrub: Called with each interaction before it is written (after redaction);
                returns the interaction to write, e.g. via `attrs.evolve`.
            match_ignore: Dotted JSON field paths ignored when matching on replay.
            allow_repeats: On replay, reuse the last matching interaction when every
                matching one was used.

        Raises:
            ValueError: For an unknown mode, `inner=None` with a recording mode, or
                `match_ignore` without a renderer.
            TypeError: For an `inner` that is not a transport, a non-callable `scrub`,
                or names and secrets of the wrong type.
            CassetteError: When the existing file is needed and is corrupt, truncated,
                foreign or too new.
        """
        if mode is None:
            mode = "none" if os.environ.get("CI") else "once"
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}, got {mode!r}")
        if inner is None:
            if mode != "none":
                raise ValueError(f"mode {mode!r} records calls, so it needs an inner transport")
        elif not isinstance(inner, Transport):
            raise TypeError(f"inner must be a transport, not {type(inner).__name__}")
        if scrub is not None and not callable(scrub):
            raise TypeError(f"scrub must be callable, not {type(scrub).__name__}")
        names = [redact] if isinstance(redact, str) else list(redact)
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"redact names must be str, not {type(name).__name__}")
        self._redact = DEFAULT_REDACTED | {name.lower() for name in names}
        self._scanner = SecretScanner([secrets] if isinstance(secrets, str | bytes) else secrets)
        self._inner = inner
        self._path = os.fspath(path)
        self._mode: RecordMode = mode
        self._renderer = renderer
        self._scrub = scrub

        exists = os.path.exists(self._path)
        self._record = mode in ("all", "new_episodes") or (mode == "once" and not exists)
        replay = mode in ("none", "new_episodes") or (mode == "once" and exists)
        header: Mapping[str, Any] | None = None
        kept: tuple[Interaction, ...] = ()
        if replay and exists:
            cassette = read_cassette(self._path)
            header = cassette.header
            kept = cassette.interactions
        self._player: Player | None = None
        if replay:
            self._player = Player(
                self._path,
                kept,
                renderer=renderer,
                match_ignore=match_ignore,
                allow_repeats=allow_repeats,
            )
        else:
            # Still validated, so a mistake shows whichever mode is in use today.
            Player(
                self._path, (), renderer=renderer, match_ignore=match_ignore, allow_repeats=False
            )
        self._missing = replay and not exists
        self._header = dict(header) if header is not None else new_header()
        # Only new_episodes writes the recordings it read back out, ahead of new calls.
        self._kept = kept if mode == "new_episodes" else ()
        # Recorded interactions by start order; None while a call runs (or was refused).
        self._slots: list[Interaction | None] = []
        self._written = False
        self._closed = False
        self._entered = False
        self._clock = time.monotonic()

    def __repr__(self) -> str:
        return f"<RecordingTransport {self._path!r} mode={self._mode!r} inner={self._inner!r}>"

    @property
    def mode(self) -> RecordMode:
        """The record mode in use (after resolving the default)."""
        return self._mode

    @property
    def recording(self) -> bool:
        """Whether calls that match no recording go to `inner` and are recorded."""
        return self._record

    async def __aenter__(self) -> Self:
        if self._inner is not None:
            await self._inner.__aenter__()
            self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._close_cassette()
        finally:
            if self._entered and self._inner is not None:
                self._entered = False
                await self._inner.__aexit__(exc_type, exc, tb)
            elif self._inner is not None:
                await self._inner.aclose()

    async def aclose(self) -> None:
        """Finish the cassette and close `inner`; new calls then raise `Cancelled`."""
        try:
            self._close_cassette()
        finally:
            if self._inner is not None:
                await self._inner.aclose()

    async def unary(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> bytes:
        """Replay a recorded unary call, or make it through `inner` and record it.

        Args:
            method: The full method path.
            request: The serialized request.
            metadata: Request metadata; passed to `inner` unchanged, written redacted.
            timeout: Passed to `inner`.

        Returns:
            The response message.

        Raises:
            GrpcError: What `inner` raised (or the recorded error when replaying);
                `ReplayMismatch` for a call there is no recording of in a replay-only mode.
            SecretInCassette: If the interaction would write a secret (after the call).
            TypeError, ValueError: For malformed arguments.
        """
        pairs = check_call(method, request, metadata, timeout)
        self._check_open()
        data = bytes(request)
        replayed = self._replayed(method, "unary", data)
        if replayed is not None:
            await anyio.lowlevel.checkpoint()
            assert self._player is not None
            return self._player.unary(replayed)
        assert self._inner is not None
        call = self._begin(method, "unary", data, pairs)
        try:
            response = await self._inner.unary(method, data, metadata=pairs, timeout=timeout)
        except GrpcError as exc:
            call.end_failed(exc)
            raise
        except anyio.get_cancelled_exc_class():
            call.end_left()
            raise
        else:
            call.respond(response)
            call.end_ok()
            return response
        finally:
            self._complete(call)

    @contextlib.asynccontextmanager
    async def server_stream(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,
    ) -> AsyncIterator[ResponseStream]:
        """Replay a recorded stream, or make it through `inner` and record it.

        Every message read is recorded as it arrives; the interaction is written when
        the stream ends, fails, or the caller leaves the block.
        Raises as `unary()` does, on entering the block or while iterating.
        """
        pairs = check_call(method, request, metadata, timeout)
        self._check_open()
        data = bytes(request)
        replayed = self._replayed(method, "server_stream", data)
        if replayed is not None:
            assert self._player is not None
            played = PlayedStream(
                self._player.start_stream(replayed), self._check_open, method, timeout
            )
            try:
                yield played
            finally:
                await played.aclose()
            return
        assert self._inner is not None
        call = self._begin(method, "server_stream", data, pairs)
        try:
            async with self._inner.server_stream(
                method, data, metadata=pairs, timeout=timeout
            ) as responses:
                try:
                    yield _RecordingStream(responses, call)
                finally:
                    # Whatever made the caller leave (break, error, cancellation), a
                    # stream not read to its end was abandoned.
                    call.end_left()
        except GrpcError as exc:
            # Raised by `inner` entering or leaving the call; the caller's own errors
            # passed through the block above, which already ended the call.
            call.end_failed(exc)
            raise
        except anyio.get_cancelled_exc_class():
            call.end_left()
            raise
        finally:
            self._complete(call)

    def _check_open(self) -> None:
        if self._closed:
            raise Cancelled("the transport is closed")

    def _replayed(self, method: str, kind: Kind, request: bytes) -> Interaction | None:
        """The recording that answers this call, None to record it, or raise a mismatch."""
        if self._player is None:
            return None
        interaction = self._player.find(method, kind, request)
        if interaction is not None or self._record:
            return interaction
        error = self._player.mismatch(method, kind, request)
        if self._missing:
            error = type(error)(
                f"{error}\n(the cassette {self._path} does not exist; record it with "
                "mode='once', or unset CI)"
            )
        raise error

    def _begin(
        self, method: str, kind: Kind, request: bytes, metadata: tuple[tuple[str, str | bytes], ...]
    ) -> _Call:
        self._slots.append(None)
        started = time.monotonic() - self._clock
        return _Call(len(self._slots) - 1, method, kind, request, metadata, started)

    def _render(self, method: str, direction: Any, data: bytes) -> tuple[str | None, Any]:
        if self._renderer is None:
            return None, None
        rendered = self._renderer.render(method, direction, data)
        return (None, None) if rendered is None else rendered

    def _complete(self, call: _Call) -> None:
        """Turn a finished call into an interaction and rewrite the cassette with it.

        Synchronous on purpose: with no await between building the file's content and
        the rename, concurrent calls cannot interleave their writes.
        """
        if not call.done:
            # A non-gRPC exception (a bug below us) ended the call: nothing to replay.
            return
        request_type, request_json = self._render(call.method, "request", call.request)
        responses = []
        for message, at in call.responses:
            type_name, value = self._render(call.method, "response", message)
            responses.append(Response(data=message, type=type_name, json=value, at=at))
        interaction = Interaction(
            method=call.method,
            kind=call.kind,
            started=call.started,
            request=Message(data=call.request, type=request_type, json=request_json),
            metadata=redact_metadata(call.metadata, self._redact),
            responses=tuple(responses),
            status=call.status,
            trailing_metadata=redact_metadata(call.trailing_metadata, self._redact),
            error=call.error,
            duration=call.duration,
        )
        if self._scrub is not None:
            scrubbed = self._scrub(interaction)
            if not isinstance(scrubbed, Interaction):
                raise TypeError(f"scrub must return an Interaction, not {type(scrubbed).__name__}")
            interaction = scrubbed
        if self._scanner:
            where = f"interaction {call.slot + 1} of this session ({call.method})"
            self._scanner.check(interaction, dumps_line(interaction_to_json(interaction)), where)
        self._slots[call.slot] = interaction
        self._write()

    def _write(self) -> None:
        if not self._written and self._scanner:
            # The recordings read back (new_episodes) are written again: they must pass
            # today's secret check too.
            for line, kept in enumerate(self._kept, start=2):
                where = f"the interaction on line {line} of {self._path} ({kept.method})"
                self._scanner.check(kept, dumps_line(interaction_to_json(kept)), where)
        recorded = [interaction for interaction in self._slots if interaction is not None]
        write_cassette(self._path, self._header, [*self._kept, *recorded])
        self._written = True

    def _close_cassette(self) -> None:
        """Mark the transport closed; a recording session with no call still leaves a file."""
        if self._closed:
            return
        self._closed = True
        # So `once` replays next time and `all` really replaces an old file.
        if self._record and not self._written and self._mode in ("once", "all"):
            self._write()


class _RecordingStream(AsyncIterator[bytes]):
    """The messages of a recorded stream: each passes through and is recorded."""

    def __init__(self, source: ResponseStream, call: _Call) -> None:
        self._source = source
        self._call = call

    async def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The inner call's initial metadata (not recorded: cassettes keep messages)."""
        try:
            return await self._source.initial_metadata()
        except GrpcError as exc:
            self._call.end_failed(exc)
            raise

    async def __anext__(self) -> bytes:
        try:
            message = await anext(self._source)
        except StopAsyncIteration:
            self._call.end_ok()
            raise
        except GrpcError as exc:
            self._call.end_failed(exc)
            raise
        self._call.respond(message)
        return message
