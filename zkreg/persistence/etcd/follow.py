"""
A session server following the active data server through etcd
(C{--role session --etcd ...}).

L{EtcdLeaderEndpoint} is a client endpoint whose every connection attempt goes to
the data link the leader key names now; with no leader it fails, and the data link
retries.  It also polls the key (every L{POLL_S}) and drops the connection it made
as soon as another data server leads: a paused (SIGSTOP) old leader keeps its socket
open and would otherwise hold the session server until the link's silence timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectError
from twisted.logger import Logger

from zkreg.persistence.etcd.client import EtcdClient, EtcdError
from zkreg.persistence.etcd.layout import Layout

__all__ = ["EtcdLeaderEndpoint"]

_log = Logger(namespace="zkreg.persistence.etcd.follow")

#: how often the leader key is read (while connected, and while waiting for a leader)
POLL_S = 0.1
#: how long one connection attempt waits for a leader that takes connections
WAIT_S = 10.0


class NoLeader(ConnectError):
    """etcd names no active data server right now."""


class EtcdLeaderEndpoint:
    """
    Connects to whichever data server leads, as etcd says.

    @ivar leader: the data link address of the leader as last read, or L{None}.
    @ivar connected_to: the data link address of the last connection made, or L{None}.
    """

    def __init__(
        self,
        reactor: Any,
        client: EtcdClient,
        layout: Layout,
        wrap: Callable[[str, Any], Any] | None = None,
    ) -> None:
        """
        @param wrap: C{wrap(address, endpoint)} returns the endpoint to connect
            with instead of the plain one to a leader's C{address} (TLS: see
            L{zkreg.tls.data_link_tls_endpoints}), or L{None}.
        """
        self._reactor = reactor
        self._wrap = wrap
        self._client = client
        self._layout = layout
        self.leader: str | None = None
        self.connected_to: str | None = None
        self._protocol: Any = None
        self._poll = task.LoopingCall(self._check)
        self._poll.clock = reactor
        self._checking = False

    def __str__(self) -> str:
        return f"the leader in etcd ({self._layout.leader.decode()})"

    @defer.inlineCallbacks
    def _read_leader(self):
        current = yield self._client.get(self._layout.leader)
        self.leader = current.value.decode("utf-8") if current is not None else None
        return self.leader

    @defer.inlineCallbacks
    def connect(self, factory: Any):
        """
        Connect C{factory} to the data server leading now.

        While etcd names no leader, or names one that refuses connections (it died
        and its lease has not expired yet, or it was just elected and does not listen
        yet), keep trying every L{POLL_S} for up to L{WAIT_S}: the connection is
        then made as soon as a new leader listens, rather than after the data link's
        next backoff.
        """
        deadline = self._reactor.seconds() + WAIT_S
        while True:
            try:
                leader = yield self._read_leader()
            except EtcdError as error:
                leader = None
                why = f"etcd: {error}"
            else:
                why = "no active data server in etcd"
            if leader is not None:
                endpoint = clientFromString(self._reactor, leader)
                if self._wrap is not None:
                    endpoint = self._wrap(leader, endpoint)
                # Said before connecting: the data link reads it as the connection is made.
                self.connected_to = leader
                try:
                    protocol = yield endpoint.connect(factory)
                    break
                except ConnectError as error:
                    # A dead leader whose lease runs on, or a new one not listening
                    # yet (it is named before it has read the log to its end).
                    why = f"the leader {leader} refused: {error}"
            if self._reactor.seconds() >= deadline:
                raise NoLeader(why)
            yield task.deferLater(self._reactor, POLL_S, lambda: None)
        self._protocol = protocol
        if not self._poll.running:
            self._poll.start(POLL_S, now=False)
        return protocol

    def _check(self) -> None:
        if self._checking or self._protocol is None:
            return
        self._checking = True
        reading = self._read_leader()
        reading.addCallback(self._compare)
        reading.addErrback(lambda _: None)
        reading.addBoth(self._done_checking)

    def _done_checking(self, _ignored: Any) -> None:
        self._checking = False

    def _compare(self, leader: str | None) -> None:
        protocol = self._protocol
        if protocol is None or leader is None or leader == self.connected_to:
            return
        transport = getattr(protocol, "transport", None)
        if transport is None or not getattr(transport, "connected", False):
            return
        _log.info(
            "{new} leads now (was {old}): leaving the old data server",
            new=leader,
            old=self.connected_to,
        )
        self._protocol = None
        transport.abortConnection()

    def stop(self) -> None:
        """Stop polling."""
        if self._poll.running:
            self._poll.stop()


def leader_endpoints(
    reactor: Any, etcd: str, prefix: str, wrap: Callable[[str, Any], Any] | None = None
) -> list[tuple[str, Any]]:
    """
    @param etcd: the C{--etcd} setting.
    @param wrap: see L{EtcdLeaderEndpoint}.
    @return: the endpoint list a L{zkreg.link.tcp.TCPDataLink} takes, following the
        leader of the data tier under C{prefix}.
    """
    from zkreg.persistence.etcd.config import etcd_endpoints

    endpoint = EtcdLeaderEndpoint(
        reactor, EtcdClient(etcd_endpoints(etcd), reactor), Layout(prefix), wrap
    )
    return [(str(endpoint), endpoint)]
