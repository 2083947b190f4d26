"""
The data link over TCP, session-server side: a long-lived L{TCPDataLink} to the data
tier, surviving data-server restarts.

The link connects through Twisted's C{ClientService} (reconnection with backoff) to the
data servers of C{--data-server tcp:h:p[,tcp:h:p...]}, tried in turn; each connection is
a L{_LinkProtocol} that only frames messages and hands them to the link.  On each
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

A data server that stops speaking without closing its connections (a SIGSTOPped or
hung process: its kernel even accepts new ones) is noticed by its silence: it beats
every L{BEAT_S}, and after L{HUNT_AFTER_S} without a frame the link probes the other
data servers of its list and moves to the first that answers (L{zkreg.link.hunt});
after L{DATA_SERVER_TIMEOUT_S} it drops the connection in any case.

The server side is L{zkreg.link.serve}; frames and messages: L{zkreg.link.wire}; the
data servers tried in turn: L{zkreg.link.endpoints}; a snapshot into a replica tree:
L{zkreg.link.replica_load}.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, cast

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.data import codes
from zkreg.data.applier import answer
from zkreg.data.messages import Commit, Outcome, SessionGrant
from zkreg.data.reads import READ_OPS
from zkreg.data.server import DataServerFailed
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import decode_logged_txn
from zkreg.interfaces import IDataLink
from zkreg.link import wire
from zkreg.link.endpoints import EndpointsInTurn, parse_data_servers
from zkreg.link.errors import DataTierUnavailable
from zkreg.link.hunt import Hunt
from zkreg.link.replica_load import add_snapshot_nodes, empty_replica, finish_replica
from zkreg.link.serve import BEAT_S, MAX_FRAME, DataLinkServerFactory, no_nagle
from zkreg.proto.jute import DecodeError
from zkreg.tls import server_refusal

__all__ = [
    "DataLinkServerFactory",
    "DataTierUnavailable",
    "TCPDataLink",
    "connect_data_link",
    "parse_data_servers",
]

#: A data server silent this long (no beat, no commit) is taken for gone, even when
#: no other data server answers (see L{HUNT_AFTER_S}).
DATA_SERVER_TIMEOUT_S = 10.0

#: After this much silence of the data server (three beats) the link looks for
#: another one of its list that answers (L{zkreg.link.hunt}).
HUNT_AFTER_S = 1.5

#: How often the link adds up its data server's silence.
SILENCE_CHECK_S = 0.1


def _jitter() -> float:
    """Up to 50 ms: spreads session servers' reconnections without slowing a failover."""
    return random.random() * 0.05


#: Delays between two attempts (each a sweep of the list): 75 ms, growing by half up
#: to 0.3 s, plus L{_jitter}.  (Twisted's default jitter, up to a whole second, was
#: most of a failover's time.)
RECONNECT_POLICY = backoffPolicy(initialDelay=0.05, maxDelay=0.3, factor=1.5, jitter=_jitter)

_log = Logger(namespace="zkreg.link.tcp")


#: Distinct ids (of client connections) the link keeps encoded.
_IDS_KEPT = 1024

#: Link states, as C{srvr}/C{mntr} report them.
CONNECTING = "connecting"
SYNCING = "syncing"
UP = "up"
DOWN = "down"
UNAVAILABLE = "unavailable"


class _LinkProtocol(Int32StringReceiver):
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


class _Call:
    """
    A request to the data tier, kept until answered (and sent again after an outage).

    @ivar message: the request, encoded (L{wire.encode_message}).
    @ivar waiting: a L{Deferred}, or a callable taking the L{Outcome} or a L{Failure}
        (see L{zkreg.data.applier.answer}).
    @ivar raw: answer with the response body's bytes rather than its record.
    """

    __slots__ = ("opcode", "message", "waiting", "session_id", "seq", "raw")

    def __init__(
        self,
        opcode: int,
        message: bytes,
        waiting: Any,
        session_id: int,
        seq: int,
        raw: bool = False,
    ) -> None:
        self.opcode = opcode
        self.message = message
        self.waiting = waiting
        self.session_id = session_id
        self.seq = seq
        self.raw = raw


@implementer(IDataLink)
class TCPDataLink:
    """
    L{IDataLink} to a data tier over TCP, reconnecting and resyncing as needed.

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

    #: Touches are gathered for this long and sent as one frame: a session server
    #: touches a session on every client packet, and the data server only needs to
    #: hear of each live session well within a tick.
    TOUCH_DELAY_S = 0.05

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
        #: The last zxid acknowledged on the current connection.
        self._acknowledged = -1
        self.origin = random.getrandbits(63) or 1
        self.ready: Deferred = Deferred()
        self.tree: DataTree | None = None
        self.state = CONNECTING
        self.data_server_zxid = -1
        self.connected_to: str | None = None
        self.outages = 0
        self._protocol: _LinkProtocol | None = None
        self._synced = False
        self._loading: DataTree | None = None
        self._listeners: list[Any] = []
        self._calls: dict[int, _Call] = {}
        #: connections' ids (tuples of L{Id}) encoded once (L{wire.encode_auth})
        self._ids: dict[tuple[Any, ...], bytes] = {}
        self._next_tag = 0
        self._seq: dict[int, int] = {}
        #: per session, the numbers of its writes not answered yet, oldest first (an
        #: OrderedDict: its first key is found at once, where a dict whose front is
        #: popped again and again scans past the holes it leaves)
        self._unanswered: dict[int, OrderedDict[int, None]] = {}
        self._touched: dict[int, None] = {}
        self._touch_call: Any = None
        self._sent_since_beat = False
        self._beats: LoopingCall | None = None
        self._outage_call: Any = None
        self._service: ClientService | None = None
        self._stopped = False
        #: seconds of silence of the linked data server, counted while we ran
        self._silent_s = 0.0
        self._checked_at: float | None = None
        self._silence: LoopingCall | None = None
        self._hunt: Hunt | None = None
        #: how many times a silent data server was left for one that answered
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

    def build_protocol(self) -> _LinkProtocol:
        """@return: a protocol for one connection of this link (to a data server)."""
        return _LinkProtocol(self)

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

    def _connected(self, protocol: _LinkProtocol) -> None:
        self._protocol = protocol
        self._synced = False
        self._acknowledged = -1
        self.state = SYNCING
        self.connected_to = self._endpoints.current
        self._silent_s = 0.0
        last = self.tree.last_zxid if self.tree is not None else -1
        protocol.send(wire.Hello(wire.PROTOCOL_VERSION, last, self.name, self.auth_schemes))

    def _disconnected(self, protocol: _LinkProtocol, reason: Failure | None) -> None:
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

    def frames_handled(self) -> None:
        """
        The frames of one read from the data server are handled: with
        C{acknowledge_applied}, say how far the replica has applied (once per read,
        not per commit, so a burst of commits costs one small frame).
        """
        if not self.acknowledge_applied or not self._synced:
            return
        protocol, tree = self._protocol, self.tree
        if protocol is None or tree is None or tree.last_zxid <= self._acknowledged:
            return
        self._acknowledged = tree.last_zxid
        protocol.send(wire.Beat(tree.last_zxid))

    def _received(self, protocol: _LinkProtocol, message: Any) -> None:
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

    # -- silence -----------------------------------------------------------------------

    def _check_silence(self) -> None:
        """
        Add up the data server's silence; past L{hunt_after_s}, look for another
        data server of the list that answers (L{zkreg.link.hunt}); past
        L{data_server_timeout_s}, drop the connection whatever the others say.

        Only time this process ran counts: after a stall of our own, the frames not
        read yet are not the data server's silence (each check adds at most two
        check intervals).
        """
        now = self.clock.seconds()
        last, self._checked_at = self._checked_at, now
        if self._protocol is None or last is None:
            return
        self._silent_s += min(now - last, 2 * SILENCE_CHECK_S)
        if self._silent_s >= self.data_server_timeout_s:
            _log.warn(
                "data server {silent} silent for {seconds:.0f}s; reconnecting",
                silent=self.connected_to,
                seconds=self._silent_s,
            )
            self._silent_s = 0.0
            cast(Any, self._protocol.transport).abortConnection()
            return
        if self._silent_s < self.hunt_after_s or len(self._endpoints) < 2:
            return
        if self._hunt is not None and self._hunt.running:
            return
        protocol = self._protocol
        _log.warn(
            "data server {silent} silent for {seconds:.1f}s; looking for another that answers",
            silent=self.connected_to,
            seconds=self._silent_s,
        )
        last_zxid = self.tree.last_zxid if self.tree is not None else -1
        hello = wire.encode_message(
            wire.Hello(wire.PROTOCOL_VERSION, last_zxid, self.name, self.auth_schemes)
        )
        self._hunt = Hunt(
            self._endpoints,
            hello,
            self.clock,
            still_silent=lambda: self._protocol is protocol and self._silent_s >= self.hunt_after_s,
            found=self._found,
        )
        self._hunt.start()

    def _found(self, index: int, description: str) -> None:
        """Another data server answered while ours is silent: move to it."""
        _log.warn(
            "data server {found} answers while {silent} is silent: moving to it",
            found=description,
            silent=self.connected_to,
        )
        self.moves += 1
        self._endpoints.select(index)
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            cast(Any, protocol.transport).abortConnection()

    def _stop_hunting(self) -> None:
        if self._hunt is not None:
            self._hunt.stop()
            self._hunt = None

    # -- the replica -------------------------------------------------------------------

    def _sync_start(self, message: Any) -> None:
        self.data_server_zxid = max(self.data_server_zxid, message.zxid)
        if message.mode == wire.SYNC_DIFF and self.tree is not None:
            _log.info("resuming the replica after zxid {zxid:#x}", zxid=message.zxid)
            self._synced_now()
            return
        self._loading = empty_replica()

    def _load_nodes(self, nodes: Iterable[Any]) -> None:
        if self._loading is not None:
            add_snapshot_nodes(self._loading, nodes)

    def _loaded(self, message: Any) -> None:
        tree = self._loading
        if tree is None:
            return
        self._loading = None
        finish_replica(tree, message)
        old, self.tree = self.tree, tree
        _log.info(
            "replica loaded: {nodes} nodes at zxid {zxid:#x}",
            nodes=tree.node_count(),
            zxid=tree.last_zxid,
        )
        if old is not None:
            for listener in tuple(self._listeners):
                replaced = getattr(listener, "view_replaced", None)
                if replaced is not None:
                    try:
                        replaced(old, tree)
                    except Exception:
                        _log.failure("listener {listener!r} failed", listener=listener)
        self._synced_now()

    def _commit(self, record: bytes) -> None:
        """
        Apply one commit (its log record) to the replica and pass it on.  The watch
        events and the closed session are those of applying it here (apply is
        deterministic: they equal the data server's).
        """
        tree = self.tree
        if tree is None:
            return
        hdr, txn, _, _ = decode_logged_txn(record)
        zxid = hdr.zxid
        if zxid <= tree.last_zxid:
            return
        result = tree.apply(hdr, txn)
        commit = Commit(
            zxid,
            hdr.clientId,
            hdr.cxid,
            hdr.type,
            txn,
            tuple(result.events),
            result.closed_session,
            hdr.time,
        )
        if commit.zxid > self.data_server_zxid:
            self.data_server_zxid = commit.zxid
        if commit.closed_session:
            self._seq.pop(commit.closed_session, None)
            self._unanswered.pop(commit.closed_session, None)
        for listener in tuple(self._listeners):
            try:
                listener.committed(commit)
            except Exception:
                _log.failure("commit listener {listener!r} failed", listener=listener)

    # -- requests ----------------------------------------------------------------------

    def _call(
        self,
        opcode: int,
        build: Any,
        waiting: Any,
        session_id: int = 0,
        seq: int = 0,
        raw: bool = False,
    ) -> None:
        """
        Send a request built by C{build(tag)}, or hold it while no data server is
        linked; C{waiting} gets the answer.
        """
        if self.state == UNAVAILABLE:
            answer(waiting, Failure(DataTierUnavailable("no data server")))
            return
        self._next_tag = tag = (self._next_tag + 1) & 0x7FFFFFFF
        message = build(tag)
        if not isinstance(message, bytes):
            message = wire.encode_message(message)
        self._calls[tag] = _Call(opcode, message, waiting, session_id, seq, raw)
        protocol = self._protocol
        if protocol is not None and self._synced:
            protocol.send_encoded(message)
            self._sent_since_beat = True

    def _deferred_call(
        self, opcode: int, build: Any, session_id: int = 0, seq: int = 0
    ) -> Deferred:
        waiting: Deferred = Deferred()
        self._call(opcode, build, waiting, session_id, seq)
        return waiting

    def _answered(self, tag: int) -> _Call | None:
        call = self._calls.pop(tag, None)
        if call is not None and call.seq:
            unanswered = self._unanswered.get(call.session_id)
            if unanswered is not None:
                unanswered.pop(call.seq, None)
        return call

    def _result(self, tag: int, failed: bool, zxid: int, err: int, body: bytes | None) -> None:
        call = self._answered(tag)
        if call is None:
            return
        if failed:
            error = DataServerFailed((body or b"").decode("utf-8", "replace"))
            answer(call.waiting, Failure(error))
            return
        if err != 0:
            response = None
        elif call.raw:
            response = body
        else:
            response = wire.decode_response_body(call.opcode, body)
        answer(call.waiting, Outcome(zxid, err, response))

    def _granted(self, message: Any) -> None:
        call = self._answered(message.tag)
        if call is None:
            return
        if not message.present:
            answer(call.waiting, None)
        else:
            grant = SessionGrant(message.sessionId, message.passwd or b"", message.timeOut)
            answer(call.waiting, grant)

    # -- IDataLink ---------------------------------------------------------------------

    def create_session(self, timeout_ms: int) -> Deferred:
        """See L{IDataLink.create_session}."""
        return self._deferred_call(0, lambda tag: wire.CreateSession(tag, timeout_ms))

    def revalidate_session(self, session_id: int, password: bytes, timeout_ms: int) -> Deferred:
        """See L{IDataLink.revalidate_session}."""
        return self._deferred_call(
            0, lambda tag: wire.Revalidate(tag, session_id, password, timeout_ms)
        )

    def touch_sessions(self, session_ids: Iterable[int]) -> None:
        """
        See L{IDataLink.touch_sessions}; sent within L{TOUCH_DELAY_S}, batched, and
        while the link is down gathered until it is back.
        """
        self._touched.update(dict.fromkeys(session_ids))
        if self._touch_call is None and self._touched and self._synced:
            self._touch_call = self.clock.callLater(self.TOUCH_DELAY_S, self._send_touches)

    def _send_touches(self) -> None:
        self._touch_call = None
        protocol = self._protocol
        if protocol is None or not self._synced:
            return
        touched, self._touched = self._touched, {}
        protocol.send(wire.Touch(list(touched)))
        self._sent_since_beat = True

    def _beat(self) -> None:
        """Say we are alive when nothing else was sent since the last beat."""
        if not self._sent_since_beat and self._protocol is not None and self._synced:
            self._protocol.send(wire.Touch([]))
        self._sent_since_beat = False

    def close_session(self, session_id: int) -> Deferred:
        """See L{IDataLink.close_session}."""
        return self._deferred_call(-11, lambda tag: wire.CloseSession(tag, session_id), session_id)

    def submit(self, request: Any) -> Deferred:
        """
        See L{IDataLink.submit}.  A write is stamped with this link's origin and the
        session's next number, so that sending it again after an outage cannot apply
        it twice.
        """
        waiting: Deferred = Deferred()
        self._submit(request, waiting, False)
        return waiting

    def submit_with_callback(self, request: Any, callback: Any) -> None:
        """
        L{submit} without a Deferred, as L{zkreg.data.server.DataServer}'s: C{callback}
        gets the L{Outcome} or a L{Failure}, possibly before this returns.  The
        outcome's response is the reply body's bytes as the data server encoded them
        (the session server sends them on as they are), not a record.
        """
        self._submit(request, callback, True)

    def _submit(self, request: Any, waiting: Any, raw: bool) -> None:
        opcode = request.opcode
        body = wire.encode_request_body(opcode, request.record)
        session_id = request.session_id
        seq = acked = 0
        if opcode != codes.OP_SYNC and opcode not in READ_OPS:
            seq = self._seq.get(session_id, 0) + 1
            self._seq[session_id] = seq
            unanswered = self._unanswered.get(session_id)
            if unanswered is None:
                unanswered = self._unanswered[session_id] = OrderedDict()
            acked = next(iter(unanswered)) - 1 if unanswered else seq - 1
            unanswered[seq] = None
        origin = self.origin if seq else 0
        cxid = request.cxid
        auth = self._ids.get(request.auth)
        if auth is None:
            if len(self._ids) >= _IDS_KEPT:
                self._ids.clear()
            auth = self._ids[request.auth] = wire.encode_auth(request.auth)
        self._call(
            opcode,
            lambda tag: wire.submit_message(
                tag, session_id, cxid, opcode, auth, body, origin, seq, acked
            ),
            waiting,
            session_id,
            seq,
            raw,
        )

    def subscribe(self, listener: Any) -> None:
        """See L{IDataLink.subscribe}."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Any) -> None:
        """See L{IDataLink.unsubscribe}."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def read_view(self) -> DataTree:
        """The replica tree (once L{ready} has fired); replaced after a snapshot."""
        assert self.tree is not None, "the data link is not ready yet"
        return self.tree

    # -- facts for srvr / mntr ---------------------------------------------------------

    @property
    def held(self) -> int:
        """Requests waiting for an answer (held while the link is down)."""
        return len(self._calls)

    def zxid_lag(self) -> int:
        """How many zxids the replica is behind the data server (as of its last beat)."""
        if self.tree is None or self.data_server_zxid < 0:
            return 0
        return max(0, self.data_server_zxid - self.tree.last_zxid)


def connect_data_link(endpoint: Any, clock: Any = None, **options: Any) -> Deferred:
    """
    Start a L{TCPDataLink} to one data server (or a list, see L{parse_data_servers}).

    @return: a Deferred firing with the link once its replica is loaded.
    """
    link = TCPDataLink(endpoint, clock=clock, **options)
    return link.start()
