"""
The data server: the single sequencer of every write, as a Twisted service.

It is an assembly of small parts, each with one job:

  - the L{zkreg.data.sequencer.Sequencer} assigns each write its zxid, preps it into a
    txn and appends it to the durable log;
  - the L{zkreg.data.applier.Applier} applies durable txns in zxid order, publishes
    the commit stream and answers writers (after their commit is published);
  - L{zkreg.data.expiry.SessionExpiry} closes sessions that were not touched in time;
  - L{zkreg.data.reaper.ContainerReaper} deletes empty containers and expired TTL
    nodes.

This class owns the session table (ids, passwords) and recovery, and routes: writes
to the sequencer, syncs and reads to the applier (after the writes in flight).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.application import service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.acl import AclChecker
from zkreg.data.applier import Applier, answer, outcome_of, replayed
from zkreg.data.dedup import ReplyCache
from zkreg.data.expiry import SessionExpiry
from zkreg.data.messages import Request, SessionGrant
from zkreg.data.observed import ObservedTime
from zkreg.data.prep import Prep
from zkreg.data.reads import READ_OPS
from zkreg.data.reaper import ContainerReaper
from zkreg.data.sequencer import DataServerFailed, Sequencer
from zkreg.data.sessions import ZOOKEEPER_SECRET, SessionTable
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import decode_logged_txn
from zkreg.persistence.memlog import MemoryLog

__all__ = ["DataServer", "DataServerFailed", "outcome_of"]

_OP_SYNC = codes.OP_SYNC
_OP_CREATE_SESSION = codes.OP_CREATE_SESSION
_OP_CLOSE_SESSION = codes.OP_CLOSE_SESSION


class DataServer(service.MultiService):
    """
    The data tier of one process: sequencer, applier, expiry and reaping.

    @ivar config: the L{ServerConfig}.
    @ivar tree: the applied L{DataTree} (the in-process read view).
    @ivar sessions: the L{SessionTable}.
    @ivar prep: the L{Prep} stage.
    @ivar acl: the L{AclChecker} (share it with the session server for reads).
    @ivar log: the L{IDurableLog}.
    @ivar sequencer: the L{Sequencer}.
    @ivar applier: the L{Applier}.
    @ivar expiry: the L{SessionExpiry} service.
    @ivar reaper: the L{ContainerReaper} service.
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
        replies: ReplyCache | None = None,
    ) -> None:
        """
        Build the server and recover: replay every log record after C{tree}'s zxid.

        @param log: an L{IDurableLog} provider; a fresh L{MemoryLog} if L{None}.
        @param clock: the reactor (or a C{task.Clock}) for time and the loops.
        @param tree: a tree restored from a snapshot; a fresh one if L{None}.
        @param epoch: the zxid epoch to write in (raised to the log's if lower).
        @param session_secret: mixed into session passwords; keep it across restarts.
        @param replies: the replies of stamped writes recovered with C{tree} (see
            L{zkreg.data.dedup}); an empty cache if L{None}.
        """
        super().__init__()
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
        self.acl = AclChecker(
            config.super_digest,
            sasl=config.sasl_config is not None,
            x509=config.client_tls,
        )
        #: the clock of session deadlines: wall time less the pauses (see
        #: L{zkreg.data.observed}); txn times and TTLs stay on the wall clock
        self.observed = ObservedTime(clock, config.pause_threshold_ms)
        self.sessions = SessionTable(
            config.server_id, config.tick_time_ms, self.observed.now_ms(), session_secret
        )
        self.prep = Prep(self.tree, self.acl, config.extended_types, self.sessions)
        self.replies = replies if replies is not None else ReplyCache()
        self._recover()
        self.applier = Applier(self.tree, self.acl, self.prep, self.sessions, self.replies)
        self.sequencer = Sequencer(
            self.prep,
            self.sessions,
            self.applier,
            self.log,
            self._now_ms,
            epoch,
            self.tree.last_zxid,
            self._reopen_session,
        )
        refusing = self._refusing_writes
        self.observed.setServiceParent(self)
        self.expiry = SessionExpiry(
            self.sessions, clock, self.observed.now_ms, self.close_session, refusing
        )
        self.expiry.setServiceParent(self)
        self.reaper = ContainerReaper(
            self.tree,
            clock,
            self._now_ms,
            self.submit_with_callback,
            refusing,
            config.container_check_interval_ms,
        )
        self.reaper.setServiceParent(self)

    # -- recovery --------------------------------------------------------------------

    def _recover(self) -> None:
        tree = self.tree
        count = 0
        replies = self.replies
        for _zxid, record in self.log.replay(tree.last_zxid):
            hdr, txn, stamp, opcode = decode_logged_txn(record)
            result = tree.apply(hdr, txn)
            replayed(replies, tree, hdr, result, stamp, opcode)
            count += 1
        now = self.observed.now_ms()
        for session_id, timeout_ms in tree.sessions.items():
            self.sessions.track(session_id, timeout_ms, now)
            self.sessions.advance_past(session_id)
        if count:
            self.log_.info(
                "recovered {count} txns up to zxid {zxid:#x}, {sessions} sessions",
                count=count,
                zxid=tree.last_zxid,
                sessions=len(tree.sessions),
            )

    # -- time --------------------------------------------------------------------------

    def _now_ms(self) -> int:
        # round, not int: a call due at a tick boundary must not read as 1 ms early.
        return round(self.clock.seconds() * 1000)

    def _refusing_writes(self) -> bool:
        return self.sequencer.failure is not None

    def write_failure(self) -> str | None:
        """
        Why writes are refused, or L{None} when they are taken: the durable log
        failed (a full disk, no descriptor left, an I/O error) and has not recovered
        yet.  What ruok, srvr and health checks report.
        """
        failure = self.sequencer.failure
        return None if failure is None else failure.getErrorMessage()

    def _reopen_session(self, session_id: int) -> None:
        self.sessions.reopen(session_id, self.observed.now_ms())

    # -- service -----------------------------------------------------------------------

    def stopService(self) -> Deferred:
        """Stop expiry and reaping, then close the log."""
        stopped = service.MultiService.stopService(self)
        return stopped.addCallback(lambda _: self.log.close())

    # -- the commit stream ---------------------------------------------------------

    def subscribe(self, listener: Any) -> None:
        """Add an L{ICommitListener}; it sees every txn committed from now on."""
        self.applier.subscribe(listener)

    def unsubscribe(self, listener: Any) -> None:
        """Remove a listener added with L{subscribe}."""
        self.applier.unsubscribe(listener)

    @property
    def commit_listeners(self) -> tuple[Any, ...]:
        """The listeners subscribed to the commit stream."""
        return self.applier.listeners

    # -- writes ----------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """The high 32 bits of the zxids this server assigns."""
        return self.sequencer.epoch

    @property
    def last_zxid(self) -> int:
        """The zxid of the last applied txn."""
        return self.tree.last_zxid

    @property
    def in_flight(self) -> int:
        """Number of writes prepped and not yet applied."""
        return self.sequencer.in_flight

    @property
    def applies_during_submit(self) -> bool:
        """
        Whether a write may be applied (and answered) before L{submit} returns: only
        on a log that is durable on return (the memory log).
        """
        return self.sequencer.applies_during_write

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
        if (opcode == _OP_SYNC or opcode in READ_OPS) and self.sequencer.in_flight == 0:
            return succeed(self.applier.answer_now(request))
        deferred: Deferred = Deferred()
        self.submit_with_callback(request, deferred)
        return deferred

    def submit_with_callback(self, request: Request, callback: Any) -> None:
        """
        L{submit} without a Deferred: the same ordering, one call less per hop.

        C{callback} is called exactly once, with the L{Outcome}, or with a L{Failure}
        of L{DataServerFailed}; possibly before this method returns (a memory log, a
        read with no write in flight).  Commit listeners see the commit before it is
        called, as with L{submit}.  An exception it raises is logged and otherwise
        ignored.

        @param callback: a callable taking an L{Outcome} or a L{Failure} (or a
            L{Deferred}).
        """
        opcode = request.opcode
        if opcode == _OP_SYNC or opcode in READ_OPS:
            # Reads go on after a log failure: the applied tree is consistent.
            after = self.sequencer.last_in_flight()
            if after is None:
                try:
                    result: Any = self.applier.answer_now(request)
                except Exception:
                    result = Failure()
                answer(callback, result)
            else:
                self.applier.answer_after(after, callback, request)
            return
        self.sequencer.write(request, callback)

    # -- sessions ---------------------------------------------------------------------

    def create_session(self, timeout_ms: int) -> Deferred:
        """
        Create a session (a createSession txn) with an already negotiated timeout.

        @return: Deferred firing with its L{SessionGrant} once committed.
        """
        session_id = self.sessions.next_id()
        self.sessions.track(session_id, timeout_ms, self.observed.now_ms())
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
        if not self.sessions.touch(session_id, self.observed.now_ms(), timeout_ms):
            return succeed(None)
        return succeed(SessionGrant(session_id, password, timeout_ms))

    def touch_sessions(self, session_ids: Iterable[int]) -> None:
        """The sessions showed signs of life now."""
        now = self.observed.now_ms()
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
        Close every session whose deadline has passed (run each tick by L{expiry}).

        @return: the expired session ids.
        """
        return self.expiry.expire()

    # -- containers and TTL nodes --------------------------------------------------------

    def check_containers(self) -> list[str]:
        """
        Delete empty containers and expired TTL nodes (run every
        C{container_check_interval_ms} by L{reaper}).

        @return: the paths a deleteContainer was submitted for.
        """
        return self.reaper.check()
