"""
The messages of the TCP data link, as jute records.

A frame is a 4-byte big-endian length, then one byte naming the message, then the
message record.  Request and response bodies travel as the bytes the ZooKeeper client
protocol uses for them (L{zkreg.proto.ops.OPS}, L{zkreg.proto.multi}); transactions
as the bytes the log stores (L{zkreg.data.txncodec}).  Pure: no I/O.

The messages sent once per write have a fast path (profiled: the data server's
per-write CPU, once the session work moved to other processes): a commit is the log
record itself (L{commit_frame}; the data server encoded it for its log, and a replica
decodes it as recovery does); a L{Result} is packed and unpacked with one C{struct}
call (L{result_frame}, L{decode_result}); a L{Submit} is encoded with its ids
encoded once per connection's ids rather than per write (L{submit_message}); the
same bytes as the records.
"""

from __future__ import annotations

import struct
from typing import Any

from zkreg.proto import multi
from zkreg.proto.consts import OpCode
from zkreg.proto.jute import BOOLEAN, BUFFER, INT, LONG, USTRING, DecodeError, Record, vector
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

#: Server -> client: one applied transaction, as its log record (L{commit_frame}).
COMMIT = 4
#: The kind bytes of L{Submit} and L{Result}.
SUBMIT = 5
RESULT = 6

#: Version of this protocol, sent in Hello (2: resumable sync, stamps, beats; 3: the
#: session server's ACL schemes; 4: commits as log records).
PROTOCOL_VERSION = 4

#: A Result frame up to its body: length, kind, tag, failed, zxid, err, body length.
_RESULT_HEAD = struct.Struct(">iBi?qii")
#: A Result message (no length) up to its body.
_RESULT_FIELDS = struct.Struct(">Bi?qii")
_LENGTH = struct.Struct(">i")
#: A Submit message up to its ids: kind, tag, sessionId, cxid, opcode.
_SUBMIT_HEAD = struct.Struct(">Biqii")
#: A Submit message after its body: origin, seq, acked.
_SUBMIT_TAIL = struct.Struct(">qqq")
_NULL_BODY = _LENGTH.pack(-1)


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
    Inverse of L{encode_message} (a commit or a result has its own decoder).

    @raise zkreg.proto.jute.DecodeError: for an unknown kind or a malformed record.
    """
    if not frame:
        raise DecodeError("empty frame")
    record_class = KINDS.get(frame[0])
    if record_class is None:
        raise DecodeError(f"unknown message kind {frame[0]}")
    record, end = record_class.deserialize(frame, 1)
    if end != len(frame):
        raise DecodeError(f"{len(frame) - end} bytes after {record_class.__name__}")
    return record


def encode_auth(auth: Any) -> bytes:
    """@return: the jute bytes of a vector of L{Id} (a L{Submit}'s C{auth})."""
    ids = list(auth)
    return _LENGTH.pack(len(ids)) + b"".join(auth_id.serialize() for auth_id in ids)


def submit_message(
    tag: int,
    session_id: int,
    cxid: int,
    opcode: int,
    auth: bytes,
    body: bytes | None,
    origin: int,
    seq: int,
    acked: int,
) -> bytes:
    """
    L{encode_message} of a L{Submit}, its C{auth} given encoded (L{encode_auth}).
    """
    head = _SUBMIT_HEAD.pack(SUBMIT, tag, session_id, cxid, opcode)
    tail = _SUBMIT_TAIL.pack(origin, seq, acked)
    if body is None:
        return b"".join((head, auth, _NULL_BODY, tail))
    return b"".join((head, auth, _LENGTH.pack(len(body)), body, tail))


def commit_frame(record: bytes) -> bytes:
    """
    @param record: the log record of an applied txn (L{zkreg.data.txncodec}).
    @return: the frame carrying it on the commit stream.
    """
    return _LENGTH.pack(len(record) + 1) + b"\x04" + record


def result_frame(tag: int, zxid: int, err: int, body: bytes | None) -> bytes:
    """@return: the frame of C{Result(tag, False, zxid, err, body)}, packed at once."""
    if body is None:
        return _RESULT_HEAD.pack(22, RESULT, tag, False, zxid, err, -1)
    return _RESULT_HEAD.pack(22 + len(body), RESULT, tag, False, zxid, err, len(body)) + body


def decode_result(frame: bytes) -> tuple[int, bool, int, int, bytes | None]:
    """
    Inverse of L{result_frame} and of L{encode_message} for a L{Result}.

    @return: C{(tag, failed, zxid, err, body)}.
    @raise zkreg.proto.jute.DecodeError: for a malformed result.
    """
    size = len(frame)
    if size < 22:
        raise DecodeError("short result")
    _, tag, failed, zxid, err, length = _RESULT_FIELDS.unpack_from(frame)
    if length < 0:
        if size != 22 or length != -1:
            raise DecodeError("malformed result")
        return tag, failed, zxid, err, None
    if size != 22 + length:
        raise DecodeError("malformed result")
    return tag, failed, zxid, err, frame[22:]


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
