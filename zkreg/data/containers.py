"""
Which containers and TTL nodes are due for deletion (ZooKeeper's C{ContainerManager}).

  - a container with no children is deleted once it has ever had one (stored
    cversion > 0), so a container is not removed between its creation and its first
    child; with C{max_never_used_ms} set, an unused container also goes once its
    mtime is that old (C{znode.container.maxNeverUsedIntervalMs}, 0 = never);
  - a TTL node with no children is deleted once more than its TTL has passed since
    its mtime (its last setData, or its creation).

The data server submits a deleteContainer request for each candidate; prep re-checks
them against the writes in flight, so a child created meanwhile saves the node.
Pure: the time is a parameter.
"""

from __future__ import annotations

from zkreg.data.codes import EPHEMERAL_TTL, ephemeral_type, ttl_of
from zkreg.data.tree import DataTree


def deletion_candidates(tree: DataTree, now_ms: int, max_never_used_ms: int = 0) -> list[str]:
    """
    @param now_ms: the wall-clock time in ms (the scale of the nodes' mtime).
    @return: the paths to delete with deleteContainer requests, containers first.
    """
    candidates = []
    nodes = tree.nodes
    for path in tree.containers:
        node = nodes.get(path)
        if node is None or node.children:
            continue
        if node.cversion > 0:
            candidates.append(path)
        elif max_never_used_ms and now_ms - node.mtime > max_never_used_ms:
            candidates.append(path)
    for path in tree.ttls:
        node = nodes.get(path)
        if node is None or node.children:
            continue
        owner = node.ephemeral_owner
        if ephemeral_type(owner, tree.extended_types) != EPHEMERAL_TTL:
            continue
        ttl = ttl_of(owner)
        if ttl and now_ms - node.mtime > ttl:
            candidates.append(path)
    return candidates
