"""
The records of zookeeper.jute, the constants, the opcode table and the multi bodies.
"""

from __future__ import annotations

import struct

import pytest
from proto_strategies import sample_value

from zkreg.proto import consts, multi
from zkreg.proto import records as R
from zkreg.proto.consts import Err, OpCode
from zkreg.proto.jute import BUFFER, USTRING, DecodeError, OptionalType, Record, VectorType
from zkreg.proto.ops import MULTI, OPS

ALL = sorted(R.ALL_RECORDS.items())

#: Every class the client protocol and the transaction log use, by jute name.
EXPECTED_NAMES = """
Id ACL Stat StatPersisted ClientInfo ConnectRequest ConnectResponse SetWatches SetWatches2
RequestHeader MultiHeader AuthPacket ReplyHeader GetDataRequest SetDataRequest ReconfigRequest
SetDataResponse GetSASLRequest SetSASLRequest SetSASLResponse CreateRequest CreateTTLRequest
DeleteRequest GetChildrenRequest GetAllChildrenNumberRequest GetChildren2Request
CheckVersionRequest GetMaxChildrenRequest GetMaxChildrenResponse SetMaxChildrenRequest
SyncRequest SyncResponse GetACLRequest SetACLRequest SetACLResponse AddWatchRequest
WatcherEvent ErrorResponse CreateResponse Create2Response ExistsRequest ExistsResponse
GetDataResponse GetChildrenResponse GetAllChildrenNumberResponse GetChildren2Response
GetACLResponse CheckWatchesRequest RemoveWatchesRequest GetEphemeralsRequest
GetEphemeralsResponse WhoAmIResponse TxnDigest TxnHeader CreateTxnV0 CreateTxn CreateTTLTxn
CreateContainerTxn DeleteTxn SetDataTxn CheckVersionTxn SetACLTxn SetMaxChildrenTxn
CreateSessionTxn CloseSessionTxn ErrorTxn Txn MultiTxn
""".split()


def test_every_jute_class_is_defined_and_nothing_else() -> None:
    assert sorted(R.ALL_RECORDS) == sorted(EXPECTED_NAMES)


@pytest.mark.parametrize("name, cls", ALL, ids=[name for name, _ in ALL])
def test_round_trip_every_record(name: str, cls: type[Record]) -> None:
    """Every record encodes, decodes to an equal record, and re-encodes identically."""
    record = sample_value(cls)
    encoded = record.serialize()
    decoded, end = cls.deserialize(encoded)
    assert decoded == record
    assert end == len(encoded)
    assert decoded.serialize() == encoded
    shifted, end = cls.deserialize(memoryview(b"\xaa" * 3 + encoded + b"\xbb"), 3)
    assert shifted == record and end == 3 + len(encoded)


@pytest.mark.parametrize("name, cls", ALL, ids=[name for name, _ in ALL])
def test_round_trip_every_record_with_nulls(name: str, cls: type[Record]) -> None:
    """Null strings, buffers and vectors survive in every record that has them."""
    values = {}
    for index, (field, ftype) in enumerate(cls.fields):
        nullable = ftype in (USTRING, BUFFER) or isinstance(ftype, VectorType | OptionalType)
        values[field] = None if nullable else sample_value(ftype, index)
    record = cls(**values)
    assert cls.from_bytes(record.serialize()) == record


@pytest.mark.parametrize("name, cls", ALL, ids=[name for name, _ in ALL])
def test_every_truncation_is_a_decode_error(name: str, cls: type[Record]) -> None:
    """Cutting a record's encoding anywhere makes decoding fail cleanly."""
    encoded = sample_value(cls).serialize()
    optional_tail = isinstance(cls.fields[-1][1], OptionalType) if cls.fields else False
    for cut in range(len(encoded) - (1 if optional_tail else 0)):
        with pytest.raises(DecodeError):
            cls.from_bytes(encoded[:cut])


def test_stat_layout() -> None:
    """Stat: 4 longs, 3 ints, a long, 2 ints, a long: 68 bytes, in jute order."""
    stat = R.Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    assert stat.serialize() == struct.pack(">qqqqiiiqiiq", *range(1, 12))
    assert len(R.StatPersisted(1, 2, 3, 4, 5, 6, 7, 8, 9).serialize()) == 60


def test_headers_layout() -> None:
    assert R.RequestHeader(7, OpCode.getData).serialize() == bytes.fromhex("0000000700000004")
    assert R.ReplyHeader(-1, -1, 0).serialize() == bytes.fromhex("ffffffff" + "ff" * 8 + "00" * 4)
    assert R.MultiHeader(-1, True, -1).serialize() == bytes.fromhex("ffffffff01ffffffff")


def test_create_request_layout() -> None:
    request = R.CreateRequest(
        "/a", b"xy", list(consts.OPEN_ACL_UNSAFE), consts.CreateMode.EPHEMERAL
    )
    assert request.serialize() == bytes.fromhex(
        "000000022f61"
        "000000027879"
        "00000001" + "0000001f" + "00000005776f726c64" + "00000006616e796f6e65"
        "00000001"
    )


# -- the optional readOnly byte -----------------------------------------------------------


def test_connect_request_without_read_only_byte() -> None:
    """A pre-3.4 handshake ends after passwd: decoded readOnly is None, re-encoded the same."""
    old = struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + bytes(16)
    request = R.ConnectRequest.from_bytes(old)
    assert request.readOnly is None
    assert request.passwd == bytes(16)
    assert request.serialize() == old


def test_connect_request_with_read_only_byte() -> None:
    new = struct.pack(">iqiq", 0, 5, 30000, 9) + struct.pack(">i", 16) + bytes(16) + b"\x01"
    request = R.ConnectRequest.from_bytes(new)
    assert request == R.ConnectRequest(0, 5, 30000, 9, bytes(16), True)
    assert request.serialize() == new


def test_connect_response_read_only_both_ways() -> None:
    """The server answers in the client's form: with the byte, or without it."""
    with_byte = R.ConnectResponse(0, 4000, 77, b"p" * 16, False)
    without = R.ConnectResponse(0, 4000, 77, b"p" * 16, None)
    assert with_byte.serialize() == without.serialize() + b"\x00"
    assert R.ConnectResponse.from_bytes(with_byte.serialize()).readOnly is False
    assert R.ConnectResponse.from_bytes(without.serialize()).readOnly is None
    assert R.ConnectResponse(0, 4000, 77, b"p" * 16) == without


# -- constants ----------------------------------------------------------------------------


def test_opcodes_match_zoodefs() -> None:
    expected = {
        "notification": 0, "create": 1, "delete": 2, "exists": 3, "getData": 4,
        "setData": 5, "getACL": 6, "setACL": 7, "getChildren": 8, "sync": 9, "ping": 11,
        "getChildren2": 12, "check": 13, "multi": 14, "create2": 15, "reconfig": 16,
        "checkWatches": 17, "removeWatches": 18, "createContainer": 19,
        "deleteContainer": 20, "createTTL": 21, "multiRead": 22, "auth": 100,
        "setWatches": 101, "sasl": 102, "getEphemerals": 103, "getAllChildrenNumber": 104,
        "setWatches2": 105, "addWatch": 106, "whoAmI": 107, "createSession": -10,
        "closeSession": -11, "error": -1,
    }  # fmt: skip
    assert {op.name: op.value for op in OpCode} == expected


def test_error_codes_match_keeper_exception() -> None:
    assert Err.OK == 0 and Err.SYSTEMERROR == -1 and Err.CONNECTIONLOSS == -4
    assert Err.NONODE == -101 and Err.NODEEXISTS == -110 and Err.NOTEMPTY == -111
    assert Err.BADVERSION == -103 and Err.SESSIONEXPIRED == -112 and Err.NOAUTH == -102
    assert Err.NOWATCHER == -121 and Err.QUOTAEXCEEDED == -125 and Err.THROTTLEDOP == -127
    assert len(Err) == 32


def test_events_states_modes_perms() -> None:
    assert consts.EventType.NodeChildrenChanged == 4 and consts.EventType.NONE == -1
    assert consts.EventType.PersistentWatchRemoved == 7
    assert consts.KeeperState.SyncConnected == 3 and consts.KeeperState.Expired == -112
    assert consts.CreateMode.CONTAINER == 4 and consts.CreateMode.PERSISTENT_WITH_TTL == 5
    assert consts.CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL == 6
    assert consts.CreateMode(3).is_ephemeral and consts.CreateMode(3).is_sequential
    assert consts.CreateMode(6).is_ttl and not consts.CreateMode(4).is_ephemeral
    assert consts.Perms.ALL == 31 == sum(p for p in (1, 2, 4, 8, 16))
    assert consts.WatcherType.Any == 3 and consts.AddWatchMode.PERSISTENT_RECURSIVE == 1
    assert (consts.Xid.NOTIFICATION, consts.Xid.PING, consts.Xid.AUTH) == (-1, -2, -4)
    assert consts.Xid.SET_WATCHES == -8


def test_enum_members_are_plain_ints_on_the_wire() -> None:
    """IntEnum members encode like ints and decoded ints compare equal to them."""
    header = R.RequestHeader(1, OpCode.create)
    assert header.serialize() == R.RequestHeader(1, 1).serialize()
    assert R.RequestHeader.from_bytes(header.serialize()).type == OpCode.create


def test_well_known_acls() -> None:
    assert consts.ANYONE_ID_UNSAFE == R.Id("world", "anyone")
    assert consts.AUTH_IDS == R.Id("auth", "")
    assert consts.OPEN_ACL_UNSAFE == (R.ACL(31, R.Id("world", "anyone")),)
    assert consts.CREATOR_ALL_ACL == (R.ACL(31, R.Id("auth", "")),)
    assert consts.READ_ACL_UNSAFE == (R.ACL(1, R.Id("world", "anyone")),)
    request = R.CreateRequest("/a", b"", list(consts.OPEN_ACL_UNSAFE), 0)
    assert request == R.CreateRequest("/a", b"", consts.OPEN_ACL_UNSAFE, 0)


# -- opcode table ---------------------------------------------------------------------------


def test_ops_table_covers_every_client_opcode() -> None:
    """Every opcode but the internal ones has an entry."""
    internal = {OpCode.notification, OpCode.error, OpCode.createSession}
    assert set(OPS) == set(OpCode) - internal


def test_ops_table_entries_are_records_or_multi() -> None:
    for opcode, spec in OPS.items():
        for body in (spec.request, spec.response):
            assert body is None or body is MULTI or issubclass(body, Record), opcode


def test_ops_table_known_pairs() -> None:
    assert OPS[OpCode.create2].response is R.Create2Response
    assert OPS[OpCode.createTTL].request is R.CreateTTLRequest
    assert OPS[OpCode.addWatch].response is R.ErrorResponse
    assert OPS[OpCode.whoAmI].request is None
    assert OPS[OpCode.multiRead].response is MULTI
    assert OPS[OpCode.delete].response is None
    assert OPS[OpCode.getData].write is False and OPS[OpCode.setData].write is True


# -- multi bodies ---------------------------------------------------------------------------

ACL = list(consts.OPEN_ACL_UNSAFE)


def test_multi_request_bytes() -> None:
    """Each op: MultiHeader(type, false, -1) and its record; then (-1, true, -1)."""
    ops = [
        (OpCode.delete, R.DeleteRequest("/a", 3)),
        (OpCode.check, R.CheckVersionRequest("/b", 1)),
    ]
    encoded = multi.encode_request(ops)
    assert encoded == (
        R.MultiHeader(2, False, -1).serialize()
        + R.DeleteRequest("/a", 3).serialize()
        + R.MultiHeader(13, False, -1).serialize()
        + R.CheckVersionRequest("/b", 1).serialize()
        + bytes.fromhex("ffffffff01ffffffff")
    )
    decoded, end = multi.decode_request(encoded)
    assert decoded == ops and end == len(encoded)


def test_multi_request_every_op_kind_round_trips() -> None:
    ops = [
        (OpCode.create, R.CreateRequest("/c", b"1", ACL, 0)),
        (OpCode.create2, R.CreateRequest("/c2", None, ACL, 2)),
        (OpCode.createContainer, R.CreateRequest("/box", b"", ACL, 4)),
        (OpCode.createTTL, R.CreateTTLRequest("/t", b"", ACL, 5, 1000)),
        (OpCode.delete, R.DeleteRequest("/c", -1)),
        (OpCode.setData, R.SetDataRequest("/c", b"2", 0)),
        (OpCode.check, R.CheckVersionRequest("/c", 1)),
    ]
    decoded, _ = multi.decode_request(b"xx" + multi.encode_request(ops), 2)
    assert decoded == ops
    reads = [
        (OpCode.getData, R.GetDataRequest("/a", False)),
        (OpCode.getChildren, R.GetChildrenRequest("/", False)),
    ]
    assert multi.decode_request(multi.encode_request(reads))[0] == reads


def test_multi_response_bytes_and_error_results() -> None:
    """Errors are a type -1 header carrying err, then ErrorResponse(err); delete has no body."""
    stat = sample_value(R.Stat)
    results = [
        (OpCode.create, 0, R.CreateResponse("/c")),
        (OpCode.create2, 0, R.Create2Response("/d", stat)),
        (OpCode.setData, 0, R.SetDataResponse(stat)),
        (OpCode.delete, 0, None),
        (OpCode.check, 0, None),
        (OpCode.error, Err.NONODE, R.ErrorResponse(Err.NONODE)),
        (OpCode.getData, 0, R.GetDataResponse(b"v", stat)),
        (OpCode.getChildren, 0, R.GetChildrenResponse(["x"])),
    ]
    encoded = multi.encode_response(results)
    assert R.MultiHeader(-1, False, -101).serialize() + R.ErrorResponse(-101).serialize() in encoded
    decoded, end = multi.decode_response(encoded)
    assert decoded == results and end == len(encoded)


def test_multi_response_error_without_record_is_filled_in() -> None:
    assert multi.encode_response([(OpCode.error, -101, None)]) == multi.encode_response(
        [(OpCode.error, -101, R.ErrorResponse(-101))]
    )


def test_empty_multi_is_just_the_terminator() -> None:
    assert (
        multi.encode_request([]) == multi.encode_response([]) == bytes.fromhex("ffffffff01ffffffff")
    )
    assert multi.decode_request(bytes.fromhex("ffffffff01ffffffff")) == ([], 9)


@pytest.mark.parametrize(
    "ops",
    [
        [(OpCode.sync, R.SyncRequest("/"))],
        [(OpCode.create, R.DeleteRequest("/a", 1))],
        [(OpCode.createTTL, R.CreateRequest("/a", b"", ACL, 5))],
    ],
)
def test_multi_request_encode_refuses_wrong_ops(ops: list) -> None:
    with pytest.raises(ValueError):
        multi.encode_request(ops)


@pytest.mark.parametrize(
    "results",
    [
        [(OpCode.createTTL, 0, R.Create2Response("/a", sample_value(R.Stat)))],
        [(OpCode.delete, 0, R.CreateResponse("/a"))],
        [(OpCode.setData, 0, None)],
    ],
)
def test_multi_response_encode_refuses_wrong_results(results: list) -> None:
    with pytest.raises(ValueError):
        multi.encode_response(results)


def test_multi_decode_refuses_unknown_types_and_truncation() -> None:
    bad_op = R.MultiHeader(OpCode.sync, False, -1).serialize() + R.SyncRequest("/").serialize()
    with pytest.raises(DecodeError, match="invalid op type 9"):
        multi.decode_request(bad_op)
    with pytest.raises(DecodeError, match="invalid result type 9"):
        multi.decode_response(R.MultiHeader(9, False, 0).serialize())
    whole = multi.encode_request([(OpCode.delete, R.DeleteRequest("/a", 1))])
    for cut in range(len(whole)):
        with pytest.raises(DecodeError):
            multi.decode_request(whole[:cut])
