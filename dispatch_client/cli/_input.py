"""Human-friendly input for `dispatch-client`: pure parse functions and click `ParamType`s.

Every `parse_*` function takes the text a user typed and returns a domain value, or
raises `ValueError` with a one-line message that quotes the input and says what is
accepted. The `ParamType`s wrap them: `convert()` calls the parser and turns its
`ValueError` into `self.fail()`, which click reports as a usage error (exit code 2).
The `format_*` functions give the text form their parser reads back.

Which parser reads what:

- Times (`parse_time`): `now`; ISO 8601 through `datetime.fromisoformat` (tried first,
  because parsedatetime misreads ISO strings); `in <duration>`, `<duration> ago` and
  `<duration> from now` through `parse_duration`, as exact elapsed time; every other
  natural phrase (`tomorrow 14:00`, `next monday 9am`) through parsedatetime, whose
  result is accepted only when its spans cover the whole input.
- Durations (`parse_duration`): a small regex of our own, because no maintained library
  fits: dateutil has no duration parser, isodate reads only ISO 8601, and pytimeparse,
  the closest, reads `1:30` as minutes:seconds (here it is h:mm) and has no ISO 8601.
- Targets, ids, weekdays, frequencies: the names of the library's enums.
- Payloads: `json`, then the same check the client applies (`check_payload`).

Local time: text without a zone means the machine's local zone (honouring `TZ`). A wall
time that occurs twice (the autumn fold) means the first occurrence, still on summer
time; a wall time skipped by the spring gap moves forward by the gap's length (02:30
on a night that jumps from 02:00 to 03:00 means 03:30 summer time), which is what
`zoneinfo` does for `fold=0`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeAlias

import click
from click.shell_completion import CompletionItem

from dispatch_client import (
    BatteryType,
    ElectricalComponentCategory,
    EvChargerType,
    Frequency,
    InverterType,
    TargetCategories,
    TargetIds,
    Weekday,
    check_payload,
)

__all__ = [
    "MAX_ID_RANGE",
    "DurationType",
    "FrequencyType",
    "IdsType",
    "JsonObjectType",
    "TargetType",
    "TimeType",
    "WeekdayType",
    "format_duration",
    "format_target",
    "parse_duration",
    "parse_frequency",
    "parse_ids",
    "parse_json_object",
    "parse_target",
    "parse_time",
    "parse_weekday",
]

_UINT64_MAX: Final = 2**64 - 1

MAX_ID_RANGE: Final = 10_000
"""The most ids one range (`A-B`) may expand to; guards against typos like `1-1000000`."""

_QUOTE_LIMIT: Final = 80


def _quote(text: str) -> str:
    """Quote user input for a message, shortened if long (a payload can be kilobytes)."""
    if len(text) > _QUOTE_LIMIT:
        return repr(text[: _QUOTE_LIMIT - 3] + "...")
    return repr(text)


# -------------------------------------------------------------------------- durations

_DURATION_HELP: Final = (
    "expected e.g. 90s, 90 minutes, 1h30m, 1.5h, 2d, 1w, plain seconds (5400), "
    "h:mm[:ss] (1:30) or ISO 8601 (PT1H30M)"
)

_UNIT_SECONDS: Final[dict[str, int]] = {}
for _unit_names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("m", "min", "mins", "minute", "minutes"), 60),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("d", "day", "days"), 86400),
    (("w", "wk", "wks", "week", "weeks"), 604800),
):
    for _unit_name in _unit_names:
        _UNIT_SECONDS[_unit_name] = _seconds

_NUMBER: Final = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN_SECONDS_RE: Final = re.compile(_NUMBER)
_CLOCK_RE: Final = re.compile(r"(\d+):(\d{2})(?::(\d{2}(?:\.\d+)?))?")
_ISO_DURATION_RE: Final = re.compile(
    rf"p(?:(?P<w>{_NUMBER})w)?(?:(?P<d>{_NUMBER})d)?"
    rf"(?:t(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m)?(?:(?P<s>{_NUMBER})s)?)?"
)
_PART_RE: Final = re.compile(rf"({_NUMBER})\s*([a-z]+)")
# Between parts: spaces, a comma, or "and" ("1 hour and 30 minutes").
_SEPARATOR_RE: Final = re.compile(r"\s*,?\s*(?:and\s+)?")
_MAX_MICROSECONDS: Final = timedelta.max // timedelta(microseconds=1)


def _to_timedelta(text: str, seconds: Decimal) -> timedelta:
    """Make a timedelta from (exact, decimal) seconds, rejecting ones too long for it."""
    micros = (seconds * 1_000_000).to_integral_value()
    if micros > _MAX_MICROSECONDS:
        raise ValueError(f"duration {_quote(text)} is too long (at most {timedelta.max.days} days)")
    return timedelta(microseconds=int(micros))


def _unit_parts(text: str, lowered: str) -> Decimal:
    """Sum `<number><unit>` parts (`1h 30m`, `1 hour and 30 minutes`) in seconds."""
    total = Decimal(0)
    seen: dict[int, str] = {}
    pos = 0
    while pos < len(lowered):
        match = _PART_RE.match(lowered, pos)
        if match is None:
            raise ValueError(f"cannot read duration {_quote(text)}: {_DURATION_HELP}")
        number, unit = match.groups()
        seconds = _UNIT_SECONDS.get(unit)
        if seconds is None:
            raise ValueError(
                f"unknown unit {unit!r} in duration {_quote(text)}: use s, m, h, d or w "
                "(or sec, min, hour, day, week)"
            )
        if seconds in seen:
            raise ValueError(
                f"duration {_quote(text)} gives the same unit twice ({seen[seconds]!r} and "
                f"{unit!r}): {_DURATION_HELP}"
            )
        seen[seconds] = unit
        total += Decimal(number) * seconds
        pos = match.end()
        if pos < len(lowered):
            separator = _SEPARATOR_RE.match(lowered, pos)
            assert separator is not None  # the pattern matches the empty string too
            pos = separator.end()
            if pos == len(lowered):  # a dangling "and" or comma
                raise ValueError(f"cannot read duration {_quote(text)}: {_DURATION_HELP}")
    return total


def parse_duration(text: str) -> timedelta:
    """Read a duration.

    Accepted (case-insensitive, surrounding spaces ignored): plain seconds `5400` or
    `5400.5`; `<number><unit>` parts, optionally spaced, comma- or `and`-separated, each
    unit at most once: `90s`, `90 sec`, `1h30m`, `1h 30m`, `1.5h`, `1 hour 30 minutes`,
    `2d`, `1w` (units s/sec/second, m/min/minute, h/hr/hour, d/day, w/wk/week, plural
    too); clock form `h:mm` or `h:mm:ss` (`1:30` is 90 minutes); ISO 8601 `PT1H30M`,
    `P2DT3H`, `P1W` (no years or months: they have no fixed length).

    Args:
        text: What the user typed.

    Returns:
        The duration, exact to the microsecond (decimal arithmetic, no float rounding).

    Raises:
        ValueError: For empty, negative or unreadable input, an unknown or repeated unit,
            or a duration beyond `timedelta`'s range.
    """
    lowered = text.strip().lower()
    if not lowered:
        raise ValueError(f"empty duration {_quote(text)}: {_DURATION_HELP}")
    if lowered.startswith("-"):
        raise ValueError(f"duration {_quote(text)} is negative: durations must be >= 0")
    try:
        if _PLAIN_SECONDS_RE.fullmatch(lowered):
            return _to_timedelta(text, Decimal(lowered))
        if clock := _CLOCK_RE.fullmatch(lowered):
            hours, minutes, seconds = clock.groups()
            if int(minutes) >= 60 or (seconds is not None and Decimal(seconds) >= 60):
                raise ValueError(
                    f"duration {_quote(text)} has minutes or seconds past 59: use h:mm or h:mm:ss"
                )
            total = int(hours) * 3600 + int(minutes) * 60 + Decimal(seconds or 0)
            return _to_timedelta(text, total)
        if lowered.startswith("p"):
            iso = _ISO_DURATION_RE.fullmatch(lowered)
            if iso is None or not any(iso.groups()) or lowered.endswith("t"):
                raise ValueError(
                    f"cannot read ISO 8601 duration {_quote(text)}: expected e.g. PT1H30M, "
                    "P2DT3H or P1W (weeks, days, hours, minutes, seconds)"
                )
            parts = iso.groupdict()
            total = sum(
                (Decimal(parts[key] or 0) * _UNIT_SECONDS[key] for key in "wdhms"),
                Decimal(0),
            )
            return _to_timedelta(text, total)
        return _to_timedelta(text, _unit_parts(text, lowered))
    except InvalidOperation:  # pragma: no cover - every number matched _NUMBER first
        raise ValueError(f"cannot read duration {_quote(text)}: {_DURATION_HELP}") from None


def format_duration(duration: timedelta) -> str:
    """Write a duration compactly: `1h30m`, `45s`, `2d3h`, `0s`, `1m0.5s`.

    `parse_duration` reads the result back exactly (fractions of a second included).

    Args:
        duration: A non-negative duration.

    Returns:
        Days, hours, minutes and seconds, leaving out zero parts.

    Raises:
        ValueError: If the duration is negative.
    """
    if duration < timedelta(0):
        raise ValueError(f"cannot format negative duration {duration!r}")
    total_seconds, micros = divmod(duration // timedelta(microseconds=1), 1_000_000)
    days, rest = divmod(total_seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if micros:
        parts.append(f"{seconds}.{micros:06d}".rstrip("0") + "s")
    elif seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)


# ------------------------------------------------------------------------------ times

_TIME_HELP: Final = (
    "expected now, ISO 8601 (2026-12-24T14:00, 2026-12-24 14:00+01:00, 2026-12-24), "
    "or e.g. 'in 5 minutes', '2 hours ago', 'tomorrow 14:00', 'next monday 9am', '14:00'"
)
# Something that starts like an ISO date (2026-12, 20261224) is never handed to
# parsedatetime, which would read "2026" as a time of day.
_ISO_LIKE_RE: Final = re.compile(r"\d{4}-\d|\d{8}")
_RELATIVE_RES: Final = (
    (re.compile(r"in\s+(.+)", re.IGNORECASE), 1),
    (re.compile(r"(.+?)\s+from\s+now", re.IGNORECASE), 1),
    (re.compile(r"(.+?)\s+ago", re.IGNORECASE), -1),
)
# Words parsedatetime reads but leaves out of its nlp() spans ("2 hours from now").
_FILLER_WORDS: Final = frozenset({"and", "now"})
_NEGATIVE_NUMBER_RE: Final = re.compile(r"(?<![\w:])-\s*\d")
# parsedatetime drops a clock time it cannot read ("monday 25:00" is monday).
_CLOCK_TIME_RE: Final = re.compile(r"(\d+):(\d+)")


def _localize(text: str, naive: datetime) -> datetime:
    """Attach the local timezone (honouring `TZ`) to a naive wall time.

    A folded wall time gets its first occurrence; a wall time in a spring gap moves
    forward by the gap (see the module docstring). `astimezone()` on a naive datetime
    asks the C library, whose gap handling varies, so both folds are tried and the
    choice made here.

    Args:
        text: The user's input, for messages.
        naive: The wall time.

    Returns:
        The aware datetime, with the local fixed offset of that moment.

    Raises:
        ValueError: If the platform cannot convert the time (e.g. year 1 or 9999).
    """
    try:
        candidates = [naive.replace(fold=fold).astimezone() for fold in (0, 1)]
    except (OverflowError, OSError, ValueError) as error:
        raise ValueError(f"time {_quote(text)} is out of the local time range ({error})") from None
    exact = [c for c in candidates if c.replace(tzinfo=None) == naive]
    if exact:
        return min(exact, key=lambda c: c.astimezone(UTC))
    # No offset reproduces the wall time: it lies in a gap. Both candidates are the same
    # wall time read with the offset before or after the jump; the later instant is the
    # one shifted forward.
    return max(candidates, key=lambda c: c.astimezone(UTC))


def _parse_iso(text: str) -> datetime | None:
    """Read ISO 8601, or return None if the text does not look like it.

    Raises:
        ValueError: If the text starts like an ISO date but is not a valid one.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        if _ISO_LIKE_RE.match(text):
            raise ValueError(
                f"cannot read time {_quote(text)}: it looks like ISO 8601 but is not a valid "
                "date/time (expected e.g. 2026-12-24, 2026-12-24T14:00, 2026-12-24T14:00Z, "
                "2026-12-24 14:00:00+01:00)"
            ) from None
        return None
    if parsed.tzinfo is None:
        return _localize(text, parsed)
    return parsed


def _parse_relative(text: str, now: datetime) -> datetime | None:
    """Read `in <duration>`, `<duration> ago`, `<duration> from now`; None if not one."""
    for pattern, sign in _RELATIVE_RES:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        amount = match.group(1)
        if _PLAIN_SECONDS_RE.fullmatch(amount):
            continue  # "in 5": five what? parsedatetime decides (and rejects it)
        try:
            duration = parse_duration(amount)
        except ValueError:
            continue  # "in an hour", "in 3 days at noon": parsedatetime's to read
        try:
            return now + sign * duration
        except OverflowError:
            raise ValueError(f"time {_quote(text)} is out of range") from None
    return None


def _parse_natural(text: str, now: datetime) -> datetime:
    """Read natural language with parsedatetime, requiring it to understand all of it.

    Raises:
        ValueError: If parsedatetime finds no time, or leaves words it did not read.
    """
    # Imported here: only the CLI extra installs parsedatetime.
    import parsedatetime

    if _NEGATIVE_NUMBER_RE.search(text):
        raise ValueError(f"cannot read time {_quote(text)}: negative numbers are not accepted")
    for hour, minute in _CLOCK_TIME_RE.findall(text):
        if int(hour) > 23 or int(minute) > 59:
            raise ValueError(
                f"cannot read time {_quote(text)}: {hour}:{minute} is not a time of day"
            )
    source = now.astimezone().replace(tzinfo=None)  # parsedatetime works in local wall time
    with warnings.catch_warnings():
        # parsedatetime warns only about the flag-style API, which is not used; still,
        # its warnings must not turn into errors for a user who typed a time.
        warnings.simplefilter("ignore")
        calendar = parsedatetime.Calendar(version=parsedatetime.VERSION_CONTEXT_STYLE)
        try:
            result, context = calendar.parseDT(text, sourceTime=source)
            spans = calendar.nlp(text, sourceTime=source) or ()
        except (ValueError, OverflowError):
            raise ValueError(f"cannot read time {_quote(text)}: out of range") from None
    if not context.hasDateOrTime:
        raise ValueError(f"cannot read time {_quote(text)}: {_TIME_HELP}")
    # parsedatetime skips words it does not know ("tomorrow blah" is tomorrow): blank
    # out what its spans cover and accept only filler in what is left.
    leftover = list(text)
    for _dt, _ctx, start, end, _matched in spans:
        leftover[start:end] = " " * (end - start)
    unread = [w for w in re.split(r"[\s,]+", "".join(leftover).lower()) if w]
    unknown = [w for w in unread if w not in _FILLER_WORDS]
    if unknown:
        raise ValueError(
            f"cannot read time {_quote(text)}: did not understand {' '.join(unknown)!r}; "
            f"{_TIME_HELP}"
        )
    if not isinstance(result, datetime):  # pragma: no cover - parseDT returns a datetime
        raise ValueError(f"cannot read time {_quote(text)}: {_TIME_HELP}")
    return _localize(text, result)


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """Read a point in time.

    Accepted, tried in this order:

    - `now` (any case): `now` itself.
    - ISO 8601 (`2026-12-24T14:00`, `2026-12-24 14:00:00+01:00`, `...Z`); a bare date
      `2026-12-24` is local midnight. Without an offset the time is local.
    - `in <duration>`, `<duration> ago`, `<duration> from now`, with any duration
      `parse_duration` reads (`in 5 minutes`, `in 1h30m`, `2 hours ago`): `now` plus or
      minus the exact elapsed time, in `now`'s timezone. Across a DST change
      "in 2 hours" is two real hours, as a dispatch duration is.
    - Other natural language, read by parsedatetime relative to `now`'s local wall
      time: `tomorrow 14:00`, `next monday 9am`, `14:00` (today), `in 3 days at noon`.
      A day without a time of day means 09:00 (`tomorrow`), parsedatetime's choice.
      Rejected unless parsedatetime understood every word.

    Local time is the machine's zone (`TZ` honoured); folds and gaps as described in the
    module docstring.

    Args:
        text: What the user typed.
        now: The reference time, timezone-aware; defaults to `datetime.now(UTC)`.

    Returns:
        A timezone-aware datetime.

    Raises:
        ValueError: If the text is not a time in any accepted form, or `now` is naive.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now!r}")
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"empty time {_quote(text)}: {_TIME_HELP}")
    if stripped.lower() == "now":
        return now
    iso = _parse_iso(stripped)
    if iso is not None:
        return iso
    relative = _parse_relative(stripped, now)
    if relative is not None:
        return relative
    return _parse_natural(stripped, now)


# ---------------------------------------------------------------------------- targets

_TYPE_ENUMS: Final[
    dict[ElectricalComponentCategory, type[BatteryType | InverterType | EvChargerType]]
] = {
    ElectricalComponentCategory.BATTERY: BatteryType,
    ElectricalComponentCategory.INVERTER: InverterType,
    ElectricalComponentCategory.EV_CHARGER: EvChargerType,
}

_CategoryOrType = ElectricalComponentCategory | BatteryType | InverterType | EvChargerType


def _names(enum_type: type[Any]) -> dict[str, Any]:
    """Name -> member, aliases included (`SOLAR`), `UNSPECIFIED` left out."""
    return {name: m for name, m in enum_type.__members__.items() if name != "UNSPECIFIED"}


_CATEGORIES: Final[dict[str, ElectricalComponentCategory]] = _names(ElectricalComponentCategory)
_TYPES_BY_CATEGORY: Final[dict[str, dict[str, BatteryType | InverterType | EvChargerType]]] = {
    category.name: _names(enum_type) for category, enum_type in _TYPE_ENUMS.items()
}
# Bare type name -> the "CATEGORY:TYPE" spellings it could mean.
_BARE_TYPES: Final[dict[str, list[str]]] = {}
for _category_name, _types in _TYPES_BY_CATEGORY.items():
    for _type_name in _types:
        _BARE_TYPES.setdefault(_type_name, []).append(f"{_category_name}:{_type_name}")


_TYPES_SUMMARY: Final = ", ".join(
    f"{category} ({'/'.join(types)})" for category, types in _TYPES_BY_CATEGORY.items()
)


def _target_names() -> list[str]:
    """Every name `parse_target` accepts, for messages and completion."""
    names = list(_CATEGORIES)
    for category_name, types in _TYPES_BY_CATEGORY.items():
        names.extend(f"{category_name}:{type_name}" for type_name in types)
    names.extend(
        name
        for name, spellings in _BARE_TYPES.items()
        if len(spellings) == 1 and name not in _CATEGORIES
    )
    return names


_TARGET_HELP: Final = (
    "expected component ids (1,2,3) or category names, optionally with a type "
    "(BATTERY, INVERTER:PV, NA_ION, ...)"
)
_ID_RE: Final = re.compile(r"[+-]?\d+")


def _parse_target_name(text: str, token: str) -> _CategoryOrType:
    """Read one category/type name (already split from a list)."""
    name = token.upper().replace("-", "_")
    if ":" in name:
        category_name, _, type_name = name.partition(":")
        if category_name not in _CATEGORIES:
            raise ValueError(
                f"unknown category {category_name!r} in target {_quote(text)}; valid: "
                f"{', '.join(_CATEGORIES)}"
            )
        types = _TYPES_BY_CATEGORY.get(category_name)
        if types is None:
            raise ValueError(
                f"category {category_name} has no types (in target {_quote(text)}); types "
                f"exist for {_TYPES_SUMMARY}"
            )
        member = types.get(type_name)
        if member is None:
            raise ValueError(
                f"unknown {category_name} type {type_name!r} in target {_quote(text)}; "
                f"valid: {', '.join(types)}"
            )
        return member
    category = _CATEGORIES.get(name)
    if category is not None:
        return category  # BATTERY is also InverterType.BATTERY: the category wins
    spellings = _BARE_TYPES.get(name)
    if spellings is None:
        raise ValueError(
            f"unknown target name {token!r} in {_quote(text)}; valid names: "
            f"{', '.join(_target_names())}, or component ids like 1,2,3"
        )
    if len(spellings) > 1:
        raise ValueError(
            f"target name {token!r} in {_quote(text)} is ambiguous: write {' or '.join(spellings)}"
        )
    category_name, _, type_name = spellings[0].partition(":")
    return _TYPES_BY_CATEGORY[category_name][type_name]


def parse_target(text: str) -> TargetIds | TargetCategories:
    """Read a dispatch target: component ids, or categories with optional types.

    Items are separated by commas and/or spaces. Either all are component ids
    (`1,2,3` -> `TargetIds(1, 2, 3)`; each in 0..2**64-1, as `TargetIds` accepts) or all
    are names (case-insensitive, `-` read as `_`): a category (`BATTERY`, `METER`,
    `EV_CHARGER`), a category with a type (`BATTERY:LI_ION`, `INVERTER:SOLAR`,
    `EV_CHARGER:DC`), or a type alone when only one category has it (`NA_ION`, `PV`,
    `AC`). A name that is both a category and a type (`BATTERY`) is the category.
    `UNSPECIFIED` is not a target.

    Args:
        text: What the user typed.

    Returns:
        `TargetIds` or `TargetCategories`.

    Raises:
        ValueError: For empty input, mixed ids and names, a negative or too large id,
            an unknown or ambiguous name, or a type given to a category without types.
    """
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not tokens:
        raise ValueError(f"empty target {_quote(text)}: {_TARGET_HELP}")
    numeric = [bool(_ID_RE.fullmatch(t)) for t in tokens]
    if all(numeric):
        ids = [int(t) for t in tokens]
        for token, number in zip(tokens, ids, strict=True):
            if not 0 <= number <= _UINT64_MAX:
                raise ValueError(
                    f"component id {token} in target {_quote(text)} must be in 0..{_UINT64_MAX}"
                )
        return TargetIds(*ids)
    if any(numeric):
        raise ValueError(
            f"target {_quote(text)} mixes component ids and category names: give one kind"
        )
    return TargetCategories(*(_parse_target_name(text, t) for t in tokens))


def format_target(target: TargetIds | TargetCategories) -> str:
    """Write a target as `parse_target` reads it: `1,2,3` or `BATTERY:LI_ION,METER`.

    Ids are sorted by number, names alphabetically. An empty target gives `""`, and a
    category or type number this client does not know gives its `UNKNOWN_<n>` name;
    neither reads back.

    Args:
        target: The target.

    Returns:
        The text.
    """
    if isinstance(target, TargetIds):
        return ",".join(map(str, sorted(target)))
    return ",".join(
        sorted(
            m.category.name if m.type is None else f"{m.category.name}:{m.type.name}"
            for m in target
        )
    )


# -------------------------------------------------------------------------------- ids

_ID_ITEM_RE: Final = re.compile(r"(\d+)(?:\s*(?:-|\.\.)\s*(\d+))?")


def parse_ids(texts: Iterable[str]) -> list[int]:
    """Read dispatch ids: `delete 1-3 5 7..9 10,11`.

    Each text is a comma-separated list of `N`, `A-B` or `A..B` (inclusive ranges).
    Dispatch ids start at 1 (the server assigns them; the client's `check_id` rejects 0)
    and fit a uint64. A range may hold at most `MAX_ID_RANGE` ids.

    Args:
        texts: What the user typed, one text per argument.

    Returns:
        The ids in the order given, each once.

    Raises:
        ValueError: For empty input, a non-number, 0, a negative or too large id, a
            reversed range, or a range of more than `MAX_ID_RANGE` ids.
    """
    result: dict[int, None] = {}  # an ordered set
    for text in texts:
        items = [item.strip() for item in text.split(",")]
        if not any(items):
            raise ValueError(f"empty dispatch id {_quote(text)}: expected e.g. 5, 1-3, 7..9, 10,11")
        for item in items:
            if not item:
                continue  # "1," and "1,,2": a stray comma is harmless
            match = _ID_ITEM_RE.fullmatch(item)
            if match is None:
                hint = " (ids are positive)" if item.startswith("-") else ""
                raise ValueError(
                    f"cannot read dispatch id {_quote(item)}{hint}: expected a number, "
                    "a range A-B or A..B, or a comma list of them"
                )
            first = int(match.group(1))
            last = first if match.group(2) is None else int(match.group(2))
            for number in (first, last):
                if not 1 <= number <= _UINT64_MAX:
                    raise ValueError(
                        f"dispatch id {number} in {_quote(item)} must be in 1..{_UINT64_MAX}"
                    )
            if last < first:
                raise ValueError(f"range {_quote(item)} is reversed: write {last}-{first}")
            if last - first + 1 > MAX_ID_RANGE:
                raise ValueError(
                    f"range {_quote(item)} holds {last - first + 1} ids, more than the "
                    f"{MAX_ID_RANGE} allowed in one range (a typo?)"
                )
            result.update(dict.fromkeys(range(first, last + 1)))
    if not result:
        raise ValueError("no dispatch ids given")
    return list(result)


# ------------------------------------------------------------ weekdays and frequencies

_WEEKDAYS: Final = [d for d in Weekday if d is not Weekday.UNSPECIFIED]
_FREQUENCIES: Final = [f for f in Frequency if f is not Frequency.UNSPECIFIED]


def parse_weekday(text: str) -> Weekday:
    """Read a day of the week.

    Accepted (case-insensitive): the full name (`Monday`), any prefix of it of at least
    two letters (`mo`, `MON`, `tues`, `thur`), or the ISO 8601 number 1 (Monday) to 7
    (Sunday), which is also the `Weekday` value. 0 is rejected: cron reads it as Sunday,
    and guessing would be worse than asking.

    Args:
        text: What the user typed.

    Returns:
        The weekday.

    Raises:
        ValueError: If the text is none of these.
    """
    word = text.strip().upper()
    if word.isdigit() and len(word) == 1 and "1" <= word <= "7":
        return Weekday(int(word))
    if len(word) >= 2:
        for day in _WEEKDAYS:
            if day.name.startswith(word):
                return day
    raise ValueError(
        f"cannot read weekday {_quote(text)}: expected a name (Monday, mon, mo, ...) or "
        "an ISO number 1 (Monday) to 7 (Sunday)"
    )


def parse_frequency(text: str) -> Frequency:
    """Read a recurrence frequency by name, case-insensitive: `daily`, `MINUTELY`.

    Args:
        text: What the user typed.

    Returns:
        The frequency; `UNSPECIFIED` is not accepted (leave the option out instead).

    Raises:
        ValueError: If the text names no frequency.
    """
    name = text.strip().upper()
    for frequency in _FREQUENCIES:
        if frequency.name == name:
            return frequency
    raise ValueError(
        f"unknown frequency {_quote(text)}: expected one of "
        f"{', '.join(f.name.lower() for f in _FREQUENCIES)}"
    )


# --------------------------------------------------------------------------- payloads


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_object(text: str) -> dict[str, Any]:
    """Read a payload: a JSON object the API can carry.

    Besides strict JSON (`NaN` and `Infinity` rejected), the object must pass the
    client's own payload check: numbers exact as doubles, limited nesting.

    Args:
        text: What the user typed.

    Returns:
        The object as a dict.

    Raises:
        ValueError: If the text is not JSON, not an object, or not a valid payload.
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError(f"payload {_quote(text)} nests too deeply") from None
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(
            f"payload {_quote(text)} is not valid JSON ({error}); expected an object "
            'like {"key": "value"}'
        ) from None
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(value), "a number"
        )
        raise ValueError(
            f'payload {_quote(text)} is {kind}, not a JSON object like {{"key": "value"}}'
        )
    try:
        return check_payload(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"payload {_quote(text)} cannot be sent: {error}") from None


# ------------------------------------------------------------------------- ParamTypes

if TYPE_CHECKING:
    # click 8.4 made ParamType generic; the cli extra still allows click 8.1, where
    # subscripting it fails at run time.
    _ParamType: TypeAlias = click.ParamType[Any]
else:
    _ParamType = click.ParamType


def _complete(options: Sequence[str], incomplete: str) -> list[CompletionItem]:
    """Names starting with `incomplete` (any case), in the case the user started with."""
    lower = incomplete != incomplete.upper()
    return [
        CompletionItem(o.lower() if lower else o)
        for o in options
        if o.upper().startswith(incomplete.upper())
    ]


class _Parsed(_ParamType):
    """A parameter read by a `parse_*` function; its `ValueError` becomes a usage error.

    Values that already have the result type (defaults, values from code) pass through.
    """

    passes: ClassVar[type | tuple[type, ...]]
    """The types a converted value has."""

    def parse(self, text: str) -> Any:
        """Read the text (a `parse_*` function).

        Raises:
            ValueError: For text it cannot read.
        """
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse the value; converted values pass through."""
        if isinstance(value, self.passes):
            return value
        try:
            return self.parse(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class TimeType(_Parsed):
    """A point in time (`parse_time`); with `now_literal`, `NOW` stays the string "NOW"."""

    name = "time"
    passes = datetime

    def __init__(self, *, now_literal: bool = False) -> None:
        """Create the type.

        Args:
            now_literal: Convert `now` (any case) to the string "NOW" instead of the
                current time, for commands that send "start immediately" that way.
        """
        self.now_literal = now_literal

    def parse(self, text: str) -> datetime | Literal["NOW"]:
        """`parse_time`, or "NOW" for `now` with `now_literal`."""
        if self.now_literal and text.strip().lower() == "now":
            return "NOW"
        return parse_time(text)


class DurationType(_Parsed):
    """A duration (`parse_duration`): `90s`, `1h30m`, `1:30`, `PT1H30M`, `5400`."""

    name = "duration"
    passes = timedelta

    def parse(self, text: str) -> timedelta:
        """`parse_duration`."""
        return parse_duration(text)


class TargetType(_Parsed):
    """A dispatch target (`parse_target`): `1,2,3` or `BATTERY,INVERTER:PV`."""

    name = "target"
    passes = (TargetIds, TargetCategories)

    def parse(self, text: str) -> TargetIds | TargetCategories:
        """`parse_target`."""
        return parse_target(text)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """Complete the last name of a comma list (`BATTERY,INV` -> `BATTERY,INVERTER`)."""
        head, comma, last = incomplete.rpartition(",")
        prefix = head + comma
        return [CompletionItem(prefix + item.value) for item in _complete(_target_names(), last)]


class IdsType(_Parsed):
    """Dispatch ids from one argument (`parse_ids`): `5`, `1-3`, `7..9`, `10,11`.

    Converts to a list; a command taking `nargs=-1` flattens the lists.
    """

    name = "ids"
    passes = list

    def parse(self, text: str) -> list[int]:
        """`parse_ids` of the one text."""
        return parse_ids([text])


class WeekdayType(_Parsed):
    """A day of the week (`parse_weekday`): `monday`, `MON`, `mo`, `1`."""

    name = "weekday"
    passes = Weekday

    def parse(self, text: str) -> Weekday:
        """`parse_weekday`."""
        return parse_weekday(text)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """Complete the day names."""
        return _complete([d.name for d in _WEEKDAYS], incomplete)


class FrequencyType(_Parsed):
    """A recurrence frequency (`parse_frequency`): `daily`, `WEEKLY`, ..."""

    name = "frequency"
    passes = Frequency
    names: ClassVar[list[str]] = [f.name.lower() for f in _FREQUENCIES]

    def parse(self, text: str) -> Frequency:
        """`parse_frequency`."""
        return parse_frequency(text)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        """Show the choices in help: `[minutely|hourly|...]`."""
        return f"[{'|'.join(self.names)}]"

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """Complete the frequency names."""
        return _complete([f.name for f in _FREQUENCIES], incomplete)


class JsonObjectType(_Parsed):
    """A JSON object (`parse_json_object`), for `--payload`."""

    name = "json"
    passes = dict

    def parse(self, text: str) -> dict[str, Any]:
        """`parse_json_object`."""
        return parse_json_object(text)
