"""The cassette format: lines, round trips, atomic writes, redaction, the secret scan, diffs."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports import CassetteError, Interaction, SecretInCassette
from transports._cassette import (
    Kind,
    Message,
    RecordedError,
    RecordedStatus,
    Response,
    SecretScanner,
    dumps_line,
    interaction_from_json,
    interaction_to_json,
    new_header,
    read_cassette,
    redact_metadata,
    request_diff,
    strip_paths,
    write_cassette,
)

METHOD = "/pkg.Service/Method"

FULL = Interaction(
    method=METHOD,
    kind="server_stream",
    started=1.25,
    request=Message(data=b"\x08\x01", type="pkg.Request", json={"id": "1", "name": "ä"}),
    metadata=(("x-user", "ada"), ("x-trace-bin", b"\x00\xff"), ("key", "REDACTED")),
    responses=(
        Response(data=b"\x08\x02", type="pkg.Reply", json={"id": "2"}, at=0.5),
        Response(data=b"", at=0.75),
    ),
    status=RecordedStatus(code=14, message="going away", details=b"\x08\x0e"),
    trailing_metadata=(("retry-after", "1"), ("why-bin", b"\x01")),
    duration=1.0,
)


def test_write_then_read_gives_the_same_interactions(tmp_path: Path) -> None:
    """Every field survives a write and a read, bytes and JSON renderings included."""
    left = Interaction(
        method=METHOD,
        kind="unary",
        started=0,
        request=Message(data=b""),
        error=RecordedError(type="Cancelled", message="the caller left"),
    )
    path = tmp_path / "deep" / "dir" / "c.jsonl"
    header = new_header()
    write_cassette(path, header, [FULL, left])
    cassette = read_cassette(path)
    assert cassette.header == header
    assert cassette.interactions == (FULL, left)
    assert cassette.interactions[1].abandoned
    assert not FULL.abandoned


def test_lines_are_sorted_json_with_newlines(tmp_path: Path) -> None:
    """The file is UTF-8 JSON Lines with sorted keys, the header first, one call a line."""
    path = tmp_path / "c.jsonl"
    write_cassette(path, new_header(), [FULL])
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    assert "ä".encode() in raw
    header_line, line = raw.decode("utf-8").splitlines()
    header = json.loads(header_line)
    assert list(header) == ["created", "format", "library", "version"]
    assert header["format"] == "grpc-cassette"
    value = json.loads(line)
    assert list(value) == sorted(value)
    assert value["request"] == {
        "base64": base64.b64encode(b"\x08\x01").decode(),
        "type": "pkg.Request",
        "json": {"id": "1", "name": "ä"},
    }
    assert value["metadata"][1] == ["x-trace-bin", {"base64": "AP8="}]
    assert value["status"] == {
        "code": 14,
        "name": "UNAVAILABLE",
        "message": "going away",
        "details": "CA4=",
    }
    assert dumps_line(value) == line


def test_times_are_rounded_to_microseconds() -> None:
    """Relative times are written with at most six decimals."""
    value = interaction_to_json(
        Interaction(
            method=METHOD,
            kind="unary",
            started=1 / 3,
            request=Message(data=b""),
            responses=(Response(data=b"", at=2 / 3),),
            status=RecordedStatus(code=0),
            duration=1 / 7,
        )
    )
    assert value["started"] == 0.333333
    assert value["responses"][0]["at"] == 0.666667
    assert value["duration"] == 0.142857


def test_unknown_status_numbers_are_named_unknown() -> None:
    """A status code outside the known ones is written with name UNKNOWN."""
    assert RecordedStatus(code=42).name == "UNKNOWN"
    assert RecordedStatus(code=5).name == "NOT_FOUND"


def test_interaction_from_json_rejects_bad_values() -> None:
    """A malformed line object raises ValueError naming the key."""
    value = interaction_to_json(FULL)
    del value["duration"]
    with pytest.raises(ValueError, match="missing key duration"):
        interaction_from_json(value)
    value = interaction_to_json(FULL)
    value["responses"][1]["at"] = -1
    with pytest.raises(ValueError, match=r"responses\[1\]\.at must be a finite number >= 0"):
        interaction_from_json(value)


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails midway leaves the old file and no temporary file."""
    path = tmp_path / "c.jsonl"
    write_cassette(path, new_header(), [FULL])
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_cassette(path, new_header(), [])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.jsonl"]


def test_unserializable_json_is_refused_before_touching_the_file(tmp_path: Path) -> None:
    """A rendering that is not JSON fails before any file is written."""
    bad = Interaction(
        method=METHOD,
        kind="unary",
        started=0,
        request=Message(data=b"", type="t", json={"x": object()}),
        responses=(Response(data=b""),),
        status=RecordedStatus(code=0),
    )
    with pytest.raises(TypeError):
        write_cassette(tmp_path / "c.jsonl", new_header(), [bad])
    assert list(tmp_path.iterdir()) == []


def test_header_without_trailing_newline_is_accepted(tmp_path: Path) -> None:
    """A complete last line without its line end is read (only a cut line is an error)."""
    path = tmp_path / "c.jsonl"
    write_cassette(path, new_header(), [FULL])
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert read_cassette(path).interactions == (FULL,)


def test_error_messages_name_the_path_as_given(tmp_path: Path) -> None:
    """The file is named as the caller spelled it, followed by the line number."""
    path = tmp_path / "c.jsonl"
    path.write_text('{"format": "grpc-cassette", "version": 9}\n', encoding="utf-8")
    with pytest.raises(CassetteError, match=r"^.*c\.jsonl:1: format version 9 is newer"):
        read_cassette(str(path))


def test_redaction_is_case_insensitive() -> None:
    """Names are compared lowercase; other entries are kept in order."""
    pairs = (("key", "k"), ("x-a", "1"), ("x-secret-bin", b"\x00"))
    assert redact_metadata(pairs, frozenset({"key", "x-secret-bin"})) == (
        ("key", "REDACTED"),
        ("x-a", "1"),
        ("x-secret-bin", "REDACTED"),
    )


def _with(**fields: Any) -> Interaction:
    base = Interaction(
        method=METHOD,
        kind="unary",
        started=0,
        request=Message(data=b"body"),
        responses=(Response(data=b"reply"),),
        status=RecordedStatus(code=0),
    )
    return attrs.evolve(base, **fields)


def _scan(scanner: SecretScanner, interaction: Interaction) -> str:
    with pytest.raises(SecretInCassette) as info:
        scanner.check(
            interaction, dumps_line(interaction_to_json(interaction)), "interaction 7 (test)"
        )
    return str(info.value)


# 16 bytes: its base64 has padding, and '/' where the url-safe alphabet has '_'.
SECRET = b"hunter>>?secret!"


@pytest.mark.parametrize(
    ("value", "form"),
    [
        (SECRET, "plain text"),
        (base64.b64encode(SECRET), "as base64"),
        (base64.b64encode(SECRET).rstrip(b"="), "as base64 without padding"),
        (base64.urlsafe_b64encode(b"\xfb\xff" + SECRET), None),
        (base64.urlsafe_b64encode(SECRET), "as url-safe base64"),
        (base64.urlsafe_b64encode(SECRET).rstrip(b"="), "as url-safe base64 without padding"),
    ],
)
def test_scanner_finds_every_form_in_a_response(value: bytes, form: str | None) -> None:
    """The secret, or a base64 form of it, inside a body is found and its form named."""
    scanner = SecretScanner([SECRET.decode()])
    interaction = _with(responses=(Response(data=b"x" + value + b"y"),))
    if form is None:
        # Base64 of a longer value hides the secret at another offset: nothing to find.
        scanner.check(interaction, dumps_line(interaction_to_json(interaction)), "it")
        return
    message = _scan(scanner, interaction)
    assert f"secret #1 ({form})" in message
    assert "body of response 0" in message
    assert "interaction 7 (test)" in message
    assert SECRET.decode() not in message


def test_scanner_looks_in_every_field() -> None:
    """Metadata, trailers, status message and details, and error messages are all searched."""
    scanner = SecretScanner(["abc-123"])
    cases = {
        "metadata 'x-a'": _with(metadata=(("x-a", "abc-123"),)),
        "metadata 'x-b-bin'": _with(metadata=(("x-b-bin", b"\x00abc-123"),)),
        "trailing metadata 'x-c'": _with(trailing_metadata=(("x-c", "abc-123"),)),
        "status message": _with(status=RecordedStatus(code=3, message="bad abc-123")),
        "status details": _with(status=RecordedStatus(code=3, details=b"abc-123")),
        "error message": _with(
            status=None, responses=(), error=RecordedError(type="ConnectError", message="abc-123")
        ),
    }
    for field, interaction in cases.items():
        assert field in _scan(scanner, interaction)


def test_scanner_searches_the_written_line() -> None:
    """A secret only present in the JSON rendering is found in the line text."""
    scanner = SecretScanner([b"abc-123"])
    message = _scan(scanner, _with(request=Message(data=b"", type="t", json={"k": "abc-123"})))
    assert "written line" in message


def test_scanner_finds_non_utf8_secrets_in_bytes() -> None:
    """A binary secret is searched as bytes and as base64."""
    secret = b"\xff\x00\xfe\x01"
    scanner = SecretScanner([secret])
    assert "(raw bytes)" in _scan(scanner, _with(request=Message(data=b"a" + secret)))
    encoded = base64.b64encode(secret)
    assert "(as base64)" in _scan(scanner, _with(metadata=(("x-a", encoded.decode()),)))


def test_scanner_ignores_empty_secrets_and_rejects_other_types() -> None:
    """Empty secrets are skipped (an empty scanner is falsy); non-text secrets are a TypeError."""
    assert not SecretScanner(["", b""])
    assert SecretScanner(["x"])
    with pytest.raises(TypeError, match="str or bytes"):
        SecretScanner([42])  # type: ignore[list-item]


def test_strip_paths_walks_objects_and_lists() -> None:
    """Dotted paths remove fields at any depth, in every element of a list; input is kept."""
    value = {"a": 1, "b": {"c": 2, "d": 3}, "e": [{"f": 4, "g": 5}, {"f": 6}], "h": None}
    stripped = strip_paths(value, [["a"], ["b", "c"], ["e", "f"], ["x", "y"], ["h", "z"]])
    assert stripped == {"b": {"d": 3}, "e": [{"g": 5}, {}], "h": None}
    assert value["a"] == 1


def test_request_diff_prefers_json_and_falls_back_to_hex() -> None:
    """Rendered requests diff as indented JSON; unrendered ones as hex lines."""
    recorded = Message(data=b"\x01", type="t.Req", json={"id": 1})
    actual = Message(data=b"\x02", type="t.Req", json={"id": 2})
    diff = request_diff(METHOD, actual, [recorded], None)
    assert '-  "id": 1' in diff
    assert '+  "id": 2' in diff
    hex_diff = request_diff(METHOD, Message(data=b"\x02"), [Message(data=b"\x01")], None)
    assert "-01" in hex_diff
    assert "+02" in hex_diff
    assert request_diff(METHOD, actual, [], None) == ""
    same = request_diff(METHOD, Message(data=b""), [Message(data=b"")], None)
    assert "render the same" in same


_times = st.integers(0, 10**9).map(lambda n: n / 1_000_000)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_rendering = st.one_of(
    st.just({}),
    st.builds(lambda t, j: {"type": t, "json": j}, st.text(min_size=1), _json_values),
)
_pairs = st.lists(
    st.tuples(st.from_regex(r"[a-z0-9_.\-]{1,10}", fullmatch=True), st.text() | st.binary()),
    max_size=3,
).map(tuple)


@st.composite
def interactions(draw: st.DrawFn) -> Interaction:
    """Any valid interaction: every kind of ending, binary bodies, any JSON and metadata."""
    kinds: tuple[Kind, ...] = ("unary", "server_stream")
    kind = draw(st.sampled_from(kinds))
    ending = draw(st.sampled_from(["ok", "status", "error"]))
    count = 1 if kind == "unary" and ending == "ok" else draw(st.integers(0, 3))
    responses = tuple(
        Response(data=draw(st.binary(max_size=20)), at=draw(_times), **draw(_rendering))
        for _ in range(count)
    )
    status = None
    error = None
    if ending == "ok":
        status = RecordedStatus(code=0)
    elif ending == "status":
        status = RecordedStatus(
            code=draw(st.integers(1, 30)),
            message=draw(st.text()),
            details=draw(st.none() | st.binary(max_size=10)),
        )
    else:
        error = RecordedError(type=draw(st.sampled_from(["ConnectError", "Cancelled"])))
    return Interaction(
        method=draw(st.sampled_from([METHOD, "/a.B/C"])),
        kind=kind,
        started=draw(_times),
        request=Message(data=draw(st.binary(max_size=20)), **draw(_rendering)),
        metadata=draw(_pairs),
        responses=responses,
        status=status,
        trailing_metadata=draw(_pairs),
        error=error,
        duration=draw(_times),
    )


@settings(max_examples=80, deadline=None)
@given(interactions())
def test_any_interaction_survives_its_line(interaction: Interaction) -> None:
    """Every valid interaction reads back equal from the line written for it."""
    line = dumps_line(interaction_to_json(interaction))
    assert "\n" not in line
    assert interaction_from_json(json.loads(line)) == interaction
