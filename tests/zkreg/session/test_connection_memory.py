"""
A connection's memory over real loopback TCP, in-process: a client that stops reading
makes the server stop reading it once its unsent output passes max_output_buffer, and
a closed connection frees its buffers at once, with the garbage collector off (no
reference cycle keeps them until a collection).
"""

from __future__ import annotations

import gc
import struct
import weakref

from twisted.internet import protocol, reactor, task
from twisted.trial import unittest

from tests.support.waiting import reactor_wait_until
from zkreg.config import ServerConfig
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode
from zkreg.session.assembly import build_standalone

_DATA = b"m" * 200_000


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _request(xid: int, opcode: int, record: object) -> bytes:
    return _frame(R.RequestHeader(xid, opcode).serialize() + record.serialize())  # type: ignore[attr-defined]


class _NonReader(protocol.Protocol):
    """Sends a handshake, a create and many getData, then reads nothing more."""

    def connectionMade(self) -> None:
        connect = R.ConnectRequest(0, 0, 30000, 0, b"\0" * 16, False).serialize()
        frames = [_frame(connect)]
        frames.append(_request(1, OpCode.create, R.CreateRequest("/memory", _DATA, list(_OPEN), 0)))
        frames += [
            _request(xid, OpCode.getData, R.GetDataRequest("/memory", False))
            for xid in range(2, 202)
        ]
        self.transport.write(b"".join(frames))
        self.transport.pauseProducing()


_OPEN = [R.ACL(31, R.Id("world", "anyone"))]


class ConnectionMemoryTests(unittest.TestCase):
    timeout = 30

    def setUp(self) -> None:
        gc.disable()
        self.addCleanup(gc.enable)
        config = ServerConfig(max_output_buffer_bytes=512 * 1024, output_stall_timeout_ms=0)
        self.data_server, self.factory = build_standalone(config, clock=reactor)
        self.data_server.startService()
        self.addCleanup(self.data_server.stopService)
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    async def test_unread_output_is_bounded_and_freed_on_close(self):
        client = await protocol.ClientCreator(reactor, _NonReader).connectTCP(
            "127.0.0.1", self.port.getHost().port
        )
        connections = self.factory.connections
        await reactor_wait_until(lambda: any(c.output_paused for c in connections))
        (connection,) = connections
        # The 200 replies (40 MB) were not all built: requests wait unread.
        self.assertLess(connection.packets_sent, 200)
        connection_ref = weakref.ref(connection)
        transport_ref = weakref.ref(connection.transport)
        del connection
        client.transport.abortConnection()
        await reactor_wait_until(lambda: not connections)
        await task.deferLater(reactor, 0, lambda: None)
        self.assertIsNone(connection_ref(), "a closed connection outlived its close")
        self.assertIsNone(transport_ref(), "its transport (and buffers) outlived the close")

    async def test_reading_resumes_when_the_client_reads(self):
        client = await protocol.ClientCreator(reactor, _NonReader).connectTCP(
            "127.0.0.1", self.port.getHost().port
        )
        received = []
        client.dataReceived = received.append  # type: ignore[method-assign]
        connections = self.factory.connections
        await reactor_wait_until(lambda: any(c.output_paused for c in connections))
        client.transport.resumeProducing()
        await reactor_wait_until(lambda: sum(map(len, received)) >= 200 * len(_DATA), timeout=20)
        (connection,) = connections
        await reactor_wait_until(lambda: connection.packets_sent == 202)  # handshake, create, 200
        self.assertFalse(connection.output_paused)
        self.assertEqual(connection.outstanding, 0)
        client.transport.loseConnection()
        await reactor_wait_until(lambda: not connections)
