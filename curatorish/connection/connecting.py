"""
Finding a server and establishing the session on it: the connecting half of the session.

L{SessionConnector} is the part of L{curatorish.connection.session.ZooKeeperConnection}
that connects to the servers of the connect string in turn, sends the handshake
(C{ConnectRequest}, with the id and password of the session it resumes) and reads the
answer, primes each new connection (auth replay, then the watches re-registered with
C{setWatches}) before the queued requests go out, and, when a connection or an attempt
ends, fails what was in flight, reports the disconnection and plans the next attempt
(with jitter, and a pause after each round of the servers).  It also routes the frames
of the connection: the first answers the handshake, the others are replies.

It is separate from the packet queue (L{curatorish.connection.packets}), which does not
care which server it writes to, and from the timers that decide a connection is dead
(L{curatorish.connection.keepalive}).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.connection.client_state import ClientState
from curatorish.connection.hosts import HostRotation
from curatorish.connection.packets import Packet
from curatorish.connection.paths import Chroot
from curatorish.connection.protocol import ClientProtocol
from curatorish.connection.read_only import MIN_RW_PROBE_INTERVAL_S
from curatorish.connection.sasl import SASLConfig
from curatorish.connection.watches import (
    CHILD,
    DATA,
    EXIST,
    PERSISTENT,
    PERSISTENT_RECURSIVE,
    WatchManager,
)
from curatorish.logbridge import SESSION_NAMESPACE
from zkreg.proto.consts import PROTOCOL_VERSION, OpCode, Xid
from zkreg.proto.jute import DecodeError, Record
from zkreg.proto.records import (
    AuthPacket,
    ConnectRequest,
    ConnectResponse,
    RequestHeader,
    SetWatches,
    SetWatches2,
)

_log = Logger(namespace=SESSION_NAMESPACE)

#: Java splits setWatches into batches of about this many path characters.
SET_WATCHES_MAX_LENGTH = 128 * 1024


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


class SessionConnector:
    """
    Connects, shakes hands, primes the connection and reconnects, for the session.
    """

    # The session's state (created by ZooKeeperConnection.__init__):
    can_be_read_only: bool
    chroot: Chroot
    connected_peer: tuple[str, int] | None
    last_zxid: int
    negotiated_timeout_ms: int
    reactor: Any
    reconnect_delay_ms: int
    reconnect_jitter_ms: int
    sasl: SASLConfig | None
    session_id: int
    session_password: bytes
    session_timeout_ms: int
    state: ClientState
    watches: WatchManager
    _attempt_generation: int
    _auth_infos: list[tuple[str, bytes]]
    _auth_waiters: deque[defer.Deferred[None]]
    _closing: bool
    _connect_timer: IDelayedCall | None
    _endpoint_factory: Callable[[Any, str, int, float], Any]
    _hosts: HostRotation
    _last_heard: float
    _last_sent: float
    _outgoing: deque[Packet]
    _ping_timer: IDelayedCall | None
    _protocol: ClientProtocol | None
    _random: random.Random
    _read_timer: IDelayedCall | None
    _reconnect_timer: IDelayedCall | None
    _rw_probe_interval_s: float
    _seen_rw_server: bool

    # Provided by the session and its other parts:
    _authenticate: Callable[[ClientProtocol, bool], None]
    _fail_all: Callable[[errors.ZooKeeperError], None]
    _finish_close: Callable[[], None]
    _ping_interval_s: Callable[[], float]
    _read_timed_out: Callable[[], None]
    _read_timeout_s: Callable[[], float]
    _replayed_auth_waiter: Callable[[tuple[str, bytes]], defer.Deferred[None]]
    _reply_received: Callable[[bytes], None]
    _schedule_rw_probe: Callable[[], None]
    _send_packet: Callable[[Packet], None]
    _send_ping: Callable[[], None]
    _session_expired: Callable[[], None]
    _set_state: Callable[[ClientState], None]

    # -- connecting -------------------------------------------------------------------

    def _connect_timeout_s(self) -> float:
        timeout_ms = self.negotiated_timeout_ms or self.session_timeout_ms
        return max(timeout_ms / len(self._hosts.hosts), 500) / 1000.0

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
