"""
Putting one standalone zkreg together: the data server, the in-process data link,
and the session server's connection factory on top of it.

Kept out of L{zkreg.tap} so tests and L{curatorish.testing} can build the same
process in-memory without twistd.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime

from zkreg.config import ServerConfig
from zkreg.session.factory import SessionServerFactory


class DataTierFacts:
    """
    What the four-letter words need to know of the data tier (node count, sessions,
    ephemerals), read from an in-process L{zkreg.data.server.DataServer}.
    """

    def __init__(self, data_server: Any) -> None:
        self._server = data_server

    def node_count(self) -> int:
        # ZooKeeper's DataTree holds its root under both "" and "/", and its node
        # count (srvr, mntr zk_znode_count) counts it twice.
        return self._server.tree.node_count() + 1

    def ephemerals_by_session(self) -> dict[int, list[str]]:
        tree = self._server.tree
        return {
            session_id: tree.ephemerals_of(session_id)
            for session_id in self._server.sessions.session_ids()
        }

    def session_expiries(self) -> dict[int, tuple[int, float]]:
        sessions = self._server.sessions
        result = {}
        now = self._server.clock.seconds()
        for session_id in sessions.session_ids():
            session = sessions.get(session_id)
            timeout_ms = getattr(session, "timeout_ms", 0)
            deadline_ms = sessions.deadline_of(session_id)
            if deadline_ms:
                # Deadlines are in observed time (pauses left out): back to wall time.
                expires_at = self._server.observed.wall_ms(deadline_ms) / 1000.0
            else:
                expires_at = now + timeout_ms / 1000.0
            result[session_id] = (timeout_ms, expires_at)
        return result

    def approximate_data_size(self) -> int:
        return self._server.tree.approximate_data_size()

    def write_failure(self) -> str | None:
        return self._server.write_failure()

    def ephemerals_count(self) -> int:
        return sum(len(paths) for paths in self._server.tree.ephemerals.values())

    def session_count(self) -> int:
        return len(self._server.sessions)


class ReplicaFacts:
    """
    The four-letter-word facts of a session server of remote data servers (split
    mode): what its replica knows, and the state of its data link.  Session expiry
    times live in the data server; sessions are listed with their timeout from now.
    """

    #: srvr's Mode, mntr's zk_server_state.
    server_state = "session"

    def __init__(self, link: Any, clock: Any = None) -> None:
        """
        @param link: the L{zkreg.link.tcp.TCPDataLink} (its read view may be replaced
            by a new replica, so it is asked each time).
        """
        self._link = link
        if clock is None:
            from twisted.internet import reactor as clock  # type: ignore[assignment]
        self._clock = clock

    @property
    def _tree(self) -> Any:
        return self._link.read_view()

    def node_count(self) -> int:
        return self._tree.node_count() + 1  # the root counted twice, as ZooKeeper

    def ephemerals_by_session(self) -> dict[int, list[str]]:
        tree = self._tree
        return {sid: tree.ephemerals_of(sid) for sid in tree.sessions}

    def session_expiries(self) -> dict[int, tuple[int, float]]:
        now = self._clock.seconds()
        return {
            sid: (timeout, now + timeout / 1000.0) for sid, timeout in self._tree.sessions.items()
        }

    def approximate_data_size(self) -> int:
        return sum(len(path) + len(node.data or b"") for path, node in self._tree.iter_nodes())

    def data_tier(self) -> dict[str, Any]:
        """The data server followed, link state, replica lag, held requests, outages."""
        link = self._link
        return {
            "data_server": getattr(link, "connected_to", None),
            "link_state": getattr(link, "state", "up"),
            "zxid_lag": link.zxid_lag() if hasattr(link, "zxid_lag") else 0,
            "held": getattr(link, "held", 0),
            "outages": getattr(link, "outages", 0),
        }


def build_standalone(
    config: ServerConfig,
    clock: IReactorTime | None = None,
    log: Any = None,
    tree: Any = None,
    replies: Any = None,
) -> tuple[Any, SessionServerFactory]:
    """
    Build the data server and a session-server factory linked in-process.

    @param log: an L{zkreg.interfaces.IDurableLog} for the data server (its default,
        an in-memory log, when L{None}).
    @param tree: a recovered L{zkreg.data.tree.DataTree}, or L{None}.
    @param replies: the L{zkreg.data.dedup.ReplyCache} recovered with it, or L{None}.
    @return: the data server (a service to start) and the factory to listen with.
    """
    from zkreg.data.server import DataServer
    from zkreg.link.inprocess import InProcessDataLink

    if clock is None:
        from twisted.internet import reactor as clock  # type: ignore[assignment]
    data_server = DataServer(config, log=log, clock=clock, tree=tree, replies=replies)
    link = InProcessDataLink(data_server)
    factory = SessionServerFactory(
        config, link, clock, acl_checker=data_server.acl, data_info=DataTierFacts(data_server)
    )
    return data_server, factory
