"""
Shared parts of the in-process CPU micro-benchmarks (L{bench.link_cpu},
L{bench.data_cpu}, L{bench.session_cpu}): a log acknowledging writes per batch, a
timer wrapped around a callable, a commit listener doing nothing, and the write
requests of each workload.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from zkreg.data import codes
from zkreg.data.messages import Request
from zkreg.persistence.memlog import MemoryLog
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import CreateRequest, DeleteRequest, Id, SetDataRequest

AUTH = (Id("ip", "127.0.0.1"),)
VALUE = b"x" * 100
OPEN = list(OPEN_ACL_UNSAFE)


class Timed:
    """Wraps a callable and sums the time spent in it, on C{clock} (CPU time by default)."""

    def __init__(
        self, call: Callable[..., Any], clock: Callable[[], float] = time.process_time
    ) -> None:
        self.call = call
        self.clock = clock
        self.seconds = 0.0

    def __call__(self, *args: Any) -> Any:
        started = self.clock()
        try:
            return self.call(*args)
        finally:
            self.seconds += self.clock() - started


class GroupCommitLog(MemoryLog):
    """
    A memory log reporting durability per batch, as the file WAL does
    (C{append_quiet}, C{add_durable_listener}): no Deferred per record.

    @ivar trim_above: forget the records once more than this many are kept (a long
        run's memory), or None to keep them all.
    """

    append_durable = None  # type: ignore[assignment]

    def __init__(self, trim_above: int | None = None) -> None:
        MemoryLog.__init__(self)
        self.trim_above = trim_above
        self._listeners: list[Any] = []
        self._last = -1

    def add_durable_listener(self, on_durable: Any, on_failed: Any) -> None:
        self._listeners.append(on_durable)

    def append_quiet(self, zxid: int, record: bytes) -> None:
        self.records.append((zxid, record))
        self._last = zxid

    def flush(self) -> None:
        """Report everything appended so far durable."""
        if self.trim_above is not None and len(self.records) > self.trim_above:
            del self.records[:]
        for listener in self._listeners:
            listener(self._last)


class NullListener:
    """A commit-stream subscriber that does nothing with the commits."""

    def committed(self, commit: Any) -> None:
        pass


def write_requests(op: str, session_id: int, count: int) -> list[Request]:
    """
    @param op: C{set} (setData of /node), C{create} (sequential creates under /queue)
        or anything else (an ephemeral /queue/e created and deleted, in turn).
    @return: C{count} write requests of C{session_id}.
    """
    if op == "set":
        return [
            Request(session_id, cxid, codes.OP_SET_DATA, SetDataRequest("/node", VALUE, -1), AUTH)
            for cxid in range(count)
        ]
    if op == "create":
        record = CreateRequest("/queue/n-", VALUE, OPEN, 2)
        return [Request(session_id, cxid, codes.OP_CREATE, record, AUTH) for cxid in range(count)]
    requests = []
    for cxid in range(0, count, 2):
        create = CreateRequest("/queue/e", VALUE, OPEN, 1)
        requests.append(Request(session_id, cxid, codes.OP_CREATE, create, AUTH))
        requests.append(
            Request(session_id, cxid + 1, codes.OP_DELETE, DeleteRequest("/queue/e", -1), AUTH)
        )
    return requests
