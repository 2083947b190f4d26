"""
The client's side of watches: who is waiting for which event on which path.

ZooKeeper's server only knows that I{this session} watches a path; the client keeps
the watcher callables (Java's C{ZKWatchManager}).  A one-shot watch is registered
when the read that set it succeeds (an C{exists} on a missing node sets an I{exist}
watch), and is consumed by the first event; persistent and persistent-recursive
watches (C{addWatch}) stay until removed.  After a reconnect the paths of all of them
are sent back to the server in C{setWatches}/C{setWatches2}, so nothing is missed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from zkreg.proto.consts import EventType, KeeperState, WatcherType


@dataclass(frozen=True)
class WatchedEvent:
    """
    What a watcher receives.

    @ivar type: an L{EventType} (C{NONE} for session events).
    @ivar state: the L{KeeperState} of the connection when it was delivered.
    @ivar path: the application's path (chroot removed), or L{None} for session events.
    """

    type: EventType
    state: KeeperState
    path: str | None


Watcher = Callable[[WatchedEvent], object]

DATA = "data"
EXIST = "exist"
CHILD = "child"
PERSISTENT = "persistent"
PERSISTENT_RECURSIVE = "persistent_recursive"
KINDS = (DATA, EXIST, CHILD, PERSISTENT, PERSISTENT_RECURSIVE)

_REMOVED_EVENT = {
    DATA: EventType.DataWatchRemoved,
    EXIST: EventType.DataWatchRemoved,
    CHILD: EventType.ChildWatchRemoved,
    PERSISTENT: EventType.PersistentWatchRemoved,
    PERSISTENT_RECURSIVE: EventType.PersistentWatchRemoved,
}

_KINDS_BY_WATCHER_TYPE = {
    WatcherType.Children: (CHILD, PERSISTENT),
    WatcherType.Data: (DATA, EXIST, PERSISTENT),
    WatcherType.Any: KINDS,
    WatcherType.Persistent: (PERSISTENT,),
    WatcherType.PersistentRecursive: (PERSISTENT_RECURSIVE,),
}


def _ancestors_and_self(path: str) -> Iterable[str]:
    yield path
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        yield path


class WatchManager:
    """
    The registered watchers, by kind and client path.  Each path keeps its watchers in
    registration order, each at most once (a set, as in Java).
    """

    def __init__(self) -> None:
        self._watches: dict[str, dict[str, list[Watcher]]] = {kind: {} for kind in KINDS}

    def add(self, kind: str, path: str, watcher: Watcher) -> None:
        """
        Register C{watcher} for events of C{kind} on C{path}.
        """
        watchers = self._watches[kind].setdefault(path, [])
        if watcher not in watchers:
            watchers.append(watcher)

    def materialize(self, event_type: int, path: str) -> list[Watcher]:
        """
        Take the watchers an event triggers: one-shot ones are removed, persistent
        ones stay.

        @return: the watchers to call, each once, in registration order by kind.
        """
        found: list[Watcher] = []
        one_shot: tuple[str, ...]
        if event_type in (EventType.NodeCreated, EventType.NodeDataChanged):
            one_shot = (DATA, EXIST)
        elif event_type == EventType.NodeChildrenChanged:
            one_shot = (CHILD,)
        elif event_type == EventType.NodeDeleted:
            one_shot = (DATA, EXIST, CHILD)
        else:
            one_shot = ()
        for kind in one_shot:
            found.extend(self._watches[kind].pop(path, ()))
        found.extend(self._watches[PERSISTENT].get(path, ()))
        if event_type != EventType.NodeChildrenChanged:
            recursive = self._watches[PERSISTENT_RECURSIVE]
            for ancestor in _ancestors_and_self(path):
                found.extend(recursive.get(ancestor, ()))
        unique: list[Watcher] = []
        for watcher in found:
            if watcher not in unique:
                unique.append(watcher)
        return unique

    def paths(self, kind: str) -> list[str]:
        """
        @return: the client paths with watchers of C{kind} (for setWatches).
        """
        return list(self._watches[kind])

    def is_empty(self) -> bool:
        return not any(self._watches.values())

    def contains(self, path: str, watcher: Watcher | None, watcher_type: int) -> bool:
        """
        @return: whether C{watcher} (or, for L{None}, any watcher) watches C{path} in
            one of the kinds C{watcher_type} covers.
        """
        for kind in _KINDS_BY_WATCHER_TYPE[WatcherType(watcher_type)]:
            watchers = self._watches[kind].get(path, [])
            if watchers and (watcher is None or watcher in watchers):
                return True
        return False

    def remove(
        self, path: str, watcher: Watcher | None, watcher_type: int
    ) -> list[tuple[Watcher, EventType]]:
        """
        Remove C{watcher} (or, for L{None}, every watcher) from C{path} for the kinds
        C{watcher_type} covers.

        @return: C{(watcher, removal event type)} for each registration removed.
        """
        removed: list[tuple[Watcher, EventType]] = []
        for kind in _KINDS_BY_WATCHER_TYPE[WatcherType(watcher_type)]:
            watchers = self._watches[kind].get(path)
            if not watchers:
                continue
            if watcher is None:
                taken = list(watchers)
                watchers.clear()
            elif watcher in watchers:
                taken = [watcher]
                watchers.remove(watcher)
            else:
                taken = []
            if not watchers:
                del self._watches[kind][path]
            removed.extend((each, _REMOVED_EVENT[kind]) for each in taken)
        return removed

    def clear(self) -> list[Watcher]:
        """
        Drop every registration (the session is gone).

        @return: each watcher that was registered, once.
        """
        everyone: list[Watcher] = []
        for by_path in self._watches.values():
            for watchers in by_path.values():
                for watcher in watchers:
                    if watcher not in everyone:
                        everyone.append(watcher)
            by_path.clear()
        return everyone
