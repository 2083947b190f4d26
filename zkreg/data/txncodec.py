"""
Transactions as bytes: what the durable log stores and what a multi txn nests.

A log record is ZooKeeper's layout: the L{TxnHeader} then the txn record, whose class
follows from the header's C{type}.  Pure functions, no I/O.
"""

from __future__ import annotations

import struct
from typing import Any

from zkreg.data import codes
from zkreg.data.acl import OPEN_ACL
from zkreg.data.messages import WriteStamp
from zkreg.proto.jute import Record
from zkreg.proto.records import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    TxnHeader,
)

#: The txn record class of each txn type (the TxnHeader's or a multi op's C{type}).
TXN_CLASSES: dict[int, type[Record]] = {
    codes.OP_CREATE: CreateTxn,
    codes.OP_CREATE2: CreateTxn,
    codes.OP_CREATE_TTL: CreateTTLTxn,
    codes.OP_CREATE_CONTAINER: CreateContainerTxn,
    codes.OP_DELETE: DeleteTxn,
    codes.OP_DELETE_CONTAINER: DeleteTxn,
    codes.OP_SET_DATA: SetDataTxn,
    codes.OP_RECONFIG: SetDataTxn,
    codes.OP_SET_ACL: SetACLTxn,
    codes.OP_CHECK: CheckVersionTxn,
    codes.OP_CREATE_SESSION: CreateSessionTxn,
    codes.OP_CLOSE_SESSION: CloseSessionTxn,
    codes.OP_ERROR: ErrorTxn,
    codes.OP_MULTI: MultiTxn,
}


#: The jute encoding of the open ACL vector (L{OPEN_ACL}), which nearly every create
#: carries: encoded once instead of entry by entry per create.
_OPEN_ACL_BYTES = CreateTxn("", None, list(OPEN_ACL), False, 0).serialize()[8:-5]
_INT = struct.Struct(">i")
_BOOL_INT = struct.Struct(">?i")


def _serialize_txn_into(out: bytearray, txn: Any) -> None:
    """
    C{txn.serialize_into(out)}, with a L{CreateTxn} of the open ACL (the shared
    L{OPEN_ACL} tuple, as prep gives it) written from the ACL's encoding done once.
    """
    if txn.__class__ is not CreateTxn or txn.acl is not OPEN_ACL:
        txn.serialize_into(out)
        return
    path = txn.path.encode("utf-8")
    data = txn.data
    out += _INT.pack(len(path))
    out += path
    if data is None:
        out += _INT.pack(-1)
    else:
        out += _INT.pack(len(data))
        out += data
    out += _OPEN_ACL_BYTES
    out += _BOOL_INT.pack(txn.ephemeral, txn.parentCVersion)


def encode_txn(hdr: TxnHeader, txn: Any) -> bytes:
    """
    @return: the log record of one transaction: header, then the txn (if any).
    """
    out = bytearray()
    hdr.serialize_into(out)
    if txn is not None:
        _serialize_txn_into(out, txn)
    return bytes(out)


def decode_txn(record: bytes) -> tuple[TxnHeader, Any]:
    """
    Inverse of L{encode_txn}.

    @raise zkreg.proto.jute.DecodeError: for bytes that are not such a record.
    """
    hdr, offset = TxnHeader.deserialize(record)
    txn_class = TXN_CLASSES.get(hdr.type)
    if txn_class is None or offset == len(record):
        # A closeSession logged without its CloseSessionTxn (ZooKeeper before 3.6).
        return hdr, None
    txn, offset = txn_class.deserialize(record, offset)
    return hdr, txn


#: Marks the optional trailer of a log record: the L{WriteStamp} of the write and its
#: request opcode (exactly-once writes; see L{zkreg.data.dedup}).  It follows the txn
#: record exactly where that ends, so it cannot be confused with the txn's bytes.
_STAMP_MAGIC = b"\xffZKS"
_STAMP = struct.Struct(">4sqqqi")


def encode_stamped_txn(hdr: TxnHeader, txn: Any, stamp: WriteStamp, opcode: int) -> bytes:
    """
    L{encode_txn} with a trailer recording the write's stamp and request opcode, so
    that replaying the log rebuilds the replies a resubmission must get.
    """
    out = bytearray()
    hdr.serialize_into(out)
    if txn is not None:
        _serialize_txn_into(out, txn)
    out += _STAMP.pack(_STAMP_MAGIC, stamp.origin, stamp.seq, stamp.acked, opcode)
    return bytes(out)


def decode_logged_txn(record: bytes) -> tuple[TxnHeader, Any, WriteStamp | None, int]:
    """
    Inverse of L{encode_stamped_txn} (and of L{encode_txn}: no stamp).

    @return: C{(hdr, txn, stamp or None, request opcode or 0)}.
    @raise zkreg.proto.jute.DecodeError: for bytes that are not such a record.
    """
    hdr, offset = TxnHeader.deserialize(record)
    txn_class = TXN_CLASSES.get(hdr.type)
    txn = None
    if txn_class is not None and offset < len(record) and not _stamp_at(record, offset):
        txn, offset = txn_class.deserialize(record, offset)
    if _stamp_at(record, offset):
        _, origin, seq, acked, opcode = _STAMP.unpack_from(record, offset)
        return hdr, txn, WriteStamp(origin, seq, acked), opcode
    return hdr, txn, None, 0


def _stamp_at(record: bytes, offset: int) -> bool:
    return len(record) - offset == _STAMP.size and record[offset : offset + 4] == _STAMP_MAGIC


def decode_sub_txn(txn_type: int, data: bytes) -> Any:
    """@return: the txn record of one op of a L{MultiTxn}."""
    return TXN_CLASSES[txn_type].from_bytes(data)
