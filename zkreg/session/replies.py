"""
The bytes of replies to clients: the frame prefix (length and ReplyHeader) and the
reply body, shared by the request pipeline and the local operations.
"""

from __future__ import annotations

import struct
from typing import Any

from zkreg.proto import multi
from zkreg.proto.consts import OpCode

#: frame length + ReplyHeader(xid, zxid, err)
REPLY_PREFIX = struct.Struct(">iiqi")
REPLY_HEADER_SIZE = 16

PING_XID = -2


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
