"""
The snapshot transfer to a catching-up session server: the frames of a snapshot
(L{snapshot_frames}), and the forked child that writes them when the tree is large
(L{SnapshotTransfer}, mixed into the data link's per-connection protocol).

A large snapshot is written by a forked child straight to the connection's socket, so
the data server's reactor never stalls and its memory does not grow with the tree (the
child sees the tree as it was at the fork, copy on write); the commits of meanwhile are
held for that connection and follow the snapshot.  Over a TLS link the child writes
into a socket pair instead, and this process relays its bytes into the TLS transport
under flow control (L{SnapshotRelay}; only encryption is left on the reactor, a read at
a time).

It is separate from the link protocol (L{zkreg.link.serve}) because it is a different
job with its own machinery (fork, child process, socket pair, relay): a session server
that resumes from the recent-commit ring (L{zkreg.link.commit_fanout}) never gets here,
and the protocol's request handling never touches it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import select
import signal
import socket
import time
from typing import Any, cast

from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from zkreg.data.server import DataServer
from zkreg.data.tree import DataTree
from zkreg.link import wire

__all__ = [
    "CHUNK_NODES",
    "INLINE_SNAPSHOT_NODES",
    "SnapshotRelay",
    "SnapshotTransfer",
    "snapshot_frames",
]

#: Trees up to this many nodes are sent inline (one reactor turn of a few ms);
#: larger ones by a forked child.
INLINE_SNAPSHOT_NODES = 5_000

#: Nodes per L{wire.SnapChunk}.
CHUNK_NODES = 1_000

#: The data link server's log, under its name from before the split.
_log = Logger(namespace="zkreg.link.serve")

_PR_SET_PDEATHSIG = 1
try:
    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _PRCTL = None


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
                *node.persisted_fields(),
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


class SnapshotRelay(Protocol):
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
    def __init__(self, relay: SnapshotRelay) -> None:
        self.relay = relay

    def buildProtocol(self, addr: Any) -> SnapshotRelay:
        return self.relay


class SnapshotTransfer:
    """
    The forked snapshot transfer of L{zkreg.link.serve.DataLinkServerProtocol} (a
    mixin: it shares the connection's state through C{self}).

    Expects from the class it is mixed into: the attributes declared below
    (initialised by C{DataLinkServerProtocol.__init__}, whose C{connectionLost} kills
    the child and stops the relay), and its C{factory} (a
    L{zkreg.link.serve.DataLinkServerFactory}, whose C{fanout} gets the connection).
    """

    #: the connection's factory (typed as L{Protocol} types it)
    factory: Any
    transport: ITransport | None
    server: DataServer
    name: str
    live: bool
    #: Frames held while a forked child writes the snapshot; L{None} otherwise.
    _held: list[bytes] | None
    _child: int | None
    #: Over TLS, what relays the child's snapshot into the TLS transport.
    _relay: SnapshotRelay | None

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
        relay = SnapshotRelay(cast(Any, self.transport))
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
