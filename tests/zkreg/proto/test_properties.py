"""
Properties over every record class: decoding inverts encoding for any field values,
and decoding any bytes at all either yields a record or raises DecodeError.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proto_strategies import records_of, sample_value

from zkreg.proto import multi
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode
from zkreg.proto.jute import DecodeError, Record

ALL = sorted(R.ALL_RECORDS.items())
IDS = [name for name, _ in ALL]
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize("name, cls", ALL, ids=IDS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_decode_inverts_encode(name: str, cls: type[Record], data: st.DataObject) -> None:
    """For any field values: decode(encode(r)) == r, consuming exactly the encoding."""
    record = data.draw(records_of(cls))
    encoded = record.serialize()
    decoded, end = cls.deserialize(encoded)
    assert decoded == record
    assert end == len(encoded)
    assert decoded.serialize() == encoded


@pytest.mark.parametrize("name, cls", ALL, ids=IDS)
@PROPERTY_SETTINGS
@given(payload=st.binary(max_size=96))
def test_arbitrary_bytes_decode_or_raise_decode_error(
    name: str, cls: type[Record], payload: bytes
) -> None:
    """Garbage never leaks IndexError, struct.error or UnicodeDecodeError; what decodes is stable."""
    try:
        record, end = cls.deserialize(payload)
    except DecodeError:
        return
    assert 0 <= end <= len(payload)
    assert cls.from_bytes(record.serialize()) == record


@pytest.mark.parametrize("name, cls", ALL, ids=IDS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_corrupted_encodings_decode_or_raise_decode_error(
    name: str, cls: type[Record], data: st.DataObject
) -> None:
    """Flipping bytes of a valid encoding (lengths included) only ever gives DecodeError."""
    encoded = bytearray(sample_value(cls).serialize())
    if not encoded:
        return
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    try:
        cls.deserialize(bytes(encoded))
    except DecodeError:
        pass


MULTI_OPS = st.one_of(
    st.tuples(st.just(OpCode.create), records_of(R.CreateRequest)),
    st.tuples(st.just(OpCode.create2), records_of(R.CreateRequest)),
    st.tuples(st.just(OpCode.createTTL), records_of(R.CreateTTLRequest)),
    st.tuples(st.just(OpCode.delete), records_of(R.DeleteRequest)),
    st.tuples(st.just(OpCode.setData), records_of(R.SetDataRequest)),
    st.tuples(st.just(OpCode.check), records_of(R.CheckVersionRequest)),
    st.tuples(st.just(OpCode.getData), records_of(R.GetDataRequest)),
    st.tuples(st.just(OpCode.getChildren), records_of(R.GetChildrenRequest)),
)
MULTI_RESULTS = st.one_of(
    st.tuples(st.just(OpCode.create), st.just(0), records_of(R.CreateResponse)),
    st.tuples(st.just(OpCode.create2), st.just(0), records_of(R.Create2Response)),
    st.tuples(st.just(OpCode.setData), st.just(0), records_of(R.SetDataResponse)),
    st.tuples(st.sampled_from([OpCode.delete, OpCode.check]), st.just(0), st.none()),
    st.tuples(st.just(OpCode.getData), st.just(0), records_of(R.GetDataResponse)),
    st.tuples(st.just(OpCode.getChildren), st.just(0), records_of(R.GetChildrenResponse)),
    st.integers(-130, 0).map(lambda err: (OpCode.error, err, R.ErrorResponse(err))),
)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(MULTI_OPS, max_size=5))
def test_multi_request_round_trip(ops: list) -> None:
    encoded = multi.encode_request(ops)
    assert multi.decode_request(encoded) == (ops, len(encoded))


@settings(max_examples=150, deadline=None)
@given(results=st.lists(MULTI_RESULTS, max_size=5))
def test_multi_response_round_trip(results: list) -> None:
    encoded = multi.encode_response(results)
    assert multi.decode_response(encoded) == (results, len(encoded))


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=120))
def test_multi_decoders_only_raise_decode_error(payload: bytes) -> None:
    for decode in (multi.decode_request, multi.decode_response):
        try:
            decode(payload)
        except DecodeError:
            pass
