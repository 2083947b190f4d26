"""
The data server: zxids, log-then-apply in zxid order whatever the log's timing, commits
published before replies, sync, sessions and their expiry, containers and TTL nodes,
log failure, recovery from the log.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.messages import Request
from zkreg.data.server import DataServer, DataServerFailed
from zkreg.persistence.memlog import ManualLog, MemoryLog
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import (
    CheckVersionRequest,
    Create2Response,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    ErrorResponse,
    Id,
    SetDataRequest,
    SyncRequest,
)

AUTH = (Id("ip", "127.0.0.1"),)
OPEN = list(OPEN_ACL_UNSAFE)
START = 1_700_000_000.0


def create(path, flags=0, data=b""):
    return CreateRequest(path, data, OPEN, flags)


class Recorder:
    """An ICommitListener that notes every commit and what had replied by then."""

    def __init__(self, replies: list) -> None:
        self.commits: list = []
        self.replies = replies
        self.replies_seen_at_commit: list[int] = []

    def committed(self, commit: Any) -> None:
        self.commits.append(commit)
        self.replies_seen_at_commit.append(len(self.replies))


def make_server(log=None, **config_args) -> tuple[DataServer, task.Clock]:
    clock = task.Clock()
    clock.advance(START)
    # These tests jump the clock by seconds: with pause detection every jump would
    # be a pause (see test_observed_time.py).
    config_args.setdefault("pause_threshold_ms", 0)
    config = ServerConfig(**config_args)
    return DataServer(config, log=log, clock=clock), clock


def open_session(server: DataServer, log: Any = None) -> int:
    granted = server.create_session(30_000)
    if isinstance(log, ManualLog):
        log.flush()
    return result_of(granted).session_id


def result_of(deferred) -> Any:
    results: list = []
    failures: list = []
    deferred.addCallbacks(results.append, failures.append)
    if failures:
        failures[0].raiseException()
    assert results, "Deferred has not fired"
    return results[0]


class WriteTests(unittest.TestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server()
        self.session = result_of(self.server.create_session(10_000)).session_id

    def submit(self, opcode, record, cxid=1):
        return self.server.submit(Request(self.session, cxid, opcode, record, AUTH))

    def test_zxids_and_outcomes(self):
        created = result_of(self.submit(codes.OP_CREATE, create("/a")))
        self.assertEqual(created.zxid, 2)  # 1 was the createSession
        self.assertEqual(created.err, 0)
        self.assertEqual(created.response, CreateResponse("/a"))
        failed = result_of(self.submit(codes.OP_CREATE, create("/a")))
        self.assertEqual((failed.zxid, failed.err, failed.response), (3, codes.NODE_EXISTS, None))
        two = result_of(self.submit(codes.OP_CREATE2, create("/b", data=b"xy")))
        self.assertIsInstance(two.response, Create2Response)
        self.assertEqual(two.response.stat.dataLength, 2)
        self.assertEqual(self.server.last_zxid, 4)

    def test_commit_is_published_before_the_reply(self):
        replies: list = []
        recorder = Recorder(replies)
        self.server.subscribe(recorder)
        self.submit(codes.OP_CREATE, create("/a")).addCallback(replies.append)
        self.submit(codes.OP_SET_DATA, SetDataRequest("/a", b"v", 0)).addCallback(replies.append)
        self.assertEqual(recorder.replies_seen_at_commit, [0, 1])
        first, second = recorder.commits
        self.assertEqual(first.events, ((1, "/a"), (4, "/")))
        self.assertEqual((first.session_id, first.cxid, first.txn_type), (self.session, 1, 1))
        self.assertEqual(second.events, ((3, "/a"),))
        self.server.unsubscribe(recorder)
        self.submit(codes.OP_DELETE, DeleteRequest("/a", -1))
        self.assertEqual(len(recorder.commits), 2)

    def test_failed_multi_answers_per_op_with_header_ok(self):
        outcome = result_of(
            self.submit(
                codes.OP_MULTI,
                [
                    (codes.OP_CREATE, create("/m")),
                    (codes.OP_CHECK, CheckVersionRequest("/m", 5)),
                    (codes.OP_CREATE, create("/n")),
                ],
            )
        )
        self.assertEqual(outcome.err, 0)
        self.assertEqual(
            outcome.response,
            [
                (codes.OP_ERROR, 0, ErrorResponse(0)),
                (codes.OP_ERROR, codes.BAD_VERSION, ErrorResponse(codes.BAD_VERSION)),
                (codes.OP_ERROR, codes.RUNTIME_INCONSISTENCY, ErrorResponse(-2)),
            ],
        )
        self.assertIsNone(self.server.tree.get("/m"))

    def test_successful_multi_results(self):
        outcome = result_of(
            self.submit(
                codes.OP_MULTI,
                [
                    (codes.OP_CREATE, create("/m")),
                    (codes.OP_CREATE, create("/m/c", codes.FLAG_CONTAINER)),
                    (codes.OP_SET_DATA, SetDataRequest("/m", b"x", -1)),
                    (codes.OP_CHECK, CheckVersionRequest("/m", 1)),
                    (codes.OP_DELETE, DeleteRequest("/m/c", -1)),
                ],
            )
        )
        types = [(t, err) for t, err, _ in outcome.response]
        self.assertEqual(
            types,
            [
                (codes.OP_CREATE, 0),
                (codes.OP_CREATE2, 0),
                (codes.OP_SET_DATA, 0),
                (codes.OP_CHECK, 0),
                (codes.OP_DELETE, 0),
            ],
        )
        self.assertEqual(outcome.response[0][2], CreateResponse("/m"))
        self.assertEqual(outcome.response[2][2].stat.version, 1)

    def test_client_delete_container_is_answered_bad_arguments(self):
        outcome = result_of(self.submit(codes.OP_DELETE_CONTAINER, DeleteRequest("/x", -1)))
        self.assertEqual((outcome.zxid, outcome.err), (2, codes.BAD_ARGUMENTS))
        self.assertEqual(self.server.in_flight, 0)

    def test_an_apply_bug_fails_only_its_write(self):
        real_apply = self.server.tree.apply

        def apply(hdr, txn):
            if hdr.zxid == 2:
                raise RuntimeError("bug")
            return real_apply(hdr, txn)

        self.server.tree.apply = apply  # type: ignore[method-assign]
        broken = self.submit(codes.OP_CREATE, create("/a"))
        self.failureResultOf(broken, RuntimeError)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        later = result_of(self.submit(codes.OP_CREATE, create("/b")))
        self.assertEqual((later.zxid, later.err), (3, 0))

    def test_reconfig_disabled(self):
        outcome = result_of(self.submit(codes.OP_RECONFIG, None))
        self.assertEqual(outcome.err, codes.RECONFIG_DISABLED)

    def test_listener_submitting_during_a_commit_keeps_order(self):
        """A write submitted from a commit listener is applied after the current one."""
        log = ManualLog()
        server, clock = make_server(log=log)
        order: list = []

        class Chain:
            def committed(inner, commit):  # noqa: N805
                order.append(("commit", commit.zxid))
                if commit.zxid == 1:
                    request = Request(0, 2, codes.OP_CREATE, create("/chained"), AUTH)
                    server.submit(request).addCallback(
                        lambda outcome: order.append(("reply", outcome.zxid))
                    )

        server.subscribe(Chain())
        server.submit(Request(0, 1, codes.OP_CREATE, create("/a"), AUTH)).addCallback(
            lambda outcome: order.append(("reply", outcome.zxid))
        )
        log.flush()
        log.flush()
        self.assertEqual(order, [("commit", 1), ("reply", 1), ("commit", 2), ("reply", 2)])

    def test_listener_submitting_with_an_immediate_log(self):
        order: list = []

        class Chain:
            def committed(inner, commit):  # noqa: N805
                order.append(commit.zxid)
                if commit.zxid == 2:
                    self.submit(codes.OP_CREATE, create("/chained"))

        self.server.subscribe(Chain())
        outcome = result_of(self.submit(codes.OP_CREATE, create("/a")))
        self.assertEqual((outcome.zxid, order), (2, [2, 3]))
        self.assertIsNotNone(self.server.tree.get("/chained"))

    def test_sync_answers_after_earlier_writes(self):
        outcome = result_of(
            self.server.submit(Request(self.session, 9, codes.OP_SYNC, SyncRequest("/"), AUTH))
        )
        self.assertEqual((outcome.zxid, outcome.err, outcome.response.path), (1, 0, "/"))


class QuietLog(ManualLog):
    """
    A L{ManualLog} with the optional Deferred-free append: durability is reported
    per batch, by zxid, to the listener, as L{zkreg.persistence.wal.FileWriteAheadLog} does.
    """

    def __init__(self) -> None:
        ManualLog.__init__(self)
        self.quiet: list[int] = []
        self.listeners: list[tuple[Any, Any]] = []

    def append_quiet(self, zxid: int, record: bytes) -> None:
        MemoryLog.append(self, zxid, record)
        self.quiet.append(zxid)

    def add_durable_listener(self, on_durable: Any, on_failed: Any) -> None:
        self.listeners.append((on_durable, on_failed))

    def flush(self, count: int | None = None, reverse: bool = False) -> int:
        """Report the oldest C{count} quiet appends (all when L{None}) durable."""
        if count is None:
            count = len(self.quiet)
        batch, self.quiet = self.quiet[:count], self.quiet[count:]
        if batch:
            for on_durable, _ in self.listeners:
                on_durable(batch[-1])
        return len(batch)

    def fail(self, reason: Exception) -> None:
        from twisted.python.failure import Failure

        for _, on_failed in self.listeners:
            on_failed(Failure(reason))


class QuietLogTests(unittest.TestCase):
    """A log reporting durability per batch (no Deferred per append) changes nothing."""

    def test_batched_acks_give_the_same_results(self):
        pipeline = PipelineTests()
        immediate, immediate_replies, immediate_commits = pipeline.run_script(MemoryLog())
        log = QuietLog()
        delayed, delayed_replies, delayed_commits = pipeline.run_script(log)
        self.assertEqual(log.waiting, [], "no Deferred append was used")
        self.assertEqual(delayed_replies, [])
        self.assertEqual(delayed.in_flight, len(PipelineTests.SCRIPT) - 1)
        log.flush(count=3)
        self.assertEqual(len(delayed_replies), 3)
        log.flush()
        self.assertEqual(delayed.in_flight, 0)
        self.assertEqual(delayed_replies, immediate_replies)
        self.assertEqual(
            [(c.zxid, c.txn_type, c.events) for c in delayed_commits],
            [(c.zxid, c.txn_type, c.events) for c in immediate_commits],
        )
        self.assertEqual(delayed.tree.digest(), immediate.tree.digest())

    def test_log_failure_fails_in_flight_and_later_writes(self):
        log = QuietLog()
        server, clock = make_server(log=log)
        sid = open_session(server, log)
        first = server.submit(Request(sid, 1, codes.OP_CREATE, create("/a"), AUTH))
        second = server.submit(Request(sid, 2, codes.OP_CREATE, create("/b"), AUTH))
        log.fail(OSError("disk full"))
        self.failureResultOf(first, DataServerFailed)
        self.failureResultOf(second, DataServerFailed)
        self.failureResultOf(
            server.submit(Request(sid, 3, codes.OP_CREATE, create("/c"), AUTH)), DataServerFailed
        )
        self.assertIsNone(server.tree.get("/a"))
        self.flushLoggedErrors(DataServerFailed)


class RecoveringLog(QuietLog):
    """A L{QuietLog} that, like the file WAL, recovers from a failure by itself."""

    def __init__(self) -> None:
        QuietLog.__init__(self)
        self.recovery_listeners: list[Any] = []
        self.appended: list[int] = []

    def append_quiet(self, zxid: int, record: bytes) -> None:
        self.appended.append(zxid)
        self.quiet.append(zxid)

    def add_recovery_listener(self, on_recovered: Any) -> None:
        self.recovery_listeners.append(on_recovered)

    def fail(self, reason: Exception) -> None:
        self.quiet = []
        QuietLog.fail(self, reason)

    def recover(self) -> None:
        for on_recovered in self.recovery_listeners:
            on_recovered()


class LogRecoveryTests(unittest.TestCase):
    """A log that recovers (disk space freed) lets the data server take writes again."""

    def test_writes_resume_after_the_last_applied_zxid(self):
        log = RecoveringLog()
        server, clock = make_server(log=log)
        sid = open_session(server, log)
        applied = server.submit(Request(sid, 1, codes.OP_CREATE, create("/a"), AUTH))
        log.flush()
        self.assertEqual(self.successResultOf(applied).err, 0)
        last = server.last_zxid
        lost = server.submit(Request(sid, 2, codes.OP_CREATE, create("/b"), AUTH))
        closing = server.close_session(sid)
        log.fail(OSError("No space left on device"))
        self.failureResultOf(lost, DataServerFailed)
        self.failureResultOf(closing, DataServerFailed)
        self.assertEqual(server.write_failure(), "No space left on device")
        # The failed closeSession left the session live again, not stuck closing.
        self.assertFalse(server.sessions.get(sid).closing)
        self.assertIsNotNone(server.sessions.deadline_of(sid))

        log.recover()
        self.assertIsNone(server.write_failure())
        again = server.submit(Request(sid, 3, codes.OP_CREATE, create("/b"), AUTH))
        self.assertEqual(log.appended[-1], last + 1, "numbered right after the last applied")
        log.flush()
        outcome = self.successResultOf(again)
        self.assertEqual((outcome.err, outcome.zxid), (0, last + 1))
        self.assertIsNotNone(server.tree.get("/b"))
        self.flushLoggedErrors(DataServerFailed)


class PipelineTests(unittest.TestCase):
    """A log that acknowledges later, in batches, in any order, changes nothing."""

    SCRIPT = [
        (codes.OP_CREATE2, create("/p")),
        (codes.OP_CREATE2, create("/p/s-", codes.FLAG_PERSISTENT_SEQUENTIAL)),
        (codes.OP_CREATE2, create("/p/s-", codes.FLAG_EPHEMERAL_SEQUENTIAL)),
        (codes.OP_SET_DATA, SetDataRequest("/p", b"1", 0)),
        (codes.OP_SET_DATA, SetDataRequest("/p", b"2", 0)),
        (codes.OP_DELETE, DeleteRequest("/p/s-0000000000", -1)),
        (codes.OP_DELETE, DeleteRequest("/p", -1)),
        (codes.OP_SYNC, SyncRequest("/p")),
        (
            codes.OP_MULTI,
            [
                (codes.OP_CREATE, create("/p/m")),
                (codes.OP_DELETE, DeleteRequest("/p/s-0000000001", -1)),
            ],
        ),
        (codes.OP_CREATE2, create("/p/s-", codes.FLAG_PERSISTENT_SEQUENTIAL)),
        (codes.OP_CLOSE_SESSION, None),
    ]

    def run_script(self, log) -> tuple[DataServer, list, list]:
        server, clock = make_server(log=log)
        granted = server.create_session(30_000)
        if isinstance(log, ManualLog):
            log.flush()
        session = result_of(granted).session_id
        replies: list = []
        recorder = Recorder(replies)
        server.subscribe(recorder)
        for cxid, (opcode, record) in enumerate(self.SCRIPT):
            server.submit(Request(session, cxid, opcode, record, AUTH)).addCallback(replies.append)
        return server, replies, recorder.commits

    def test_delayed_batched_reversed_acks_give_the_same_results(self):
        immediate, immediate_replies, immediate_commits = self.run_script(MemoryLog())
        log = ManualLog()
        delayed, delayed_replies, delayed_commits = self.run_script(log)
        # Everything is prepped and logged; nothing applied, not even the sync.
        self.assertEqual(delayed_replies, [])
        self.assertEqual(delayed.in_flight, len(self.SCRIPT) - 1)
        self.assertEqual(len(log.waiting), len(self.SCRIPT) - 1)
        # Acknowledge the second half first, newest first: still nothing can apply.
        later = log.waiting[4:]
        log.waiting = log.waiting[:4]
        for _, acknowledged in reversed(later):
            acknowledged.callback(None)
        self.assertEqual(delayed_replies, [])
        log.flush(count=2, reverse=True)
        self.assertEqual(len(delayed_replies), 2)
        log.flush()
        self.assertEqual(delayed.in_flight, 0)
        self.assertEqual(delayed_replies, immediate_replies)
        self.assertEqual(
            [(c.zxid, c.txn_type, c.events) for c in delayed_commits],
            [(c.zxid, c.txn_type, c.events) for c in immediate_commits],
        )
        self.assertEqual(delayed.tree.digest(), immediate.tree.digest())
        self.assertEqual(delayed.prep.outstanding_count, 0)

    def test_sync_waits_for_writes_in_flight(self):
        log = ManualLog()
        server, clock = make_server(log=log)
        sid = open_session(server, log)
        synced: list = []
        server.submit(Request(sid, 1, codes.OP_CREATE, create("/a"), AUTH))
        server.submit(Request(sid, 2, codes.OP_SYNC, SyncRequest("/a"), AUTH)).addCallback(
            synced.append
        )
        server.submit(Request(sid, 3, codes.OP_CREATE, create("/b"), AUTH))
        self.assertEqual(synced, [])
        log.flush(count=1)
        self.assertEqual(len(synced), 1)
        self.assertEqual(synced[0].zxid, 2)
        self.assertIsNotNone(server.tree.get("/a"))
        self.assertIsNone(server.tree.get("/b"))

    def test_reads_submitted_wait_for_earlier_writes(self):
        from zkreg.proto.records import GetDataRequest

        log = ManualLog()
        server, clock = make_server(log=log)
        sid = open_session(server, log)
        answers: list = []
        server.submit(Request(sid, 1, codes.OP_CREATE, create("/a", data=b"v"), AUTH))
        read = Request(sid, 2, codes.OP_GET_DATA, GetDataRequest("/a", False), AUTH)
        server.submit(read).addCallback(answers.append)
        self.assertEqual(answers, [])
        log.flush()
        self.assertEqual((answers[0].err, answers[0].response.data), (0, b"v"))
        # With nothing in flight a read is answered at once, with no zxid taken.
        now = result_of(server.submit(read))
        self.assertEqual(now.zxid, 2)
        self.assertEqual(server.last_zxid, 2)

    def test_log_failure_fails_in_flight_and_later_writes(self):
        log = ManualLog()
        server, clock = make_server(log=log)
        sid = open_session(server, log)
        first = server.submit(Request(sid, 1, codes.OP_CREATE, create("/a"), AUTH))
        second = server.submit(Request(sid, 2, codes.OP_CREATE, create("/b"), AUTH))
        log.fail(OSError("disk full"))
        self.failureResultOf(first, DataServerFailed)
        self.failureResultOf(second, DataServerFailed)
        self.failureResultOf(
            server.submit(Request(sid, 3, codes.OP_CREATE, create("/c"), AUTH)), DataServerFailed
        )
        self.assertIsNone(server.tree.get("/a"))
        # Reads and syncs are still answered from the (consistent) applied tree.
        from zkreg.proto.records import ExistsRequest

        read = result_of(
            server.submit(Request(sid, 4, codes.OP_EXISTS, ExistsRequest("/", False), AUTH))
        )
        self.assertEqual(read.err, 0)
        self.flushLoggedErrors(DataServerFailed)


class RecoveryTests(unittest.TestCase):
    def test_restart_from_the_log_rebuilds_tree_and_sessions(self):
        log = MemoryLog()
        server, clock = make_server(log=log)
        grant = result_of(server.create_session(6000))
        request = Request(
            grant.session_id, 1, codes.OP_CREATE, create("/e", codes.FLAG_EPHEMERAL), AUTH
        )
        result_of(server.submit(request))
        result_of(server.submit(Request(grant.session_id, 2, codes.OP_CREATE, create("/p"), AUTH)))
        restarted = DataServer(ServerConfig(), log=log, clock=clock)
        self.assertEqual(restarted.tree.digest(), server.tree.digest())
        self.assertEqual(restarted.last_zxid, 3)
        self.assertIn(grant.session_id, restarted.sessions)
        # The restarted server accepts the old password and continues the zxids.
        revalidated = result_of(
            restarted.revalidate_session(grant.session_id, grant.password, 6000)
        )
        self.assertEqual(revalidated.session_id, grant.session_id)
        outcome = result_of(
            restarted.submit(Request(grant.session_id, 3, codes.OP_CREATE, create("/q"), AUTH))
        )
        self.assertEqual(outcome.zxid, 4)
        self.assertNotEqual(restarted.sessions.next_id(), grant.session_id)

    def test_epoch_is_the_high_word(self):
        clock = task.Clock()
        server = DataServer(ServerConfig(), clock=clock, epoch=3)
        outcome = result_of(server.submit(Request(0, 1, codes.OP_CREATE, create("/a"), AUTH)))
        self.assertEqual(outcome.zxid, (3 << 32) | 1)


class SessionTests(unittest.TestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server(tick_time_ms=1000)
        self.server.startService()
        self.addCleanup(self.server.stopService)
        self.replies: list = []
        self.recorder = Recorder(self.replies)
        self.server.subscribe(self.recorder)

    def test_grant_and_revalidate(self):
        grant = result_of(self.server.create_session(4000))
        self.assertEqual(len(grant.password), 16)
        self.assertEqual(grant.session_id >> 56, 0)
        self.assertEqual(self.server.tree.sessions, {grant.session_id: 4000})
        self.assertIsNone(
            result_of(self.server.revalidate_session(grant.session_id, b"x" * 16, 4000))
        )
        again = result_of(self.server.revalidate_session(grant.session_id, grant.password, 8000))
        self.assertEqual(again.timeout_ms, 8000)
        self.assertEqual(self.server.session_grant(grant.session_id).timeout_ms, 8000)

    def test_expiry_closes_session_and_deletes_ephemerals(self):
        grant = result_of(self.server.create_session(4000))
        keep = result_of(self.server.create_session(4000))
        sid = grant.session_id
        result_of(
            self.server.submit(
                Request(sid, 1, codes.OP_CREATE, create("/e", codes.FLAG_EPHEMERAL), AUTH)
            )
        )
        for _ in range(6):
            self.clock.advance(1)
            self.server.touch_sessions([keep.session_id])
        # Deadline: now + 4000 rounded up to the next tick, at most 5 s later.
        closes = [c for c in self.recorder.commits if c.closed_session]
        self.assertEqual([c.closed_session for c in closes], [sid])
        self.assertEqual(closes[0].events, ((2, "/e"), (4, "/")))
        self.assertEqual(closes[0].cxid, 0)
        self.assertIsNone(self.server.tree.get("/e"))
        self.assertNotIn(sid, self.server.sessions)
        self.assertNotIn(sid, self.server.tree.sessions)
        self.assertIn(keep.session_id, self.server.sessions)
        self.assertIsNone(result_of(self.server.revalidate_session(sid, grant.password, 4000)))

    def test_session_expires_when_its_rounded_deadline_passes(self):
        """Deadline = now + timeout rounded up to a tick; expiry is aligned on ticks."""
        self.clock.advance(0.3)
        grant = result_of(self.server.create_session(4000))
        deadline = self.server.sessions.deadline_of(grant.session_id)
        self.assertEqual(deadline, round((START + 0.3) * 1000) + 4000 + 700)
        self.clock.advance(4.699)
        self.assertIn(grant.session_id, self.server.tree.sessions)
        self.clock.advance(START + 5.0 - self.clock.seconds())  # exactly the deadline
        self.assertNotIn(grant.session_id, self.server.tree.sessions)

    def test_client_close_session(self):
        grant = result_of(self.server.create_session(4000))
        outcome = result_of(self.server.close_session(grant.session_id))
        self.assertEqual(outcome.err, 0)
        self.assertNotIn(grant.session_id, self.server.sessions)
        # A write from the closed session is refused.
        refused = result_of(
            self.server.submit(Request(grant.session_id, 5, codes.OP_CREATE, create("/x"), AUTH))
        )
        self.assertEqual(refused.err, codes.SESSION_EXPIRED)


class ContainerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server(container_check_interval_ms=1000, extended_types=True)
        self.server.startService()
        self.addCleanup(self.server.stopService)
        self.session = result_of(self.server.create_session(600_000)).session_id

    def submit(self, opcode, record):
        return result_of(self.server.submit(Request(self.session, 1, opcode, record, AUTH)))

    def test_container_deleted_once_emptied_not_before_first_child(self):
        self.submit(codes.OP_CREATE_CONTAINER, create("/c", codes.FLAG_CONTAINER))
        self.clock.advance(2)
        self.assertIsNotNone(self.server.tree.get("/c"))
        self.submit(codes.OP_CREATE, create("/c/child"))
        self.clock.advance(2)
        self.assertIsNotNone(self.server.tree.get("/c"))
        self.submit(codes.OP_DELETE, DeleteRequest("/c/child", -1))
        recorder = Recorder([])
        self.server.subscribe(recorder)
        self.clock.advance(1)
        self.assertIsNone(self.server.tree.get("/c"))
        self.assertEqual(recorder.commits[0].txn_type, codes.OP_DELETE_CONTAINER)
        self.assertEqual(recorder.commits[0].session_id, 0)
        self.assertEqual(recorder.commits[0].events, ((2, "/c"), (4, "/")))

    def test_ttl_node_deleted_after_ttl_since_mtime(self):
        self.submit(
            codes.OP_CREATE_TTL,
            CreateTTLRequest("/t", b"", OPEN, codes.FLAG_PERSISTENT_WITH_TTL, 2500),
        )
        self.clock.advance(2)
        self.submit(codes.OP_SET_DATA, SetDataRequest("/t", b"touch", -1))
        self.clock.advance(2)
        self.assertIsNotNone(self.server.tree.get("/t"))
        self.clock.advance(1)
        self.assertIsNone(self.server.tree.get("/t"))

    def test_ttl_node_with_children_stays(self):
        self.submit(
            codes.OP_CREATE_TTL,
            CreateTTLRequest("/t", b"", OPEN, codes.FLAG_PERSISTENT_WITH_TTL, 100),
        )
        self.submit(codes.OP_CREATE, create("/t/c"))
        self.clock.advance(5)
        self.assertIsNotNone(self.server.tree.get("/t"))

    def test_stop_service_stops_the_loops(self):
        self.submit(codes.OP_CREATE_CONTAINER, create("/c", codes.FLAG_CONTAINER))
        self.submit(codes.OP_CREATE, create("/c/x"))
        self.submit(codes.OP_DELETE, DeleteRequest("/c/x", -1))
        self.server.stopService()
        self.clock.advance(10)
        self.assertIsNotNone(self.server.tree.get("/c"))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ReplicaTests(unittest.TestCase):
    """A replica fed by the commit stream stays equal to the data server's tree."""

    def test_replica_from_start_and_replica_joining_midway(self):
        from zkreg.data.replica import ReplicaFeeder, copy_tree
        from zkreg.data.tree import DataTree

        server, clock = make_server()
        early = ReplicaFeeder(DataTree())
        server.subscribe(early)
        sid = open_session(server)
        for cxid, (opcode, record) in enumerate(PipelineTests.SCRIPT[:5]):
            clock.advance(0.25)
            server.submit(Request(sid, cxid, opcode, record, AUTH))
        late = ReplicaFeeder(copy_tree(server.tree))
        self.assertEqual(late.tree.digest(), server.tree.digest())
        server.subscribe(late)
        for cxid, (opcode, record) in enumerate(PipelineTests.SCRIPT[5:]):
            clock.advance(0.25)
            server.submit(Request(sid, cxid, opcode, record, AUTH))
        self.assertEqual(early.tree.digest(), server.tree.digest())
        self.assertEqual(late.tree.digest(), server.tree.digest())
        # The copy is independent of the original.
        self.assertIsNot(late.tree.get("/"), server.tree.get("/"))


class CallbackApiTests(unittest.TestCase):
    """submit_with_callback: the same pipeline as submit, answered without a Deferred."""

    def test_same_outcomes_and_commit_before_reply(self):
        answers: dict[str, list] = {"deferred": [], "callback": []}
        seen_at_commit: dict[str, list] = {}
        for style in answers:
            server, _clock = make_server()
            sid = result_of(server.create_session(10_000)).session_id
            recorder = Recorder(answers[style])
            server.subscribe(recorder)
            for cxid, (opcode, record) in enumerate(PipelineTests.SCRIPT[:-1]):
                request = Request(sid, cxid, opcode, record, AUTH)
                if style == "callback":
                    server.submit_with_callback(request, answers[style].append)
                else:
                    server.submit(request).addCallback(answers[style].append)
            seen_at_commit[style] = recorder.replies_seen_at_commit
        self.assertEqual(answers["callback"], answers["deferred"])
        self.assertEqual(len(answers["callback"]), len(PipelineTests.SCRIPT) - 1)
        # Each commit is published before its own reply (the sync adds a reply, no commit).
        self.assertEqual(seen_at_commit["callback"], seen_at_commit["deferred"])
        self.assertEqual(seen_at_commit["callback"], [0, 1, 2, 3, 4, 5, 6, 8, 9])

    def test_log_failure_is_a_failure_given_to_the_callback(self):
        log = ManualLog()
        server, _clock = make_server(log=log)
        sid = open_session(server, log)
        got: list = []
        server.submit_with_callback(
            Request(sid, 1, codes.OP_CREATE, create("/a"), AUTH), got.append
        )
        server.submit_with_callback(
            Request(sid, 2, codes.OP_SYNC, SyncRequest("/"), AUTH), got.append
        )
        log.fail(OSError("disk full"))
        server.submit_with_callback(
            Request(sid, 3, codes.OP_CREATE, create("/b"), AUTH), got.append
        )
        self.assertEqual(len(got), 3)
        for failure in got:
            self.assertTrue(failure.check(DataServerFailed))
        # Reads still answer.
        server.submit_with_callback(
            Request(sid, 4, codes.OP_SYNC, SyncRequest("/"), AUTH), got.append
        )
        self.assertEqual(got[3].err, 0)
        self.flushLoggedErrors(DataServerFailed)

    def test_closed_memory_log_stops_writes(self):
        server, _clock = make_server()
        sid = result_of(server.create_session(10_000)).session_id
        server.log.close()
        got: list = []
        server.submit_with_callback(
            Request(sid, 1, codes.OP_CREATE, create("/a"), AUTH), got.append
        )
        self.assertTrue(got[0].check(DataServerFailed))
        self.failureResultOf(
            server.submit(Request(sid, 2, codes.OP_CREATE, create("/b"), AUTH)), DataServerFailed
        )
        self.assertIsNone(server.tree.get("/a"))
        self.assertEqual(server.prep.outstanding_count, 0)

    def test_a_raising_callback_is_logged_and_the_pipeline_goes_on(self):
        server, _clock = make_server()
        sid = result_of(server.create_session(10_000)).session_id

        def broken(outcome):
            raise ValueError("callback bug")

        server.submit_with_callback(Request(sid, 1, codes.OP_CREATE, create("/a"), AUTH), broken)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        later = result_of(server.submit(Request(sid, 2, codes.OP_CREATE, create("/b"), AUTH)))
        self.assertEqual((later.err, later.zxid), (0, 3))

    def test_write_from_a_reply_is_applied_after_the_syncs_before_it(self):
        """A reply callback that submits a write (the session server's held writes)
        does not let that write overtake a sync waiting on the first one."""
        log = ManualLog()
        server, _clock = make_server(log=log)
        sid = open_session(server, log)
        order: list = []

        def first_answered(outcome):
            order.append(("reply", outcome.zxid))
            server.submit_with_callback(
                Request(sid, 3, codes.OP_CREATE, create("/b"), AUTH),
                lambda later: order.append(("reply", later.zxid)),
            )

        def synced(outcome):
            order.append(("sync", outcome.zxid, server.tree.get("/b") is None))

        server.submit_with_callback(
            Request(sid, 1, codes.OP_CREATE, create("/a"), AUTH), first_answered
        )
        server.submit_with_callback(Request(sid, 2, codes.OP_SYNC, SyncRequest("/"), AUTH), synced)
        log.flush()
        log.flush()
        self.assertEqual(order, [("reply", 2), ("sync", 2, True), ("reply", 3)])

    def test_memory_log_write_from_a_reply_is_applied_after_the_reply_returns(self):
        """Not inside the reply: the caller finishes with one write before the next."""
        server, _clock = make_server()
        sid = result_of(server.create_session(10_000)).session_id
        order: list = []

        class Listener:
            def committed(inner, commit):  # noqa: N805
                order.append(("commit", commit.zxid))

        server.subscribe(Listener())

        def first_answered(outcome):
            order.append(("reply", outcome.zxid))
            if outcome.zxid == 2:
                server.submit_with_callback(
                    Request(sid, 2, codes.OP_CREATE, create("/b"), AUTH), first_answered
                )
                order.append(("submitted", server.tree.get("/b") is not None))

        server.submit_with_callback(
            Request(sid, 1, codes.OP_CREATE, create("/a"), AUTH), first_answered
        )
        self.assertEqual(
            order,
            [("commit", 2), ("reply", 2), ("submitted", False), ("commit", 3), ("reply", 3)],
        )
