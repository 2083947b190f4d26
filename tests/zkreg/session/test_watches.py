"""
The watch manager against ZooKeeper 3.8's WatchManager/DataTree rules.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from zkreg.proto.records import ReplyHeader, WatcherEvent
from zkreg.session.watches import (
    LISTED_WATCHES,
    NODE_CHILDREN_CHANGED,
    NODE_CREATED,
    NODE_DATA_CHANGED,
    NODE_DELETED,
    WATCHER_TYPE_ANY,
    WATCHER_TYPE_CHILDREN,
    WATCHER_TYPE_DATA,
    WatchManager,
    encode_event,
)


class Watcher:
    def __init__(self, session_id: int = 1) -> None:
        self.session_id = session_id
        self.frames: list[bytes] = []

    def send_event(self, frame: bytes) -> None:
        self.frames.append(frame)

    def events(self) -> list[tuple[int, str]]:
        out = []
        for frame in self.frames:
            header, offset = ReplyHeader.deserialize(frame, 4)
            assert header == ReplyHeader(-1, -1, 0)
            event, _ = WatcherEvent.deserialize(frame, offset)
            assert event.state == 3
            out.append((event.type, event.path))
        return out


def test_event_frame_matches_codec():
    frame = encode_event(NODE_CREATED, "/a/ü")
    body = ReplyHeader(-1, -1, 0).serialize() + WatcherEvent(1, 3, "/a/ü").serialize()
    assert frame == len(body).to_bytes(4, "big") + body


def test_one_shot_data_watch_fires_once():
    manager, watcher = WatchManager(), Watcher()
    manager.add_data_watch("/a", watcher)
    manager.dispatch([(NODE_DATA_CHANGED, "/a"), (NODE_DATA_CHANGED, "/a")])
    assert watcher.events() == [(NODE_DATA_CHANGED, "/a")]
    assert manager.watch_count() == 0


def test_exist_watch_fires_on_create():
    manager, watcher = WatchManager(), Watcher()
    manager.add_data_watch("/a", watcher)
    manager.dispatch([(NODE_CREATED, "/a"), (NODE_CHILDREN_CHANGED, "/")])
    assert watcher.events() == [(NODE_CREATED, "/a")]


def test_child_watch_fires_on_children_changed_not_data():
    manager, watcher = WatchManager(), Watcher()
    manager.add_child_watch("/a", watcher)
    manager.dispatch([(NODE_DATA_CHANGED, "/a"), (NODE_CHILDREN_CHANGED, "/a")])
    assert watcher.events() == [(NODE_CHILDREN_CHANGED, "/a")]


def test_data_and_child_watch_get_one_deleted():
    manager, watcher = WatchManager(), Watcher()
    manager.add_data_watch("/a", watcher)
    manager.add_child_watch("/a", watcher)
    manager.dispatch([(NODE_DELETED, "/a"), (NODE_CHILDREN_CHANGED, "/")])
    assert watcher.events() == [(NODE_DELETED, "/a")]
    assert manager.watch_count() == 0


def test_child_watch_gets_deleted():
    manager, watcher = WatchManager(), Watcher()
    manager.add_child_watch("/a", watcher)
    manager.dispatch([(NODE_DELETED, "/a")])
    assert watcher.events() == [(NODE_DELETED, "/a")]


def test_event_encoded_once_for_all_watchers():
    manager = WatchManager()
    first, second = Watcher(1), Watcher(2)
    manager.add_data_watch("/a", first)
    manager.add_data_watch("/a", second)
    manager.dispatch([(NODE_DATA_CHANGED, "/a")])
    assert first.frames[0] is second.frames[0]


def test_persistent_watch_stays_and_sees_children():
    manager, watcher = WatchManager(), Watcher()
    manager.add_persistent_watch("/a", watcher, recursive=False)
    manager.dispatch(
        [
            (NODE_DATA_CHANGED, "/a"),
            (NODE_DATA_CHANGED, "/a"),
            (NODE_CHILDREN_CHANGED, "/a"),
            (NODE_CREATED, "/a/b"),
        ]
    )
    assert watcher.events() == [
        (NODE_DATA_CHANGED, "/a"),
        (NODE_DATA_CHANGED, "/a"),
        (NODE_CHILDREN_CHANGED, "/a"),
    ]
    assert manager.contains("/a", WATCHER_TYPE_DATA, watcher)


def test_recursive_watch_sees_descendants_but_not_children_changed():
    manager, watcher = WatchManager(), Watcher()
    manager.add_persistent_watch("/a", watcher, recursive=True)
    manager.dispatch(
        [
            (NODE_CREATED, "/a/b"),
            (NODE_CHILDREN_CHANGED, "/a"),
            (NODE_CREATED, "/a/b/c"),
            (NODE_CHILDREN_CHANGED, "/a/b"),
            (NODE_DATA_CHANGED, "/a/b/c"),
            (NODE_DELETED, "/a/b/c"),
            (NODE_CREATED, "/ab"),
            (NODE_DATA_CHANGED, "/a"),
        ]
    )
    assert watcher.events() == [
        (NODE_CREATED, "/a/b"),
        (NODE_CREATED, "/a/b/c"),
        (NODE_DATA_CHANGED, "/a/b/c"),
        (NODE_DELETED, "/a/b/c"),
        (NODE_DATA_CHANGED, "/a"),
    ]


def test_recursive_watch_on_root():
    manager, watcher = WatchManager(), Watcher()
    manager.add_persistent_watch("/", watcher, recursive=True)
    manager.dispatch([(NODE_CREATED, "/x"), (NODE_CHILDREN_CHANGED, "/")])
    assert watcher.events() == [(NODE_CREATED, "/x")]


def test_recursive_and_one_shot_get_one_event():
    manager, watcher = WatchManager(), Watcher()
    manager.add_persistent_watch("/a", watcher, recursive=True)
    manager.add_data_watch("/a/b", watcher)
    manager.dispatch([(NODE_DATA_CHANGED, "/a/b")])
    assert watcher.events() == [(NODE_DATA_CHANGED, "/a/b")]


def test_one_shot_after_persistent_replaces_mode_as_in_38():
    """ZooKeeper 3.8 keeps one mode per (watcher, path): a later getData watch wins."""
    manager, watcher = WatchManager(), Watcher()
    manager.add_persistent_watch("/a", watcher, recursive=False)
    manager.add_data_watch("/a", watcher)
    manager.dispatch([(NODE_DATA_CHANGED, "/a"), (NODE_DATA_CHANGED, "/a")])
    assert watcher.events() == [(NODE_DATA_CHANGED, "/a")]


def test_check_and_remove():
    manager, watcher = WatchManager(), Watcher()
    manager.add_child_watch("/a", watcher)
    assert manager.contains("/a", WATCHER_TYPE_CHILDREN, watcher)
    assert not manager.contains("/a", WATCHER_TYPE_DATA, watcher)
    assert manager.contains("/a", WATCHER_TYPE_ANY, watcher)
    assert not manager.remove("/a", WATCHER_TYPE_DATA, watcher)
    assert manager.remove("/a", WATCHER_TYPE_ANY, watcher)
    assert not manager.remove("/a", WATCHER_TYPE_ANY, watcher)
    assert manager.watch_count() == 0


def test_remove_watcher_forgets_everything():
    manager, watcher, other = WatchManager(), Watcher(1), Watcher(2)
    manager.add_data_watch("/a", watcher)
    manager.add_child_watch("/b", watcher)
    manager.add_persistent_watch("/c", watcher, recursive=True)
    manager.add_data_watch("/a", other)
    manager.remove_watcher(watcher)
    assert manager.watch_count() == 1
    assert manager.data_watches.recursive_count == 0
    manager.dispatch([(NODE_CREATED, "/c/d"), (NODE_DATA_CHANGED, "/a")])
    assert watcher.events() == []
    assert other.events() == [(NODE_DATA_CHANGED, "/a")]


def test_report_is_data_table_only():
    manager, watcher = WatchManager(), Watcher()
    manager.add_data_watch("/a", watcher)
    manager.add_child_watch("/b", watcher)
    by_watcher, by_path = manager.data_watch_report()
    assert by_watcher == {watcher: ["/a"]}
    assert set(by_path) == {"/a"}
    assert manager.watch_count() == 2


def test_contains_counts_any_watcher_at_the_path_as_in_38():
    """ZooKeeper 3.8's containsWatcher answers true when anyone watches the path."""
    manager, mine, other = WatchManager(), Watcher(1), Watcher(2)
    manager.add_data_watch("/a", other)
    assert manager.contains("/a", WATCHER_TYPE_DATA, mine)
    assert not manager.remove("/a", WATCHER_TYPE_DATA, mine)


def test_contains_ignores_recursive_watch_of_an_ancestor_as_in_38():
    """3.8 takes the watcher's mode at the path asked about, so an ancestor's
    recursive watch does not count."""
    manager, watcher = WatchManager(), Watcher()
    manager.add_persistent_watch("/a", watcher, recursive=True)
    assert manager.contains("/a", WATCHER_TYPE_DATA, watcher)
    assert not manager.contains("/a/b/c", WATCHER_TYPE_DATA, watcher)


class _ModelTable:
    """
    The watch-table rules written plainly (path -> {watcher: mode}, every lookup a
    scan): what the compact layout of L{WatchManager} must agree with.
    """

    def __init__(self) -> None:
        self.modes: dict[str, dict] = {}

    def add(self, path, watcher, mode):
        self.modes.setdefault(path, {})[watcher] = mode

    def remove(self, path, watcher):
        found = watcher in self.modes.get(path, {})
        if found:
            del self.modes[path][watcher]
            if not self.modes[path]:
                del self.modes[path]
        return found

    def remove_watcher(self, watcher):
        for path in list(self.modes):
            self.remove(path, watcher)

    def trigger(self, path, event_type, suppress=frozenset()):
        fired = set()
        for watcher, mode in list(self.modes.get(path, {}).items()):
            if mode != 1 or event_type != NODE_CHILDREN_CHANGED:
                fired.add(watcher)
            if mode == -1:
                self.remove(path, watcher)
        if event_type != NODE_CHILDREN_CHANGED:
            for other, watchers in self.modes.items():
                if path.startswith(other.rstrip("/") + "/") and other != path:
                    fired.update(w for w, m in watchers.items() if m == 1)
        return fired - set(suppress)

    def by_watcher(self):
        out: dict = {}
        for path, watchers in self.modes.items():
            for watcher in watchers:
                out.setdefault(watcher, set()).add(path)
        return out


@pytest.mark.parametrize("listed_watches", [LISTED_WATCHES, 2])
def test_compact_tables_agree_with_the_plain_rules(listed_watches):
    """
    Random registrations (one-shot data and child, persistent, recursive), removals,
    closes and events: the same watchers fire as under the plain rules, and the
    counts and the wchs/wchc/wchp reports agree after every step.  With
    C{listed_watches} 2, most watchers keep no list of their paths, so closes leave
    dead watches behind that must neither fire nor show until a sweep drops them.
    """
    import random

    rng = random.Random(14)
    paths = ["/", "/a", "/a/b", "/a/b/c", "/a/d", "/e"]
    watchers = [Watcher(n) for n in range(1, 6)]
    manager = WatchManager(listed_watches=listed_watches)
    dead_seen = 0
    data, child = _ModelTable(), _ModelTable()
    for _ in range(6000):
        action = rng.random()
        path, watcher = rng.choice(paths), rng.choice(watchers)
        if action < 0.3:
            manager.add_data_watch(path, watcher)
            data.add(path, watcher, -1)
        elif action < 0.45:
            manager.add_child_watch(path, watcher)
            child.add(path, watcher, -1)
        elif action < 0.52:
            recursive = rng.random() < 0.5
            manager.add_persistent_watch(path, watcher, recursive)
            data.add(path, watcher, int(recursive))
            child.add(path, watcher, int(recursive))
        elif action < 0.58:
            kind = rng.choice([WATCHER_TYPE_DATA, WATCHER_TYPE_CHILDREN, WATCHER_TYPE_ANY])
            expected = False
            if kind != WATCHER_TYPE_DATA:
                expected = child.remove(path, watcher) or expected
            if kind != WATCHER_TYPE_CHILDREN:
                expected = data.remove(path, watcher) or expected
            assert manager.remove(path, kind, watcher) == expected
        elif action < 0.6:
            manager.remove_watcher(watcher)
            data.remove_watcher(watcher)
            child.remove_watcher(watcher)
            # A closed connection is never used again; a new one takes its place.
            watchers[watchers.index(watcher)] = Watcher(watcher.session_id)
        else:
            event = rng.choice(
                [NODE_CREATED, NODE_DELETED, NODE_DATA_CHANGED, NODE_CHILDREN_CHANGED]
            )
            if event == NODE_CHILDREN_CHANGED:
                expected = child.trigger(path, event)
            elif event == NODE_DELETED:
                fired = data.trigger(path, event)
                expected = fired | child.trigger(path, event, fired)
            else:
                expected = data.trigger(path, event)
            assert manager.watchers_for(event, path) == expected
        data_count = sum(len(w) for w in data.modes.values())
        child_count = sum(len(w) for w in child.modes.values())
        assert manager.watch_count() == data_count + child_count
        by_watcher, by_path = manager.data_watch_report()
        assert {w: set(p) for w, p in by_watcher.items()} == data.by_watcher()
        assert all(len(p) == len(set(p)) for p in by_watcher.values())
        assert {p: set(w) for p, w in by_path.items()} == {p: set(w) for p, w in data.modes.items()}
        assert manager.data_watch_summary() == (len(by_watcher), len(by_path), data_count)
        recursive = sum(m == 1 for w in data.modes.values() for m in w.values())
        assert manager.data_watches.recursive_count == recursive
        dead_seen += manager.data_watches.dead_watches > 0
    # The closed watchers' leftovers were really exercised (or really absent).
    assert (dead_seen > 100) == (listed_watches == 2), dead_seen


def test_a_hot_watch_does_not_grow_the_watchers_path_list():
    """
    A watcher that re-sets a one-shot watch after every event, beside 1,000 others it
    keeps: its reverse index stays within twice its live watches, and closing the
    connection still forgets every one of them.
    """
    manager, watcher, other = WatchManager(), Watcher(1), Watcher(2)
    for n in range(1000):
        manager.add_data_watch(f"/k/{n}", watcher)
    manager.add_data_watch("/k/0", other)
    for _ in range(20000):
        manager.add_data_watch("/hot", watcher)
        manager.dispatch([(NODE_DATA_CHANGED, "/hot")])
    assert len(watcher.frames) == 20000
    assert len(manager.data_watches.by_watcher[watcher][1]) <= 2 * 1000 + 17
    manager.remove_watcher(watcher)
    assert manager.watch_count() == 1
    assert manager.data_watch_report()[1] == {"/k/0": [other]}


def test_a_watch_costs_about_a_dict_entry():
    """
    Memory: 100,000 one-shot watches of 4 connections on distinct paths cost a dict
    entry in the path table each beyond their path strings, about 38 bytes at this
    size (a per-path set or dict, as before, costs 300+; a list slot per watch in a
    reverse index, as before, 8 more).
    """
    import tracemalloc

    paths = [f"/m/{n}" for n in range(100_000)]
    watchers = [Watcher(n) for n in range(4)]
    manager = WatchManager()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n, path in enumerate(paths):
            manager.add_data_watch(path, watchers[n % 4])
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert manager.watch_count() == 100_000
    assert used / len(paths) < 42, used / len(paths)


def test_recursive_watch_left_in_the_child_table_still_fires_below():
    """
    A one-shot getData watch replaces a recursive watch's mode in the data table
    only (3.8: the later one wins): the deletion of a node below still reaches the
    watcher through the child table's recursive watch (found by ZooKeeper's fuzz
    comparison when dispatch skipped unwatched paths on the data table's count).
    """
    manager, watcher = WatchManager(), Watcher()
    manager.add_persistent_watch("/a", watcher, recursive=True)
    manager.add_data_watch("/a", watcher)
    manager.dispatch([(NODE_DELETED, "/a/b"), (NODE_CHILDREN_CHANGED, "/a")])
    assert watcher.events() == [(NODE_DELETED, "/a/b")]


def test_unwatched_events_skipped_with_watches_elsewhere():
    """Events on paths nobody watches send nothing; a watched one still fires."""
    manager, watcher = WatchManager(), Watcher()
    manager.add_child_watch("/x", watcher)
    manager.dispatch([(NODE_CREATED, "/a"), (NODE_DELETED, "/x/y"), (NODE_DATA_CHANGED, "/x")])
    assert watcher.events() == []
    manager.dispatch([(NODE_DELETED, "/x")])
    assert watcher.events() == [(NODE_DELETED, "/x")]


def test_a_closed_connections_unlisted_watches_never_fire_and_are_swept():
    """
    A connection with more watches than it keeps a list of closes: no scan then, but
    its watches never fire, no report or count shows them, a late registration of
    it is ignored, and once the dead watches reach half the live ones a sweep drops
    them all and the connection object is freed.
    """
    manager = WatchManager(listed_watches=4)
    closing, staying = Watcher(1), Watcher(2)
    for n in range(10):
        manager.add_data_watch(f"/c/{n}", closing)
        manager.add_child_watch(f"/c/{n}", closing)
    manager.add_persistent_watch("/c", closing, recursive=True)
    for n in range(30):
        manager.add_data_watch(f"/s/{n}", staying)
        manager.add_child_watch(f"/s/{n}", staying)
    manager.add_data_watch("/c/0", staying)
    manager.remove_watcher(closing)
    table = manager.data_watches
    assert table.dead_watches == 11  # kept: 2 * 11 < 42 paths
    assert manager.watch_count() == 31 + 30
    assert manager.data_watch_summary() == (1, 31, 31)
    by_watcher, by_path = manager.data_watch_report()
    assert set(by_watcher) == {staying} and len(by_watcher[staying]) == 31
    assert by_path["/c/0"] == [staying] and "/c/1" not in by_path
    assert manager.watched_paths()[0] == {"/c/0"} | {f"/s/{n}" for n in range(30)}
    assert not manager.contains("/c/1", WATCHER_TYPE_ANY, staying)
    manager.add_data_watch("/late", closing)
    manager.dispatch(
        [(NODE_DATA_CHANGED, f"/c/{n}") for n in range(10)]
        + [(NODE_DELETED, "/c/1/x"), (NODE_CHILDREN_CHANGED, "/c/2"), (NODE_CREATED, "/late")]
    )
    assert closing.events() == []
    assert staying.events() == [(NODE_DATA_CHANGED, "/c/0")]
    assert table.dead_watches == 1  # the events consumed the one-shot ones
    assert manager.child_watches.dead_watches == 10
    gone = weakref.ref(closing)
    del closing
    for n in range(30):
        manager.remove("/s/" + str(n), WATCHER_TYPE_DATA, staying)
    manager.remove_watcher(staying)
    gc.collect()
    assert gone() is None
    assert manager.data_watches.by_path == {} and manager.child_watches.by_path == {}
    assert manager.watch_count() == 0
