"""
Framing of the ZooKeeper client protocol on one TCP connection.

Every packet in either direction is a 4-byte big-endian length and that many bytes.
This protocol only frames: it hands each frame to its owner (the session,
L{curatorish.connection.session.ZooKeeperConnection}), which knows what the frame
means at this point of the conversation.

The framing loop is its own rather than C{Int32StringReceiver}'s: that one is written
for any subclass (a buffer and offset kept in attributes through every frame, a
C{recvd} attribute looked for after each), and it was the costliest frame of a
sequential call's reply after the Deferred's.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from zkreg.transports import send_now, sends_directly

#: The largest frame accepted from a server (ZooKeeper's client allows 0xfffff by
#: default; children lists of big directories exceed that, so be generous).
MAX_FRAME_LENGTH = 64 * 1024 * 1024

#: A request's frame length and header (C{RequestHeader}: xid, type), packed together.
_REQUEST_PREFIX = struct.Struct(">iii")
_REQUEST_HEADER_SIZE = 8
_FRAME_LENGTH = struct.Struct(">i")
#: A received frame's length, unsigned as C{Int32StringReceiver} read it: a length
#: with the top bit set is over L{MAX_FRAME_LENGTH}, not negative.
_RECEIVED_LENGTH = struct.Struct(">I")


class ClientProtocol(Protocol):
    """
    One connection to one server, on behalf of one session.

    @ivar owner: gets C{_protocol_connected(self)}, C{_frame_received(self, frame)} and
        C{_protocol_lost(self, reason)}.
    @ivar peer: the C{(host, port)} this connection went to, for logs.
    """

    MAX_LENGTH = MAX_FRAME_LENGTH

    def __init__(self, owner: Any, peer: tuple[str, int]) -> None:
        self.owner = owner
        self.peer = peer
        self._direct_write = False
        self._replies_batch: list[bytes] | None = None
        #: the start of a frame not yet complete
        self._unprocessed = b""

    def connectionMade(self) -> None:
        # As Java's client and kazoo (tcpNoDelay): a request must not wait for Nagle
        # until the previous one is acknowledged, while calls are in flight.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        self._direct_write = sends_directly(self.transport)
        self.owner._protocol_connected(self)

    def dataReceived(self, data: bytes) -> None:
        """
        Deliver the frames of C{data}; requests the callbacks of their replies make
        are sent together at the end, in one write (a window of pipelined calls
        refilled by one read is one C{send}, not one per call).
        """
        if self._replies_batch is not None:
            self._deliver_frames(data)
            return
        batch: list[bytes] = []
        self._replies_batch = batch
        try:
            self._deliver_frames(data)
        finally:
            self._replies_batch = None
            if batch:
                self._write(b"".join(batch))

    def _deliver_frames(self, data: bytes) -> None:
        """
        Hand each complete frame of what has arrived to the owner, in order; keep
        the start of an incomplete one for the next call.
        """
        if self._unprocessed:
            data = self._unprocessed + data
        end = len(data)
        offset = 0
        frame_received = self.owner._frame_received
        while end - offset >= 4:
            (length,) = _RECEIVED_LENGTH.unpack_from(data, offset)
            if length > self.MAX_LENGTH:
                self._unprocessed = b""
                self.lengthLimitExceeded(length)
                return
            frame_end = offset + 4 + length
            if frame_end > end:
                break
            frame = data[offset + 4 : frame_end]
            offset = frame_end
            frame_received(self, frame)
        self._unprocessed = data[offset:] if offset else data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.owner._protocol_lost(self, reason)

    def lengthLimitExceeded(self, length: int) -> None:
        # A frame this long is a broken stream, not a reply: start over elsewhere.
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def send_frame(self, frame: bytes) -> None:
        """
        Write one length-prefixed frame.
        """
        self._write(_FRAME_LENGTH.pack(len(frame)) + frame)

    def send_request(self, xid: int, opcode: int, body: bytes) -> None:
        """
        Write one request: its frame length, header and body in one write, with no
        header record built (L{send_frame} of C{RequestHeader(xid, opcode)} + body).
        """
        self._write(_REQUEST_PREFIX.pack(_REQUEST_HEADER_SIZE + len(body), xid, opcode) + body)

    def _write(self, data: bytes) -> None:
        # A call's request goes out now, not after the reactor's next write pass
        # (see zkreg.transports): a sequential call is one reactor turn, not two.
        if self._replies_batch is not None:
            self._replies_batch.append(data)
        elif self._direct_write:
            send_now(self.transport, data)  # type: ignore[arg-type]
        else:
            self.transport.write(data)  # type: ignore[union-attr]

    def abort(self) -> None:
        """
        Drop the connection now, without waiting for buffered data.
        """
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]
