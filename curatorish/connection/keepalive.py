"""
The session's ping and read timers: keeping the connection alive, noticing a silent server.

L{KeepAlive}, a part of L{curatorish.connection.session.ZooKeeperConnection}, pings
when a third of the negotiated session timeout passes without a request sent, and
drops the connection when nothing came from the server for two thirds of it (then the
session tries the next server, with the same session id and password).  The handshake
starts both timers; when they fire they look at when the last frame went out or came
in (which the packet queue records) instead of being pushed back on every request and
reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from curatorish.connection.client_state import ClientState
from curatorish.connection.protocol import ClientProtocol
from curatorish.logbridge import SESSION_NAMESPACE
from zkreg.proto.consts import OpCode, Xid
from zkreg.proto.records import RequestHeader

_log = Logger(namespace=SESSION_NAMESPACE)


class KeepAlive:
    """
    Pings a quiet connection and drops a silent one, for the session.
    """

    # The session's state (created by ZooKeeperConnection.__init__):
    connected_peer: tuple[str, int] | None
    negotiated_timeout_ms: int
    reactor: Any
    session_timeout_ms: int
    state: ClientState
    _last_heard: float
    _last_sent: float
    _ping_timer: IDelayedCall | None
    _protocol: ClientProtocol | None
    _read_timer: IDelayedCall | None

    # Provided by the session and its other parts:
    drop_connection: Callable[[], None]

    # -- timers -----------------------------------------------------------------------

    def _read_timeout_s(self) -> float:
        return (self.negotiated_timeout_ms or self.session_timeout_ms) * 2 / 3 / 1000.0

    def _ping_interval_s(self) -> float:
        return (self.negotiated_timeout_ms or self.session_timeout_ms) / 3 / 1000.0

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
