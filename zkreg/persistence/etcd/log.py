"""
The log on etcd: a provider of L{zkreg.interfaces.IDurableLog} for the active data
server.

Appends are group-committed: while one etcd txn is in flight, later records queue,
and the next txn carries all of them (up to a slot's size; a bigger group spans
several slots, one txn each).  Every txn is fenced (DESIGN.md): it succeeds only if
the leader key's create revision is still this leader's token and the slot does not
exist yet.  A deposed or paused leader's append therefore fails atomically, whatever
the timing, with L{Fenced}; the data server then refuses writes and steps down.

An etcd that does not answer (no Raft leader, members down) is retried until it
does or until leadership is lost; a retry whose first attempt did land finds its own
slot (same token) and counts it as written.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.interfaces import IDurableLog
from zkreg.persistence.etcd.client import Compare, EtcdClient, EtcdError, EtcdUnavailable, put_op
from zkreg.persistence.etcd.layout import SLOT_PAYLOAD_BYTES, Layout, encode_group, split_slots

__all__ = ["EtcdLog", "Fenced"]

_log = Logger(namespace="zkreg.persistence.etcd.log")

#: pause between retries of an append etcd did not answer
RETRY_S = 0.1


class Fenced(Exception):
    """This data server is no longer the leader: its append was refused by etcd."""


@implementer(IDurableLog)
class EtcdLog:
    """
    The active data server's log on etcd.

    @ivar next_seq: the slot the next group starts at.
    @ivar durable_seq: the last slot of the last acknowledged group.
    @ivar durable_zxid: the zxid of the last acknowledged record.
    @ivar last_slot_value: the value of slot C{durable_seq} (L{None} until known).
    @ivar appends: etcd txns that wrote a slot (for metrics and the benchmark).
    @ivar groups: groups acknowledged.
    """

    #: An append is acknowledged by etcd's answer, never before C{append} returns (see
    #: L{zkreg.persistence.durability.DurabilityFeed.reports_during_append}).
    acknowledges_later = True

    def __init__(
        self,
        client: EtcdClient,
        layout: Layout,
        token: int,
        next_seq: int,
        last_zxid: int,
        clock: Any = None,
        on_fenced: Callable[[], None] | None = None,
        replayable: Iterable[tuple[int, bytes]] = (),
        last_slot_value: bytes | None = None,
    ) -> None:
        """
        @param token: the fencing token (the leader key's create revision).
        @param next_seq: the first free slot (the log's end when leadership was taken).
        @param last_zxid: the zxid of the last record in the log.
        @param on_fenced: called once when an append finds leadership gone.
        @param replayable: records read at takeover and not yet applied, for L{replay}.
        @param last_slot_value: the value of slot C{next_seq - 1}, if known.
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self._client = client
        self._layout = layout
        self.token = token
        self.next_seq = next_seq
        self.durable_seq = next_seq - 1
        self.durable_zxid = last_zxid
        self.last_slot_value = last_slot_value
        self._clock = clock
        self._on_fenced = on_fenced
        self._replayable = list(replayable)
        self._queue: deque[tuple[int, bytes, defer.Deferred]] = deque()
        self._writing = False
        self.failure: Failure | None = None
        self.closed = False
        self.appends = 0
        self.groups = 0
        self.retries = 0

    # -- IDurableLog ------------------------------------------------------------------

    def append(self, zxid: int, record: bytes) -> defer.Deferred:
        """Queue one record; the Deferred fires when its group is in etcd."""
        if self.closed:
            raise RuntimeError("append to a closed log")
        if self.failure is not None:
            return defer.fail(self.failure)
        acknowledged: defer.Deferred = defer.Deferred()
        self._queue.append((zxid, record, acknowledged))
        if not self._writing:
            self._write_next()
        return acknowledged

    def replay(self, after_zxid: int) -> list[tuple[int, bytes]]:
        """@return: the records read at takeover with a zxid above C{after_zxid}."""
        return [(zxid, record) for zxid, record in self._replayable if zxid > after_zxid]

    def close(self) -> defer.Deferred:
        """Refuse further appends (those in flight finish or fail on their own)."""
        self.closed = True
        return defer.succeed(None)

    # -- group commit -----------------------------------------------------------------

    def _take_group(self) -> list[tuple[int, bytes, defer.Deferred]]:
        queue = self._queue
        group = [queue.popleft()]
        size = len(group[0][1]) + 12
        while queue and size + len(queue[0][1]) + 12 <= SLOT_PAYLOAD_BYTES:
            entry = queue.popleft()
            size += len(entry[1]) + 12
            group.append(entry)
        return group

    def _write_next(self) -> None:
        if not self._queue or self.failure is not None:
            self._writing = False
            return
        self._writing = True
        group = self._take_group()
        slots = split_slots(self.token, encode_group((zxid, record) for zxid, record, _ in group))
        written = self._write_slots(slots)
        written.addCallbacks(
            self._group_written,
            self._group_failed,
            callbackArgs=(group, len(slots)),
            errbackArgs=(group,),
        )

    @defer.inlineCallbacks
    def _write_slots(self, slots: list[bytes]):
        for value in slots:
            yield self._write_slot(self.next_seq, value)
            self.next_seq += 1
            self.last_slot_value = value

    @defer.inlineCallbacks
    def _write_slot(self, seq: int, value: bytes):
        layout = self._layout
        key = layout.slot(seq)
        compare = [
            Compare.create_revision(layout.leader, self.token),
            Compare.create_revision(key, 0),
        ]
        while True:
            try:
                succeeded, _revision, _ = yield self._client.txn(compare, [put_op(key, value)])
            except EtcdUnavailable as failed:
                if self.failure is not None:
                    raise Fenced(str(self.failure.value)) from failed
                self.retries += 1
                yield task.deferLater(self._clock, RETRY_S, lambda: None)
                continue
            if succeeded:
                self.appends += 1
                return
            # Refused: either leadership is gone, or a retried txn had landed before.
            existing = yield self._client.get(key)
            if existing is not None and existing.value == value:
                self.appends += 1
                return
            raise Fenced(
                f"append to slot {seq} refused: leader token {self.token} is no longer current"
            )

    def _group_written(self, _ignored: Any, group: list, slot_count: int) -> None:
        self.groups += 1
        self.durable_seq = self.next_seq - 1
        self.durable_zxid = group[-1][0]
        for _, _, acknowledged in group:
            if not acknowledged.called:
                acknowledged.callback(None)
        self._write_next()

    def _group_failed(self, reason: Failure, group: list) -> None:
        if not reason.check(Fenced, EtcdError):
            _log.failure("etcd append failed", reason)
        self.fail(reason, group)

    def fail(self, reason: Failure, group: list | None = None) -> None:
        """
        Leadership is gone (fenced, or the lease lost): fail the records in flight
        and every later append.
        """
        first = self.failure is None
        if first:
            self.failure = reason
        pending = list(group or ()) + list(self._queue)
        self._queue.clear()
        self._writing = False
        # The owner hears first: a data server steps down (drops its session servers'
        # links) before its writes in flight fail, so that session servers resubmit
        # them to the new leader instead of passing an error on to clients.
        if first and self._on_fenced is not None:
            self._on_fenced()
        for _, _, acknowledged in pending:
            if not acknowledged.called:
                acknowledged.errback(reason)
