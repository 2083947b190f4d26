"""
The applier: the second half of the data server.

It applies each durable txn to the tree, strictly in zxid order (the sequencer hands
them over in that order), publishes it as a L{zkreg.data.messages.Commit} to every
L{zkreg.interfaces.ICommitListener} and only then answers the writer: a session server
thus writes the watch events of a change before any reply that reflects it.  Syncs and
reads that must follow writes in flight wait here for the zxid they follow.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from zkreg.data import codes
from zkreg.data.acl import AclChecker
from zkreg.data.dedup import ReplyCache
from zkreg.data.messages import Commit, Outcome, Request, WriteStamp
from zkreg.data.prep import Prep
from zkreg.data.reads import perform_read
from zkreg.data.sessions import SessionTable
from zkreg.data.tree import ApplyResult, DataTree
from zkreg.proto.records import (
    Create2Response,
    CreateResponse,
    ErrorResponse,
    SetACLResponse,
    SetDataResponse,
    SyncResponse,
    TxnHeader,
)

__all__ = ["Applier", "answer", "outcome_of", "replayed"]

_OP_SYNC = codes.OP_SYNC
_OP_ERROR = codes.OP_ERROR
_OP_MULTI = codes.OP_MULTI
_OP_CREATE = codes.OP_CREATE
_OP_CLOSE_SESSION = codes.OP_CLOSE_SESSION
_OP_SET_DATA = codes.OP_SET_DATA
_CREATE_OPS = codes.CREATE_OPS

_log = Logger(namespace="zkreg.data.applier")


def answer(reply: Any, result: Any) -> None:
    """
    Give an L{Outcome} or a L{Failure} to a reply target: a L{Deferred}, or a callable
    taking either.

    A callable that raises is logged: like a Deferred's callback, its failure is its
    own and must not stop the pipeline.
    """
    if reply.__class__ is Deferred:
        if isinstance(result, Failure):
            reply.errback(result)
        else:
            reply.callback(result)
        return
    try:
        reply(result)
    except Exception:
        _log.failure("reply callback {reply!r} failed", reply=reply)


def _multi_results(result: ApplyResult) -> list[tuple[int, int, Any]]:
    """The per-op results of a multi, as L{zkreg.proto.multi.encode_response} takes them."""
    results: list[tuple[int, int, Any]] = []
    for sub in result.multi or ():
        sub_type = sub.type
        if sub_type == _OP_ERROR:
            results.append((_OP_ERROR, sub.err, ErrorResponse(sub.err)))
        elif sub_type == _OP_CREATE:
            results.append((_OP_CREATE, 0, CreateResponse(sub.path)))
        elif sub_type in codes.CREATE_OPS:
            # ZooKeeper answers createContainer and createTTL ops with create2 results.
            results.append((codes.OP_CREATE2, 0, Create2Response(sub.path, sub.stat)))
        elif sub_type == codes.OP_SET_DATA:
            results.append((codes.OP_SET_DATA, 0, SetDataResponse(sub.stat)))
        elif sub_type == codes.OP_CHECK:
            results.append((codes.OP_CHECK, 0, None))
        else:
            results.append((codes.OP_DELETE, 0, None))
    return results


def outcome_of(opcode: int, hdr: TxnHeader, result: ApplyResult, tree: DataTree) -> Outcome:
    """
    The reply to a write, from what applying its txn did (FinalRequestProcessor).

    @param opcode: the request's opcode (the header's type may have become error).
    """
    zxid = hdr.zxid
    if result.type == _OP_ERROR:
        return Outcome(zxid, result.err)
    if opcode == _OP_CREATE:
        return Outcome(zxid, 0, CreateResponse(result.path))
    if opcode == _OP_SET_DATA:
        return Outcome(zxid, 0, SetDataResponse(result.stat))
    if opcode in _CREATE_OPS:
        return Outcome(zxid, 0, Create2Response(result.path, result.stat))
    if opcode == _OP_MULTI:
        # A failed multi still answers err 0 in the header; the ops carry the errors.
        return Outcome(zxid, 0, _multi_results(result))
    if opcode == codes.OP_SET_ACL:
        return Outcome(zxid, 0, SetACLResponse(result.stat))
    if opcode == codes.OP_CHECK:
        # ZooKeeper would answer SetDataResponse(null) (it has no stat for a check);
        # the node's current stat is what a client can use.
        node = tree.get(result.path) if result.path is not None else None
        stat = tree.stat_of(node) if node is not None else None
        return Outcome(zxid, 0, SetDataResponse(stat) if stat is not None else None)
    return Outcome(zxid, 0)


def replayed(
    replies: ReplyCache,
    tree: DataTree,
    hdr: TxnHeader,
    result: ApplyResult,
    stamp: WriteStamp | None,
    opcode: int,
) -> None:
    """
    A logged txn was applied again (recovery): rebuild the reply a resubmission of
    its write must get, and forget the replies of a session it closed.
    """
    if stamp is not None:
        replies.recorded(hdr.clientId, stamp, outcome_of(opcode, hdr, result, tree))
    if hdr.type == _OP_CLOSE_SESSION:
        replies.session_closed(hdr.clientId)


class Applier:
    """
    Applies durable txns, publishes the commit stream, answers writers and waiters.

    @ivar tree: the applied L{DataTree}.
    """

    def __init__(
        self,
        tree: DataTree,
        acl: AclChecker,
        prep: Prep,
        sessions: SessionTable,
        replies: ReplyCache | None = None,
    ) -> None:
        """
        @param replies: the replies of stamped writes (exactly-once), kept up to date
            as they are applied.
        """
        self.tree = tree
        self.replies = replies if replies is not None else ReplyCache()
        self._acl = acl
        self._prep = prep
        self._sessions = sessions
        #: A tuple, replaced (not changed) on subscribe and unsubscribe: a listener
        #: may unsubscribe while a commit is published, and no copy is made per write.
        self._listeners: tuple[Any, ...] = ()
        #: Syncs and reads waiting for a zxid: C{(zxid, reply, request)}, in order.
        self._waiting: deque[tuple[int, Any, Request]] = deque()

    # -- the commit stream ---------------------------------------------------------

    def subscribe(self, listener: Any) -> None:
        """Add an L{ICommitListener}; it sees every txn committed from now on."""
        self._listeners += (listener,)

    def unsubscribe(self, listener: Any) -> None:
        """Remove a listener added with L{subscribe}."""
        listeners = list(self._listeners)
        if listener in listeners:
            listeners.remove(listener)
            self._listeners = tuple(listeners)

    @property
    def listeners(self) -> tuple[Any, ...]:
        """The subscribed listeners."""
        return self._listeners

    # -- reads and syncs -----------------------------------------------------------

    def answer_now(self, request: Request) -> Outcome:
        """Answer a sync or a read against the tree as applied now."""
        if request.opcode == _OP_SYNC:
            record = request.record
            response = SyncResponse(getattr(record, "path", record))
            return Outcome(self.tree.last_zxid, 0, response)
        return perform_read(self.tree, request, self._acl)

    def answer_after(self, zxid: int, reply: Any, request: Request) -> None:
        """Answer a sync or read once the write with C{zxid} has been applied."""
        self._waiting.append((zxid, reply, request))

    def fail_waiting(self, error: Exception) -> None:
        """The pipeline failed: every waiting sync and read fails with C{error}."""
        waiting, self._waiting = self._waiting, deque()
        for _, reply, _ in waiting:
            answer(reply, Failure(error))

    # -- apply ---------------------------------------------------------------------

    def apply(
        self, request: Request, hdr: TxnHeader, txn: Any, reply: Any, record: bytes | None = None
    ) -> None:
        """
        Apply one durable write, publish its commit, answer it, then the syncs and
        reads that waited for it.

        @param record: the txn's log record, passed on in the commit.
        """
        zxid = hdr.zxid
        try:
            tree = self.tree
            result = tree.apply(hdr, txn)
            self._prep.committed(zxid)
            txn_type = hdr.type
            if txn_type == _OP_CLOSE_SESSION:
                self._sessions.remove(hdr.clientId)
                self.replies.session_closed(hdr.clientId)
            outcome = outcome_of(request.opcode, hdr, result, tree)
        except Exception:
            # A bug, not bad input (prep turns that into error txns): keep the
            # pipeline going and fail only this write.
            _log.failure("applying zxid {zxid:#x} failed", zxid=zxid)
            failure = Failure()
            answer(reply, failure)
            if request.stamp is not None:
                for twin in self.replies.finish(request.session_id, request.stamp):
                    answer(twin, failure)
        else:
            stamp = request.stamp
            twins: Any = ()
            if stamp is not None:
                self.replies.recorded(request.session_id, stamp, outcome)
                twins = self.replies.finish(request.session_id, stamp)
            listeners = self._listeners
            if listeners:
                commit = Commit(
                    zxid,
                    hdr.clientId,
                    hdr.cxid,
                    txn_type,
                    txn,
                    tuple(result.events),
                    result.closed_session,
                    hdr.time,
                    record,
                )
                for listener in listeners:
                    try:
                        listener.committed(commit)
                    except Exception:
                        _log.failure("commit listener {listener!r} failed", listener=listener)
            if reply.__class__ is Deferred:
                reply.callback(outcome)
            else:
                # answer(), inlined: one call less per write.
                try:
                    reply(outcome)
                except Exception:
                    _log.failure("reply callback {reply!r} failed", reply=reply)
            for twin in twins:
                answer(twin, outcome)
        if self._waiting:
            self._release(zxid)

    def _release(self, zxid: int) -> None:
        """Answer the syncs and reads waiting for writes up to C{zxid}."""
        waiting = self._waiting
        while waiting and waiting[0][0] <= zxid:
            _, reply, later = waiting.popleft()
            try:
                result: Any = self.answer_now(later)
            except Exception:
                _log.failure("answering a read after zxid {zxid:#x} failed", zxid=zxid)
                result = Failure()
            answer(reply, result)
