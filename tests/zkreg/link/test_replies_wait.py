"""
The data link of C{--session-processes}: a write's reply waits until every session
server that acknowledges what it applied has applied the write, so a read on any of
them after the reply sees it (over in-memory connections: twisted.test.iosim).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial import unittest

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.messages import Request
from zkreg.data.server import DataServer
from zkreg.link.serve import DataLinkServerFactory
from zkreg.link.tcp import TCPDataLink
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import CreateRequest, Id

AUTH = (Id("ip", "127.0.0.1"),)
OPEN = list(OPEN_ACL_UNSAFE)


class Linked:
    """One session server's link and its in-memory connection to the data server."""

    def __init__(self, factory: DataLinkServerFactory, clock: Any, acknowledge: bool) -> None:
        self.link = TCPDataLink(
            [], clock, data_tier_timeout_s=30.0, acknowledge_applied=acknowledge
        )
        self.client, self.server, self.pump = iosim.connectedServerAndClient(
            lambda: factory.buildProtocol(None), self.link.build_protocol
        )
        self.pump.flush()

    def has(self, path: str) -> bool:
        return self.link.read_view().get(path) is not None

    def cut(self) -> None:
        self.client.connectionLost(Failure(ConnectionLost("gone")))
        self.server.connectionLost(Failure(ConnectionLost("gone")))


class RepliesWaitTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.server = DataServer(ServerConfig(), clock=self.clock)
        self.factory = DataLinkServerFactory(self.server)
        self.factory.replies_wait_for_every_replica = True
        self.a = Linked(self.factory, self.clock, acknowledge=True)
        self.b = Linked(self.factory, self.clock, acknowledge=True)
        granted = self.a.link.create_session(8000)
        self.a.pump.flush()
        self.session_id = self.successResultOf(granted).session_id

    def create(self, path: str) -> Any:
        request = Request(
            self.session_id, 1, codes.OP_CREATE, CreateRequest(path, b"", OPEN, 0), AUTH
        )
        return self.a.link.submit(request)

    def test_reply_waits_for_the_other_replica(self):
        """The writer's reply comes once the other replica applied (and said so)."""
        created = self.create("/w")
        self.a.pump.flush()
        self.assertNoResult(created)
        self.assertFalse(self.b.has("/w"))
        self.b.pump.flush()
        self.assertTrue(self.b.has("/w"))
        self.a.pump.flush()
        self.assertEqual(self.successResultOf(created).response.path, "/w")

    def test_later_commits_wait_behind_the_held_reply(self):
        """The writer's replica gets no later commit before the held reply."""
        order: list[str] = []

        class Listener:
            def committed(self, commit):
                order.append(f"commit {commit.zxid:#x}")

        self.a.link.subscribe(Listener())
        first = self.create("/one")
        first.addCallback(lambda outcome: order.append(f"reply {outcome.zxid:#x}"))
        self.a.pump.flush()
        later = self.server.create_session(4000).result
        self.server.submit(
            Request(later.session_id, 1, codes.OP_CREATE, CreateRequest("/two", b"", OPEN, 0), AUTH)
        )
        self.a.pump.flush()
        self.assertEqual(len(order), 1)  # the first commit only
        self.b.pump.flush()
        self.a.pump.flush()
        # the first commit, its reply, then the later session's and node's commits
        self.assertEqual(
            [entry.split()[0] for entry in order], ["commit", "reply", "commit", "commit"]
        )
        self.assertEqual(order[1], "reply " + order[0].split()[1])
        self.assertTrue(self.a.has("/two"))

    def test_a_replica_that_leaves_no_longer_holds_replies(self):
        created = self.create("/w")
        self.a.pump.flush()
        self.assertNoResult(created)
        self.b.cut()
        self.a.pump.flush()
        self.assertEqual(self.successResultOf(created).response.path, "/w")

    def test_a_replica_that_does_not_acknowledge_is_not_waited_for(self):
        """A session server of the split (no acknowledgements) holds nothing back."""
        self.b.cut()
        Linked(self.factory, self.clock, acknowledge=False)
        created = self.create("/w")
        self.a.pump.flush()
        self.assertEqual(self.successResultOf(created).response.path, "/w")
