"""
Leaving a silent data server (zkreg.link.endpoints, zkreg.link.hunt): one connection
attempt sweeps the list; probes answer only for a data server that starts a sync; a
data link whose data server is silent moves to another of its list that answers,
never counts its own stalls as the data server's silence, stays when the silent one
speaks again, and over real sockets leaves a stalled data server (accepting, never
answering: a SIGSTOPped process) with its held write answered once.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.trial import unittest

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.messages import Request
from zkreg.data.server import DataServer
from zkreg.link import wire
from zkreg.link.endpoints import EndpointsInTurn
from zkreg.link.hunt import Hunt, probe
from zkreg.link.tcp import DataLinkServerFactory, TCPDataLink
from zkreg.proto.consts import OPEN_ACL_UNSAFE
from zkreg.proto.records import CreateRequest, Id

HELLO = wire.encode_message(wire.Hello(wire.PROTOCOL_VERSION, 5, "test", []))
SYNC_START = wire.encode_frame(wire.SyncStart(wire.SYNC_DIFF, 5))


class FakeEndpoint:
    """Connects at once to a string transport (or refuses), and keeps what it made."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.protocols: list[Any] = []

    def connect(self, factory: Any) -> defer.Deferred:
        if self.refuse:
            return defer.fail(ConnectionRefusedError("refused"))
        protocol = factory.buildProtocol(None)
        transport = StringTransportWithDisconnection()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        self.protocols.append(protocol)
        return defer.succeed(protocol)


class EndpointsTests(unittest.TestCase):
    """One connection attempt sweeps the list from the current endpoint."""

    def test_an_attempt_goes_on_to_the_next_that_connects(self):
        failures: list[str] = []
        dead, alive = FakeEndpoint(refuse=True), FakeEndpoint()
        endpoints = EndpointsInTurn(
            [("dead", dead), ("alive", alive)], lambda description, _: failures.append(description)
        )
        self.successResultOf(endpoints.connect(_factory()))
        self.assertEqual((failures, endpoints.current), (["dead"], "alive"))
        self.successResultOf(endpoints.connect(_factory()))
        self.assertEqual((failures, len(alive.protocols)), (["dead"], 2))

    def test_fails_once_every_one_refused(self):
        failures: list[str] = []
        endpoints = EndpointsInTurn(
            [("a", FakeEndpoint(refuse=True)), ("b", FakeEndpoint(refuse=True))],
            lambda description, _: failures.append(description),
        )
        self.failureResultOf(endpoints.connect(_factory()), ConnectionRefusedError)
        self.assertEqual((failures, endpoints.current), (["a", "b"], "a"))


def _factory() -> Any:
    from twisted.internet.protocol import Factory, Protocol

    return Factory.forProtocol(Protocol)


class ProbeTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()

    def test_a_data_server_starting_a_sync_answers(self):
        endpoint = FakeEndpoint()
        answered = probe(endpoint, HELLO, self.clock)
        (protocol,) = endpoint.protocols
        self.assertEqual(protocol.transport.value()[4:], HELLO)
        protocol.dataReceived(SYNC_START)
        self.assertIs(self.successResultOf(answered), True)
        self.assertTrue(protocol.transport.disconnected)
        self.assertFalse(self.clock.getDelayedCalls())

    def test_refused_or_closed_or_anything_else_is_no(self):
        self.assertIs(self.successResultOf(probe(FakeEndpoint(True), HELLO, self.clock)), False)
        endpoint = FakeEndpoint()
        closed = probe(endpoint, HELLO, self.clock)
        endpoint.protocols[0].transport.loseConnection()
        self.assertIs(self.successResultOf(closed), False)
        other = probe(endpoint, HELLO, self.clock)
        endpoint.protocols[1].dataReceived(wire.encode_frame(wire.Beat(7)))
        self.assertIs(self.successResultOf(other), False)

    def test_a_silent_one_is_given_up_after_the_timeout(self):
        endpoint = FakeEndpoint()
        answered = probe(endpoint, HELLO, self.clock, timeout_s=1.0)
        self.clock.advance(0.9)
        self.assertNoResult(answered)
        self.clock.advance(0.2)
        self.assertIs(self.successResultOf(answered), False)
        self.assertTrue(endpoint.protocols[0].transport.disconnected)


class HuntTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.silent, self.standby, self.leader = FakeEndpoint(), FakeEndpoint(True), FakeEndpoint()
        self.endpoints = EndpointsInTurn(
            [("silent", self.silent), ("standby", self.standby), ("leader", self.leader)]
        )
        self.found: list[tuple[int, str]] = []
        self.wanted = True
        self.hunt = Hunt(
            self.endpoints,
            HELLO,
            self.clock,
            lambda: self.wanted,
            lambda index, description: self.found.append((index, description)),
        )

    def test_rounds_until_one_answers(self):
        self.hunt.start()
        # The standby refused, the leader is asked and has not answered yet.
        self.assertEqual(len(self.leader.protocols), 1)
        self.clock.advance(1.0)  # its probe timed out
        self.clock.advance(0.1)  # the next round
        self.assertEqual(len(self.leader.protocols), 2)
        self.leader.protocols[1].dataReceived(SYNC_START)
        self.assertEqual(self.found, [(2, "leader")])
        self.assertFalse(self.hunt.running)
        self.assertEqual(self.silent.protocols, [])

    def test_stops_once_the_silent_one_speaks(self):
        self.hunt.start()
        self.wanted = False
        self.leader.protocols[0].dataReceived(SYNC_START)
        self.assertEqual(self.found, [])
        self.assertFalse(self.hunt.running)


class SilenceTests(unittest.TestCase):
    """A data link on a list whose first data server accepts and never answers."""

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.silent, self.answering = FakeEndpoint(), FakeEndpoint()
        self.link = TCPDataLink(
            [("tcp:silent", self.silent), ("tcp:answering", self.answering)], self.clock
        )
        self.link.start()
        self.addCleanup(self.link.stop)
        self.assertEqual(self.link.connected_to, "tcp:silent")

    def test_moves_after_silence_to_one_that_answers(self):
        for _ in range(14):
            self.clock.advance(0.1)
        self.assertEqual(self.answering.protocols, [])
        self.clock.advance(0.11)  # 1.5 s of silence: a probe
        (probed,) = self.answering.protocols
        probed.dataReceived(SYNC_START)
        self.assertTrue(self.silent.protocols[0].transport.disconnected)
        self.assertEqual(self.link.moves, 1)
        self.clock.advance(0.2)  # the reconnection delay
        self.assertEqual(len(self.answering.protocols), 2)
        self.assertEqual(self.link.connected_to, "tcp:answering")

    def test_its_own_stalls_are_not_silence(self):
        self.clock.advance(0.1)
        self.clock.advance(30.0)  # this process stalled: one check, 0.2 s counted
        for _ in range(11):
            self.clock.advance(0.1)
        self.assertEqual(self.answering.protocols, [])
        for _ in range(2):
            self.clock.advance(0.11)
        self.assertEqual(len(self.answering.protocols), 1)

    def test_past_the_data_server_timeout_the_connection_is_dropped(self):
        self.answering.refuse = True
        for _ in range(99):
            self.clock.advance(0.1)
        self.assertFalse(self.silent.protocols[0].transport.disconnected)
        self.clock.advance(0.11)
        self.assertTrue(self.silent.protocols[0].transport.disconnected)

    def test_a_frame_resets_the_silence(self):
        protocol = self.silent.protocols[0]
        for _ in range(10):
            self.clock.advance(0.1)
        protocol.dataReceived(wire.encode_frame(wire.Beat(0)))
        for _ in range(10):
            self.clock.advance(0.1)
        self.assertEqual(self.answering.protocols, [])


class StalledDataServerTests(unittest.TestCase):
    """
    Over real loopback sockets: the link reaches its data server through a proxy that
    stalls (accepts and reads, never answers: a SIGSTOPped process as its peers see
    it); a write sent into the stall is answered, once, through the next endpoint.
    """

    timeout = 30

    async def test_leaves_a_stalled_data_server(self):
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ServerEndpoint

        from tests.support.proxy import TcpProxy
        from zkreg.link.endpoints import parse_data_servers

        server = DataServer(ServerConfig())
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            DataLinkServerFactory(server)
        )
        self.addCleanup(port.stopListening)
        proxy = TcpProxy(port.getHost().port)
        proxy.start()
        self.addCleanup(proxy.stop)
        link = TCPDataLink(
            parse_data_servers(
                reactor, f"tcp:127.0.0.1:{proxy.port},tcp:127.0.0.1:{port.getHost().port}"
            ),
            hunt_after_s=0.5,
        )
        await link.start()
        self.addCleanup(link.stop)
        self.assertEqual(link.connected_to, f"tcp:127.0.0.1:{proxy.port}")
        grant = await link.create_session(10_000)
        proxy.stall()
        request = Request(
            grant.session_id,
            1,
            codes.OP_CREATE,
            CreateRequest("/held", b"1", list(OPEN_ACL_UNSAFE), 0),
            (Id("ip", "127.0.0.1"),),
        )
        outcome = await link.submit(request)
        self.assertEqual((outcome.err, outcome.response.path), (0, "/held"))
        self.assertEqual(link.connected_to, f"tcp:127.0.0.1:{port.getHost().port}")
        self.assertEqual(link.moves, 1)
        self.assertEqual(server.tree.get("/").cversion, 1)
