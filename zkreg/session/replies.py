"""
The bytes of replies to clients: the frame prefix (length and ReplyHeader) and the
reply body, shared by the request pipeline and the local operations.
"""

from __future__ import annotations

import struct
from typing import Any

from zkreg.proto import multi
from zkreg.proto.consts import OpCode
from zkreg.proto.records import CreateResponse, SetDataResponse

#: frame length + ReplyHeader(xid, zxid, err)
REPLY_PREFIX = struct.Struct(">iiqi")
REPLY_HEADER_SIZE = 16

PING_XID = -2

#: A whole setData reply: the prefix, then the Stat (czxid, mzxid, ctime, mtime,
#: version, cversion, aversion, ephemeralOwner, dataLength, numChildren, pzxid).
_SET_DATA_REPLY = struct.Struct(">iiqiqqqqiiiqiiq")
#: The prefix of a create reply and its path's length.
_CREATE_REPLY_PREFIX = struct.Struct(">iiqii")


def encode_reply(xid: int, zxid: int, err: int, body: bytes = b"") -> bytes:
    """
    Encode one reply frame: length, ReplyHeader, body.
    """
    return REPLY_PREFIX.pack(REPLY_HEADER_SIZE + len(body), xid, zxid, err) + body


def encode_body(opcode: int, response: Any) -> bytes:
    """
    The bytes of a reply body: nothing, a record, or a multi result list.
    """
    if response is None:
        return b""
    if isinstance(response, bytes | bytearray):
        return bytes(response)
    if isinstance(response, list | tuple) and opcode in (OpCode.multi, OpCode.multiRead):
        return multi.encode_response(response)
    return response.serialize()


def encode_write_reply(xid: int, zxid: int, err: int, opcode: int, response: Any) -> bytes:
    """
    The whole reply frame of a write: L{encode_reply} of L{encode_body}, with the
    replies of the common writes packed at once rather than body, then frame.

    @param response: the outcome's response (a record, reply body bytes from a data
        link, a multi result list, or L{None}); ignored unless C{err} is 0.
    """
    if err or response is None:
        return REPLY_PREFIX.pack(REPLY_HEADER_SIZE, xid, zxid, err)
    response_class = response.__class__
    if response_class is SetDataResponse:
        stat = response.stat
        return _SET_DATA_REPLY.pack(
            84,
            xid,
            zxid,
            0,
            stat.czxid,
            stat.mzxid,
            stat.ctime,
            stat.mtime,
            stat.version,
            stat.cversion,
            stat.aversion,
            stat.ephemeralOwner,
            stat.dataLength,
            stat.numChildren,
            stat.pzxid,
        )
    if response_class is CreateResponse and response.path is not None:
        path = response.path.encode("utf-8")
        return _CREATE_REPLY_PREFIX.pack(20 + len(path), xid, zxid, 0, len(path)) + path
    if response_class is bytes:
        return REPLY_PREFIX.pack(REPLY_HEADER_SIZE + len(response), xid, zxid, 0) + response
    return encode_reply(xid, zxid, 0, encode_body(opcode, response))
