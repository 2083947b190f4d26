"""
Turn a write request into a transaction, or an error, as ZooKeeper's
C{PrepRequestProcessor} does.

Prep validates against the tree I{plus} the changes of the writes already prepped but
not yet applied (ZooKeeper's outstanding change records), so pipelined writes see each
other exactly as if each had been applied before the next arrived: versions, sequence
numbers, existence, child counts and ACLs.  It mutates nothing in the tree.

Like ZooKeeper, every write gets a zxid and a txn, even a failing one: its header type
becomes C{error} and its txn an L{ErrorTxn} with the code, which is logged and applied
(applying it only advances the tree's zxid), so the reply carries that zxid.

L{Prep} is the entry point; its parts are its base classes:

  - L{zkreg.data.prep_outstanding}: the writes in flight (the change records, the
    staging of a multi);
  - L{zkreg.data.prep_ops}: the rules of each operation, their check order and where
    they differ from ZooKeeper on purpose;
  - L{zkreg.data.prep_multi}: a multi, its ops typed, staged, and all kept or none.
"""

from __future__ import annotations

from typing import Any

from zkreg.data import codes
from zkreg.data.acl import AclChecker
from zkreg.data.prep_multi import MultiPrep
from zkreg.data.prep_ops import ISessionChecker, OperationPrep, PrepError
from zkreg.data.tree import DataTree
from zkreg.proto.records import ErrorTxn, TxnHeader

_OP_DELETE = codes.OP_DELETE
_OP_SET_DATA = codes.OP_SET_DATA
_OP_MULTI = codes.OP_MULTI
_OP_ERROR = codes.OP_ERROR

_CREATE_OPS = codes.CREATE_OPS


class Prep(OperationPrep, MultiPrep):
    """
    The prep stage of one data server.

    @ivar tree: the applied state.
    @ivar acl: the L{AclChecker}.
    @ivar extended_types: TTL nodes allowed (else createTTL is Unimplemented).
    @ivar sessions: answers C{check(session_id) -> 0 or error code}; L{None} skips
        session checks (state-machine tests).
    """

    def __init__(
        self,
        tree: DataTree,
        acl: AclChecker,
        extended_types: bool = False,
        sessions: ISessionChecker | None = None,
    ) -> None:
        super().__init__(tree)
        self.acl = acl
        self.extended_types = extended_types
        self.sessions = sessions
        #: The prep of each common opcode, all called C{(opcode, record, request,
        #: zxid)}: one dict lookup instead of a chain of tests per write.
        self._handlers: dict[int, Any] = dict.fromkeys(_CREATE_OPS, self._create)
        self._handlers[_OP_SET_DATA] = self._set_data
        self._handlers[_OP_DELETE] = self._delete

    def prep(self, request: Any, zxid: int, time_ms: int) -> tuple[TxnHeader, Any]:
        """
        Turn a write request into its transaction.

        @param request: a L{zkreg.data.messages.Request} for a write op (create,
            create2, createContainer, createTTL, delete, setData, setACL, check, multi,
            reconfig, createSession with C{record} the timeout in ms, closeSession,
            deleteContainer with C{record} the path as a C{str}; from a client, with
            any other record, it is BadArguments as in ZooKeeper).  A record that is L{None} or of
            the wrong shape (a body that did not decode) gives MarshallingError, with
            the zxid taken, as in ZooKeeper.
        @param zxid: the zxid the sequencer assigned.
        @param time_ms: the txn time (wall clock ms) to stamp in the header.
        @return: C{(TxnHeader, txn)}; a failed request has header type C{-1} (error)
            and an L{ErrorTxn}.
        """
        opcode = txn_type = request.opcode
        try:
            handler = self._handlers.get(opcode)
            if handler is not None:
                txn = handler(opcode, request.record, request, zxid)
            elif opcode == _OP_MULTI:
                txn = self._multi(request, zxid)
            else:
                txn = self._prep_op(opcode, request.record, request, zxid)
        except PrepError as failure:
            txn_type = _OP_ERROR
            txn = ErrorTxn(failure.code)
        except Exception:
            # A record of the wrong shape (or none, for a body that did not decode):
            # ZooKeeper's catch-all answers MarshallingError with the zxid taken.  No
            # change was recorded (records are added only after every check passed).
            txn_type = _OP_ERROR
            txn = ErrorTxn(codes.MARSHALLING_ERROR)
        return TxnHeader(request.session_id, request.cxid, zxid, time_ms, txn_type), txn
