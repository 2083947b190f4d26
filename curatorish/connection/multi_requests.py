"""
Transactions (C{multi}) and C{multiRead}: the ops they are made of, their results,
and the requests that carry them.

The ops (L{CreateOp}, L{DeleteOp}, L{SetDataOp}, L{CheckOp}, L{GetDataOp},
L{GetChildrenOp}) and their results (L{CreateResult}, ..., L{ErrorResult}) are public
API of L{curatorish.connection}; the framework builds the ops
(L{curatorish.transactions}).  L{MultiRequests}, a part of
L{curatorish.connection.session.ZooKeeperConnection} (over
L{curatorish.connection.operations.ZooKeeperOperations}), encodes a list of ops as one
request (L{zkreg.proto.multi}) and maps the reply back to one result per op.  Separate
from the single-node requests: a multi is a sequence of records answered by a sequence
of results, and a failed transaction reports every op's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from curatorish import errors
from curatorish.connection.operations import ZooKeeperOperations, check_data
from zkreg.proto import multi as multi_codec
from zkreg.proto.consts import OPEN_ACL_UNSAFE, CreateMode, OpCode
from zkreg.proto.jute import Record
from zkreg.proto.records import (
    CheckVersionRequest,
    Create2Response,
    CreateResponse,
    DeleteRequest,
    GetChildrenRequest,
    GetDataRequest,
    SetDataRequest,
)

# -- the ops of a multi (transaction) or multiRead, and their results -----------------
#
# Application-level values: paths are the application's (the connection adds the
# chroot when it encodes them and removes it from the results).


@dataclass(frozen=True)
class CreateOp:
    """
    Create a node (mode CONTAINER uses createContainer, a TTL mode createTTL).
    """

    path: str
    data: bytes = b""
    acl: tuple = OPEN_ACL_UNSAFE
    mode: CreateMode = CreateMode.PERSISTENT
    ttl: int | None = None


@dataclass(frozen=True)
class DeleteOp:
    path: str
    version: int = -1


@dataclass(frozen=True)
class SetDataOp:
    path: str
    data: bytes
    version: int = -1


@dataclass(frozen=True)
class CheckOp:
    """
    Fail the transaction unless the node's version is C{version}.
    """

    path: str
    version: int


@dataclass(frozen=True)
class GetDataOp:
    """A multiRead read of data (no watch)."""

    path: str


@dataclass(frozen=True)
class GetChildrenOp:
    """A multiRead read of children (no watch)."""

    path: str


@dataclass(frozen=True)
class CreateResult:
    path: str
    stat: Any = None


@dataclass(frozen=True)
class DeleteResult:
    pass


@dataclass(frozen=True)
class SetDataResult:
    stat: Any


@dataclass(frozen=True)
class CheckResult:
    pass


@dataclass(frozen=True)
class GetDataResult:
    data: bytes | None
    stat: Any


@dataclass(frozen=True)
class GetChildrenResult:
    children: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ErrorResult:
    """
    An op that did not happen: C{err} is its code (0 for ops of a failed transaction
    that were fine themselves, RUNTIMEINCONSISTENCY for those after the failure).
    """

    err: int


MultiOp = CreateOp | DeleteOp | SetDataOp | CheckOp | GetDataOp | GetChildrenOp


class MultiRequests(ZooKeeperOperations):
    """
    Transactions and multiRead, for the session: over C{_submit}, C{_to_server},
    C{_create_record} and the chroot (L{ZooKeeperOperations}).
    """

    # -- transactions -----------------------------------------------------------------

    def multi(self, operations: Sequence[MultiOp]) -> defer.Deferred[list[Any]]:
        """
        Apply the operations atomically.

        @return: Deferred firing with one result per op (L{CreateResult},
            L{DeleteResult}, ...).  When the transaction fails, it fails
            with the first failing op's error, whose C{results} attribute holds every
            op's L{ErrorResult} and whose C{path} is that op's path.
        """
        return self._multi(OpCode.multi, operations, raise_on_error=True)

    def multi_read(self, operations: Sequence[MultiOp]) -> defer.Deferred[list[Any]]:
        """
        Read several nodes in one round trip (L{GetDataOp},
        L{GetChildrenOp}); a failed read is an L{ErrorResult} in
        its place, not a failure of the whole.
        """
        return self._multi(OpCode.multiRead, operations, raise_on_error=False)

    def _multi(
        self, opcode: int, operations: Sequence[MultiOp], raise_on_error: bool
    ) -> defer.Deferred[list[Any]]:
        try:
            encoded = [self._multi_record(op) for op in operations]
            body = multi_codec.encode_request(encoded)
        except (ValueError, TypeError, errors.ZooKeeperError) as error:
            return defer.fail(error)
        op_paths = [op.path for op in operations]

        def complete(err: int, frame: bytes, offset: int) -> list[Any]:
            if err != 0 and offset >= len(frame):
                raise errors.error_for_code(err, None)
            raw, _ = multi_codec.decode_response(frame, offset)
            results = [self._multi_result(kind, code, record) for kind, code, record in raw]
            if raise_on_error:
                for index, result in enumerate(results):
                    if isinstance(result, ErrorResult) and result.err != 0:
                        path = op_paths[index] if index < len(op_paths) else None
                        error = errors.error_for_code(result.err, path)
                        error.results = results  # type: ignore[attr-defined]
                        raise error
                if err != 0:
                    raise errors.error_for_code(err, None)
            return results

        return self._submit(opcode, body, complete, None)

    def _multi_record(self, op: MultiOp) -> tuple[int, Record]:
        if isinstance(op, CreateOp):
            return self._create_record(op.path, op.data, op.acl, op.mode, op.ttl)
        if isinstance(op, DeleteOp):
            return OpCode.delete, DeleteRequest(self._to_server(op.path), op.version)
        if isinstance(op, SetDataOp):
            check_data(op.data, op.path)
            return OpCode.setData, SetDataRequest(self._to_server(op.path), op.data, op.version)
        if isinstance(op, CheckOp):
            return OpCode.check, CheckVersionRequest(self._to_server(op.path), op.version)
        if isinstance(op, GetDataOp):
            return OpCode.getData, GetDataRequest(self._to_server(op.path), False)
        if isinstance(op, GetChildrenOp):
            return OpCode.getChildren, GetChildrenRequest(self._to_server(op.path), False)
        raise ValueError(f"not a multi operation: {op!r}")

    def _multi_result(self, kind: int, err: int, record: Record | None) -> Any:
        if kind == OpCode.error:
            return ErrorResult(err)
        if kind == OpCode.create:
            assert isinstance(record, CreateResponse)
            return CreateResult(self.chroot.to_client(record.path))
        if kind == OpCode.create2:
            assert isinstance(record, Create2Response)
            return CreateResult(self.chroot.to_client(record.path), record.stat)
        if kind == OpCode.delete:
            return DeleteResult()
        if kind == OpCode.check:
            return CheckResult()
        if kind == OpCode.setData:
            assert record is not None
            return SetDataResult(record.stat)
        if kind == OpCode.getData:
            assert record is not None
            return GetDataResult(record.data, record.stat)
        if kind == OpCode.getChildren:
            assert record is not None
            return GetChildrenResult(list(record.children))
        raise errors.MarshallingError(None, f"unexpected multi result type {kind}")
