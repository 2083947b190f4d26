"""
The data server's side of the TCP data link: serves one L{DataServer} to any number
of session servers.

Each session server connects, says which zxid its replica has (L{wire.Hello}), and is
brought up to date either with the commits after that zxid, when the recent-commit
ring still holds them (L{CommitFanout}), or with a snapshot in chunks, then the live
commit stream.  A large snapshot is written by a forked child straight to the
connection's socket, so the data server's reactor never stalls and its memory does
not grow with the tree (the child sees the tree as it was at the fork, copy on write);
the commits of meanwhile are held for that connection and follow the snapshot.  Over a
TLS link the child writes into a socket pair instead, and this process relays its
bytes into the TLS transport under flow control (only encryption is left on the
reactor, a read at a time).

Each commit is encoded once for every connection.  A write's commit goes out before
its result on the same connection, so a session server's replica holds a write
before its writer hears of it.

Liveness, both ways: the data server sends a L{wire.Beat} every L{BEAT_S}, a session
server a L{wire.Touch} (empty if need be); a session server silent for
C{session_server_timeout_s} is dropped (Nacos Distro's verify).  Dropping it closes no
session: its sessions expire on their own timeouts, unless their clients moved to
another session server that touches them.
"""

from __future__ import annotations

import ctypes
import gc
import os
import select
import signal
import socket
import time
from collections import deque
from functools import partial
from typing import Any, cast

from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from zkreg.data.messages import Commit, Outcome, Request, SessionGrant, WriteStamp
from zkreg.data.server import DataServer
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import encode_txn
from zkreg.interfaces import ICommitListener
from zkreg.link import wire
from zkreg.proto.jute import DecodeError
from zkreg.proto.records import TxnHeader
from zkreg.tls import handshake_refusal

__all__ = ["BEAT_S", "CommitFanout", "DataLinkServerFactory"]

#: Largest frame accepted: a node's data (1 MB by default) plus its path and ACL, or a
#: multi of many such ops.
MAX_FRAME = 64 * 1024 * 1024

#: How often each side says it is alive.
BEAT_S = 0.5

#: A session server silent this long is dropped.
SESSION_SERVER_TIMEOUT_S = 10.0

#: Trees up to this many nodes are sent inline (one reactor turn of a few ms);
#: larger ones by a forked child.
INLINE_SNAPSHOT_NODES = 5_000

#: Nodes per L{wire.SnapChunk}.
CHUNK_NODES = 1_000

_log = Logger(namespace="zkreg.link.serve")

_PR_SET_PDEATHSIG = 1
try:
    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _PRCTL = None


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


def commit_frame(commit: Commit) -> bytes:
    """
    The frame of a commit on the stream: its log record as the sequencer encoded it
    (the events are not sent, a replica gets them by applying the txn).
    """
    record = commit.record
    if record is None:
        record = encode_txn(
            TxnHeader(commit.session_id, commit.cxid, commit.zxid, commit.time, commit.txn_type),
            commit.txn,
        )
    return wire.commit_frame(record)


def snapshot_frames(tree: DataTree) -> Any:
    """
    @return: an iterator of the frames of a snapshot of C{tree}: L{wire.SyncStart},
        the L{wire.SnapChunk}s, L{wire.SnapEnd}.
    """
    yield wire.encode_frame(wire.SyncStart(wire.SYNC_SNAPSHOT, tree.last_zxid))
    chunk: list[wire.SnapNode] = []
    for path, node in tree.iter_nodes():
        chunk.append(
            wire.SnapNode(
                path,
                node.data,
                list(node.acl),
                node.czxid,
                node.mzxid,
                node.ctime,
                node.mtime,
                node.version,
                node.cversion,
                node.aversion,
                node.ephemeral_owner,
                node.pzxid,
            )
        )
        if len(chunk) >= CHUNK_NODES:
            yield wire.encode_frame(wire.SnapChunk(chunk))
            chunk = []
    if chunk:
        yield wire.encode_frame(wire.SnapChunk(chunk))
    sessions = [wire.SessionEntry(sid, timeout) for sid, timeout in tree.sessions.items()]
    yield wire.encode_frame(wire.SnapEnd(tree.last_zxid, tree.extended_types, sessions))


def _write_all(fd: int, data: bytes, patience_s: float) -> None:
    """Write all of C{data} to a non-blocking socket, waiting while it is full."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            _, writable, _ = select.select([], [fd], [], patience_s)
            if not writable:
                raise TimeoutError("the session server stopped reading") from None
            continue
        view = view[written:]


def _unfreeze(result: Any) -> Any:
    """The snapshot child is gone: let the collector see every object again."""
    gc.unfreeze()
    return result


#: How far "every other replica" has applied when there is none to wait for.
_NO_LIMIT = 1 << 64


class _SnapshotRelay(Protocol):
    """
    This process's end of the socket pair a snapshot child writes into: every read
    goes into the TLS transport of the session server's link, whose producer this
    end is (the TLS transport pauses it while its own buffer is full).

    @ivar drained: fired once the child closed its end and every byte was relayed.
    """

    def __init__(self, link_transport: Any) -> None:
        self.link_transport = link_transport
        self.drained: Deferred = Deferred()
        self._producing = False

    def connectionMade(self) -> None:
        self.link_transport.registerProducer(self.transport, True)
        self._producing = True

    def dataReceived(self, data: bytes) -> None:
        self.link_transport.write(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._release()
        if not self.drained.called:
            self.drained.callback(None)

    def stop(self) -> None:
        """The link is gone: stop relaying (the child, killed, writes no more)."""
        self._release()
        if self.transport is not None:
            cast(Any, self.transport).loseConnection()

    def _release(self) -> None:
        if self._producing:
            self._producing = False
            self.link_transport.unregisterProducer()


class _SnapshotRelayFactory(Factory):
    def __init__(self, relay: _SnapshotRelay) -> None:
        self.relay = relay

    def buildProtocol(self, addr: Any) -> _SnapshotRelay:
        return self.relay


@implementer(ICommitListener)
class CommitFanout:
    """
    Encodes each commit once, sends it to every connection, and keeps the recent ones
    so a reconnecting session server can resume from its zxid.

    @ivar floor: every commit after this zxid is in the ring.
    """

    def __init__(
        self,
        server: DataServer,
        max_commits: int = 200_000,
        max_bytes: int = 64 << 20,
        prefill: int = 20_000,
    ) -> None:
        """
        @param prefill: how many of the log's last commits to read back at start.
        """
        self.server = server
        self.floor = server.last_zxid
        self._ring: deque[tuple[int, bytes]] = deque()
        self._bytes = 0
        self._max_commits = max_commits
        self._max_bytes = max_bytes
        self.connections: dict[_ServerProtocol, None] = {}
        self._prefill(prefill)
        server.subscribe(self)

    def _prefill(self, count: int) -> None:
        """
        Fill the ring with up to C{count} of the last commits in the log, so session
        servers that followed this data server before it restarted resume from their
        zxid instead of loading a snapshot.  The frames carry no events: a replica
        gets them from applying the txn.
        """
        last = self.server.last_zxid
        if count <= 0 or last <= 0:
            return
        after = max((last >> 32) << 32, last - count)
        first = None
        try:
            for zxid, record in self.server.log.replay(after):
                if zxid > last:
                    break
                frame = wire.commit_frame(record)
                self._ring.append((zxid, frame))
                self._bytes += len(frame)
                if first is None:
                    first = zxid
        except Exception:
            _log.failure("reading the log's last commits; session servers will get snapshots")
            self._ring.clear()
            self._bytes = 0
            return
        if first is not None and self._ring[-1][0] == last:
            self.floor = first - 1
        else:
            self._ring.clear()
            self._bytes = 0

    def committed(self, commit: Commit) -> None:
        frame = commit_frame(commit)
        ring = self._ring
        ring.append((commit.zxid, frame))
        self._bytes += len(frame)
        while ring and (len(ring) > self._max_commits or self._bytes > self._max_bytes):
            zxid, old = ring.popleft()
            self._bytes -= len(old)
            self.floor = zxid
        for connection in self.connections:
            connection.out(frame)

    def frames_after(self, zxid: int) -> list[bytes] | None:
        """
        @return: the frames of every commit after C{zxid}, or L{None} when the ring
            does not reach back that far (or C{zxid} is ahead of this server).
        """
        if zxid < self.floor or zxid > self.server.last_zxid:
            return None
        return [frame for commit_zxid, frame in self._ring if commit_zxid > zxid]


class _ServerProtocol(Int32StringReceiver, TimeoutMixin):
    """One session server's connection to the data server."""

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
        self._relay: _SnapshotRelay | None = None
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

    def _fork_snapshot(self, fd: int) -> None:
        """
        Have a child write the snapshot to C{fd} (the socket, or the socket pair of
        L{_fork_snapshot_through_tls}); hold the commits meanwhile.
        """
        self._held = []
        self.factory.fanout.connections[self] = None
        tree = self.server.tree
        zxid = tree.last_zxid
        nodes = tree.node_count()
        parent = os.getpid()
        forking = time.perf_counter()
        # Objects the collector would visit while the child runs would be copied
        # page by page (copy on write), stalling the reactor: keep them out of its
        # reach until the child is done.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            code = 1
            try:
                gc.disable()  # the collector would touch (and so copy) every page
                if _PRCTL is not None:
                    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
                    if os.getppid() != parent:
                        os._exit(3)
                for frame in snapshot_frames(tree):
                    _write_all(fd, frame, 30.0)
                code = 0
            except BaseException as error:  # noqa: BLE001 - report and exit, never return
                try:
                    os.write(2, f"zkreg link snapshot child failed: {error!r}\n".encode())
                except OSError:
                    pass
            finally:
                os._exit(code)
        paused_ms = (time.perf_counter() - forking) * 1000
        self._child = pid
        _log.info(
            "session server {name} joins: snapshot of {nodes} nodes at zxid {zxid:#x} "
            "written by pid {pid} (fork paused the reactor {ms:.1f} ms)",
            name=self.name,
            nodes=nodes,
            zxid=zxid,
            pid=pid,
            ms=paused_ms,
        )
        waited: Deferred = threads.deferToThread(os.waitpid, pid, 0)
        waited.addBoth(_unfreeze)
        waited.addCallback(self._snapshot_written, nodes)
        waited.addErrback(lambda reason: _log.failure("snapshot child", reason))

    def _fork_snapshot_through_tls(self) -> None:
        """
        The snapshot over a TLS link: a forked child writes its frames (as over TCP)
        into a socket pair, and this process relays them into the TLS transport as
        they come, the pair being the TLS transport's producer: when the session
        server reads slowly, the relay stops reading the pair and the child waits.
        Only encryption is left on the reactor, in reads of the pair's size.
        """
        from twisted.internet import reactor

        ours, childs = socket.socketpair()
        childs.setblocking(False)
        relay = _SnapshotRelay(cast(Any, self.transport))
        self._relay = relay
        try:
            self._fork_snapshot(childs.fileno())
        finally:
            childs.close()
        try:
            cast(Any, reactor).adoptStreamConnection(
                ours.fileno(), socket.AF_UNIX, _SnapshotRelayFactory(relay)
            )
        finally:
            ours.close()  # the reactor holds its own duplicate

    def _snapshot_written(self, waited: tuple[int, int], nodes: int) -> Any:
        self._child = None
        relay, self._relay = self._relay, None
        if relay is not None:
            # Over TLS: the child is gone, its frames may still be on their way
            # through the relay; come back once they are all in the TLS transport.
            return relay.drained.addCallback(lambda _: self._snapshot_done(waited, nodes))
        return self._snapshot_done(waited, nodes)

    def _snapshot_done(self, waited: tuple[int, int], nodes: int) -> None:
        held, self._held = self._held, None
        if held is None:  # the connection is gone
            return
        status = waited[1]
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            _log.warn(
                "snapshot for session server {name} failed (child status {status:#x})",
                name=self.name,
                status=status,
            )
            cast(Any, self.transport).abortConnection()
            return
        _log.info(
            "session server {name} joined: {nodes} nodes sent, then {held} commits held",
            name=self.name,
            nodes=nodes,
            held=len(held),
        )
        cast(Any, self.transport).writeSequence(held)
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

    def buildProtocol(self, addr: Any) -> _ServerProtocol:
        if self._beats is None:
            self._beats = LoopingCall(self._beat)
            self._beats.clock = self.clock
            self._beats.start(BEAT_S, now=False)
        protocol = _ServerProtocol(self)
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
