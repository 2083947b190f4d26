"""
Curator 5's C{CuratorCache}: a local copy of a subtree, kept current by one persistent
recursive watch, with listeners told of every node created, changed and deleted.

    cache = CuratorCache(client, "/config")
    cache.listenable().add_listener(
        CuratorCacheListener.builder()
        .for_creates(lambda node: print("new", node.path))
        .for_initialized(lambda: print("loaded"))
        .build()
    )
    cache.start()
    cache.get("/config/db")        # ChildData or None

The engine is L{curatorish.recipes.mirror.TreeMirror} (shared with the older caches in
L{curatorish.recipes.classic_cache}); its docstring says how the cache stays exact
across reconnects and session loss.  With C{persistent_watch=False} (servers older
than ZooKeeper 3.6, which lack C{addWatch}) the same cache runs on one-shot watches,
as Curator's bridge does with a C{TreeCache}.

Like Curator's, the cache keeps what it holds through C{SUSPENDED} and C{LOST} (reads
of it go on answering from memory) and reconciles with the server on C{RECONNECTED},
reporting the differences as events.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from curatorish.blocking import BlockingCuratorFramework
from curatorish.framework import CuratorFramework
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.recipes.listen import Listenable
from curatorish.recipes.mirror import CHANGED, CREATED, DELETED, ChildData, TreeMirror


class CuratorCacheListenerType(enum.Enum):
    """Curator's C{CuratorCacheListener.Type}."""

    NODE_CREATED = "NODE_CREATED"
    NODE_CHANGED = "NODE_CHANGED"
    NODE_DELETED = "NODE_DELETED"


_TYPE_OF_KIND = {
    CREATED: CuratorCacheListenerType.NODE_CREATED,
    CHANGED: CuratorCacheListenerType.NODE_CHANGED,
    DELETED: CuratorCacheListenerType.NODE_DELETED,
}


class CuratorCacheOption(enum.Enum):
    """Curator's C{CuratorCache.Options}."""

    #: Cache only the node at the path, not its subtree.
    SINGLE_NODE_CACHE = "SINGLE_NODE_CACHE"
    #: The data is gzipped; keep it decompressed.
    COMPRESSED_DATA = "COMPRESSED_DATA"
    #: Keep the cached nodes after L{CuratorCache.close}.
    DO_NOT_CLEAR_ON_CLOSE = "DO_NOT_CLEAR_ON_CLOSE"


class CuratorCacheListener:
    """
    Curator's C{CuratorCacheListener}: subclass it, or build one with L{builder}.
    Both methods run on the reactor thread (async face) or the blocking client's event
    thread (blocking face), in the order the changes happened.
    """

    Type = CuratorCacheListenerType

    def event(
        self, type: CuratorCacheListenerType, old_data: ChildData | None, data: ChildData | None
    ) -> None:
        """A node was created (C{old_data} None), changed, or deleted (C{data} None)."""

    def initialized(self) -> None:
        """The cache has loaded the tree for the first time."""

    @staticmethod
    def builder() -> CuratorCacheListenerBuilder:
        return CuratorCacheListenerBuilder()


class CuratorCacheListenerBuilder:
    """Curator's C{CuratorCacheListenerBuilder}: a listener from plain callables."""

    def __init__(self) -> None:
        self._on_event: list[Callable[[CuratorCacheListenerType, Any, Any], None]] = []
        self._on_initialized: list[Callable[[], None]] = []
        self._after_initialized = False

    def for_all(self, listener: CuratorCacheListener) -> CuratorCacheListenerBuilder:
        self._on_event.append(listener.event)
        self._on_initialized.append(listener.initialized)
        return self

    def for_creates(self, listener: Callable[[ChildData], Any]) -> CuratorCacheListenerBuilder:
        def created(type: CuratorCacheListenerType, _old: Any, new: Any) -> None:
            if type is CuratorCacheListenerType.NODE_CREATED:
                listener(new)

        self._on_event.append(created)
        return self

    def for_changes(
        self, listener: Callable[[ChildData, ChildData], Any]
    ) -> CuratorCacheListenerBuilder:
        def changed(type: CuratorCacheListenerType, old: Any, new: Any) -> None:
            if type is CuratorCacheListenerType.NODE_CHANGED:
                listener(old, new)

        self._on_event.append(changed)
        return self

    def for_creates_and_changes(
        self, listener: Callable[[ChildData | None, ChildData], Any]
    ) -> CuratorCacheListenerBuilder:
        def created_or_changed(type: CuratorCacheListenerType, old: Any, new: Any) -> None:
            if type is not CuratorCacheListenerType.NODE_DELETED:
                listener(old, new)

        self._on_event.append(created_or_changed)
        return self

    def for_deletes(self, listener: Callable[[ChildData], Any]) -> CuratorCacheListenerBuilder:
        def deleted(type: CuratorCacheListenerType, old: Any, _new: Any) -> None:
            if type is CuratorCacheListenerType.NODE_DELETED:
                listener(old)

        self._on_event.append(deleted)
        return self

    def for_initialized(self, listener: Callable[[], Any]) -> CuratorCacheListenerBuilder:
        self._on_initialized.append(listener)
        return self

    def after_initialized(self) -> CuratorCacheListenerBuilder:
        """Pass on no event before the cache is initialized."""
        self._after_initialized = True
        return self

    def build(self) -> CuratorCacheListener:
        return _BuiltListener(
            tuple(self._on_event), tuple(self._on_initialized), self._after_initialized
        )


class _BuiltListener(CuratorCacheListener):
    def __init__(
        self,
        on_event: tuple[Callable[[CuratorCacheListenerType, Any, Any], None], ...],
        on_initialized: tuple[Callable[[], None], ...],
        after_initialized: bool,
    ) -> None:
        self._on_event = on_event
        self._on_initialized = on_initialized
        self._quiet = after_initialized

    def event(
        self, type: CuratorCacheListenerType, old_data: ChildData | None, data: ChildData | None
    ) -> None:
        if self._quiet:
            return
        for each in self._on_event:
            each(type, old_data, data)

    def initialized(self) -> None:
        self._quiet = False
        for each in self._on_initialized:
            each()


class CuratorCache(Recipe):
    """
    Curator's C{CuratorCache} (see the module docstring).
    """

    Options = CuratorCacheOption

    def __init__(
        self,
        client: CuratorFramework | BlockingCuratorFramework,
        path: str,
        options: Iterable[CuratorCacheOption] = (),
        *,
        persistent_watch: bool = True,
    ) -> None:
        """
        @param options: L{CuratorCacheOption}s.
        @param persistent_watch: L{False} for servers older than ZooKeeper 3.6: the
            same cache on one-shot watches.
        """
        super().__init__(client)
        chosen = set(options)
        self._clear_on_close = CuratorCacheOption.DO_NOT_CLEAR_ON_CLOSE not in chosen
        self._listeners: Listenable[CuratorCacheListener] = Listenable(self.listener_caller)
        self._started = False
        self._mirror = TreeMirror(
            self.client,
            path,
            self._changed,
            max_depth=0 if CuratorCacheOption.SINGLE_NODE_CACHE in chosen else None,
            compressed=CuratorCacheOption.COMPRESSED_DATA in chosen,
            persistent_watch=persistent_watch,
            on_initialized=self._initialized,
        )

    @recipe_method
    async def start(self) -> None:
        """Start watching and loading (returns at once, as Curator's)."""
        if self._started:
            raise RuntimeError("Already started")
        self._started = True
        self._mirror.start()

    @recipe_method
    async def close(self) -> None:
        """Stop; forget the nodes unless C{DO_NOT_CLEAR_ON_CLOSE}."""
        self._mirror.close()
        if self._clear_on_close:
            self._mirror.clear()

    def listenable(self) -> Listenable[CuratorCacheListener]:
        """The listeners (C{listenable().add_listener(listener)})."""
        return self._listeners

    def get(self, path: str) -> ChildData | None:
        """@return: the cached node at C{path} (a full path), or L{None}."""
        return self._mirror.get(path)

    def stream(self) -> Iterator[ChildData]:
        """@return: an iterator over a snapshot of every cached node."""
        return iter(self._mirror.nodes())

    def size(self) -> int:
        """@return: how many nodes are cached."""
        return self._mirror.size()

    def _changed(self, kind: str, old: ChildData | None, new: ChildData | None) -> None:
        self._listeners.call(lambda listener: listener.event, _TYPE_OF_KIND[kind], old, new)

    def _initialized(self) -> None:
        self._listeners.call(lambda listener: listener.initialized)


__all__ = [
    "ChildData",
    "CuratorCache",
    "CuratorCacheListener",
    "CuratorCacheListenerBuilder",
    "CuratorCacheListenerType",
    "CuratorCacheOption",
]
