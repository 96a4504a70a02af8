"""Tests for the CLI's input parsers and their click ParamTypes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from dispatch_client._types import (
    BatteryType,
    ElectricalComponentCategory,
    EvChargerType,
    Frequency,
    InverterType,
    TargetCategories,
    TargetIds,
    Weekday,
)
from dispatch_client.cli._input import (
    MAX_ID_RANGE,
    DurationType,
    FrequencyType,
    IdsType,
    JsonObjectType,
    TargetType,
    TimeType,
    WeekdayType,
    format_duration,
    format_target,
    parse_duration,
    parse_frequency,
    parse_ids,
    parse_json_object,
    parse_target,
    parse_time,
    parse_weekday,
)

# A Tuesday; 10:00 in Berlin (CET, +01:00).
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=1))
CEST = timezone(timedelta(hours=2))


def _set_tz(monkeypatch: pytest.MonkeyPatch, name: str) -> Iterator[None]:
    monkeypatch.setenv("TZ", name)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make Europe/Berlin the local zone for the test, restoring the old one after."""
    yield from _set_tz(monkeypatch, "Europe/Berlin")


@pytest.fixture
def utc_local(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make UTC the local zone for the test, restoring the old one after."""
    yield from _set_tz(monkeypatch, "UTC")


def _fails(function: Any, text: str, *fragments: str) -> str:
    """Call a parser expecting a ValueError that quotes the input; return the message."""
    with pytest.raises(ValueError) as excinfo:  # noqa: PT011 - the message is checked below
        function(text)
    message = str(excinfo.value)
    # Long input is quoted shortened, with an ellipsis.
    assert (repr(text) if len(text) <= 80 else repr(text[:77] + "...")) in message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


# ------------------------------------------------------------------------------ times


@pytest.mark.parametrize("text", ["now", "NOW", "Now", "  now "])
def test_now_is_the_reference_time(text: str) -> None:
    """`now` in any case is the given reference time itself."""
    assert parse_time(text, now=NOW) is NOW


def test_default_now_is_the_current_utc_time() -> None:
    """Without `now`, relative times are relative to the current time."""
    before = datetime.now(UTC)
    result = parse_time("in 1 hour")
    after = datetime.now(UTC)
    assert before + timedelta(hours=1) <= result <= after + timedelta(hours=1)


def test_naive_now_is_rejected() -> None:
    """A naive reference time is a programming error."""
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_time("in 5 minutes", now=datetime(2026, 1, 1))


@pytest.mark.usefixtures("berlin")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-24T14:00", datetime(2026, 12, 24, 14, 0, tzinfo=CET)),
        ("2026-12-24 14:00:00+01:00", datetime(2026, 12, 24, 14, 0, tzinfo=CET)),
        ("2026-12-24T14:00Z", datetime(2026, 12, 24, 14, 0, tzinfo=UTC)),
        (
            "2026-12-24T14:00:00.5-05:00",
            datetime(2026, 12, 24, 14, 0, 0, 500000, tzinfo=timezone(timedelta(hours=-5))),
        ),
        ("2026-12-24", datetime(2026, 12, 24, 0, 0, tzinfo=CET)),
        ("2026-07-01T12:00", datetime(2026, 7, 1, 12, 0, tzinfo=CEST)),
    ],
)
def test_iso_8601(text: str, expected: datetime) -> None:
    """ISO 8601 is read exactly; without an offset it is local time (a bare date is midnight)."""
    result = parse_time(text, now=NOW)
    assert (result, result.utcoffset()) == (expected, expected.utcoffset())


def test_iso_keeps_the_given_offset() -> None:
    """An explicit offset is kept, not converted to local time."""
    result = parse_time("2026-12-24 14:00:00+05:30", now=NOW)
    assert result.utcoffset() == timedelta(hours=5, minutes=30)
    assert (result.hour, result.minute) == (14, 0)


@pytest.mark.usefixtures("berlin")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 5 minutes", NOW + timedelta(minutes=5)),
        ("in 2 hours", NOW + timedelta(hours=2)),
        ("IN 1h30m", NOW + timedelta(hours=1, minutes=30)),
        ("5 minutes ago", NOW - timedelta(minutes=5)),
        ("2 hours from now", NOW + timedelta(hours=2)),
        ("in an hour", NOW + timedelta(hours=1)),
        ("tomorrow 14:00", datetime(2026, 12, 2, 14, 0, tzinfo=CET)),
        ("tomorrow at 2pm", datetime(2026, 12, 2, 14, 0, tzinfo=CET)),
        ("next monday 9am", datetime(2026, 12, 7, 9, 0, tzinfo=CET)),
        ("14:00", datetime(2026, 12, 1, 14, 0, tzinfo=CET)),
        ("in 3 days at noon", datetime(2026, 12, 4, 12, 0, tzinfo=CET)),
        ("tomorrow", datetime(2026, 12, 2, 9, 0, tzinfo=CET)),
    ],
)
def test_natural_language(text: str, expected: datetime) -> None:
    """Natural phrases are relative to `now`, with wall times in the local zone."""
    result = parse_time(text, now=NOW)
    assert result == expected
    assert result.tzinfo is not None


@pytest.mark.usefixtures("berlin")
def test_wall_times_carry_the_local_offset() -> None:
    """A natural wall time gets the local offset of that day, not of `now`."""
    result = parse_time("tomorrow 14:00", now=datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    # 2026-03-29 is the spring-forward day in Berlin: CEST from 03:00.
    assert result == datetime(2026, 3, 29, 14, 0, tzinfo=CEST)
    assert result.utcoffset() == timedelta(hours=2)


@pytest.mark.usefixtures("berlin")
def test_spring_gap_moves_forward() -> None:
    """A wall time skipped by the spring gap moves forward by the gap's length."""
    assert parse_time("2026-03-29T02:30", now=NOW) == datetime(2026, 3, 29, 3, 30, tzinfo=CEST)
    assert parse_time("2026-03-29T01:59", now=NOW) == datetime(2026, 3, 29, 1, 59, tzinfo=CET)
    assert parse_time("2026-03-29T03:00", now=NOW) == datetime(2026, 3, 29, 3, 0, tzinfo=CEST)


@pytest.mark.usefixtures("berlin")
def test_autumn_fold_means_the_first_occurrence() -> None:
    """A wall time that occurs twice means the first one, still on summer time."""
    result = parse_time("2026-10-25T02:30", now=NOW)
    assert result == datetime(2026, 10, 25, 2, 30, tzinfo=CEST)
    assert result.utcoffset() == timedelta(hours=2)


@pytest.mark.usefixtures("berlin")
def test_relative_durations_are_elapsed_time_across_dst() -> None:
    """`in 2 hours` across the spring jump is two real hours, not two wall-clock hours."""
    before_jump = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET
    result = parse_time("in 2 hours", now=before_jump)
    assert result - before_jump == timedelta(hours=2)
    assert result.astimezone().replace(tzinfo=None) == datetime(2026, 3, 29, 4, 30)


@pytest.mark.usefixtures("utc_local")
def test_local_zone_follows_tz() -> None:
    """The same text means another instant when `TZ` names another zone."""
    assert parse_time("2026-12-24T14:00", now=NOW) == datetime(2026, 12, 24, 14, 0, tzinfo=UTC)


@pytest.mark.usefixtures("berlin")
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("garbage", "expected now"),
        ("tomorrow blah", "'blah'"),
        ("blah tomorrow", "'blah'"),
        ("5 minutes ago xyz", "'xyz'"),
        ("in 5 foos", "expected now"),
        ("in 5", "expected now"),
        ("eod", "'eod'"),
        ("2026-13-01", "ISO 8601"),
        ("2026-12-24T25:00", "ISO 8601"),
        ("14:60", "not a time of day"),
        ("monday 25:00", "not a time of day"),
        ("in -5 minutes", "negative"),
        ("in 99999999 days", "out of range"),
        ("9999-12-31T23:59:59", "out of the local time range"),
    ],
)
def test_unreadable_times_are_rejected(text: str, fragment: str) -> None:
    """Text that is not wholly a time is a ValueError quoting it."""
    _fails(lambda t: parse_time(t, now=NOW), text, fragment)


# -------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("90 sec", timedelta(seconds=90)),
        ("90 SECONDS", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1H30M", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        (".5h", timedelta(minutes=30)),
        ("90 minutes", timedelta(minutes=90)),
        ("1 hour 30 minutes", timedelta(hours=1, minutes=30)),
        ("1 hour, 30 minutes", timedelta(hours=1, minutes=30)),
        ("1 hour and 30 minutes", timedelta(hours=1, minutes=30)),
        ("30m 1h", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1w 2d 3h 4m 5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("5400", timedelta(seconds=5400)),
        ("5400.5", timedelta(seconds=5400, milliseconds=500)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("01:30:00", timedelta(hours=1, minutes=30)),
        ("1:30", timedelta(hours=1, minutes=30)),
        ("100:00", timedelta(hours=100)),
        ("0:00:01.25", timedelta(seconds=1, milliseconds=250)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("pt90s", timedelta(seconds=90)),
        ("P2DT3H", timedelta(days=2, hours=3)),
        ("P1W", timedelta(weeks=1)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("  45s  ", timedelta(seconds=45)),
        ("0.000001s", timedelta(microseconds=1)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    """Every accepted duration notation gives the exact duration."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-5", "negative"),
        ("-1h", "negative"),
        ("1h 2h", "same unit twice"),
        ("1h1hour", "same unit twice"),
        ("5 parsecs", "unknown unit 'parsecs'"),
        ("1h30", "expected e.g."),
        ("1h and", "expected e.g."),
        ("abc", "expected e.g."),
        ("1:60", "past 59"),
        ("1:00:60", "past 59"),
        ("PT", "ISO 8601"),
        ("P", "ISO 8601"),
        ("P1Y", "ISO 8601"),
        ("P1M", "ISO 8601"),
        ("1e3", "unknown unit 'e'"),
        ("99999999999999999999d", "too long"),
        ("1000000000d", "too long"),
    ],
)
def test_bad_durations_are_rejected(text: str, fragment: str) -> None:
    """Empty, negative, unknown, repeated or overflowing durations are ValueErrors."""
    _fails(parse_duration, text, fragment)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(days=2, hours=3), "2d3h"),
        (timedelta(0), "0s"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(minutes=1, milliseconds=500), "1m0.5s"),
        (timedelta(microseconds=1), "0.000001s"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    """Durations are written compactly, leaving out zero parts."""
    assert format_duration(duration) == text


def test_format_negative_duration_is_rejected() -> None:
    """A negative duration has no text form."""
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


@given(st.integers(0, timedelta.max // timedelta(seconds=1)))
def test_duration_round_trip_whole_seconds(seconds: int) -> None:
    """`parse_duration(format_duration(d)) == d` for whole seconds."""
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


@given(st.timedeltas(min_value=timedelta(0)))
def test_duration_round_trip_microseconds(duration: timedelta) -> None:
    """The round trip is exact to the microsecond, too."""
    assert parse_duration(format_duration(duration)) == duration


@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(["w", "d", "h", "m", "s"])),
        min_size=1,
        max_size=5,
        unique_by=lambda part: part[1],
    ),
    st.sampled_from(["", " ", ", ", " and "]),
)
def test_unit_parts_add_up(parts: list[tuple[int, str]], separator: str) -> None:
    """A duration of unit parts, in any order and separated any accepted way, is their sum."""
    seconds = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    text = separator.join(f"{n}{unit}" for n, unit in parts)
    expected = timedelta(seconds=sum(n * seconds[unit] for n, unit in parts))
    assert parse_duration(text) == expected


# ---------------------------------------------------------------------------- targets

B = ElectricalComponentCategory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2,3", TargetIds(1, 2, 3)),
        ("1 2 3", TargetIds(1, 2, 3)),
        (" 3, 1 ,2 ", TargetIds(1, 2, 3)),
        ("0", TargetIds(0)),
        (str(2**64 - 1), TargetIds(2**64 - 1)),
        ("BATTERY", TargetCategories(B.BATTERY)),
        ("battery", TargetCategories(B.BATTERY)),
        ("METER", TargetCategories(B.METER)),
        ("ev-charger", TargetCategories(B.EV_CHARGER)),
        ("EV_CHARGER", TargetCategories(B.EV_CHARGER)),
        ("BATTERY:LI_ION", TargetCategories(BatteryType.LI_ION)),
        ("battery:li-ion", TargetCategories(BatteryType.LI_ION)),
        ("INVERTER:PV", TargetCategories(InverterType.PV)),
        ("INVERTER:SOLAR", TargetCategories(InverterType.PV)),
        ("INVERTER:BATTERY", TargetCategories(InverterType.BATTERY)),
        ("INVERTER:HYBRID", TargetCategories(InverterType.HYBRID)),
        ("EV_CHARGER:DC", TargetCategories(EvChargerType.DC)),
        ("EV_CHARGER:HYBRID", TargetCategories(EvChargerType.HYBRID)),
        ("LI_ION", TargetCategories(BatteryType.LI_ION)),
        ("NA_ION", TargetCategories(BatteryType.NA_ION)),
        ("PV", TargetCategories(InverterType.PV)),
        ("SOLAR", TargetCategories(InverterType.PV)),
        ("AC", TargetCategories(EvChargerType.AC)),
        ("dc", TargetCategories(EvChargerType.DC)),
        ("BATTERY,INVERTER:PV", TargetCategories(B.BATTERY, InverterType.PV)),
        ("meter meter", TargetCategories(B.METER)),
    ],
)
def test_targets(text: str, expected: TargetIds | TargetCategories) -> None:
    """Ids, categories, category:type pairs and unambiguous bare types are read."""
    result = parse_target(text)
    assert type(result) is type(expected)
    assert result == expected


def test_bare_battery_is_the_category() -> None:
    """`BATTERY` names a category and an inverter type; the category wins."""
    (member,) = parse_target("BATTERY")
    assert not isinstance(parse_target("BATTERY"), TargetIds)
    assert member.target is B.BATTERY  # type: ignore[union-attr]
    assert member.type is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ("empty",)),
        (" , ", ("empty",)),
        ("HYBRID", ("ambiguous", "INVERTER:HYBRID", "EV_CHARGER:HYBRID")),
        ("1,BATTERY", ("mixes",)),
        ("BATTERY 1", ("mixes",)),
        ("FOO", ("unknown target name 'FOO'", "METER", "BATTERY:LI_ION", "NA_ION")),
        ("UNSPECIFIED", ("unknown target name",)),
        ("BATTERY:UNSPECIFIED", ("unknown BATTERY type", "LI_ION")),
        ("INVERTER:LI_ION", ("unknown INVERTER type", "PV")),
        ("METER:PV", ("METER has no types",)),
        ("FOO:BAR", ("unknown category 'FOO'",)),
        ("-1", ("0..",)),
        (str(2**64), ("0..",)),
        ("1.5", ("unknown target name",)),
    ],
)
def test_bad_targets_are_rejected(text: str, fragments: tuple[str, ...]) -> None:
    """Empty, mixed, unknown, ambiguous or out-of-range targets are ValueErrors."""
    _fails(parse_target, text, *fragments)


@pytest.mark.parametrize(
    ("target", "text"),
    [
        (TargetIds(3, 1, 2), "1,2,3"),
        (TargetCategories(B.METER, BatteryType.LI_ION), "BATTERY:LI_ION,METER"),
        (TargetCategories(InverterType.SOLAR), "INVERTER:PV"),
        (TargetCategories(B.INVERTER, InverterType.PV), "INVERTER,INVERTER:PV"),
    ],
)
def test_format_target(target: TargetIds | TargetCategories, text: str) -> None:
    """Targets are written sorted, as `parse_target` reads them."""
    assert format_target(target) == text


_known_category_targets = st.one_of(
    *(
        st.sampled_from([m for m in enum_type if m.name != "UNSPECIFIED"])
        for enum_type in (ElectricalComponentCategory, BatteryType, InverterType, EvChargerType)
    )
)


@given(st.frozensets(st.integers(0, 2**64 - 1), min_size=1, max_size=8))
def test_target_ids_round_trip(ids: frozenset[int]) -> None:
    """`parse_target(format_target(t)) == t` for component ids."""
    target = TargetIds(*ids)
    result = parse_target(format_target(target))
    assert isinstance(result, TargetIds)
    assert result == target


@given(st.lists(_known_category_targets, min_size=1, max_size=8))
def test_target_categories_round_trip(members: list[Any]) -> None:
    """`parse_target(format_target(t)) == t` for categories and types."""
    target = TargetCategories(*members)
    result = parse_target(format_target(target))
    assert isinstance(result, TargetCategories)
    assert result == target


# -------------------------------------------------------------------------------- ids


def test_ids_example() -> None:
    """Numbers, both range spellings and comma lists combine in the order given."""
    assert parse_ids(["1-3", "5", "7..9", "10,11"]) == [1, 2, 3, 5, 7, 8, 9, 10, 11]


def test_ids_keep_order_and_drop_duplicates() -> None:
    """Ids come out in the order given, each once."""
    assert parse_ids(["5,3", "3-6", "1"]) == [5, 3, 4, 6, 1]


def test_ids_tolerate_stray_commas_and_spaces() -> None:
    """`1,` (as a shell splits `1, 2`) and spaces around a range dash are fine."""
    assert parse_ids(["1,", "2", "4 - 5"]) == [1, 2, 4, 5]


def test_a_full_size_range_is_accepted() -> None:
    """A range of exactly `MAX_ID_RANGE` ids is allowed."""
    assert len(parse_ids([f"1-{MAX_ID_RANGE}"])) == MAX_ID_RANGE


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        (",", "empty"),
        ("3-1", "reversed: write 1-3"),
        ("5..2", "reversed"),
        ("a", "expected a number"),
        ("1-b", "expected a number"),
        ("1.5", "expected a number"),
        ("-1", "positive"),
        ("0", "1.."),
        ("0-3", "1.."),
        (str(2**64), "1.."),
        (f"1-{MAX_ID_RANGE + 1}", "more than the 10000"),
        ("1-1000000", "a typo?"),
    ],
)
def test_bad_ids_are_rejected(text: str, fragment: str) -> None:
    """Non-numbers, 0, negatives, reversed and huge ranges are ValueErrors."""
    _fails(lambda t: parse_ids([t]), text, fragment)


def test_no_ids_is_rejected() -> None:
    """An empty argument list has no ids."""
    with pytest.raises(ValueError, match="no dispatch ids"):
        parse_ids([])


@given(
    st.lists(
        st.tuples(
            st.integers(1, 2**64 - 1 - MAX_ID_RANGE),
            st.integers(0, 50),
            st.sampled_from(["-", ".."]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_generated_ranges(ranges: list[tuple[int, int, str]], one_text: bool) -> None:
    """Ranges expand inclusively, in order, without duplicates, as one text or many."""
    texts = [f"{first}{dash}{first + extra}" for first, extra, dash in ranges]
    expected = list(
        dict.fromkeys(n for first, extra, _ in ranges for n in range(first, first + extra + 1))
    )
    assert parse_ids([",".join(texts)] if one_text else texts) == expected


# ------------------------------------------------------------ weekdays and frequencies


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MON", Weekday.MONDAY),
        ("Monday", Weekday.MONDAY),
        ("mo", Weekday.MONDAY),
        ("1", Weekday.MONDAY),
        ("tu", Weekday.TUESDAY),
        ("tues", Weekday.TUESDAY),
        ("WED", Weekday.WEDNESDAY),
        ("th", Weekday.THURSDAY),
        ("thur", Weekday.THURSDAY),
        ("friday", Weekday.FRIDAY),
        ("sa", Weekday.SATURDAY),
        ("su", Weekday.SUNDAY),
        ("7", Weekday.SUNDAY),
        (" Sunday ", Weekday.SUNDAY),
    ],
)
def test_weekdays(text: str, expected: Weekday) -> None:
    """Names, prefixes of two or more letters and ISO numbers 1-7 are read."""
    assert parse_weekday(text) is expected


@pytest.mark.parametrize("text", ["", "m", "s", "0", "8", "10", "mondays", "x", "UNSPECIFIED"])
def test_bad_weekdays_are_rejected(text: str) -> None:
    """Other text, 0 (Sunday in cron) and one-letter prefixes are ValueErrors."""
    _fails(parse_weekday, text, "1 (Monday) to 7 (Sunday)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("daily", Frequency.DAILY),
        ("DAILY", Frequency.DAILY),
        ("minutely", Frequency.MINUTELY),
        ("Hourly", Frequency.HOURLY),
        (" weekly ", Frequency.WEEKLY),
        ("monthly", Frequency.MONTHLY),
        ("yearly", Frequency.YEARLY),
    ],
)
def test_frequencies(text: str, expected: Frequency) -> None:
    """Frequency names are read in any case."""
    assert parse_frequency(text) is expected


@pytest.mark.parametrize("text", ["", "unspecified", "day", "3", "fortnightly"])
def test_bad_frequencies_are_rejected(text: str) -> None:
    """`UNSPECIFIED` and unknown names are ValueErrors listing the valid names."""
    _fails(parse_frequency, text, "minutely, hourly, daily, weekly, monthly, yearly")


# --------------------------------------------------------------------------- payloads


def test_json_object() -> None:
    """A JSON object becomes a dict."""
    assert parse_json_object('{"a": [1, 2.5, null, true], "b": {"c": "d"}}') == {
        "a": [1, 2.5, None, True],
        "b": {"c": "d"},
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not valid JSON"),
        ("{bad", "not valid JSON"),
        ("[1]", "is an array"),
        ('"x"', "is a string"),
        ("1", "is a number"),
        ("null", "is null"),
        ("true", "is a boolean"),
        ('{"a": NaN}', "NaN"),
        ('{"a": Infinity}', "Infinity"),
        ('{"a": 9007199254740993}', "cannot be sent"),
        ('{"a":' * 50 + "1" + "}" * 50, "nests deeper"),
    ],
)
def test_bad_json_is_rejected(text: str, fragment: str) -> None:
    """Non-JSON, non-objects and payloads the API cannot carry are ValueErrors."""
    message = _fails(parse_json_object, text, fragment)
    assert len(message) < 400 or "nests deeper" in message


def test_huge_json_is_quoted_briefly() -> None:
    """A very long or very deep input is shortened in the message."""
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ValueError, match=r"^payload '\[{10}.*\.\.\.'") as excinfo:
        parse_json_object(text)
    assert len(str(excinfo.value)) < 200


# ------------------------------------------------------------------------- ParamTypes


@click.command()
@click.option("--at", type=TimeType())
@click.option("--start", type=TimeType(now_literal=True))
@click.option("--duration", type=DurationType())
@click.option("--target", type=TargetType())
@click.option("--ids", type=IdsType(), multiple=True)
@click.option("--weekday", type=WeekdayType())
@click.option("--frequency", type=FrequencyType())
@click.option("--payload", type=JsonObjectType())
def _command(**values: Any) -> None:
    for name, value in sorted(values.items()):
        if value is not None and value != ():
            click.echo(f"{name}={value!r}")


def _run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(_command, list(args))


def test_param_types_convert() -> None:
    """Each ParamType hands the command the parsed value."""
    result = _run(
        "--at",
        "2026-12-24T14:00Z",
        "--start",
        "NOW",
        "--duration",
        "1h30m",
        "--target",
        "BATTERY:LI_ION,METER",
        "--ids",
        "1-2",
        "--ids",
        "5",
        "--weekday",
        "mon",
        "--frequency",
        "daily",
        "--payload",
        '{"a": 1}',
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"at={datetime(2026, 12, 24, 14, 0, tzinfo=UTC)!r}",
        f"duration={timedelta(hours=1, minutes=30)!r}",
        f"frequency={Frequency.DAILY!r}",
        "ids=([1, 2], [5])",
        "payload={'a': 1}",
        "start='NOW'",
        f"target={TargetCategories(BatteryType.LI_ION, B.METER)!r}",
        f"weekday={Weekday.MONDAY!r}",
    ]


def test_time_type_reads_now_as_a_time_by_default() -> None:
    """Without `now_literal`, `now` becomes the current time."""
    before = datetime.now(UTC)
    converted = TimeType().convert("now", None, None)
    assert isinstance(converted, datetime)
    assert before <= converted <= datetime.now(UTC)
    assert TimeType(now_literal=True).convert(" now ", None, None) == "NOW"


def test_param_types_pass_converted_values_through() -> None:
    """Already converted values (defaults, prompts) are returned unchanged."""
    target = TargetIds(1)
    assert TimeType().convert(NOW, None, None) is NOW
    assert DurationType().convert(timedelta(1), None, None) == timedelta(1)
    assert TargetType().convert(target, None, None) is target
    assert IdsType().convert([1, 2], None, None) == [1, 2]
    assert WeekdayType().convert(Weekday.FRIDAY, None, None) is Weekday.FRIDAY
    assert FrequencyType().convert(Frequency.DAILY, None, None) is Frequency.DAILY
    assert JsonObjectType().convert({"a": 1}, None, None) == {"a": 1}


@pytest.mark.parametrize(
    ("option", "text", "fragment"),
    [
        ("--at", "tomorrow blah", "cannot read time 'tomorrow blah'"),
        ("--start", "later", "cannot read time 'later'"),
        ("--duration", "1h 2h", "same unit twice"),
        ("--target", "HYBRID", "INVERTER:HYBRID or EV_CHARGER:HYBRID"),
        ("--ids", "1-1000000", "a typo?"),
        ("--weekday", "0", "cannot read weekday '0'"),
        ("--frequency", "unspecified", "unknown frequency 'unspecified'"),
        ("--payload", "[1]", "not a JSON object"),
    ],
)
def test_param_types_report_usage_errors(option: str, text: str, fragment: str) -> None:
    """A parse error becomes a click usage error: exit code 2, the message, the option."""
    result = _run(option, text)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert f"Invalid value for '{option}'" in result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_param_type_failure_is_bad_parameter() -> None:
    """`convert` raises click's BadParameter, which carries the message."""
    with pytest.raises(click.BadParameter, match="unknown unit 'parsecs'"):
        DurationType().convert("5 parsecs", None, None)


def _completions(param_type: click.ParamType[Any], incomplete: str) -> list[str]:
    ctx = click.Context(_command)
    param = click.Option(["--x"], type=param_type)
    return [item.value for item in param_type.shell_complete(ctx, param, incomplete)]


def test_target_completion() -> None:
    """Target names complete, after earlier items of a comma list too."""
    assert _completions(TargetType(), "EV") == [
        "EV_CHARGER",
        "EV_CHARGER:AC",
        "EV_CHARGER:DC",
        "EV_CHARGER:HYBRID",
    ]
    assert "METER,BATTERY:LI_ION" in _completions(TargetType(), "METER,BATTERY:")
    assert "meter,na_ion" in _completions(TargetType(), "meter,n")
    assert "HYBRID" not in _completions(TargetType(), "")  # ambiguous alone
    assert "UNSPECIFIED" not in _completions(TargetType(), "")


def test_weekday_and_frequency_completion() -> None:
    """Day and frequency names complete in the case the user started with."""
    assert _completions(WeekdayType(), "t") == ["tuesday", "thursday"]
    assert _completions(WeekdayType(), "S") == ["SATURDAY", "SUNDAY"]
    assert _completions(FrequencyType(), "") == [
        "MINUTELY",
        "HOURLY",
        "DAILY",
        "WEEKLY",
        "MONTHLY",
        "YEARLY",
    ]
    assert _completions(FrequencyType(), "mo") == ["monthly"]


def test_frequency_help_shows_the_choices() -> None:
    """The frequency option's help lists the names."""
    result = _run("--help")
    assert "[minutely|hourly|daily|weekly|monthly|yearly]" in result.output
