"""
The engine under every cache: a local mirror of one subtree, kept equal to the
server's through watches, and made equal again after every reconnect.

Curator has four caches with four engines; here L{CuratorCache}, L{TreeCache},
L{PathChildrenCache} and L{NodeCache} are views over one L{TreeMirror}, so the
subtle part is written (and tested) once.  It runs entirely on the reactor thread.

Why it does not miss or reorder events where Curator and kazoo do:

  - I{Order.}  One session's replies and watch events arrive in the server's order,
    and the connection hands each to its callback as it arrives; the mirror applies
    every result at once, in that order, so each one describes the tree at a moment
    no earlier than the one applied before it.  A deletion removes the whole cached
    subtree (Curator's C{CuratorCache} removes only the node named by the event).
  - I{Stale reads.}  A node's data and stat are replaced only by a stat that is not
    older: C{(czxid, mzxid, pzxid)} never decreases during a node's life, and a node
    deleted and created again has a larger C{czxid}.  So a read answered by a lagging
    server cannot roll the cache back.
  - I{Reconnects.}  A persistent watch is re-registered by the connection, but the
    events of the disconnected interval are lost (ZooKeeper does not replay them for
    persistent watches), and after a session loss every watch is gone.  So on every
    C{RECONNECTED} the mirror re-adds its watch and then walks the whole subtree
    again: nodes found are created or updated, cached children missing from a fresh
    listing are deleted with their subtrees.  Changes during the walk arrive as
    events after the reply they follow, so they are applied in order too.

Two watch modes: one persistent recursive watch (C{addWatch}, ZooKeeper 3.6+), the
default; or, for older servers, one-shot data and child watches on every node, set
again by each read (Curator's C{TreeCache}).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.connection.watches import WatchedEvent
from curatorish.framework import CuratorFramework
from curatorish.node_names import make_path
from curatorish.state import ConnectionState
from zkreg.proto.consts import EventType, WatcherType
from zkreg.proto.records import Stat

_log = Logger()

#: Kinds of change a mirror reports.
CREATED = "created"
CHANGED = "changed"
DELETED = "deleted"

#: Pause before walking the tree again after a read failed while connected.
RETRY_DELAY_S = 1.0


@dataclass(frozen=True)
class ChildData:
    """
    One cached node (Curator's C{ChildData}).

    @ivar path: the node's full path.
    @ivar stat: its stat when it was read.
    @ivar data: its data, or L{None} when the cache does not keep data (or the node
        has none).
    """

    path: str
    stat: Stat
    data: bytes | None


def _age(stat: Stat) -> tuple[int, int, int]:
    """A key that never decreases over a node's life, nor across re-creation."""
    return (stat.czxid, stat.mzxid, stat.pzxid)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


ChangeCallback = Callable[[str, "ChildData | None", "ChildData | None"], None]


class TreeMirror:
    """
    A mirror of the subtree at C{path} (see the module docstring).

    @ivar initialized: fires (once) when the first walk of the tree has finished.
    """

    def __init__(
        self,
        client: CuratorFramework,
        path: str,
        on_change: ChangeCallback,
        *,
        max_depth: int | None = None,
        cache_data: bool = True,
        compressed: bool = False,
        persistent_watch: bool = True,
        on_initialized: Callable[[], None] | None = None,
    ) -> None:
        """
        @param on_change: called as C{on_change(kind, old, new)} for each change of
            the mirror, on the reactor thread, in order; kind is L{CREATED},
            L{CHANGED} or L{DELETED}.
        @param max_depth: mirror nodes at most this far below C{path} (0: C{path}
            only; L{None}: all).
        @param cache_data: keep data (else only stats).
        @param compressed: the data is gzipped; keep it decompressed.
        @param persistent_watch: one recursive persistent watch (else one-shot
            watches on every node, for servers older than 3.6).
        """
        self.client = client
        self.path = path if path == "/" else path.rstrip("/")
        self._on_change = on_change
        self._on_initialized = on_initialized
        self._max_depth = max_depth
        self._cache_data = cache_data
        self._compressed = compressed
        self._persistent = persistent_watch
        self._nodes: dict[str, ChildData] = {}
        self._children: dict[str, set[str]] = {}
        self._outstanding = 0
        self._running = False
        self._retry_pending = False
        self.initialized: defer.Deferred[None] = defer.Deferred()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Watch and load the tree; changes are reported from now on."""
        if self._running:
            raise RuntimeError("already started")
        self._running = True
        self.client.add_connection_state_listener(self._state_changed)
        self._watch_and_walk()

    def close(self) -> None:
        """Stop watching (server watches are removed in the background)."""
        if not self._running:
            return
        self._running = False
        self.client.remove_connection_state_listener(self._state_changed)
        paths = [self.path] if self._persistent else [self.path, *self._nodes]
        if not self._persistent:
            watcher_type = WatcherType.Any
        elif self._max_depth == 0:
            watcher_type = WatcherType.Persistent
        else:
            watcher_type = WatcherType.PersistentRecursive
        for path in dict.fromkeys(paths):
            removal = self.client.remove_watches(
                path, self._watched, watcher_type=watcher_type, quietly=True
            )
            removal.addErrback(lambda _failure: None)

    def clear(self) -> None:
        """Forget every cached node, silently."""
        self._nodes.clear()
        self._children.clear()

    # -- reading the mirror (safe from any thread: each call copies atomically) -----------

    def get(self, path: str) -> ChildData | None:
        return self._nodes.get(path)

    def nodes(self) -> list[ChildData]:
        return list(self._nodes.values())

    def children_of(self, path: str) -> list[str]:
        return sorted(self._children.get(path, ()))

    def size(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[ChildData]:
        return iter(self.nodes())

    def depth(self, path: str) -> int:
        if path == self.path:
            return 0
        below = path[len(self.path) :] if self.path != "/" else path
        return below.count("/")

    # -- walking ----------------------------------------------------------------------

    def rebuild(self) -> None:
        """Read the whole subtree again (what a reconnect does)."""
        if self._running:
            self._load(self.path, 0, full=True)

    def _watch_and_walk(self) -> None:
        if not self._persistent:
            self._load(self.path, 0, full=True)
            return
        self._begin()
        # A single node needs no recursive watch (nor the events of its subtree).
        adding = self.client.add_watch(self.path, self._watched, recursive=self._max_depth != 0)

        def added(_: object) -> None:
            self._load(self.path, 0, full=True)

        adding.addCallbacks(added, self._failed, errbackArgs=(self.path,))
        adding.addBoth(self._end)

    def _load(self, path: str, depth: int, full: bool) -> None:
        """
        Read C{path}'s data (and, when walking or with one-shot watches, its
        children, of which new ones, or all when C{full}, are loaded in turn).
        """
        self._read_data(path)
        if (full or not self._persistent) and (self._max_depth is None or depth < self._max_depth):
            self._read_children(path, depth, full)

    def _watcher(self) -> Any:
        return None if self._persistent else self._watched

    def _read_data(self, path: str) -> None:
        self._begin()
        reading: defer.Deferred[Any]
        if self._cache_data:
            reading = self.client.get_data(
                path, watcher=self._watcher(), decompress=self._compressed
            )
        else:
            reading = self.client.exists(path, watcher=self._watcher())
            reading.addCallback(lambda stat: (None, stat) if stat is not None else None)
        reading.addCallbacks(self._got_data, self._failed, (path,), errbackArgs=(path,))
        reading.addBoth(self._end)

    def _read_children(self, path: str, depth: int, full: bool) -> None:
        self._begin()
        reading = self.client.get_children(path, watcher=self._watcher())
        reading.addCallbacks(
            self._got_children, self._failed, (path, depth, full), errbackArgs=(path,)
        )
        reading.addBoth(self._end)

    def _got_data(self, result: tuple[bytes | None, Stat] | None, path: str) -> None:
        if not self._running:
            return
        if result is None:
            self._gone(path)
            return
        data, stat = result
        old = self._nodes.get(path)
        if old is not None and _age(stat) < _age(old.stat):
            return
        new = ChildData(path, stat, data)
        self._nodes[path] = new
        if path != self.path:
            self._children.setdefault(_parent(path), set()).add(path.rsplit("/", 1)[1])
        if old is None:
            self._on_change(CREATED, None, new)
        elif old.stat.czxid != stat.czxid or old.stat.mzxid != stat.mzxid:
            self._on_change(CHANGED, old, new)

    def _got_children(self, names: list[str], path: str, depth: int, full: bool) -> None:
        if not self._running:
            return
        known = self._children.get(path, set())
        for name in sorted(known - set(names)):
            self._gone(make_path(path, name))
        for name in names:
            child = make_path(path, name)
            if full or child not in self._nodes:
                self._load(child, depth + 1, full)

    def _gone(self, path: str) -> None:
        """C{path} does not exist: forget it and its subtree, deepest first."""
        for name in sorted(self._children.pop(path, ())):
            self._gone(make_path(path, name))
        old = self._nodes.pop(path, None)
        if path != self.path:
            siblings = self._children.get(_parent(path))
            if siblings is not None:
                siblings.discard(path.rsplit("/", 1)[1])
        if old is not None:
            self._on_change(DELETED, old, None)

    def _failed(self, failure: Failure, path: str) -> None:
        if failure.check(errors.NoNodeError):
            if self._running:
                self._gone(path)
            if path == self.path and not self._persistent and self._running:
                self._watch_for_creation()
            return
        if not self._running or failure.check(defer.CancelledError):
            return
        state = self.client.state
        if state is not None and state.is_connected and not self._retry_pending:
            # Not a disconnection (that ends in RECONNECTED and a walk): try again.
            _log.warn(
                "Cache read of {path} failed ({error}); reading the tree again",
                path=path,
                error=failure.getErrorMessage(),
            )
            self._retry_pending = True
            self.client.zookeeper.reactor.callLater(RETRY_DELAY_S, self._retry)

    def _retry(self) -> None:
        self._retry_pending = False
        if self._running:
            self._watch_and_walk()

    def _watch_for_creation(self) -> None:
        """One-shot mode, root missing: an exist watch tells when it comes."""
        self._begin()
        watching = self.client.exists(self.path, watcher=self._watched)

        def exists_now(stat: Stat | None) -> None:
            if stat is not None and self._running:
                self._load(self.path, 0, full=True)

        watching.addCallbacks(exists_now, self._failed, errbackArgs=(self.path,))
        watching.addBoth(self._end)

    # -- events -----------------------------------------------------------------------

    def _watched(self, event: WatchedEvent) -> None:
        if not self._running or event.path is None:
            return
        path = event.path
        if event.type == EventType.NodeDeleted:
            self._gone(path)
            if path == self.path and not self._persistent:
                self._watch_for_creation()
            return
        depth = self.depth(path)
        if self._max_depth is not None and depth > self._max_depth:
            return
        if event.type == EventType.NodeCreated:
            self._load(path, depth, full=not self._persistent)
        elif event.type == EventType.NodeDataChanged:
            self._read_data(path)
        elif event.type == EventType.NodeChildrenChanged and (
            self._max_depth is None or depth < self._max_depth
        ):
            self._read_children(path, depth, full=False)

    def _state_changed(self, _client: object, state: ConnectionState) -> None:
        # CONNECTED too: reads started before the first connection may have failed.
        if self._running and state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTED):
            self._watch_and_walk()

    # -- initialization ---------------------------------------------------------------

    def _begin(self) -> None:
        self._outstanding += 1

    def _end(self, result: object) -> None:
        self._outstanding -= 1
        if isinstance(result, Failure):
            _log.failure("Cache callback failed", failure=result)
        if self._outstanding == 0 and not self.initialized.called:
            self.initialized.callback(None)
            if self._on_initialized is not None and self._running:
                self._on_initialized()


__all__ = ["CHANGED", "CREATED", "DELETED", "ChildData", "TreeMirror"]
