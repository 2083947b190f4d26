"""
One client connection of the session server: framing, handshake, and the per-session
request pipeline that keeps replies in request order.

Framing is a hand-rolled loop over one buffer rather than Twisted's
C{Int32StringReceiver}, for three reasons measured or forced by the protocol: the first
four bytes of a connection may be a four-letter word rather than a length; a frame's
header and body are decoded in place (C{struct.unpack_from} and C{deserialize(buf,
offset)}) without slicing a copy of each frame; and all replies produced by one
C{dataReceived} leave in a single C{writeSequence}.

Ordering (ZooKeeper's per-session FIFO): a session's requests are answered strictly in
the order they arrived.  Writes go to the data link and are answered when their
Deferred fires; a read (or any request the session server answers itself) that arrives
while a write of the same session is outstanding waits behind it in C{_pending}, and is
evaluated only when everything before it has been answered, so it sees that write.  A
write that arrives behind such a waiting read is held too, so the read cannot see it.
With nothing outstanding, reads are answered synchronously, without a Deferred.
"""

from __future__ import annotations

import struct
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet import protocol, tcp
from twisted.internet.interfaces import IHandshakeListener
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.data.messages import Request
from zkreg.data.server import DataServerFailed
from zkreg.data.tree import OPEN_ACL
from zkreg.link.errors import DataTierUnavailable
from zkreg.proto import multi
from zkreg.proto.consts import Err, OpCode
from zkreg.proto.jute import DecodeError
from zkreg.proto.ops import MULTI, OPS
from zkreg.proto.records import (
    ClientInfo,
    CreateRequest,
    ErrorResponse,
    Id,
    SetSASLResponse,
    WhoAmIResponse,
)
from zkreg.session import handshake
from zkreg.session.fourletter import four_letter_word_of
from zkreg.session.sasl import DigestMD5Server, SaslFailed
from zkreg.session.stats import java_auth_order
from zkreg.session.watches import (
    NODE_CHILDREN_CHANGED,
    NODE_CREATED,
    NODE_DATA_CHANGED,
    NODE_DELETED,
    encode_event,
)
from zkreg.tls import handshake_refusal, peer_dn

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory

_LENGTH = struct.Struct(">i")
_REQUEST_HEADER = struct.Struct(">ii")
_INT = struct.Struct(">i")
#: The jute bytes of the open ACL vector (count 1, perms ALL, world:anyone), which
#: nearly every create carries: a create whose ACL is these bytes gets the shared
#: L{OPEN_ACL} tuple instead of a freshly decoded list (see L{_decode_open_create}).
_OPEN_ACL_BYTES = _INT.pack(1) + b"".join(entry.serialize() for entry in OPEN_ACL)
#: frame length + ReplyHeader(xid, zxid, err)
_REPLY_PREFIX = struct.Struct(">iiqi")
_REPLY_HEADER_SIZE = 16

_PING_XID = -2

#: Requests in flight on one connection above which it is not read from.
MAX_OUTSTANDING = 1000
#: Seconds a connection may stay without a session (ZooKeeper's sessionlessCnxnTimeout).
SESSIONLESS_TIMEOUT_S = 10.0
#: Missing bytes of a partial frame above which its pieces are gathered, not appended.
_GATHER_THRESHOLD = 65536
#: Bytes of replies collected in one batch above which they are handed to the
#: transport as a sequence rather than joined (a large node's data is then never
#: copied into a joined batch).
_JOIN_LIMIT = 65536
#: Seconds of request processing one connection gets before the others get a turn:
#: a burst of heavy requests is worked through in slices, each a reactor turn apart,
#: so the pings of other connections (and the expiry of sessions) are not starved.
SLICE_S = 0.02
#: Frames processed between two looks at the clock for L{SLICE_S}.
_FRAMES_PER_CLOCK_CHECK = 32

# Connection states.
_AWAIT_CONNECT = 0
_HANDSHAKING = 1
_ESTABLISHED = 2
_CLOSING = 3

# Kinds of entries in the pending queue.
_DONE = 0  # reply bytes ready
_WAITING = 1  # a submitted write, reply not yet known
_LOCAL = 2  # a read or local op, to evaluate when it reaches the head
_HELD = 3  # a write not yet submitted because a local op precedes it

#: lop of cons, by opcode (FinalRequestProcessor's lastOp strings).
_LAST_OP_NAMES = {
    OpCode.ping: "PING",
    OpCode.multi: "MULT",
    OpCode.multiRead: "MLTR",
    OpCode.create: "CREA",
    OpCode.create2: "CREA",
    OpCode.createTTL: "CREA",
    OpCode.createContainer: "CREA",
    OpCode.delete: "DELE",
    OpCode.deleteContainer: "DELE",
    OpCode.setData: "SETD",
    OpCode.reconfig: "RECO",
    OpCode.setACL: "SETA",
    OpCode.closeSession: "CLOS",
    OpCode.sync: "SYNC",
    OpCode.check: "CHEC",
    OpCode.exists: "EXIS",
    OpCode.getData: "GETD",
    OpCode.setWatches: "SETW",
    OpCode.setWatches2: "STW2",
    OpCode.addWatch: "ADDW",
    OpCode.getACL: "GETA",
    OpCode.getChildren: "GETC",
    OpCode.getChildren2: "GETC",
    OpCode.getAllChildrenNumber: "GETACN",
    OpCode.checkWatches: "CHKW",
    OpCode.removeWatches: "REMW",
    OpCode.whoAmI: "HOMI",
    OpCode.getEphemerals: "GETE",
}

#: What a connection may send before SASL succeeded when SASL is required.
_SASL_EXEMPT_OPS = frozenset((int(OpCode.sasl), int(OpCode.auth)))
_WRITE_OPS = frozenset(int(op) for op, spec in OPS.items() if spec.write)
_DATA_READ_OPS = frozenset(
    int(op)
    for op in (
        OpCode.exists,
        OpCode.getData,
        OpCode.getACL,
        OpCode.getChildren,
        OpCode.getChildren2,
        OpCode.getAllChildrenNumber,
        OpCode.getEphemerals,
        OpCode.multiRead,
    )
)


def encode_reply(xid: int, zxid: int, err: int, body: bytes = b"") -> bytes:
    """
    Encode one reply frame: length, ReplyHeader, body.
    """
    return _REPLY_PREFIX.pack(_REPLY_HEADER_SIZE + len(body), xid, zxid, err) + body


def encode_body(opcode: int, response: Any) -> bytes:
    """
    The bytes of a reply body: nothing, a record, or a multi result list.
    """
    if response is None:
        return b""
    if isinstance(response, bytes | bytearray):
        return bytes(response)
    if isinstance(response, list | tuple) and opcode in (OpCode.multi, OpCode.multiRead):
        return multi.encode_response(response)
    return response.serialize()


def _user_of(auth_id: Id) -> str:
    """The user name ZooKeeper's providers report for an id (AuthUtil.getUser)."""
    if auth_id.scheme == "digest":
        return auth_id.id.split(":", 1)[0]
    if auth_id.scheme in ("ip", "sasl", "x509"):
        return auth_id.id
    return ""


@implementer(IHandshakeListener)
class ClientConnection(protocol.Protocol):
    """
    One client connection.

    @ivar factory: the L{SessionServerFactory} (watches, link, stats, sessions).
    @ivar session_id: the established session, or 0.
    @ivar timeout_ms: the negotiated session timeout.
    @ivar auth: the connection's authenticated ids (ZooKeeper keeps them per
        connection; clients resend auth after a reconnect).
    @ivar four_letter: the four-letter word this connection asked, or L{None}.
    """

    factory: SessionServerFactory
    # Statistics for cons/stat/mntr, set by reset_stats.
    packets_received: int
    packets_sent: int
    last_cxid: int
    last_zxid: int
    last_op: str
    last_response_ms: int
    last_latency_ms: int
    min_latency_ms: int
    max_latency_ms: int
    total_latency_ms: int
    latency_count: int
    #: Set by makeConnection; typed loosely because Twisted declares it optional and
    #: this protocol never runs without one.
    transport: Any
    _log = Logger()

    def __init__(self) -> None:
        self._buffer = b""
        self._state = _AWAIT_CONNECT
        self._out: list[bytes] | None = None
        self._pending: deque[list] = deque()
        self._local_waiting = 0
        self._close_after_flush = False
        self._draining = False
        self._processing = False
        self._received_at = 0.0
        self._wanted = 0
        self._parts: list[bytes] = []
        self._parts_length = 0
        self._sessionless_timer: Any = None
        self._reading_paused = False
        #: The transport paused this producer: its unsent output passed the bound.
        self._output_full = False
        #: The transport's own buffer is full (it paused this producer).
        self._transport_full = False
        #: Complete frames are left in the buffer until the output drains or the
        #: next slice (see L{_process_frames}).
        self._input_held = False
        self._transport_paused = False
        self._stall_timer: Any = None
        self._continue_call: Any = None
        #: Bytes in C{_out}.
        self._out_size = 0
        #: Send straight to the socket when the transport has nothing queued (TCP);
        #: a flag, not a stored bound method, which would be a reference cycle keeping
        #: a closed connection's buffers alive until the garbage collector runs.
        self._direct_write = False
        #: reading stopped by the server-wide throttler (see L{stall_reading})
        self._stall_call: Any = None
        self._closing_session = False
        #: this connection's SASL exchange, once the client started one
        self._sasl: DigestMD5Server | None = None
        #: a failed SASL exchange was kept (--sasl-allow-failed-clients)
        self._sasl_aborted = False
        #: requests other than sasl and auth are refused until SASL succeeds
        #: (--sasl-required, ZooKeeper's sessionRequireClientSASLAuth)
        self._sasl_required = False
        #: a TLS handshake completed (see handshakeCompleted)
        self._tls_established = False
        self.session_id = 0
        self.timeout_ms = 0
        self.auth: tuple = ()
        self.peer_host = ""
        self.peer = ""
        self.four_letter: str | None = None
        self._connect_had_read_only = True
        # Statistics for cons/stat/mntr.
        self.established_ms = 0
        self.reset_stats()

    # -- connection lifetime -------------------------------------------------

    def connectionMade(self) -> None:
        self._sasl_required = self.factory.sasl_required
        if isinstance(self.transport, tcp.Connection):
            # As ZooKeeper (tcpNoDelay): small replies must not wait for Nagle.
            self.transport.setTcpNoDelay(True)
            self._direct_write = True
            # Bounded output: the transport tells this producer when its unsent bytes
            # pass its bufferSize (pauseProducing) and when they are all sent
            # (resumeProducing); past max_output_buffer the connection is not read.
            # The transport's bufferSize is left alone: it is also its read size, and
            # a recv of several MiB per read doubled the latency of small requests.
            self.transport.registerProducer(self, True)
        address = self.transport.getPeer()
        self.peer_host = getattr(address, "host", "") or ""
        port = getattr(address, "port", 0)
        self.peer = f"/{self.peer_host}:{port}"
        self.auth = (Id("ip", self.peer_host),)
        self.established_ms = int(self.factory.clock.seconds() * 1000)
        self.factory.connection_opened(self)
        # ZooKeeper closes a connection that has not sent its ConnectRequest within
        # zookeeper.nio.sessionlessCnxnTimeout (10 s).
        self._sessionless_timer = self.factory.clock.callLater(
            SESSIONLESS_TIMEOUT_S, self._sessionless_expired
        )

    def _sessionless_expired(self) -> None:
        self._sessionless_timer = None
        if self._state in (_AWAIT_CONNECT, _HANDSHAKING):
            self.factory.stats.sessionless_expired += 1
            self.close("no session established in time")

    def _cancel_sessionless_timer(self) -> None:
        timer = self._sessionless_timer
        if timer is not None:
            self._sessionless_timer = None
            if timer.active():
                timer.cancel()

    def handshakeCompleted(self) -> None:
        """
        A TLS client is through its handshake: a certificate it presented (the trust
        store vouched for it) makes its subject DN the connection's C{x509} id, and
        the configured x509 super user also C{super} (ZooKeeper's
        C{X509AuthenticationProvider}).
        """
        self._tls_established = True
        dn = peer_dn(self.transport)
        if dn is None:
            return
        auth = list(self.auth)
        if dn == self.factory.config.x509_superuser:
            auth.append(Id("super", dn))
            self._log.info(
                "client {peer}: authenticated {dn!r} as super user", peer=self.peer, dn=dn
            )
        auth.append(Id("x509", dn))
        self.auth = java_auth_order(auth)
        self._log.info("client {peer}: authenticated x509 id {dn!r}", peer=self.peer, dn=dn)

    def connectionLost(self, reason: Any = None) -> None:
        if not self._tls_established:
            refusal = handshake_refusal(self.transport, reason)
            if refusal is not None:
                self.factory.stats.auth_failed += 1
                self._log.warn(
                    "client {peer}: TLS handshake refused, connection closed: {refusal}",
                    peer=self.peer,
                    refusal=refusal,
                )
        self._cancel_sessionless_timer()
        if self._stall_call is not None and self._stall_call.active():
            self._stall_call.cancel()
        self._stall_call = None
        self._cancel_stall_timer()
        call = self._continue_call
        if call is not None:
            self._continue_call = None
            if call.active():
                call.cancel()
        self._state = _CLOSING
        # Drop every buffer at once: replies not sent, requests not processed.
        self._pending.clear()
        self._out = None
        self._out_size = 0
        self._buffer = b""
        self._parts = []
        self.factory.connection_closed(self)

    def _lose_connection(self) -> None:
        """
        Close once the transport has sent what it holds.  The producer is
        unregistered first: a transport never finishes closing while a paused
        producer is registered.
        """
        transport = self.transport
        if self._direct_write and transport.producer is not None:
            transport.unregisterProducer()
        transport.loseConnection()

    def close(self, why: str | None = None) -> None:
        """
        Flush what is queued and close the connection.

        @param why: logged when given (a protocol error, a refused handshake...).
        """
        if why is not None:
            self._log.info(
                "closing connection from {peer} (session 0x{session_id:x}): {why}",
                peer=self.peer,
                session_id=self.session_id,
                why=why,
            )
        self._state = _CLOSING
        if self._out is not None:
            self._close_after_flush = True
        else:
            self._lose_connection()

    def abort(self, why: str) -> None:
        """Drop the connection at once, discarding queued replies (protocol errors)."""
        self._log.warn(
            "protocol error from {peer} (session 0x{session_id:x}): {why}; closing",
            peer=self.peer,
            session_id=self.session_id,
            why=why,
        )
        self._state = _CLOSING
        self._out = None
        self._out_size = 0
        self._buffer = b""
        self.transport.abortConnection()

    # -- output ----------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        """
        Queue one frame behind everything already sent or queued on this connection.

        Within a batch (one dataReceived, one Deferred callback) frames are collected
        and written together at its end; outside one they are written at once.
        """
        self.packets_sent += 1
        self.factory.stats.packets_sent += 1
        if self._out is not None:
            self._out.append(frame)
            self._out_size += len(frame)
        elif self._state != _CLOSING or self._close_after_flush:
            self._write(frame)
            if self._transport_full:
                self._check_output()

    def send_pieces(self, pieces: tuple[bytes, ...]) -> None:
        """
        L{send} for one frame given in pieces (a header, then a node's data as the
        tree holds it): the data is handed to the transport as it is, never copied
        into a reply of its own, so replies of one large node share its buffer.
        """
        self.packets_sent += 1
        self.factory.stats.packets_sent += 1
        if self._out is not None:
            self._out.extend(pieces)
            self._out_size += sum(map(len, pieces))
        elif self._state != _CLOSING or self._close_after_flush:
            self.transport.writeSequence(pieces)
            if self._transport_full:
                self._check_output()

    def _write(self, data: bytes) -> None:
        if self._direct_write:
            self._write_through(data)
        else:
            self.transport.write(data)

    def _write_through(self, data: bytes) -> None:
        """
        Send at once when nothing is queued on the TCP transport, else queue.

        Twisted's C{write} always queues and registers the socket for writing, then
        unregisters it after the reactor's next write pass: two C{epoll_ctl} calls
        and a loop turn per reply.  Sending directly when the transport's buffer is
        empty is one C{send}; measured on a 1000-watcher notification fan-out, and
        for replies to sequential requests.  Anything not sent (a full socket
        buffer, an error) goes through Twisted's C{write}, which keeps order and
        reports errors the usual way.
        """
        transport = self.transport
        if (
            transport.connected
            and not transport.disconnecting
            and not transport._tempDataBuffer
            and transport.offset == len(transport.dataBuffer)
        ):
            try:
                sent = transport.socket.send(data)
            except OSError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def send_event(self, frame: bytes) -> None:
        """Deliver a watch notification (already encoded, shared by all watchers)."""
        if self._state == _ESTABLISHED:
            self._flush_later()
            self.send(frame)

    def _flush_later(self) -> None:
        """
        Collect frames produced outside a dataReceived (replies of a group commit,
        notifications) until the factory flushes every such connection, once per
        reactor turn: a group commit of many writes is then one send per
        connection, not one per reply.
        """
        if self._out is None:
            self._out = []
            self.factory.flush_later(self)

    def flush(self) -> None:
        """Send the frames collected by L{_flush_later} (unless a batch owns them)."""
        if self._out is not None and not self._processing:
            self._end_batch()

    def _begin_batch(self) -> bool:
        if self._out is not None:
            return False
        self._out = []
        return True

    def _end_batch(self) -> None:
        out = self._out
        size = self._out_size
        self._out = None
        self._out_size = 0
        if out:
            if len(out) == 1:
                self._write(out[0])
            elif size > _JOIN_LIMIT:
                self.transport.writeSequence(out)
            else:
                self._write(b"".join(out))
            if self._transport_full:
                self._check_output()
        if self._close_after_flush:
            self._close_after_flush = False
            self._lose_connection()

    # -- bounded output (IPushProducer, driven by the transport) ---------------------

    def pauseProducing(self) -> None:
        """
        The transport holds more unsent bytes than its own (small) buffer size: from
        now until it drains, each write checks them against C{max_output_buffer}.
        """
        self._transport_full = True
        self._check_output()

    def _unsent_bytes(self) -> int:
        transport = self.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def _check_output(self) -> None:
        """
        Past C{max_output_buffer} unsent bytes: read no more requests until they
        drain, and close the connection if it stays so for C{output_stall_timeout}.
        """
        if self._output_full or self._unsent_bytes() <= self.factory.max_output_buffer:
            return
        self._output_full = True
        self._update_reading()
        timeout = self.factory.output_stall_timeout_s
        if self._stall_timer is None and timeout > 0:
            self._stall_timer = self.factory.clock.callLater(timeout, self._output_stalled)

    def resumeProducing(self) -> None:
        """The transport sent everything it held: read (and process) requests again."""
        self._transport_full = False
        self._output_full = False
        self._cancel_stall_timer()
        if self._input_held:
            self._continue_later()
        else:
            self._update_reading()

    def stopProducing(self) -> None:
        """The transport is closing; connectionLost frees the rest."""

    def _cancel_stall_timer(self) -> None:
        timer = self._stall_timer
        if timer is not None:
            self._stall_timer = None
            if timer.active():
                timer.cancel()

    def _output_stalled(self) -> None:
        self._stall_timer = None
        if self._state == _CLOSING and not self._close_after_flush:
            return
        transport = self.transport
        unsent = self._unsent_bytes()
        self.factory.stats.slow_consumers_closed += 1
        self._log.warn(
            "client {peer} (session 0x{session_id:x}) read none of its {unsent} unsent "
            "bytes of replies for {timeout} s; closing its connection",
            peer=self.peer,
            session_id=self.session_id,
            unsent=unsent,
            timeout=self.factory.output_stall_timeout_s,
        )
        self._state = _CLOSING
        self._out = None
        self._out_size = 0
        self._buffer = b""
        transport.abortConnection()

    def _update_reading(self) -> None:
        """Read from the socket unless throttled, held or the output is full."""
        paused = (
            self._reading_paused
            or self._output_full
            or self._input_held
            or self._stall_call is not None
        )
        if paused == self._transport_paused or self._state == _CLOSING:
            return
        self._transport_paused = paused
        if paused:
            self.transport.pauseProducing()
        else:
            self.transport.resumeProducing()

    def _continue_later(self) -> None:
        """Process the frames left in the buffer in a later reactor turn."""
        if self._continue_call is None:
            self._continue_call = self.factory.clock.callLater(0, self._continue_input)

    def _continue_input(self) -> None:
        self._continue_call = None
        if self._state == _CLOSING or self._output_full:
            return
        if self._input_held:
            self._input_held = False
            self._received_at = self.factory.clock.seconds()
            opened = self._begin_batch()
            try:
                self._process_buffer()
            finally:
                if opened:
                    self._end_batch()
        self._update_reading()

    # -- input -----------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._state == _CLOSING:
            return
        if self._wanted:
            # A large frame arrives in pieces: join them once, when it is complete,
            # rather than re-copying the growing buffer on every segment.
            self._parts.append(data)
            self._parts_length += len(data)
            if self._parts_length < self._wanted:
                return
            self._buffer = b"".join(self._parts)
            self._parts = []
            self._parts_length = self._wanted = 0
        elif self._buffer:
            self._buffer += data
        else:
            self._buffer = data
        self._received_at = self.factory.clock.seconds()
        self._begin_batch()
        try:
            self._process_buffer()
        finally:
            # Also sends what callbacks queued since the last flush: order is kept.
            self._end_batch()

    def _process_buffer(self) -> None:
        self._processing = True
        try:
            self._process_frames()
        except Exception:
            # A bug must cost this connection only, never the reactor's other work.
            self._log.failure(
                "unexpected failure handling data from {peer}; closing", peer=self.peer
            )
            self.abort("internal error")
        finally:
            self._processing = False

    def _process_frames(self) -> None:
        buf = self._buffer
        end = len(buf)
        offset = 0
        factory = self.factory
        max_packet = factory.max_packet_size
        factory_stats = factory.stats
        output_bound = factory.max_output_buffer
        clock = factory.clock
        slice_ends = clock.seconds() + SLICE_S
        until_clock_check = _FRAMES_PER_CLOCK_CHECK
        try:
            while end - offset >= 4 and self._state != _CLOSING:
                if self._state == _HANDSHAKING:
                    break
                if self._out_size > output_bound or self._output_full:
                    # The replies of this burst already fill the output: leave the
                    # rest of the requests unread until it drains.
                    self._hold_input()
                    break
                until_clock_check -= 1
                if not until_clock_check:
                    until_clock_check = _FRAMES_PER_CLOCK_CHECK
                    if clock.seconds() > slice_ends:
                        # This connection had its slice: the others get a turn.
                        self._hold_input()
                        break
                if self._state == _AWAIT_CONNECT and offset == 0:
                    word = four_letter_word_of(buf)
                    if word is not None:
                        self._buffer = b""
                        self._answer_four_letter_word(word)
                        return
                (length,) = _LENGTH.unpack_from(buf, offset)
                if length < 0 or length > max_packet:
                    self.abort(f"frame length {length} outside 0..{max_packet}")
                    return
                frame_end = offset + 4 + length
                if frame_end > end:
                    break
                start = offset + 4
                offset = frame_end
                self.packets_received += 1
                factory_stats.packets_received += 1
                if self._state == _ESTABLISHED:
                    self._request_received(buf, start, frame_end)
                else:
                    self._connect_received(memoryview(buf)[start:frame_end])
        except DecodeError as error:
            self.abort(f"undecodable frame: {error}")
            return
        if self._state == _CLOSING:
            self._buffer = b""
            return
        if offset:
            buf = self._buffer = buf[offset:]
        if len(buf) >= 4 and self._state == _ESTABLISHED and not self._input_held:
            (length,) = _LENGTH.unpack_from(buf, 0)
            if length + 4 - len(buf) > _GATHER_THRESHOLD:
                self._wanted = length + 4
                self._parts = [buf]
                self._parts_length = len(buf)
                self._buffer = b""

    def _hold_input(self) -> None:
        self._input_held = True
        self._update_reading()
        self._continue_later()

    # -- four-letter words ---------------------------------------------------------

    def _answer_four_letter_word(self, word: str) -> None:
        self.four_letter = word
        self.packets_received += 1
        self.factory.stats.packets_received += 1
        self._log.info("processing {word} command from {peer}", word=word, peer=self.peer)
        text = self.factory.four_letter_answer(word, self)
        if text:
            # ZooKeeper counts an answer as one sent packet per 8192-character
            # chunk its BufferedWriter flushes (after srst has reset the counters).
            chunks = -(-len(text) // 8192)
            self.packets_sent += chunks
            self.factory.stats.packets_sent += chunks
            self.transport.write(text.encode("utf-8"))
        self.close()

    # -- handshake -------------------------------------------------------------------

    def _connect_received(self, frame: memoryview) -> None:
        request = handshake.decode_connect_request(frame)
        self._connect_had_read_only = request.readOnly is not None
        factory = self.factory
        server_zxid = factory.last_zxid()
        if request.lastZxidSeen > server_zxid:
            self.close(handshake.zxid_ahead_message(self.peer, request.lastZxidSeen, server_zxid))
            return
        self.timeout_ms = handshake.negotiate_timeout(
            request.timeOut, factory.min_timeout_ms, factory.max_timeout_ms
        )
        self._state = _HANDSHAKING
        if request.sessionId == 0:
            factory.stats.connection_requests += 1
            deferred = factory.link.create_session(self.timeout_ms)
        else:
            factory.stats.connection_revalidates += 1
            # ZooKeeper closes the session's previous connection before it even checks
            # the password (processConnectRequest: closeSession, then reopenSession).
            factory.session_moved(request.sessionId, self)
            deferred = factory.link.revalidate_session(
                request.sessionId, bytes(request.passwd or b""), self.timeout_ms
            )
        deferred.addCallbacks(
            self._session_granted,
            self._session_failed,
            callbackArgs=(request.sessionId,),
            errbackArgs=(request.sessionId,),
        )

    def _session_granted(self, grant: Any, requested_session: int) -> None:
        if self._state == _CLOSING:
            return
        opened = self._begin_batch()
        try:
            if grant is None:
                self.send(handshake.encode_refusal(self._connect_had_read_only))
                self.close(f"session 0x{requested_session:x} expired or wrong password")
                return
            self.session_id = grant.session_id
            self.timeout_ms = grant.timeout_ms
            self._state = _ESTABLISHED
            self._cancel_sessionless_timer()
            self.factory.session_attached(self, renewed=requested_session != 0)
            self.send(
                handshake.encode_connect_response(
                    grant.session_id,
                    grant.timeout_ms,
                    grant.password,
                    self._connect_had_read_only,
                )
            )
            # Requests pipelined behind the ConnectRequest waited in the buffer (when
            # the grant came synchronously, the frame loop up the stack goes on).
            if not self._processing:
                self._process_buffer()
        finally:
            if opened:
                self._end_batch()

    def _session_failed(self, failure: Any, requested_session: int) -> None:
        self._log.failure(
            "session establishment failed for {peer}", failure=failure, peer=self.peer
        )
        if self._state != _CLOSING:
            self._state = _CLOSING
            self.transport.loseConnection()

    # -- requests ----------------------------------------------------------------------

    def _request_received(self, buf: bytes, start: int, end: int) -> None:
        if end - start < 8:
            raise DecodeError("request shorter than its header")
        xid, opcode = _REQUEST_HEADER.unpack_from(buf, start)
        if self._sasl_required and opcode not in _SASL_EXEMPT_OPS:
            self._refuse_unauthenticated(xid)
            return
        factory = self.factory
        factory.touch(self.session_id)
        if xid >= 0:
            self.last_cxid = xid
        self.last_op = _LAST_OP_NAMES.get(opcode, "NA")
        if opcode in _WRITE_OPS:
            if opcode == OpCode.deleteContainer:
                # ZooKeeper reads this internal request's body as the raw path bytes.
                record = bytes(buf[start + 8 : end]).decode("utf-8", "replace")
            else:
                record = self._decode_body(opcode, buf, start + 8, end)
            if record is _UNDECODABLE:
                self._enqueue_local(xid, opcode, _UNDECODABLE)
                return
            if opcode == OpCode.closeSession:
                entry = [_HELD, (xid, opcode, None), factory.clock.seconds()]
            else:
                request = Request(self.session_id, xid, opcode, record, self.auth)
                entry = [_HELD, (xid, opcode, request), factory.clock.seconds()]
            self._pending.append(entry)
            if not self._local_waiting:
                self._submit(entry)
            if len(self._pending) >= MAX_OUTSTANDING and not self._reading_paused:
                # Like ZooKeeper's throttling: stop reading from a client that has
                # too many requests in flight, until they are answered.
                self._reading_paused = True
                self._update_reading()
            return
        if opcode not in OPS:
            self._log.warn(
                "unknown opcode {opcode} from {peer}, session 0x{session_id:x}",
                opcode=opcode,
                peer=self.peer,
                session_id=self.session_id,
            )
            # ZooKeeper's UnimplementedRequestProcessor answers at once, then closes.
            self.send(encode_reply(xid, -1, Err.UNIMPLEMENTED))
            self.close()
            return
        record = self._decode_body(opcode, buf, start + 8, end)
        if self._pending:
            self._local_waiting += 1
            self._pending.append([_LOCAL, (xid, opcode, record), factory.clock.seconds()])
        else:
            self._answer_local(xid, opcode, record, self._received_at)

    def _decode_body(self, opcode: int, buf: bytes, start: int, end: int) -> Any:
        spec = OPS[opcode]
        request_class = spec.request
        try:
            if request_class is None:
                return None
            # Decoded in place: the frame's end is checked after, instead of slicing
            # a view of each frame (measured 700 -> 530 ns for a setData).  Request
            # records have no optional trailing field, so the buffer's end does not
            # change what they decode to; trailing bytes are ignored, as ZooKeeper does.
            record: Any
            if request_class is CreateRequest:
                open_create = _decode_open_create(buf, start, end)
                if open_create is not None:
                    return open_create
                record, offset = request_class.deserialize(buf, start)
            elif request_class is MULTI:
                record, offset = multi.decode_request(buf, start)
            else:
                record, offset = request_class.deserialize(buf, start)  # type: ignore[union-attr]
            if offset > end:
                raise DecodeError("request body runs past its frame")
            return record
        except DecodeError as error:
            if "utf-8" in str(error) and request_class is not MULTI and request_class:
                record = _decode_with_lenient_path(request_class, bytes(buf[start:end]))
                if record is not None:
                    return record
            self._log.warn(
                "undecodable body of opcode {opcode} from {peer}: {error}",
                opcode=opcode,
                peer=self.peer,
                error=error,
            )
            return _UNDECODABLE

    def _enqueue_local(self, xid: int, opcode: int, record: Any) -> None:
        if self._pending:
            self._local_waiting += 1
            self._pending.append([_LOCAL, (xid, opcode, record), self.factory.clock.seconds()])
        else:
            self._answer_local(xid, opcode, record, self._received_at)

    # -- writes ------------------------------------------------------------------------

    def _submit(self, entry: list) -> None:
        """Send a held write to the data link; its reply fills the entry."""
        entry[0] = _WAITING
        throttler = self.factory.throttler
        if throttler is not None:
            entry.append(_THROTTLED)
            if not throttler.admit(self, entry):
                return
        self.submit_admitted(entry)

    def submit_admitted(self, entry: list) -> None:
        """
        Submit a write the server-wide throttler admitted (at once, or when room
        freed up): see L{zkreg.session.limits.RequestThrottler}.
        """
        xid, opcode, request = entry[1]
        factory = self.factory
        if opcode == OpCode.closeSession:
            self._closing_session = True
            deferred = factory.link.close_session(self.session_id)
        else:
            submit_with_callback = factory.submit_with_callback
            if submit_with_callback is not None:
                # No Deferred per write: the callback may run before this returns,
                # exactly as a Deferred fired inside submit (see _drain).
                submit_with_callback(request, partial(self._write_done, entry))
                return
            deferred = factory.link.submit(request)
        deferred.addCallbacks(
            self._write_answered,
            self._write_failed,
            callbackArgs=(entry,),
            errbackArgs=(entry,),
        )

    def _write_done(self, entry: list, result: Any) -> None:
        """
        The callback of C{submit_with_callback}: an L{Outcome} or a L{Failure}.
        """
        if isinstance(result, Failure):
            self._write_failed(result, entry)
        else:
            self._write_answered(result, entry)

    def _write_answered(self, outcome: Any, entry: list) -> None:
        if entry[-1] is _THROTTLED:
            entry.pop()
            self.factory.throttler.done()  # type: ignore[union-attr]
        xid, opcode, _ = entry[1]
        if opcode == OpCode.check and outcome.err == 0:
            # ZooKeeper 3.8 orders and logs a standalone check (a 3.9 client's) but
            # answers it only when it fails; 3.8 clients send check inside a multi.
            entry[0] = _DONE
            entry[1] = b""
            self._drain_from_callback()
            return
        body = b""
        if outcome.err == 0 and outcome.response is not None:
            body = encode_body(opcode, outcome.response)
        entry[0] = _DONE
        entry[1] = encode_reply(xid, outcome.zxid, outcome.err, body)
        self._record_latency(entry[2], outcome.zxid, True)
        if opcode == OpCode.closeSession:
            entry.append(_CLOSE_AFTER)
        self._drain_from_callback()

    def _write_failed(self, failure: Any, entry: list) -> None:
        if entry[-1] is _THROTTLED:
            entry.pop()
            self.factory.throttler.done()  # type: ignore[union-attr]
        if failure.check(DataServerFailed):
            # The durable log failed: the write was not applied and none will be
            # until an operator restarts the server.  Answer it with an error and keep
            # the session, so that its reads (and its ephemerals) go on working.
            self._log.error(
                "write of session 0x{session_id:x} refused: {reason}",
                session_id=self.session_id,
                reason=failure.getErrorMessage(),
            )
            xid, _, _ = entry[1]
            entry[0] = _DONE
            entry[1] = encode_reply(xid, self.factory.last_zxid(), Err.SYSTEMERROR)
            self._drain_from_callback()
            return
        if failure.check(DataTierUnavailable):
            self._log.warn(
                "write of session 0x{session_id:x} failed: {reason}; closing",
                session_id=self.session_id,
                reason=failure.getErrorMessage(),
            )
        else:
            self._log.failure(
                "data tier could not take a write of session 0x{session_id:x}; closing",
                failure=failure,
                session_id=self.session_id,
            )
        self._pending.clear()
        self.close()

    def _drain_from_callback(self) -> None:
        if self._state == _CLOSING and not self._close_after_flush:
            return
        if self._draining:
            # The drain loop up the stack will find this entry answered.
            return
        self._flush_later()
        try:
            self._drain()
        except Exception:
            self._log.failure(
                "unexpected failure answering session 0x{session_id:x}; closing",
                session_id=self.session_id,
            )
            self.abort("internal error")

    def _drain(self) -> None:
        """
        Answer the head of the pending queue for as long as it can be answered.

        Not reentrant: a write whose Deferred fires synchronously while this loop
        submits it only marks its entry done, and the loop sends it.
        """
        self._draining = True
        try:
            self._drain_loop()
        finally:
            self._draining = False

    def _drain_loop(self) -> None:
        self._answer_ready()
        if self._reading_paused and len(self._pending) <= MAX_OUTSTANDING // 2:
            self._reading_paused = False
            self._update_reading()

    def _answer_ready(self) -> None:
        pending = self._pending
        while pending and self._state != _CLOSING:
            entry = pending[0]
            kind = entry[0]
            if kind == _DONE:
                pending.popleft()
                if entry[1]:
                    self.send(entry[1])
                if len(entry) > 3 and entry[3] is _CLOSE_AFTER:
                    self.close()
                    return
            elif kind == _LOCAL:
                pending.popleft()
                self._local_waiting -= 1
                xid, opcode, record = entry[1]
                self._answer_local(xid, opcode, record, entry[2])
            elif kind == _HELD:
                # Submit this write and every write behind it up to the next local op.
                to_submit = []
                for later in pending:
                    if later[0] == _LOCAL:
                        break
                    if later[0] == _HELD:
                        to_submit.append(later)
                for later in to_submit:
                    if self._state == _CLOSING:
                        return
                    self._submit(later)
            else:
                return

    # -- reads and local operations ---------------------------------------------------

    def _record_latency(self, received_at: float | None, zxid: int, write: bool = False) -> None:
        if received_at == self._received_at:
            # Answered within the dataReceived that brought it: well under the
            # millisecond ZooKeeper counts in, and no clock call per request.
            now = received_at
            latency = 0
        else:
            now = self.factory.clock.seconds()
            latency = 0 if received_at is None else int((now - received_at) * 1000)
        self.last_latency_ms = latency
        self.last_response_ms = int(now * 1000)
        self.last_zxid = zxid
        if self.latency_count == 0 or latency < self.min_latency_ms:
            self.min_latency_ms = latency
        if latency > self.max_latency_ms:
            self.max_latency_ms = latency
        self.total_latency_ms += latency
        self.latency_count += 1
        self.factory.stats.record_latency(latency, write)

    def _answer_local(self, xid: int, opcode: int, record: Any, received_at: float | None) -> None:
        factory = self.factory
        zxid = factory.last_zxid()
        if record is _UNDECODABLE:
            self.send(encode_reply(xid, zxid, Err.MARSHALLINGERROR))
            return
        try:
            self._answer_local_op(xid, opcode, record, zxid)
        except _MarshallingError:
            self.send(encode_reply(xid, zxid, Err.MARSHALLINGERROR))
        except Exception:
            # ZooKeeper's FinalRequestProcessor answers any unexpected failure with
            # MarshallingError and keeps the connection.
            self._log.failure(
                "failed to process opcode {opcode} of session 0x{session_id:x}",
                opcode=opcode,
                session_id=self.session_id,
            )
            self.send(encode_reply(xid, zxid, Err.MARSHALLINGERROR))
        self._record_latency(received_at, zxid)

    def _answer_local_op(self, xid: int, opcode: int, record: Any, zxid: int) -> None:
        factory = self.factory
        if opcode in _DATA_READ_OPS:
            if opcode == OpCode.multiRead:
                if any(getattr(op, "path", "") is None for _, op in record):
                    raise _MarshallingError()
            elif opcode != OpCode.getEphemerals and record.path is None:
                # ZooKeeper looks the null path up in a ConcurrentHashMap: NPE.
                raise _MarshallingError()
            err, response = factory.perform_read(self, opcode, record)
            if response.__class__ is tuple:
                # A large node's data, in pieces around the tree's own bytes.
                size = _REPLY_HEADER_SIZE + sum(map(len, response))
                self.send_pieces((_REPLY_PREFIX.pack(size, xid, zxid, err), *response))
                return
            body = encode_body(opcode, response) if err == 0 and response is not None else b""
            self.send(encode_reply(xid, zxid, err, body))
        elif opcode == OpCode.ping:
            self.send(encode_reply(_PING_XID, zxid, 0))
        elif opcode == OpCode.auth:
            self._authenticate(xid, record)
            return
        elif opcode == OpCode.setWatches or opcode == OpCode.setWatches2:
            self._set_watches(record, opcode == OpCode.setWatches2)
            self.send(encode_reply(xid, zxid, 0))
        elif opcode == OpCode.addWatch:
            if record.mode not in (0, 1):
                raise _MarshallingError()  # WatcherMode.fromZooDef throws
            factory.watches.add_persistent_watch(record.path, self, record.mode == 1)
            self.send(encode_reply(xid, zxid, 0, ErrorResponse(0).serialize()))
        elif opcode == OpCode.checkWatches:
            if record.type not in (1, 2, 3) or record.path is None:
                raise _MarshallingError()  # WatcherType.fromInt throws; null path NPE
            try:
                found = factory.watches.contains(record.path, record.type, self)
            except ValueError as error:
                raise _MarshallingError() from error
            self.send(encode_reply(xid, zxid, 0 if found else Err.NOWATCHER))
        elif opcode == OpCode.removeWatches:
            if record.type not in (1, 2, 3) or record.path is None:
                raise _MarshallingError()
            removed = factory.watches.remove(record.path, record.type, self)
            self.send(encode_reply(xid, zxid, 0 if removed else Err.NOWATCHER))
        elif opcode == OpCode.whoAmI:
            infos = [ClientInfo(auth_id.scheme, _user_of(auth_id)) for auth_id in self.auth]
            self.send(encode_reply(xid, zxid, 0, WhoAmIResponse(infos).serialize()))
        elif opcode == OpCode.sasl:
            self._sasl_step(xid, record)
        else:
            self.send(encode_reply(xid, zxid, Err.UNIMPLEMENTED))

    def _authenticate(self, xid: int, packet: Any) -> None:
        scheme = packet.scheme
        added = self.factory.acl_checker.authenticate(
            scheme, bytes(packet.auth or b""), self.peer_host
        )
        if added is None:
            self.factory.stats.auth_failed += 1
            self._log.warn(
                "no authentication provider for scheme {scheme} from {peer}; closing",
                scheme=scheme,
                peer=self.peer,
            )
            self.send(encode_reply(xid, 0, Err.AUTHFAILED))
            self.close()
            return
        auth = list(self.auth)
        for auth_id in added:
            if auth_id not in auth:
                auth.append(auth_id)
        self.auth = java_auth_order(auth)
        self._log.info(
            "session 0x{session_id:x}: auth success for scheme {scheme} and address {peer}",
            session_id=self.session_id,
            scheme=scheme,
            peer=self.peer,
        )
        self.send(encode_reply(xid, 0, 0))

    def _refuse_unauthenticated(self, xid: int) -> None:
        """
        A request before SASL succeeded while SASL is required: answered
        SessionClosedRequireSaslAuth and the connection closed, as ZooKeeper does.
        """
        self._log.warn(
            "client {peer} (session 0x{session_id:x}) sent a request without SASL "
            "authentication, which this server requires (--sasl-required); closing",
            peer=self.peer,
            session_id=self.session_id,
        )
        self.send(encode_reply(xid, 0, Err.SESSIONCLOSEDREQUIRESASLAUTH))
        self.close()

    def _sasl_step(self, xid: int, record: Any) -> None:
        """
        One token of a SASL exchange (ZooKeeperServer.processSasl): answered with the
        server's token; a failed exchange is answered AuthFailed and the connection
        closed, as ZooKeeper does when zookeeper.allowSaslFailedClients is off.  With
        --sasl-allow-failed-clients (and SASL not required) it is answered OK with no
        token, as ZooKeeper does, and the client goes on unauthenticated.
        """
        users = self.factory.sasl_users
        if users is None:
            # A ZooKeeper without SASL configured answers OK with no token.
            self.send(encode_reply(xid, 0, 0, SetSASLResponse(None).serialize()))
            return
        if self._sasl_aborted:
            # As ZooKeeper's aborted SaslServer: every further token fails, and the
            # kept client is answered OK without a token again.
            self.factory.stats.auth_failed += 1
            self.send(encode_reply(xid, 0, 0, SetSASLResponse(None).serialize()))
            return
        if self._sasl is None:
            self._sasl = DigestMD5Server(users)
        try:
            token = self._sasl.step(bytes(record.token or b""))
        except (SaslFailed, UnicodeDecodeError) as error:
            self.factory.stats.auth_failed += 1
            if self.factory.sasl_allow_failed_clients and not self._sasl_required:
                self._log.warn(
                    "client {peer} (session 0x{session_id:x}) failed to SASL "
                    "authenticate: {error}; kept unauthenticated "
                    "(--sasl-allow-failed-clients)",
                    peer=self.peer,
                    session_id=self.session_id,
                    error=error,
                )
                # As ZooKeeper's SaslServer, an aborted exchange cannot be retried
                # on this connection.
                self._sasl_aborted = True
                self.send(encode_reply(xid, 0, 0, SetSASLResponse(None).serialize()))
                return
            self._log.warn(
                "client {peer} (session 0x{session_id:x}) failed to SASL authenticate: "
                "{error}; closing",
                peer=self.peer,
                session_id=self.session_id,
                error=error,
            )
            err = Err.SESSIONCLOSEDREQUIRESASLAUTH if self._sasl_required else Err.AUTHFAILED
            self.send(encode_reply(xid, 0, err, SetSASLResponse(None).serialize()))
            self.close()
            return
        user = self._sasl.authorized_id
        if user is not None:
            self._sasl_required = False
            auth = list(self.auth)
            if Id("sasl", user) not in auth:
                auth.append(Id("sasl", user))
            self.auth = java_auth_order(auth)
            self._log.info(
                "session 0x{session_id:x}: SASL (DIGEST-MD5) authenticated {user} from {peer}",
                session_id=self.session_id,
                user=user,
                peer=self.peer,
            )
        self.send(encode_reply(xid, 0, 0, SetSASLResponse(token).serialize()))

    def _set_watches(self, record: Any, with_persistent: bool) -> None:
        """
        Re-register a reconnecting client's watches, firing what it missed
        (ZooKeeper's DataTree.setWatches).
        """
        view = self.factory.read_view
        watches = self.factory.watches
        relative_zxid = record.relativeZxid
        for path in record.dataWatches or ():
            node = view.get(path)
            if node is None:
                self.send_event(encode_event(NODE_DELETED, path))
            elif node.mzxid > relative_zxid:
                self.send_event(encode_event(NODE_DATA_CHANGED, path))
            else:
                watches.add_data_watch(path, self)
        for path in record.existWatches or ():
            if view.get(path) is not None:
                self.send_event(encode_event(NODE_CREATED, path))
            else:
                watches.add_data_watch(path, self)
        for path in record.childWatches or ():
            node = view.get(path)
            if node is None:
                self.send_event(encode_event(NODE_DELETED, path))
            elif node.pzxid > relative_zxid:
                self.send_event(encode_event(NODE_CHILDREN_CHANGED, path))
            else:
                watches.add_child_watch(path, self)
        if with_persistent:
            for path in record.persistentWatches or ():
                watches.add_persistent_watch(path, self, False)
            for path in record.persistentRecursiveWatches or ():
                watches.add_persistent_watch(path, self, True)

    # -- reporting ---------------------------------------------------------------------

    @property
    def is_closing(self) -> bool:
        """Whether this connection is closing (its waiting writes are stale)."""
        return self._state == _CLOSING

    def stall_reading(self, seconds: float) -> None:
        """
        Stop reading from this client for C{seconds}: the server-wide throttler's
        queue is full (ZooKeeper's throttler stalls the same way).
        """
        if self._stall_call is not None or self._state == _CLOSING:
            return
        self._stall_call = self.factory.clock.callLater(seconds, self._stall_over)
        self._update_reading()

    def _stall_over(self) -> None:
        self._stall_call = None
        self._update_reading()

    @property
    def output_paused(self) -> bool:
        """Whether this connection is not read because its unsent output is over the bound."""
        return self._output_full

    @property
    def outstanding(self) -> int:
        """Requests received and not yet answered (cons' queued=)."""
        return len(self._pending)

    def reset_stats(self) -> None:
        """crst: forget this connection's counters."""
        self.packets_received = 0
        self.packets_sent = 0
        self.last_cxid = -1
        self.last_zxid = 0
        self.last_op = "NA"
        self.last_response_ms = 0
        self.last_latency_ms = 0
        self.min_latency_ms = 0
        self.max_latency_ms = 0
        self.total_latency_ms = 0
        self.latency_count = 0

    def session_closed(self) -> None:
        """
        The data tier closed this connection's session (expiry, or closeSession from
        this connection, whose reply closes the connection itself).
        """
        if self._closing_session:
            return
        self.close("session closed by the server")

    @property
    def closing_session(self) -> bool:
        """Whether this connection asked to close its session."""
        return self._closing_session


def _decode_with_lenient_path(request_class: Any, body: bytes) -> Any:
    """
    Decode a request whose leading path is not valid UTF-8 the way Java does: with
    U+FFFD for each bad sequence.  ZooKeeper then rejects the path (BadArguments for
    writes, NoNode for reads) rather than the request as undecodable.

    @return: the record, or L{None} when the rest does not decode either.
    """
    if len(body) < 4:
        return None
    (length,) = _LENGTH.unpack_from(body, 0)
    if length < 0 or 4 + length > len(body):
        return None
    path = body[4 : 4 + length].decode("utf-8", "replace").encode("utf-8")
    try:
        record, _ = request_class.deserialize(
            _LENGTH.pack(len(path)) + path + body[4 + length :], 0
        )
    except DecodeError:
        return None
    return record


class _MarshallingError(Exception):
    """A request ZooKeeper fails with MarshallingError (a Java runtime exception)."""


#: Marker for a request body that did not decode (answered MARSHALLINGERROR).
_UNDECODABLE = object()


def _decode_open_create(buf: Any, start: int, end: int) -> CreateRequest | None:
    """
    Decode a create body whose ACL is the open ACL without decoding the ACL vector.

    @return: the record, with the shared L{OPEN_ACL} tuple as its ACL (a tuple
        compares equal to the decoded list, and the data tier treats both alike), or
        L{None} for anything else (another ACL, a null path or data, a short or odd
        body): the general decoder then decodes it, errors included.
    """
    try:
        (path_length,) = _INT.unpack_from(buf, start)
        path_start = start + 4
        path_end = path_start + path_length
        if path_length < 0 or path_end + 4 > end:
            return None
        (data_length,) = _INT.unpack_from(buf, path_end)
        data_start = path_end + 4
        acl_start = data_start + data_length
        flags_start = acl_start + len(_OPEN_ACL_BYTES)
        if data_length < 0 or flags_start + 4 > end:
            return None
        if not buf.startswith(_OPEN_ACL_BYTES, acl_start):
            return None
        record = CreateRequest(
            str(buf[path_start:path_end], "utf-8"),
            bytes(buf[data_start:acl_start]),
            OPEN_ACL,
            _INT.unpack_from(buf, flags_start)[0],
        )
    except (struct.error, UnicodeDecodeError, AttributeError):
        return None
    return record


#: Marker on a pending entry: close the connection once this reply is sent.
_CLOSE_AFTER = object()
#: Marks a pending write counted in flight by the server-wide throttler.
_THROTTLED = object()
