"""
Exactly-once across a snapshot: the reply cache of stamped writes (L{ReplyCache}) is
kept in snapshots, so that recovery from a snapshot and the log after it gives the
same cache as replaying the whole log, and a write committed just before the
snapshot is still answered, not applied again, when resubmitted after a restart.
"""

from __future__ import annotations

import io
import os

from twisted.internet import defer, task
from twisted.trial import unittest

from zkreg.cli import snapshot_dump
from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.applier import replayed
from zkreg.data.dedup import ReplyCache
from zkreg.data.messages import Request, WriteStamp
from zkreg.data.server import DataServer
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import decode_logged_txn
from zkreg.persistence.memlog import MemoryLog
from zkreg.persistence.recovery import load_tree, recover, write_tree_snapshot
from zkreg.persistence.snapshot import read_snapshot
from zkreg.persistence.wal import FileWriteAheadLog
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import (
    CheckVersionRequest,
    CreateRequest,
    DeleteRequest,
    Id,
    SetACLRequest,
    SetDataRequest,
)

try:
    from durability_workload import scratch_directory
except ImportError:  # tests/zkreg/persistence made a package
    from .durability_workload import scratch_directory

AUTH = (Id("ip", "127.0.0.1"),)
ORIGIN = 0x5EED_0000_0001
SEQUENTIAL = 2


def result_of(deferred):
    results: list = []
    deferred.addBoth(results.append)
    assert results, "not answered"
    return results[0]


def create(path: str, flags: int = 0) -> CreateRequest:
    return CreateRequest(path, b"v", list(OPEN_ACL_UNSAFE), flags)


def items(replies: ReplyCache) -> list:
    return sorted(
        ((session, stamp.origin, stamp.seq), outcome) for session, stamp, outcome in replies.items()
    )


class SnapshotRepliesTests(unittest.TestCase):
    """
    A data server (in-memory log) answers stamped writes of every kind that has a
    reply, none acknowledged, so its reply cache holds each of them.
    """

    def setUp(self) -> None:
        self.directory = scratch_directory(self)
        os.makedirs(self.directory)
        self.log = MemoryLog()
        self.server = self.make(self.log)
        self.session = result_of(self.server.create_session(30_000)).session_id
        self.seq = 0
        self.submit(codes.OP_CREATE, create("/r"))
        self.outcomes = [
            self.submit(codes.OP_CREATE, create("/r/n-", SEQUENTIAL)),
            self.submit(codes.OP_CREATE2, create("/r/b")),
            self.submit(codes.OP_SET_DATA, SetDataRequest("/r/b", b"x", -1)),
            self.submit(codes.OP_SET_ACL, SetACLRequest("/r/b", list(OPEN_ACL_UNSAFE), -1)),
            self.submit(codes.OP_CREATE, create("/r/b")),  # an error: NodeExists
            self.submit(
                codes.OP_MULTI,
                [
                    (codes.OP_CREATE, create("/r/m")),
                    (codes.OP_CREATE2, create("/r/m/c")),
                    (codes.OP_SET_DATA, SetDataRequest("/r/m", b"y", -1)),
                    (codes.OP_CHECK, CheckVersionRequest("/r/m", 1)),
                    (codes.OP_DELETE, DeleteRequest("/r/m/c", -1)),
                ],
            ),
            self.submit(
                codes.OP_MULTI,
                [(codes.OP_CREATE, create("/r/x")), (codes.OP_CHECK, CheckVersionRequest("/r", 9))],
            ),
            self.submit(codes.OP_DELETE, DeleteRequest("/r/b", -1)),
        ]

    def make(self, log, tree=None, replies=None) -> DataServer:
        clock = task.Clock()
        clock.advance(1_700_000_000)
        return DataServer(ServerConfig(), log=log, clock=clock, tree=tree, replies=replies)

    def submit(self, opcode: int, record, seq: int | None = None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        request = Request(self.session, seq, opcode, record, AUTH, WriteStamp(ORIGIN, seq))
        return result_of(self.server.submit(request))

    @defer.inlineCallbacks
    def write_log(self, directory: str, snapshot_after: int | None = None):
        """
        Put the server's log records into a file log in C{directory}; with
        C{snapshot_after}, also a snapshot (tree and replies rebuilt from the records)
        after that many records.
        """
        os.makedirs(directory, exist_ok=True)
        wal = FileWriteAheadLog.open(directory)
        tree = DataTree()
        replies = ReplyCache()
        try:
            for index, (zxid, record) in enumerate(self.log.records, 1):
                yield wal.append(zxid, record)
                hdr, txn, stamp, opcode = decode_logged_txn(record)
                replayed(replies, tree, hdr, tree.apply(hdr, txn), stamp, opcode)
                if index == snapshot_after:
                    wal.roll()
                    write_tree_snapshot(directory, tree, with_digest=True, replies=replies)
        finally:
            yield wal.close()

    def test_round_trip(self):
        """Every kind of reply comes back from a snapshot equal to the one recorded."""
        self.assertEqual(len(self.server.replies), len(self.outcomes) + 1)
        path = write_tree_snapshot(self.directory, self.server.tree, replies=self.server.replies)
        loaded = ReplyCache()
        tree = load_tree(path, replies=loaded)
        self.assertEqual(tree.digest(), self.server.tree.digest())
        self.assertEqual(items(loaded), items(self.server.replies))
        kinds = {type(outcome.response).__name__ for _, _, outcome in loaded.items()}
        self.assertEqual(
            kinds,
            {"CreateResponse", "Create2Response", "SetDataResponse", "SetACLResponse"}
            | {"list", "NoneType"},
        )

    def test_snapshot_without_replies_loads(self):
        """A snapshot with no reply entries (as written before they existed) loads."""
        path = write_tree_snapshot(self.directory, self.server.tree)
        self.assertEqual(read_snapshot(path).replies, [])
        loaded = ReplyCache()
        load_tree(path, replies=loaded)
        self.assertEqual(len(loaded), 0)

    def test_dump_shows_the_replies(self):
        path = write_tree_snapshot(self.directory, self.server.tree, replies=self.server.replies)
        out = io.StringIO()
        self.assertEqual(snapshot_dump(path, False, out), 0)
        text = out.getvalue()
        self.assertIn(f"{len(self.server.replies)} recorded replies", text)
        lines = [line for line in text.splitlines() if line.startswith("reply session")]
        self.assertEqual(len(lines), len(self.server.replies))
        self.assertIn(f"origin {ORIGIN:#x} seq 1 ", text)

    @defer.inlineCallbacks
    def test_recovery_from_snapshot_equals_log_alone(self):
        """
        Snapshot after the first writes: recovery from it and the records after gives
        the reply cache that the whole log gives, which is the server's.
        """
        whole = os.path.join(self.directory, "whole")
        cut = os.path.join(self.directory, "cut")
        yield self.write_log(whole)
        yield self.write_log(cut, snapshot_after=len(self.log.records) - 3)
        from_log = recover(whole)
        from_snapshot = recover(cut)
        self.assertIsNone(from_log.snapshot_path)
        self.assertEqual(from_snapshot.replayed, 3)
        self.assertEqual(items(from_log.replies), items(self.server.replies))
        self.assertEqual(items(from_snapshot.replies), items(from_log.replies))

    @defer.inlineCallbacks
    def test_resubmitted_after_restart_from_snapshot_is_answered_once(self):
        """
        A write committed just before the snapshot the restart loads: its
        resubmission gets the recorded reply and makes no second node.
        """
        first = self.outcomes[0]
        yield self.write_log(self.directory, snapshot_after=len(self.log.records))
        state = recover(self.directory)
        self.assertEqual(state.replayed, 0)
        restarted = self.make(MemoryLog(), state.tree, state.replies)
        again = result_of(
            restarted.submit(
                Request(
                    self.session,
                    99,
                    codes.OP_CREATE,
                    create("/r/n-", SEQUENTIAL),
                    AUTH,
                    WriteStamp(ORIGIN, 2),  # seq 1 made /r
                )
            )
        )
        self.assertEqual(again, first)
        children = restarted.tree.get("/r").child_names()
        self.assertEqual(sorted(c for c in children if c.startswith("n-")), ["n-0000000000"])
