"""Protobuf wire primitives shared by the codec's encoder, decoder and reference bridge.

Reading follows protobuf's (upb's) parser, which is the behaviour the decoders must
match byte for byte:

* a key (tag) is a varint of at most 5 bytes whose value fits 32 bits; field number 0
  is invalid;
* a value varint has at most 10 bytes; its bits beyond 64 are dropped;
* a field that no decoder branch takes is unknown and skipped, whatever its number:
  that includes a known number arriving with a wire type its type does not use;
* a group (wire type 3) is skipped up to the end-group key (4) of the same number,
  nested groups counting towards the depth limit; an end-group key anywhere else is
  invalid, and so are wire types 6 and 7.

Tags are written as their wire values: `0x0A` is field 1 with wire type 2
(length-delimited), `(number << 3) | wire_type`.
"""

from __future__ import annotations

from typing import Final, TypeAlias

from dispatch_client._errors import DecodeError

MAX_DEPTH: Final = 100
"""How deeply messages may nest (protobuf's default recursion limit)."""

MASK32: Final = 0xFFFF_FFFF
MASK64: Final = 0xFFFF_FFFF_FFFF_FFFF

Span: TypeAlias = tuple[bytes, int, int]
"""A sub-message not decoded yet: a buffer and the part of it, [start, stop)."""

# ------------------------------------------------------------------------ reading


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Read the varint at `pos`; return its value and the position after it.

    Raises:
        DecodeError: For a varint longer than 10 bytes.
        IndexError: For a varint running past the buffer's end (a truncated field,
            which the decoders report as such).
    """
    result = 0
    shift = 0
    while shift < 70:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise DecodeError("varint longer than 10 bytes")


def key(buf: bytes, pos: int) -> tuple[int, int]:
    """Read a field's key (tag) at `pos`: at most 5 bytes, a value within 32 bits.

    Raises:
        DecodeError: For a longer key or one beyond 32 bits.
    """
    value, after = varint(buf, pos)
    if after - pos > 5 or value > MASK32:
        raise DecodeError("invalid field key")
    return value, after


def int32(value: int) -> int:
    """An int32 or enum field's varint: the low 32 bits, signed."""
    value &= MASK32
    return value - 0x1_0000_0000 if value > 0x7FFF_FFFF else value


def int64(value: int) -> int:
    """An int64 field's varint: the low 64 bits, signed."""
    value &= MASK64
    return value - 0x1_0000_0000_0000_0000 if value > 0x7FFF_FFFF_FFFF_FFFF else value


def join(previous: Span | None, buf: bytes, start: int, stop: int) -> Span:
    """Add a part to a singular sub-message; protobuf merges parts as if concatenated."""
    if previous is None:
        return buf, start, stop
    head, head_start, head_stop = previous
    # To protobuf each part is a message of its own: no field may run from one part into
    # the next, which their concatenation alone would no longer show.
    skip_message(head, head_start, head_stop, 0)
    skip_message(buf, start, stop, 0)
    joined = head[head_start:head_stop] + buf[start:stop]
    return joined, 0, len(joined)


def span(buf: bytes, pos: int, end: int, field_key: int) -> tuple[int, int]:
    """Read a length-delimited field's length (its key read); return its content's span.

    Raises:
        DecodeError: If the content runs past `end`.
    """
    length, pos = varint(buf, pos)
    stop = pos + length
    if stop > end:
        raise truncated(field_key)
    return pos, stop


def skip(buf: bytes, pos: int, end: int, field_key: int, depth: int = 0) -> int:
    """Skip a field no decoder branch took (its key read, `pos` after it): it is unknown.

    Args:
        buf: The buffer.
        pos: Where the field's value starts.
        end: Where the enclosing message ends.
        field_key: The field's key.
        depth: The enclosing message's nesting depth (a group nests one level deeper).

    Returns:
        Where the field ends.

    Raises:
        DecodeError: For field number 0, an end-group key without its group, wire type
            6 or 7, a group nested too deeply, or a field running past `end`.
    """
    if field_key < 8:
        raise DecodeError("field number 0 is invalid")
    wire_type = field_key & 7
    if wire_type == 0:
        pos = varint(buf, pos)[1]
    elif wire_type == 2:
        length, pos = varint(buf, pos)
        pos += length
    elif wire_type == 1:
        pos += 8
    elif wire_type == 5:
        pos += 4
    elif wire_type == 3:
        pos = _skip_group(buf, pos, end, field_key, depth + 1)
    elif wire_type == 4:
        raise DecodeError(f"end of group {field_key >> 3} without its start")
    else:
        raise DecodeError(f"invalid wire type {wire_type} for field {field_key >> 3}")
    if pos > end:
        raise truncated(field_key)
    return pos


def _skip_group(buf: bytes, pos: int, end: int, start_key: int, depth: int) -> int:
    """Skip a group's fields up to its end-group key; return the position after it."""
    if depth > MAX_DEPTH:
        raise too_deep()
    end_key = start_key + 1  # the same number, wire type 4
    while pos < end:
        inner, pos = key(buf, pos)
        if inner == end_key:
            return pos
        pos = skip(buf, pos, end, inner, depth)
    raise DecodeError(f"group {start_key >> 3} has no end")


def skip_message(buf: bytes, pos: int, end: int, depth: int) -> None:
    """Check a message whose fields are all unknown to the caller (framing only)."""
    if depth > MAX_DEPTH:
        raise too_deep()
    while pos < end:
        field_key, pos = key(buf, pos)
        pos = skip(buf, pos, end, field_key, depth)
    if pos != end:
        raise overrun()


def packed(buf: bytes, pos: int, stop: int, values: list[int]) -> None:
    """Append the varints of a packed repeated field, `buf[pos:stop]`."""
    chunk = buf[pos:stop]
    if chunk.isascii():  # no byte has the continuation bit: each is one value
        values.extend(chunk)
        return
    append = values.append
    while pos < stop:
        value = buf[pos]
        pos += 1
        if value > 0x7F:
            value, pos = varint(buf, pos - 1)
        append(value)
    if pos != stop:
        raise DecodeError("a packed field's last varint runs past its end")


# ------------------------------------------------------------------------- errors


def truncated(field_key: int) -> DecodeError:
    """The error for a field whose content runs past the end of its message."""
    return DecodeError(f"field {field_key >> 3} is truncated")


def overrun() -> DecodeError:
    """The error for a message whose last field ends beyond the message."""
    return DecodeError("the last field runs past the end of its message")


def too_deep() -> DecodeError:
    """The error for messages nested deeper than `MAX_DEPTH`."""
    return DecodeError(f"messages nested deeper than {MAX_DEPTH} levels")


# ------------------------------------------------------------------------ writing


def put_varint(out: bytearray, value: int) -> None:
    """Append a non-negative varint (a negative int64/int32 is passed as its 64-bit form)."""
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def varint_bytes(value: int) -> bytes:
    """The varint encoding of a non-negative int, as bytes."""
    # Unrolled up to five bytes (below 2**35: ids, lengths, today's timestamps in
    # seconds, nanoseconds): a few shifts cost less than a loop over a bytearray.
    if value < 0x80:
        return _SMALL[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if value < 0x20_0000:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    if value < 0x1000_0000:
        return bytes(
            (value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14 & 0x7F | 0x80, value >> 21)
        )
    if value < 0x8_0000_0000:
        return bytes(
            (
                value & 0x7F | 0x80,
                value >> 7 & 0x7F | 0x80,
                value >> 14 & 0x7F | 0x80,
                value >> 21 & 0x7F | 0x80,
                value >> 28,
            )
        )
    out = bytearray()
    put_varint(out, value)
    return bytes(out)


_SMALL: Final = tuple(bytes((n,)) for n in range(0x80))


def put_bytes(out: bytearray, field_key: int, content: bytes | bytearray) -> None:
    """Append a length-delimited field: its (one-byte) key, length and content."""
    out.append(field_key)
    length = len(content)
    if length < 0x80:
        out.append(length)
    else:
        put_varint(out, length)
    out += content
