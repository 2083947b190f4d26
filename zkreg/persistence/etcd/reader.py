"""
Rebuilding and following the tree from etcd: what a standby data server runs.

L{LogReader.load} reads the latest snapshot (if any) and every log slot after it;
L{LogReader.follow} then watches the log prefix from the last revision read and
applies each group as it completes, so a standby that takes over starts from a warm
tree.  A watch whose revision was compacted (a snapshot deleted the log under it)
reloads the snapshot and goes on; a broken stream re-reads from the last slot and
watches again.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from zkreg.data.applier import replayed
from zkreg.data.dedup import ReplyCache
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import decode_logged_txn
from zkreg.persistence.etcd.client import EtcdClient, KeyValue, Watch, WatchCompacted
from zkreg.persistence.etcd.layout import GroupDecoder, Layout
from zkreg.persistence.etcd.snapshots import load_snapshot

__all__ = ["LogReader"]

_log = Logger(namespace="zkreg.persistence.etcd.reader")

#: slots read per range request while catching up
PAGE = 64
#: pause before watching again after a broken stream
REWATCH_S = 0.2


class LogReader:
    """
    The tree as the log in etcd says it is.

    @ivar tree: the L{DataTree} built so far.
    @ivar next_seq: the next slot to read.
    @ivar revision: the etcd revision everything up to C{next_seq} was read at.
    @ivar replies: the L{ReplyCache} of the stamped writes read (exactly-once).
    @ivar reloads: how many times a compacted watch made it reload the snapshot.
    """

    def __init__(
        self, client: EtcdClient, layout: Layout, extended_types: bool = False, clock: Any = None
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self._client = client
        self._layout = layout
        self._extended_types = extended_types
        self._clock = clock
        self.tree = DataTree(extended_types)
        #: the replies of stamped writes (exactly-once), rebuilt from the log read
        self.replies = ReplyCache()
        self.next_seq = 0
        self.revision = 0
        self.reloads = 0
        self.last_zxid_in_log = 0
        self._decoder = GroupDecoder()
        self._watch: Watch | None = None
        self._following = False

    @defer.inlineCallbacks
    def load(self):
        """Read the latest snapshot and the log after it."""
        replies = ReplyCache()
        loaded = yield load_snapshot(self._client, self._layout, self._extended_types, replies)
        if loaded is None:
            self.tree = DataTree(self._extended_types)
            self.next_seq = 0
        else:
            self.tree, covered = loaded
            self.next_seq = covered + 1
        self._decoder = GroupDecoder()
        self.replies = replies
        self.last_zxid_in_log = self.tree.last_zxid
        yield self.catch_up()

    @defer.inlineCallbacks
    def catch_up(self):
        """Read every slot from C{next_seq} to the end of the log."""
        layout = self._layout
        while True:
            kvs, more, revision = yield self._client.get_prefix(
                layout.log, start=layout.slot(self.next_seq), limit=PAGE
            )
            for kv in kvs:
                if not self._take(kv):
                    # A snapshot deleted the slots we needed: start over from it.
                    yield self.load()
                    return
            self.revision = max(self.revision, revision)
            if not more:
                return

    def _take(self, kv: KeyValue) -> bool:
        """Apply one slot; @return: False when it is not the one expected (a gap)."""
        seq = self._layout.seq_of(kv.key)
        if seq < self.next_seq:
            return True
        if seq > self.next_seq:
            return False
        self.next_seq = seq + 1
        tree = self.tree
        replies = self.replies
        for zxid, record in self._decoder.feed(kv.value):
            if zxid <= tree.last_zxid:
                continue
            hdr, txn, stamp, opcode = decode_logged_txn(record)
            replayed(replies, tree, hdr, tree.apply(hdr, txn), stamp, opcode)
            self.last_zxid_in_log = zxid
        return True

    # -- following ----------------------------------------------------------------------

    def follow(self) -> None:
        """Watch the log and apply what comes, until L{stop}."""
        self._following = True
        self._watch_from_here()

    def _watch_from_here(self) -> None:
        if not self._following:
            return
        watch = self._client.watch_prefix(self._layout.log, self.revision + 1, self._on_events)
        self._watch = watch
        watch.done.addCallbacks(self._watch_ended, self._watch_broke)

    def _on_events(self, events: list[tuple[str, KeyValue]], revision: int) -> None:
        for kind, kv in events:
            if kind != "PUT":
                continue  # a snapshot deleting slots we already have
            if not self._take(kv):
                self._restart(reload=True)
                return
            self.revision = max(self.revision, kv.mod_revision)

    def _watch_ended(self, _ignored: Any) -> None:
        self._watch = None

    def _watch_broke(self, failure: Any) -> None:
        self._watch = None
        if not self._following:
            return
        self._restart(reload=bool(failure.check(WatchCompacted)))

    def _restart(self, reload: bool) -> None:
        if self._watch is not None:
            watch, self._watch = self._watch, None
            watch.cancel()
        if reload:
            self.reloads += 1
            _log.info("log compacted under the standby's watch: reloading the snapshot")

        def again() -> defer.Deferred:
            return self.load() if reload else self.catch_up()

        resumed = task.deferLater(self._clock, REWATCH_S, again)
        resumed.addCallback(lambda _: self._watch_from_here())
        resumed.addErrback(self._resume_failed, reload)

    def _resume_failed(self, failure: Any, reload: bool) -> None:
        if not self._following:
            return
        _log.warn("re-reading the log failed: {why}", why=failure.getErrorMessage())
        self._restart(reload)

    def stop(self) -> None:
        """Stop following (the tree stays as read)."""
        self._following = False
        if self._watch is not None:
            watch, self._watch = self._watch, None
            watch.cancel()
