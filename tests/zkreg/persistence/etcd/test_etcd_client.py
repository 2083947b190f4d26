"""
The etcd client moving on from a member that cannot serve (a real one-member etcd
behind stand-ins for dead, silent and leaderless members), and a leader's lease
riding through an etcd election.
"""

from __future__ import annotations

import json
import time

from twisted.internet import defer, protocol, reactor
from twisted.internet.task import Clock
from twisted.trial import unittest
from twisted.web import resource, server

from tests.support.etcd import ModuleEtcd
from tests.support.ports import free_port
from zkreg.persistence.etcd.client import ATTEMPT_TIMEOUT_S, EtcdClient, EtcdError
from zkreg.persistence.etcd.election import ELECTION_GRACE_S, Leadership
from zkreg.persistence.etcd.layout import Layout

_etcd = ModuleEtcd()
setUpModule = _etcd.start
tearDownModule = _etcd.stop


class _Answer(resource.Resource):
    """Answers every POST with one fixed HTTP status and JSON body."""

    isLeaf = True

    def __init__(self, code: int, body: dict) -> None:
        super().__init__()
        self.code = code
        self.body = json.dumps(body).encode()
        self.requests = 0

    def render_POST(self, request):
        self.requests += 1
        request.setResponseCode(self.code)
        return self.body


class MovingOnTests(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.etcd = _etcd.endpoints[0]

    def client(self, first: str) -> EtcdClient:
        client = EtcdClient([first, self.etcd])
        self.addCleanup(client.close)
        return client

    def listen(self, factory) -> str:
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}"

    async def timed_put(self, client: EtcdClient) -> float:
        started = time.monotonic()
        await client.put(b"/client-test/k", b"v")
        return time.monotonic() - started

    async def test_refused_member_costs_nothing(self) -> None:
        """A member that is down (connection refused): the next one at once."""
        client = self.client(f"http://127.0.0.1:{free_port()}")
        self.assertLess(await self.timed_put(client), ATTEMPT_TIMEOUT_S)
        self.assertEqual(client.current_endpoint, self.etcd)

    async def test_silent_member_is_left_after_the_attempt_timeout(self) -> None:
        """
        A member that takes the request and never answers (a follower that forwarded
        it to a leader that just died): the next one after the attempt timeout, not
        after etcd's 7 s or the client's 5 s.
        """
        silent = self.listen(protocol.Factory.forProtocol(protocol.Protocol))
        client = self.client(silent)
        took = await self.timed_put(client)
        self.assertGreaterEqual(took, ATTEMPT_TIMEOUT_S * 0.9)
        self.assertLess(took, ATTEMPT_TIMEOUT_S + 2.0)
        self.assertEqual(client.current_endpoint, self.etcd)
        # the answering member is tried first from now on
        self.assertLess(await self.timed_put(client), ATTEMPT_TIMEOUT_S)

    async def test_unavailable_answers_go_to_the_next_member(self) -> None:
        """etcd's "request timed out" and "no leader" answers are not failures."""
        for code, body in (
            (503, {"error": "etcdserver: request timed out", "code": 14}),
            (500, {"error": "etcdserver: no leader", "code": 14}),
            (503, {"error": "etcdserver: leader changed", "code": 14}),
        ):
            answer = _Answer(code, body)
            client = self.client(self.listen(server.Site(answer)))
            self.assertLess(await self.timed_put(client), ATTEMPT_TIMEOUT_S)
            self.assertEqual(answer.requests, 1)

    async def test_a_refusal_is_not_retried_elsewhere(self) -> None:
        """A request etcd refuses (bad argument) fails at once, on the first member."""
        answer = _Answer(400, {"error": "etcdserver: too many operations", "code": 3})
        client = self.client(self.listen(server.Site(answer)))
        with self.assertRaises(EtcdError):
            await client.put(b"/client-test/k", b"v")
        self.assertEqual(answer.requests, 1)


class _Unanswered:
    """An etcd client whose keep-alives get no answer (etcd electing a leader)."""

    def __init__(self) -> None:
        self.answer: defer.Deferred | None = None

    def keep_alive(self, lease: int) -> defer.Deferred:
        self.answer = defer.Deferred()
        return self.answer


class LeaseGraceTests(unittest.SynchronousTestCase):
    def test_leader_keeps_leading_through_an_etcd_election(self) -> None:
        """
        Keep-alives unanswered for longer than the TTL (etcd without a Raft leader)
        do not depose the leader until the TTL plus the grace; the first answer
        renews it; unanswered past the grace it steps down.
        """
        clock = Clock()
        client = _Unanswered()
        leadership = Leadership(
            client, Layout("/grace"), 5, 1, 77, 2, clock, monotonic=clock.seconds
        )  # type: ignore[arg-type]
        lost: list[str] = []
        leadership.start(lost.append)
        for _ in range(int((2 + ELECTION_GRACE_S - 0.5) / 0.5)):
            clock.advance(0.5)
        self.assertEqual(lost, [])
        assert client.answer is not None
        client.answer.callback(2)  # the new etcd leader renews it
        for _ in range(int((2 + ELECTION_GRACE_S - 0.5) / 0.5)):
            clock.advance(0.5)
        self.assertEqual(lost, [])
        for _ in range(3):
            clock.advance(0.5)
        self.assertEqual(len(lost), 1)
        self.assertIn("not renewed", lost[0])
        self.assertTrue(leadership.lost)
