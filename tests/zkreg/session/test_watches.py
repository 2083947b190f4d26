"""
The watch manager against ZooKeeper 3.8's WatchManager/DataTree rules.
"""

from __future__ import annotations

from zkreg.proto.records import ReplyHeader, WatcherEvent
from zkreg.session.watches import (
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
    assert by_watcher == {watcher: {"/a"}}
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
