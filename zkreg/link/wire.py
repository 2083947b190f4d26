"""
The messages of the TCP data link, as jute records.

A frame is a 4-byte big-endian length, then one byte naming the message, then the
message record.  Request and response bodies travel as the bytes the ZooKeeper client
protocol uses for them (L{zkreg.proto.ops.OPS}, L{zkreg.proto.multi}); transactions
as the bytes the log stores (L{zkreg.data.txncodec}).  Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from zkreg.proto import multi
from zkreg.proto.consts import OpCode
from zkreg.proto.jute import BOOLEAN, BUFFER, INT, LONG, USTRING, Record, vector
from zkreg.proto.ops import MULTI, OPS
from zkreg.proto.records import ACL, Id


class Hello(Record):
    """
    Client -> server, first: bring my replica up to date from C{lastZxid} (-1: I have
    none), then send every commit.  C{name} says who the session server is (logs,
    stats); C{authSchemes} the optional ACL schemes it knows (C{sasl}, C{x509}), which
    decide whether its clients' ACLs naming them are valid.
    """

    fields = (
        ("protocolVersion", INT),
        ("lastZxid", LONG),
        ("name", USTRING),
        ("authSchemes", vector(USTRING)),
    )


#: L{SyncStart} modes.
SYNC_DIFF = 0
SYNC_SNAPSHOT = 1


class SyncStart(Record):
    """
    Server -> client, the answer to Hello.  C{SYNC_DIFF}: the commits after C{zxid}
    follow (the client's replica stays); C{SYNC_SNAPSHOT}: L{SnapChunk}s of a tree at
    C{zxid} follow, then L{SnapEnd}, then the commits after it.
    """

    fields = (("mode", INT), ("zxid", LONG))


class SnapNode(Record):
    """Server -> client: one node of the tree, parents before children."""

    fields = (
        ("path", USTRING),
        ("data", BUFFER),
        ("acl", vector(ACL)),
        ("czxid", LONG),
        ("mzxid", LONG),
        ("ctime", LONG),
        ("mtime", LONG),
        ("version", INT),
        ("cversion", INT),
        ("aversion", INT),
        ("ephemeralOwner", LONG),
        ("pzxid", LONG),
    )


class SnapChunk(Record):
    """Server -> client: consecutive nodes of the snapshot, parents before children."""

    fields = (("nodes", vector(SnapNode)),)


class SessionEntry(Record):
    fields = (("sessionId", LONG), ("timeOut", INT))


class SnapEnd(Record):
    """Server -> client: the snapshot is complete as of C{lastZxid}."""

    fields = (
        ("lastZxid", LONG),
        ("extendedTypes", BOOLEAN),
        ("sessions", vector(SessionEntry)),
    )


class Event(Record):
    fields = (("type", INT), ("path", USTRING))


class CommitMsg(Record):
    """Server -> client: one applied transaction (L{zkreg.data.messages.Commit})."""

    fields = (
        ("zxid", LONG),
        ("sessionId", LONG),
        ("cxid", INT),
        ("txnType", INT),
        ("time", LONG),
        ("txn", BUFFER),
        ("events", vector(Event)),
        ("closedSession", LONG),
    )


class Submit(Record):
    """
    Client -> server: a write, sync or read (L{zkreg.data.messages.Request}); a write
    has its L{zkreg.data.messages.WriteStamp} in C{origin}, C{seq} (0: none) and
    C{acked}.
    """

    fields = (
        ("tag", INT),
        ("sessionId", LONG),
        ("cxid", INT),
        ("opcode", INT),
        ("auth", vector(Id)),
        ("body", BUFFER),
        ("origin", LONG),
        ("seq", LONG),
        ("acked", LONG),
    )


class Result(Record):
    """Server -> client: the L{zkreg.data.messages.Outcome} of a Submit or CloseSession."""

    fields = (
        ("tag", INT),
        ("failed", BOOLEAN),
        ("zxid", LONG),
        ("err", INT),
        ("body", BUFFER),
    )


class CreateSession(Record):
    fields = (("tag", INT), ("timeOut", INT))


class Revalidate(Record):
    fields = (("tag", INT), ("sessionId", LONG), ("passwd", BUFFER), ("timeOut", INT))


class Grant(Record):
    """Server -> client: a L{zkreg.data.messages.SessionGrant}, or none (C{present})."""

    fields = (
        ("tag", INT),
        ("present", BOOLEAN),
        ("sessionId", LONG),
        ("passwd", BUFFER),
        ("timeOut", INT),
    )


class Touch(Record):
    """
    Client -> server: these sessions are alive.  Sent at least every beat, empty if
    need be: a session server that stops sending is dropped (Nacos Distro's verify).
    """

    fields = (("sessionIds", vector(LONG)),)


class Beat(Record):
    """
    Server -> client, every beat: I am alive, and applied up to C{lastZxid}.  Also
    client -> server from a session process of C{--session-processes}: my replica
    has applied up to C{lastZxid} (see C{TCPDataLink.acknowledge_applied}).
    """

    fields = (("lastZxid", LONG),)


class CloseSession(Record):
    fields = (("tag", INT), ("sessionId", LONG))


#: Message kinds, the byte after the frame length.
KINDS: dict[int, type[Record]] = {
    1: Hello,
    2: SnapNode,
    3: SnapEnd,
    4: CommitMsg,
    5: Submit,
    6: Result,
    7: CreateSession,
    8: Grant,
    9: Revalidate,
    10: Touch,
    11: CloseSession,
    12: SyncStart,
    13: SnapChunk,
    14: Beat,
}
_KIND_OF = {record_class: kind for kind, record_class in KINDS.items()}

#: Version of this protocol, sent in Hello (2: resumable sync, stamps, beats; 3: the
#: session server's ACL schemes).
PROTOCOL_VERSION = 3


def encode_frame(message: Record) -> bytes:
    """@return: the whole frame: the 4-byte length, then L{encode_message}."""
    body = encode_message(message)
    return len(body).to_bytes(4, "big") + body


def encode_message(message: Record) -> bytes:
    """@return: the kind byte and the record (the frame without its length)."""
    out = bytearray((_KIND_OF[message.__class__],))
    message.serialize_into(out)
    return bytes(out)


def decode_message(frame: bytes) -> Any:
    """
    Inverse of L{encode_message}.

    @raise zkreg.proto.jute.DecodeError: for an unknown kind or a malformed record.
    """
    from zkreg.proto.jute import DecodeError

    if not frame:
        raise DecodeError("empty frame")
    record_class = KINDS.get(frame[0])
    if record_class is None:
        raise DecodeError(f"unknown message kind {frame[0]}")
    return record_class.from_bytes(memoryview(frame)[1:])


def encode_request_body(opcode: int, record: Any) -> bytes | None:
    """
    The client-protocol bytes of a request record (L{None} for no record).  A
    deleteContainer sent by a client carries its path as a C{str}: its raw UTF-8 bytes,
    as ZooKeeper reads that request's body.
    """
    if record is None:
        return None
    if isinstance(record, str):
        return record.encode("utf-8")
    spec = OPS.get(opcode)
    if spec is not None and spec.request is MULTI:
        return multi.encode_request(record)
    return record.serialize()


def decode_request_body(opcode: int, body: bytes | None) -> Any:
    """Inverse of L{encode_request_body}; an undecodable body gives L{None}."""
    if body is None:
        return None
    if opcode == OpCode.deleteContainer:
        return bytes(body).decode("utf-8", "replace")
    spec = OPS.get(opcode)
    if spec is None or spec.request is None:
        return None
    from zkreg.proto.jute import DecodeError

    try:
        if spec.request is MULTI:
            return multi.decode_request(body)[0]
        return spec.request.from_bytes(body)  # type: ignore[union-attr]
    except DecodeError:
        return None


def encode_response_body(opcode: int, response: Any) -> bytes | None:
    """The client-protocol bytes of a response (L{None} for none)."""
    if response is None:
        return None
    spec = OPS.get(opcode)
    if spec is not None and spec.response is MULTI:
        return multi.encode_response(response)
    return response.serialize()


def decode_response_body(opcode: int, body: bytes | None) -> Any:
    """Inverse of L{encode_response_body}."""
    if body is None:
        return None
    spec = OPS[opcode]
    if spec.response is MULTI:
        return multi.decode_response(body)[0]
    return spec.response.from_bytes(body)  # type: ignore[union-attr]
