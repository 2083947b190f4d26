"""
Snapshots: a tree written and read back is the same tree (digest, indexes, child
order); damage is detected before anything is loaded; a forked snapshot captures the
tree at the fork while the parent goes on changing it; old snapshots are purged.
"""

from __future__ import annotations

import os

from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from zkreg.data.tree import DataTree
from zkreg.persistence import durable
from zkreg.persistence.durable import CHILD_NICENESS, ForkSnapshotter, SnapshotFailed
from zkreg.persistence.recovery import load_tree, write_tree_snapshot
from zkreg.persistence.segments import list_segments
from zkreg.persistence.snapshot import (
    HEADER_BYTES,
    SnapshotError,
    list_snapshots,
    read_snapshot,
    remove_temporaries,
    snapshot_name,
    write_snapshot,
)
from zkreg.persistence.wal import FileWriteAheadLog

try:
    from durability_workload import build_tree, scratch_directory, tree_state, workload
except ImportError:  # tests/zkreg/persistence made a package
    from .durability_workload import build_tree, scratch_directory, tree_state, workload


#: The stat fields L{SnapshotWriter.add_node} takes after path, data and ACL, in order.
PERSISTED_STAT = "czxid mzxid ctime mtime version cversion aversion ephemeral_owner pzxid".split()


class RoundTripTests(unittest.TestCase):
    def setUp(self) -> None:
        self.directory = scratch_directory(self)
        os.makedirs(self.directory)

    def test_tree_round_trip(self) -> None:
        """A loaded snapshot equals the tree written: digest, order, indexes, sessions."""
        tree, _ = build_tree(3000)
        path = write_tree_snapshot(self.directory, tree, with_digest=True)
        self.assertEqual(os.path.basename(path), snapshot_name(tree.last_zxid))
        loaded = load_tree(path, extended_types=True)
        self.assertEqual(tree_state(loaded), tree_state(tree))
        self.assertTrue(tree.ephemerals and tree.containers and tree.ttls and tree.sessions)

    def test_loaded_tree_applies_further(self) -> None:
        """A loaded tree goes on applying the log exactly like the original."""
        tree, _ = build_tree(1000)
        loaded = load_tree(write_tree_snapshot(self.directory, tree), extended_types=True)
        for hdr, txn in list(workload(1500))[1000:]:
            tree.apply(hdr, txn)
            loaded.apply(hdr, txn)
        self.assertEqual(tree_state(loaded), tree_state(tree))

    def test_acls_shared(self) -> None:
        """Nodes with equal ACLs share one ACL tuple after loading, as in the tree."""
        tree, _ = build_tree(500)
        loaded = load_tree(write_tree_snapshot(self.directory, tree), extended_types=True)
        distinct = {id(node.acl) for node in loaded.nodes.values()}
        self.assertLessEqual(len(distinct), 3)

    def test_loaded_children_share_the_index_strings(self) -> None:
        """
        Memory: a loaded node's children are keyed by the very path strings of the
        tree's index (no second string per node), as in a tree built by apply.
        """
        tree, _ = build_tree(500)
        loaded = load_tree(write_tree_snapshot(self.directory, tree), extended_types=True)
        for each in (tree, loaded):
            keys = {id(path) for path in each.nodes}
            children = [child for node in each.nodes.values() for child in node.child_paths()]
            self.assertEqual(len(children), len(each.nodes) - 1)
            self.assertTrue(all(id(child) in keys for child in children))

    def test_misordered_snapshot_refused_and_collector_back_on(self) -> None:
        """
        A snapshot with a valid checksum whose node comes before its parent is
        refused with SnapshotError, and the load leaves the garbage collector on.
        """
        from zkreg.persistence.snapshot import SnapshotWriter

        writer = SnapshotWriter(self.directory, 7, sync=False)
        acl = list(DataTree().get("/").acl)
        writer.add_node("/", b"", acl, 0, 0, 0, 0, 0, 1, 0, 0, 0)
        writer.add_node("/a/b", b"x", acl, 5, 5, 1, 1, 0, 0, 0, 0, 5)
        path = writer.finish()
        with self.assertRaises(SnapshotError) as caught:
            load_tree(path)
        self.assertIn("comes before its parent", str(caught.exception))
        import gc

        self.assertTrue(gc.isenabled())

    def test_tree_nodes_written_as_node_by_node(self) -> None:
        """
        L{SnapshotWriter.add_tree_nodes} (the snapshot child's loop) writes the very
        bytes L{SnapshotWriter.add_node} writes for the same nodes, across several
        buffer drains and with ACLs first seen in the middle of the stream.
        """
        from zkreg.persistence.snapshot import SnapshotWriter

        tree, _ = build_tree(3000)
        for index, node in enumerate(tree.nodes.values()):
            if index % 2 == 0:
                node.data = bytes(range(256)) * 32  # 8 KiB: several drains in all
        bodies = []
        for name in ("bulk", "each"):
            directory = os.path.join(self.directory, name)
            os.makedirs(directory)
            writer = SnapshotWriter(directory, tree.last_zxid, sync=False)
            if name == "bulk":
                writer.add_tree_nodes(tree.iter_nodes())
            else:
                for path, node in tree.iter_nodes():
                    stat = [getattr(node, name) for name in PERSISTED_STAT]
                    writer.add_node(path, node.data, node.acl, *stat)
            self.assertEqual(writer.node_count, len(tree.nodes))
            with open(writer.finish(), "rb") as snapshot:
                bodies.append(snapshot.read()[HEADER_BYTES:])
        self.assertGreater(len(bodies[0]), 3 << 20)
        self.assertEqual(bodies[0], bodies[1])
        self.assertGreater(len({id(node.acl) for node in tree.nodes.values()}), 1)

    def test_empty_tree(self) -> None:
        """A fresh tree (system nodes only) round-trips."""
        tree = DataTree()
        loaded = load_tree(write_tree_snapshot(self.directory, tree))
        self.assertEqual(tree_state(loaded), tree_state(tree))

    def test_header_fields(self) -> None:
        """The header carries the zxid; the content lists sessions and nodes."""
        path = write_snapshot(
            self.directory,
            0x500000007,
            [(0x100, 4000)],
            [("/", b"", (), 0, 0, 0, 0, 0, 0, 0, 0, 0)],
        )
        content = read_snapshot(path)
        self.assertEqual(content.header.zxid, 0x500000007)
        self.assertEqual(content.sessions, [(0x100, 4000)])
        self.assertEqual([node.path for node in content.nodes], ["/"])


class DamageTests(unittest.TestCase):
    def setUp(self) -> None:
        self.directory = scratch_directory(self)
        os.makedirs(self.directory)
        tree, _ = build_tree(300)
        self.path = write_tree_snapshot(self.directory, tree)

    def damage(self, offset: int, replacement: bytes) -> None:
        with open(self.path, "r+b") as snapshot_file:
            snapshot_file.seek(offset)
            snapshot_file.write(replacement)

    def test_flipped_byte(self) -> None:
        """A flipped byte in the body fails the checksum; nothing is loaded."""
        self.damage(HEADER_BYTES + 100, b"\xee")
        error = self.assertRaises(SnapshotError, load_tree, self.path)
        self.assertIn("checksum mismatch", str(error))
        self.assertIn(self.path, str(error))

    def test_truncated(self) -> None:
        """A snapshot cut short has no end marker."""
        os.truncate(self.path, os.path.getsize(self.path) // 2)
        error = self.assertRaises(SnapshotError, load_tree, self.path)
        self.assertIn("truncated", str(error))

    def test_bad_header(self) -> None:
        """A damaged header is reported as such."""
        self.damage(12, b"\x01")
        error = self.assertRaises(SnapshotError, load_tree, self.path)
        self.assertIn("header checksum", str(error))

    def test_not_a_snapshot(self) -> None:
        """Some other file is refused by its magic."""
        self.damage(0, b"NOTASNAP")
        self.assertRaises(SnapshotError, read_snapshot, self.path)

    def test_temporaries_removed(self) -> None:
        """Unfinished snapshot files are found and removed; finished ones stay."""
        temp = os.path.join(self.directory, "snapshot.0000000000000099.123.tmp")
        with open(temp, "wb") as temp_file:
            temp_file.write(b"ZKRGSNAP partial")
        self.assertEqual(remove_temporaries(self.directory), [temp])
        self.assertEqual([p for _, p in list_snapshots(self.directory)], [self.path])


class ForkSnapshotTests(unittest.TestCase):
    def setUp(self) -> None:
        self.directory = scratch_directory(self)
        os.makedirs(self.directory)

    @defer.inlineCallbacks
    def test_fork_snapshot_while_writes_continue(self):
        """
        The snapshot holds the tree exactly at the fork, although the parent keeps
        applying transactions while the child writes.
        """
        txns = list(workload(4000))
        tree = DataTree(extended_types=True)
        for hdr, txn in txns[:3000]:
            tree.apply(hdr, txn)
        at_fork = tree_state(tree)
        snapshotter = ForkSnapshotter(self.directory, tree, None, retain=3)
        taken = snapshotter.take_snapshot()
        for hdr, txn in txns[3000:]:
            tree.apply(hdr, txn)
        path = yield taken
        self.assertEqual(tree_state(load_tree(path, extended_types=True)), at_fork)
        self.assertNotEqual(tree_state(tree), at_fork)
        self.assertGreater(snapshotter.last_pause, 0)
        self.assertLess(snapshotter.last_pause, 1.0)
        self.assertEqual(snapshotter.snapshots_taken, 1)

    @defer.inlineCallbacks
    def test_child_yields_the_cpu(self):
        """
        The snapshot child runs at a lower priority than the server (C{nice}
        L{CHILD_NICENESS} more): on a busy machine it must not take the CPU from the
        reactor, the log's writer thread and the clients, whose requests wait on them.
        """
        tree, _ = build_tree(50)
        seen = os.path.join(self.directory, "child-niceness")
        real_write = durable.write_tree_snapshot

        def write_noting_niceness(*args, **kwargs):
            with open(seen, "w") as noted:
                noted.write(str(os.nice(0)))
            return real_write(*args, **kwargs)

        self.patch(durable, "write_tree_snapshot", write_noting_niceness)
        own = os.nice(0)
        yield ForkSnapshotter(self.directory, tree, None).take_snapshot()
        with open(seen) as noted:
            self.assertEqual(int(noted.read()), min(own + CHILD_NICENESS, 19))
        self.assertEqual(os.nice(0), own)

    @defer.inlineCallbacks
    def test_child_failure_reported(self):
        """A child that cannot write fails the snapshot; the server side goes on."""
        tree, _ = build_tree(50)
        snapshotter = ForkSnapshotter(os.path.join(self.directory, "missing"), tree, None)
        yield self.assertFailure(snapshotter.take_snapshot(), SnapshotFailed)
        self.assertFalse(snapshotter.in_progress)
        self.flushLoggedErrors(SnapshotFailed)

    @defer.inlineCallbacks
    def test_every_snap_count_and_purge(self):
        """
        Commits trigger a snapshot after snap_count/2 + random(snap_count/2); only the
        newest snap_retain_count snapshots stay, and the log from the oldest of them.
        """
        from twisted.internet import reactor

        wal = FileWriteAheadLog.open(self.directory, segment_bytes=1 << 20)
        self.addCleanup(wal.close)
        tree = DataTree(extended_types=True)
        snapshotter = ForkSnapshotter(
            self.directory, tree, wal, snap_count=20, retain=2, randomize=lambda bound: 0
        )
        taken_at = []
        txns = list(workload(100))
        for hdr, txn in txns:
            yield wal.append(hdr.zxid, b"%d" % hdr.zxid)
            tree.apply(hdr, txn)
            snapshotter.committed(None)
            if snapshotter._scheduled:
                # Let the scheduled snapshot start, then wait for it to finish.
                yield _turn(reactor)
                yield snapshotter.stop()
                snapshotter._stopped = False
                taken_at.append(snapshotter.last_snapshot_zxid)
        self.assertEqual(taken_at, [11, 22, 33, 44, 55, 66, 77, 88, 99])
        self.assertEqual([z for z, _ in list_snapshots(self.directory)], [88, 99])
        first_segment = list_segments(self.directory)[0][0]
        self.assertLessEqual(first_segment, 89)
        self.assertGreater(first_segment, 11)
        self.assertEqual([z for z, _ in wal.replay(88)], list(range(89, 101)))


def _turn(reactor) -> defer.Deferred:
    """A Deferred firing on a later reactor turn."""
    from twisted.internet import task

    return task.deferLater(reactor, 0.01, lambda: None)


class ReplayedCountTests(unittest.TestCase):
    def test_replayed_txns_count_toward_next_snapshot(self) -> None:
        """Txns replayed at startup count: the next commit past the threshold snapshots."""
        tree = DataTree()
        clock = _RecordingClock()
        snapshotter = ForkSnapshotter(
            "/nonexistent",
            tree,
            None,
            snap_count=100,
            randomize=lambda bound: 0,
            reactor=clock,
            since_snapshot=50,
        )
        self.assertEqual(clock.calls, [])
        snapshotter.committed(None)
        self.assertEqual(len(clock.calls), 1, "a snapshot is scheduled at once")
        fresh = ForkSnapshotter(
            "/nonexistent", tree, None, snap_count=100, randomize=lambda bound: 0, reactor=clock
        )
        fresh.committed(None)
        self.assertEqual(len(clock.calls), 1, "a fresh start waits for snap_count/2")


class BusySkipTests(unittest.TestCase):
    def test_due_while_running_skips_and_counts_again(self) -> None:
        """
        A snapshot due while the last child still runs is skipped, as ZooKeeper's
        "Too busy to snap": counting starts again, so the next one is not forked the
        moment the running one exits.
        """
        clock = _RecordingClock()
        snapshotter = ForkSnapshotter(
            "/nonexistent",
            DataTree(),
            None,
            snap_count=100,
            randomize=lambda bound: 0,
            reactor=clock,
        )
        snapshotter._running = defer.Deferred()  # a child writing a snapshot
        warnings: list[dict] = []
        globalLogPublisher.addObserver(warnings.append)
        self.addCleanup(globalLogPublisher.removeObserver, warnings.append)
        for _ in range(51):
            snapshotter.committed(None)
        self.assertEqual(clock.calls, [], "nothing is forked while a child runs")
        self.assertEqual(snapshotter.snapshots_skipped, 1)
        busy = [event for event in warnings if "Too busy" in event.get("log_format", "")]
        self.assertEqual(len(busy), 1, "the skip is logged")
        snapshotter._running = None  # the child exited
        snapshotter.committed(None)
        self.assertEqual(clock.calls, [], "counted again from the skip, not due yet")
        for _ in range(50):
            snapshotter.committed(None)
        self.assertEqual(len(clock.calls), 1, "due again snap_count/2 after the skip")
        self.assertEqual(snapshotter.snapshots_skipped, 1)


class _RecordingClock:
    """Records callLater calls without running them."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def callLater(self, delay: float, function: object, *args: object) -> None:
        self.calls.append(function)
