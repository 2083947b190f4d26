"""
In-memory stand-ins for servers: a fake network whose connections record what the
client writes and let a test answer, byte for byte.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet import defer
from twisted.internet.testing import StringTransportWithDisconnection

from zkreg.proto.records import ConnectRequest, ConnectResponse, ReplyHeader, Stat

PASSWORD = b"p" * 16
STAT = Stat(1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1)


class FakeServerSide:
    """One in-memory connection: what the client wrote, and a way to answer."""

    def __init__(self, protocol: Any, peer: tuple[str, int]) -> None:
        self.protocol = protocol
        self.peer = peer
        self.transport = StringTransportWithDisconnection()
        self.transport.protocol = protocol
        self._read = 0

    def frames(self) -> list[bytes]:
        """Frames written since the last call."""
        data = self.transport.value()[self._read :]
        frames = []
        offset = 0
        while offset + 4 <= len(data):
            (length,) = struct.unpack(">i", data[offset : offset + 4])
            frames.append(data[offset + 4 : offset + 4 + length])
            offset += 4 + length
        self._read += offset
        return frames

    def send(self, frame: bytes) -> None:
        self.protocol.dataReceived(struct.pack(">i", len(frame)) + frame)

    def reply(self, xid: int, zxid: int, err: int = 0, body: bytes = b"") -> None:
        self.send(ReplyHeader(xid, zxid, err).serialize() + body)

    def accept(
        self, session_id: int = 0x55, timeout_ms: int = 6000, read_only: bool = False
    ) -> ConnectRequest:
        request, _ = ConnectRequest.deserialize(self.frames()[0], 0)
        self.send(ConnectResponse(0, timeout_ms, session_id, PASSWORD, read_only).serialize())
        return request

    @property
    def connected(self) -> bool:
        return self.transport.connected


class FakeNetwork:
    """An endpoint factory whose connections are L{FakeServerSide}s."""

    def __init__(self) -> None:
        self.connections: list[FakeServerSide] = []
        self.refuse = False

    def __call__(self, reactor: Any, host: str, port: int, timeout_s: float) -> Any:
        network = self

        class Endpoint:
            def connect(self, factory: Any) -> defer.Deferred[Any]:
                if network.refuse:
                    return defer.fail(ConnectionRefusedError())
                protocol = factory.buildProtocol(None)
                side = FakeServerSide(protocol, (host, port))
                network.connections.append(side)
                protocol.makeConnection(side.transport)
                return defer.succeed(protocol)

        return Endpoint()

    @property
    def last(self) -> FakeServerSide:
        return self.connections[-1]
