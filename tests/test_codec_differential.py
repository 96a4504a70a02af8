"""Differential fuzz: both decoding paths against protobuf's own parser (upb).

Hypothesis draws valid messages with the official classes, then re-orders, splits,
duplicates and pads their fields, adds unknown fields, unknown groups, known numbers
with the wrong wire type and extra oneof members, and finally may edit the bytes
(flip, insert, delete, overwrite, splice). The official parser is the oracle:

* where it rejects the bytes, the fast and the reference decoders raise `DecodeError`;
* where it accepts them, both decode them exactly as they decode the official
  parser's re-serialization of what it read, plain bytes with one value per field
  (a result, or the same `DecodeError` for content the domain rejects).

Every decoder the client uses (five responses carrying dispatches, and the delete
response) runs on both paths; the server-side request decoders of the reference path
run on drawn requests of every method the same way.
"""

from __future__ import annotations

import random
from typing import Any

from frequenz.api.dispatch.v1 import dispatch_pb2 as opb
from google.protobuf.message import DecodeError as OfficialDecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch_client._codec import _bridge as bridge
from dispatch_client._codec import _decode as fast

from . import strategies as s
from . import wire
from .test_codec_decode import (
    KINDS,
    Kind,
    assert_same_outcome,
    canonical,
    edited,
    responses,
    run,
    run_fast,
    run_reference,
)
from .test_codec_encode import official_create_request, official_list_request
from .test_conformance import official_update_request

# Example counts keep the module at about 20 s.
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_MANGLES = st.builds(
    wire.Mangle,
    shuffle=st.booleans(),
    unpack=st.booleans(),
    unknown=st.booleans(),
    pad=st.booleans(),
    widen=st.booleans(),
    duplicate=st.booleans(),
    split=st.booleans(),
    groups=st.booleans(),
    mismatch=st.booleans(),
    oneofs=st.booleans(),
)


@st.composite
def fuzzed(draw: st.DrawFn, message: Any) -> bytes:
    """An official message's bytes, transformed at every level, maybe edited."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    data = bytes(message.SerializeToString())
    data = wire.serialize(wire.parse(data, message.DESCRIPTOR), rng, draw(_MANGLES))
    if draw(st.integers(0, 3)) == 0:
        data = edited(draw, data, most=3)
    return data


@st.composite
def fuzzed_responses(draw: st.DrawFn) -> tuple[Kind, bytes]:
    """A response kind and fuzzed bytes of a drawn official response of that kind."""
    kind = draw(st.sampled_from(KINDS))
    return kind, draw(fuzzed(draw(responses(kind))))


@FUZZ
@given(fuzzed_responses())
def test_both_decoders_read_responses_as_protobuf_does(case: tuple[Kind, bytes]) -> None:
    """Fast and reference reject what upb rejects and read the rest as upb reads it."""
    kind, data = case
    plain = canonical(kind, data)
    fast, reference = run_fast(kind, data), run_reference(kind, data)
    if plain is None:
        assert not fast.ok, f"upb rejects {data.hex()}, fast decoded {fast.value!r}"
        assert not reference.ok, f"upb rejects {data.hex()}, reference decoded it"
        return
    want = run_reference(kind, plain)
    assert_same_outcome(run_fast(kind, plain), want, plain)
    assert_same_outcome(fast, want, data)
    assert_same_outcome(reference, want, data)


# ----------------------------------------------------------------------- requests

_IDS = st.integers(0, s.UINT64_MAX)  # 0: unset, which the decoders reject as an id
_REQUESTS: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "list": (opb.ListMicrogridDispatchesRequest, s.list_requests().map(official_list_request)),
    "create": (
        opb.CreateMicrogridDispatchRequest,
        s.create_requests().map(official_create_request),
    ),
    "update": (
        opb.UpdateMicrogridDispatchRequest,
        s.update_requests().map(official_update_request),
    ),
    "get": (
        opb.GetMicrogridDispatchRequest,
        st.builds(opb.GetMicrogridDispatchRequest, microgrid_id=_IDS, dispatch_id=_IDS),
    ),
    "delete": (
        opb.DeleteMicrogridDispatchRequest,
        st.builds(opb.DeleteMicrogridDispatchRequest, microgrid_id=_IDS, dispatch_id=_IDS),
    ),
    "stream": (
        opb.StreamMicrogridDispatchesRequest,
        st.builds(opb.StreamMicrogridDispatchesRequest, microgrid_id=_IDS),
    ),
}


def _upb(official: Any, data: bytes) -> bytes | None:
    """upb's re-serialization of what it reads from `data`; None if it rejects `data`."""
    try:
        return bytes(official.FromString(data).SerializeToString())
    except OfficialDecodeError:
        return None


@st.composite
def fuzzed_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    """A request kind and fuzzed bytes of a drawn official request of that kind."""
    name = draw(st.sampled_from(sorted(_REQUESTS)))
    return name, draw(fuzzed(draw(_REQUESTS[name][1])))


@FUZZ
@given(fuzzed_requests())
def test_the_reference_reads_requests_as_protobuf_does(case: tuple[str, bytes]) -> None:
    """The server-side request decoders reject what upb rejects and read the rest alike."""
    name, data = case
    decode = getattr(bridge, f"decode_{name}_request")
    plain = _upb(_REQUESTS[name][0], data)
    got = run(decode, data)
    if plain is None:
        assert not got.ok, f"upb rejects {data.hex()}, the reference decoded {got.value!r}"
        return
    assert_same_outcome(got, run(decode, plain), data)


@FUZZ
@given(
    st.builds(opb.DeleteMicrogridDispatchResponse, microgrid_id=_IDS, dispatch_id=_IDS).flatmap(
        fuzzed
    )
)
def test_both_decoders_read_delete_responses_as_protobuf_does(data: bytes) -> None:
    """The delete response (ids only) is read as upb reads it, on both paths."""
    plain = _upb(opb.DeleteMicrogridDispatchResponse, data)
    for decode in (fast.decode_delete_response, bridge.decode_delete_response):
        got = run(decode, data)
        if plain is None:
            assert not got.ok, f"upb rejects {data.hex()}, {decode.__module__} decoded it"
        else:
            assert got.ok
            assert tuple(got.value) == tuple(run(decode, plain).value)
