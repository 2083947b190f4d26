"""The in-process data link: an IDataLink over a DataServer by direct calls."""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.messages import Outcome, Request, SessionGrant
from zkreg.data.server import DataServer
from zkreg.interfaces import IDataLink, IDurableLog, IReadView
from zkreg.link.inprocess import InProcessDataLink
from zkreg.persistence.memlog import ManualLog
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import CreateRequest, Id


class _LaterLog(ManualLog):
    """A log acknowledged only by a later call (as etcd's)."""

    acknowledges_later = True


class InProcessLinkTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.server = DataServer(ServerConfig(), clock=self.clock)
        self.link = InProcessDataLink(self.server)

    def test_provides_the_interfaces(self):
        self.assertTrue(verifyObject(IDataLink, self.link))
        self.assertTrue(verifyObject(IReadView, self.link.read_view()))
        self.assertTrue(verifyObject(IDurableLog, self.server.log))

    def test_writes_pass_reads_only_on_a_log_that_acknowledges_later(self):
        # The memory log applies a write inside submit: a write submitted past a
        # waiting read would be visible to it.
        self.assertFalse(self.link.writes_pass_reads)
        on_wal = DataServer(ServerConfig(), clock=self.clock, log=_LaterLog())
        self.assertTrue(InProcessDataLink(on_wal).writes_pass_reads)

    def test_read_view_is_the_servers_tree(self):
        self.assertIs(self.link.read_view(), self.server.tree)

    def test_session_lifecycle_and_a_write_through_the_link(self):
        commits: list = []

        class Listener:
            def committed(self, commit):
                commits.append(commit)

        listener = Listener()
        self.link.subscribe(listener)
        grant = self.successResultOf(self.link.create_session(5000))
        self.assertIsInstance(grant, SessionGrant)
        again = self.successResultOf(
            self.link.revalidate_session(grant.session_id, grant.password, 5000)
        )
        self.assertEqual(again, grant)
        self.link.touch_sessions([grant.session_id])
        request = Request(
            grant.session_id,
            1,
            codes.OP_CREATE,
            CreateRequest("/e", b"", list(OPEN_ACL_UNSAFE), codes.FLAG_EPHEMERAL),
            (Id("ip", "127.0.0.1"),),
        )
        outcome = self.successResultOf(self.link.submit(request))
        self.assertEqual(outcome.err, 0)
        self.assertIsNotNone(self.link.read_view().get("/e"))
        closed = self.successResultOf(self.link.close_session(grant.session_id))
        self.assertIsInstance(closed, Outcome)
        self.assertIsNone(self.link.read_view().get("/e"))
        self.assertEqual([c.closed_session for c in commits][-1], grant.session_id)
        self.link.unsubscribe(listener)
        self.successResultOf(self.link.create_session(5000))
        self.assertEqual(len(commits), 3)
