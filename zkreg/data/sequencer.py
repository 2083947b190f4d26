"""
The sequencer: the first half of the data server, the single orderer of every write.

For each write it assigns the next zxid (C{epoch << 32 | counter}), preps it into a txn
(L{zkreg.data.prep}) and appends the encoded txn to the durable log.  The log reports
how far it is durable through one listener (L{zkreg.persistence.durability}); the
sequencer then hands the durable writes to the L{zkreg.data.applier.Applier}
I{strictly in zxid order} (an append acknowledged early waits for its predecessors).
Prep runs at once, so many writes can be in flight while the log batches their syncs
(group commit).

If the log fails the sequencer stops taking writes: every write in flight and every
later one fails (the txns after the failed one were prepped on top of it, so nothing
can be applied safely).  A log that recovers by itself (the file WAL once disk space or
descriptors are back) says so, and the sequencer takes writes again, numbering them
right after the last applied txn (the failed ones were never acknowledged nor kept).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from zkreg.data import codes
from zkreg.data.applier import Applier, answer
from zkreg.data.messages import Request
from zkreg.data.prep import Prep
from zkreg.data.sessions import SessionTable
from zkreg.data.txncodec import encode_stamped_txn, encode_txn
from zkreg.persistence.durability import DurabilityFeed
from zkreg.proto.records import TxnHeader

__all__ = ["DataServerFailed", "Sequencer"]

_OP_CLOSE_SESSION = codes.OP_CLOSE_SESSION

_log = Logger(namespace="zkreg.data.sequencer")


class DataServerFailed(Exception):
    """The durable log failed; the data server takes no writes until it recovers."""


class _InFlight:
    """
    One write between prep and apply.

    @ivar reply: where its L{Outcome} goes (see L{zkreg.data.applier.answer}); L{None}
        once answered.
    """

    __slots__ = ("request", "hdr", "txn", "reply", "record")

    def __init__(
        self, request: Request, hdr: TxnHeader, txn: Any, reply: Any, record: bytes | None
    ) -> None:
        self.request = request
        self.hdr = hdr
        self.txn = txn
        self.reply = reply
        #: the txn's log record (the commit stream sends it as it is)
        self.record = record


class Sequencer:
    """
    Orders, preps and logs writes; applies them through the applier once durable.

    @ivar epoch: the high 32 bits of the zxids assigned.
    @ivar failure: the log's L{Failure} once it failed, else L{None}.
    """

    def __init__(
        self,
        prep: Prep,
        sessions: SessionTable,
        applier: Applier,
        log: Any,
        now_ms: Callable[[], int],
        epoch: int,
        last_zxid: int,
        reopen_session: Callable[[int], None] | None = None,
    ) -> None:
        """
        @param log: the L{zkreg.interfaces.IDurableLog}.
        @param reopen_session: called for each session whose closeSession failed with
            the log, so that it is tracked (and can expire) again.
        @param now_ms: the clock, in ms, for the txns' time.
        @param epoch: the zxid epoch to write in (raised to C{last_zxid}'s if lower).
        @param last_zxid: the zxid of the last txn in the log.
        """
        self._prep = prep
        self._sessions = sessions
        self._applier = applier
        self._now_ms = now_ms
        self.epoch = max(epoch, last_zxid >> 32)
        self._counter = last_zxid & 0xFFFFFFFF if self.epoch == last_zxid >> 32 else 0
        self._inflight: deque[_InFlight] = deque()
        self._durable_zxid = -1
        self._draining = False
        self.failure: Failure | None = None
        self._reopen_session = reopen_session
        #: the zxid of the last txn applied (or recovered)
        self._last_applied = last_zxid
        feed = DurabilityFeed(log, self._durable_upto, self._log_failed, self._log_recovered)
        self._append = feed.append
        #: whether L{write} may apply the write (and answer it) before it returns
        self.applies_during_write = feed.reports_during_append

    @property
    def in_flight(self) -> int:
        """Number of writes prepped and not yet applied."""
        return len(self._inflight)

    def last_in_flight(self) -> int | None:
        """@return: the zxid of the last write not yet applied, or L{None}."""
        inflight = self._inflight
        return inflight[-1].hdr.zxid if inflight else None

    def write(self, request: Request, reply: Any) -> None:
        """
        Prep, log and (once durable, after every earlier write) apply one write.

        @param reply: a L{Deferred} or a callable (see L{zkreg.data.applier.answer});
            it gets the L{Outcome}, or a L{Failure} of L{DataServerFailed}.
        """
        if self.failure is not None:
            answer(reply, Failure(DataServerFailed(str(self.failure.value))))
            return
        stamp = request.stamp
        if stamp is not None:
            # Exactly-once: a resubmitted write is answered, not applied again.
            replies = self._applier.replies
            recorded = replies.lookup(request.session_id, stamp)
            if recorded is not None:
                replies.forget_acked(request.session_id, stamp)
                answer(reply, recorded)
                return
            if not replies.start(request.session_id, stamp):
                replies.join(request.session_id, stamp, reply)
                return
        if request.opcode == _OP_CLOSE_SESSION:
            self._sessions.set_closing(request.session_id)
        counter = self._counter + 1
        if counter > 0xFFFFFFFF:
            # ZooKeeper forces a new epoch (a leader election) when the counter runs
            # out; here the epoch simply moves on.
            self.epoch += 1
            counter = 1
        self._counter = counter
        zxid = (self.epoch << 32) | counter
        hdr, txn = self._prep.prep(request, zxid, self._now_ms())
        try:
            if stamp is None:
                record = encode_txn(hdr, txn)
            else:
                record = encode_stamped_txn(hdr, txn, stamp, request.opcode)
        except Exception:
            self._inflight.append(_InFlight(request, hdr, txn, reply, None))
            self._log_failed(Failure())
            return
        self._inflight.append(_InFlight(request, hdr, txn, reply, record))
        try:
            self._append(zxid, record)
        except Exception:
            self._log_failed(Failure())

    def _durable_upto(self, zxid: int) -> None:
        """The log is durable up to C{zxid}: apply what it covers, in order."""
        if zxid > self._durable_zxid:
            self._durable_zxid = zxid
        self._drain()

    def _drain(self) -> None:
        """Apply the durable writes at the head of the queue, in zxid order."""
        if self._draining:
            return
        self._draining = True
        try:
            inflight = self._inflight
            apply = self._applier.apply
            # Re-read per write: applying one may report more durable, or fail the log.
            while inflight and self.failure is None:
                entry = inflight[0]
                hdr = entry.hdr
                zxid = hdr.zxid
                if zxid > self._durable_zxid:
                    break
                inflight.popleft()
                reply, entry.reply = entry.reply, None
                self._last_applied = zxid
                apply(entry.request, hdr, entry.txn, reply, entry.record)
        finally:
            self._draining = False

    def _log_failed(self, reason: Failure) -> None:
        """The log failed: fail every write in flight, every waiting read, and refuse more."""
        inflight, self._inflight = self._inflight, deque()
        if self.failure is None:
            self.failure = reason
            at = f" at zxid {inflight[0].hdr.zxid:#x}" if inflight else ""
            _log.critical(
                "durable log failed{at}; refusing writes: {reason}",
                at=at,
                reason=reason.getErrorMessage(),
            )
        error = DataServerFailed(reason.getErrorMessage())
        self._prep.reset()
        for pending in inflight:
            if pending.request.opcode == _OP_CLOSE_SESSION and self._reopen_session:
                self._reopen_session(pending.request.session_id)
            reply, pending.reply = pending.reply, None
            if reply is not None:
                answer(reply, Failure(error))
        for twin in self._applier.replies.abandon_all():
            answer(twin, Failure(error))
        self._applier.fail_waiting(error)

    def _log_recovered(self) -> None:
        """The log takes appends again: so does the sequencer, after the last applied txn."""
        last = self._last_applied
        self.epoch = max(self.epoch, last >> 32)
        self._counter = last & 0xFFFFFFFF if self.epoch == last >> 32 else 0
        self._durable_zxid = last
        self.failure = None
        _log.warn("durable log recovered; taking writes again after zxid {zxid:#x}", zxid=last)
