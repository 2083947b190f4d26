"""
Readable text of write-ahead log records, for C{zkreg log dump}.

A record is a jute C{TxnHeader} followed by the transaction record its C{type} names,
as in ZooKeeper's transaction log (L{zkreg.data.txncodec} encodes and decodes it); this
module prints it the way ZooKeeper's C{TxnLogToolkit} does, one line per record.
"""

from __future__ import annotations

import datetime
from typing import Any

from zkreg.data.txncodec import TXN_CLASSES, decode_txn
from zkreg.proto.consts import OpCode
from zkreg.proto.jute import DecodeError, Record
from zkreg.proto.records import MultiTxn

__all__ = ["describe_record", "describe_txn"]


def _op_name(txn_type: int) -> str:
    try:
        return OpCode(txn_type).name
    except ValueError:
        return f"type{txn_type}"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return "#" + value.hex()
        if text.isprintable():
            return repr(text)
        return "#" + value.hex()
    if isinstance(value, Record):
        return "{" + ", ".join(f"{n}={_show(getattr(value, n))}" for n, _ in value.fields) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return repr(value)


def describe_record(txn_type: int, txn: Any) -> str:
    """@return: a one-line readable form of a txn record (multi ops expanded)."""
    if txn is None:
        return ""
    if isinstance(txn, MultiTxn):
        parts = []
        for op in txn.txns:
            record_class: Any = TXN_CLASSES.get(op.type)
            try:
                inner = record_class.from_bytes(op.data) if record_class else None
            except DecodeError:
                inner = None
            shown = describe_record(op.type, inner) if inner is not None else _show(op.data)
            parts.append(f"{_op_name(op.type)} {shown}")
        return "[" + "; ".join(parts) + "]"
    fields = []
    for name, _ in txn.fields:
        value = getattr(txn, name)
        if name == "acl":
            value = [f"{a.id.scheme}:{a.id.id}:{a.perms:#x}" for a in value or ()]
            fields.append(f"acl=[{', '.join(value)}]")
            continue
        if name in ("ephemeralOwner",):
            fields.append(f"{name}={value:#x}")
            continue
        fields.append(f"{name}={_show(value)}")
    return " ".join(fields)


def describe_txn(zxid: int, payload: bytes) -> str:
    """
    One readable line per log record, in the spirit of ZooKeeper's C{TxnLogToolkit}:
    time, session, cxid, zxid, operation and its fields.  A record that does not
    decode is shown in hex, never skipped.
    """
    try:
        header, txn = decode_txn(payload)
    except DecodeError as error:
        return f"zxid {zxid:#x} undecodable txn ({error}): #{payload.hex()}"
    when = datetime.datetime.fromtimestamp(header.time / 1000, datetime.UTC)
    stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    zxid_note = "" if header.zxid == zxid else f" (header zxid {header.zxid:#x})"
    return (
        f"{stamp} session {header.clientId:#x} cxid {header.cxid:#x} zxid {zxid:#x}"
        f"{zxid_note} {_op_name(header.type)} {describe_record(header.type, txn)}"
    ).rstrip()
