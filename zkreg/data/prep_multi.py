"""
The prep of a multi: its ops typed as ZooKeeper's C{MultiOperationRecord} types them,
each prepped by the rules of its operation against the tree, the writes in flight I{and}
the multi's own earlier ops, all of it kept or none.

A multi stays a multi txn whose ops before the failing one keep their txns, the failing
one an ErrorTxn with its code and the ones after ErrorTxn(RuntimeInconsistency);
applying it changes nothing (see L{zkreg.data.tree.DataTree.apply}).  Its changes are
staged (L{zkreg.data.prep_outstanding.OutstandingChanges}) while its ops are prepped and
become outstanding only if every op passed, so a failed multi leaves no trace for the
writes after it (sequence numbers included).

It is separate from the rules of each operation (L{zkreg.data.prep_ops}) because it
adds none: it only decides which ops a multi may hold and what becomes of the others
once one fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zkreg.data import codes
from zkreg.data.prep_ops import TTL_FLAGS, PrepError
from zkreg.data.prep_outstanding import OutstandingChanges
from zkreg.proto.records import ErrorTxn, MultiTxn, Txn

_OP_CREATE = codes.OP_CREATE
_OP_CREATE_CONTAINER = codes.OP_CREATE_CONTAINER
_OP_CREATE_TTL = codes.OP_CREATE_TTL
_OP_DELETE = codes.OP_DELETE
_OP_SET_DATA = codes.OP_SET_DATA
_OP_CHECK = codes.OP_CHECK
_OP_ERROR = codes.OP_ERROR

_CREATE_OPS = codes.CREATE_OPS
#: Write ops a multi may hold (after its create ops are typed by their flags).
_MULTI_WRITE_OPS = frozenset(
    {_OP_CREATE, _OP_CREATE_CONTAINER, _OP_CREATE_TTL, _OP_DELETE, _OP_SET_DATA, _OP_CHECK}
)

_RUNTIME_INCONSISTENCY_TXN = ErrorTxn(codes.RUNTIME_INCONSISTENCY).serialize()


class MultiPrep(OutstandingChanges):
    """
    The prep of a multi (a base of L{zkreg.data.prep.Prep}; each op is prepped by
    C{_prep_op} of L{zkreg.data.prep_ops.OperationPrep}).
    """

    if TYPE_CHECKING:

        def _prep_op(self, opcode: int, record: Any, request: Any, zxid: int) -> Any: ...

    def _multi(self, request: Any, zxid: int) -> Any:
        ops = request.record
        # Type each op as ZooKeeper's MultiOperationRecord does: create ops by their
        # flags; a read op, or a create whose flags ask for a TTL without one, makes
        # the whole request a MarshallingError.
        typed: list[tuple[int, Any]] = []
        for opcode, record in ops:
            if opcode in _CREATE_OPS:
                flags = record.flags
                if flags in TTL_FLAGS:
                    if opcode != _OP_CREATE_TTL:
                        raise PrepError(codes.MARSHALLING_ERROR)
                    opcode = _OP_CREATE_TTL
                elif flags == codes.FLAG_CONTAINER:
                    opcode = _OP_CREATE_CONTAINER
                else:
                    if opcode == _OP_CREATE_TTL:
                        # Op.create(..., flags, ttl) drops the ttl of a non-TTL mode.
                        record = _CreateView(record)
                    opcode = _OP_CREATE
            elif opcode not in _MULTI_WRITE_OPS:
                raise PrepError(codes.MARSHALLING_ERROR)
            typed.append((opcode, record))

        self._staged = {}
        self._staged_order = []
        txns: list[Any] = []
        failed = False
        try:
            for opcode, record in typed:
                if failed:
                    txns.append(Txn(_OP_ERROR, _RUNTIME_INCONSISTENCY_TXN))
                    continue
                try:
                    txn = self._prep_op(opcode, record, request, zxid)
                except PrepError as failure:
                    failed = True
                    txns.append(Txn(_OP_ERROR, ErrorTxn(failure.code).serialize()))
                    continue
                txns.append(Txn(opcode, txn.serialize()))
            staged_order = self._staged_order
        finally:
            self._staged = None
            self._staged_order = []
        if not failed:
            for change in staged_order:
                self._add(change)
        return MultiTxn(txns)


class _CreateView:
    """A createTTL op of a non-TTL mode read as the plain create ZooKeeper makes of it."""

    __slots__ = ("path", "data", "acl", "flags")

    def __init__(self, record: Any) -> None:
        self.path = record.path
        self.data = record.data
        self.acl = record.acl
        self.flags = record.flags
