"""
Curator's older caches, as views over the same engine as L{CuratorCache}
(L{curatorish.recipes.mirror.TreeMirror}): L{TreeCache} (a subtree, to a maximum
depth), L{PathChildrenCache} (the children of one node) and L{NodeCache} (one node).

They run on one-shot watches, as Curator's do (so they work with any ZooKeeper), and
share the engine's guarantees: every change reported once, in order, and a full
reconciliation with the server after each reconnect, so nothing changed during a
disconnection or a session loss is missed.

Listeners are called C{listener(client, event)} (Curator's C{childEvent}), with the
client the cache was built with; L{NodeCache}'s as C{listener()} (C{nodeChanged}).
On the blocking face they run on the blocking client's event thread.

On C{SUSPENDED} and C{LOST} the caches keep their contents and tell the listeners
(C{CONNECTION_SUSPENDED}, C{CONNECTION_LOST}); on C{RECONNECTED} they say so, then
report what changed meanwhile as ordinary events.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.framework import CuratorFramework
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.recipes.listen import Listenable
from curatorish.recipes.mirror import CHANGED, CREATED, DELETED, ChildData, TreeMirror
from curatorish.state import ConnectionState
from zkreg.proto.consts import CreateMode

Client = CuratorFramework | BlockingCuratorFramework


class _ConnectionEvents(Recipe):
    """What the three caches share: a face, listeners, connection-state events."""

    #: The event types of this cache for SUSPENDED, RECONNECTED, LOST.
    _connection_types: dict[ConnectionState, Any] = {}

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self._face_client = client
        self._listeners: Listenable[Callable[..., Any]] = Listenable(self.listener_caller)

    def get_listenable(self) -> Listenable[Callable[..., Any]]:
        """The listeners (C{get_listenable().add_listener(listener)})."""
        return self._listeners

    def _publish(self, event: Any) -> None:
        self._listeners.call(lambda listener: listener, self._face_client, event)

    def _watch_connection(self) -> None:
        self.client.add_connection_state_listener(self._connection_changed)

    def _unwatch_connection(self) -> None:
        self.client.remove_connection_state_listener(self._connection_changed)

    def _connection_changed(self, _client: object, state: ConnectionState) -> None:
        event_type = self._connection_types.get(state)
        if event_type is not None:
            self._publish(self._connection_event(event_type))

    def _connection_event(self, event_type: Any) -> Any:
        raise NotImplementedError


# -- TreeCache ------------------------------------------------------------------------


class TreeCacheEventType(enum.Enum):
    """Curator's C{TreeCacheEvent.Type}."""

    NODE_ADDED = "NODE_ADDED"
    NODE_UPDATED = "NODE_UPDATED"
    NODE_REMOVED = "NODE_REMOVED"
    CONNECTION_SUSPENDED = "CONNECTION_SUSPENDED"
    CONNECTION_RECONNECTED = "CONNECTION_RECONNECTED"
    CONNECTION_LOST = "CONNECTION_LOST"
    INITIALIZED = "INITIALIZED"


@dataclass(frozen=True)
class TreeCacheEvent:
    """
    Curator's C{TreeCacheEvent}.

    @ivar data: the node (for a removal, as it last was); L{None} for connection
        events and C{INITIALIZED}.
    @ivar old_data: for C{NODE_UPDATED}, the node before.
    """

    type: TreeCacheEventType
    data: ChildData | None = None
    old_data: ChildData | None = None

    Type = TreeCacheEventType


_TREE_TYPE_OF_KIND = {
    CREATED: TreeCacheEventType.NODE_ADDED,
    CHANGED: TreeCacheEventType.NODE_UPDATED,
    DELETED: TreeCacheEventType.NODE_REMOVED,
}


class TreeCache(_ConnectionEvents):
    """
    Curator's C{TreeCache}: the subtree at C{path} (C{path} itself included), down to
    C{max_depth} levels below it.  Listeners: C{listener(client, TreeCacheEvent)};
    C{NODE_ADDED} for every node of the first load, then C{INITIALIZED}.
    """

    _connection_types = {
        ConnectionState.SUSPENDED: TreeCacheEventType.CONNECTION_SUSPENDED,
        ConnectionState.RECONNECTED: TreeCacheEventType.CONNECTION_RECONNECTED,
        ConnectionState.LOST: TreeCacheEventType.CONNECTION_LOST,
    }

    def __init__(
        self,
        client: Client,
        path: str,
        *,
        cache_data: bool = True,
        data_is_compressed: bool = False,
        max_depth: int | None = None,
        create_parent_nodes: bool = False,
        persistent_watch: bool = False,
    ) -> None:
        """
        @param max_depth: levels below C{path} to cache (0: C{path} alone; L{None}: all).
        @param create_parent_nodes: create C{path} (and its parents, as containers)
            when starting, if missing.
        @param persistent_watch: use one persistent recursive watch (ZooKeeper 3.6+)
            instead of one-shot watches on every node.
        """
        super().__init__(client)
        self._path = path
        self._create_parent_nodes = create_parent_nodes
        self._mirror = TreeMirror(
            self.client,
            path,
            self._changed,
            max_depth=max_depth,
            cache_data=cache_data,
            compressed=data_is_compressed,
            persistent_watch=persistent_watch,
            on_initialized=self._initialized,
        )

    @recipe_method
    async def start(self) -> TreeCache:
        """Start watching and loading (returns before the load finishes, as Curator's)."""
        if self._create_parent_nodes:
            await _ensure_container(self.client, self._path)
        self._watch_connection()
        self._mirror.start()
        return self

    @recipe_method
    async def close(self) -> None:
        """Stop watching and forget the tree."""
        self._unwatch_connection()
        self._mirror.close()
        self._mirror.clear()

    def get_current_data(self, full_path: str) -> ChildData | None:
        """@return: the cached node at C{full_path}, or L{None}."""
        return self._mirror.get(full_path)

    def get_current_children(self, full_path: str) -> dict[str, ChildData] | None:
        """
        @return: the cached children of C{full_path} by name, or L{None} when that
            node is not in the cache.
        """
        if self._mirror.get(full_path) is None:
            return None
        found = {}
        for name in self._mirror.children_of(full_path):
            child = self._mirror.get(full_path.rstrip("/") + "/" + name)
            if child is not None:
                found[name] = child
        return found

    def size(self) -> int:
        """@return: how many nodes are cached."""
        return self._mirror.size()

    def _changed(self, kind: str, old: ChildData | None, new: ChildData | None) -> None:
        event_type = _TREE_TYPE_OF_KIND[kind]
        if kind == DELETED:
            self._publish(TreeCacheEvent(event_type, old))
        else:
            self._publish(TreeCacheEvent(event_type, new, old))

    def _initialized(self) -> None:
        self._publish(TreeCacheEvent(TreeCacheEventType.INITIALIZED))

    def _connection_event(self, event_type: Any) -> Any:
        return TreeCacheEvent(event_type)


# -- PathChildrenCache ----------------------------------------------------------------


class PathChildrenCacheEventType(enum.Enum):
    """Curator's C{PathChildrenCacheEvent.Type}."""

    CHILD_ADDED = "CHILD_ADDED"
    CHILD_UPDATED = "CHILD_UPDATED"
    CHILD_REMOVED = "CHILD_REMOVED"
    CONNECTION_SUSPENDED = "CONNECTION_SUSPENDED"
    CONNECTION_RECONNECTED = "CONNECTION_RECONNECTED"
    CONNECTION_LOST = "CONNECTION_LOST"
    INITIALIZED = "INITIALIZED"


@dataclass(frozen=True)
class PathChildrenCacheEvent:
    """
    Curator's C{PathChildrenCacheEvent}.

    @ivar data: the child (for a removal, as it last was); L{None} otherwise.
    @ivar initial_data: for C{INITIALIZED}, every child loaded, sorted by path.
    """

    type: PathChildrenCacheEventType
    data: ChildData | None = None
    initial_data: list[ChildData] | None = None

    Type = PathChildrenCacheEventType


class PathChildrenCacheStartMode(enum.Enum):
    """Curator's C{PathChildrenCache.StartMode}."""

    #: Load in the background; the first children are reported as C{CHILD_ADDED}.
    NORMAL = "NORMAL"
    #: Load before L{PathChildrenCache.start} returns; no events for what it found.
    BUILD_INITIAL_CACHE = "BUILD_INITIAL_CACHE"
    #: As C{NORMAL}, then an C{INITIALIZED} event with every child loaded.
    POST_INITIALIZED_EVENT = "POST_INITIALIZED_EVENT"


_CHILD_TYPE_OF_KIND = {
    CREATED: PathChildrenCacheEventType.CHILD_ADDED,
    CHANGED: PathChildrenCacheEventType.CHILD_UPDATED,
    DELETED: PathChildrenCacheEventType.CHILD_REMOVED,
}


class PathChildrenCache(_ConnectionEvents):
    """
    Curator's C{PathChildrenCache}: the children of C{path} (created, as a container,
    when missing).  Listeners: C{listener(client, PathChildrenCacheEvent)}.
    """

    StartMode = PathChildrenCacheStartMode

    _connection_types = {
        ConnectionState.SUSPENDED: PathChildrenCacheEventType.CONNECTION_SUSPENDED,
        ConnectionState.RECONNECTED: PathChildrenCacheEventType.CONNECTION_RECONNECTED,
        ConnectionState.LOST: PathChildrenCacheEventType.CONNECTION_LOST,
    }

    def __init__(
        self,
        client: Client,
        path: str,
        cache_data: bool = True,
        data_is_compressed: bool = False,
        *,
        persistent_watch: bool = False,
    ) -> None:
        super().__init__(client)
        self._path = path.rstrip("/") or "/"
        self._mode = PathChildrenCacheStartMode.NORMAL
        self._quiet = False
        self._mirror = TreeMirror(
            self.client,
            path,
            self._changed,
            max_depth=1,
            cache_data=cache_data,
            compressed=data_is_compressed,
            persistent_watch=persistent_watch,
            on_initialized=self._initialized,
        )

    @recipe_method
    async def start(
        self, mode: PathChildrenCacheStartMode = PathChildrenCacheStartMode.NORMAL
    ) -> None:
        """
        Start (see L{PathChildrenCacheStartMode}); with C{BUILD_INITIAL_CACHE} returns
        once the children are loaded.
        """
        self._mode = PathChildrenCacheStartMode(mode)
        self._quiet = self._mode is PathChildrenCacheStartMode.BUILD_INITIAL_CACHE
        await _ensure_container(self.client, self._path)
        self._watch_connection()
        self._mirror.start()
        if self._quiet:
            await self._mirror.initialized

    @recipe_method
    async def close(self) -> None:
        """Stop watching and forget the children."""
        self._unwatch_connection()
        self._mirror.close()
        self._mirror.clear()

    @recipe_method
    async def rebuild(self) -> None:
        """Read every child again (as after a reconnect)."""
        self._mirror.rebuild()

    @overload
    def get_current_data(self) -> list[ChildData]: ...

    @overload
    def get_current_data(self, full_path: str) -> ChildData | None: ...

    def get_current_data(self, full_path: str | None = None) -> Any:
        """
        @return: every cached child sorted by path; or, given C{full_path}, that
            child or L{None}.
        """
        if full_path is not None:
            return self._mirror.get(full_path) if full_path != self._path else None
        return sorted(
            (node for node in self._mirror.nodes() if node.path != self._path),
            key=lambda node: node.path,
        )

    def _changed(self, kind: str, old: ChildData | None, new: ChildData | None) -> None:
        node = new if new is not None else old
        assert node is not None
        if node.path == self._path or self._quiet:
            return
        self._publish(PathChildrenCacheEvent(_CHILD_TYPE_OF_KIND[kind], node))

    def _initialized(self) -> None:
        self._quiet = False
        if self._mode is PathChildrenCacheStartMode.POST_INITIALIZED_EVENT:
            self._publish(
                PathChildrenCacheEvent(
                    PathChildrenCacheEventType.INITIALIZED, initial_data=self.get_current_data()
                )
            )

    def _connection_event(self, event_type: Any) -> Any:
        return PathChildrenCacheEvent(event_type)


# -- NodeCache ------------------------------------------------------------------------


class NodeCache(_ConnectionEvents):
    """
    Curator's C{NodeCache}: one node, which may not exist.  Listeners: C{listener()}
    (C{nodeChanged}) after it is created, changed or deleted.
    """

    def __init__(self, client: Client, path: str, data_is_compressed: bool = False) -> None:
        super().__init__(client)
        self._quiet = False
        self._mirror = TreeMirror(
            self.client,
            path,
            self._changed,
            max_depth=0,
            compressed=data_is_compressed,
            persistent_watch=False,
        )

    @recipe_method
    async def start(self, build_initial: bool = False) -> None:
        """
        Start watching; with C{build_initial}, return once the node is read (and do not
        report it to the listeners).
        """
        self._quiet = build_initial
        self._mirror.start()
        if build_initial:
            await self._mirror.initialized
            self._quiet = False

    @recipe_method
    async def close(self) -> None:
        """Stop watching."""
        self._mirror.close()
        self._mirror.clear()

    def get_current_data(self) -> ChildData | None:
        """@return: the node as last read, or L{None} when it does not exist."""
        return self._mirror.get(self._mirror.path)

    def _changed(self, _kind: str, _old: ChildData | None, _new: ChildData | None) -> None:
        if not self._quiet:
            self._listeners.call(lambda listener: listener)

    def _connection_event(self, event_type: Any) -> Any:
        return None


async def _ensure_container(client: CuratorFramework, path: str) -> None:
    """Create C{path} and its parents as containers if missing (C{createContainers})."""
    if path == "/":
        return
    try:
        await client.create(path, b"", mode=CreateMode.CONTAINER, parents_as_containers=True)
    except errors.NodeExistsError:
        pass


__all__ = [
    "NodeCache",
    "PathChildrenCache",
    "PathChildrenCacheEvent",
    "PathChildrenCacheEventType",
    "PathChildrenCacheStartMode",
    "TreeCache",
    "TreeCacheEvent",
    "TreeCacheEventType",
]
