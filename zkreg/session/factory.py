"""
The session server: the factory of client connections and the state they share.

It holds the watch manager, the map of sessions to their current connection, the
connection count per client address (max_client_cnxns), server statistics, and it is
the L{ICommitListener} that turns committed transactions into watch notifications.
"""

from __future__ import annotations

from collections import Counter
from time import perf_counter
from typing import Any, cast

from twisted.application import service
from twisted.internet import protocol
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from zkreg.config import ServerConfig
from zkreg.data.acl import AclChecker
from zkreg.interfaces import ICommitListener, IDataLink
from zkreg.session.fourletter import answer_four_letter_word
from zkreg.session.limits import ConnectionRateLimiter, RequestThrottler
from zkreg.session.protocol import ClientConnection
from zkreg.session.sasl import load_jaas_users
from zkreg.session.stats import NamespaceStats, ServerStats
from zkreg.session.watches import (
    NODE_CHILDREN_CHANGED,
    NODE_CREATED,
    NODE_DATA_CHANGED,
    NODE_DELETED,
    WatchManager,
)
from zkreg.summary import RecentSummary

_PERM_READ = 1


@implementer(ICommitListener)
class SessionServerFactory(protocol.ServerFactory):
    """
    @ivar config: the process's L{ServerConfig}.
    @ivar link: the L{IDataLink} to the data tier.
    @ivar clock: an L{IReactorTime}, injected so tests use C{task.Clock}.
    @ivar watches: the L{WatchManager} of all connections.
    @ivar connections: every open connection, four-letter-word ones included.
    @ivar connections_by_session: session id -> the connection it is attached to.
    @ivar reader: C{f(connection, opcode, record) -> (err, response)} answering data
        reads from the read view (see L{zkreg.session.reads}).
    """

    protocol = ClientConnection  # type: ignore[assignment]
    _log = Logger()

    def __init__(
        self,
        config: ServerConfig,
        link: IDataLink,
        clock: IReactorTime | None = None,
        reader: Any = None,
        data_info: Any = None,
        acl_checker: AclChecker | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock  # type: ignore[assignment]
        self.config = config
        self.link = link
        #: the link's Deferred-free submit (the in-process link has one, the TCP link
        #: not), looked up once: L{None} means C{link.submit(...).addCallbacks(...)}
        self.submit_with_callback: Any = getattr(link, "submit_with_callback", None)
        #: whether a connection may submit a write past its waiting reads (see
        #: L{zkreg.session.pipeline}): only over a link that says so
        self.writes_pass_reads = getattr(link, "writes_pass_reads", False) is True
        self.clock: Any = cast(Any, clock)
        self.read_view = link.read_view()
        self.min_timeout_ms = config.min_timeout_ms
        self.max_timeout_ms = config.max_timeout_ms
        self.max_packet_size = config.max_packet_size
        #: unsent bytes per connection above which it is not read from
        self.max_output_buffer = config.max_output_buffer
        #: seconds a connection may stay over that bound before it is closed
        self.output_stall_timeout_s = config.output_stall_timeout_ms / 1000.0
        #: largest multiRead / getChildren reply built
        self.max_reply_size = config.max_reply_size
        self.max_client_cnxns = config.max_client_cnxns
        self.acl_checker = acl_checker or AclChecker(
            config.super_digest, sasl=config.sasl_config is not None, x509=config.client_tls
        )
        #: user -> password for SASL DIGEST-MD5 (--sasl-config), or None: SASL off
        self.sasl_users: dict[str, str] | None = None
        if config.sasl_config is not None:
            self.sasl_users = load_jaas_users(config.sasl_config)
        #: whether clients must authenticate with SASL before any other request
        self.sasl_required = config.sasl_required
        #: whether a client whose SASL exchange failed is kept, unauthenticated
        self.sasl_allow_failed_clients = config.sasl_allow_failed_clients
        self.watches = WatchManager(shared_path=self._shared_path)
        self.stats = ServerStats()
        self.namespace_stats = NamespaceStats()
        #: seconds to send the notifications of one commit, for commits that had any
        self.watch_fanout = RecentSummary()
        #: the server-wide request throttler, or None (request_throttle_max_requests 0)
        self.throttler: RequestThrottler | None = None
        if config.request_throttle_max_requests > 0:
            self.throttler = RequestThrottler(
                config.request_throttle_max_requests,
                config.request_throttle_stall_time_ms,
                self.clock,
            )
        #: the connection-rate limit per client IP, or None (connection_rate_per_ip 0)
        self.connection_rate: ConnectionRateLimiter | None = None
        if config.connection_rate_per_ip > 0:
            self.connection_rate = ConnectionRateLimiter(
                config.connection_rate_per_ip, config.connection_burst_per_ip, self.clock
            )
        #: notifications sent since the start
        self.notifications_sent = 0
        #: seconds from a transaction's time (the data server's clock) to its arrival
        #: on this session server's commit stream: the data link's (or replica's) lag
        self.commit_lag = RecentSummary()
        #: in connection order (a dict as an ordered set), as cons lists them
        self.connections: dict[ClientConnection, None] = {}
        self.connections_by_session: dict[int, ClientConnection] = {}
        self._connections_by_host: Counter[str] = Counter()
        self._touched: set[int] = set()
        #: flushes of touches so far: a connection that touched its session since
        #: the last one (it noted this number) need not touch it again
        self.touch_generation = 0
        self._touch_call: Any = None
        self._unflushed: list[ClientConnection] = []
        self._flush_call: Any = None
        self.started_at = self.clock.seconds()
        self._default_reader = reader is None
        if reader is None:
            from zkreg.session.reads import make_reader

            reader = make_reader(self)
        self.perform_read = reader
        #: optional provider of data-tier facts for 4lw (sessions, ephemerals, sizes)
        self.data_info = data_info
        link.subscribe(self)

    def service(self) -> service.Service:
        """
        @return: a service that flushes pending session touches when stopped, so the
            factory's lifetime can hang in a service tree.
        """
        return _FactoryService(self)

    def last_zxid(self) -> int:
        """The zxid of the last transaction in the read view."""
        return self.read_view.last_zxid

    # -- connections ---------------------------------------------------------------------

    def buildProtocol(self, addr: Any) -> Any:
        host = getattr(addr, "host", "")
        if self.connection_rate is not None and not self.connection_rate.allow(host):
            self.stats.connections_rejected += 1
            return None
        if self.max_client_cnxns and self._connections_by_host[host] >= self.max_client_cnxns:
            self.stats.connections_rejected += 1
            self._log.warn(
                "Too many connections from /{host} - max is {maximum}",
                host=host,
                maximum=self.max_client_cnxns,
            )
            return None
        return super().buildProtocol(addr)

    def connection_opened(self, connection: ClientConnection) -> None:
        self.connections[connection] = None
        self._connections_by_host[connection.peer_host] += 1
        self._log.info("connection from {peer}", peer=connection.peer)

    def connection_closed(self, connection: ClientConnection) -> None:
        if connection not in self.connections:
            return
        del self.connections[connection]
        host = connection.peer_host
        self._connections_by_host[host] -= 1
        if self._connections_by_host[host] <= 0:
            del self._connections_by_host[host]
        self.watches.remove_watcher(connection)
        if connection.session_id:
            if self.connections_by_session.get(connection.session_id) is connection:
                del self.connections_by_session[connection.session_id]
        self._log.info(
            "closed connection from {peer} (session 0x{session_id:x})",
            peer=connection.peer,
            session_id=connection.session_id,
        )

    def session_moved(self, session_id: int, new_connection: ClientConnection) -> None:
        """
        A client reattaches C{session_id} through C{new_connection}: close its old one.
        """
        old = self.connections_by_session.pop(session_id, None)
        if old is not None and old is not new_connection:
            old.close(f"session 0x{session_id:x} moved to {new_connection.peer}")

    def session_attached(self, connection: ClientConnection, renewed: bool) -> None:
        """The handshake of C{connection} succeeded."""
        previous = self.connections_by_session.get(connection.session_id)
        if previous is not None and previous is not connection:
            previous.close(f"session 0x{connection.session_id:x} moved to {connection.peer}")
        self.connections_by_session[connection.session_id] = connection
        self._log.info(
            "{what} session 0x{session_id:x} with negotiated timeout {timeout} for client {peer}",
            what="renewed" if renewed else "established",
            session_id=connection.session_id,
            timeout=connection.timeout_ms,
            peer=connection.peer,
        )

    # -- output ----------------------------------------------------------------------

    def flush_later(self, connection: ClientConnection) -> None:
        """
        Have C{connection.flush()} called at the start of the next reactor turn
        (C{callLater(0)}), after every callback of the current one has run.
        """
        self._unflushed.append(connection)
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self._flush_connections)

    def _flush_connections(self) -> None:
        self._flush_call = None
        unflushed = self._unflushed
        self._unflushed = []
        for connection in unflushed:
            connection.flush()

    # -- session liveness ----------------------------------------------------------------

    def touch(self, session_id: int) -> None:
        """
        Note that C{session_id} was heard from; reported to the data tier in one
        batch per reactor turn.
        """
        self._touched.add(session_id)
        if self._touch_call is None:
            self._touch_call = self.clock.callLater(0, self.flush_touches)

    def flush_touches(self) -> None:
        """Report the sessions heard from since the last flush."""
        self._touch_call = None
        self.touch_generation += 1
        if self._touched:
            touched = self._touched
            self._touched = set()
            self.link.touch_sessions(touched)

    # -- the commit stream -------------------------------------------------------------

    def committed(self, commit: Any) -> None:
        """
        Notify watchers of a committed transaction; close connections of closed
        sessions.  Called before the writer's reply fires, so notifications reach
        every connection ahead of any reply reflecting the change.
        """
        events = commit.events
        if events:
            started = perf_counter()
            sent = self.watches.dispatch(events, self._may_read)
            if sent:
                self.watch_fanout.observe(perf_counter() - started)
                self.notifications_sent += sent
            time_ms = commit.time
            if time_ms:
                lag = self.clock.seconds() - time_ms / 1000.0
                if lag < 0.0:
                    lag = 0.0
                # RecentSummary.observe, inlined (once per commit).
                commit_lag = self.commit_lag
                commit_lag.count += 1
                commit_lag.total += lag
                commit_lag.recent.append(lag)
            try:
                self.namespace_stats.count_writes(events, self.read_view)
            except Exception:
                # Statistics must never keep a closed session's connection open.
                self._log.failure("counting writes of zxid 0x{zxid:x}", zxid=commit.zxid)
        closed = commit.closed_session
        if closed:
            connection = self.connections_by_session.get(closed)
            if connection is not None and connection.closing_session:
                self._log.info("session 0x{session_id:x} closed by its client", session_id=closed)
            else:
                self._log.info(
                    "session 0x{session_id:x} expired (or closed elsewhere)", session_id=closed
                )
            if connection is not None:
                connection.session_closed()

    def view_replaced(self, old: Any, new: Any) -> None:
        """
        The data link replaced the read view with a new replica (a snapshot after an
        outage the recent commits did not cover): read from it, and fire the watches
        whose node changed between the two (a recursive watch only for its own path).
        """
        self.read_view = new
        if self._default_reader:
            from zkreg.session.reads import make_reader

            self.perform_read = make_reader(self)
        data_paths, child_paths = self.watches.watched_paths()
        events: list[tuple[int, str]] = []
        for path in sorted(data_paths):
            before, after = old.get(path), new.get(path)
            if before is not None and after is None:
                events.append((NODE_DELETED, path))
            elif before is None and after is not None:
                events.append((NODE_CREATED, path))
            elif before is not None and after is not None and before.mzxid != after.mzxid:
                events.append((NODE_DATA_CHANGED, path))
        for path in sorted(child_paths):
            before, after = old.get(path), new.get(path)
            if before is not None and after is None and path not in data_paths:
                events.append((NODE_DELETED, path))
            elif before is not None and after is not None and before.pzxid != after.pzxid:
                events.append((NODE_CHILDREN_CHANGED, path))
        if events:
            self.watches.dispatch(events, self._may_read)

    def link_lost(self) -> None:
        """
        The data link lost its connection: close the client connections that had
        writes submitted past their waiting reads (see L{zkreg.session.pipeline}).
        The replica will catch up on commits whose results were lost, and such a
        read, evaluated only at its write's result, could see a later write of its
        own session.  Their clients see a lost connection, as ZooKeeper's clients do
        when their server loses its leader; the session lives on.
        """
        passed = [c for c in self.connections if c.writes_passed_reads()]
        if passed:
            self._log.warn(
                "data link lost: closing {count} client connections with writes "
                "submitted past waiting reads",
                count=len(passed),
            )
        for connection in passed:
            connection.close("data link lost with writes submitted past waiting reads")

    def data_tier_unavailable(self) -> None:
        """
        No data server came back in time: close every client connection so that its
        client tries another server (its held writes have failed).
        """
        sessions = [c for c in self.connections if c.session_id]
        self._log.warn(
            "data tier unavailable: closing {count} client connections", count=len(sessions)
        )
        for connection in sessions:
            connection.close("the data tier is unavailable")

    def _shared_path(self, path: str) -> str:
        """
        The read view's own string for C{path} when a node is there (the one keying
        its index), so the watch tables keep no copy of the request's path.
        """
        node = self.read_view.get(path)
        shared = getattr(node, "path", None)  # views whose nodes do not know it: none
        return path if shared is None else shared

    def _may_read(self, connection: ClientConnection, event_type: int, path: str) -> bool:
        """
        ZooKeeper 3.8 delivers an event only to a client with READ on the node
        (NIOServerCnxn.process).  The ACL of a node that no longer exists (a deleted
        node) is unknown here, so such events are delivered.
        """
        node = self.read_view.get(path)
        if node is None:
            return True
        return self.acl_checker.allowed(node.acl, _PERM_READ, connection.auth)

    # -- four-letter words -------------------------------------------------------------

    def four_letter_answer(self, word: str, connection: ClientConnection) -> str:
        """The text answering C{word} (or the not-whitelisted message)."""
        self.settle_latencies()
        return answer_four_letter_word(self, word, connection)

    def settle_latencies(self) -> None:
        """
        Count every answered write's latency now (each connection counts those of
        a batch of replies as it writes them): for reports and resets.
        """
        for connection in self.connections:
            connection.settle_latencies()

    def reset_connection_stats(self) -> None:
        """crst."""
        for connection in self.connections:
            connection.reset_stats()


class _FactoryService(service.Service):
    def __init__(self, factory: SessionServerFactory) -> None:
        self.factory = factory

    def stopService(self) -> Any:
        call = self.factory._touch_call
        if call is not None and call.active():
            call.cancel()
        self.factory._touch_call = None
        self.factory._flush_connections()
        call = self.factory._flush_call
        if call is not None and call.active():
            call.cancel()
        self.factory._flush_call = None
        for connection in list(self.factory.connections):
            connection.close()
        return super().stopService()
