"""
A read replica of the tree, fed by the commit stream (for split session servers).

A joining replica starts from a copy of the tree (L{copy_tree}, or a snapshot) and then
applies every L{Commit} after that copy's zxid: applying is deterministic, so the
replica stays equal to the data server's tree, digest for digest.  Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from zkreg.data.node import Node
from zkreg.data.tree import DataTree
from zkreg.interfaces import ICommitListener
from zkreg.proto.records import TxnHeader


def copy_tree(tree: DataTree) -> DataTree:
    """
    An independent copy of C{tree} (node data bytes are shared: they are immutable).
    """
    copy = DataTree(tree.extended_types)
    nodes: dict[str, Node] = {}
    for path, node in tree.iter_nodes():
        twin = Node.restored(
            path,
            node.data,
            copy.intern_acl(node.acl),
            *node.persisted_fields(),
        )
        for child_path in node.child_paths():
            twin.add_child(child_path)
        nodes[path] = twin
    copy.nodes = nodes
    copy.ephemerals = {owner: dict(paths) for owner, paths in tree.ephemerals.items()}
    copy.containers = dict(tree.containers)
    copy.ttls = dict(tree.ttls)
    copy.sessions = dict(tree.sessions)
    copy.last_zxid = tree.last_zxid
    copy.quotas.paths = set(tree.quotas.paths)
    return copy


@implementer(ICommitListener)
class ReplicaFeeder:
    """
    Applies the commit stream to a replica tree.

    @ivar tree: the replica (a read view for a session server).
    """

    def __init__(self, tree: DataTree) -> None:
        self.tree = tree

    def committed(self, commit: Any) -> None:
        """Apply one commit; commits the replica already holds are skipped."""
        if commit.zxid <= self.tree.last_zxid:
            return
        hdr = TxnHeader(commit.session_id, commit.cxid, commit.zxid, commit.time, commit.txn_type)
        self.tree.apply(hdr, commit.txn)
