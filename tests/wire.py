"""A small protobuf wire-format toolkit for tests.

It parses a serialized message into a tree of `Field`s, using the descriptor of an
official (google.protobuf) message class to tell which length-delimited fields are
sub-messages (map entries included), and serializes such a tree back, optionally with
transformations every conforming parser must see through, applied at every level:

* `shuffle`: fields in a random order (fields with the same number keep their relative
  order, so repeated fields and last-wins scalars mean the same; members of one oneof
  may swap, which matters only if more than one is present);
* `unpack`: packed repeated scalars split into random runs, each packed or unpacked;
* `unknown`: fields with numbers the message does not define, of wire types 0, 1, 2, 5;
* `pad`: non-minimal varints (0x80 continuation bytes): values up to 10 bytes, tags and
  lengths up to 5 (the most the reference implementations accept for those);
* `widen`: 32-bit varint fields (int32, uint32, enum) get random upper 32 bits and bools
  a random non-zero value; parsers must truncate (protobuf's int32/uint32 semantics);
* `duplicate`: copies of random fields appended after them (a singular sub-message then
  merges with itself, a scalar is set again, a repeated field grows); this changes the
  meaning, so only compare with the official parser's reading of the result.

Also meaning-changing, for comparisons with the official parser only:

* `split`: a sub-message field sent as two fields of the same number, its fields cut in
  two (a singular one merges back; a repeated one gains an element);
* `groups`: unknown groups (wire type 3, nested fields and groups inside);
* `mismatch`: a known field number with a wire type its type does not use;
* `oneofs`: an extra member of one of the message's oneofs, at a random place.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "END_GROUP",
    "FIXED32",
    "FIXED64",
    "GROUP",
    "LEN",
    "VARINT",
    "Field",
    "Mangle",
    "Message",
    "WireError",
    "encode_varint",
    "field_bytes",
    "parse",
    "read_varint",
    "serialize",
    "tag",
]

VARINT, FIXED64, LEN, GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
_MAX_SHORT_VARINT = 5  # tags and lengths: the most upb and protobuf C++ accept
_MAX_VARINT = 10
_UINT64 = 2**64

# descriptor FieldDescriptor.type numbers (google/protobuf/descriptor.proto)
_TYPE_DOUBLE, _TYPE_FLOAT, _TYPE_INT64, _TYPE_UINT64, _TYPE_INT32 = 1, 2, 3, 4, 5
_TYPE_FIXED64, _TYPE_FIXED32, _TYPE_BOOL, _TYPE_MESSAGE, _TYPE_UINT32 = 6, 7, 8, 11, 13
_TYPE_ENUM, _TYPE_SFIXED32, _TYPE_SFIXED64, _TYPE_SINT32, _TYPE_SINT64 = 14, 15, 16, 17, 18
_VARINT_TYPES = frozenset(
    {
        _TYPE_INT64,
        _TYPE_UINT64,
        _TYPE_INT32,
        _TYPE_BOOL,
        _TYPE_UINT32,
        _TYPE_ENUM,
        _TYPE_SINT32,
        _TYPE_SINT64,
    }
)
_FIXED_SIZES = {
    _TYPE_DOUBLE: 8,
    _TYPE_FIXED64: 8,
    _TYPE_SFIXED64: 8,
    _TYPE_FLOAT: 4,
    _TYPE_FIXED32: 4,
    _TYPE_SFIXED32: 4,
}
_WIDE_32 = frozenset({_TYPE_INT32, _TYPE_UINT32, _TYPE_ENUM})


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def encode_varint(value: int, length: int | None = None) -> bytes:
    """Encode `value` (negative: as its 64-bit two's complement) as a varint.

    Args:
        value: An int in -2**63..2**64-1.
        length: Pad with 0x80 continuation bytes to this many bytes (at most 10).

    Returns:
        The varint.
    """
    if not -(2**63) <= value < _UINT64:
        raise ValueError(f"{value} does not fit a varint")
    value %= _UINT64
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            break
        out.append(low | 0x80)
    if length is not None and length > len(out):
        if length > _MAX_VARINT:
            raise ValueError(f"a varint has at most {_MAX_VARINT} bytes")
        out[-1] |= 0x80
        out += b"\x80" * (length - len(out) - 1) + b"\x00"
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a varint at `pos`; return its value (bits beyond 64 dropped) and the next pos."""
    result = 0
    for shift in range(0, 7 * _MAX_VARINT, 7):
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result % _UINT64, pos
    raise WireError("varint longer than 10 bytes")


def tag(number: int, wire_type: int) -> bytes:
    """Encode a field tag."""
    return encode_varint(number << 3 | wire_type)


def field_bytes(number: int, value: int | bytes) -> bytes:
    """Encode one field: an int as a varint field, bytes as a length-delimited field."""
    if isinstance(value, int):
        return tag(number, VARINT) + encode_varint(value)
    return tag(number, LEN) + encode_varint(len(value)) + value


class Field(NamedTuple):
    """One field as it appears on the wire."""

    number: int
    wire_type: int
    value: int | bytes | Message
    """VARINT: the int; FIXED64/FIXED32: the raw bytes; LEN: the raw bytes or, for a
    sub-message field, the parsed `Message`."""


@dataclass
class Message:
    """A parsed message: its descriptor and its fields in wire order."""

    descriptor: Any
    fields: list[Field]


def parse(data: bytes, descriptor: Any) -> Message:
    """Parse `data` as the message `descriptor` describes (e.g. `opb.Dispatch.DESCRIPTOR`).

    Raises:
        WireError: For bytes that are not a well-formed message.
    """
    fields: list[Field] = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes | Message
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
        elif wire_type in (FIXED64, FIXED32, LEN):
            if wire_type == LEN:
                size, pos = read_varint(data, pos)
            else:
                size = 8 if wire_type == FIXED64 else 4
            if pos + size > len(data):
                raise WireError(f"field {number} runs past the end")
            value, pos = data[pos : pos + size], pos + size
            sub = descriptor.fields_by_number.get(number)
            if wire_type == LEN and sub is not None and sub.type == _TYPE_MESSAGE:
                value = parse(value, sub.message_type)
        else:
            raise WireError(f"unsupported wire type {wire_type}")
        fields.append(Field(number, wire_type, value))
    return Message(descriptor, fields)


@dataclass(frozen=True)
class Mangle:
    """Which transformations `serialize` applies (each randomly, at every level)."""

    shuffle: bool = False
    unpack: bool = False
    unknown: bool = False
    pad: bool = False
    widen: bool = False
    duplicate: bool = False
    split: bool = False
    groups: bool = False
    mismatch: bool = False
    oneofs: bool = False
    unknown_in_map_entries: bool = True
    """False: no unknown fields inside map entries. upb keeps a map entry holding one
    out of the map, as an unknown field of the parent, so its re-serialization moves the
    entry to the end: not an oracle for such input when keys repeat."""


def serialize(
    message: Message, rng: random.Random | None = None, mangle: Mangle = Mangle()
) -> bytes:
    """Serialize a parsed message, transformed as `mangle` says, randomly by `rng`."""
    rng = rng or random.Random(0)
    fields = list(message.fields)
    if mangle.unpack:
        fields = [piece for item in fields for piece in _unpack(item, message.descriptor, rng)]
    if mangle.widen:
        fields = [_widen(item, message.descriptor, rng) for item in fields]
    if mangle.duplicate and fields and rng.random() < 0.3:
        for _ in range(rng.randint(1, 2)):
            at = rng.randrange(len(fields))
            fields.insert(rng.randint(at + 1, len(fields)), fields[at])
    if mangle.split:
        fields = [piece for item in fields for piece in _split(item, rng)]
    if mangle.oneofs and message.descriptor.oneofs and rng.random() < 0.3:
        fields.insert(rng.randint(0, len(fields)), _oneof_member(message.descriptor, rng))
    if mangle.unknown_in_map_entries or not _is_map_entry(message):
        extras: list[Field] = []
        if mangle.unknown:
            extras += [
                _unknown_field(message.descriptor, rng) for _ in range(rng.choice((0, 0, 1, 2)))
            ]
        if mangle.groups and rng.random() < 0.3:
            extras.append(_group(message.descriptor, rng, 2))
        if mangle.mismatch and rng.random() < 0.3:
            extras += _mismatched(message.descriptor, rng)
        for extra in extras:
            fields.insert(rng.randint(0, len(fields)), extra)
    if mangle.shuffle:
        fields = _shuffled(fields, rng)
    return b"".join(_encode_field(item, rng, mangle) for item in fields)


def _is_map_entry(message: Message) -> bool:
    return bool(message.descriptor.GetOptions().map_entry)


def _varint(value: int, rng: random.Random, pad: bool, most: int) -> bytes:
    plain = encode_varint(value)
    if not pad or rng.random() < 0.5 or len(plain) >= most:
        return plain
    return encode_varint(value, rng.randint(len(plain), most))


def _encode_field(item: Field, rng: random.Random, mangle: Mangle) -> bytes:
    key = _varint(item.number << 3 | item.wire_type, rng, mangle.pad, _MAX_SHORT_VARINT)
    value = item.value
    if item.wire_type == GROUP:
        assert isinstance(value, bytes)
        return key + value + tag(item.number, END_GROUP)
    if isinstance(value, int):
        return key + _varint(value, rng, mangle.pad, _MAX_VARINT)
    if isinstance(value, Message):
        value = serialize(value, rng, mangle)
    if item.wire_type != LEN:
        return key + value
    return key + _varint(len(value), rng, mangle.pad, _MAX_SHORT_VARINT) + value


def _shuffled(fields: list[Field], rng: random.Random) -> list[Field]:
    """A random interleaving that keeps the order of fields with the same number."""
    queues: dict[int, list[Field]] = {}
    for item in fields:
        queues.setdefault(item.number, []).append(item)
    order = [item.number for item in fields]
    rng.shuffle(order)
    return [queues[number].pop(0) for number in order]


def _unpack(item: Field, descriptor: Any, rng: random.Random) -> list[Field]:
    """Split a packed repeated scalar into random runs, each packed or unpacked."""
    spec = descriptor.fields_by_number.get(item.number)
    if (
        spec is None
        or not spec.is_repeated
        or item.wire_type != LEN
        or not isinstance(item.value, bytes)
    ):
        return [item]
    elements: list[int | bytes] = []
    data, pos = item.value, 0
    if spec.type in _VARINT_TYPES:
        while pos < len(data):
            number, pos = read_varint(data, pos)
            elements.append(number)
        wire_type = VARINT
    elif spec.type in _FIXED_SIZES:
        size = _FIXED_SIZES[spec.type]
        elements = [data[i : i + size] for i in range(0, len(data), size)]
        wire_type = FIXED64 if size == 8 else FIXED32
    else:
        return [item]
    pieces: list[Field] = []
    while elements:
        cut = rng.randint(1, len(elements))
        run, elements = elements[:cut], elements[cut:]
        if rng.random() < 0.3:
            packed = b"".join(encode_varint(e) if isinstance(e, int) else e for e in run)
            pieces.append(Field(item.number, LEN, packed))
        else:
            pieces.extend(Field(item.number, wire_type, e) for e in run)
    if not pieces or rng.random() < 0.1:
        pieces.append(Field(item.number, LEN, b""))  # an empty packed run adds nothing
    return pieces


def _widen(item: Field, descriptor: Any, rng: random.Random) -> Field:
    """Give a 32-bit varint random upper bits, a bool a random non-zero value."""
    spec = descriptor.fields_by_number.get(item.number)
    if spec is None or item.wire_type != VARINT or not isinstance(item.value, int):
        return item
    if spec.type in _WIDE_32:
        return item._replace(value=(item.value & 0xFFFFFFFF) | rng.getrandbits(32) << 32)
    if spec.type == _TYPE_BOOL and item.value:
        return item._replace(value=rng.randint(1, _UINT64 - 1))
    return item


def _unknown_field(descriptor: Any, rng: random.Random) -> Field:
    """A field whose number `descriptor` does not define, with arbitrary content."""
    while True:
        number = rng.choice((rng.randint(1, 20), rng.randint(1, 2**29 - 1)))
        if number not in descriptor.fields_by_number:
            break
    wire_type = rng.choice((VARINT, FIXED64, LEN, FIXED32))
    if wire_type == VARINT:
        return Field(number, wire_type, rng.getrandbits(rng.choice((1, 7, 32, 64))))
    size = {FIXED64: 8, FIXED32: 4}.get(wire_type, rng.randint(0, 12))
    return Field(number, wire_type, rng.randbytes(size))


def _split(item: Field, rng: random.Random) -> list[Field]:
    """A sub-message field as two fields of its number, its fields cut in two."""
    value = item.value
    if not isinstance(value, Message) or rng.random() >= 0.3:
        return [item]
    cut = rng.randint(0, len(value.fields))
    return [
        item._replace(value=Message(value.descriptor, value.fields[:cut])),
        item._replace(value=Message(value.descriptor, value.fields[cut:])),
    ]


def _group(descriptor: Any, rng: random.Random, levels: int) -> Field:
    """An unknown group: a number the message lacks, a few fields and maybe a group inside."""
    number = _unknown_field(descriptor, rng).number
    inner = [_unknown_field(descriptor, rng) for _ in range(rng.randint(0, 2))]
    if levels > 1 and rng.random() < 0.5:
        inner.append(_group(descriptor, rng, levels - 1))
    content = b"".join(_encode_field(field, rng, Mangle()) for field in inner)
    return Field(number, GROUP, content)


def _mismatched(descriptor: Any, rng: random.Random) -> list[Field]:
    """A known field number with a wire type its type does not use (none without fields)."""
    if not descriptor.fields:
        return []
    spec = rng.choice(descriptor.fields)
    if spec.type in _VARINT_TYPES:
        natural = {VARINT, LEN} if spec.is_repeated else {VARINT}
    elif spec.type in _FIXED_SIZES:
        natural = {FIXED64 if _FIXED_SIZES[spec.type] == 8 else FIXED32}
        natural |= {LEN} if spec.is_repeated else set()
    else:
        natural = {LEN}
    choices = sorted({VARINT, FIXED64, LEN, GROUP, FIXED32} - natural)
    wire_type = rng.choice(choices)
    if wire_type == VARINT:
        return [Field(spec.number, VARINT, rng.getrandbits(rng.choice((1, 7, 64))))]
    if wire_type == GROUP:
        return [Field(spec.number, GROUP, b"")]
    size = {FIXED64: 8, FIXED32: 4}.get(wire_type, rng.randint(0, 6))
    return [Field(spec.number, wire_type, rng.randbytes(size))]


def _oneof_member(descriptor: Any, rng: random.Random) -> Field:
    """A member of one of the message's oneofs, with a plain value of its type."""
    spec = rng.choice(rng.choice(descriptor.oneofs).fields)
    if spec.type == _TYPE_MESSAGE:
        return Field(spec.number, LEN, Message(spec.message_type, []))
    if spec.type in _VARINT_TYPES:
        return Field(spec.number, VARINT, rng.choice((0, 1, 2, 2**32 + 1)))
    if spec.type in _FIXED_SIZES:
        size = _FIXED_SIZES[spec.type]
        return Field(spec.number, FIXED64 if size == 8 else FIXED32, rng.randbytes(size))
    return Field(spec.number, LEN, rng.choice((b"", b"x", "é".encode())))
