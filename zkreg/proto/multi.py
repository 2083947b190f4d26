"""
The bodies of multi and multiRead requests and their responses.

They are not jute records but sequences (ZooKeeper's C{MultiOperationRecord} and
C{MultiResponse}): each op or result is a L{MultiHeader} followed by its record, and
the sequence ends with C{MultiHeader(type=-1, done=True, err=-1)}.

  - Request ops: header C{(opcode, False, -1)}, then the op's request record:
    L{CreateRequest} for create, create2 and createContainer, L{CreateTTLRequest} for
    createTTL, L{DeleteRequest}, L{SetDataRequest}, L{CheckVersionRequest}, and for
    multiRead L{GetChildrenRequest} and L{GetDataRequest}.
  - Results: header C{(opcode, False, err)}, then: L{CreateResponse} for create,
    L{Create2Response} for create2 (ZooKeeper answers createTTL and createContainer
    ops with create2 results), L{SetDataResponse} for setData, nothing for delete
    and check, L{GetChildrenResponse} / L{GetDataResponse} for multiRead, and for a
    failed op header C{(-1, False, err)} then C{ErrorResponse(err)}.  When a multi
    fails, ZooKeeper answers every op with an error result: C{err} 0 (OK) for the ops
    before the failing one, the failure's code for it, and RUNTIMEINCONSISTENCY for
    the ones after it.  That is the data tier's business; this module only maps bytes.

Whether the ops of one request mix reads and writes (ZooKeeper refuses that) is also
left to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable

from zkreg.proto.consts import OpCode
from zkreg.proto.jute import DecodeError, Record
from zkreg.proto.records import (
    CheckVersionRequest,
    Create2Response,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    ErrorResponse,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    MultiHeader,
    SetDataRequest,
    SetDataResponse,
)

__all__ = [
    "MULTI_OP_RECORDS",
    "MULTI_RESULT_RECORDS",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_request_into",
    "encode_response",
    "encode_response_into",
]

#: The request record of each opcode allowed inside a multi or multiRead.
MULTI_OP_RECORDS: dict[int, type[Record]] = {
    OpCode.create: CreateRequest,
    OpCode.create2: CreateRequest,
    OpCode.createContainer: CreateRequest,
    OpCode.createTTL: CreateTTLRequest,
    OpCode.delete: DeleteRequest,
    OpCode.setData: SetDataRequest,
    OpCode.check: CheckVersionRequest,
    OpCode.getChildren: GetChildrenRequest,
    OpCode.getData: GetDataRequest,
}

#: The result record of each result type in a multi response (L{None}: no body).
MULTI_RESULT_RECORDS: dict[int, type[Record] | None] = {
    OpCode.create: CreateResponse,
    OpCode.create2: Create2Response,
    OpCode.delete: None,
    OpCode.check: None,
    OpCode.setData: SetDataResponse,
    OpCode.getChildren: GetChildrenResponse,
    OpCode.getData: GetDataResponse,
    OpCode.error: ErrorResponse,
}

# The terminator is the same in both directions.
_DONE = MultiHeader(-1, True, -1).serialize()


def encode_request_into(ops: Iterable[tuple[int, Record]], out: bytearray) -> None:
    """
    Append the encoding of a multi (or multiRead) request body to C{out}.

    @param ops: C{(opcode, request record)} pairs in order.
    @raise ValueError: for an opcode not allowed in a multi, or a record of the wrong
        class for its opcode.
    """
    for opcode, record in ops:
        expected = MULTI_OP_RECORDS.get(opcode)
        if expected is None or record.__class__ is not expected:
            raise ValueError(f"{record!r} is not a multi op of type {opcode}")
        MultiHeader(opcode, False, -1).serialize_into(out)
        record.serialize_into(out)
    out += _DONE


def encode_request(ops: Iterable[tuple[int, Record]]) -> bytes:
    """
    @return: the encoding of a multi request body; see L{encode_request_into}.
    """
    out = bytearray()
    encode_request_into(ops, out)
    return bytes(out)


def decode_request(
    buf: bytes | bytearray | memoryview, offset: int = 0
) -> tuple[list[tuple[int, Record]], int]:
    """
    Decode a multi (or multiRead) request body.

    @return: C{([(opcode, request record), ...], offset past the terminator)}; the
        opcodes are L{OpCode} members.
    @raise DecodeError: on malformed bytes or an opcode not allowed in a multi.
    """
    ops: list[tuple[int, Record]] = []
    header, offset = MultiHeader.deserialize(buf, offset)
    while not header.done:
        record_class = MULTI_OP_RECORDS.get(header.type)
        if record_class is None:
            raise DecodeError(f"invalid op type {header.type} in a multi request")
        record, offset = record_class.deserialize(buf, offset)
        ops.append((OpCode(header.type), record))
        header, offset = MultiHeader.deserialize(buf, offset)
    return ops, offset


def encode_response_into(results: Iterable[tuple[int, int, Record | None]], out: bytearray) -> None:
    """
    Append the encoding of a multi (or multiRead) response body to C{out}.

    @param results: C{(result type, err, record)} triples in op order.  The result
        type is an opcode from L{MULTI_RESULT_RECORDS} (create2, not createTTL or
        createContainer); for C{OpCode.error} the record may be L{None}, meaning
        C{ErrorResponse(err)}; for delete and check it must be L{None}.
    @raise ValueError: for a result type not allowed, or a record of the wrong class.
    """
    for result_type, err, record in results:
        if result_type not in MULTI_RESULT_RECORDS:
            raise ValueError(f"invalid result type {result_type} in a multi response")
        expected = MULTI_RESULT_RECORDS[result_type]
        if record is None and expected is ErrorResponse:
            record = ErrorResponse(err)
        if (record.__class__ if record is not None else None) is not expected:
            raise ValueError(f"{record!r} is not a multi result of type {result_type}")
        MultiHeader(result_type, False, err).serialize_into(out)
        if record is not None:
            record.serialize_into(out)
    out += _DONE


def encode_response(results: Iterable[tuple[int, int, Record | None]]) -> bytes:
    """
    @return: the encoding of a multi response body; see L{encode_response_into}.
    """
    out = bytearray()
    encode_response_into(results, out)
    return bytes(out)


def decode_response(
    buf: bytes | bytearray | memoryview, offset: int = 0
) -> tuple[list[tuple[int, int, Record | None]], int]:
    """
    Decode a multi (or multiRead) response body.

    @return: C{([(result type, err, record or None), ...], offset past the end)}; the
        result types are L{OpCode} members.
    @raise DecodeError: on malformed bytes or a result type not allowed.
    """
    results: list[tuple[int, int, Record | None]] = []
    header, offset = MultiHeader.deserialize(buf, offset)
    while not header.done:
        if header.type not in MULTI_RESULT_RECORDS:
            raise DecodeError(f"invalid result type {header.type} in a multi response")
        record_class = MULTI_RESULT_RECORDS[header.type]
        record: Record | None = None
        if record_class is not None:
            record, offset = record_class.deserialize(buf, offset)
        results.append((OpCode(header.type), header.err, record))
        header, offset = MultiHeader.deserialize(buf, offset)
    return results, offset
