"""
The data link over TCP, session-server side: a long-lived L{TCPDataLink} to the data
tier, surviving data-server restarts.

The link connects through Twisted's C{ClientService} (reconnection with backoff) to the
data servers of C{--data-server tcp:h:p[,tcp:h:p...]}, tried in turn; each connection is
a L{LinkProtocol} that only frames messages and hands them to the link.  On each
connection the link says which zxid its replica has and is brought up to date (the
commits after it, or a snapshot in chunks: see L{zkreg.link.serve}); the replica is the
session server's read view, swapped for a new one when a snapshot arrives.

While no data server is linked the session server rides through: reads are answered
from the replica, pings by the session server itself, and every request to the data
tier (writes, session creation and revalidation, closes) is held.  Once a data server
is back and synced, the held requests are submitted again, in order.  Writes carry a
L{WriteStamp} (this link's random origin and a per-session number), so a write that
was committed before the outage is answered from its recorded result rather than
applied twice (L{zkreg.data.dedup}).  If no data server is back within
C{data_tier_timeout_s}, the held requests fail with L{DataTierUnavailable} and the
listeners are told (the session server closes its client connections so that clients
go elsewhere), as are requests made until the link is back.

A data server that stops speaking without closing its connections is noticed by its
silence, and left for another one that answers (L{zkreg.link.liveness}).

This module has the link's connection and lifetime (connecting, syncing, riding
through an outage) and puts the link together with its parts in other modules:
L{zkreg.link.calls} (the requests to the data tier and their bookkeeping: held
calls, write stamps), L{zkreg.link.replica} (the replica: catching up, the commit
stream, acknowledging what is applied) and L{zkreg.link.liveness} (touches and beats
sent, the data server's silence watched); L{zkreg.link.states} has the link's states.

The server side is L{zkreg.link.serve}; frames and messages: L{zkreg.link.wire}; the
data servers tried in turn: L{zkreg.link.endpoints}; a snapshot into a replica tree:
L{zkreg.link.replica_load}; probing the other data servers: L{zkreg.link.hunt}.
"""

from __future__ import annotations

import random
from typing import Any, cast

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.data.applier import answer
from zkreg.data.tree import DataTree
from zkreg.interfaces import IDataLink
from zkreg.link import wire
from zkreg.link.calls import DataTierCalls
from zkreg.link.endpoints import EndpointsInTurn, parse_data_servers
from zkreg.link.errors import DataTierUnavailable
from zkreg.link.liveness import (
    DATA_SERVER_TIMEOUT_S,
    HUNT_AFTER_S,
    SILENCE_CHECK_S,
    LinkLiveness,
)
from zkreg.link.replica import LinkedReplica
from zkreg.link.serve import BEAT_S, MAX_FRAME, DataLinkServerFactory, no_nagle
from zkreg.link.states import CONNECTING, DOWN, LOG_NAMESPACE, SYNCING, UNAVAILABLE, UP
from zkreg.proto.jute import DecodeError
from zkreg.tls import server_refusal

__all__ = [
    "DataLinkServerFactory",
    "DataTierUnavailable",
    "TCPDataLink",
    "connect_data_link",
    "parse_data_servers",
]


def _jitter() -> float:
    """Up to 50 ms: spreads session servers' reconnections without slowing a failover."""
    return random.random() * 0.05


#: Delays between two attempts (each a sweep of the list): 75 ms, growing by half up
#: to 0.3 s, plus L{_jitter}.  (Twisted's default jitter, up to a whole second, was
#: most of a failover's time.)
RECONNECT_POLICY = backoffPolicy(initialDelay=0.05, maxDelay=0.3, factor=1.5, jitter=_jitter)

_log = Logger(namespace=LOG_NAMESPACE)


class LinkProtocol(Int32StringReceiver):
    """One connection of a L{TCPDataLink}: frames in and out, nothing else."""

    MAX_LENGTH = MAX_FRAME

    def __init__(self, link: TCPDataLink) -> None:
        self.link = link

    def send(self, message: Any) -> None:
        self.sendString(wire.encode_message(message))

    def send_encoded(self, encoded: bytes) -> None:
        """Send a message already encoded (L{wire.encode_message})."""
        self.sendString(encoded)

    def connectionMade(self) -> None:
        no_nagle(self.transport)
        self.link._connected(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.link._disconnected(self, reason)

    def dataReceived(self, data: bytes) -> None:
        link = self.link
        if link._protocol is self:
            # Heard from: once per read, not per frame (a read carries many under load).
            link._silent_s = 0.0
        super().dataReceived(data)
        if link.acknowledge_applied:
            link.frames_handled()

    def stringReceived(self, frame: bytes) -> None:
        link = self.link
        if link._protocol is not self:
            return
        try:
            # The two messages of every write first, without a record each.
            kind = frame[0] if frame else -1
            if kind == wire.COMMIT:
                link._commit(frame[1:])
            elif kind == wire.RESULT:
                link._result(*wire.decode_result(frame))
            else:
                link._received(self, wire.decode_message(frame))
        except DecodeError as error:
            _log.warn("undecodable data-link frame: {error}", error=error)
            cast(Any, self.transport).loseConnection()

    def lengthLimitExceeded(self, length: int) -> None:
        _log.warn("data-link frame of {length} bytes is too long", length=length)
        cast(Any, self.transport).loseConnection()


@implementer(IDataLink)
class TCPDataLink(DataTierCalls, LinkedReplica, LinkLiveness):
    """
    L{IDataLink} to a data tier over TCP, reconnecting and resyncing as needed: this
    module has its connection and lifetime; L{DataTierCalls} its requests,
    L{LinkedReplica} its replica, L{LinkLiveness} its touches, beats and silence
    watch.

    @cvar writes_pass_reads: true: a session may submit a write past its waiting
        reads.  While linked, each write's result arrives right after its commit and
        before the next commit (L{zkreg.link.serve}), so a read evaluated in a write's
        answer sees exactly the writes before it.  After an outage the replica
        catches up on commits whose results were lost, so when the connection is lost
        the listeners' C{link_lost} is called first: the session server closes the
        client connections that had writes submitted past waiting reads.
    @ivar ready: a Deferred firing with this link once the first sync is done.
    @ivar tree: the replica read view (valid once L{ready} fired).
    @ivar state: one of C{connecting}, C{syncing}, C{up}, C{down}, C{unavailable}.
    @ivar origin: this link's random id, part of every write's L{WriteStamp}.
    @ivar data_server_zxid: the data server's last zxid, as of its last beat.
    """

    writes_pass_reads = True

    def __init__(
        self,
        endpoints: Any,
        clock: Any = None,
        data_tier_timeout_s: float = 40.0,
        name: str = "",
        data_server_timeout_s: float = DATA_SERVER_TIMEOUT_S,
        hunt_after_s: float = HUNT_AFTER_S,
        auth_schemes: tuple[str, ...] = (),
        acknowledge_applied: bool = False,
    ) -> None:
        """
        @param acknowledge_applied: tell the data server which zxid the replica has
            applied (a L{wire.Beat} after each batch of commits), so that it can hold
            writes' replies until every replica has them (a session process of
            C{--session-processes}; L{zkreg.link.serve.DataLinkServerFactory}).
        @param endpoints: C{[(description, IStreamClientEndpoint)]}, tried in turn
            (see L{parse_data_servers}), or one endpoint.
        @param data_tier_timeout_s: how long requests are held while no data server
            is linked before they fail.
        @param name: how this session server names itself to the data server.
        @param data_server_timeout_s: silence after which the connection is dropped.
        @param hunt_after_s: silence after which the other endpoints are probed.
        @param auth_schemes: the optional ACL schemes this session server knows
            (C{sasl}, C{x509}: L{zkreg.config.ServerConfig.auth_schemes}); the data
            server judges its clients' ACLs by them.
        """
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        if not isinstance(endpoints, list):
            endpoints = [(str(endpoints), endpoints)]
        self.clock = clock
        self._endpoints = EndpointsInTurn(endpoints, self._attempt_failed)
        self._failed_attempts = 0
        self.data_tier_timeout_s = data_tier_timeout_s
        self.data_server_timeout_s = data_server_timeout_s
        self.hunt_after_s = hunt_after_s
        self.name = name
        self.auth_schemes = list(auth_schemes)
        self.acknowledge_applied = acknowledge_applied
        self._acknowledged = -1
        self.origin = random.getrandbits(63) or 1
        self.ready: Deferred = Deferred()
        self.tree: DataTree | None = None
        self.state = CONNECTING
        self.data_server_zxid = -1
        self.connected_to: str | None = None
        self.outages = 0
        self._protocol: LinkProtocol | None = None
        self._synced = False
        self._loading = None
        self._listeners: list[Any] = []
        self._calls = {}
        self._ids = {}
        self._next_tag = 0
        self._seq = {}
        self._unanswered = {}
        self._touched = {}
        self._touch_call: Any = None
        self._sent_since_beat = False
        self._beats: LoopingCall | None = None
        self._outage_call: Any = None
        self._service: ClientService | None = None
        self._stopped = False
        self._silent_s = 0.0
        self._checked_at = None
        self._silence: LoopingCall | None = None
        self._hunt = None
        self.moves = 0

    # -- lifetime ----------------------------------------------------------------------

    def start(self) -> Deferred:
        """
        Start connecting (and keep reconnecting) to the data servers.

        @return: L{ready}.
        """
        factory = Factory.forProtocol(self.build_protocol)
        # Retry soon and often: a data-tier failover takes about one etcd lease, and
        # ClientService's default backoff (1 s, then x1.5) would add seconds to it.
        self._service = ClientService(
            self._endpoints, factory, retryPolicy=RECONNECT_POLICY, clock=self.clock
        )
        self._service.startService()
        self._beats = LoopingCall(self._beat)
        self._beats.clock = self.clock
        self._beats.start(BEAT_S, now=False)
        self._silence = LoopingCall(self._check_silence)
        self._silence.clock = self.clock
        self._checked_at = self.clock.seconds()
        self._silence.start(SILENCE_CHECK_S, now=False)
        return self.ready

    def _attempt_failed(self, description: str, reason: Failure) -> None:
        """
        A connection attempt failed.  At start, once every data server has refused,
        L{ready} fails: a session server never linked is a configuration or start-order
        problem to report, not an outage to ride through.
        """
        self._failed_attempts += 1
        if self.ready.called:
            return
        if self._failed_attempts >= len(self._endpoints):
            self.stop()
            self.ready.errback(reason)

    def build_protocol(self) -> LinkProtocol:
        """@return: a protocol for one connection of this link (to a data server)."""
        return LinkProtocol(self)

    def stop(self) -> Deferred:
        """Stop reconnecting and close the connection."""
        self._stopped = True
        for loop in (self._beats, self._silence):
            if loop is not None and loop.running:
                loop.stop()
        self._stop_hunting()
        self._cancel(self._touch_call)
        self._cancel(self._outage_call)
        self._touch_call = self._outage_call = None
        if self._service is None:
            return succeed(None)
        service, self._service = self._service, None
        return service.stopService()

    @staticmethod
    def _cancel(call: Any) -> None:
        if call is not None and call.active():
            call.cancel()

    # -- connection events -------------------------------------------------------------

    def _connected(self, protocol: LinkProtocol) -> None:
        self._protocol = protocol
        self._synced = False
        self._acknowledged = -1
        self.state = SYNCING
        self.connected_to = self._endpoints.current
        self._silent_s = 0.0
        last = self.tree.last_zxid if self.tree is not None else -1
        protocol.send(wire.Hello(wire.PROTOCOL_VERSION, last, self.name, self.auth_schemes))

    def _disconnected(self, protocol: LinkProtocol, reason: Failure | None) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        self._synced = False
        self._loading = None
        self.connected_to = None
        self._stop_hunting()
        self._tell_listeners("link_lost")
        if self._stopped:
            return
        if self.state != UNAVAILABLE:
            self.state = DOWN
        self.outages += 1
        refusal = server_refusal(reason)
        _log.warn(
            "lost the data server ({reason}); holding {held} requests for up to {timeout}s",
            reason=(
                f"TLS handshake refused: {refusal}"
                if refusal is not None
                else reason.getErrorMessage()
                if reason is not None
                else "closed"
            ),
            held=len(self._calls),
            timeout=self.data_tier_timeout_s,
        )
        if self._outage_call is None and self.state != UNAVAILABLE:
            self._outage_call = self.clock.callLater(self.data_tier_timeout_s, self._timed_out)

    def _timed_out(self) -> None:
        """No data server within the data-tier timeout: fail what is held, tell listeners."""
        self._outage_call = None
        self.state = UNAVAILABLE
        calls, self._calls = self._calls, {}
        _log.error(
            "no data server for {timeout}s: failing {count} held requests",
            timeout=self.data_tier_timeout_s,
            count=len(calls),
        )
        self._unanswered.clear()
        error = DataTierUnavailable(f"no data server for {self.data_tier_timeout_s}s")
        for call in calls.values():
            answer(call.waiting, Failure(error))
        self._tell_listeners("data_tier_unavailable")
        if not self.ready.called:
            self.ready.errback(Failure(error))

    def _tell_listeners(self, event: str) -> None:
        """Call the listeners' method C{event}, for those that have it."""
        for listener in tuple(self._listeners):
            method = getattr(listener, event, None)
            if method is not None:
                try:
                    method()
                except Exception:
                    _log.failure("listener {listener!r} failed", listener=listener)

    def _synced_now(self) -> None:
        """The replica is up to date: submit what was held, report touches."""
        self._synced = True
        self.state = UP
        self._cancel(self._outage_call)
        self._outage_call = None
        protocol = self._protocol
        assert protocol is not None
        if self._calls:
            _log.info("data server back: submitting {count} held requests", count=len(self._calls))
        for call in list(self._calls.values()):
            protocol.send_encoded(call.message)
        if self._touched:
            self._send_touches()
        self.frames_handled()
        if not self.ready.called:
            self.ready.callback(self)

    def _received(self, protocol: LinkProtocol, message: Any) -> None:
        if protocol is not self._protocol:
            return
        kind = message.__class__
        if kind is wire.Result:
            self._result(message.tag, message.failed, message.zxid, message.err, message.body)
        elif kind is wire.Beat:
            self.data_server_zxid = message.lastZxid
        elif kind is wire.Grant:
            self._granted(message)
        elif kind is wire.SnapChunk:
            self._load_nodes(message.nodes or ())
        elif kind is wire.SyncStart:
            self._sync_start(message)
        elif kind is wire.SnapEnd:
            self._loaded(message)
        else:
            _log.warn("unexpected data-link message {kind}", kind=kind.__name__)
            cast(Any, protocol.transport).loseConnection()

    # -- listeners ---------------------------------------------------------------------

    def subscribe(self, listener: Any) -> None:
        """See L{IDataLink.subscribe}."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Any) -> None:
        """See L{IDataLink.unsubscribe}."""
        if listener in self._listeners:
            self._listeners.remove(listener)


def connect_data_link(endpoint: Any, clock: Any = None, **options: Any) -> Deferred:
    """
    Start a L{TCPDataLink} to one data server (or a list, see L{parse_data_servers}).

    @return: a Deferred firing with the link once its replica is loaded.
    """
    link = TCPDataLink(endpoint, clock=clock, **options)
    return link.start()
