"""
L{zkreg.transports.send_now} over real loopback TCP, in-process: a write to an idle
connection leaves at once (no writer registered with the reactor), and one that
finds the socket full is queued behind what is, in order.
"""

from __future__ import annotations

from twisted.internet import defer, protocol, reactor
from twisted.trial import unittest

from tests.support.waiting import reactor_wait_until
from zkreg.transports import send_now, sends_directly


class _Collector(protocol.Protocol):
    """Keeps every byte received and tells the factory's C{connected} Deferred it is up."""

    def __init__(self) -> None:
        self.received = bytearray()

    def connectionMade(self) -> None:
        self.factory.connected.callback(self)  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        self.received += data


class SendNowTests(unittest.TestCase):
    timeout = 30

    async def _connect(self) -> tuple[protocol.Protocol, _Collector]:
        factory = protocol.Factory.forProtocol(_Collector)
        factory.connected = defer.Deferred()  # type: ignore[attr-defined]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        sender = await protocol.ClientCreator(reactor, protocol.Protocol).connectTCP(
            "127.0.0.1", port.getHost().port
        )
        self.addCleanup(sender.transport.loseConnection)
        collector = await factory.connected
        self.addCleanup(collector.transport.loseConnection)
        return sender, collector

    async def test_an_idle_connection_sends_without_registering_a_writer(self):
        sender, collector = await self._connect()
        self.assertTrue(sends_directly(sender.transport))
        send_now(sender.transport, b"request")
        # Twisted's write would have queued the bytes and registered the socket.
        self.assertNotIn(sender.transport, reactor.getWriters())
        await reactor_wait_until(lambda: bytes(collector.received) == b"request")

    async def test_a_full_socket_queues_the_rest_in_order(self):
        sender, collector = await self._connect()
        collector.transport.pauseProducing()
        chunks = [bytes([n % 251]) * 65536 for n in range(200)]  # far past socket buffers
        for chunk in chunks:
            send_now(sender.transport, chunk)
        self.assertIn(sender.transport, reactor.getWriters())
        collector.transport.resumeProducing()
        expected = b"".join(chunks)
        await reactor_wait_until(lambda: len(collector.received) >= len(expected))
        self.assertEqual(bytes(collector.received), expected)
