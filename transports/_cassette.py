"""Cassettes: recorded gRPC calls in a versioned JSON Lines file (format v1).

A cassette is UTF-8 text, one JSON object per line, keys sorted, `\\n` line ends. Line 1
is the header, `{"created": ..., "format": "grpc-cassette", "library": ..., "version": 1}`;
every further line is one whole call (an `Interaction`), in the order the calls started.
docs/cassettes.md describes every key; this module reads and writes the format, redacts
metadata, refuses to write secrets, and renders requests for mismatch diffs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import difflib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

import attrs

from ._base import Metadata
from ._errors import (
    Cancelled,
    ConnectError,
    GrpcError,
    ProtocolError,
    RpcError,
    TransportError,
    error_for_status,
)
from ._status import StatusCode

__all__ = [
    "DEFAULT_REDACTED",
    "FORMAT",
    "REDACTED",
    "VERSION",
    "Cassette",
    "CassetteError",
    "Interaction",
    "Kind",
    "Message",
    "MessageRenderer",
    "RecordMode",
    "RecordedError",
    "RecordedStatus",
    "Response",
    "SecretInCassette",
    "SecretScanner",
    "dumps_line",
    "interaction_from_json",
    "interaction_to_json",
    "new_header",
    "read_cassette",
    "redact_metadata",
    "render_request",
    "request_diff",
    "status_of",
    "strip_paths",
    "write_cassette",
]

FORMAT = "grpc-cassette"
"""The `format` value of every cassette header."""

VERSION = 1
"""The newest format version this module reads, and the one it writes."""

REDACTED = "REDACTED"
"""What a redacted metadata value is written as."""

DEFAULT_REDACTED = frozenset({"key", "sig", "nonce", "ts", "authorization"})
"""Metadata names never written: the API key, the request signature and its inputs."""

RecordMode: TypeAlias = Literal["none", "once", "new_episodes", "all"]
"""How a `RecordingTransport` uses its cassette (vcrpy's modes; see docs/cassettes.md)."""

Kind: TypeAlias = Literal["unary", "server_stream"]
"""The kind of call an interaction records."""

_KINDS: frozenset[str] = frozenset({"unary", "server_stream"})
_METHOD = re.compile(r"/[^/\s]+/[^/\s]+")


class CassetteError(ValueError):
    """A cassette file is corrupt, truncated, foreign or too new; names the file and line."""


class SecretInCassette(ValueError):
    """The recorder refused to write: a secret it was given would have been written.

    The message names which secret (by position), in which form, and where; never the
    secret itself.
    """


class MessageRenderer(Protocol):
    """Turns the bytes of a message into its type name and canonical proto3 JSON."""

    def render(
        self, method: str, direction: Literal["request", "response"], message: bytes
    ) -> tuple[str, Any] | None:
        """Render one message of a call.

        Args:
            method: The full method path of the call.
            direction: Whether the message is the call's request or one of its responses.
            message: The serialized message.

        Returns:
            (full proto type name, canonical proto3 JSON value), or None when the method
            is unknown or the bytes do not decode.
        """
        ...


@attrs.frozen(kw_only=True)
class Message:
    """A message of a call: its wire bytes and, when a renderer knew it, its JSON.

    Attributes:
        data: The serialized message, exactly as sent or received.
        type: The full proto type name, or None when not rendered.
        json: The canonical proto3 JSON value, or None when not rendered.
    """

    data: bytes
    type: str | None = None
    json: Any = None


@attrs.frozen(kw_only=True)
class Response(Message):
    """A response message and when it arrived.

    Attributes:
        at: Seconds after the call started.
    """

    at: float = 0.0


@attrs.frozen(kw_only=True)
class RecordedStatus:
    """The gRPC status a call ended with.

    Attributes:
        code: The status code number.
        message: The status message.
        details: The raw `grpc-status-details-bin` bytes, or None.
    """

    code: int
    message: str = ""
    details: bytes | None = None

    @property
    def name(self) -> str:
        """The status code's name, e.g. `NOT_FOUND`; `UNKNOWN` for an unknown number."""
        try:
            return StatusCode(self.code).name
        except ValueError:
            return StatusCode.UNKNOWN.name


@attrs.frozen(kw_only=True)
class RecordedError:
    """A failure that carried no status: a transport error, or the caller leaving.

    Attributes:
        type: The error class name: `ConnectError`, `ProtocolError`, `TransportError`,
            or `Cancelled` for a call its caller abandoned.
        message: The error message.
    """

    type: str
    message: str = ""


@attrs.frozen(kw_only=True)
class Interaction:
    """One recorded call, from start to end.

    Attributes:
        method: The full method path.
        kind: `unary` or `server_stream`.
        started: Seconds after the recording session began.
        request: The request message.
        metadata: The request metadata after redaction; values of `-bin` names are bytes.
        responses: The response messages received, in order.
        status: The final status, or None when the call got none (then `error` is set).
        trailing_metadata: The trailing metadata of a failed call, after redaction.
        error: What ended a call without a status, or None.
        duration: Seconds from start to end.
    """

    method: str
    kind: Kind
    started: float
    request: Message
    metadata: tuple[tuple[str, str | bytes], ...] = ()
    responses: tuple[Response, ...] = ()
    status: RecordedStatus | None = None
    trailing_metadata: tuple[tuple[str, str | bytes], ...] = ()
    error: RecordedError | None = None
    duration: float = 0.0

    @property
    def abandoned(self) -> bool:
        """Whether the caller left the call before it ended (no status, error `Cancelled`)."""
        return self.status is None and self.error is not None and self.error.type == "Cancelled"

    def to_error(self) -> GrpcError | None:
        """Return the error the recorded call raised, or None when it succeeded.

        Returns:
            An `RpcError` subclass for a non-OK status, the recorded `TransportError`
            subclass for a call without status, `Cancelled` for an abandoned call.
        """
        if self.status is not None:
            if self.status.code == StatusCode.OK:
                return None
            return error_for_status(
                self.status.code,
                self.status.message,
                self.status.details,
                self.trailing_metadata,
            )
        error = self.error or RecordedError(type="TransportError")
        if error.type == "Cancelled":
            return Cancelled(f"the recorded call of {self.method} was left by its caller")
        by_name: dict[str, type[TransportError]] = {
            "ConnectError": ConnectError,
            "ProtocolError": ProtocolError,
        }
        return by_name.get(error.type, TransportError)(error.message)


@attrs.frozen(kw_only=True)
class Cassette:
    """A whole cassette file: its header and interactions.

    Attributes:
        header: The header line as a JSON object.
        interactions: The interactions, in file order.
    """

    header: Mapping[str, Any]
    interactions: tuple[Interaction, ...]


def new_header() -> dict[str, Any]:
    """Return the header of a cassette written now by this library."""
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"format": FORMAT, "version": VERSION, "created": created, "library": _library()}


def _library() -> str:
    """Name and version of the distribution that wrote the cassette."""
    from importlib import metadata

    try:
        return f"dispatch-client {metadata.version('dispatch-client')}"
    except metadata.PackageNotFoundError:
        return "dispatch-client (unknown version)"


# --------------------------------------------------------------------------- writing


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _time(seconds: float) -> float:
    # Microseconds are plenty for pacing and keep diffs of re-recorded files short.
    return round(seconds, 6)


def _metadata_to_json(pairs: Metadata) -> list[list[Any]]:
    return [
        [name, {"base64": _b64(value)} if isinstance(value, bytes) else value]
        for name, value in pairs
    ]


def _message_to_json(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"base64": _b64(message.data), "type": message.type, "json": message.json}
    if isinstance(message, Response):
        out["at"] = _time(message.at)
    return out


def interaction_to_json(interaction: Interaction) -> dict[str, Any]:
    """Return the JSON object of one interaction line.

    Args:
        interaction: The interaction.

    Returns:
        A JSON-serializable dict with every key of format v1.
    """
    status = interaction.status
    error = interaction.error
    return {
        "method": interaction.method,
        "kind": interaction.kind,
        "started": _time(interaction.started),
        "request": _message_to_json(interaction.request),
        "metadata": _metadata_to_json(interaction.metadata),
        "responses": [_message_to_json(response) for response in interaction.responses],
        "status": None
        if status is None
        else {
            "code": status.code,
            "name": status.name,
            "message": status.message,
            "details": None if status.details is None else _b64(status.details),
        },
        "trailing_metadata": _metadata_to_json(interaction.trailing_metadata),
        "error": None if error is None else {"type": error.type, "message": error.message},
        "duration": _time(interaction.duration),
    }


def dumps_line(value: Mapping[str, Any]) -> str:
    """Serialize one cassette line (without its line end): sorted keys, UTF-8 text."""
    # ensure_ascii=False keeps non-ASCII text readable in review; the file is UTF-8.
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)


def write_cassette(
    path: str | os.PathLike[str],
    header: Mapping[str, Any],
    interactions: Iterable[Interaction],
) -> None:
    """Write a whole cassette atomically: a temporary file in the same directory, then a rename.

    A reader, or a crash at any moment, sees either the old file or the new one,
    never a part. Missing parent directories are created.

    Args:
        path: The cassette file.
        header: The header object (line 1).
        interactions: The interactions, in start order.

    Raises:
        OSError: If the file cannot be written; the old file, if any, is unchanged.
    """
    text = "".join(
        dumps_line(line) + "\n"
        for line in [header, *(interaction_to_json(i) for i in interactions)]
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            # Without fsync a crash after the rename could leave an empty file behind it.
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


# --------------------------------------------------------------------------- reading


class _LineError(Exception):
    """A problem in one line; `read_cassette` adds the file and line number."""


def _require(obj: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise _LineError(f"missing key {where}{key}")
    value = obj[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise _LineError(f"{where}{key} must be {_type_names(types)}, not {_json_type(value)}")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _type_names(types: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }
    kinds = _as_tuple(types)
    if float in kinds:
        # JSON has one number type; an integer is a number.
        kinds = tuple(t for t in kinds if t is not int)
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in kinds))


def _json_type(value: object) -> str:
    return _type_names(type(value)) if not isinstance(value, bool) else "a boolean"


def _number(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = float(_require(obj, key, (int, float), where))
    if not math.isfinite(value) or value < 0:
        raise _LineError(f"{where}{key} must be a finite number >= 0, got {value!r}")
    return value


def _decode_b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _LineError(f"{where} is not valid base64 ({exc})") from None


def _bytes_field(obj: Mapping[str, Any], where: str) -> bytes:
    return _decode_b64(_require(obj, "base64", str, where), f"{where}base64")


def _message_from_json(value: object, where: str) -> Message:
    if not isinstance(value, dict):
        raise _LineError(f"{where.rstrip('.')} must be an object, not {_json_type(value)}")
    data = _bytes_field(value, where)
    type_name = value.get("type")
    if type_name is not None and not isinstance(type_name, str):
        raise _LineError(f"{where}type must be a string or null, not {_json_type(type_name)}")
    return Message(data=data, type=type_name, json=value.get("json"))


def _response_from_json(value: object, where: str) -> Response:
    message = _message_from_json(value, where)
    assert isinstance(value, dict)
    return Response(
        data=message.data, type=message.type, json=message.json, at=_number(value, "at", where)
    )


def _metadata_from_json(value: object, where: str) -> tuple[tuple[str, str | bytes], ...]:
    if not isinstance(value, list):
        raise _LineError(f"{where} must be a list, not {_json_type(value)}")
    pairs: list[tuple[str, str | bytes]] = []
    for index, item in enumerate(value):
        if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
            raise _LineError(f"{where}[{index}] must be a [name, value] pair")
        name, raw = item
        if isinstance(raw, str):
            pairs.append((name, raw))
        elif isinstance(raw, dict):
            pairs.append((name, _bytes_field(raw, f"{where}[{index}].")))
        else:
            raise _LineError(
                f'{where}[{index}] value must be a string or {{"base64": ...}}, '
                f"not {_json_type(raw)}"
            )
    return tuple(pairs)


def interaction_from_json(line: Mapping[str, Any]) -> Interaction:
    """Build an interaction from the JSON object of its line; unknown keys are ignored.

    Args:
        line: The parsed line.

    Returns:
        The interaction.

    Raises:
        ValueError: Naming the key that is missing or malformed.
    """
    try:
        return _interaction_from_json(line)
    except _LineError as exc:
        raise ValueError(str(exc)) from None


def _interaction_from_json(line: Mapping[str, Any]) -> Interaction:
    method = _require(line, "method", str, "")
    if not _METHOD.fullmatch(method):
        raise _LineError(f"method must be a path like '/package.Service/Method', got {method!r}")
    kind = _require(line, "kind", str, "")
    if kind not in _KINDS:
        raise _LineError(f"kind must be 'unary' or 'server_stream', got {kind!r}")
    _require(line, "request", dict, "")
    request = _message_from_json(line["request"], "request.")
    responses_json = _require(line, "responses", list, "")
    responses = tuple(
        _response_from_json(item, f"responses[{index}].")
        for index, item in enumerate(responses_json)
    )
    status: RecordedStatus | None = None
    status_json = _require(line, "status", (dict, type(None)), "")
    if status_json is not None:
        code = _require(status_json, "code", int, "status.")
        message = _require(status_json, "message", str, "status.")
        details_json = _require(status_json, "details", (str, type(None)), "status.")
        status = RecordedStatus(
            code=code,
            message=message,
            details=None if details_json is None else _decode_b64(details_json, "status.details"),
        )
    error: RecordedError | None = None
    error_json = _require(line, "error", (dict, type(None)), "")
    if error_json is not None:
        error = RecordedError(
            type=_require(error_json, "type", str, "error."),
            message=_require(error_json, "message", str, "error."),
        )
    if status is None and error is None:
        raise _LineError("status and error are both null; one must say how the call ended")
    if kind == "unary" and status is not None and status.code == 0 and len(responses) != 1:
        raise _LineError(f"a unary call with status OK needs 1 response, has {len(responses)}")
    _require(line, "metadata", list, "")
    _require(line, "trailing_metadata", list, "")
    return Interaction(
        method=method,
        kind=kind,
        started=_number(line, "started", ""),
        request=request,
        metadata=_metadata_from_json(line["metadata"], "metadata"),
        responses=responses,
        status=status,
        trailing_metadata=_metadata_from_json(line["trailing_metadata"], "trailing_metadata"),
        error=error,
        duration=_number(line, "duration", ""),
    )


def _check_header(header: object) -> Mapping[str, Any]:
    if not isinstance(header, dict):
        raise _LineError(f"not a {FORMAT} file: the header is not a JSON object")
    if header.get("format") != FORMAT:
        raise _LineError(f"not a {FORMAT} file: format is {header.get('format')!r}")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _LineError(f"bad version {version!r}: must be an integer >= 1")
    if version > VERSION:
        raise _LineError(
            f"format version {version} is newer than this library reads (up to {VERSION}); "
            "upgrade dispatch-client"
        )
    return header


def read_cassette(path: str | os.PathLike[str]) -> Cassette:
    """Read and validate a whole cassette.

    Args:
        path: The cassette file.

    Returns:
        Its header and interactions.

    Raises:
        CassetteError: For a file that is not UTF-8, empty, foreign, of a newer version,
            or has a corrupt or truncated line; the message starts with `file:line:`.
        OSError: If the file cannot be read (FileNotFoundError when it does not exist).
    """
    name = os.fspath(path)
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_number = data[: exc.start].count(b"\n") + 1
        raise CassetteError(f"{name}:{line_number}: not UTF-8 text") from None
    if not text:
        raise CassetteError(f"{name}:1: empty file; a cassette starts with a header line")
    lines = text.split("\n")
    complete = text.endswith("\n")
    if complete:
        lines.pop()
    header: Mapping[str, Any] = {}
    interactions: list[Interaction] = []
    for number, line in enumerate(lines, start=1):
        last_unterminated = not complete and number == len(lines)
        try:
            if not line.strip():
                raise _LineError("empty line; every line must be one JSON object")
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                if last_unterminated:
                    raise _LineError("truncated line (the file ends mid-line)") from None
                raise _LineError(f"not JSON: {exc.msg} at column {exc.colno}") from None
            if number == 1:
                header = _check_header(value)
                continue
            if not isinstance(value, dict):
                raise _LineError(f"an interaction must be a JSON object, not {_json_type(value)}")
            interactions.append(_interaction_from_json(value))
        except _LineError as exc:
            raise CassetteError(f"{name}:{number}: {exc}") from None
    return Cassette(header=header, interactions=tuple(interactions))


# --------------------------------------------------------------------------- redaction


def redact_metadata(pairs: Metadata, names: frozenset[str]) -> tuple[tuple[str, str | bytes], ...]:
    """Replace the values of the named metadata entries by `REDACTED`.

    Args:
        pairs: The metadata.
        names: Lowercase names to redact; matching is case-insensitive.

    Returns:
        The metadata with those values replaced.
    """
    return tuple((name, REDACTED if name.lower() in names else value) for name, value in pairs)


class SecretScanner:
    """Finds secrets, in their plain and base64 forms, in what a recorder would write."""

    def __init__(self, secrets: Iterable[str | bytes]) -> None:
        """Prepare the forms of each secret.

        Args:
            secrets: The secrets; empty ones are ignored (they reveal nothing).

        Raises:
            TypeError: For a secret that is neither str nor bytes.
        """
        # Each form is (description, bytes form, text form): bytes forms are searched in
        # the decoded bodies and metadata values, text forms in the line as written.
        self._forms: list[tuple[str, bytes, str | None]] = []
        for index, secret in enumerate(secrets, start=1):
            if isinstance(secret, str):
                raw = secret.encode("utf-8")
            elif isinstance(secret, bytes | bytearray):
                raw = bytes(secret)
            else:
                raise TypeError(f"secrets must be str or bytes, not {type(secret).__name__}")
            if not raw:
                continue
            label = f"secret #{index}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                self._forms.append((f"{label} (raw bytes)", raw, None))
            else:
                self._forms.append((f"{label} (plain text)", raw, text))
                # A secret with quotes, backslashes or control characters appears escaped.
                escaped = json.dumps(text, ensure_ascii=False)[1:-1]
                if escaped != text:
                    self._forms.append((f"{label} (JSON-escaped)", raw, escaped))
            for encoding, encode in (
                ("base64", base64.b64encode),
                ("url-safe base64", base64.urlsafe_b64encode),
            ):
                padded = encode(raw)
                bare = padded.rstrip(b"=")
                self._forms.append((f"{label} (as {encoding})", padded, padded.decode("ascii")))
                if bare != padded:
                    self._forms.append(
                        (f"{label} (as {encoding} without padding)", bare, bare.decode("ascii"))
                    )

    def __bool__(self) -> bool:
        return bool(self._forms)

    def check(self, interaction: Interaction, line: str, where: str) -> None:
        """Raise if any secret appears in the interaction or its line.

        Args:
            interaction: The interaction about to be written.
            line: Its line, as it would be written.
            where: Which interaction this is, for the message, e.g.
                "interaction 3 of this session (/a.B/C)".

        Raises:
            SecretInCassette: Naming the secret's position and form and the field.
        """
        fields = list(_fields(interaction))
        for description, raw, text in self._forms:
            for field, value in fields:
                if raw in value:
                    raise SecretInCassette(
                        f"{description} appears in the {field} of {where}; "
                        "nothing was written (redact the metadata or scrub the body)"
                    )
            if text is not None and text in line:
                raise SecretInCassette(
                    f"{description} appears in the written line of {where}; "
                    "nothing was written (redact the metadata or scrub the body)"
                )


def _fields(interaction: Interaction) -> Iterable[tuple[str, bytes]]:
    """Every decoded value of an interaction, with a name for messages."""

    def encoded(value: str | bytes) -> bytes:
        return value if isinstance(value, bytes) else value.encode("utf-8")

    yield "request body", interaction.request.data
    for index, response in enumerate(interaction.responses):
        yield f"body of response {index}", response.data
    for name, value in interaction.metadata:
        yield f"metadata {name!r}", encoded(value)
    for name, value in interaction.trailing_metadata:
        yield f"trailing metadata {name!r}", encoded(value)
    if interaction.status is not None:
        yield "status message", encoded(interaction.status.message)
        if interaction.status.details is not None:
            yield "status details", interaction.status.details
    if interaction.error is not None:
        yield "error message", encoded(interaction.error.message)


# --------------------------------------------------------------------------- matching


def strip_paths(value: Any, paths: Sequence[Sequence[str]]) -> Any:
    """Return a copy of a JSON value without the given dotted field paths.

    A path walks objects by key; where it meets a list it applies to every element.

    Args:
        value: The JSON value.
        paths: Field paths, each split on dots.

    Returns:
        The value with those fields removed.
    """
    result = json.loads(json.dumps(value))
    for path in paths:
        _strip(result, path)
    return result


def _strip(value: Any, path: Sequence[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _strip(item, path)
    elif isinstance(value, dict) and path:
        if len(path) == 1:
            value.pop(path[0], None)
        elif path[0] in value:
            _strip(value[path[0]], path[1:])


def render_request(
    method: str, message: Message, renderer: MessageRenderer | None
) -> tuple[str, Any] | None:
    """The (type, JSON) of a request: as recorded, else from the renderer, else None."""
    if message.type is not None and message.json is not None:
        return message.type, message.json
    if renderer is None:
        return None
    return renderer.render(method, "request", message.data)


def _readable(data: bytes, rendered: tuple[str, Any] | None) -> list[str]:
    """Lines for a diff: indented JSON when rendered, else hex, 16 bytes a line."""
    if rendered is not None:
        return [
            f"// {rendered[0]}",
            *json.dumps(rendered[1], indent=2, sort_keys=True).splitlines(),
        ]
    if not data:
        return ["(empty message)"]
    return [data[i : i + 16].hex(" ") for i in range(0, len(data), 16)]


def request_diff(
    method: str,
    actual: Message,
    recorded: Sequence[Message],
    renderer: MessageRenderer | None,
) -> str:
    """A unified diff between a call's request and the closest recorded request.

    Args:
        method: The call's method path.
        actual: The call's request.
        recorded: Recorded requests of the same method.
        renderer: Renders requests as JSON; without it (or if it cannot), hex is compared.

    Returns:
        The diff text, `--- recorded` against `+++ this call`; empty if `recorded` is.
    """
    if not recorded:
        return ""
    actual_rendered = render_request(method, actual, renderer)
    candidates = [(m, render_request(method, m, renderer)) for m in recorded]
    # Compare like with like: JSON only when both sides have it.
    use_json = actual_rendered is not None and all(r is not None for _, r in candidates)
    actual_lines = _readable(actual.data, actual_rendered if use_json else None)
    best_lines: list[str] = []
    best_ratio = -1.0
    for message, rendered in candidates:
        lines = _readable(message.data, rendered if use_json else None)
        ratio = difflib.SequenceMatcher(None, lines, actual_lines).ratio()
        if ratio > best_ratio:
            best_lines, best_ratio = lines, ratio
    diff = difflib.unified_diff(
        best_lines, actual_lines, "recorded (closest)", "this call", lineterm="", n=3
    )
    return "\n".join(diff) or "(the requests render the same; they differ in ignored fields)"


def status_of(error: RpcError) -> RecordedStatus:
    """The recorded form of an `RpcError`'s status."""
    return RecordedStatus(code=int(error.status), message=error.message, details=error.details)
