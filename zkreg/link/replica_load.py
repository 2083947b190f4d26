"""
Building a session server's replica tree from a snapshot streamed over the data link
(L{zkreg.link.wire.SnapChunk} nodes, parents before children, then
L{zkreg.link.wire.SnapEnd}): the tree's indexes (children, ephemerals, containers,
TTLs, quotas) are rebuilt here, since the stream carries only the nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zkreg.data.codes import EPHEMERAL_CONTAINER, EPHEMERAL_NORMAL, EPHEMERAL_TTL, ephemeral_type
from zkreg.data.node import Node
from zkreg.data.tree import DataTree


def empty_replica() -> DataTree:
    """A tree with no node at all (not even the root), to load a snapshot into."""
    tree = DataTree()
    tree.nodes = {}
    return tree


def add_snapshot_nodes(tree: DataTree, nodes: Iterable[Any]) -> None:
    """Add one chunk's nodes (L{zkreg.link.wire.SnapNode}) to C{tree}."""
    all_nodes = tree.nodes
    intern_acl = tree.intern_acl
    for message in nodes:
        path = message.path
        node = Node.restored(
            path,
            message.data,
            intern_acl(message.acl or ()),
            message.czxid,
            message.mzxid,
            message.ctime,
            message.mtime,
            message.version,
            message.cversion,
            message.aversion,
            message.ephemeralOwner,
            message.pzxid,
        )
        all_nodes[path] = node
        if path != "/":
            cut = path.rfind("/")
            all_nodes[path[:cut] if cut > 0 else "/"].add_child(path)


def finish_replica(tree: DataTree, end: Any) -> None:
    """
    Complete a loaded tree with the snapshot's end (L{zkreg.link.wire.SnapEnd}): its
    sessions, last zxid and extended types, and the indexes derived from the nodes.
    """
    tree.extended_types = end.extendedTypes
    for path, node in tree.nodes.items():
        owner = node.ephemeral_owner
        if not owner:
            continue
        kind = ephemeral_type(owner, tree.extended_types)
        if kind == EPHEMERAL_NORMAL:
            tree.ephemerals.setdefault(owner, {})[path] = None
        elif kind == EPHEMERAL_CONTAINER:
            tree.containers[path] = None
        elif kind == EPHEMERAL_TTL:
            tree.ttls[path] = None
    tree.sessions = {entry.sessionId: entry.timeOut for entry in end.sessions or ()}
    tree.last_zxid = end.lastZxid
    tree.quotas.rebuild()
