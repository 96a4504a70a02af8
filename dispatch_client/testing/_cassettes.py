"""The Dispatch API's side of cassettes: rendering its messages, and where cassettes live.

`transports` records and replays calls as bytes and knows nothing about dispatches;
`DispatchRenderer` gives it the proto3 JSON of the Dispatch API's messages, so a
cassette shows readable messages next to the bytes and matchers can ignore single fields.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Final, Literal, get_args

from dispatch_client._codec import _bridge as bridge

__all__ = [
    "RECORD_MODES",
    "DispatchRenderer",
    "RecordModeName",
    "cassette_path",
    "default_record_mode",
]

RecordModeName = Literal["none", "once", "new_episodes", "all"]
"""The record modes of `transports.RecordingTransport` (vcrpy's)."""

RECORD_MODES: Final[tuple[RecordModeName, ...]] = get_args(RecordModeName)
"""Every record mode, in the order the documentation lists them."""

# Characters a test id may hold that do not belong in a file name (parametrize ids
# carry brackets, slashes, spaces ...); they become '-'.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]]+")


class DispatchRenderer:
    """A `transports.MessageRenderer` for the Dispatch API's six methods.

    Renders a request or response as `(full proto type name, proto3 JSON)`: the JSON
    mapping's lowerCamelCase names, 64-bit integers as strings, RFC 3339 timestamps,
    enums by name and payloads as plain JSON. Messages of other methods, and bytes that
    do not parse, are not rendered (None): the cassette then keeps only their bytes.
    """

    def render(
        self, method: str, direction: Literal["request", "response"], message: bytes
    ) -> tuple[str, Any] | None:
        """Render one message; see the class docstring.

        Args:
            method: The call's full method path.
            direction: `"request"` or `"response"`.
            message: The serialized message.

        Returns:
            `(type name, JSON value)`, or None for an unknown method or bad bytes.
        """
        return bridge.render_message(method, direction, message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def default_record_mode() -> RecordModeName:
    """The record mode when none is chosen: "none" on CI (env `CI` set), else "once".

    On CI a missing recording must fail the test instead of reaching for a server.
    """
    return "none" if os.environ.get("CI") else "once"


def cassette_path(test_path: Path, test_name: str, name: str | None = None) -> Path:
    """Where a test's cassette lives: `<dir>/cassettes/<file stem>/<name>.jsonl`.

    Args:
        test_path: The test module's file.
        test_name: The test's name (with its parameter id, if any).
        name: A name chosen by the test instead of `test_name`: a relative path
            (relative to `<dir>/cassettes/<file stem>/`; `.jsonl` is added if it has no
            suffix) or an absolute one, used as is.

    Returns:
        The cassette's path; the file and its directory may not exist yet.

    Raises:
        ValueError: If `name` is empty or climbs out of the cassette directory with `..`.
    """
    base = test_path.parent / "cassettes" / test_path.stem
    if name is None:
        safe = _UNSAFE.sub("-", test_name).strip("-") or "cassette"
        return base / f"{safe}.jsonl"
    if not name:
        raise ValueError("a cassette name must not be empty")
    chosen = Path(name)
    if chosen.is_absolute():
        return chosen
    if ".." in chosen.parts:
        raise ValueError(f"a relative cassette name must not contain '..': {name!r}")
    if not chosen.suffix:
        chosen = chosen.with_suffix(".jsonl")
    return base / chosen
