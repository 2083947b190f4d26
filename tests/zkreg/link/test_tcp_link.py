"""
The TCP data link: a session server's replica equals the data server's tree, commits
arrive before results, sessions and writes work through it (over an in-memory
connection: twisted.test.iosim).
"""

from __future__ import annotations

from twisted.internet import task
from twisted.test import iosim
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.messages import Request
from zkreg.data.server import DataServer
from zkreg.interfaces import IDataLink
from zkreg.link import wire
from zkreg.link.tcp import DataLinkServerFactory, TCPDataLink
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import (
    CheckVersionRequest,
    CreateRequest,
    GetDataRequest,
    Id,
    SetDataRequest,
    SyncRequest,
)

AUTH = (Id("ip", "127.0.0.1"),)
OPEN = list(OPEN_ACL_UNSAFE)


class TCPLinkTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.server = DataServer(ServerConfig(extended_types=True), clock=self.clock)
        # State before the link connects arrives in the snapshot.
        grant = self.server.create_session(5000).result
        self.server.submit(
            Request(
                grant.session_id, 1, codes.OP_CREATE, CreateRequest("/pre", b"x", OPEN, 0), AUTH
            )
        )
        self.server.submit(
            Request(
                grant.session_id, 2, codes.OP_CREATE, CreateRequest("/pre/e", b"", OPEN, 1), AUTH
            )
        )
        self.factory = DataLinkServerFactory(self.server)
        self.link = TCPDataLink([], self.clock, data_tier_timeout_s=30.0)
        self.connect()
        self.assertTrue(self.link.ready.called)

    def connect(self) -> None:
        """(Re)connect the link to the data server over an in-memory connection."""
        self.client_side, self.server_side, self.pump = iosim.connectedServerAndClient(
            lambda: self.factory.buildProtocol(None), self.link.build_protocol
        )
        self.pump.flush()

    def disconnect(self) -> None:
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        self.client_side.connectionLost(Failure(ConnectionLost("gone")))
        self.server_side.connectionLost(Failure(ConnectionLost("gone")))

    def call(self, deferred):
        self.pump.flush()
        return self.successResultOf(deferred)

    def test_interface(self):
        self.assertTrue(verifyObject(IDataLink, self.link))

    def test_snapshot_replica_equals_server_tree(self):
        view = self.link.read_view()
        self.assertEqual(view.digest(), self.server.tree.digest())
        self.assertEqual(view.ephemerals, self.server.tree.ephemerals)

    def test_writes_commits_and_reads_through_the_link(self):
        order = []

        class Listener:
            def committed(self, commit):
                order.append(("commit", commit.zxid, commit.events))

        self.link.subscribe(Listener())
        grant = self.call(self.link.create_session(8000))
        sid = grant.session_id
        self.assertEqual(grant.password, self.server.sessions.password(sid))
        submitted = self.link.submit(
            Request(sid, 1, codes.OP_CREATE2, CreateRequest("/a", b"data", OPEN, 0), AUTH)
        )
        submitted.addCallback(lambda outcome: order.append(("reply", outcome.zxid)) or outcome)
        outcome = self.call(submitted)
        self.assertEqual(outcome.response.path, "/a")
        self.assertEqual(outcome.response.stat.dataLength, 4)
        # The commit reached the listener (and the replica) before the reply.
        self.assertEqual(order[-2][0], "commit")
        self.assertEqual(order[-2][2], ((1, "/a"), (4, "/")))
        self.assertEqual(order[-1], ("reply", outcome.zxid))
        self.assertEqual(self.link.read_view().get("/a").data, b"data")
        failed_multi = self.call(
            self.link.submit(
                Request(
                    sid,
                    2,
                    codes.OP_MULTI,
                    [
                        (codes.OP_SET_DATA, SetDataRequest("/a", b"v", 0)),
                        (codes.OP_CHECK, CheckVersionRequest("/a", 7)),
                    ],
                    AUTH,
                )
            )
        )
        self.assertEqual([(t, err) for t, err, _ in failed_multi.response], [(-1, 0), (-1, -103)])
        read = self.call(
            self.link.submit(Request(sid, 3, codes.OP_GET_DATA, GetDataRequest("/a", False), AUTH))
        )
        self.assertEqual(read.response.data, b"data")
        synced = self.call(
            self.link.submit(Request(sid, 4, codes.OP_SYNC, SyncRequest("/a"), AUTH))
        )
        self.assertEqual(synced.response.path, "/a")
        error = self.call(
            self.link.submit(
                Request(sid, 5, codes.OP_CREATE, CreateRequest("/a", b"", OPEN, 0), AUTH)
            )
        )
        self.assertEqual((error.err, error.response), (codes.NODE_EXISTS, None))
        self.assertEqual(self.link.read_view().digest(), self.server.tree.digest())

    def test_session_revalidate_touch_close(self):
        grant = self.call(self.link.create_session(8000))
        again = self.call(self.link.revalidate_session(grant.session_id, grant.password, 9000))
        self.assertEqual(again.timeout_ms, 9000)
        self.assertIsNone(self.call(self.link.revalidate_session(grant.session_id, b"bad", 9000)))
        before = self.server.sessions.deadline_of(grant.session_id)
        self.clock.advance(1.0)
        self.link.touch_sessions([grant.session_id])
        self.link.touch_sessions([grant.session_id])
        self.pump.flush()
        self.assertEqual(self.server.sessions.deadline_of(grant.session_id), before)
        self.clock.advance(TCPDataLink.TOUCH_DELAY_S)
        self.pump.flush()
        self.assertGreater(self.server.sessions.deadline_of(grant.session_id), before)
        closed = self.call(self.link.close_session(grant.session_id))
        self.assertEqual(closed.err, 0)
        self.assertNotIn(grant.session_id, self.link.read_view().sessions)
        self.assertEqual(self.link.read_view().digest(), self.server.tree.digest())

    def test_requests_are_held_through_an_outage_and_resubmitted(self):
        grant = self.call(self.link.create_session(8000))
        sid = grant.session_id
        self.disconnect()
        self.assertEqual(self.link.state, "down")
        # Made while no data server is linked: held, not failed.
        created = self.link.submit(
            Request(sid, 1, codes.OP_CREATE, CreateRequest("/held", b"", OPEN, 0), AUTH)
        )
        self.assertNoResult(created)
        self.assertEqual(self.link.held, 1)
        self.connect()
        self.assertEqual(self.link.state, "up")
        self.assertEqual(self.successResultOf(created).response.path, "/held")
        self.assertEqual(self.link.read_view().digest(), self.server.tree.digest())

    def test_a_write_committed_but_unanswered_is_answered_once_after_reconnecting(self):
        """The fault between commit and reply: the reply is lost, the write is not redone."""
        grant = self.call(self.link.create_session(8000))
        sid = grant.session_id
        self.call(
            self.link.submit(
                Request(sid, 1, codes.OP_CREATE, CreateRequest("/q", b"", OPEN, 0), AUTH)
            )
        )
        sent = self.server_side.out
        self.server_side.out = lambda frame: (  # drop every reply: the fault
            None if frame[4] == wire.RESULT else sent(frame)
        )
        sequential = CreateRequest("/q/n-", b"", OPEN, 2)
        created = self.link.submit(Request(sid, 2, codes.OP_CREATE, sequential, AUTH))
        self.pump.flush()
        self.assertNoResult(created)
        self.assertEqual(sorted(self.server.tree.get("/q").child_names()), ["n-0000000000"])
        self.disconnect()
        self.connect()
        outcome = self.successResultOf(created)
        self.assertEqual(outcome.response.path, "/q/n-0000000000")
        self.assertEqual(sorted(self.server.tree.get("/q").child_names()), ["n-0000000000"])
        self.assertEqual(self.link.read_view().digest(), self.server.tree.digest())

    def test_resumes_from_its_zxid_when_the_server_still_has_the_commits(self):
        replaced = []

        class Listener:
            def committed(self, commit):
                pass

            def view_replaced(self, old, new):
                replaced.append(new)

        self.link.subscribe(Listener())
        view = self.link.read_view()
        self.disconnect()
        grant = self.server.create_session(4000).result
        self.server.submit(
            Request(
                grant.session_id, 1, codes.OP_CREATE, CreateRequest("/later", b"", OPEN, 0), AUTH
            )
        )
        self.connect()
        self.assertIs(self.link.read_view(), view, "the replica was kept")
        self.assertEqual(replaced, [])
        self.assertEqual(view.digest(), self.server.tree.digest())

    def test_gets_a_new_replica_when_the_commits_are_gone(self):
        replaced = []

        class Listener:
            def committed(self, commit):
                pass

            def view_replaced(self, old, new):
                replaced.append((old, new))

        self.link.subscribe(Listener())
        view = self.link.read_view()
        self.disconnect()
        grant = self.server.create_session(4000).result
        self.server.submit(
            Request(
                grant.session_id, 1, codes.OP_CREATE, CreateRequest("/later", b"", OPEN, 0), AUTH
            )
        )
        # A restarted data server that kept no recent commits to resume from.
        self.factory = DataLinkServerFactory(self.server, prefill=0)
        self.connect()
        self.assertEqual(replaced, [(view, self.link.read_view())])
        self.assertIsNot(self.link.read_view(), view)
        self.assertEqual(self.link.read_view().digest(), self.server.tree.digest())

    def test_resumes_from_the_log_of_a_restarted_data_server(self):
        events = []

        class Listener:
            def committed(self, commit):
                events.append(commit.events)

            def view_replaced(self, old, new):
                raise AssertionError("no snapshot expected")

        self.link.subscribe(Listener())
        view = self.link.read_view()
        self.disconnect()
        grant = self.server.create_session(4000).result
        self.server.submit(
            Request(
                grant.session_id, 1, codes.OP_CREATE, CreateRequest("/later", b"", OPEN, 0), AUTH
            )
        )
        # The data server restarts on the same log: it replays it, and its link
        # server reads the last commits back.
        self.server = DataServer(
            ServerConfig(extended_types=True), log=self.server.log, clock=self.clock
        )
        self.factory = DataLinkServerFactory(self.server)
        self.connect()
        self.assertIs(self.link.read_view(), view)
        self.assertEqual(view.digest(), self.server.tree.digest())
        # The events come from applying the commits on the replica.
        self.assertIn(((1, "/later"), (4, "/")), events)

    def test_past_the_data_tier_timeout_held_requests_fail(self):
        from zkreg.link.errors import DataTierUnavailable

        told = []

        class Listener:
            def committed(self, commit):
                pass

            def data_tier_unavailable(self):
                told.append(True)

        self.link.subscribe(Listener())
        grant = self.call(self.link.create_session(8000))
        self.disconnect()
        held = self.link.submit(
            Request(grant.session_id, 1, codes.OP_CREATE, CreateRequest("/x", b"", OPEN, 0), AUTH)
        )
        self.clock.advance(29)
        self.assertNoResult(held)
        self.clock.advance(1)
        self.failureResultOf(held, DataTierUnavailable)
        self.assertEqual(told, [True])
        self.failureResultOf(self.link.create_session(1000), DataTierUnavailable)
        # A data server back later: the link works again.
        self.connect()
        self.assertEqual(self.link.state, "up")
        self.assertIsNotNone(self.call(self.link.create_session(1000)))

    def test_a_silent_session_server_is_dropped(self):
        self.assertTrue(self.server_side.live)
        self.clock.advance(self.factory.session_server_timeout_s + 1)
        self.pump.flush()
        self.assertFalse(self.server_side.live)
        self.assertEqual(self.link.state, "down")

    def test_sessions_of_a_dropped_session_server_expire_on_their_own_timeouts(self):
        self.server.startService()
        self.addCleanup(self.server.stopService)
        grant = self.call(self.link.create_session(30_000))
        sid = grant.session_id
        # The session server stops reporting (a SIGSTOP, a cut network).
        self.clock.advance(self.factory.session_server_timeout_s + 1)
        self.pump.flush()
        self.assertFalse(self.server_side.live)
        self.assertIn(sid, self.server.sessions, "dropping the link closed no session")
        # Its client moved to another session server, which keeps the session alive.
        other = DataLinkServerFactory(self.server).buildProtocol(None)
        other.makeConnection(iosim.FakeTransport(other, False))
        other.dataReceived(
            wire.encode_frame(wire.Hello(wire.PROTOCOL_VERSION, -1, "other", []))
            + wire.encode_frame(wire.Touch([sid]))
        )
        # With nobody touching it, it expires on its own timeout, not before.  (Time
        # moves in small steps: a jump would be a pause, which moves the deadlines.)
        self.step(29)
        self.assertIn(sid, self.server.sessions)
        self.step(2 + 2 * self.server.config.tick_time_ms / 1000)
        self.assertNotIn(sid, self.server.sessions)

    def step(self, seconds: float) -> None:
        for _ in range(int(seconds * 10)):
            self.clock.advance(0.1)

    def test_server_side_stops_sending_when_the_connection_closes(self):
        self.assertIn(self.server_side, self.factory.fanout.connections)
        self.client_side.transport.loseConnection()
        self.pump.flush()
        self.assertNotIn(self.server_side, self.factory.fanout.connections)


def test_message_round_trip():
    message = wire.Submit(7, 1, 2, codes.OP_GET_DATA, [Id("ip", "1.2.3.4")], b"\x00\x01", 5, 6, 4)
    assert wire.decode_message(wire.encode_message(message)) == message


class LoopbackTCPTests(unittest.TestCase):
    """connect_data_link over a real loopback socket."""

    timeout = 20

    async def test_connect_over_loopback(self):
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint

        from zkreg.link.tcp import connect_data_link

        server = DataServer(ServerConfig())
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            DataLinkServerFactory(server)
        )
        self.addCleanup(port.stopListening)
        link = await connect_data_link(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port, timeout=5)
        )
        self.addCleanup(link.stop)
        grant = await link.create_session(4000)
        request = Request(
            grant.session_id, 1, codes.OP_CREATE, CreateRequest("/x", b"1", OPEN, 0), AUTH
        )
        outcome = await link.submit(request)
        self.assertEqual((outcome.err, outcome.response.path), (0, "/x"))
        self.assertEqual(link.read_view().digest(), server.tree.digest())


def test_replica_follows_random_requests():
    """A TCP-link replica equals the data server's tree after any request sequence."""
    import sys
    from pathlib import Path

    from hypothesis import HealthCheck, given, settings

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    import test_state_properties as properties

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(script=properties.requests)
    def check(script):
        clock = task.Clock()
        clock.advance(1_700_000_000)
        server = DataServer(ServerConfig(extended_types=True), clock=clock)
        factory = DataLinkServerFactory(server)
        link = TCPDataLink([], clock)
        _client_side, _server_side, pump = iosim.connectedServerAndClient(
            lambda: factory.buildProtocol(None), link.build_protocol
        )
        pump.flush()
        grants = [link.create_session(10_000) for _ in range(2)]
        pump.flush()
        sessions = [grant.result.session_id for grant in grants]
        auth = (Id("ip", "127.0.0.1"), Id("digest", "u:h"))
        for cxid, (who, (opcode, record)) in enumerate(script):
            if opcode == codes.OP_MULTI:
                # setACL cannot travel in a multi on the wire.
                record = [(op, rec) for op, rec in record if op != codes.OP_SET_ACL]
            if opcode == codes.OP_CLOSE_SESSION:
                link.close_session(sessions[who])
            else:
                link.submit(Request(sessions[who], cxid, opcode, record, auth))
            clock.advance(0.01)
            pump.flush()
        assert link.read_view().digest() == server.tree.digest()
        assert link.read_view().ephemerals == server.tree.ephemerals
        assert set(link.read_view().containers) == set(server.tree.containers)

    check()
