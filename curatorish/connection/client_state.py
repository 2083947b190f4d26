"""
The wire-level state of a ZooKeeper client session: L{ClientState}.

Its own module because the session (L{curatorish.connection.session}) and every part
it is made of (connecting, the packet queue, auth, ...) move between these states or
check them, and the framework maps them into Curator's connection states
(L{curatorish.state}).
"""

from __future__ import annotations

import enum

from zkreg.proto.consts import KeeperState


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
