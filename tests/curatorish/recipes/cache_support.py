"""
What the cache tests share: the server's truth about a subtree, and listeners that
replay a cache's events into a map, so a test can check that the events alone (none
missed, none out of order) rebuild exactly what the cache holds.
"""

from __future__ import annotations

import threading
from typing import Any

from curatorish.errors import NoNodeError
from curatorish.recipes import (
    ChildData,
    CuratorCacheListener,
    CuratorCacheListenerType,
    PathChildrenCacheEventType,
    TreeCacheEventType,
)

#: What the tests compare of a node: its data and the zxids naming its version.
Snapshot = dict[str, tuple[bytes | None, int, int]]


def summary(node: ChildData) -> tuple[bytes | None, int, int]:
    return (node.data, node.stat.czxid, node.stat.mzxid)


def snapshot(nodes: Any) -> Snapshot:
    return {node.path: summary(node) for node in nodes}


def server_tree(client: Any, root: str, max_depth: int | None = None) -> Snapshot:
    """The subtree at C{root} as the server has it now (read with a blocking client)."""
    found: Snapshot = {}

    def visit(path: str, depth: int) -> None:
        try:
            data, stat = client.get_data(path)
            children = client.get_children(path)
        except NoNodeError:
            return
        found[path] = (data, stat.czxid, stat.mzxid)
        if max_depth is None or depth < max_depth:
            for name in children:
                visit(path.rstrip("/") + "/" + name, depth + 1)

    visit(root, 0)
    return found


class Replay:
    """
    Applies events to a map, failing (recording an error) on any event that does not
    fit the map as it stands: a creation of a known node, a change or deletion of an
    unknown one, or an C{old} that is not what the map holds.
    """

    def __init__(self) -> None:
        self.nodes: Snapshot = {}
        self.errors: list[str] = []
        self.initialized = threading.Event()
        self.count = 0
        self._lock = threading.Lock()

    def created(self, new: ChildData) -> None:
        with self._lock:
            self.count += 1
            if new.path in self.nodes:
                self.errors.append(f"created twice: {new.path}")
            self.nodes[new.path] = summary(new)

    def changed(self, old: ChildData | None, new: ChildData) -> None:
        with self._lock:
            self.count += 1
            if new.path not in self.nodes:
                self.errors.append(f"changed before created: {new.path}")
            elif old is not None and self.nodes[new.path] != summary(old):
                self.errors.append(f"changed from a state never reported: {new.path}")
            self.nodes[new.path] = summary(new)

    def deleted(self, old: ChildData) -> None:
        with self._lock:
            self.count += 1
            if old.path not in self.nodes:
                self.errors.append(f"deleted unknown: {old.path}")
            elif self.nodes[old.path] != summary(old):
                self.errors.append(f"deleted a state never reported: {old.path}")
            self.nodes.pop(old.path, None)
            below = old.path + "/"
            orphans = [path for path in self.nodes if path.startswith(below)]
            if orphans:
                self.errors.append(f"deleted {old.path} before its children {orphans}")

    # -- adapters for each cache's listener shape -------------------------------------

    def curator_cache_listener(self) -> CuratorCacheListener:
        replay = self

        class Listener(CuratorCacheListener):
            def event(self, type: Any, old_data: Any, data: Any) -> None:
                if type is CuratorCacheListenerType.NODE_CREATED:
                    replay.created(data)
                elif type is CuratorCacheListenerType.NODE_CHANGED:
                    replay.changed(old_data, data)
                else:
                    replay.deleted(old_data)

            def initialized(self) -> None:
                replay.initialized.set()

        return Listener()

    def tree_cache_listener(self, _client: Any, event: Any) -> None:
        if event.type is TreeCacheEventType.NODE_ADDED:
            self.created(event.data)
        elif event.type is TreeCacheEventType.NODE_UPDATED:
            self.changed(event.old_data, event.data)
        elif event.type is TreeCacheEventType.NODE_REMOVED:
            self.deleted(event.data)
        elif event.type is TreeCacheEventType.INITIALIZED:
            self.initialized.set()

    def path_children_listener(self, _client: Any, event: Any) -> None:
        if event.type is PathChildrenCacheEventType.CHILD_ADDED:
            self.created(event.data)
        elif event.type is PathChildrenCacheEventType.CHILD_UPDATED:
            self.changed(None, event.data)
        elif event.type is PathChildrenCacheEventType.CHILD_REMOVED:
            self.deleted(event.data)
        elif event.type is PathChildrenCacheEventType.INITIALIZED:
            self.initialized.set()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return dict(self.nodes)
