"""A pure-Python client for the Frequenz Dispatch API, on asyncio and trio."""

from __future__ import annotations

from ._errors import DecodeError
from ._types import (
    BatteryType,
    ComponentCategory,
    Dispatch,
    DispatchEvent,
    ElectricalComponentCategory,
    EndCriteria,
    EvChargerType,
    Event,
    Frequency,
    InverterType,
    RecurrenceRule,
    SortField,
    SortOrder,
    TargetCategories,
    TargetCategory,
    TargetComponents,
    TargetIds,
    Weekday,
)

__all__ = [
    "BatteryType",
    "ComponentCategory",
    "DecodeError",
    "Dispatch",
    "DispatchEvent",
    "ElectricalComponentCategory",
    "EndCriteria",
    "EvChargerType",
    "Event",
    "Frequency",
    "InverterType",
    "RecurrenceRule",
    "SortField",
    "SortOrder",
    "TargetCategories",
    "TargetCategory",
    "TargetComponents",
    "TargetIds",
    "Weekday",
]
