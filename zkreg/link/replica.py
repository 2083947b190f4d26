"""
The session server's replica, as its data link (L{zkreg.link.tcp.TCPDataLink}) keeps
it: brought up to date on each connection (the commits after its zxid, or a snapshot
in chunks, loaded into a new tree by L{zkreg.link.replica_load} and swapped for the
old one), then fed the commit stream, each commit applied here and passed on to the
listeners; and, for a session process, how far it has applied, told back to the data
server.

It is separate from the link's connection (L{zkreg.link.tcp}) because it owns the
read view, which the connection only asks for its zxid.  Applying a commit is the hot
path of every write: its code is tuned (see bench/README.md), not to be reshaped
lightly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from zkreg.data.messages import Commit
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import decode_logged_txn
from zkreg.link import wire
from zkreg.link.replica_load import add_snapshot_nodes, empty_replica, finish_replica
from zkreg.link.states import LOG_NAMESPACE

if TYPE_CHECKING:
    from zkreg.link.tcp import LinkProtocol

_log = Logger(namespace=LOG_NAMESPACE)


class LinkedReplica:
    """
    The replica part of L{zkreg.link.tcp.TCPDataLink} (a mixin: it is fed by the
    link's connection and tells the link when it is synced).

    Expects from the class it is mixed into: the attributes declared below
    (initialised by C{TCPDataLink.__init__}), and C{_synced_now} of C{TCPDataLink}.
    """

    tree: DataTree | None
    data_server_zxid: int
    acknowledge_applied: bool
    _protocol: LinkProtocol | None
    _synced: bool
    #: the tree a snapshot is being loaded into, until its end
    _loading: DataTree | None
    #: the last zxid acknowledged on the current connection
    _acknowledged: int
    _listeners: list[Any]
    _seq: dict[int, int]
    _unanswered: dict[int, OrderedDict[int, None]]

    if TYPE_CHECKING:

        def _synced_now(self) -> None: ...

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

    def read_view(self) -> DataTree:
        """The replica tree (once L{ready} has fired); replaced after a snapshot."""
        assert self.tree is not None, "the data link is not ready yet"
        return self.tree

    # -- facts for srvr / mntr ---------------------------------------------------------

    def zxid_lag(self) -> int:
        """How many zxids the replica is behind the data server (as of its last beat)."""
        if self.tree is None or self.data_server_zxid < 0:
            return 0
        return max(0, self.data_server_zxid - self.tree.last_zxid)
