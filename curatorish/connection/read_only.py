"""
The search for a read-write server while the session is on a read-only one.

A client that allows read-only mode (C{can_be_read_only}) may get its session from a
server cut off from its quorum (C{CONNECTED_READ_ONLY}).  L{ReadWriteSearch}, a part of
L{curatorish.connection.session.ZooKeeperConnection}, then asks the other servers in
turn, with a growing pause, whether they are read-write (the four-letter word C{isro},
Java's C{pingRwServer}), and at the first that is, drops the read-only connection so
that the session moves there.  It is separate from connecting
(L{curatorish.connection.connecting}) because it runs only while connected, on
connections of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish.connection.client_state import ClientState
from curatorish.connection.hosts import HostRotation
from curatorish.logbridge import SESSION_NAMESPACE

_log = Logger(namespace=SESSION_NAMESPACE)

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


class ReadWriteSearch:
    """
    Looks for a read-write server while the session is read-only.
    """

    # The session's state (created by ZooKeeperConnection.__init__):
    connected_peer: tuple[str, int] | None
    reactor: Any
    state: ClientState
    _endpoint_factory: Callable[[Any, str, int, float], Any]
    _hosts: HostRotation
    _rw_probe_interval_s: float
    _rw_probe_timer: IDelayedCall | None

    # Provided by the session and its other parts:
    drop_connection: Callable[[], None]
    _connect_timeout_s: Callable[[], float]

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
