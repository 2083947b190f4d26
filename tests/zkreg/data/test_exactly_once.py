"""
Exactly-once writes in the data tier: a write stamped by its session server
(L{WriteStamp}) is applied once whatever the resubmissions, and its resubmission gets
the reply of the first, also after a restart that replays the log.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.messages import Request, WriteStamp
from zkreg.data.server import DataServer
from zkreg.data.txncodec import decode_logged_txn, decode_txn
from zkreg.persistence.memlog import ManualLog, MemoryLog
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import CreateRequest, Id

AUTH = (Id("ip", "127.0.0.1"),)
ORIGIN = 0x1234_5678_9ABC
SEQUENTIAL = 2


def sequential_create(session_id: int, seq: int, acked: int = 0) -> Request:
    """A sequential create: applied twice it would make two nodes."""
    record = CreateRequest("/q/n-", b"v", list(OPEN_ACL_UNSAFE), SEQUENTIAL)
    return Request(session_id, 0, codes.OP_CREATE, record, AUTH, WriteStamp(ORIGIN, seq, acked))


def result_of(deferred):
    results: list = []
    deferred.addBoth(results.append)
    assert results, "not answered"
    return results[0]


class ExactlyOnceTests(unittest.TestCase):
    def make(self, log) -> DataServer:
        clock = task.Clock()
        clock.advance(1_700_000_000)
        return DataServer(ServerConfig(), log=log, clock=clock)

    def setUp(self) -> None:
        self.log = MemoryLog()
        self.server = self.make(self.log)
        self.session = result_of(self.server.create_session(30_000)).session_id
        result_of(
            self.server.submit(
                Request(
                    self.session,
                    1,
                    codes.OP_CREATE,
                    CreateRequest("/q", b"", list(OPEN_ACL_UNSAFE), 0),
                    AUTH,
                )
            )
        )

    def children(self, server: DataServer) -> list[str]:
        node = server.tree.get("/q")
        return sorted(node.child_names())

    def test_a_resubmitted_write_gets_the_first_reply(self):
        first = result_of(self.server.submit(sequential_create(self.session, 1)))
        again = result_of(self.server.submit(sequential_create(self.session, 1)))
        self.assertEqual(first.response.path, "/q/n-0000000000")
        self.assertEqual((again.zxid, again.err, again.response), (first.zxid, 0, first.response))
        self.assertEqual(self.children(self.server), ["n-0000000000"])

    def test_a_new_number_is_a_new_write(self):
        result_of(self.server.submit(sequential_create(self.session, 1)))
        second = result_of(self.server.submit(sequential_create(self.session, 2, acked=1)))
        self.assertEqual(second.response.path, "/q/n-0000000001")
        self.assertEqual(len(self.server.replies), 1, "reply 1 acknowledged, forgotten")

    def test_other_origin_same_number_is_another_write(self):
        result_of(self.server.submit(sequential_create(self.session, 1)))
        other = sequential_create(self.session, 1)
        other.stamp = WriteStamp(ORIGIN + 1, 1, 0)
        self.assertEqual(result_of(self.server.submit(other)).response.path, "/q/n-0000000001")

    def test_a_twin_in_flight_waits_for_the_first(self):
        log = ManualLog()
        server = self.make(log)
        granted = server.create_session(30_000)
        log.flush()
        session = result_of(granted).session_id
        server.submit(
            Request(
                session,
                1,
                codes.OP_CREATE,
                CreateRequest("/q", b"", list(OPEN_ACL_UNSAFE), 0),
                AUTH,
            )
        )
        first = server.submit(sequential_create(session, 1))
        twin = server.submit(sequential_create(session, 1))
        self.assertFalse(twin.called)
        log.flush()
        self.assertEqual(result_of(twin), result_of(first))
        self.assertEqual(self.children(server), ["n-0000000000"])

    def test_replay_rebuilds_the_replies(self):
        """Committed, then the server died before replying: the restarted one answers."""
        first = result_of(self.server.submit(sequential_create(self.session, 7)))
        restarted = self.make(self.log)
        self.assertEqual(restarted.tree.digest(), self.server.tree.digest())
        again = result_of(restarted.submit(sequential_create(self.session, 7)))
        self.assertEqual(again, first)
        self.assertEqual(self.children(restarted), ["n-0000000000"])

    def test_a_closed_session_forgets_its_replies(self):
        result_of(self.server.submit(sequential_create(self.session, 1)))
        self.assertEqual(len(self.server.replies), 1)
        result_of(self.server.close_session(self.session))
        self.assertEqual(len(self.server.replies), 0)

    def test_the_stamp_is_logged_after_the_txn(self):
        result_of(self.server.submit(sequential_create(self.session, 3, acked=2)))
        record = self.log.records[-1][1]
        hdr, txn, stamp, opcode = decode_logged_txn(record)
        self.assertEqual((stamp, opcode), (WriteStamp(ORIGIN, 3, 2), codes.OP_CREATE))
        self.assertEqual(txn.path, "/q/n-0000000000")
        # A reader that knows nothing of stamps still reads the txn.
        self.assertEqual(decode_txn(record)[1], txn)
        # And an unstamped record has no stamp.
        self.assertIsNone(decode_logged_txn(self.log.records[-2][1])[2])


def test_acknowledged_replies_are_dropped_and_the_others_kept():
    """The cache keeps exactly the replies its session server has not acknowledged."""
    from zkreg.data.dedup import ReplyCache
    from zkreg.data.messages import Outcome

    cache = ReplyCache()
    for seq in range(1, 11):
        # Pipelined: write N carries "acked up to N - 4" (three answers outstanding).
        cache.recorded(1, WriteStamp(ORIGIN, seq, max(0, seq - 4)), Outcome(seq, 0))
    assert [seq for _, stamp, _ in cache.items() for seq in [stamp.seq]] == [7, 8, 9, 10]
    assert cache.lookup(1, WriteStamp(ORIGIN, 6)) is None
    assert cache.lookup(1, WriteStamp(ORIGIN, 7)) == Outcome(7, 0)
    cache.forget_acked(1, WriteStamp(ORIGIN, 11, 10))
    assert len(cache) == 0
