"""
What the session server knows of a request before it acts on it: its opcode's class
(write, data read, allowed before SASL), its name in C{cons}, and its body decoded in
place from the connection's buffer.
"""

from __future__ import annotations

import struct
from typing import Any

from zkreg.data.tree import OPEN_ACL
from zkreg.proto import multi
from zkreg.proto.consts import OpCode
from zkreg.proto.jute import DecodeError
from zkreg.proto.ops import MULTI, OPS
from zkreg.proto.records import CreateRequest

_LENGTH = struct.Struct(">i")
_INT = struct.Struct(">i")
#: The jute bytes of the open ACL vector (count 1, perms ALL, world:anyone), which
#: nearly every create carries: a create whose ACL is these bytes gets the shared
#: L{OPEN_ACL} tuple instead of a freshly decoded list (see L{_decode_open_create}).
_OPEN_ACL_BYTES = _INT.pack(1) + b"".join(entry.serialize() for entry in OPEN_ACL)

#: lop of cons, by opcode (FinalRequestProcessor's lastOp strings).
LAST_OP_NAMES: dict[int, str] = {
    OpCode.ping: "PING",
    OpCode.multi: "MULT",
    OpCode.multiRead: "MLTR",
    OpCode.create: "CREA",
    OpCode.create2: "CREA",
    OpCode.createTTL: "CREA",
    OpCode.createContainer: "CREA",
    OpCode.delete: "DELE",
    OpCode.deleteContainer: "DELE",
    OpCode.setData: "SETD",
    OpCode.reconfig: "RECO",
    OpCode.setACL: "SETA",
    OpCode.closeSession: "CLOS",
    OpCode.sync: "SYNC",
    OpCode.check: "CHEC",
    OpCode.exists: "EXIS",
    OpCode.getData: "GETD",
    OpCode.setWatches: "SETW",
    OpCode.setWatches2: "STW2",
    OpCode.addWatch: "ADDW",
    OpCode.getACL: "GETA",
    OpCode.getChildren: "GETC",
    OpCode.getChildren2: "GETC",
    OpCode.getAllChildrenNumber: "GETACN",
    OpCode.checkWatches: "CHKW",
    OpCode.removeWatches: "REMW",
    OpCode.whoAmI: "HOMI",
    OpCode.getEphemerals: "GETE",
}

#: What a connection may send before SASL succeeded when SASL is required.
SASL_EXEMPT_OPS = frozenset((int(OpCode.sasl), int(OpCode.auth)))
WRITE_OPS = frozenset(int(op) for op, spec in OPS.items() if spec.write)
DATA_READ_OPS = frozenset(
    int(op)
    for op in (
        OpCode.exists,
        OpCode.getData,
        OpCode.getACL,
        OpCode.getChildren,
        OpCode.getChildren2,
        OpCode.getAllChildrenNumber,
        OpCode.getEphemerals,
        OpCode.multiRead,
    )
)

#: Marker for a request body that did not decode (answered MARSHALLINGERROR).
UNDECODABLE = object()


#: Stands in L{_DECODERS} for the create bodies (see L{decode_open_create}).
_CREATE = object()
#: opcode -> C{f(buf, offset) -> (record, offset after it)} decoding its body,
#: L{_CREATE}, or L{None} (no body): looked up once per request.
_DECODERS: dict[int, Any] = {
    int(opcode): (
        None
        if spec.request is None
        else _CREATE
        if spec.request is CreateRequest
        else multi.decode_request
        if spec.request is MULTI
        else spec.request.deserialize  # type: ignore[union-attr]
    )
    for opcode, spec in OPS.items()
}


def decode_body(opcode: int, buf: bytes, start: int, end: int) -> Any:
    """
    Decode the body of a request of a known opcode from C{buf[start:end]}.

    @raise DecodeError: the body does not decode, even with a lenient path.
    """
    decoder = _DECODERS[opcode]
    if decoder is None:
        return None
    try:
        # Decoded in place: the frame's end is checked after, instead of slicing
        # a view of each frame (measured 700 -> 530 ns for a setData).  Request
        # records have no optional trailing field, so the buffer's end does not
        # change what they decode to; trailing bytes are ignored, as ZooKeeper does.
        if decoder is _CREATE:
            open_create = decode_open_create(buf, start, end)
            if open_create is not None:
                return open_create
            record, offset = CreateRequest.deserialize(buf, start)
        else:
            record, offset = decoder(buf, start)
        if offset > end:
            raise DecodeError("request body runs past its frame")
        return record
    except DecodeError as error:
        request_class = OPS[opcode].request
        if "utf-8" in str(error) and request_class is not MULTI and request_class:
            record = _decode_with_lenient_path(request_class, bytes(buf[start:end]))
            if record is not None:
                return record
        raise


def _decode_with_lenient_path(request_class: Any, body: bytes) -> Any:
    """
    Decode a request whose leading path is not valid UTF-8 the way Java does: with
    U+FFFD for each bad sequence.  ZooKeeper then rejects the path (BadArguments for
    writes, NoNode for reads) rather than the request as undecodable.

    @return: the record, or L{None} when the rest does not decode either.
    """
    if len(body) < 4:
        return None
    (length,) = _LENGTH.unpack_from(body, 0)
    if length < 0 or 4 + length > len(body):
        return None
    path = body[4 : 4 + length].decode("utf-8", "replace").encode("utf-8")
    try:
        record, _ = request_class.deserialize(
            _LENGTH.pack(len(path)) + path + body[4 + length :], 0
        )
    except DecodeError:
        return None
    return record


def decode_open_create(buf: Any, start: int, end: int) -> CreateRequest | None:
    """
    Decode a create body whose ACL is the open ACL without decoding the ACL vector.

    @return: the record, with the shared L{OPEN_ACL} tuple as its ACL (a tuple
        compares equal to the decoded list, and the data tier treats both alike), or
        L{None} for anything else (another ACL, a null path or data, a short or odd
        body): the general decoder then decodes it, errors included.
    """
    try:
        (path_length,) = _INT.unpack_from(buf, start)
        path_start = start + 4
        path_end = path_start + path_length
        if path_length < 0 or path_end + 4 > end:
            return None
        (data_length,) = _INT.unpack_from(buf, path_end)
        data_start = path_end + 4
        acl_start = data_start + data_length
        flags_start = acl_start + len(_OPEN_ACL_BYTES)
        if data_length < 0 or flags_start + 4 > end:
            return None
        if not buf.startswith(_OPEN_ACL_BYTES, acl_start):
            return None
        record = CreateRequest(
            str(buf[path_start:path_end], "utf-8"),
            bytes(buf[data_start:acl_start]),
            OPEN_ACL,
            _INT.unpack_from(buf, flags_start)[0],
        )
    except (struct.error, UnicodeDecodeError, AttributeError):
        return None
    return record
