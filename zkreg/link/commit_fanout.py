"""
The commit fan-out of the data link: each commit encoded once and sent to every
session server's connection, and the ring of recent commits a reconnecting session
server resumes from (L{CommitFanout}).

It is separate from the link protocol (L{zkreg.link.serve}) because it serves all the
connections at once, as the data server's commit listener: a connection only joins
and leaves its set.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from twisted.logger import Logger
from zope.interface import implementer

from zkreg.data.messages import Commit
from zkreg.data.server import DataServer
from zkreg.data.txncodec import encode_txn
from zkreg.interfaces import ICommitListener
from zkreg.link import wire
from zkreg.proto.records import TxnHeader

if TYPE_CHECKING:
    from zkreg.link.serve import DataLinkServerProtocol

__all__ = ["CommitFanout", "commit_frame"]

#: The data link server's log, under its name from before the split.
_log = Logger(namespace="zkreg.link.serve")


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
        self.connections: dict[DataLinkServerProtocol, None] = {}
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
