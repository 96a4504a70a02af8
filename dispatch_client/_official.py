"""The official client's typed ids and enums, accepted by their shape, never imported.

Code written for frequenz-client-dispatch 1.x passes `MicrogridId(1)`, `DispatchId(7)`
and `ComponentId(3)` (subclasses of `frequenz.core.id.BaseId`) where we take ints, and
its enums (`ElectricalComponentCategory.BATTERY`, `Frequency.DAILY`, ...) where we take
ours. To let such code switch clients by changing its imports only, the argument
checks accept them, recognised by duck typing so that no frequenz package is imported
(or needed) at run time:

- A typed id is an object whose type defines `__int__` (giving a non-negative int) and
  that has a str `str_prefix`: `BaseId`'s documented interface. Its prefix must be the
  one of the kind of id expected (`MID` for a microgrid, `DID` for a dispatch, `CID` for
  a component), so a `MicrogridId` passed as a dispatch id is an error, as the official
  types intend. Plain numbers that are not integers (bool, float, Decimal, str) stay
  rejected: `__int__` alone would truncate them silently.
- An enum member of another library converts to ours when its class has the same name
  as ours and a member of ours has its name and its value; anything else is an error
  that names both. The deprecated `ComponentCategory` numbers its members differently
  from `ElectricalComponentCategory` (the official client converts it by number, which
  turns CHP into ELECTROLYZER); it converts by name, with the renamed members mapped.
"""

from __future__ import annotations

import enum
from typing import Final, Literal, Protocol, SupportsIndex, TypeAlias, TypeVar

__all__ = ["AnyId", "IdKind", "TypedId", "example", "id_kind_of", "official_member", "typed_id"]


class TypedId(Protocol):
    """The shape of the official client's typed ids (`frequenz.core.id.BaseId`)."""

    @property
    def str_prefix(self) -> str:
        """`MID`, `DID`, `CID`, ...: the kind of id."""
        ...

    def __int__(self) -> int:
        """The number."""
        ...


AnyId: TypeAlias = SupportsIndex | TypedId
"""What an id argument takes: an int (or integer-like value) or an official typed id."""

IdKind = Literal["microgrid", "dispatch", "component"]
"""The kinds of id the API has."""

_PREFIXES: Final[dict[str, str]] = {
    "MID": "microgrid",
    "DID": "dispatch",
    "CID": "component",
    "EID": "enterprise",
    "SID": "sensor",
}
"""`str_prefix` of the official id types -> the kind of id (frequenz.client.common 0.3)."""

_EXAMPLES: Final[dict[str, str]] = {
    "microgrid": "MicrogridId(1)",
    "dispatch": "DispatchId(7)",
    "component": "ComponentId(3)",
}

_E = TypeVar("_E", bound=enum.Enum)

_LEGACY_CATEGORY_NAMES: Final[dict[str, str | None]] = {
    "GRID": "GRID_CONNECTION_POINT",
    "RELAY": "BREAKER",
    "VOLTAGE_TRANSFORMER": "POWER_TRANSFORMER",
    "FUSE": None,
}
"""Members of the deprecated `ComponentCategory` renamed in `ElectricalComponentCategory`
(None: no counterpart); the others keep their names."""


def id_kind_of(owner: str) -> IdKind | None:
    """The kind of id an argument or field holds, from its name (`microgrid_id`, ...)."""
    if "microgrid_id" in owner:
        return "microgrid"
    if "dispatch_id" in owner:
        return "dispatch"
    if "TargetIds" in owner:
        return "component"
    return None


def example(kind: IdKind | None) -> str:
    """A typed id of `kind` as users write it, for messages."""
    return _EXAMPLES[kind] if kind is not None else "MicrogridId(1)"


def typed_id(owner: str, value: object, kind: IdKind | None) -> int | None:
    """The number of an official typed id, or None if `value` is not shaped like one.

    Args:
        owner: What the id is, for the messages.
        value: The value given.
        kind: The kind of id expected; None accepts any kind.

    Returns:
        `int(value)` for a typed id of the expected kind; None for anything that is not
        a typed id (the caller's own checks then reject it).

    Raises:
        TypeError: For a typed id of another kind (a `MicrogridId` as a dispatch id), or
            one whose `int()` is not an int.
    """
    if isinstance(value, int | float | str | bytes | enum.Enum):
        return None
    prefix = getattr(value, "str_prefix", None)
    if not isinstance(prefix, str) or getattr(type(value), "__int__", None) is None:
        return None
    found = _PREFIXES.get(prefix)
    if kind is not None and found != kind:
        what = f"a {found} id" if found else f"an id with prefix {prefix!r}"
        raise TypeError(
            f"{owner} must be a {kind} id such as {example(kind)} or an int, got {value!r} ({what})"
        )
    number = int(value)  # type: ignore[call-overload]
    if type(number) is not int:
        raise TypeError(f"{owner}: int({value!r}) gave {type(number).__name__}, not an int")
    return number


def official_member(enum_type: type[_E], owner: str, value: object) -> _E | None:
    """Our member of `enum_type` for another library's enum member, by name and value.

    Args:
        enum_type: Our enum.
        owner: What the value is, for the messages.
        value: The value given.

    Returns:
        Our member; None when `value` is not an enum member of another library (ours,
        and plain ints, are the caller's to check).

    Raises:
        TypeError: For a member of an enum of another name (`Weekday.MONDAY` as a
            frequency).
        ValueError: For a member whose name is not ours, or whose value differs from
            our member of that name.
    """
    if not isinstance(value, enum.Enum) or type(value).__module__.startswith("dispatch_client"):
        return None
    source = type(value).__name__
    name, number = value.name, value.value
    if source == "ComponentCategory" and enum_type.__name__ == "ElectricalComponentCategory":
        # Deprecated numbering: match by name, mapping the renamed members.
        renamed = _LEGACY_CATEGORY_NAMES.get(name, name)
        if renamed is None or renamed not in enum_type.__members__:
            raise ValueError(
                f"{owner}: {source}.{name} has no {enum_type.__name__}; "
                f"use one of {', '.join(enum_type.__members__)}"
            )
        return enum_type.__members__[renamed]
    if source != enum_type.__name__:
        raise TypeError(f"{owner} must be a {enum_type.__name__}, got {source}.{name}")
    ours = enum_type.__members__.get(name)
    if ours is None or ours.value != number:
        mine = f"ours is {ours.value}" if ours is not None else "we have no member of that name"
        raise ValueError(
            f"{owner}: {source}.{name} (value {number!r}) does not match our "
            f"{enum_type.__name__}: {mine}"
        )
    return ours
