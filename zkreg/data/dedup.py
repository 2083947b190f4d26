"""
Exactly-once writes: the replies a resubmitted write must get instead of being applied
again.

A session server that loses its data server holds the writes it had sent, and submits
them again once a data server is back; some of them may have been committed already
(the data server died between commit and reply).  Each such write carries a
L{zkreg.data.messages.WriteStamp}: the session server's id (C{origin}) and its own
per-session sequence number.  The data tier logs the stamp with the txn (see
L{zkreg.data.txncodec.encode_stamped_txn}) and keeps the reply of every stamped write
its session server has not acknowledged yet; a write arriving with a stamp already
applied gets that reply, and one arriving while its twin is still in flight gets the
twin's reply.  The replies are not logged: applying the log again yields them
(L{zkreg.data.applier.outcome_of}), so replay rebuilds this cache exactly.  A snapshot
carries the cache as it is at its zxid (L{ReplyCache.items}), since the log before a
snapshot is not replayed (and is purged).

The cache stays small: each submit tells which replies its session server already
has (C{acked}), and a session's entries go when the session closes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from zkreg.data.messages import Outcome, WriteStamp

__all__ = ["ReplyCache"]


class ReplyCache:
    """
    Per (session, origin): the replies of applied stamped writes not yet acknowledged.
    """

    def __init__(self) -> None:
        #: per (session, origin), replies by write number in the order recorded (an
        #: OrderedDict: acknowledged ones are dropped from its front, where a dict
        #: would scan past the holes they leave each time)
        self._replies: dict[tuple[int, int], OrderedDict[int, Outcome]] = {}
        self._by_session: dict[int, set[int]] = {}
        #: (session, origin, seq) of stamped writes in flight -> replies of twins.
        self._in_flight: dict[tuple[int, int, int], list[Any]] = {}

    def __len__(self) -> int:
        return sum(len(replies) for replies in self._replies.values())

    def lookup(self, session_id: int, stamp: WriteStamp) -> Outcome | None:
        """@return: the recorded reply of this stamped write, or L{None}."""
        replies = self._replies.get((session_id, stamp.origin))
        if replies is None:
            return None
        return replies.get(stamp.seq)

    def forget_acked(self, session_id: int, stamp: WriteStamp) -> None:
        """Drop the replies the stamp says its session server has received."""
        key = (session_id, stamp.origin)
        replies = self._replies.get(key)
        if not replies:
            return
        acked = stamp.acked
        # Replies are recorded in their writes' order, so the acknowledged ones are
        # at the front: drop them from there and stop at the first one kept (a scan
        # of every reply cost a tenth of the data server's time per pipelined write).
        # Were one out of order, it would only be kept longer, never lost too early.
        while replies:
            first = next(iter(replies))
            if first > acked:
                break
            del replies[first]
        if not replies:
            self._drop(key)

    def recorded(self, session_id: int, stamp: WriteStamp, outcome: Outcome) -> None:
        """A stamped write was applied with C{outcome}."""
        key = (session_id, stamp.origin)
        replies = self._replies.get(key)
        if replies is None:
            replies = self._replies[key] = OrderedDict()
            self._by_session.setdefault(session_id, set()).add(stamp.origin)
        replies[stamp.seq] = outcome
        self.forget_acked(session_id, stamp)

    def items(self) -> Iterator[tuple[int, WriteStamp, Outcome]]:
        """
        @return: every recorded reply as C{(session id, stamp, outcome)} (the stamp's
            C{acked} is 0): what a snapshot keeps, so that a write committed before it
            is still recognised when resubmitted after a restart.
        """
        for (session_id, origin), replies in self._replies.items():
            for seq, outcome in replies.items():
                yield session_id, WriteStamp(origin, seq), outcome

    def session_closed(self, session_id: int) -> None:
        """Forget every reply of a closed session (it can submit nothing more)."""
        for origin in self._by_session.pop(session_id, ()):
            self._replies.pop((session_id, origin), None)

    def _drop(self, key: tuple[int, int]) -> None:
        del self._replies[key]
        origins = self._by_session.get(key[0])
        if origins is not None:
            origins.discard(key[1])
            if not origins:
                del self._by_session[key[0]]

    # -- twins in flight -------------------------------------------------------------

    def start(self, session_id: int, stamp: WriteStamp) -> bool:
        """
        A stamped write enters the pipeline.

        @return: False when its twin is already in flight (then L{join} it instead).
        """
        key = (session_id, stamp.origin, stamp.seq)
        if key in self._in_flight:
            return False
        self._in_flight[key] = []
        return True

    def join(self, session_id: int, stamp: WriteStamp, reply: Any) -> None:
        """Have C{reply} answered with the reply of the twin in flight."""
        self._in_flight[(session_id, stamp.origin, stamp.seq)].append(reply)

    def finish(self, session_id: int, stamp: WriteStamp) -> list[Any]:
        """@return: the replies that joined this write (to answer like it)."""
        return self._in_flight.pop((session_id, stamp.origin, stamp.seq), None) or []

    def abandon_all(self) -> list[Any]:
        """The pipeline failed: @return: every joined reply, and forget what is in flight."""
        joined = [reply for replies in self._in_flight.values() for reply in replies]
        self._in_flight.clear()
        return joined
