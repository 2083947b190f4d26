"""
One client connection of the session server: its lifetime (open, close, abort, the
sessionless timeout), the handshake that establishes its session, and four-letter
words; and L{ClientConnection}, which puts it together with its halves in other
modules: L{zkreg.session.framing} (input framing), L{zkreg.session.pipeline} (the
per-session request pipeline, and how it keeps replies in request order),
L{zkreg.session.output} (output) and L{zkreg.session.local} (requests the session
server answers itself).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from twisted.internet import protocol, tcp
from twisted.internet.interfaces import IHandshakeListener
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from zkreg.proto.records import Id
from zkreg.session import handshake
from zkreg.session.framing import InputFraming
from zkreg.session.local import LocalOperations
from zkreg.session.output import ConnectionOutput
from zkreg.session.pipeline import RequestPipeline
from zkreg.session.requests import LAST_OP_NAMES
from zkreg.session.sasl import DigestMD5Server
from zkreg.session.states import AWAIT_CONNECT, CLOSING, ESTABLISHED, HANDSHAKING
from zkreg.session.stats import java_auth_order
from zkreg.tls import handshake_refusal, peer_dn
from zkreg.transports import sends_directly

if TYPE_CHECKING:
    from zkreg.session.factory import SessionServerFactory

#: Seconds a connection may stay without a session (ZooKeeper's sessionlessCnxnTimeout).
SESSIONLESS_TIMEOUT_S = 10.0


@implementer(IHandshakeListener)
class ClientConnection(
    InputFraming, RequestPipeline, ConnectionOutput, LocalOperations, protocol.Protocol
):
    """
    One client connection: this module has its lifetime, handshake and four-letter
    words; L{InputFraming} its input framing, L{RequestPipeline} its request
    pipeline, L{ConnectionOutput} its output, L{LocalOperations} the requests the
    session server answers itself.

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

    # -- reporting ---------------------------------------------------------------------

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
