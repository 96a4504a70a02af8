"""The fast decoder's shared values and enum lookups (its differential tests are in
tests/test_fastdecode.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from dispatch_client import (
    ElectricalComponentCategory,
    EndCriteria,
    Frequency,
    RecurrenceRule,
    TargetCategories,
    TargetIds,
    Weekday,
)
from dispatch_client._codec import _bridge as bridge
from dispatch_client._codec import _decode
from dispatch_client._demo import example_dispatch
from dispatch_client._errors import DecodeError


def _page(*dispatches: Any) -> bytes:
    return bridge.encode_list_response(list(dispatches), next_page_token=None, total_items=9)


def _rule(interval: int) -> RecurrenceRule:
    return RecurrenceRule(
        frequency=Frequency.DAILY,
        interval=interval,
        end_criteria=EndCriteria(count=3),
        byhours=(6, 18),
        byweekdays=(Weekday.MONDAY, Weekday.FRIDAY),
    )


@pytest.mark.parametrize("name", sorted(bridge.ENUM_TABLES))
def test_domain_enum_numbers_are_the_wire_numbers(name: str) -> None:
    """The fast path looks enums up by number: each wire number is the same-named member's."""
    table: Any = bridge.ENUM_TABLES[name]
    for wire in table._wire:
        assert table.from_wire(int(wire)) is table._domain(int(wire))


def test_equal_rules_and_targets_are_shared_payloads_never() -> None:
    """Dispatches with equal rules and targets share those values; each has its own payload."""
    base = attrs.evolve(example_dispatch(), recurrence=_rule(1), target=TargetIds(4, 5))
    other = attrs.evolve(base, id=2, target=TargetCategories(ElectricalComponentCategory.METER))
    page = _decode.decode_list_response(_page(base, attrs.evolve(base, id=3), other))
    first, second, third = page.dispatches
    assert first.recurrence is second.recurrence is third.recurrence
    assert first.target is second.target
    assert third.target == other.target
    assert first.payload == second.payload
    assert first.payload is not second.payload


def test_a_full_cache_is_emptied_and_values_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared-value cache never holds more than its bound; decoding stays exact."""
    monkeypatch.setattr(_decode, "_SHARED_MAX", 2)
    monkeypatch.setattr(_decode, "_RULES", {})
    dispatches = [attrs.evolve(example_dispatch(), id=n, recurrence=_rule(n)) for n in range(1, 8)]
    for _ in range(2):
        page = _decode.decode_list_response(_page(*dispatches))
        assert page.dispatches == dispatches
        assert len(_decode._RULES) <= 2


def test_an_invalid_rule_is_an_error_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule the domain rejects is never cached: each decode of it raises DecodeError."""
    monkeypatch.setattr(_decode, "_RULES", {})
    valid = attrs.evolve(example_dispatch(), recurrence=_rule(1))
    data = bytearray(_page(valid))
    # byhours is packed as 2A 02 06 12 (6 and 18); make 18 into 99.
    at = data.index(b"\x2a\x02\x06\x12")
    data[at + 3] = 99
    for _ in range(2):
        with pytest.raises(DecodeError, match=r"byhours\[1\] must be in 0..23, got 99"):
            _decode.decode_list_response(bytes(data))
        with pytest.raises(DecodeError, match="byhours"):
            bridge.decode_list_response(bytes(data))
    assert _decode._RULES == {}


def test_a_duration_of_zero_is_not_no_duration() -> None:
    """Presence: an unset duration reads as None, an explicit zero as timedelta(0)."""
    for duration in (None, timedelta(0), timedelta(seconds=1)):
        dispatch = attrs.evolve(example_dispatch(), duration=duration)
        data = bridge.encode_get_response(dispatch, microgrid_id=1)
        assert _decode.decode_get_response(data).duration == duration
