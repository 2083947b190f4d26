"""
In-memory providers of L{IDurableLog}: nothing survives the process.

L{MemoryLog} acknowledges every append at once (the default for tests and for a
server run without persistence).  L{ManualLog} holds every acknowledgement until the
test releases it, the way a group-committing file log acknowledges a batch after one
fsync, so tests can check that the data server applies strictly in zxid order whatever
the timing of acknowledgements.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from zkreg.interfaces import IDurableLog


@implementer(IDurableLog)
class MemoryLog:
    """
    A list of records; every append is durable immediately.

    @ivar records: C{(zxid, record)} pairs in append order.
    """

    def __init__(self) -> None:
        self.records: list[tuple[int, bytes]] = []
        self.closed = False

    def append(self, zxid: int, record: bytes) -> Deferred:
        """Keep the record; the Deferred has already fired."""
        if self.closed:
            raise RuntimeError("append to a closed log")
        self.records.append((zxid, record))
        return succeed(None)

    def append_durable(self, zxid: int, record: bytes) -> None:
        """
        L{append} for a caller that knows this log is durable on return: no
        Deferred.  Optional, beyond L{IDurableLog}: the data server uses it when a
        log has it (a log that may acknowledge later must not; L{ManualLog} sets it
        to L{None}).

        @raise RuntimeError: when the log is closed.
        """
        if self.closed:
            raise RuntimeError("append to a closed log")
        self.records.append((zxid, record))

    def replay(self, after_zxid: int) -> Iterable[tuple[int, bytes]]:
        """@return: the records with a zxid above C{after_zxid}, in order."""
        return [(zxid, record) for zxid, record in self.records if zxid > after_zxid]

    def close(self) -> Deferred:
        """Refuse further appends."""
        self.closed = True
        return succeed(None)


@implementer(IDurableLog)
class ManualLog(MemoryLog):
    """
    A L{MemoryLog} whose appends become durable only when L{flush} says so.

    @ivar waiting: C{(zxid, Deferred)} of the appends not yet acknowledged.
    """

    #: Appends are not durable on return: the data server must use L{append}.
    append_durable = None  # type: ignore[assignment]

    def __init__(self) -> None:
        MemoryLog.__init__(self)
        self.waiting: list[tuple[int, Deferred]] = []

    def append(self, zxid: int, record: bytes) -> Deferred:
        """Keep the record; the Deferred fires at the next L{flush} covering it."""
        MemoryLog.append(self, zxid, record)
        acknowledged: Deferred = Deferred()
        self.waiting.append((zxid, acknowledged))
        return acknowledged

    def flush(self, count: int | None = None, reverse: bool = False) -> int:
        """
        Acknowledge waiting appends as one batch.

        @param count: how many of the oldest to acknowledge; all when L{None}.
        @param reverse: fire the batch's Deferreds newest first (a log is free to
            acknowledge in any order; the data server must not care).
        @return: how many were acknowledged.
        """
        if count is None:
            count = len(self.waiting)
        batch, self.waiting = self.waiting[:count], self.waiting[count:]
        if reverse:
            batch.reverse()
        for _, acknowledged in batch:
            acknowledged.callback(None)
        return len(batch)

    def fail(self, reason: Exception) -> None:
        """Fail the oldest waiting append (a disk error)."""
        _, acknowledged = self.waiting.pop(0)
        acknowledged.errback(reason)
