"""
Quota bookkeeping, as ZooKeeper's DataTree keeps it (C{Quotas}, C{StatsTrack},
C{PathTrie}).

zkCli's C{setquota -n|-b PATH} creates C{/zookeeper/quota/PATH/zookeeper_limits} and
C{.../zookeeper_stats}.  From then on the server keeps the stats node's data equal to
C{count=N,bytes=M} for the subtree at PATH: creating the stats node recounts the
subtree, and every create, delete and setData below PATH adjusts it.  The stats node's
own stat does not move (ZooKeeper writes the data directly, without a txn).  Quotas are
not enforced (ZooKeeper's default).

L{QuotaTracker} is owned by a L{zkreg.data.tree.DataTree}; it is pure and derived from
the tree, so L{QuotaTracker.rebuild} recomputes it from a loaded tree as ZooKeeper's
C{setupQuota} does after reading a snapshot.
"""

from __future__ import annotations

import re
from typing import Any

QUOTA_ROOT = "/zookeeper/quota"
LIMIT_NODE = "zookeeper_limits"
STAT_NODE = "zookeeper_stats"

_PAIRS_SEPARATOR = re.compile("[,;]+")
#: What Java's String.trim() removes.
_JAVA_TRIM = "".join(chr(code) for code in range(33))
_JAVA_LONG = re.compile(r"[+-]?[0-9]+\Z")


def _components(path: str) -> tuple[str, ...]:
    """PathTrie.split: the path's names, blank ones dropped."""
    return tuple(name for name in path.split("/") if name.strip(_JAVA_TRIM))


def parse_stats(data: bytes | None) -> dict[str, int]:
    """C{StatsTrack(byte[])}: C{count=1,bytes=2=;countHardLimit=5} to a dict."""
    stats: dict[str, int] = {}
    text = (data or b"").decode("utf-8", "replace")
    if not text:
        return stats
    for pair in _PAIRS_SEPARATOR.split(text):
        parts = pair.split("=")
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()  # Java's split drops trailing empty strings
        if len(parts) < 2:
            continue  # ZooKeeper would throw here; a malformed pair is skipped
        value = parts[1] or "-1"
        if _JAVA_LONG.match(value):
            stats[parts[0]] = int(value)
    return stats


def format_stats(stats: dict[str, int]) -> bytes:
    """C{StatsTrack.toString}: count and bytes first, other keys sorted after C{=;}."""
    text = "count=%d,bytes=%d" % (stats.get("count", -1), stats.get("bytes", -1))
    others = sorted(key for key in stats if key not in ("count", "bytes"))
    if others:
        text += "=" + "".join(";%s=%d" % (key, stats[key]) for key in others)
    return text.encode("utf-8")


class QuotaTracker:
    """
    The quota'd paths of one tree and the updates of their stats nodes.

    @ivar paths: the quota'd paths, as tuples of names (ZooKeeper's trie nodes with
        the property set).
    """

    def __init__(self, tree: Any) -> None:
        self._tree = tree
        self.paths: set[tuple[str, ...]] = set()

    @property
    def nodes(self) -> dict[str, Any]:
        """The tree's nodes (looked up each time: a loader may replace the dict)."""
        return self._tree.nodes

    # -- hooks called by the tree --------------------------------------------------------

    def created(self, parent_path: str, name: str, path: str, data: bytes | None) -> None:
        """After a node was created (DataTree.createNode's tail)."""
        if parent_path.startswith(QUOTA_ROOT):
            real = parent_path[len(QUOTA_ROOT) :]
            if name == LIMIT_NODE and real:
                self.paths.add(_components(real))
            elif name == STAT_NODE:
                self.recount(real)
        if self.paths:
            prefix = self.max_prefix(path)
            if prefix is not None:
                self.adjust(prefix, 0 if data is None else len(data), 1)

    def deleted(self, parent_path: str, name: str, path: str, data: bytes | None) -> None:
        """After a node was deleted (DataTree.deleteNode's tail)."""
        if name == LIMIT_NODE and parent_path.startswith(QUOTA_ROOT):
            self.forget(_components(parent_path[len(QUOTA_ROOT) :]))
        if self.paths:
            prefix = self.max_prefix(path)
            if prefix is not None:
                self.adjust(prefix, -(0 if data is None else len(data)), -1)

    def data_changed(self, path: str, old: bytes | None, new: bytes | None) -> None:
        """After a setData (DataTree.setData's tail)."""
        if self.paths:
            prefix = self.max_prefix(path)
            if prefix is not None:
                diff = (0 if new is None else len(new)) - (0 if old is None else len(old))
                self.adjust(prefix, diff, 0)

    # -- the trie ------------------------------------------------------------------------

    def max_prefix(self, path: str) -> str | None:
        """
        C{getMaxPrefixWithQuota}: the deepest quota'd path at or above C{path}, or
        L{None} (never the root).
        """
        names = _components(path)
        deepest = None
        paths = self.paths
        for depth in range(1, len(names) + 1):
            if names[:depth] in paths:
                deepest = depth
        if deepest is None:
            return None
        return "/" + "/".join(names[:deepest])

    def forget(self, names: tuple[str, ...]) -> None:
        """C{PathTrie.deletePath}: drops the trie node, so quota'd paths below go too."""
        if not names:
            return
        depth = len(names)
        self.paths = {p for p in self.paths if p[:depth] != names}

    # -- stats nodes ---------------------------------------------------------------------

    def adjust(self, prefix: str, bytes_diff: int, count_diff: int) -> None:
        """C{updateQuotaStat}."""
        node = self.nodes.get(QUOTA_ROOT + prefix + "/" + STAT_NODE)
        if node is None:
            return
        stats = parse_stats(node.data)
        stats["count"] = stats.get("count", -1) + count_diff
        stats["bytes"] = stats.get("bytes", -1) + bytes_diff
        old_size = len(node.data or b"")
        node.data = format_stats(stats)
        self._tree.data_size_changed(len(node.data) - old_size)

    def recount(self, path: str) -> None:
        """C{updateQuotaForPath}: count the subtree at C{path} into its stats node."""
        count = 0
        total = 0
        nodes = self.nodes
        stack = [path]
        while stack:
            current = stack.pop()
            node = nodes.get(current or "/")
            if node is None:
                continue
            count += 1
            total += 0 if node.data is None else len(node.data)
            stack.extend(node.child_paths())
        stat_node = nodes.get(QUOTA_ROOT + path + "/" + STAT_NODE)
        if stat_node is not None:
            old_size = len(stat_node.data or b"")
            stat_node.data = format_stats({"count": count, "bytes": total})
            self._tree.data_size_changed(len(stat_node.data) - old_size)

    def rebuild(self) -> None:
        """
        C{setupQuota}: find every limits node under /zookeeper/quota, recount its
        subtree and mark it quota'd (after loading a tree from a snapshot).
        """
        self.paths = set()
        if QUOTA_ROOT not in self.nodes:
            return
        suffix = "/" + LIMIT_NODE
        stack = [QUOTA_ROOT]
        while stack:
            path = stack.pop()
            node = self.nodes.get(path)
            if node is None:
                continue
            if not node.children:
                if path.endswith(suffix):
                    real = path[len(QUOTA_ROOT) : path.index(suffix)]
                    self.recount(real)
                    if real:
                        self.paths.add(_components(real))
                continue
            stack.extend(node.child_paths())
