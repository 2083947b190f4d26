"""
Rebuilding and following the tree from etcd: what a standby data server runs.

L{LogReader.load} reads the latest snapshot (if any) and every log slot after it;
the snapshot is a local one (L{zkreg.persistence.etcd.cache}) when the etcd log
continues it, else etcd's.  L{LogReader.follow} then watches the log prefix from the
last revision read and applies each group as it completes, so a standby that takes
over starts from a warm tree.  A broken stream, or a watch whose revision was
compacted, re-reads the log from the next slot the reader needs and watches again;
only when a snapshot deleted that slot does it load a snapshot again.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task, threads
from twisted.logger import Logger

from zkreg.data.applier import replayed
from zkreg.data.dedup import ReplyCache
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import decode_logged_txn
from zkreg.persistence.etcd.cache import LocalSnapshots
from zkreg.persistence.etcd.client import EtcdClient, KeyValue, Watch
from zkreg.persistence.etcd.layout import GroupDecoder, Layout
from zkreg.persistence.etcd.snapshots import load_snapshot, read_manifest
from zkreg.persistence.recovery import load_tree

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
    @ivar reloads: how many times a gap in the log (slots a snapshot deleted before
        they were read) made it load a snapshot again.
    @ivar last_slot_value: the value of slot C{next_seq - 1}, or L{None} when it was
        not read (the tree came from a snapshot).
    @ivar loaded_from: where the last L{load} took its snapshot: C{"local"} (the
        cache), C{"etcd"}, or C{"none"} (the log from its first slot).
    @ivar loaded_zxid: the zxid of that snapshot (0 for none).
    """

    def __init__(
        self,
        client: EtcdClient,
        layout: Layout,
        extended_types: bool = False,
        clock: Any = None,
        cache: LocalSnapshots | None = None,
    ) -> None:
        """
        @param cache: local snapshots to try before downloading etcd's.
        """
        if clock is None:
            from twisted.internet import reactor as clock
        self._client = client
        self._layout = layout
        self._extended_types = extended_types
        self._clock = clock
        self._cache = cache
        self.tree = DataTree(extended_types)
        #: the replies of stamped writes (exactly-once), rebuilt from the log read
        self.replies = ReplyCache()
        self.next_seq = 0
        self.revision = 0
        self.reloads = 0
        self.last_zxid_in_log = 0
        self.last_slot_value: bytes | None = None
        self.loaded_from = "none"
        self.loaded_zxid = 0
        self._decoder = GroupDecoder()
        self._watch: Watch | None = None
        self._following = False

    @defer.inlineCallbacks
    def load(self):
        """Read the latest snapshot (a local one if usable) and the log after it."""
        manifest = yield read_manifest(self._client, self._layout)
        loaded = yield self._load_local(manifest)
        if loaded is None:
            replies = ReplyCache()
            from_etcd = None
            if manifest is not None:
                from_etcd = yield load_snapshot(
                    self._client, self._layout, self._extended_types, replies, manifest
                )
            if from_etcd is None:
                self.tree = DataTree(self._extended_types)
                self.next_seq = 0
                self.loaded_from = "none"
            else:
                self.tree, covered = from_etcd
                self.next_seq = covered + 1
                self.loaded_from = "etcd"
        else:
            self.tree, covered, replies = loaded
            self.next_seq = covered + 1
            self.loaded_from = "local"
        self.loaded_zxid = self.tree.last_zxid
        self.last_slot_value = None
        self._decoder = GroupDecoder()
        self.replies = replies
        self.last_zxid_in_log = self.tree.last_zxid
        _log.info(
            "tree loaded from {source} snapshot at zxid {zxid:#x}; reading the log from slot {seq}",
            source=self.loaded_from,
            zxid=self.tree.last_zxid,
            seq=self.next_seq,
        )
        yield self.catch_up()

    @defer.inlineCallbacks
    def _load_local(self, manifest: dict[str, Any] | None):
        """
        @return: Deferred firing with C{(tree, covered seq, replies)} from the newest
            local snapshot the etcd log continues, or L{None}.
        """
        if self._cache is None:
            return None
        covered = -1 if manifest is None else int(manifest["seq"])
        for local in self._cache.candidates():
            slot_value = None
            if local.seq > covered:
                kv = yield self._client.get(self._layout.slot(local.seq))
                slot_value = None if kv is None else kv.value
            if not local.usable(manifest, slot_value):
                continue
            replies = ReplyCache()
            try:
                tree = yield threads.deferToThread(
                    load_tree, local.path, self._extended_types, replies=replies
                )
            except Exception as error:
                _log.warn(
                    "local snapshot {path} unreadable ({why}): passed over",
                    path=local.path,
                    why=error,
                )
                continue
            if tree.last_zxid != local.zxid:
                continue
            return tree, local.seq, replies
        return None

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
                    self.reloads += 1
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
        self.last_slot_value = kv.value
        tree = self.tree
        replies = self.replies
        for zxid, record in self._decoder.feed(kv.value):
            if zxid <= tree.last_zxid:
                continue
            hdr, txn, stamp, opcode = decode_logged_txn(record)
            replayed(replies, tree, hdr, tree.apply(hdr, txn), stamp, opcode)
            self.last_zxid_in_log = zxid
        return True

    @property
    def at_group_boundary(self) -> bool:
        """Whether the tree is exactly the log up to slot C{next_seq - 1}."""
        return not self._decoder.partial and self.last_slot_value is not None

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
        # Compacted or not, the slots from next_seq on may all still be there: read
        # them (catch_up loads a snapshot only if one deleted some).
        self._restart(reload=False)

    def _restart(self, reload: bool) -> None:
        if self._watch is not None:
            watch, self._watch = self._watch, None
            watch.cancel()
        if reload:
            self.reloads += 1
            _log.info("a gap in the log under the standby's watch: reloading the snapshot")

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
