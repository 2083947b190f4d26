"""
The watch manager of a session server: who is watching which path, and who gets an
event when a transaction commits.

It follows ZooKeeper 3.8's structure on purpose, because the structure I{is} the
semantics: two tables, data watches (getData, exists) and child watches
(getChildren), each mapping a path to the watchers on it and each watcher's mode
(standard one-shot, persistent, persistent recursive).  C{addWatch} puts the watcher
in both tables; a deletion fires the data table first and suppresses the same
watchers in the child table, so a client watching a node both ways gets I{one}
NodeDeleted.  Recursive watchers see NodeCreated, NodeDeleted and NodeDataChanged of
every descendant but never NodeChildrenChanged.  A watcher has one mode per path and
table, so a later one-shot registration replaces a persistent one, as in 3.8.

Watchers are connections (objects with C{send(bytes)} and C{session_id}), not
sessions: a reconnecting client re-registers its watches with setWatches.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

#: ZooKeeper's EventType numbers (zookeeper.proto constants, duplicated here so the
#: hot path does not depend on attribute lookups).
NODE_CREATED = 1
NODE_DELETED = 2
NODE_DATA_CHANGED = 3
NODE_CHILDREN_CHANGED = 4

#: KeeperState.SyncConnected
SYNC_CONNECTED = 3

#: Watcher modes (AddWatchMode numbers for the persistent ones).
STANDARD = -1
PERSISTENT = 0
PERSISTENT_RECURSIVE = 1

#: WatcherType numbers of checkWatches/removeWatches.
WATCHER_TYPE_CHILDREN = 1
WATCHER_TYPE_DATA = 2
WATCHER_TYPE_ANY = 3

#: frame length, ReplyHeader(xid=-1, zxid=-1, err=0), WatcherEvent type, state, path length
_EVENT_PREFIX = struct.Struct(">iiqiiii")
_NOTIFICATION_XID = -1


def encode_event(event_type: int, path: str) -> bytes:
    """
    Encode one watch notification frame, ready to write to any connection.

    ZooKeeper sends notifications with xid -1 and zxid -1 (NIOServerCnxn.process).

    @param event_type: an EventType number.
    @param path: the znode path the event is about.
    @return: the length-prefixed frame.
    """
    encoded_path = path.encode("utf-8")
    body_length = 16 + 8 + 4 + len(encoded_path)
    return (
        _EVENT_PREFIX.pack(
            body_length, _NOTIFICATION_XID, -1, 0, event_type, SYNC_CONNECTED, len(encoded_path)
        )
        + encoded_path
    )


def _parents(path: str) -> Iterable[str]:
    """
    Yield the proper ancestors of C{path}, nearest first, ending with C{/}.
    """
    while path != "/":
        cut = path.rfind("/")
        path = path[:cut] if cut > 0 else "/"
        yield path


class _WatchTable:
    """
    One of ZooKeeper's two watch tables (its C{WatchManager}), laid out for memory
    (a million watches are a realistic load): like ZooKeeper 3.8's
    C{WatchManagerOptimized}, the common case, one one-shot watcher on a path, costs
    no per-path container.

    @ivar by_path: path -> the watcher itself when one watcher has a standard
        (one-shot) watch there, else a C{{watcher: mode}} dict (several watchers, or a
        persistent mode).  Never an empty dict.
    @ivar by_watcher: watcher -> C{[live, paths]} while it has watches here: how many
        watches of this watcher the table holds, and their paths for dropping a closed
        connection's watches without a scan of every path.  The paths are appended
        as watches are set and never removed one by one (a fired or removed watch
        leaves its path there, stale): 8 bytes a watch, the string shared with the
        table's key.  The list is cut back to the live paths once stale ones
        outnumber them (amortized constant time per watch).  A list, not an object,
        because one is made per watcher and fire (a fan-out re-registers each).
    @ivar recursive_count: how many (watcher, path) pairs are recursive; while 0, a
        trigger need not look at ancestors.
    """

    __slots__ = ("by_path", "by_watcher", "recursive_count")

    def __init__(self) -> None:
        self.by_path: dict[str, Any] = {}
        self.by_watcher: dict[Any, list] = {}
        self.recursive_count = 0

    def add(self, path: str, watcher: Any, mode: int) -> None:
        by_path = self.by_path
        entry = by_path.get(path)
        if entry is None:
            by_path[path] = watcher if mode == STANDARD else {watcher: mode}
        elif type(entry) is dict:
            previous = entry.get(watcher)
            entry[watcher] = mode
            if previous is not None:
                # A new mode for a watch already there (3.8: the later one wins).
                if previous == PERSISTENT_RECURSIVE:
                    self.recursive_count -= 1
                if mode == PERSISTENT_RECURSIVE:
                    self.recursive_count += 1
                return
        elif entry is watcher:
            if mode != STANDARD:
                by_path[path] = {watcher: mode}
                if mode == PERSISTENT_RECURSIVE:
                    self.recursive_count += 1
            return
        else:
            by_path[path] = {entry: STANDARD, watcher: mode}
        if mode == PERSISTENT_RECURSIVE:
            self.recursive_count += 1
        state = self.by_watcher.get(watcher)
        if state is None:
            self.by_watcher[watcher] = [1, [path]]
            return
        live = state[0] = state[0] + 1
        paths = state[1]
        paths.append(path)
        if len(paths) > 2 * live + 16:
            state[1] = self._live_paths(watcher, paths)

    def _live_paths(self, watcher: Any, paths: list[str]) -> list[str]:
        """@return: C{paths} without the stale and repeated ones, in order."""
        by_path = self.by_path
        live = []
        for path in dict.fromkeys(paths):
            entry = by_path.get(path)
            if entry is watcher or (type(entry) is dict and watcher in entry):
                live.append(path)
        return live

    def _spent(self, watcher: Any) -> None:
        """One watch of C{watcher} is gone (fired one-shot, or removed)."""
        state = self.by_watcher.get(watcher)
        if state is not None:
            if state[0] <= 1:
                del self.by_watcher[watcher]
            else:
                state[0] -= 1

    def mode_of(self, path: str, watcher: Any) -> int | None:
        """@return: C{watcher}'s mode at C{path}, or L{None} when it has no watch there."""
        entry = self.by_path.get(path)
        if entry is watcher:
            return STANDARD
        if type(entry) is dict:
            return entry.get(watcher)
        return None

    def watchers_at(self, path: str) -> list[Any]:
        """@return: the watchers with a watch at C{path}."""
        entry = self.by_path.get(path)
        if entry is None:
            return []
        return list(entry) if type(entry) is dict else [entry]

    def contains(self, path: str, watcher: Any) -> bool:
        """
        ZooKeeper 3.8's C{WatchManager.containsWatcher}, quirks included: at the path
        itself I{any} watcher counts (not only C{watcher}); at an ancestor, a recursive
        watch of C{watcher}.  Ancestors are visited only while some recursive watch
        exists, and like ZooKeeper's C{PathParentIterator} a path with no C{/} to cut
        at fails.

        @raise ValueError: for such a path (ZooKeeper answers MarshallingError).
        """
        mode = self.mode_of(path, watcher)
        max_level = 0 if self.recursive_count == 0 else 1 << 30
        level = 0
        current = path
        while current and level <= max_level:
            local = current
            level += 1
            if current == "/":
                current = ""
            else:
                cut = current.rfind("/")
                if cut < 0:
                    raise ValueError(f"no parent of {current!r}")
                current = current[:cut] or "/"
            if level == 1 and self.by_path.get(local) is not None:
                return True
            if mode == PERSISTENT_RECURSIVE:
                return True
        return False

    def remove(self, path: str, watcher: Any) -> bool:
        by_path = self.by_path
        entry = by_path.get(path)
        if entry is watcher:
            del by_path[path]
        elif type(entry) is dict and watcher in entry:
            if entry.pop(watcher) == PERSISTENT_RECURSIVE:
                self.recursive_count -= 1
            if not entry:
                del by_path[path]
        else:
            return False
        self._spent(watcher)
        return True

    def remove_watcher(self, watcher: Any) -> None:
        state = self.by_watcher.pop(watcher, None)
        if state is None:
            return
        by_path = self.by_path
        for path in state[1]:
            entry = by_path.get(path)
            if entry is watcher:
                del by_path[path]
            elif type(entry) is dict:
                mode = entry.pop(watcher, None)
                if mode == PERSISTENT_RECURSIVE:
                    self.recursive_count -= 1
                if not entry:
                    del by_path[path]

    def trigger(self, path: str, event_type: int, suppress: set | None = None) -> set:
        """
        Find (and consume, for one-shot watches) the watchers of an event.

        @return: the watchers to notify, minus C{suppress}.
        """
        fired: set = set()
        by_path = self.by_path
        entry = by_path.get(path)
        if entry is not None:
            if type(entry) is not dict:
                fired.add(entry)
                del by_path[path]
                self._spent(entry)
            else:
                spent = None
                for watcher, mode in entry.items():
                    if mode == PERSISTENT_RECURSIVE:
                        if event_type != NODE_CHILDREN_CHANGED:
                            fired.add(watcher)
                    else:
                        fired.add(watcher)
                        if mode == STANDARD:
                            if spent is None:
                                spent = []
                            spent.append(watcher)
                if spent:
                    if len(spent) == len(entry):
                        del by_path[path]
                    else:
                        for watcher in spent:
                            del entry[watcher]
                    by_watcher = self.by_watcher
                    for watcher in spent:  # _spent, inlined: a fan-out spends thousands
                        state = by_watcher.get(watcher)
                        if state is not None:
                            if state[0] <= 1:
                                del by_watcher[watcher]
                            else:
                                state[0] -= 1
        if self.recursive_count and event_type != NODE_CHILDREN_CHANGED:
            for ancestor in _parents(path):
                entry = by_path.get(ancestor)
                if type(entry) is dict:
                    for watcher, mode in entry.items():
                        if mode == PERSISTENT_RECURSIVE:
                            fired.add(watcher)
        if suppress:
            fired -= suppress
        return fired

    def watch_count(self) -> int:
        """@return: the (watcher, path) pairs of this table."""
        return sum(len(entry) if type(entry) is dict else 1 for entry in self.by_path.values())

    def paths_by_watcher(self) -> dict[Any, list[str]]:
        """@return: each watcher's watched paths, in the order they were set."""
        return {
            watcher: self._live_paths(watcher, state[1])
            for watcher, state in self.by_watcher.items()
        }

    def watchers_by_path(self) -> dict[str, list[Any]]:
        """@return: each watched path's watchers."""
        return {
            path: list(entry) if type(entry) is dict else [entry]
            for path, entry in self.by_path.items()
        }

    def summary(self) -> tuple[int, int, int]:
        """@return: watchers, watched paths and watches, without listing them."""
        by_watcher = self.by_watcher
        return (
            len(by_watcher),
            len(self.by_path),
            sum(state[0] for state in by_watcher.values()),
        )


class WatchManager:
    """
    Every watch of one session server.

    @ivar data_watches: the table of getData/exists watches.
    @ivar child_watches: the table of getChildren watches.
    """

    def __init__(self, shared_path: Callable[[str], str] | None = None) -> None:
        """
        @param shared_path: C{f(path)} giving an equal string kept anyway (the tree's
            own key of an existing node), to key the tables with instead of the
            request's: then a watch on an existing node costs no string of its own.
        """
        self.data_watches = _WatchTable()
        self.child_watches = _WatchTable()
        self._shared_path = shared_path

    # Registration, as the read operations do it.

    def add_data_watch(self, path: str, watcher: Any) -> None:
        """A getData or exists watch (exists on a missing node is one too)."""
        if self._shared_path is not None:
            path = self._shared_path(path)
        self.data_watches.add(path, watcher, STANDARD)

    def add_child_watch(self, path: str, watcher: Any) -> None:
        """A getChildren watch."""
        if self._shared_path is not None:
            path = self._shared_path(path)
        self.child_watches.add(path, watcher, STANDARD)

    def add_persistent_watch(self, path: str, watcher: Any, recursive: bool) -> None:
        """addWatch: the watcher goes in both tables with the same mode."""
        mode = PERSISTENT_RECURSIVE if recursive else PERSISTENT
        if self._shared_path is not None:
            path = self._shared_path(path)
        self.data_watches.add(path, watcher, mode)
        self.child_watches.add(path, watcher, mode)

    def remove_watcher(self, watcher: Any) -> None:
        """Forget every watch of a closed connection."""
        self.data_watches.remove_watcher(watcher)
        self.child_watches.remove_watcher(watcher)

    def contains(self, path: str, watcher_type: int, watcher: Any) -> bool:
        """
        checkWatches: does C{path} count as watched by C{watcher} in the tables of
        C{watcher_type}?  See L{_WatchTable.contains} for ZooKeeper 3.8's rules.

        @raise ValueError: for a relative path ZooKeeper fails on.
        """
        if watcher_type == WATCHER_TYPE_CHILDREN:
            return self.child_watches.contains(path, watcher)
        if watcher_type == WATCHER_TYPE_DATA:
            return self.data_watches.contains(path, watcher)
        in_children = self.child_watches.contains(path, watcher)
        in_data = self.data_watches.contains(path, watcher)
        return in_children or in_data

    def remove(self, path: str, watcher_type: int, watcher: Any) -> bool:
        """removeWatches: drop the watcher's watches of C{path}; was there any?"""
        if watcher_type == WATCHER_TYPE_CHILDREN:
            return self.child_watches.remove(path, watcher)
        if watcher_type == WATCHER_TYPE_DATA:
            return self.data_watches.remove(path, watcher)
        removed_child = self.child_watches.remove(path, watcher)
        removed_data = self.data_watches.remove(path, watcher)
        return removed_child or removed_data

    # Triggering.

    def watchers_for(self, event_type: int, path: str) -> set:
        """
        Consume and return the watchers notified of one event, with DataTree's rules.

        @param event_type: NodeCreated, NodeDeleted, NodeDataChanged (on the node's
            path) or NodeChildrenChanged (on the parent's path).
        """
        if event_type == NODE_CHILDREN_CHANGED:
            return self.child_watches.trigger(path, event_type)
        if event_type == NODE_DELETED:
            fired = self.data_watches.trigger(path, event_type)
            return fired | self.child_watches.trigger(path, event_type, fired)
        return self.data_watches.trigger(path, event_type)

    def dispatch(self, events: Iterable[tuple[int, str]], may_read=None) -> int:
        """
        Send each event to its watchers, encoding each event once.

        @param events: C{(event_type, path)} pairs, in commit order.
        @param may_read: optional C{f(watcher, event_type, path) -> bool}; ZooKeeper 3.8
            does not deliver an event to a client without READ on the node.
        @return: how many notifications were sent.
        """
        data_by_path = self.data_watches.by_path
        child_by_path = self.child_watches.by_path
        if not data_by_path and not child_by_path:
            return 0
        # Ancestors matter only while a recursive watch exists (in either table: a
        # later one-shot watch replaces its mode in one of them).
        recursive = self.data_watches.recursive_count or self.child_watches.recursive_count
        sent = 0
        for event_type, path in events:
            if not recursive:
                # The common case, a write nobody watches: one lookup per table, no
                # sets (measured 1.2 -> 0.4 us per commit of a setData, no watches).
                if event_type == NODE_CHILDREN_CHANGED:
                    if path not in child_by_path:
                        continue
                elif path not in data_by_path and (
                    event_type != NODE_DELETED or path not in child_by_path
                ):
                    continue
            watchers = self.watchers_for(event_type, path)
            if not watchers:
                continue
            frame = encode_event(event_type, path)
            for watcher in watchers:
                if may_read is not None and not may_read(watcher, event_type, path):
                    continue
                watcher.send_event(frame)
                sent += 1
        return sent

    def watched_paths(self) -> tuple[set[str], set[str]]:
        """@return: the paths with data watches, and those with child watches."""
        return set(self.data_watches.by_path), set(self.child_watches.by_path)

    # Reporting (wchs, wchc, wchp, mntr).

    def watch_count(self) -> int:
        """Total (watcher, path) pairs over both tables, as zk_watch_count."""
        return self.data_watches.watch_count() + self.child_watches.watch_count()

    def data_watch_report(self) -> tuple[dict[Any, list[str]], dict[str, list[Any]]]:
        """
        The data-watch table by watcher and by path (lists built for the report).

        ZooKeeper's wchs, wchc and wchp report the data-watch table only (child
        watches are not listed), and zkreg reports the same.
        """
        return self.data_watches.paths_by_watcher(), self.data_watches.watchers_by_path()

    def data_watch_summary(self) -> tuple[int, int, int]:
        """wchs: connections watching, paths watched and watches of the data table."""
        return self.data_watches.summary()
