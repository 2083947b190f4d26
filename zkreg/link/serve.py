"""
The data server's side of the TCP data link: serves one L{DataServer} to any number
of session servers, one L{DataLinkServerProtocol} per session server's connection.

Each session server connects, says which zxid its replica has (L{wire.Hello}), and is
brought up to date either with the commits after that zxid, when the recent-commit
ring still holds them (L{CommitFanout}, in L{zkreg.link.commit_fanout}), or with a
snapshot in chunks (L{zkreg.link.snapshot_transfer}: a large one is written by a
forked child), then the live commit stream.

A write's commit goes out before its result on the same connection, so a session
server's replica holds a write before its writer hears of it.

Liveness, both ways: the data server sends a L{wire.Beat} every L{BEAT_S}, a session
server a L{wire.Touch} (empty if need be); a session server silent for
C{session_server_timeout_s} is dropped (Nacos Distro's verify).  Dropping it closes no
session: its sessions expire on their own timeouts, unless their clients moved to
another session server that touches them.

L{CommitFanout} lives in L{zkreg.link.commit_fanout}; it is imported here too, and
stays in this module's C{__all__}, because it was public API of this module.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from functools import partial
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from zkreg.data.messages import Outcome, Request, SessionGrant, WriteStamp
from zkreg.data.server import DataServer
from zkreg.link import wire
from zkreg.link.commit_fanout import CommitFanout
from zkreg.link.snapshot_transfer import (
    INLINE_SNAPSHOT_NODES,
    SnapshotRelay,
    SnapshotTransfer,
    snapshot_frames,
)
from zkreg.proto.jute import DecodeError
from zkreg.tls import handshake_refusal

__all__ = ["BEAT_S", "CommitFanout", "DataLinkServerFactory"]

#: Largest frame accepted: a node's data (1 MB by default) plus its path and ACL, or a
#: multi of many such ops.
MAX_FRAME = 64 * 1024 * 1024

#: How often each side says it is alive.
BEAT_S = 0.5

#: A session server silent this long is dropped.
SESSION_SERVER_TIMEOUT_S = 10.0

_log = Logger(namespace="zkreg.link.serve")


def no_nagle(transport: Any) -> None:
    """
    Turn Nagle's algorithm off on a data-link connection (plain TCP or TLS over it):
    link frames are small and pipelined both ways, and a frame held back until the
    previous one is acknowledged stalls every session behind it (measured: with Nagle
    on, both processes sat a third idle under pipelined writes).  A Unix socket has
    no such option and is left alone.
    """
    set_no_delay = getattr(transport, "setTcpNoDelay", None)
    if set_no_delay is None:
        get_handle = getattr(transport, "getHandle", None)
        set_no_delay = getattr(get_handle(), "setTcpNoDelay", None) if get_handle else None
    if set_no_delay is not None:
        try:
            set_no_delay(True)
        except OSError:
            pass


#: How far "every other replica" has applied when there is none to wait for.
_NO_LIMIT = 1 << 64


class DataLinkServerProtocol(SnapshotTransfer, Int32StringReceiver, TimeoutMixin):
    """
    One session server's connection to the data server: its sync (a resume from the
    ring, an inline snapshot, or a forked one through L{SnapshotTransfer}), the
    requests it submits and their answers, and the frames it is sent.
    """

    MAX_LENGTH = MAX_FRAME

    def __init__(self, factory: DataLinkServerFactory) -> None:
        self.factory = factory
        self.server = factory.server
        self.callLater = factory.clock.callLater  # type: ignore[assignment]  # TimeoutMixin clock
        self.name = "?"
        #: the optional ACL schemes the session server knows (its L{wire.Hello})
        self.auth_schemes: frozenset[str] = frozenset()
        #: Frames held while a forked child writes the snapshot; L{None} otherwise.
        self._held: list[bytes] | None = None
        self._child: int | None = None
        #: Over TLS, what relays the child's snapshot into the TLS transport.
        self._relay: SnapshotRelay | None = None
        self.live = False
        #: The zxid this session server says it has applied (its L{wire.Beat}s), or
        #: L{None} before its first: only a session server that says so holds
        #: replies back (see L{DataLinkServerFactory.replies_wait_for_every_replica}).
        self.applied: int | None = None
        #: Replies held until every replica applied their zxid, and the frames after
        #: them: C{(zxid, frame)}, 0 for a frame that waits only for its turn.
        self._replies: deque[tuple[int, bytes]] = deque()

    # -- connection --------------------------------------------------------------------

    def connectionMade(self) -> None:
        no_nagle(self.transport)
        self.factory.links.add(self)
        self.setTimeout(self.factory.session_server_timeout_s)

    def connectionLost(self, reason: Failure | None = None) -> None:
        refusal = handshake_refusal(self.transport, reason) if not self.live else None
        if refusal is not None:
            _log.warn(
                "data link: TLS handshake with {peer} refused, connection closed: {refusal}",
                peer=str(cast(Any, self.transport).getPeer()),
                refusal=refusal,
            )
        self.factory.links.discard(self)
        self.setTimeout(None)
        self.factory.fanout.connections.pop(self, None)
        self._replies.clear()
        if self.applied is not None:
            self.applied = None
            self.factory.replica_applied()
        self.live = False
        self._held = None
        if self._child is not None:
            try:
                os.kill(self._child, signal.SIGKILL)
            except OSError:
                pass
        if self._relay is not None:
            self._relay.stop()
        _log.info("session server {name} disconnected", name=self.name)

    def timeoutConnection(self) -> None:
        _log.warn(
            "dropping session server {name}: silent for {seconds}s (its sessions expire "
            "on their own timeouts unless touched elsewhere)",
            name=self.name,
            seconds=self.factory.session_server_timeout_s,
        )
        cast(Any, self.transport).abortConnection()

    def out(self, frame: bytes) -> None:
        """
        Send one encoded frame, after the replies held back (L{_reply}): a commit
        must not reach the session server before the reply of an earlier write, or
        a client would see a later watch event before that reply.
        """
        if self._replies:
            self._replies.append((0, frame))
        else:
            self._write(frame)

    def _write(self, frame: bytes) -> None:
        """Send one encoded frame, or hold it while a snapshot is being written."""
        held = self._held
        if held is not None:
            held.append(frame)
        else:
            cast(Any, self.transport).write(frame)

    def send(self, message: Any) -> None:
        self.out(wire.encode_frame(message))

    def lengthLimitExceeded(self, length: int) -> None:
        _log.warn("data-link frame of {length} bytes is too long", length=length)
        cast(Any, self.transport).loseConnection()

    def dataReceived(self, data: bytes) -> None:
        # Once per read, not per frame: a read carries many frames under load.
        self.resetTimeout()
        Int32StringReceiver.dataReceived(self, data)

    def stringReceived(self, frame: bytes) -> None:
        try:
            message = wire.decode_message(frame)
        except DecodeError as error:
            _log.warn("undecodable data-link frame: {error}", error=error)
            cast(Any, self.transport).loseConnection()
            return
        kind = message.__class__
        if kind is wire.Submit:
            stamp = None
            if message.seq:
                stamp = WriteStamp(message.origin, message.seq, message.acked)
            request = Request(
                message.sessionId,
                message.cxid,
                message.opcode,
                wire.decode_request_body(message.opcode, message.body),
                tuple(message.auth or ()),
                stamp,
                self.auth_schemes,
            )
            self.server.submit_with_callback(
                request, partial(self._submitted, message.tag, request.opcode, stamp is not None)
            )
        elif kind is wire.Touch:
            if message.sessionIds:
                self.server.touch_sessions(message.sessionIds)
        elif kind is wire.CreateSession:
            self._grant(message.tag, self.server.create_session(message.timeOut))
        elif kind is wire.Revalidate:
            granted = self.server.revalidate_session(
                message.sessionId, message.passwd or b"", message.timeOut
            )
            self._grant(message.tag, granted)
        elif kind is wire.CloseSession:
            self._answer(message.tag, -11, self.server.close_session(message.sessionId), None)
        elif kind is wire.Hello:
            self._hello(message)
        elif kind is wire.Beat and self.factory.replies_wait_for_every_replica:
            if self.applied is None or message.lastZxid > self.applied:
                self.applied = message.lastZxid
                self.factory.replica_applied()
        else:
            _log.warn("unexpected data-link message {kind}", kind=kind.__name__)
            cast(Any, self.transport).loseConnection()

    # -- sync --------------------------------------------------------------------------

    def _hello(self, message: Any) -> None:
        if message.protocolVersion != wire.PROTOCOL_VERSION:
            _log.warn(
                "session server speaks data-link protocol {version}, not {ours}",
                version=message.protocolVersion,
                ours=wire.PROTOCOL_VERSION,
            )
            cast(Any, self.transport).loseConnection()
            return
        self.name = message.name or str(cast(Any, self.transport).getPeer())
        self.auth_schemes = frozenset(message.authSchemes or ())
        fanout = self.factory.fanout
        frames = fanout.frames_after(message.lastZxid) if message.lastZxid >= 0 else None
        if frames is not None:
            _log.info(
                "session server {name} resumes after zxid {zxid:#x}: {count} commits",
                name=self.name,
                zxid=message.lastZxid,
                count=len(frames),
            )
            self.send(wire.SyncStart(wire.SYNC_DIFF, message.lastZxid))
            for frame in frames:
                self.out(frame)
            self._go_live()
            return
        tree = self.server.tree
        fileno = getattr(self.transport, "fileno", None)
        if tree.node_count() <= INLINE_SNAPSHOT_NODES or fileno is None:
            for frame in snapshot_frames(tree):
                self.out(frame)
            _log.info(
                "session server {name} joined: snapshot of {nodes} nodes at zxid {zxid:#x}",
                name=self.name,
                nodes=tree.node_count(),
                zxid=tree.last_zxid,
            )
            self._go_live()
            return
        if ISSLTransport.providedBy(self.transport):
            self._fork_snapshot_through_tls()
        else:
            self._fork_snapshot(fileno())

    def _go_live(self) -> None:
        self.factory.fanout.connections[self] = None
        self.live = True

    # -- answers -----------------------------------------------------------------------

    def _submitted(self, tag: int, opcode: int, stamped: bool, result: Outcome | Failure) -> None:
        """
        Answer a Submit (or a CloseSession) with a Result frame; called by the data
        server without a Deferred (C{submit_with_callback}).
        """
        if isinstance(result, Failure):
            zxid = 0
            message = wire.Result(tag, True, 0, 0, result.getErrorMessage().encode())
            frame = wire.encode_frame(message)
        else:
            if stamped:
                self.factory.before_reply()
            body = None
            if result.err == 0 and result.response is not None:
                body = wire.encode_response_body(opcode, result.response)
            zxid = result.zxid if result.err == 0 else 0
            frame = wire.result_frame(tag, result.zxid, result.err, body)
        if self.factory.replies_wait_for_every_replica:
            self._reply(zxid, frame)
        else:
            self.out(frame)

    def _answer(self, tag: int, opcode: int, outcome: Deferred, stamp: WriteStamp | None) -> None:
        outcome.addBoth(partial(self._submitted, tag, opcode, stamp is not None))

    def _reply(self, zxid: int, frame: bytes) -> None:
        """
        Send a reply once every other replica that acknowledges has applied C{zxid},
        in the order the replies were made.  This session server's own replica has
        it already: the commit went out on this connection before the reply.
        """
        if not self._replies and zxid <= self.factory.applied_elsewhere(self):
            self._write(frame)
        else:
            self._replies.append((zxid, frame))

    def release_replies(self, applied_elsewhere: int) -> None:
        """
        Send the held frames up to the first reply whose zxid another replica has
        not applied yet.  Every commit up to a held reply's zxid went to each other
        replica before the reply was held (commits are published before replies are
        made), so each can apply and acknowledge it: the queues always drain.
        """
        replies = self._replies
        while replies and replies[0][0] <= applied_elsewhere:
            self._write(replies.popleft()[1])

    def _grant(self, tag: int, granted: Deferred) -> None:
        def answered(grant: SessionGrant | None) -> None:
            if grant is None:
                self.send(wire.Grant(tag, False, 0, None, 0))
            else:
                self.send(wire.Grant(tag, True, grant.session_id, grant.password, grant.timeout_ms))

        granted.addCallbacks(answered, lambda reason: self.send(wire.Grant(tag, False, 0, None, 0)))


class DataLinkServerFactory(Factory):
    """
    Serves a L{DataServer} to TCP data-link clients; listen on it with an endpoint.

    @ivar server: the data server.
    @ivar fanout: the L{CommitFanout}.
    @ivar links: the session servers connected now (for metrics).
    """

    def __init__(
        self,
        server: DataServer,
        clock: Any = None,
        session_server_timeout_s: float = SESSION_SERVER_TIMEOUT_S,
        prefill: int = 20_000,
    ) -> None:
        """
        @param prefill: how many of the log's last commits to keep for resuming
            session servers from the start (see L{CommitFanout}).
        """
        self.server = server
        self.clock = clock if clock is not None else server.clock
        self.session_server_timeout_s = session_server_timeout_s
        self.fanout = CommitFanout(server, prefill=prefill)
        self.links: set[Any] = set()
        self._beats: LoopingCall | None = None
        self._fault_after = _fault_from_environment()
        #: When true, a write's reply waits until every session server that reports
        #: what it applied (the session processes of C{--session-processes}) has
        #: applied its commit, so a read on any of them after the reply sees it, as
        #: on one ZooKeeper server.  Off for session servers of the split, which
        #: follow ZooKeeper's ensemble rule (a read elsewhere may lag; C{sync}).
        self.replies_wait_for_every_replica = False
        #: The acknowledging replica that applied least, how far it did, and how far
        #: the next least did: a reply to one waits for the least of the others.
        self._least: Any = None
        self._least_applied = _NO_LIMIT
        self._next_least_applied = _NO_LIMIT

    def buildProtocol(self, addr: Any) -> DataLinkServerProtocol:
        if self._beats is None:
            self._beats = LoopingCall(self._beat)
            self._beats.clock = self.clock
            self._beats.start(BEAT_S, now=False)
        protocol = DataLinkServerProtocol(self)
        protocol.factory = self
        return protocol

    def stopFactory(self) -> None:
        if self._beats is not None and self._beats.running:
            self._beats.stop()
        self._beats = None

    def _beat(self) -> None:
        frame = wire.encode_frame(wire.Beat(self.server.last_zxid))
        for connection in tuple(self.fanout.connections):
            if connection.live:
                connection.out(frame)

    def applied_elsewhere(self, link: Any) -> int:
        """@return: how far every acknowledging replica but C{link}'s has applied."""
        return self._next_least_applied if link is self._least else self._least_applied

    def replica_applied(self) -> None:
        """A replica said it applied more, or left: release the replies now due."""
        least: Any = None
        least_applied = next_least_applied = _NO_LIMIT
        for link in self.links:
            applied = link.applied
            if applied is None:
                continue
            if applied < least_applied:
                least, least_applied, next_least_applied = link, applied, least_applied
            elif applied < next_least_applied:
                next_least_applied = applied
        self._least = least
        self._least_applied = least_applied
        self._next_least_applied = next_least_applied
        for link in tuple(self.links):
            link.release_replies(self.applied_elsewhere(link))

    def connected_session_servers(self) -> list[str]:
        """@return: the names of the session servers linked now."""
        return [connection.name for connection in self.fanout.connections]

    def before_reply(self) -> None:
        """
        Test hook: with C{ZKREG_TEST_EXIT_BEFORE_REPLY=N} in the environment the
        process dies (as by kill -9) just before replying to its Nth stamped write,
        which is then committed and durable but unanswered.
        """
        if self._fault_after is None:
            return
        self._fault_after -= 1
        if self._fault_after <= 0:
            _log.critical("test fault: exiting between a commit and its reply")
            os._exit(137)


def _fault_from_environment() -> int | None:
    value = os.environ.get("ZKREG_TEST_EXIT_BEFORE_REPLY")
    if not value:
        return None
    try:
        return max(int(value), 1)
    except ValueError:
        return None
