"""
Recovery: a snapshot plus the log after it rebuilds the identical tree; a damaged
snapshot falls back to an older one; a torn tail is cut; damage in the middle stops
recovery naming the file and offset; sessions and their ephemerals come back; the
durable state feeds a real DataServer.
"""

from __future__ import annotations

import os

from twisted.internet import defer, task
from twisted.trial import unittest

from zkreg.config import ServerConfig
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import encode_txn
from zkreg.persistence.durable import open_durable_state
from zkreg.persistence.recovery import RecoveryError, load_tree, recover, write_tree_snapshot
from zkreg.persistence.segments import (
    RECORD_HEADER_BYTES,
    CorruptLogError,
    list_segments,
    scan_segment,
)
from zkreg.persistence.snapshot import HEADER_BYTES, list_snapshots
from zkreg.persistence.wal import FileWriteAheadLog
from zkreg.proto.records import ACL, Id

try:
    from durability_workload import build_tree, scratch_directory, tree_state, workload
except ImportError:  # tests/zkreg/persistence made a package
    from .durability_workload import build_tree, scratch_directory, tree_state, workload


class RecoveryTests(unittest.TestCase):
    def setUp(self) -> None:
        self.directory = scratch_directory(self)
        os.makedirs(self.directory)

    @defer.inlineCallbacks
    def log_and_apply(self, txns, tree: DataTree, snapshot_at: tuple[int, ...] = ()):
        """Append each txn to a WAL and apply it, snapshotting after the given counts."""
        wal = FileWriteAheadLog.open(self.directory, segment_bytes=64 * 1024)
        try:
            for index, (hdr, txn) in enumerate(txns, 1):
                yield wal.append(hdr.zxid, encode_txn(hdr, txn))
                tree.apply(hdr, txn)
                if index in snapshot_at:
                    wal.roll()
                    write_tree_snapshot(self.directory, tree, with_digest=True)
        finally:
            yield wal.close()

    @defer.inlineCallbacks
    def test_log_only(self):
        """With no snapshot the whole log replays to the identical tree."""
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(workload(2000), tree)
        state = recover(self.directory, extended_types=True)
        self.assertEqual(tree_state(state.tree), tree_state(tree))
        self.assertEqual((state.snapshot_path, state.replayed), (None, 2000))

    @defer.inlineCallbacks
    def test_snapshot_plus_replay(self):
        """The newest snapshot and the records after it give the identical digest."""
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(workload(3000), tree, snapshot_at=(1000, 2000))
        state = recover(self.directory, extended_types=True)
        self.assertEqual(tree_state(state.tree), tree_state(tree))
        self.assertEqual((state.snapshot_zxid, state.replayed), (2000, 1000))

    @defer.inlineCallbacks
    def test_damaged_newest_snapshot_falls_back(self):
        """A damaged newest snapshot is skipped (and said so); an older one is used."""
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(workload(3000), tree, snapshot_at=(1000, 2000))
        _, newest = list_snapshots(self.directory)[-1]
        with open(newest, "r+b") as snapshot_file:
            snapshot_file.seek(HEADER_BYTES + 50)
            snapshot_file.write(b"\x00\x01\x02")
        state = recover(self.directory, extended_types=True)
        self.assertEqual(tree_state(state.tree), tree_state(tree))
        self.assertEqual((state.snapshot_zxid, state.replayed), (1000, 2000))
        self.assertTrue(any("skipped damaged snapshot" in note for note in state.notes))
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_torn_tail_cut_and_earlier_txns_kept(self):
        """A partial last record is cut; every earlier txn is applied."""
        txns = list(workload(500))
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(txns[:499], tree)
        yield self.log_and_apply(txns[499:], DataTree(extended_types=True))
        _, last_segment = list_segments(self.directory)[-1]
        (record,) = scan_segment(last_segment).records
        os.truncate(last_segment, record.offset + RECORD_HEADER_BYTES + 3)
        state = recover(self.directory, extended_types=True)
        self.assertEqual(tree_state(state.tree), tree_state(tree))
        self.assertTrue(any("cut torn tail" in note for note in state.notes))

    @defer.inlineCallbacks
    def test_corrupt_middle_stops(self):
        """A bad checksum followed by good records stops recovery with file and offset."""
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(workload(300), tree)
        _, segment = list_segments(self.directory)[0]
        records = scan_segment(segment).records
        with open(segment, "r+b") as segment_file:
            segment_file.seek(records[100].offset + RECORD_HEADER_BYTES + 1)
            segment_file.write(b"\x99")
        error = self.assertRaises(CorruptLogError, recover, self.directory)
        self.assertEqual((error.path, error.offset), (segment, records[100].offset))

    def corrupt_record(self, segment: str, index: int) -> int:
        """Flip a payload byte of the C{index}th record of C{segment}; @return: its offset."""
        offset = scan_segment(segment).records[index].offset
        with open(segment, "r+b") as segment_file:
            segment_file.seek(offset + RECORD_HEADER_BYTES + 1)
            segment_file.write(b"\x99")
        return offset

    @defer.inlineCallbacks
    def test_log_before_the_newest_snapshot_not_read(self):
        """
        Damage in a segment wholly before the newest snapshot does not stop a restart
        (ZooKeeper reads only the log after its snapshot): those records are not
        replayed, and reading them cost a quarter of a big tree's recovery.
        """
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(workload(3000), tree, snapshot_at=(1000, 2000))
        segments = list_segments(self.directory)
        snapshot_zxid = list_snapshots(self.directory)[-1][0]
        before = [path for zxid, path in segments[1:] if zxid <= snapshot_zxid + 1]
        self.assertTrue(before, "the test needs a segment wholly before the newest snapshot")
        self.corrupt_record(segments[0][1], 10)
        state = recover(self.directory, extended_types=True)
        self.assertEqual(tree_state(state.tree), tree_state(tree))
        self.assertEqual((state.snapshot_zxid, state.replayed), (2000, 1000))

    @defer.inlineCallbacks
    def test_corrupt_log_after_the_newest_snapshot_stops(self):
        """Damage in a segment the replay needs still stops recovery, named."""
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(workload(3000), tree, snapshot_at=(1000, 2000))
        _, segment = list_segments(self.directory)[-1]
        offset = self.corrupt_record(segment, 10)
        error = self.assertRaises(CorruptLogError, recover, self.directory)
        self.assertEqual((error.path, error.offset), (segment, offset))

    @defer.inlineCallbacks
    def test_fallback_to_an_older_snapshot_checks_the_older_log(self):
        """
        When the newest snapshot is damaged, the older segments the replay then needs
        are checked as they are read: damage there stops recovery too.
        """
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(workload(3000), tree, snapshot_at=(1000, 2000))
        _, newest = list_snapshots(self.directory)[-1]
        os.truncate(newest, 100)
        older = [path for zxid, path in list_segments(self.directory) if 1001 < zxid <= 2001]
        self.assertTrue(older, "the test needs a segment between the two snapshots")
        offset = self.corrupt_record(older[0], 3)
        error = self.assertRaises(CorruptLogError, recover, self.directory)
        self.assertEqual((error.path, error.offset), (older[0], offset))
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_unfinished_snapshot_ignored(self):
        """A crash while a snapshot was written leaves a temp file, which is dropped."""
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(workload(400), tree)
        temp = os.path.join(self.directory, "snapshot.0000000000000190.4242.tmp")
        with open(temp, "wb") as temp_file:
            temp_file.write(b"ZKRGSNAP" + bytes(100))
        state = recover(self.directory, extended_types=True)
        self.assertEqual(tree_state(state.tree), tree_state(tree))
        self.assertFalse(os.path.exists(temp))

    @defer.inlineCallbacks
    def test_purged_log_with_damaged_snapshots_refused(self):
        """Every snapshot damaged and the log's start purged: refuse, don't guess."""
        tree = DataTree(extended_types=True)
        yield self.log_and_apply(workload(600), tree, snapshot_at=(300,))
        first_zxid, first_segment = list_segments(self.directory)[0]
        os.remove(first_segment)
        for _, path in list_snapshots(self.directory):
            os.truncate(path, 100)
        self.assertRaises(RecoveryError, recover, self.directory)
        self.flushLoggedErrors()

    def test_empty_directory(self) -> None:
        """A new data directory is created and gives the fresh tree."""
        directory = os.path.join(self.directory, "new")
        state = recover(directory)
        self.assertTrue(os.path.isdir(directory))
        self.assertEqual(tree_state(state.tree), tree_state(DataTree()))
        self.assertEqual(state.last_zxid, 0)

    @defer.inlineCallbacks
    def test_sessions_and_ephemerals_come_back(self):
        """The session table and every session's ephemerals survive a restart."""
        tree, _ = build_tree(1)
        yield self.log_and_apply(workload(1500), tree)
        state = recover(self.directory, extended_types=True)
        self.assertTrue(tree.sessions)
        self.assertEqual(state.tree.sessions, tree.sessions)
        self.assertEqual(state.tree.ephemerals.keys(), tree.ephemerals.keys())


class DurableStateTests(unittest.TestCase):
    """open_durable_state feeds H2's DataServer: writes go through the WAL and survive."""

    def setUp(self) -> None:
        self.directory = scratch_directory(self)

    def config(self, **overrides: object) -> ServerConfig:
        return ServerConfig(data_dir=self.directory, **overrides)  # type: ignore[arg-type]

    @defer.inlineCallbacks
    def test_data_server_round_trip(self):
        """Writes acknowledged by a DataServer on the WAL are there after a restart."""
        from zkreg.data.messages import Request
        from zkreg.data.server import DataServer
        from zkreg.proto.records import ACL, CreateRequest, Id

        clock = task.Clock()
        state = open_durable_state(self.config(snap_count=10))
        server = DataServer(self.config(), log=state.wal, clock=clock, tree=state.tree)
        state.attach(server)
        grant = yield server.create_session(30000)
        acl = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]
        outcomes = yield defer.gatherResults(
            [
                server.submit(
                    Request(grant.session_id, i, 1, CreateRequest(f"/n{i}", b"d%d" % i, acl, 0))
                )
                for i in range(40)
            ]
        )
        self.assertEqual({outcome.err for outcome in outcomes}, {0})
        yield state.snapshotter.stop()
        digest = server.tree.digest()
        yield state.close()

        again = open_durable_state(self.config())
        self.addCleanup(again.close)
        restarted = DataServer(self.config(), log=again.wal, clock=clock, tree=again.tree)
        self.assertEqual(restarted.tree.digest(), digest)
        self.assertIn(grant.session_id, restarted.tree.sessions)
        self.assertEqual(restarted.tree.get("/n7").data, b"d7")

    @defer.inlineCallbacks
    def test_log_failure_stops_writes_not_reads(self):
        """
        A failing disk (ENOSPC on sync) fails the write in flight and every later one,
        nothing of it is applied, and what was committed before stays readable.
        """
        import errno

        from zkreg.data.messages import Request
        from zkreg.data.server import DataServer, DataServerFailed
        from zkreg.proto.records import ACL, CreateRequest, Id

        clock = task.Clock()
        state = open_durable_state(self.config())
        self.addCleanup(state.close)
        server = DataServer(self.config(), log=state.wal, clock=clock, tree=state.tree)
        grant = yield server.create_session(30000)
        acl = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]

        def create(index: int) -> defer.Deferred:
            record = CreateRequest(f"/f{index}", b"x", acl, 0)
            return server.submit(Request(grant.session_id, index, 1, record))

        yield create(1)

        def disk_full() -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        state.wal._writer._sync = disk_full
        yield self.assertFailure(create(2), DataServerFailed)
        yield self.assertFailure(create(3), DataServerFailed)
        self.assertIsNotNone(server.tree.get("/f1"))
        self.assertIsNone(server.tree.get("/f2"))
        self.flushLoggedErrors(OSError)


class TreeFeatureTests(unittest.TestCase):
    """Snapshot + replay keep what the tree derives: null data and quota stats."""

    def setUp(self) -> None:
        self.directory = scratch_directory(self)
        os.makedirs(self.directory)

    def txns(self):
        from zkreg.proto.records import CreateTxn, SetDataTxn, TxnHeader

        acl = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]
        paths = [
            ("/app", b"a"),
            ("/zookeeper/quota/app", b""),
            ("/zookeeper/quota/app/zookeeper_limits", b"count=10,bytes=-1"),
            ("/zookeeper/quota/app/zookeeper_stats", b"count=0,bytes=0"),
            ("/app/x", b"xx"),
            ("/null", None),
            ("/app/y", b"yyy"),
            ("/app/z", None),
        ]
        zxid = 0
        for path, data in paths:
            zxid += 1
            yield (
                TxnHeader(1, zxid, zxid, 1000 + zxid, 1),
                CreateTxn(path, data, acl, False, -1),
            )
        zxid += 1
        yield TxnHeader(1, zxid, zxid, 1000 + zxid, 5), SetDataTxn("/app/x", b"longer", 1)

    def test_null_data_and_quotas_through_snapshot_and_replay(self) -> None:
        tree = DataTree()
        txns = list(self.txns())
        for hdr, txn in txns[:5]:
            tree.apply(hdr, txn)
        write_tree_snapshot(self.directory, tree, with_digest=True)
        for hdr, txn in txns[5:]:
            tree.apply(hdr, txn)
        loaded = load_tree(write_tree_snapshot(self.directory, tree, with_digest=True))
        self.assertIsNone(loaded.get("/null").data)
        self.assertEqual(tree_state(loaded), tree_state(tree))
        # Replaying the log after the first snapshot updates the quota stats the same way.
        partial = load_tree(list_snapshots(self.directory)[0][1])
        for hdr, txn in txns[5:]:
            partial.apply(hdr, txn)
        self.assertEqual(tree_state(partial), tree_state(tree))
        stats = tree.get("/zookeeper/quota/app/zookeeper_stats").data
        self.assertEqual(partial.get("/zookeeper/quota/app/zookeeper_stats").data, stats)
        self.assertIn(b"count=4", stats)
