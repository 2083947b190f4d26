"""
A ZooKeeper client session over Twisted: Java's C{ClientCnxn}, on L{zkreg.proto}.
The operations themselves (Java's C{ZooKeeper} methods) are the other half of the
class, in parts of their own over one base (L{curatorish.connection.operations} lists
them).

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

This module keeps the session's state (all of it created in
L{ZooKeeperConnection.__init__}, so that one place shows it), its lifecycle and its
state changes; the rest is done by parts mixed into the class, one job each, as the
operations are:

  - L{curatorish.connection.connecting}: connecting, the handshake, priming a new
    connection and reconnecting;
  - L{curatorish.connection.packets}: the request queue, request timeouts and the
    dispatch of replies and watch events;
  - L{curatorish.connection.keepalive}: the ping and read timers;
  - L{curatorish.connection.read_only}: the search for a read-write server while
    read-only;
  - L{curatorish.connection.auth}: auth packets and SASL.

They all log under this module's namespace, C{curatorish.connection.session}.
L{ClientState} is defined in L{curatorish.connection.client_state}; it is public API
of this module's path too (C{curatorish.connection} lists it), so it stays importable
from here.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.connection.auth import SessionAuth
from curatorish.connection.client_state import ClientState
from curatorish.connection.connecting import SessionConnector
from curatorish.connection.hosts import HostRotation, parse_connect_string
from curatorish.connection.keepalive import KeepAlive
from curatorish.connection.multi_requests import MultiRequests
from curatorish.connection.packets import Packet, PacketQueue
from curatorish.connection.paths import Chroot
from curatorish.connection.protocol import ClientProtocol
from curatorish.connection.read_only import MIN_RW_PROBE_INTERVAL_S, ReadWriteSearch
from curatorish.connection.read_requests import ReadRequests
from curatorish.connection.sasl import SASLConfig, sasl_config
from curatorish.connection.watch_requests import WatchRequests
from curatorish.connection.watches import WatchedEvent, WatchManager
from curatorish.connection.write_requests import WriteRequests
from curatorish.logbridge import SESSION_NAMESPACE
from zkreg.proto.consts import EventType, KeeperState, OpCode

_log = Logger(namespace=SESSION_NAMESPACE)


# The parts of the operations come last, and their common base
# (operations.ZooKeeperOperations) after all of them in the method resolution order:
# its stand-ins for _submit and _call_watcher must not hide the packet queue's real ones.
class ZooKeeperConnection(
    SessionConnector,
    PacketQueue,
    KeepAlive,
    ReadWriteSearch,
    SessionAuth,
    ReadRequests,
    WriteRequests,
    WatchRequests,
    MultiRequests,
):
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
        self._prepared_reads: dict[str, tuple[bytes, Callable[[int, bytes, int], Any]]] = {}
        self._auth_infos: list[tuple[str, bytes]] = []
        # add_auth calls made while disconnected, answered by the replay's reply.
        self._auth_callers: dict[tuple[str, bytes], list[defer.Deferred[None]]] = {}
        self._state_listeners: list[Callable[[ClientState], Any]] = []
        self._protocol: ClientProtocol | None = None
        self._attempt_generation = 0
        self._started = False
        self._closing = False
        self._xid = 1
        self._outgoing: deque[Packet] = deque()
        self._pending: deque[Packet] = deque()
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

    def _current_keeper_state(self) -> KeeperState:
        return self.state.keeper_state
