"""
ReactorTestingServer: zkreg on the test's own reactor, used from trial test cases
with the async client, as a Twisted project would.
"""

from __future__ import annotations

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from curatorish import CreateMode, CuratorFramework, RetryNTimes
from curatorish.state import ConnectionState
from curatorish.testing_reactor import ReactorTestingServer


async def eventually(predicate, timeout_s: float = 15.0) -> None:
    """Poll C{predicate} on the reactor until it is true, failing after C{timeout_s}."""
    deadline = reactor.seconds() + timeout_s
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {predicate!r}")
        await task.deferLater(reactor, 0.02, lambda: None)


class ReactorTestingServerTests(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.server = ReactorTestingServer()
        self.server.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.server.close()))

    def client(self, **options) -> CuratorFramework:
        options.setdefault("retry_policy", RetryNTimes(5, 100))
        options.setdefault("reconnect_jitter_ms", 50)
        client = CuratorFramework(
            self.server.connect_string, session_timeout_ms=6000, default_data=b"", **options
        )
        self.addCleanup(client.close)
        return client

    async def test_async_client_drop_and_expire(self) -> None:
        states: list[ConnectionState] = []
        client = self.client()
        client.add_connection_state_listener(lambda c, state: states.append(state))
        client.start()
        self.assertTrue(await client.block_until_connected(10))
        created = await client.create("/eph", b"x", mode=CreateMode.EPHEMERAL)
        session = client.session_id
        self.assertEqual(created.stat.ephemeralOwner, session)

        self.assertGreaterEqual(self.server.drop_connections(), 1)
        await eventually(lambda: states[-1:] == [ConnectionState.RECONNECTED])
        self.assertEqual(client.session_id, session)
        self.assertIsNotNone(await client.exists("/eph"))

        zk = client.zookeeper
        self.assertTrue(await self.server.expire_session(zk.session_id, zk.session_password))
        await eventually(
            lambda: ConnectionState.LOST in states and states[-1] == ConnectionState.RECONNECTED
        )
        self.assertNotEqual(client.session_id, session)
        self.assertIsNone(await client.exists("/eph"))
        # The expiring side takes the session over first, so we are SUSPENDED, then
        # LOST when the server says it expired, then on a new session.
        self.assertEqual(
            states[:4],
            [
                ConnectionState.CONNECTED,
                ConnectionState.SUSPENDED,
                ConnectionState.RECONNECTED,
                ConnectionState.SUSPENDED,
            ],
        )
        self.assertEqual(states.count(ConnectionState.LOST), 1)
        self.assertEqual(
            states[states.index(ConnectionState.LOST) + 1 :], [ConnectionState.RECONNECTED]
        )

    async def test_restart_keeps_data(self) -> None:
        client = self.client()
        client.start()
        await client.create("/kept", b"v")
        await self.server.restart()
        data, _ = await client.get_data("/kept")
        self.assertEqual(data, b"v")

    async def test_expiring_an_unknown_session_reports_false(self) -> None:
        self.assertFalse(await self.server.expire_session(0x7F00000000000001, b"\0" * 16))
