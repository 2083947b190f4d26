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
evaluated only when everything before it has been answered, so it sees that write.
With nothing outstanding, reads are answered synchronously, without a Deferred.

A write that arrives behind such a waiting read must not be visible to it.  When the
link applies writes only after C{submit} returned, one at a time, each answered before
the next is applied (C{writes_pass_reads} of the factory: the data link over TCP, and a
data server on a file or etcd log), the write is submitted at once, as ZooKeeper's
leader logs it at once: the read is evaluated in the answer of the write before it,
before the next write is applied, so it sees exactly the writes before it.  A session
mixing reads and writes then gets several writes into each group commit instead of one
per sync.  Local requests other than reads (auth, SASL, watch registrations) still hold
the writes behind them, and with a log that applies during C{submit} (the memory log)
every local request does.
"""

from __future__ import annotations

import struct
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet import protocol, tcp
from twisted.internet.interfaces import IHandshakeListener
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.data.messages import Request
from zkreg.data.server import DataServerFailed
from zkreg.link.errors import DataTierUnavailable
from zkreg.proto.consts import Err, OpCode
from zkreg.proto.jute import DecodeError
from zkreg.proto.ops import OPS
from zkreg.proto.records import Id
from zkreg.session import handshake
from zkreg.session.fourletter import four_letter_word_of
from zkreg.session.local import LocalOperations
from zkreg.session.output import ConnectionOutput
from zkreg.session.replies import encode_reply, encode_write_reply
from zkreg.session.requests import (
    DATA_READ_OPS,
    LAST_OP_NAMES,
    SASL_EXEMPT_OPS,
    UNDECODABLE,
    WRITE_OPS,
    decode_body,
)
from zkreg.session.sasl import DigestMD5Server
from zkreg.session.states import AWAIT_CONNECT, CLOSING, ESTABLISHED, HANDSHAKING
from zkreg.session.stats import java_auth_order
from zkreg.tls import handshake_refusal, peer_dn
from zkreg.transports import sends_directly

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory

_LENGTH = struct.Struct(">i")
_REQUEST_HEADER = struct.Struct(">ii")

#: Requests in flight on one connection above which it is not read from.
MAX_OUTSTANDING = 1000
#: Seconds a connection may stay without a session (ZooKeeper's sessionlessCnxnTimeout).
SESSIONLESS_TIMEOUT_S = 10.0
#: Missing bytes of a partial frame above which its pieces are gathered, not appended.
_GATHER_THRESHOLD = 65536
#: Seconds of request processing one connection gets before the others get a turn:
#: a burst of heavy requests is worked through in slices, each a reactor turn apart,
#: so the pings of other connections (and the expiry of sessions) are not starved.
SLICE_S = 0.02
#: Frames processed between two looks at the clock for L{SLICE_S}.
_FRAMES_PER_CLOCK_CHECK = 32

# Kinds of entries in the pending queue.
_DONE = 0  # reply bytes ready
_WAITING = 1  # a submitted write, reply not yet known
_LOCAL = 2  # a local op that holds the writes behind it, to evaluate at the head
_HELD = 3  # a write not yet submitted because a local op precedes it
_READ = 4  # a read the writes behind it were submitted past, to evaluate at the head

# Opcodes compared on every request, as plain ints (an enum member costs a lookup).
_CHECK = int(OpCode.check)
_CLOSE_SESSION = int(OpCode.closeSession)
_DELETE_CONTAINER = int(OpCode.deleteContainer)

#: Local requests later writes may be submitted past (see the module docstring).
_PASSABLE_OPS = DATA_READ_OPS | {int(OpCode.ping)}


@implementer(IHandshakeListener)
class ClientConnection(ConnectionOutput, LocalOperations, protocol.Protocol):
    """
    One client connection: this module has its input (framing, handshake, the
    request pipeline); L{ConnectionOutput} its output, L{LocalOperations} the
    requests the session server answers itself.

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
    #: the opcode of the last request (its name is L{last_op})
    last_opcode: int
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
        self._state = AWAIT_CONNECT
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
        #: registered as the transport's producer: its output is bounded (TCP, TLS)
        self._bounded = False
        #: reading stopped by the server-wide throttler (see L{stall_reading})
        self._stall_call: Any = None
        self._closing_session = False
        self._write_received = []
        self._write_zxid = 0
        #: the factory's touch_generation when this connection last touched its session
        self._touched_in = -1
        #: the wall-clock ms of the last touch this connection asked for
        self._touched_ms = -1
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
        transport = self.transport
        if isinstance(transport, tcp.Connection) or (
            isinstance(transport, TLSMemoryBIOProtocol)
            and isinstance(transport.transport, tcp.Connection)
        ):
            # As ZooKeeper (tcpNoDelay): small replies must not wait for Nagle.
            transport.setTcpNoDelay(True)
            self._direct_write = sends_directly(transport)
            # Bounded output: the TCP transport tells this producer when its unsent
            # bytes pass its bufferSize (pauseProducing) and when they are all sent
            # (resumeProducing); past max_output_buffer the connection is not read.
            # The transport's bufferSize is left alone: it is also its read size, and
            # a recv of several MiB per read doubled the latency of small requests.
            # Over TLS the replies are encrypted at once into the TCP transport
            # under it, which drives this producer through TLS's producer membrane.
            self._bounded = True
            transport.registerProducer(self, True)
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
        if self._state in (AWAIT_CONNECT, HANDSHAKING):
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
        self._state = CLOSING
        if self._write_received:
            self._settle_write_latencies()
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
        if self._bounded and transport.producer is not None:
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
        self._state = CLOSING
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
        self._state = CLOSING
        self._out = None
        self._out_size = 0
        self._buffer = b""
        self.transport.abortConnection()

    def _continue_input(self) -> None:
        self._continue_call = None
        if self._state == CLOSING or self._output_full:
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
        if self._state == CLOSING:
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
        received = 0
        try:
            while end - offset >= 4:
                state = self._state
                if state == CLOSING or state == HANDSHAKING:
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
                if state == AWAIT_CONNECT and offset == 0:
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
                received += 1
                if state == ESTABLISHED:
                    self._request_received(buf, start, frame_end)
                else:
                    self._connect_received(memoryview(buf)[start:frame_end])
        except DecodeError as error:
            self.abort(f"undecodable frame: {error}")
            return
        finally:
            # Counted once per burst (nothing reads them during it).
            self.packets_received += received
            factory_stats.packets_received += received
        if self._state == CLOSING:
            self._buffer = b""
            return
        if offset:
            buf = self._buffer = buf[offset:]
        if len(buf) >= 4 and self._state == ESTABLISHED and not self._input_held:
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
        self._state = HANDSHAKING
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
        if self._state == CLOSING:
            return
        opened = self._begin_batch()
        try:
            if grant is None:
                self.send(handshake.encode_refusal(self._connect_had_read_only))
                self.close(f"session 0x{requested_session:x} expired or wrong password")
                return
            self.session_id = grant.session_id
            self.timeout_ms = grant.timeout_ms
            self._state = ESTABLISHED
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
        if self._state != CLOSING:
            self._state = CLOSING
            self.transport.loseConnection()

    # -- requests ----------------------------------------------------------------------

    def _request_received(self, buf: bytes, start: int, end: int) -> None:
        if end - start < 8:
            raise DecodeError("request shorter than its header")
        xid, opcode = _REQUEST_HEADER.unpack_from(buf, start)
        if self._sasl_required and opcode not in SASL_EXEMPT_OPS:
            self._refuse_unauthenticated(xid)
            return
        factory = self.factory
        if self._touched_in != factory.touch_generation:
            # Once per connection and flush of touches, not once per request; and not
            # again within the millisecond of the last touch (the data tier keeps a
            # session's last contact in ms: a second touch in that ms changes nothing
            # and costs a reactor turn's flush for each request of a sequential client).
            # The ms is that of the data's arrival, read once per read already.
            now_ms = round(self._received_at * 1000)
            if now_ms != self._touched_ms:
                self._touched_in = factory.touch_generation
                self._touched_ms = now_ms
                factory.touch(self.session_id)
        if xid >= 0:
            self.last_cxid = xid
        self.last_opcode = opcode
        if opcode in WRITE_OPS:
            if opcode == _DELETE_CONTAINER:
                # ZooKeeper reads this internal request's body as the raw path bytes.
                record = bytes(buf[start + 8 : end]).decode("utf-8", "replace")
            else:
                try:
                    record = decode_body(opcode, buf, start + 8, end)
                except DecodeError as error:
                    record = self._undecodable(opcode, error)
            if record is UNDECODABLE:
                self._enqueue_local(xid, opcode, UNDECODABLE)
                return
            request = (
                None
                if opcode == _CLOSE_SESSION
                else Request(self.session_id, xid, opcode, record, self.auth)
            )
            # Received when the data that brought it was (see _record_write_latency).
            entry = [_HELD, (xid, opcode, request), self._received_at]
            self._pending.append(entry)
            if not self._local_waiting:
                submit_with_callback = factory.submit_with_callback
                if (
                    request is not None
                    and submit_with_callback is not None
                    and factory.throttler is None
                ):
                    # _submit and submit_admitted for the common case, inlined.
                    entry[0] = _WAITING
                    submit_with_callback(request, partial(self._write_done, entry))
                else:
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
        self._enqueue_local(xid, opcode, record)

    def _decode_body(self, opcode: int, buf: bytes, start: int, end: int) -> Any:
        try:
            return decode_body(opcode, buf, start, end)
        except DecodeError as error:
            return self._undecodable(opcode, error)

    def _undecodable(self, opcode: int, error: DecodeError) -> Any:
        """Log a request body that did not decode; @return: L{UNDECODABLE}."""
        self._log.warn(
            "undecodable body of opcode {opcode} from {peer}: {error}",
            opcode=opcode,
            peer=self.peer,
            error=error,
        )
        return UNDECODABLE

    def _enqueue_local(self, xid: int, opcode: int, record: Any) -> None:
        if not self._pending:
            self._answer_local(xid, opcode, record, self._received_at)
            return
        factory = self.factory
        if factory.writes_pass_reads and opcode in _PASSABLE_OPS and record is not UNDECODABLE:
            kind = _READ
        else:
            kind = _LOCAL
            self._local_waiting += 1
        self._pending.append([kind, (xid, opcode, record), self._received_at])

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

        The common case, an answered write at the head of the pending queue while
        nothing is being drained, goes straight to the output: this is the answer
        path of every write (the general one is L{_write_answered}).
        """
        if isinstance(result, Failure):
            self._write_failed(result, entry)
            return
        pending = self._pending
        xid, opcode, _ = entry[1]
        if (
            pending
            and pending[0] is entry
            and entry[-1] is not _THROTTLED
            and self._state == ESTABLISHED
            and not self._draining
            and opcode != _CHECK
            and opcode != _CLOSE_SESSION
        ):
            zxid = result.zxid
            reply = encode_write_reply(xid, zxid, result.err, opcode, result.response)
            self._write_received.append(entry[2])  # _record_write_latency, inlined
            self._write_zxid = zxid
            pending.popleft()
            if self._out is None:
                self._flush_later()
            self.send(reply)
            if pending and pending[0][0] != _WAITING:
                # Reads that waited for this write, or writes held behind them.
                self._drain_from_callback()
            else:
                self._resume_reading_if_drained()
            return
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
        zxid = outcome.zxid
        entry[0] = _DONE
        entry[1] = encode_write_reply(xid, zxid, outcome.err, opcode, outcome.response)
        self._record_write_latency(entry[2], zxid)
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
        if self._state == CLOSING and not self._close_after_flush:
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
        self._resume_reading_if_drained()

    def _resume_reading_if_drained(self) -> None:
        """Read again from a client paused for too many requests in flight, once half are answered."""
        if self._reading_paused and len(self._pending) <= MAX_OUTSTANDING // 2:
            self._reading_paused = False
            self._update_reading()

    def _answer_ready(self) -> None:
        pending = self._pending
        while pending and self._state != CLOSING:
            entry = pending[0]
            kind = entry[0]
            if kind == _DONE:
                pending.popleft()
                if entry[1]:
                    self.send(entry[1])
                if len(entry) > 3 and entry[3] is _CLOSE_AFTER:
                    self.close()
                    return
            elif kind == _LOCAL or kind == _READ:
                pending.popleft()
                if kind == _LOCAL:
                    self._local_waiting -= 1
                xid, opcode, record = entry[1]
                self._answer_local(xid, opcode, record, entry[2])
            elif kind == _HELD:
                # Submit this write and every write behind it up to the next local op
                # that holds them (reads they may pass do not).
                to_submit = []
                for later in pending:
                    if later[0] == _LOCAL:
                        break
                    if later[0] == _HELD:
                        to_submit.append(later)
                for later in to_submit:
                    if self._state == CLOSING:
                        return
                    self._submit(later)
            else:
                return

    # -- reporting ---------------------------------------------------------------------

    def writes_passed_reads(self) -> bool:
        """Whether a write was submitted past a read still waiting for its turn."""
        read_waiting = False
        for entry in self._pending:
            kind = entry[0]
            if kind == _READ:
                read_waiting = True
            elif read_waiting and kind == _WAITING:
                return True
        return False

    def settle_latencies(self) -> None:
        """Count the latencies of the writes answered and not yet counted."""
        if self._write_received:
            self._settle_write_latencies()

    @property
    def is_closing(self) -> bool:
        """Whether this connection is closing (its waiting writes are stale)."""
        return self._state == CLOSING

    @property
    def last_op(self) -> str:
        """The name of the last request's opcode, as cons lists it (lop)."""
        return LAST_OP_NAMES.get(self.last_opcode, "NA")

    @property
    def outstanding(self) -> int:
        """Requests received and not yet answered (cons' queued=)."""
        return len(self._pending)

    def reset_stats(self) -> None:
        """crst: forget this connection's counters."""
        self._write_received = []
        self.packets_received = 0
        self.packets_sent = 0
        self.last_cxid = -1
        self.last_zxid = 0
        self.last_opcode = -1  # no name: NA
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


#: Marker on a pending entry: close the connection once this reply is sent.
_CLOSE_AFTER = object()
#: Marks a pending write counted in flight by the server-wide throttler.
_THROTTLED = object()
