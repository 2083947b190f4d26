"""The hot-path int constants agree with zkreg.proto.consts; txns survive the log codec."""

from __future__ import annotations

from datahelpers import Harness
from hypothesis import given
from hypothesis import strategies as st

from zkreg.data import codes
from zkreg.data.acl import OPEN_ACL
from zkreg.data.messages import WriteStamp
from zkreg.data.txncodec import decode_logged_txn, decode_txn, encode_stamped_txn, encode_txn
from zkreg.proto.consts import CreateMode, Err, EventType, OpCode, Perms
from zkreg.proto.records import (
    CreateRequest,
    CreateTTLRequest,
    CreateTxn,
    DeleteRequest,
    SetDataRequest,
    TxnHeader,
)


def test_constants_match_the_protocol_enums():
    for name, value in vars(codes).items():
        if name.startswith("OP_"):
            member = {
                "OP_GET_DATA": "getData",
                "OP_SET_DATA": "setData",
                "OP_GET_ACL": "getACL",
                "OP_SET_ACL": "setACL",
                "OP_GET_CHILDREN": "getChildren",
                "OP_GET_CHILDREN2": "getChildren2",
                "OP_CREATE2": "create2",
                "OP_CREATE_CONTAINER": "createContainer",
                "OP_DELETE_CONTAINER": "deleteContainer",
                "OP_CREATE_TTL": "createTTL",
                "OP_MULTI_READ": "multiRead",
                "OP_GET_EPHEMERALS": "getEphemerals",
                "OP_GET_ALL_CHILDREN_NUMBER": "getAllChildrenNumber",
                "OP_CREATE_SESSION": "createSession",
                "OP_CLOSE_SESSION": "closeSession",
            }.get(name, name[3:].lower())
            assert OpCode[member] == value, name
    errors = {
        "OK": "OK",
        "SYSTEM_ERROR": "SYSTEMERROR",
        "RUNTIME_INCONSISTENCY": "RUNTIMEINCONSISTENCY",
        "MARSHALLING_ERROR": "MARSHALLINGERROR",
        "UNIMPLEMENTED": "UNIMPLEMENTED",
        "BAD_ARGUMENTS": "BADARGUMENTS",
        "UNKNOWN_SESSION": "UNKNOWNSESSION",
        "NO_NODE": "NONODE",
        "NO_AUTH": "NOAUTH",
        "BAD_VERSION": "BADVERSION",
        "NO_CHILDREN_FOR_EPHEMERALS": "NOCHILDRENFOREPHEMERALS",
        "NODE_EXISTS": "NODEEXISTS",
        "NOT_EMPTY": "NOTEMPTY",
        "SESSION_EXPIRED": "SESSIONEXPIRED",
        "INVALID_ACL": "INVALIDACL",
        "AUTH_FAILED": "AUTHFAILED",
        "RECONFIG_DISABLED": "RECONFIGDISABLED",
    }
    for ours, theirs in errors.items():
        assert getattr(codes, ours) == Err[theirs], ours
    assert codes.EVENT_NODE_CREATED == EventType.NodeCreated
    assert codes.EVENT_NODE_DELETED == EventType.NodeDeleted
    assert codes.EVENT_NODE_DATA_CHANGED == EventType.NodeDataChanged
    assert codes.EVENT_NODE_CHILDREN_CHANGED == EventType.NodeChildrenChanged
    for name in ("READ", "WRITE", "CREATE", "DELETE", "ADMIN", "ALL"):
        assert getattr(codes, "PERM_" + name) == Perms[name]
    for mode in CreateMode:
        assert getattr(codes, "FLAG_" + mode.name) == mode


def test_every_txn_kind_round_trips_through_the_log_codec():
    h = Harness(extended_types=True)
    h.create_session(5)
    h.create("/a", b"x")
    h.create("/a/e", flags=codes.FLAG_EPHEMERAL, session_id=5)
    h.run(codes.OP_CREATE_CONTAINER, CreateRequest("/c", b"", h.log[1][1].acl, 4))
    h.run(
        codes.OP_CREATE_TTL,
        CreateTTLRequest("/t", None, h.log[1][1].acl, codes.FLAG_PERSISTENT_WITH_TTL, 10),
    )
    h.set_data("/a", b"y")
    h.set_acl("/a", h.log[1][1].acl)
    h.check("/a", 1)
    h.delete("/nope")
    h.create("/d", opcode=codes.OP_CREATE)
    h.delete("/d")
    h.multi([(codes.OP_SET_DATA, SetDataRequest("/a", b"z", -1))])
    h.multi([(codes.OP_DELETE, DeleteRequest("/nope", -1))])
    h.close_session(5)
    h.apply(*h.prep_only(codes.OP_DELETE_CONTAINER, "/c"))
    kinds = set()
    for hdr, txn in h.log:
        decoded_hdr, decoded_txn = decode_txn(encode_txn(hdr, txn))
        assert decoded_hdr == hdr
        assert decoded_txn == txn
        kinds.add(hdr.type)
    assert len(kinds) == 13


def test_close_session_without_txn_decodes_to_none():
    hdr = TxnHeader(5, 0, 9, 0, codes.OP_CLOSE_SESSION)
    assert decode_txn(encode_txn(hdr, None)) == (hdr, None)


@given(
    st.text(max_size=20),
    st.one_of(st.none(), st.binary(max_size=40)),
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
)
def test_create_of_the_open_acl_encodes_as_any_create(path, data, ephemeral, cversion):
    """A create carrying the shared open ACL tuple (written from its encoding done
    once) gives the same log record as the same create with the ACL as a list, and
    decodes back to it, stamped or not."""
    hdr = TxnHeader(0x1234, 7, 0x500000001, 1_700_000_000_000, codes.OP_CREATE)
    shared = CreateTxn(path, data, OPEN_ACL, ephemeral, cversion)
    listed = CreateTxn(path, data, list(OPEN_ACL), ephemeral, cversion)
    assert encode_txn(hdr, shared) == hdr.serialize() + listed.serialize()
    assert decode_txn(encode_txn(hdr, shared)) == (hdr, listed)
    stamp = WriteStamp(3, 4, 2)
    stamped = encode_stamped_txn(hdr, shared, stamp, codes.OP_CREATE2)
    assert stamped == encode_stamped_txn(hdr, listed, stamp, codes.OP_CREATE2)
    assert decode_logged_txn(stamped) == (hdr, listed, stamp, codes.OP_CREATE2)
