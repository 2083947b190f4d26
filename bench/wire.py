"""
Frames the load client sends, encoded once with L{zkreg.proto} and reused.

The load generator must not be the bottleneck, so it never runs the codec in its hot
loop: each request is encoded once as a template frame, and only its xid (bytes 4..8 of
the frame, right after the length prefix) is patched per request.  Replies are not
decoded beyond the reply header, which is three fixed-size fields.
"""

from __future__ import annotations

import struct

from zkreg.proto.consts import OpCode
from zkreg.proto.records import (
    ACL,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    DeleteRequest,
    ExistsRequest,
    GetDataRequest,
    Id,
    RequestHeader,
    SetDataRequest,
    WatcherEvent,
)

#: The ACL every benchmark node gets: world:anyone with all permissions.
OPEN_ACL = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]

#: Length prefix, xid, zxid, err: the fixed start of every reply frame.
REPLY_HEADER = struct.Struct(">iqi")
#: Offset of the xid inside a request frame (after the 4-byte length prefix).
XID_OFFSET = 4
PING_XID = -2
WATCH_XID = -1


def frame(payload: bytes) -> bytes:
    """
    @return: C{payload} with ZooKeeper's 4-byte big-endian length prefix.
    """
    return struct.pack(">i", len(payload)) + payload


def connect_frame(timeout_ms: int, session_id: int = 0, password: bytes = b"\0" * 16) -> bytes:
    """
    @return: the handshake frame of a new session (or a reconnect to C{session_id}).
    """
    record = ConnectRequest(
        protocolVersion=0,
        lastZxidSeen=0,
        timeOut=timeout_ms,
        sessionId=session_id,
        passwd=password,
        readOnly=False,
    )
    return frame(record.serialize())


def parse_connect_response(payload: bytes) -> ConnectResponse:
    """
    @param payload: the first frame the server sent, without its length prefix.
    """
    response, _ = ConnectResponse.deserialize(payload, 0)
    return response


def request_frame(opcode: int, record: object | None, xid: int = 0) -> bytes:
    """
    @return: a full request frame: length, request header, and the record's body.
    """
    body = RequestHeader(xid=xid, type=opcode).serialize()
    if record is not None:
        body += record.serialize()
    return frame(body)


def get_data_frame(path: str, watch: bool = False) -> bytes:
    """@return: a getData request template."""
    return request_frame(OpCode.getData, GetDataRequest(path=path, watch=watch))


def set_data_frame(path: str, data: bytes) -> bytes:
    """@return: a setData request template (any version)."""
    return request_frame(OpCode.setData, SetDataRequest(path=path, data=data, version=-1))


def create_frame(path: str, data: bytes, flags: int = 0) -> bytes:
    """@return: a create request template with the open ACL."""
    return request_frame(
        OpCode.create, CreateRequest(path=path, data=data, acl=OPEN_ACL, flags=flags)
    )


def exists_frame(path: str, watch: bool = False) -> bytes:
    """@return: an exists request template."""
    return request_frame(OpCode.exists, ExistsRequest(path=path, watch=watch))


def delete_frame(path: str) -> bytes:
    """@return: a delete request template (any version)."""
    return request_frame(OpCode.delete, DeleteRequest(path=path, version=-1))


def ping_frame() -> bytes:
    """@return: the ping frame (xid -2, no body)."""
    return request_frame(OpCode.ping, None, xid=PING_XID)


def close_frame(xid: int) -> bytes:
    """@return: a closeSession request frame."""
    return request_frame(OpCode.closeSession, None, xid=xid)


def with_xid(template: bytes, xid: int) -> bytes:
    """
    @return: C{template} with its request header's xid replaced by C{xid}.
    """
    patched = bytearray(template)
    struct.pack_into(">i", patched, XID_OFFSET, xid)
    return bytes(patched)


def parse_watch_event(payload: bytes) -> WatcherEvent:
    """
    @param payload: a notification frame without its length prefix.
    @return: the event after the reply header.
    """
    event, _ = WatcherEvent.deserialize(payload, REPLY_HEADER.size)
    return event
