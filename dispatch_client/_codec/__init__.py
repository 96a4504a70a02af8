"""The codec: domain objects to the Dispatch API's wire bytes and back.

The client imports this module only. It offers two codecs with the same functions:

* `FAST`, the default: `_encode.py` writes requests and `_decode.py` reads responses
  straight between domain objects and wire bytes, one hand-written function per
  message type, both on the primitives of `_wire.py`;
* `reference()`: `_bridge.py` goes through the betterproto2 messages that
  `just codegen` generates (never edited by hand). It is the reference the fast codec is
  tested against, the path `Client(fast_codec=False)` takes, and the server side of
  every message (the fake service, cassette rendering).

Both encode byte for byte what protobuf's deterministic serialization writes, and both
read bytes as protobuf's parser does (tests/test_codec_encode.py and
tests/test_codec_differential.py hold them to the official protobuf classes).
`reference()` is a function so that a client on the fast path never imports
betterproto2 and the generated code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

import attrs

from dispatch_client._codec import _decode, _encode

if TYPE_CHECKING:
    from dispatch_client._requests import CreateRequest, ListPage, ListRequest, UpdateRequest
    from dispatch_client._types import Dispatch, DispatchEvent

__all__ = ["FAST", "Codec", "reference"]


@attrs.frozen(kw_only=True)
class Codec:
    """What the client needs of a codec: its requests encoded, its responses decoded.

    Every `decode_*` function raises `DecodeError` and nothing else for bad bytes.
    """

    encode_list_request: Callable[[ListRequest], bytes]
    encode_create_request: Callable[[CreateRequest], bytes]
    encode_update_request: Callable[[UpdateRequest], bytes]
    encode_get_request: Callable[[int, int], bytes]
    encode_delete_request: Callable[[int, int], bytes]
    encode_stream_request: Callable[[int], bytes]
    decode_list_response: Callable[[bytes], ListPage]
    decode_create_response: Callable[[bytes], Dispatch]
    decode_update_response: Callable[[bytes], Dispatch]
    decode_get_response: Callable[[bytes], Dispatch]
    decode_delete_response: Callable[[bytes], tuple[int, int]]
    decode_stream_response: Callable[[bytes], DispatchEvent]


def _codec(*modules: ModuleType) -> Codec:
    """The codec made of these modules' functions, each taken by its name."""
    functions = {}
    for field in attrs.fields(Codec):
        module = next(module for module in modules if hasattr(module, field.name))
        functions[field.name] = getattr(module, field.name)
    return Codec(**functions)


FAST = _codec(_encode, _decode)
"""The hand-written codec, the client's default."""


@functools.cache
def reference() -> Codec:
    """The betterproto2 codec, the reference (imports the generated code on first use)."""
    from dispatch_client._codec import _bridge

    return _codec(_bridge)
