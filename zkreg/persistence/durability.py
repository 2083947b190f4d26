"""
One way to hear how far a log is durable, whatever the log.

The data server's sequencer appends records and wants one report: "every record up to
zxid N is durable" (or "the log failed").  Logs differ in how they say it:

  - L{zkreg.persistence.wal.FileWriteAheadLog} reports it per group commit to the
    listeners of C{add_durable_listener}, for records queued with C{append_quiet};
  - L{zkreg.persistence.memlog.MemoryLog} is durable on return (C{append_durable});
  - any other L{zkreg.interfaces.IDurableLog} returns a Deferred per C{append}, which
    may fire in any order.

L{DurabilityFeed} hides the difference behind that single listener API, so the
sequencer has one path (and an etcd log only has to provide one of the three).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.python.failure import Failure

__all__ = ["DurabilityFeed"]


class DurabilityFeed:
    """
    Appends to a log and reports durability through one listener pair.

    @ivar append: C{append(zxid, record)}: queue one record.  It may call
        C{on_durable} before it returns (a memory log).  It raises when the log cannot
        take the record (closed, failed, or a zxid out of order).
    @ivar reports_during_append: whether C{on_durable} may be called before C{append}
        returns: true for a memory log, false for the file WAL (which reports from its
        writer thread's batches) and for a log saying C{acknowledges_later} (etcd).
    """

    def __init__(
        self,
        log: Any,
        on_durable: Callable[[int], None],
        on_failed: Callable[[Failure], None],
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        """
        @param log: an L{zkreg.interfaces.IDurableLog} provider.
        @param on_durable: called with N when every record up to zxid N is durable.
        @param on_failed: called once with a L{Failure} when the log fails: the
            records not reported durable never will be.
        @param on_recovered: called when a failed log takes appends again (a log with
            C{add_recovery_listener}, like the file WAL once space or descriptors
            are back); the next append follows the last zxid reported durable.
        """
        self._log = log
        self._on_durable = on_durable
        self._on_failed = on_failed
        self._on_recovered = on_recovered
        self._failed = False
        add_recovery_listener = getattr(log, "add_recovery_listener", None)
        if add_recovery_listener is not None:
            add_recovery_listener(self._recovered)
        self.append: Callable[[int, bytes], None]
        append_durable = getattr(log, "append_durable", None)
        add_listener = getattr(log, "add_durable_listener", None)
        append_quiet = getattr(log, "append_quiet", None)
        self.reports_during_append = True
        if append_durable is not None:
            self._append_durable = append_durable
            self.append = self._append_synchronously
        elif add_listener is not None and append_quiet is not None:
            add_listener(on_durable, self._fail_once)
            self.append = append_quiet
            self.reports_during_append = False
        else:
            self.reports_during_append = getattr(log, "acknowledges_later", False) is not True
            #: zxids appended and not yet reported, in order, and those acknowledged.
            self._unreported: deque[int] = deque()
            self._acknowledged: set[int] = set()
            self.append = self._append_deferred

    def _append_synchronously(self, zxid: int, record: bytes) -> None:
        self._append_durable(zxid, record)
        self._on_durable(zxid)

    def _append_deferred(self, zxid: int, record: bytes) -> None:
        acknowledged = self._log.append(zxid, record)
        self._unreported.append(zxid)
        acknowledged.addCallbacks(self._acknowledge, self._fail_once, callbackArgs=(zxid,))

    def _acknowledge(self, _ignored: Any, zxid: int) -> None:
        """One append is durable: report the longest acknowledged prefix, if it grew."""
        if self._failed:
            return
        unreported = self._unreported
        acknowledged = self._acknowledged
        acknowledged.add(zxid)
        durable = None
        while unreported and unreported[0] in acknowledged:
            durable = unreported.popleft()
            acknowledged.discard(durable)
        if durable is not None:
            self._on_durable(durable)

    def _recovered(self) -> None:
        self._failed = False
        if self._on_recovered is not None:
            self._on_recovered()

    def _fail_once(self, reason: Failure) -> None:
        if self._failed:
            return
        self._failed = True
        self._on_failed(reason)
