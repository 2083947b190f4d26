"""
A ZooKeeper client session over Twisted: Java's C{ClientCnxn}, on L{zkreg.proto}.
The operations themselves (Java's C{ZooKeeper} methods) are the other half of the
class, in L{curatorish.connection.operations}.

One L{ZooKeeperConnection} holds one session at a time on one of the servers of its
connect string.  It:

  - connects to the servers in shuffled order, performs the handshake (asking for
    read-only mode when allowed) and keeps the negotiated session timeout;
  - pings when a third of that timeout passes without sending, and gives up on a
    server that says nothing for two thirds of it (then tries the next one with the
    same session id and password, so the session, its ephemerals and watches survive);
  - with SASL credentials, authenticates every new connection before anything else
    (L{curatorish.connection.sasl}); a refused exchange ends the client
    (C{AUTH_FAILED});
  - replays its auth infos and re-registers its watches (C{setWatches}, or
    C{setWatches2} when there are persistent ones) on every new connection;
  - when the server says the session expired, reports C{EXPIRED}, drops every watch
    and, like Curator (which makes a new C{ZooKeeper} handle), starts a new session;
  - answers every operation of the protocol with a Deferred, failing with the
    L{curatorish.errors} class of the reply's error code; a request not answered
    within the request timeout fails with L{errors.RequestTimeoutError} and, because
    replies come in order, costs the connection, as in Java.

Paths given and returned are the application's: the chroot is added on the way out
and removed on the way in.
"""

from __future__ import annotations

import enum
import random
import struct
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.connection.hosts import HostRotation, parse_connect_string
from curatorish.connection.operations import ZooKeeperOperations
from curatorish.connection.paths import Chroot
from curatorish.connection.protocol import ClientProtocol
from curatorish.connection.sasl import SASLConfig, SaslExchange, SaslRefused, sasl_config
from curatorish.connection.watches import (
    CHILD,
    DATA,
    EXIST,
    PERSISTENT,
    PERSISTENT_RECURSIVE,
    WatchedEvent,
    Watcher,
    WatchManager,
)
from zkreg.proto.consts import (
    PROTOCOL_VERSION,
    Err,
    EventType,
    KeeperState,
    OpCode,
    Xid,
)
from zkreg.proto.jute import DecodeError, Record
from zkreg.proto.records import (
    AuthPacket,
    ConnectRequest,
    ConnectResponse,
    GetSASLRequest,
    RequestHeader,
    SetSASLResponse,
    SetWatches,
    SetWatches2,
    WatcherEvent,
)

_log = Logger()

#: Java splits setWatches into batches of about this many path characters.
SET_WATCHES_MAX_LENGTH = 128 * 1024

_MAX_XID = 2**31 - 1

#: The reply header (C{ReplyHeader}: xid, zxid, err), read in one call per reply.
_REPLY_HEADER = struct.Struct(">iqi")
_REPLY_HEADER_SIZE = _REPLY_HEADER.size

#: The reserved xids as plain ints: compared on every reply.
_PING_XID = int(Xid.PING)
_NOTIFICATION_XID = int(Xid.NOTIFICATION)
_AUTH_XID = int(Xid.AUTH)
_SET_WATCHES_XID = int(Xid.SET_WATCHES)

#: Java's C{minPingRwTimeout} and C{maxPingRwTimeout}: the backoff of the search for a
#: read-write server while connected read-only.
MIN_RW_PROBE_INTERVAL_S = 0.1
MAX_RW_PROBE_INTERVAL_S = 60.0


class _ReadOnlyProbe(Protocol):
    """
    Sends C{isro} and collects the answer (C{rw} or C{ro}) until the server closes.

    @ivar answer: a Deferred firing with the answer's bytes.
    """

    def __init__(self) -> None:
        self.answer: defer.Deferred[bytes] = defer.Deferred()
        self._received = b""

    def connectionMade(self) -> None:
        self.transport.write(b"isro")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self._received += data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.answer.called:
            self.answer.callback(self._received.strip())


class ClientState(enum.Enum):
    """
    The wire-level state of the client (Java's C{ZooKeeper.States} with the events
    that move between them).

      - C{CONNECTING}: looking for a server (no session yet, or a new one after expiry).
      - C{CONNECTED} / C{CONNECTED_READ_ONLY}: a session is established on a server.
      - C{DISCONNECTED}: the connection to the server was lost; trying the others
        with the same session (Curator calls this SUSPENDED).
      - C{EXPIRED}: the server said the session is gone (a new one follows when
        C{renew_expired_session}).
      - C{AUTH_FAILED}: the server refused our credentials; nothing more is sent.
      - C{CLOSED}: closed by the application.
    """

    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    CONNECTED_READ_ONLY = "CONNECTED_READ_ONLY"
    DISCONNECTED = "DISCONNECTED"
    EXPIRED = "EXPIRED"
    AUTH_FAILED = "AUTH_FAILED"
    CLOSED = "CLOSED"

    @property
    def is_connected(self) -> bool:
        return self in (ClientState.CONNECTED, ClientState.CONNECTED_READ_ONLY)

    @property
    def is_terminal(self) -> bool:
        return self in (ClientState.AUTH_FAILED, ClientState.CLOSED)

    @property
    def keeper_state(self) -> KeeperState:
        """
        The C{Watcher.Event.KeeperState} Java reports for this state.
        """
        return {
            ClientState.CONNECTED: KeeperState.SyncConnected,
            ClientState.CONNECTED_READ_ONLY: KeeperState.ConnectedReadOnly,
            ClientState.EXPIRED: KeeperState.Expired,
            ClientState.AUTH_FAILED: KeeperState.AuthFailed,
            ClientState.CLOSED: KeeperState.Closed,
        }.get(self, KeeperState.Disconnected)


class _Packet:
    """
    One request on its way: encoded body, how to read its reply, and its Deferred.
    """

    __slots__ = ("opcode", "body", "complete", "deferred", "path", "xid", "timer")

    def __init__(
        self,
        opcode: int,
        body: bytes,
        complete: Callable[[int, bytes, int], Any],
        path: str | None,
    ) -> None:
        self.opcode = opcode
        self.body = body
        self.complete = complete
        self.deferred: defer.Deferred[Any] = defer.Deferred()
        self.path = path
        self.xid = 0
        self.timer: IDelayedCall | None = None

    def fail(self, error: BaseException) -> None:
        self._stop_timer()
        if not self.deferred.called:
            self.deferred.errback(Failure(error))

    def succeed(self, result: Any) -> None:
        self._stop_timer()
        if not self.deferred.called:
            self.deferred.callback(result)

    def _stop_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


def _describe_connection_failure(reason: Failure | None) -> str:
    """
    @return: why a connection (attempt) ended, in a few words for a log line.
    """
    if reason is None:
        return "connection closed"
    if reason.check(ConnectionRefusedError, net_error.ConnectionRefusedError):
        return "connection refused"
    if reason.check(defer.CancelledError, net_error.TimeoutError, TimeoutError):
        return "timed out"
    if reason.check(net_error.ConnectionDone):
        return "closed by the server"
    if reason.check(net_error.ConnectionAborted):
        return "dropped by the client"
    return reason.getErrorMessage()


def credential_bytes(credential: str | bytes) -> bytes:
    """
    @return: an auth credential as the bytes sent: a C{str} as UTF-8, as kazoo sends
        C{add_auth("digest", "user:pw")}.
    @raise TypeError: for anything else.
    """
    if isinstance(credential, str):
        return credential.encode("utf-8")
    if isinstance(credential, bytes):
        return credential
    raise TypeError(f"an auth credential is str or bytes, not {type(credential).__name__}")


def _record_encoder(record: Record) -> bytes:
    return record.serialize()


class ZooKeeperConnection(ZooKeeperOperations):
    """
    One ZooKeeper session, kept alive across connections and servers.

    @ivar state: the current L{ClientState}.
    @ivar session_id: the session id (0 before the first handshake).
    @ivar session_password: the session password (16 zero bytes before).
    @ivar negotiated_timeout_ms: the session timeout the server granted (0 before).
    @ivar last_zxid: the highest zxid seen in a reply, sent on reconnect so that the
        server never serves us older state.
    @ivar chroot: the chroot mapping.
    @ivar connected_peer: the C{(host, port)} of the current server, or L{None}.
    @ivar sasl: the SASL credentials every connection is authenticated with, or
        L{None}.
    @ivar auth_failure: why the client is C{AUTH_FAILED}, in words, or L{None}.
    """

    def __init__(
        self,
        connect_string: str,
        reactor: Any = None,
        session_timeout_ms: int = 60_000,
        can_be_read_only: bool = False,
        request_timeout_ms: int | None = None,
        renew_expired_session: bool = True,
        reconnect_delay_ms: int = 1000,
        reconnect_jitter_ms: int = 1000,
        session_id: int = 0,
        session_password: bytes | None = None,
        random_source: random.Random | None = None,
        endpoint_factory: Callable[[Any, str, int, float], Any] | None = None,
        tls: Any = None,
        sasl: SASLConfig | Mapping[str, Any] | None = None,
    ) -> None:
        """
        @param tls: connect over TLS: a L{curatorish.connection.tls.TLSConfig} or
            Twisted client TLS options (C{optionsForClientTLS}); L{None}: plain TCP.
        @param sasl: authenticate every connection with SASL DIGEST-MD5: a
            L{curatorish.connection.sasl.SASLConfig}, or kazoo's C{sasl_options}
            mapping (C{mechanism}, C{username}, C{password}); needs C{pure-sasl}.
        @param endpoint_factory: C{(reactor, host, port, timeout_s)} -> a client
            endpoint; default L{HostnameEndpoint} (tests pass one that makes in-memory
            connections).
        @param connect_string: C{"host:port,host:port/chroot"}.
        @param session_timeout_ms: the timeout asked for in the handshake.
        @param can_be_read_only: ask for read-only mode (a server cut off from its
            quorum then still serves reads).
        @param request_timeout_ms: fail a request not answered in this time (and drop
            the connection); L{None} waits as long as the connection lives.
        @param renew_expired_session: after an expiry, start a new session (Curator's
            behaviour) instead of staying C{EXPIRED}.
        @param reconnect_delay_ms: the pause after every server has been tried.
        @param reconnect_jitter_ms: a random pause up to this long before each
            reconnect, as Java's client takes, so that clients cut off together do
            not come back together.
        @param session_id: join an existing session (with its password) instead of
            creating one: what Curator's C{KillSession} and the testing server use.
        """
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        parsed = parse_connect_string(connect_string)
        self.connect_string = parsed
        self.chroot = Chroot(parsed.chroot)
        self._random = random_source or random.Random()
        self._hosts = HostRotation(parsed.hosts, self._random)
        self.session_timeout_ms = session_timeout_ms
        self.can_be_read_only = can_be_read_only
        self.request_timeout_ms = request_timeout_ms
        self.renew_expired_session = renew_expired_session
        self.reconnect_delay_ms = reconnect_delay_ms
        self.reconnect_jitter_ms = reconnect_jitter_ms
        self._endpoint_factory = endpoint_factory or (
            lambda reactor, host, port, timeout_s: HostnameEndpoint(
                reactor, host, port, timeout=timeout_s
            )
        )
        if tls is not None:
            from curatorish.connection.tls import tls_endpoint_factory

            self._endpoint_factory = tls_endpoint_factory(tls, self._endpoint_factory)
        self.sasl = sasl_config(sasl)

        self.state = ClientState.CONNECTING
        # state.is_connected, kept by _set_state: read on every request.
        self._connected = False
        self.session_id = session_id
        self.session_password = session_password or b"\x00" * 16
        self.negotiated_timeout_ms = 0
        self.last_zxid = 0
        self.connected_peer: tuple[str, int] | None = None
        self.auth_failure: str | None = None

        self.watches = WatchManager()
        self._auth_infos: list[tuple[str, bytes]] = []
        # add_auth calls made while disconnected, answered by the replay's reply.
        self._auth_callers: dict[tuple[str, bytes], list[defer.Deferred[None]]] = {}
        self._state_listeners: list[Callable[[ClientState], Any]] = []
        self._protocol: ClientProtocol | None = None
        self._attempt_generation = 0
        self._started = False
        self._closing = False
        self._xid = 1
        self._outgoing: deque[_Packet] = deque()
        self._pending: deque[_Packet] = deque()
        self._auth_waiters: deque[defer.Deferred[None]] = deque()
        self._close_waiters: list[defer.Deferred[None]] = []
        self._connect_timer: IDelayedCall | None = None
        self._reconnect_timer: IDelayedCall | None = None
        self._ping_timer: IDelayedCall | None = None
        self._read_timer: IDelayedCall | None = None
        # When the last request went out and the last frame came in (reactor time):
        # the ping and read timers look at these when they fire, instead of being
        # pushed back on every request and reply.
        self._last_sent = 0.0
        self._last_heard = 0.0
        self._connected_waiters: list[defer.Deferred[bool]] = []
        # Read-only mode (Java's seenRwServerBefore, pingRwServer): a session made on a
        # read-only server is not resumed elsewhere until a read-write server has
        # taken it; while read-only we look for a read-write server with backoff.
        self._seen_rw_server = session_id != 0
        self._rw_probe_timer: IDelayedCall | None = None
        self._rw_probe_interval_s = MIN_RW_PROBE_INTERVAL_S

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """
        Start connecting (returns at once; see L{wait_connected}).
        """
        if self._started:
            return
        self._started = True
        self._attempt()

    def close(self, timeout_s: float = 5.0) -> defer.Deferred[None]:
        """
        Close the session (a closeSession request, so ephemerals go at once) and stop.

        @param timeout_s: how long to wait for the server's answer before dropping the
            connection anyway.
        @return: a Deferred firing when closed.
        """
        if self.state is ClientState.CLOSED:
            return defer.succeed(None)
        done: defer.Deferred[None] = defer.Deferred()
        self._close_waiters.append(done)
        if self._closing:
            return done
        self._closing = True
        self._cancel_reconnect()
        if self.state.is_connected and self._protocol is not None:
            packet = self._packet(OpCode.closeSession, b"", self._complete_empty, None)
            self._send_packet(packet)
            timer = self.reactor.callLater(timeout_s, self._finish_close)
            packet.deferred.addBoth(lambda _: self._finish_close(timer))
        else:
            self._finish_close()
        return done

    def _finish_close(self, timer: IDelayedCall | None = None) -> None:
        if timer is not None and timer.active():
            timer.cancel()
        if self.state is ClientState.CLOSED:
            return
        self._stop_timers()
        self._fail_all(errors.ConnectionClosedError())
        if self.session_id:
            _log.info("Session 0x{session_id:x} closed", session_id=self.session_id)
        self._set_state(ClientState.CLOSED)
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.abort()
        waiters, self._close_waiters = self._close_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def add_state_listener(self, listener: Callable[[ClientState], Any]) -> None:
        """
        Call C{listener(state)} on every state change, synchronously (the framework's
        state manager queues them for applications).
        """
        self._state_listeners.append(listener)

    def remove_state_listener(self, listener: Callable[[ClientState], Any]) -> None:
        if listener in self._state_listeners:
            self._state_listeners.remove(listener)

    @property
    def is_connected(self) -> bool:
        return self._connected

    def wait_connected(self, timeout_s: float | None = None) -> defer.Deferred[bool]:
        """
        @return: a Deferred firing C{True} once connected, C{False} on timeout or
            when the connection ends for good.
        """
        if self.state.is_connected:
            return defer.succeed(True)
        if self.state.is_terminal:
            return defer.succeed(False)
        waiter: defer.Deferred[bool] = defer.Deferred()
        self._connected_waiters.append(waiter)
        if timeout_s is not None:
            timer = self.reactor.callLater(timeout_s, self._give_up_waiter, waiter)

            def stop_timer(connected: bool) -> bool:
                if timer.active():
                    timer.cancel()
                return connected

            waiter.addCallback(stop_timer)
        return waiter

    def _give_up_waiter(self, waiter: defer.Deferred[bool]) -> None:
        if waiter in self._connected_waiters:
            self._connected_waiters.remove(waiter)
            waiter.callback(False)

    def inject_session_expiration(self) -> None:
        """
        Act as if the server had expired the session (Java's
        C{Testable.injectSessionExpiration}; Curator's simulated expiration).
        """
        if self.state.is_terminal:
            return
        self._session_expired()

    def drop_connection(self) -> None:
        """
        Drop the current connection (the session stays; we reconnect).  For tests and
        for the connection-loss injection of the framework.
        """
        if self._protocol is not None:
            self._protocol.abort()

    # -- connecting -------------------------------------------------------------------

    def _connect_timeout_s(self) -> float:
        timeout_ms = self.negotiated_timeout_ms or self.session_timeout_ms
        return max(timeout_ms / len(self._hosts.hosts), 500) / 1000.0

    def _read_timeout_s(self) -> float:
        return (self.negotiated_timeout_ms or self.session_timeout_ms) * 2 / 3 / 1000.0

    def _ping_interval_s(self) -> float:
        return (self.negotiated_timeout_ms or self.session_timeout_ms) / 3 / 1000.0

    def _attempt(self) -> None:
        self._reconnect_timer = None
        if self.state.is_terminal or self._closing:
            return
        self._attempt_generation += 1
        generation = self._attempt_generation
        host, port = self._hosts.next()
        if self.session_id:
            _log.info(
                "Connecting to {host}:{port} (session 0x{session_id:x})",
                host=host,
                port=port,
                session_id=self.session_id,
            )
        else:
            _log.info("Connecting to {host}:{port}", host=host, port=port)
        endpoint = self._endpoint_factory(self.reactor, host, port, self._connect_timeout_s())
        protocol = ClientProtocol(self, (host, port))
        self._protocol = protocol
        connecting = connectProtocol(endpoint, protocol)
        self._connect_timer = self.reactor.callLater(
            self._connect_timeout_s(), self._handshake_timed_out, generation, connecting
        )
        connecting.addErrback(self._connect_failed, generation, protocol)

    def _connect_failed(self, failure: Failure, generation: int, protocol: ClientProtocol) -> None:
        if generation != self._attempt_generation or self._protocol is not protocol:
            return
        self._protocol = None
        self._connection_gone(protocol.peer, failure)

    def _handshake_timed_out(self, generation: int, connecting: defer.Deferred[Any]) -> None:
        self._connect_timer = None
        if generation != self._attempt_generation:
            return
        peer = self._peer_of_protocol()
        _log.warn(
            "No session established with {peer} within {ms} ms",
            peer="{}:{}".format(*peer) if peer else "the server",
            ms=int(self._connect_timeout_s() * 1000),
        )
        if not connecting.called:
            connecting.cancel()
        elif self._protocol is not None:
            self._protocol.abort()

    def _peer_of_protocol(self) -> tuple[str, int] | None:
        return self._protocol.peer if self._protocol is not None else None

    def _protocol_connected(self, protocol: ClientProtocol) -> None:
        if protocol is not self._protocol:
            protocol.abort()
            return
        request = ConnectRequest(
            PROTOCOL_VERSION,
            self.last_zxid,
            self.session_timeout_ms,
            self.session_id if self._seen_rw_server else 0,
            self.session_password,
            self.can_be_read_only,
        )
        protocol.send_frame(request.serialize())

    def _protocol_lost(self, protocol: ClientProtocol, reason: Failure | None) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        self._connection_gone(protocol.peer, reason)

    def _connection_gone(self, peer: tuple[str, int], reason: Failure | None) -> None:
        """
        The current connection (or attempt) ended: fail what was in flight, report
        the disconnection and try the next server.
        """
        self._stop_timers()
        had_session_here = self.connected_peer is not None
        self.connected_peer = None
        if self.state.is_terminal or self._closing:
            if self._closing:
                self._finish_close()
            return
        self._fail_all(errors.ConnectionLossError())
        if self.state.is_connected:
            self._set_state(ClientState.DISCONNECTED)
        delay_s = self._schedule_attempt()
        host, port = peer
        why = _describe_connection_failure(reason)
        if had_session_here:
            _log.warn(
                "Connection to {host}:{port} lost ({why}); session 0x{session_id:x} may "
                "still be alive: reconnecting in {delay:.1f} s",
                host=host,
                port=port,
                why=why,
                session_id=self.session_id,
                delay=delay_s or 0.0,
            )
        else:
            _log.warn(
                "Could not connect to {host}:{port}: {why}; retrying in {delay:.1f} s",
                host=host,
                port=port,
                why=why,
                delay=delay_s or 0.0,
            )

    def _schedule_attempt(self) -> float | None:
        """
        Plan the next connection attempt.

        @return: its delay in seconds, or L{None} when none was planned now.
        """
        if self._reconnect_timer is not None or self.state.is_terminal or self._closing:
            return None
        delay_s = self.reconnect_jitter_ms * self._random.random() / 1000.0
        if self._hosts.round_complete:
            delay_s += self.reconnect_delay_ms * (0.5 + self._random.random() / 2) / 1000.0
        self._reconnect_timer = self.reactor.callLater(delay_s, self._attempt)
        return delay_s

    def _cancel_reconnect(self) -> None:
        if self._reconnect_timer is not None and self._reconnect_timer.active():
            self._reconnect_timer.cancel()
        self._reconnect_timer = None

    def _stop_timers(self) -> None:
        for name in ("_connect_timer", "_ping_timer", "_read_timer", "_rw_probe_timer"):
            timer = getattr(self, name)
            if timer is not None and timer.active():
                timer.cancel()
            setattr(self, name, None)

    # -- frames -----------------------------------------------------------------------

    def _frame_received(self, protocol: ClientProtocol, frame: bytes) -> None:
        if protocol is not self._protocol:
            return
        try:
            if self.connected_peer is None:
                self._handshake_answered(protocol, frame)
            else:
                self._reply_received(frame)
        except DecodeError as error:
            _log.error(
                "Undecodable frame from {peer}: {error}; dropping the connection",
                peer=protocol.peer,
                error=str(error),
            )
            protocol.abort()

    def _handshake_answered(self, protocol: ClientProtocol, frame: bytes) -> None:
        response, _ = ConnectResponse.deserialize(frame, 0)
        if self._connect_timer is not None and self._connect_timer.active():
            self._connect_timer.cancel()
        self._connect_timer = None
        if response.timeOut <= 0:
            _log.warn(
                "Session 0x{session_id:x} expired (said {host}:{port}): its ephemeral "
                "nodes and watches are gone",
                session_id=self.session_id,
                host=protocol.peer[0],
                port=protocol.peer[1],
            )
            self._session_expired()
            return
        self.connected_peer = protocol.peer
        self.session_id = response.sessionId
        self.session_password = response.passwd or b"\x00" * 16
        self.negotiated_timeout_ms = response.timeOut
        self._hosts.on_connected()
        self._last_sent = self._last_heard = self.reactor.seconds()
        self._read_timer = self.reactor.callLater(self._read_timeout_s(), self._read_timed_out)
        self._ping_timer = self.reactor.callLater(self._ping_interval_s(), self._send_ping)
        _log.info(
            "Session 0x{session_id:x} established on {host}:{port}, timeout {timeout} ms{ro}",
            session_id=self.session_id,
            host=protocol.peer[0],
            port=protocol.peer[1],
            timeout=self.negotiated_timeout_ms,
            ro=" (read-only)" if response.readOnly else "",
        )
        read_only = bool(response.readOnly)
        if not read_only:
            self._seen_rw_server = True
        if self.sasl is None:
            self._connection_ready(protocol, read_only)
        else:
            self._authenticate(protocol, read_only)

    def _connection_ready(self, protocol: ClientProtocol, read_only: bool) -> None:
        """
        The session is established (and authenticated) on this connection: prime it,
        report it connected and send what was waiting.
        """
        self._prime_connection(protocol)
        if self._ping_timer is None or not self._ping_timer.active():
            # A ping due during a long SASL exchange was skipped (not yet connected).
            self._ping_timer = self.reactor.callLater(self._ping_interval_s(), self._send_ping)
        if read_only:
            self._rw_probe_interval_s = MIN_RW_PROBE_INTERVAL_S
            self._schedule_rw_probe()
        self._set_state(ClientState.CONNECTED_READ_ONLY if read_only else ClientState.CONNECTED)
        outgoing, self._outgoing = self._outgoing, deque()
        for packet in outgoing:
            self._send_packet(packet)

    def _authenticate(self, protocol: ClientProtocol, read_only: bool) -> None:
        """
        Run the SASL exchange on this new connection before anything else is sent on
        it (Java holds its outgoing queue the same way); requests made meanwhile wait
        in the outgoing queue.
        """
        assert self.sasl is not None
        config = self.sasl
        exchange = SaslExchange(config)

        def send(token: bytes) -> defer.Deferred[bytes | None]:
            if self._protocol is not protocol:
                return defer.fail(errors.ConnectionLossError())
            packet = self._packet(
                OpCode.sasl,
                GetSASLRequest(token).serialize(),
                self._reader(None, SetSASLResponse),
                None,
            )
            self._send_packet(packet)
            return packet.deferred.addCallback(lambda reply: reply.token)

        def authenticated(_: None) -> None:
            if self._protocol is not protocol or self._closing or self.state.is_terminal:
                return
            _log.info(
                "SASL {mechanism} authentication as {user} succeeded on {host}:{port}",
                mechanism=config.mechanism,
                user=config.username,
                host=protocol.peer[0],
                port=protocol.peer[1],
            )
            self._connection_ready(protocol, read_only)

        def failed(failure: Failure) -> None:
            if self._protocol is not protocol or self._closing or self.state.is_terminal:
                return  # the connection went first: the next one authenticates again
            if failure.check(errors.ConnectionLossError):
                return
            reason = (
                f"SASL {config.mechanism} authentication as {config.username!r} refused "
                f"by {protocol.peer[0]}:{protocol.peer[1]}: {failure.getErrorMessage()}"
            )
            if not failure.check(SaslRefused):
                _log.failure("SASL exchange failed", failure=failure)
            _log.warn("{reason}; the client stops (AUTH_FAILED)", reason=reason)
            self._auth_failed(reason)

        defer.ensureDeferred(exchange.run(send)).addCallbacks(authenticated, failed)

    def _prime_connection(self, protocol: ClientProtocol) -> None:
        """
        Replay auth and re-register watches, before any queued request.
        """
        for scheme, credential in self._auth_infos:
            header = RequestHeader(Xid.AUTH, OpCode.auth).serialize()
            protocol.send_frame(header + AuthPacket(0, scheme, credential).serialize())
            self._auth_waiters.append(self._replayed_auth_waiter((scheme, credential)))
        if self.watches.is_empty():
            return
        to_server = self.chroot.to_server
        lists = [
            [to_server(path) for path in self.watches.paths(kind)]
            for kind in (DATA, EXIST, CHILD, PERSISTENT, PERSISTENT_RECURSIVE)
        ]
        # Batches of at most SET_WATCHES_MAX_LENGTH path characters, as Java sends them.
        flat = [(index, path) for index, paths in enumerate(lists) for path in paths]
        while flat:
            batch: list[list[str]] = [[], [], [], [], []]
            length = 0
            while flat and length < SET_WATCHES_MAX_LENGTH:
                index, path = flat.pop(0)
                batch[index].append(path)
                length += len(path)
            if batch[3] or batch[4]:
                opcode = OpCode.setWatches2
                record: Record = SetWatches2(self.last_zxid, *batch)
            else:
                opcode = OpCode.setWatches
                record = SetWatches(self.last_zxid, batch[0], batch[1], batch[2])
            header = RequestHeader(Xid.SET_WATCHES, opcode).serialize()
            protocol.send_frame(header + record.serialize())

    def _reply_received(self, frame: bytes) -> None:
        self._last_heard = self.reactor.seconds()
        if len(frame) < _REPLY_HEADER_SIZE:
            raise DecodeError(f"reply of {len(frame)} bytes, shorter than its header")
        xid, zxid, err = _REPLY_HEADER.unpack_from(frame)
        offset = _REPLY_HEADER_SIZE
        if xid < 0:
            if xid == _PING_XID:
                return
            if xid == _NOTIFICATION_XID:
                event, _ = WatcherEvent.deserialize(frame, offset)
                self._deliver_event(event)
                return
            if xid == _AUTH_XID:
                self._auth_answered(err)
                return
            if xid == _SET_WATCHES_XID:
                if err:
                    _log.warn("setWatches failed with error {err}", err=err)
                return
        if not self._pending:
            _log.error("Reply with xid {xid} but nothing is pending", xid=xid)
            self.drop_connection()
            return
        packet = self._pending.popleft()
        if packet.xid != xid:
            _log.error(
                "Xid out of order: got {xid}, expected {expected}", xid=xid, expected=packet.xid
            )
            packet.fail(errors.ConnectionLossError(packet.path))
            self.drop_connection()
            return
        if zxid > 0:
            self.last_zxid = zxid
        try:
            result = packet.complete(err, frame, offset)
        except errors.ZooKeeperError as error:
            packet.fail(error)
        except DecodeError:
            packet.fail(errors.MarshallingError(packet.path))
            raise
        except Exception as error:
            # A bug in a reply reader must not leave its caller waiting forever.
            _log.failure("Reading the reply to {opcode} failed", opcode=packet.opcode)
            packet.fail(error)
        else:
            packet.succeed(result)

    def _auth_answered(self, err: int) -> None:
        waiter = self._auth_waiters.popleft() if self._auth_waiters else None
        if err == 0:
            if waiter is not None and not waiter.called:
                waiter.callback(None)
            return
        _log.error("Authentication failed (error {err})", err=err)
        if waiter is not None and not waiter.called:
            waiter.errback(Failure(errors.error_for_code(err)))
        if err == Err.AUTHFAILED:
            self._auth_failed("the server refused an auth packet")

    def _auth_failed(self, reason: str) -> None:
        """
        The server refused our credentials: fail everything and stop for good.
        """
        self.auth_failure = reason
        self._stop_timers()
        self._fail_all(errors.AuthFailedError(None, reason))
        self._set_state(ClientState.AUTH_FAILED)
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.abort()

    def _deliver_event(self, event: WatcherEvent) -> None:
        path = self.chroot.to_client(event.path) if event.path is not None else None
        try:
            event_type = EventType(event.type)
            state = KeeperState(event.state)
        except ValueError:
            _log.warn("Unknown watch event {event!r}", event=event)
            return
        if path is None or event_type == EventType.NONE:
            return
        watched = WatchedEvent(event_type, state, path)
        for watcher in self.watches.materialize(event_type, path):
            self._call_watcher(watcher, watched)

    def _call_watcher(self, watcher: Watcher, event: WatchedEvent) -> None:
        try:
            result = watcher(event)
        except Exception:
            _log.failure("Watcher {watcher!r} raised on {event!r}", watcher=watcher, event=event)
            return
        if isinstance(result, defer.Deferred):
            result.addErrback(
                lambda failure: _log.failure(
                    "Watcher {watcher!r} failed", failure=failure, watcher=watcher
                )
            )

    # -- read-only mode ---------------------------------------------------------------

    def _schedule_rw_probe(self) -> None:
        if len(self._hosts.hosts) < 2:
            return
        self._rw_probe_timer = self.reactor.callLater(self._rw_probe_interval_s, self._probe_rw)

    def _probe_rw(self) -> None:
        """
        Ask the next server whether it is read-write (four-letter word C{isro}); if it
        is, leave the read-only server for it.
        """
        self._rw_probe_timer = None
        if self.state is not ClientState.CONNECTED_READ_ONLY:
            return
        self._rw_probe_interval_s = min(self._rw_probe_interval_s * 2, MAX_RW_PROBE_INTERVAL_S)
        host, port = self._hosts.next()
        if (host, port) == self.connected_peer:
            host, port = self._hosts.next()
        probe = _ReadOnlyProbe()
        endpoint = self._endpoint_factory(self.reactor, host, port, self._connect_timeout_s())
        connecting = connectProtocol(endpoint, probe)
        connecting.addCallback(lambda _: probe.answer)
        timer = self.reactor.callLater(self._connect_timeout_s(), connecting.cancel)

        def answered(answer: bytes | None) -> None:
            if timer.active():
                timer.cancel()
            if self.state is not ClientState.CONNECTED_READ_ONLY:
                return
            if answer == b"rw":
                _log.info("Read-write server found: {host}:{port}", host=host, port=port)
                self._hosts.move_to((host, port))
                self.drop_connection()
            else:
                self._schedule_rw_probe()

        connecting.addErrback(lambda _: None).addCallback(answered)

    # -- timers -----------------------------------------------------------------------

    def _send_ping(self) -> None:
        """
        Ping when nothing was sent for the ping interval; else look again when that
        much time has passed since the last request.
        """
        self._ping_timer = None
        protocol = self._protocol
        if protocol is None or not self.state.is_connected:
            return
        now = self.reactor.seconds()
        interval_s = self._ping_interval_s()
        quiet_s = now - self._last_sent
        if quiet_s < interval_s:
            self._ping_timer = self.reactor.callLater(interval_s - quiet_s, self._send_ping)
            return
        protocol.send_frame(RequestHeader(Xid.PING, OpCode.ping).serialize())
        self._last_sent = now
        self._ping_timer = self.reactor.callLater(interval_s, self._send_ping)

    def _read_timed_out(self) -> None:
        """
        Drop the connection when nothing came from the server for the read timeout;
        else look again when that much time has passed since the last frame.
        """
        self._read_timer = None
        timeout_s = self._read_timeout_s()
        silent_s = self.reactor.seconds() - self._last_heard
        if silent_s < timeout_s:
            self._read_timer = self.reactor.callLater(timeout_s - silent_s, self._read_timed_out)
            return
        peer = self.connected_peer
        _log.warn(
            "Nothing heard from {peer} for {ms} ms: dropping the connection",
            peer="{}:{}".format(*peer) if peer else "the server",
            ms=int(self._read_timeout_s() * 1000),
        )
        self.drop_connection()

    # -- state ------------------------------------------------------------------------

    def _set_state(self, state: ClientState) -> None:
        if state is self.state:
            return
        self.state = state
        self._connected = state.is_connected
        gone_for_good = state is ClientState.EXPIRED and not self.renew_expired_session
        if state.is_terminal or gone_for_good:
            callers, self._auth_callers = self._auth_callers, {}
            error_class = {
                ClientState.AUTH_FAILED: errors.AuthFailedError,
                ClientState.EXPIRED: errors.SessionExpiredError,
            }.get(state, errors.ConnectionClosedError)
            message = self.auth_failure if state is ClientState.AUTH_FAILED else None
            for waiting in callers.values():
                for caller in waiting:
                    caller.errback(Failure(error_class(None, message)))
        if state.is_connected or state.is_terminal or gone_for_good:
            waiters, self._connected_waiters = self._connected_waiters, []
            for waiter in waiters:
                waiter.callback(state.is_connected)
        for listener in list(self._state_listeners):
            try:
                listener(state)
            except Exception:
                _log.failure("Connection state listener raised for {state}", state=state.value)

    def _session_expired(self) -> None:
        self._stop_timers()
        self.connected_peer = None
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.abort()
        self._fail_all(errors.SessionExpiredError())
        dropped = self.watches.clear()
        self._set_state(ClientState.EXPIRED)
        event = WatchedEvent(EventType.NONE, KeeperState.Expired, None)
        for watcher in dropped:
            self._call_watcher(watcher, event)
        if self.renew_expired_session and not self._closing and not self.state.is_terminal:
            _log.info("Starting a new session")
            self.session_id = 0
            self.session_password = b"\x00" * 16
            self.last_zxid = 0
            self._set_state(ClientState.CONNECTING)
            self._schedule_attempt()

    def _fail_all(self, error: errors.ZooKeeperError) -> None:
        pending, self._pending = self._pending, deque()
        outgoing, self._outgoing = self._outgoing, deque()
        auth_waiters, self._auth_waiters = self._auth_waiters, deque()
        for packet in list(pending) + list(outgoing):
            packet.fail(type(error)(packet.path, error.message))
        for waiter in auth_waiters:
            if not waiter.called:
                waiter.errback(Failure(type(error)(None, error.message)))

    # -- sending ----------------------------------------------------------------------

    def _packet(
        self, opcode: int, body: bytes, complete: Callable[[int, bytes, int], Any], path: str | None
    ) -> _Packet:
        return _Packet(opcode, body, complete, path)

    def _next_xid(self) -> int:
        xid = self._xid
        self._xid = 1 if xid >= _MAX_XID else xid + 1
        return xid

    def _submit(
        self,
        opcode: int,
        record: Record | bytes | None,
        complete: Callable[[int, bytes, int], Any],
        path: str | None,
    ) -> defer.Deferred[Any]:
        if self._closing or self.state is ClientState.CLOSED:
            return defer.fail(errors.ConnectionClosedError(path))
        if self.state is ClientState.AUTH_FAILED:
            return defer.fail(errors.AuthFailedError(path, self.auth_failure))
        if self.state is ClientState.EXPIRED and not self.renew_expired_session:
            return defer.fail(errors.SessionExpiredError(path))
        if record is None:
            body = b""
        elif isinstance(record, bytes):
            body = record
        else:
            body = record.serialize()
        packet = self._packet(opcode, body, complete, path)
        if self.request_timeout_ms is not None:
            packet.timer = self.reactor.callLater(
                self.request_timeout_ms / 1000.0, self._request_timed_out, packet
            )
        if self._connected and self._protocol is not None:
            self._send_packet(packet)
        else:
            self._outgoing.append(packet)
            if not self._started:
                self.start()
        return packet.deferred

    def _send_packet(self, packet: _Packet) -> None:
        assert self._protocol is not None
        packet.xid = xid = self._next_xid()
        self._pending.append(packet)
        self._protocol.send_request(xid, packet.opcode, packet.body)
        self._last_sent = self.reactor.seconds()

    def _request_timed_out(self, packet: _Packet) -> None:
        packet.timer = None
        if packet in self._outgoing:
            self._outgoing.remove(packet)
            packet.fail(errors.RequestTimeoutError(packet.path))
            return
        if packet in self._pending:
            _log.warn(
                "Request {opcode} on {path} not answered in {ms} ms: dropping the connection",
                opcode=packet.opcode,
                path=packet.path,
                ms=self.request_timeout_ms,
            )
            self._pending.remove(packet)
            packet.fail(errors.RequestTimeoutError(packet.path))
            self.drop_connection()

    # -- auth -------------------------------------------------------------------------

    def add_auth(self, scheme: str, credential: str | bytes) -> defer.Deferred[None]:
        """
        Authenticate this session (e.g. C{("digest", "user:password")}); it is
        replayed on every reconnect.

        @param credential: bytes, or a C{str} sent as UTF-8 (as kazoo does).
        @return: Deferred firing when the server accepted it (with
            L{errors.AuthFailedError} when it did not, which ends the client).
        """
        credential = credential_bytes(credential)
        if (scheme, credential) not in self._auth_infos:
            self._auth_infos.append((scheme, credential))
        if not (self.state.is_connected and self._protocol is not None):
            # Sent with the others when the next connection is primed.
            if not self._started:
                self.start()
            caller: defer.Deferred[None] = defer.Deferred()
            self._auth_callers.setdefault((scheme, credential), []).append(caller)
            return caller
        header = RequestHeader(Xid.AUTH, OpCode.auth).serialize()
        self._protocol.send_frame(header + AuthPacket(0, scheme, credential).serialize())
        waiter: defer.Deferred[None] = defer.Deferred()
        self._auth_waiters.append(waiter)
        return waiter

    def _replayed_auth_waiter(self, info: tuple[str, bytes]) -> defer.Deferred[None]:
        """
        @return: the Deferred for the reply to a replayed auth packet, passing the
            answer on to the L{add_auth} callers who were waiting for a connection.
        """
        callers = self._auth_callers.pop(info, [])
        waiter: defer.Deferred[None] = defer.Deferred()

        def answered(result: Any) -> None:
            for caller in callers:
                if isinstance(result, Failure):
                    caller.errback(result)
                else:
                    caller.callback(None)

        waiter.addBoth(answered)
        return waiter

    def add_auth_info(self, scheme: str, credential: str | bytes) -> None:
        """
        Remember an auth info to send when the next connection is primed (before
        L{start}: the credentials of the very first handshake).

        @param credential: bytes, or a C{str} sent as UTF-8.
        """
        credential = credential_bytes(credential)
        if (scheme, credential) not in self._auth_infos:
            self._auth_infos.append((scheme, credential))

    @property
    def auth_infos(self) -> list[tuple[str, bytes]]:
        return list(self._auth_infos)

    def _current_keeper_state(self) -> KeeperState:
        return self.state.keeper_state
