"""
The data server: the single sequencer of every write.

For each write it assigns the next zxid (C{epoch << 32 | counter}), preps it into a txn
(L{zkreg.data.prep}), appends the encoded txn to the durable log, and once the log
says it is durable applies it to the tree I{strictly in zxid order} (an append
acknowledged early waits for its predecessors), publishes it as a
L{zkreg.data.messages.Commit} to every L{ICommitListener} and only then fires the
writer's Deferred: a session server thus writes the watch events of a change before
any reply that reflects it.  Prep runs at once, so many writes can be in flight while
the log batches their syncs (group commit).

It also owns the session table: it hands out ids and passwords, expires sessions that
were not touched in time (a closeSession txn each, every tick), and periodically
deletes empty containers and expired TTL nodes (a deleteContainer txn each).  Both
loops run on an injected clock (C{callLater} at each tick boundary for expiry, a
C{LoopingCall} for containers), started and stopped with the service.

If the log fails an append the server stops taking writes: every write in flight and
every later one fails (the txns after the failed one were prepped on top of it, so
nothing can be applied safely).  A restart recovers from the log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from twisted.application import service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.acl import AclChecker
from zkreg.data.containers import deletion_candidates
from zkreg.data.messages import Commit, Outcome, Request, SessionGrant
from zkreg.data.prep import Prep
from zkreg.data.reads import READ_OPS, perform_read
from zkreg.data.sessions import ZOOKEEPER_SECRET, SessionTable
from zkreg.data.tree import ApplyResult, DataTree
from zkreg.data.txncodec import decode_txn, encode_txn
from zkreg.persistence.memlog import MemoryLog
from zkreg.proto.records import (
    Create2Response,
    CreateResponse,
    ErrorResponse,
    SetACLResponse,
    SetDataResponse,
    SyncResponse,
    TxnHeader,
)

_OP_SYNC = codes.OP_SYNC
_OP_ERROR = codes.OP_ERROR
_OP_MULTI = codes.OP_MULTI
_OP_CREATE = codes.OP_CREATE
_OP_CREATE_SESSION = codes.OP_CREATE_SESSION
_OP_CLOSE_SESSION = codes.OP_CLOSE_SESSION
_OP_DELETE_CONTAINER = codes.OP_DELETE_CONTAINER


class DataServerFailed(Exception):
    """The durable log failed; the data server takes no more writes until restarted."""


class _InFlight:
    """
    One write between prep and apply.

    @ivar reply: where its L{Outcome} goes: a L{Deferred} (L{DataServer.submit}) or a
        callable taking the L{Outcome} or a L{Failure}
        (L{DataServer.submit_with_callback}); L{None} once answered.
    """

    __slots__ = ("request", "hdr", "txn", "reply", "durable")

    def __init__(self, request: Request, hdr: TxnHeader, txn: Any, reply: Any) -> None:
        self.request = request
        self.hdr = hdr
        self.txn = txn
        self.reply = reply
        self.durable = False


def _answer(reply: Any, result: Any) -> None:
    """
    Give an L{Outcome} or a L{Failure} to a reply target (see L{_InFlight.reply}).

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
        DataServer.log_.failure("reply callback {reply!r} failed", reply=reply)


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
    if opcode in codes.CREATE_OPS:
        return Outcome(zxid, 0, Create2Response(result.path, result.stat))
    if opcode == codes.OP_SET_DATA:
        return Outcome(zxid, 0, SetDataResponse(result.stat))
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


class DataServer(service.Service):
    """
    The sequencer, as a Twisted service.

    @ivar config: the L{ServerConfig}.
    @ivar tree: the applied L{DataTree} (the in-process read view).
    @ivar sessions: the L{SessionTable}.
    @ivar prep: the L{Prep} stage.
    @ivar acl: the L{AclChecker} (share it with the session server for reads).
    @ivar log: the L{IDurableLog}.
    @ivar epoch: the high 32 bits of the zxids this server assigns.
    """

    log_ = Logger()

    def __init__(
        self,
        config: ServerConfig,
        log: Any = None,
        clock: IReactorTime | None = None,
        tree: DataTree | None = None,
        epoch: int = 0,
        session_secret: int = ZOOKEEPER_SECRET,
    ) -> None:
        """
        Build the server and recover: replay every log record after C{tree}'s zxid.

        @param log: an L{IDurableLog} provider; a fresh L{MemoryLog} if L{None}.
        @param clock: the reactor (or a C{task.Clock}) for time and the loops.
        @param tree: a tree restored from a snapshot; a fresh one if L{None}.
        @param epoch: the zxid epoch to write in (raised to the log's if lower).
        @param session_secret: mixed into session passwords; keep it across restarts.
        """
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        if config.extended_types and config.server_id > 254:
            raise ValueError("extended types need a server id of at most 254")
        if config.tick_time_ms <= 0:
            raise ValueError(f"tick time must be positive: {config.tick_time_ms}")
        self.config = config
        self.clock = clock
        self.log = log if log is not None else MemoryLog()
        if tree is None:
            tree = DataTree(config.extended_types)
        else:
            # A tree loaded from a snapshot: recount the quota stats and re-mark the
            # quota'd paths, as ZooKeeper's setupQuota does after reading one.
            tree.quotas.rebuild()
        self.tree = tree
        self.acl = AclChecker(config.super_digest)
        self.sessions = SessionTable(
            config.server_id, config.tick_time_ms, self._now_ms(), session_secret
        )
        self.prep = Prep(self.tree, self.acl, config.extended_types, self.sessions)
        self._inflight: deque[_InFlight] = deque()
        self._syncs: deque[tuple[int, Deferred, Request]] = deque()
        self._listeners: list[Any] = []
        self._draining = False
        #: The log's optional synchronous append (see L{MemoryLog.append_durable}).
        self._append_durable = getattr(self.log, "append_durable", None)
        #: The log's optional Deferred-free append (see L{FileWriteAheadLog.append_quiet}),
        #: whose durability is reported once per group commit to L{_durable_upto}.
        self._append_quiet: Any = None
        #: Every write with a zxid up to this one is durable (quiet appends).
        self._durable_zxid = -1
        add_listener = getattr(self.log, "add_durable_listener", None)
        if self._append_durable is None and add_listener is not None:
            append_quiet = getattr(self.log, "append_quiet", None)
            if append_quiet is not None:
                add_listener(self._durable_upto, self._quiet_log_failed)
                self._append_quiet = append_quiet
        self._failure: Failure | None = None
        self._containers_in_flight: set[str] = set()
        self._expiry_call: Any = None
        self._container_loop: LoopingCall | None = None
        self._recover()
        last = self.tree.last_zxid
        self.epoch = max(epoch, last >> 32)
        self._counter = last & 0xFFFFFFFF if self.epoch == last >> 32 else 0

    # -- recovery --------------------------------------------------------------------

    def _recover(self) -> None:
        tree = self.tree
        replayed = 0
        for _zxid, record in self.log.replay(tree.last_zxid):
            hdr, txn = decode_txn(record)
            tree.apply(hdr, txn)
            replayed += 1
        now = self._now_ms()
        for session_id, timeout_ms in tree.sessions.items():
            self.sessions.track(session_id, timeout_ms, now)
            self.sessions.advance_past(session_id)
        if replayed:
            self.log_.info(
                "recovered {count} txns up to zxid {zxid:#x}, {sessions} sessions",
                count=replayed,
                zxid=tree.last_zxid,
                sessions=len(tree.sessions),
            )

    # -- time --------------------------------------------------------------------------

    def _now_ms(self) -> int:
        # round, not int: a call due at a tick boundary must not read as 1 ms early.
        return round(self.clock.seconds() * 1000)

    # -- service -----------------------------------------------------------------------

    def startService(self) -> None:
        """
        Start session expiry and the container check.

        Expiry wakes at each tick boundary where session deadlines fall, as ZooKeeper's
        expirer thread sleeps until the next bucket's time, so a session expires when
        its rounded deadline passes, not up to a tick later.
        """
        service.Service.startService(self)
        self._schedule_expiry()
        interval_ms = self.config.container_check_interval_ms
        if interval_ms > 0:  # 0 or less: containers and TTL nodes are never reaped
            self._container_loop = LoopingCall(self.check_containers)
            self._container_loop.clock = self.clock
            self._container_loop.start(interval_ms / 1000.0, now=False)

    def _schedule_expiry(self) -> None:
        delay_ms = max(0, self.sessions.next_expiration_ms() - self._now_ms())
        self._expiry_call = self.clock.callLater(delay_ms / 1000.0, self._expiry_tick)

    def _expiry_tick(self) -> None:
        self._expiry_call = None
        try:
            self.expire_sessions()
        except Exception:
            self.log_.failure("session expiry failed")
        if self.running:
            self._schedule_expiry()

    def stopService(self) -> Deferred | None:
        """Stop the loops and close the log."""
        service.Service.stopService(self)
        if self._expiry_call is not None and self._expiry_call.active():
            self._expiry_call.cancel()
        self._expiry_call = None
        if self._container_loop is not None and self._container_loop.running:
            self._container_loop.stop()
        self._container_loop = None
        return self.log.close()

    # -- the commit stream ---------------------------------------------------------

    def subscribe(self, listener: Any) -> None:
        """Add an L{ICommitListener}; it sees every txn committed from now on."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Any) -> None:
        """Remove a listener added with L{subscribe}."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- writes ----------------------------------------------------------------------

    @property
    def last_zxid(self) -> int:
        """The zxid of the last applied txn."""
        return self.tree.last_zxid

    @property
    def in_flight(self) -> int:
        """Number of writes prepped and not yet applied."""
        return len(self._inflight)

    def _next_zxid(self) -> int:
        self._counter += 1
        if self._counter > 0xFFFFFFFF:
            # ZooKeeper forces a new epoch (a leader election) when the counter runs
            # out; here the epoch simply moves on.
            self.epoch += 1
            self._counter = 1
        return (self.epoch << 32) | self._counter

    def submit(self, request: Request) -> Deferred:
        """
        Order, log and apply one write (or sync).

        A sync, or a read opcode (getData, exists, ...: see
        L{zkreg.data.reads.perform_read}), takes no zxid: it is answered once every
        write submitted before it has been applied, which orders a session's reads
        after its writes without the session server waiting itself.

        @return: a Deferred firing with the L{Outcome} after the txn is applied and
            published; it fails only with L{DataServerFailed}.
        """
        opcode = request.opcode
        if opcode == _OP_SYNC or opcode in READ_OPS:
            # Reads go on after a log failure: the applied tree is consistent.
            inflight = self._inflight
            if not inflight:
                return succeed(self._answer_now(request))
            waiting: Deferred = Deferred()
            self._syncs.append((inflight[-1].hdr.zxid, waiting, request))
            return waiting
        if self._failure is not None:
            return fail(DataServerFailed(str(self._failure.value)))
        deferred: Deferred = Deferred()
        self._write(request, deferred)
        return deferred

    def submit_with_callback(self, request: Request, callback: Any) -> None:
        """
        L{submit} without a Deferred: the same ordering, one call less per hop.

        C{callback} is called exactly once, with the L{Outcome}, or with a L{Failure}
        of L{DataServerFailed}; possibly before this method returns (a memory log, a
        read with no write in flight).  Commit listeners see the commit before it is
        called, as with L{submit}.  An exception it raises is logged and otherwise
        ignored.

        @param callback: a callable taking an L{Outcome} or a L{Failure}.
        """
        opcode = request.opcode
        if opcode == _OP_SYNC or opcode in READ_OPS:
            inflight = self._inflight
            if not inflight:
                _answer(callback, self._answer_now(request))
            else:
                self._syncs.append((inflight[-1].hdr.zxid, callback, request))
            return
        if self._failure is not None:
            _answer(callback, Failure(DataServerFailed(str(self._failure.value))))
            return
        self._write(request, callback)

    def _write(self, request: Request, reply: Any) -> None:
        """
        Prep, log and (once durable, after every earlier write) apply one write.

        When the log is durable on return and nothing is in flight or being applied,
        the write is applied at once: no queue, no Deferred between the stages.
        """
        if request.opcode == _OP_CLOSE_SESSION:
            self.sessions.set_closing(request.session_id)
        hdr, txn = self.prep.prep(request, self._next_zxid(), self._now_ms())
        inflight = self._inflight
        append_durable = self._append_durable
        if append_durable is not None:
            try:
                append_durable(hdr.zxid, encode_txn(hdr, txn))
            except Exception:
                self._log_failed(Failure(), _InFlight(request, hdr, txn, reply))
                return
            if not inflight and not self._draining:
                self._draining = True
                try:
                    self._apply(request, hdr, txn, reply)
                finally:
                    self._draining = False
                if inflight:
                    # Writes submitted by the listeners or the reply, queued meanwhile.
                    self._drain()
                return
            entry = _InFlight(request, hdr, txn, reply)
            entry.durable = True
            inflight.append(entry)
            self._drain()
            return
        entry = _InFlight(request, hdr, txn, reply)
        inflight.append(entry)
        append_quiet = self._append_quiet
        if append_quiet is not None:
            try:
                append_quiet(hdr.zxid, encode_txn(hdr, txn))
            except Exception:
                self._log_failed(Failure(), entry)
            return
        try:
            acknowledged = self.log.append(hdr.zxid, encode_txn(hdr, txn))
        except Exception:
            self._log_failed(Failure(), entry)
            return
        if acknowledged.called and not isinstance(acknowledged.result, Failure):
            # Already durable: skip the callback machinery.
            entry.durable = True
            self._drain()
        else:
            acknowledged.addCallbacks(
                self._durable, self._log_failed, callbackArgs=(entry,), errbackArgs=(entry,)
            )

    def _answer_now(self, request: Request) -> Outcome:
        if request.opcode == _OP_SYNC:
            record = request.record
            response = SyncResponse(getattr(record, "path", record))
            return Outcome(self.tree.last_zxid, 0, response)
        return perform_read(self.tree, request, self.acl)

    def _durable(self, _ignored: Any, entry: _InFlight) -> None:
        entry.durable = True
        self._drain()

    def _durable_upto(self, zxid: int) -> None:
        """The log synced every quiet append up to C{zxid}: apply them (one call a batch)."""
        self._durable_zxid = zxid
        self._drain()

    def _quiet_log_failed(self, reason: Failure) -> None:
        """The log failed: fail every write in flight (see L{_log_failed})."""
        inflight = self._inflight
        if inflight:
            self._log_failed(reason, inflight[0])
        elif self._failure is None:
            self._failure = reason
            self.log_.critical(
                "durable log failed; refusing writes: {reason}", reason=reason.getErrorMessage()
            )

    def _drain(self) -> None:
        """Apply the durable writes at the head of the queue, in zxid order."""
        if self._draining:
            return
        self._draining = True
        try:
            inflight = self._inflight
            while (
                inflight
                and (inflight[0].durable or inflight[0].hdr.zxid <= self._durable_zxid)
                and self._failure is None
            ):
                entry = inflight.popleft()
                reply, entry.reply = entry.reply, None
                self._apply(entry.request, entry.hdr, entry.txn, reply)
        finally:
            self._draining = False

    def _apply(self, request: Request, hdr: TxnHeader, txn: Any, reply: Any) -> None:
        """
        Apply one durable write, publish its commit, answer it, then the syncs and
        reads that waited for it.
        """
        zxid = hdr.zxid
        try:
            tree = self.tree
            result = tree.apply(hdr, txn)
            self.prep.committed(zxid)
            txn_type = hdr.type
            if txn_type == _OP_CLOSE_SESSION:
                self.sessions.remove(hdr.clientId)
            elif request.opcode == _OP_DELETE_CONTAINER and isinstance(request.record, str):
                self._containers_in_flight.discard(request.record)
            outcome = outcome_of(request.opcode, hdr, result, tree)
        except Exception:
            # A bug, not bad input (prep turns that into error txns): keep the
            # pipeline going and fail only this write.
            self.log_.failure("applying zxid {zxid:#x} failed", zxid=zxid)
            _answer(reply, Failure())
        else:
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
                )
                for listener in tuple(listeners):
                    try:
                        listener.committed(commit)
                    except Exception:
                        self.log_.failure("commit listener {listener!r} failed", listener=listener)
            if reply.__class__ is Deferred:
                reply.callback(outcome)
            else:
                _answer(reply, outcome)
        if self._syncs:
            self._release_syncs(zxid)

    def _release_syncs(self, zxid: int) -> None:
        """Answer the syncs and reads waiting for writes up to C{zxid}."""
        syncs = self._syncs
        while syncs and syncs[0][0] <= zxid:
            _, waiting, later = syncs.popleft()
            try:
                answer: Any = self._answer_now(later)
            except Exception:
                self.log_.failure("answering a read after zxid {zxid:#x} failed", zxid=zxid)
                answer = Failure()
            _answer(waiting, answer)

    def _log_failed(self, reason: Failure, entry: _InFlight) -> None:
        if self._failure is None:
            self._failure = reason
            self.log_.critical(
                "durable log failed at zxid {zxid:#x}; refusing writes: {reason}",
                zxid=entry.hdr.zxid,
                reason=reason.getErrorMessage(),
            )
        error = DataServerFailed(reason.getErrorMessage())
        inflight, self._inflight = self._inflight, deque()
        syncs, self._syncs = self._syncs, deque()
        self.prep.reset()
        for pending in inflight:
            reply, pending.reply = pending.reply, None
            if reply is not None:
                _answer(reply, Failure(error))
        reply, entry.reply = entry.reply, None
        if reply is not None:
            _answer(reply, Failure(error))
        for _, waiting, _ in syncs:
            _answer(waiting, Failure(error))

    # -- sessions ---------------------------------------------------------------------

    def create_session(self, timeout_ms: int) -> Deferred:
        """
        Create a session (a createSession txn) with an already negotiated timeout.

        @return: Deferred firing with its L{SessionGrant} once committed.
        """
        session_id = self.sessions.next_id()
        self.sessions.track(session_id, timeout_ms, self._now_ms())
        committed = self.submit(Request(session_id, 0, _OP_CREATE_SESSION, timeout_ms))
        password = self.sessions.password(session_id)
        return committed.addCallback(
            lambda _outcome: SessionGrant(session_id, password, timeout_ms)
        )

    def revalidate_session(self, session_id: int, password: bytes, timeout_ms: int) -> Deferred:
        """
        A client reconnects: accept its session if alive and the password matches.

        @return: Deferred firing with a L{SessionGrant} (touched, with the new timeout)
            or L{None}.
        """
        if not self.sessions.check_password(session_id, password):
            return succeed(None)
        if not self.sessions.touch(session_id, self._now_ms(), timeout_ms):
            return succeed(None)
        return succeed(SessionGrant(session_id, password, timeout_ms))

    def touch_sessions(self, session_ids: Iterable[int]) -> None:
        """The sessions showed signs of life now."""
        now = self._now_ms()
        touch = self.sessions.touch
        for session_id in session_ids:
            touch(session_id, now)

    def close_session(self, session_id: int) -> Deferred:
        """Close a session with a closeSession txn (cxid 0)."""
        return self.submit(Request(session_id, 0, _OP_CLOSE_SESSION, None))

    def session_grant(self, session_id: int) -> SessionGrant | None:
        """@return: the grant of a live session, or L{None}."""
        session = self.sessions.get(session_id)
        if session is None or session.closing:
            return None
        return SessionGrant(session_id, self.sessions.password(session_id), session.timeout_ms)

    def expire_sessions(self) -> list[int]:
        """
        Close every session whose deadline has passed (run each tick).

        @return: the expired session ids.
        """
        if self._failure is not None:
            return []
        expired = self.sessions.expired(self._now_ms())
        for session_id in expired:
            self.log_.info("expiring session {session:#x}", session=session_id)
            self.close_session(session_id)
        return expired

    # -- containers and TTL nodes --------------------------------------------------------

    def check_containers(self) -> list[str]:
        """
        Delete empty containers and expired TTL nodes (run every
        C{container_check_interval_ms}).

        @return: the paths a deleteContainer was submitted for.
        """
        if self._failure is not None:
            return []
        submitted = []
        for path in deletion_candidates(self.tree, self._now_ms()):
            if path in self._containers_in_flight:
                continue
            self._containers_in_flight.add(path)
            submitted.append(path)
            self.submit(Request(0, 0, _OP_DELETE_CONTAINER, path))
        return submitted
