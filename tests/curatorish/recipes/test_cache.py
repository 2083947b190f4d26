"""
The caches' behaviour against real servers (ZooKeeper 3.8 and zkreg): what they load,
which events they report and in what order, their start modes and depth limits, and
both faces.  The long random runs with reconnects are in test_cache_fuzz.py.
"""

from __future__ import annotations

import gzip
import threading
import uuid
from typing import Any

import pytest

from curatorish.recipes import (
    CuratorCache,
    CuratorCacheListener,
    CuratorCacheListenerType,
    CuratorCacheOption,
    NodeCache,
    PathChildrenCache,
    PathChildrenCacheEventType,
    PathChildrenCacheStartMode,
    TreeCache,
    TreeCacheEventType,
)
from tests.curatorish.recipes.cache_support import Replay, server_tree, snapshot
from tests.support.waiting import wait_until


def _root(name: str) -> str:
    return f"/cache-{name}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("persistent_watch", [True, False], ids=["recursive", "one-shot"])
def test_curator_cache_loads_then_follows(
    server: Any, make_client: Any, persistent_watch: bool
) -> None:
    """Initial nodes are created events then initialized; later changes follow in order."""
    client = make_client(server.hosts)
    root = _root("follow")
    client.create(root + "/a/b", b"ab", parents=True)
    client.set_data(root, b"root")
    cache = CuratorCache(client, root, persistent_watch=persistent_watch)
    events: list[tuple[str, str]] = []
    replay = Replay()
    cache.listenable().add_listener(replay.curator_cache_listener())
    cache.listenable().add_listener(
        CuratorCacheListener.builder()
        .for_creates(lambda node: events.append(("created", node.path)))
        .for_changes(lambda old, new: events.append(("changed", new.path)))
        .for_deletes(lambda old: events.append(("deleted", old.path)))
        .for_initialized(lambda: events.append(("initialized", "")))
        .build()
    )
    cache.start()
    assert replay.initialized.wait(15)
    assert sorted(events[:3]) == [
        ("created", root),
        ("created", root + "/a"),
        ("created", root + "/a/b"),
    ]
    assert events[3] == ("initialized", "")
    assert cache.size() == 3
    node = cache.get(root + "/a/b")
    assert node is not None and node.data == b"ab" and node.stat.version == 0

    client.create(root + "/a/c", b"new")
    client.set_data(root + "/a/b", b"changed")
    client.delete(root + "/a", children=True)
    wait_until(lambda: ("deleted", root + "/a") in events, message="the delete of /a")
    assert events[4:6] == [("created", root + "/a/c"), ("changed", root + "/a/b")]
    # Children go before their parent.
    assert set(events[6:8]) == {("deleted", root + "/a/b"), ("deleted", root + "/a/c")}
    assert events[8] == ("deleted", root + "/a")
    assert cache.get(root + "/a") is None
    assert snapshot(cache.stream()) == server_tree(client, root) == replay.snapshot()
    assert replay.errors == []
    cache.close()
    assert cache.size() == 0


def test_curator_cache_root_created_later_and_deleted(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    root = _root("late")
    cache = CuratorCache(client, root)
    replay = Replay()
    cache.listenable().add_listener(replay.curator_cache_listener())
    cache.start()
    assert replay.initialized.wait(15)
    assert cache.size() == 0
    client.create(root + "/x", b"1", parents=True)
    wait_until(lambda: cache.size() == 2)
    client.delete(root, children=True)
    wait_until(lambda: cache.size() == 0)
    client.create(root, b"again")
    wait_until(lambda: cache.get(root) is not None and cache.get(root).data == b"again")
    assert replay.errors == []
    cache.close()


def test_curator_cache_options(server: Any, make_client: Any) -> None:
    """SINGLE_NODE_CACHE ignores the subtree; COMPRESSED_DATA gunzips; DO_NOT_CLEAR_ON_CLOSE keeps."""
    client = make_client(server.hosts)
    root = _root("options")
    client.create(root + "/child", b"", parents=True)
    client.set_data(root, gzip.compress(b"plain"))
    cache = CuratorCache(
        client,
        root,
        [
            CuratorCacheOption.SINGLE_NODE_CACHE,
            CuratorCacheOption.COMPRESSED_DATA,
            CuratorCacheOption.DO_NOT_CLEAR_ON_CLOSE,
        ],
    )
    changes: list[Any] = []
    cache.listenable().add_listener(
        CuratorCacheListener.builder().for_all(_Recorder(changes)).build()
    )
    cache.start()
    wait_until(lambda: cache.get(root) is not None)
    assert cache.get(root).data == b"plain"
    client.create(root + "/other", b"")
    client.set_data(root, gzip.compress(b"second"))
    wait_until(lambda: cache.get(root).data == b"second")
    assert cache.size() == 1
    wait_until(lambda: len(changes) >= 2)
    assert [type for type, _ in changes] == [
        CuratorCacheListenerType.NODE_CREATED,
        CuratorCacheListenerType.NODE_CHANGED,
    ]
    cache.close()
    assert cache.size() == 1


class _Recorder(CuratorCacheListener):
    def __init__(self, into: list[Any]) -> None:
        self.into = into

    def event(self, type: Any, old_data: Any, data: Any) -> None:
        self.into.append((type, data))


def test_curator_cache_async_face(server: Any, make_client: Any) -> None:
    """On the async client, start/close return Deferreds and listeners run on the reactor."""
    blocking = make_client(server.hosts)
    root = _root("async")
    blocking.create(root, b"v")
    threads: list[str] = []
    initialized = threading.Event()

    def build() -> Any:
        cache = CuratorCache(blocking.async_client, root)
        cache.listenable().add_listener(
            CuratorCacheListener.builder()
            .for_creates(lambda node: threads.append(threading.current_thread().name))
            .for_initialized(initialized.set)
            .build()
        )
        started = cache.start()
        return cache, started

    cache, started = blocking.call(build)
    assert initialized.wait(15)
    assert cache.get(root).data == b"v"
    assert threads and "curatorish-events" not in threads
    blocking.call(cache.close)


def test_tree_cache_max_depth_and_children(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    root = _root("tree")
    client.create(root + "/a/b/c", b"deep", parents=True)
    client.create(root + "/d", b"d")
    replay = Replay()
    cache = TreeCache(client, root, max_depth=1)
    cache.get_listenable().add_listener(replay.tree_cache_listener)
    assert cache.start() is cache
    assert replay.initialized.wait(15)
    assert set(replay.snapshot()) == {root, root + "/a", root + "/d"}
    assert set(cache.get_current_children(root)) == {"a", "d"}
    assert cache.get_current_children(root + "/a") == {}
    assert cache.get_current_data(root + "/a/b") is None
    assert cache.get_current_children(root + "/nothing") is None
    client.create(root + "/a/x", b"")
    client.create(root + "/e", b"e")
    wait_until(lambda: cache.get_current_data(root + "/e") is not None)
    assert cache.get_current_data(root + "/a/x") is None
    assert snapshot(_tree_nodes(cache, root)) == server_tree(client, root, 1)
    assert replay.errors == []
    cache.close()


def _tree_nodes(cache: TreeCache, root: str) -> list[Any]:
    found = []
    pending = [root]
    while pending:
        path = pending.pop()
        node = cache.get_current_data(path)
        if node is None:
            continue
        found.append(node)
        for name in cache.get_current_children(path) or {}:
            pending.append(path + "/" + name)
    return found


def test_tree_cache_events_and_connection_events(server: Any, make_client: Any, proxy: Any) -> None:
    client = make_client(server.hosts)
    watcher = make_client(proxy.hosts, session_timeout_ms=20_000)
    root = _root("treeconn")
    client.create(root, b"")
    types: list[Any] = []
    cache = TreeCache(watcher, root)
    cache.get_listenable().add_listener(lambda _client, event: types.append(event.type))
    cache.start()
    wait_until(lambda: TreeCacheEventType.INITIALIZED in types)
    proxy.cut()
    wait_until(lambda: TreeCacheEventType.CONNECTION_RECONNECTED in types)
    assert TreeCacheEventType.CONNECTION_SUSPENDED in types
    client.set_data(root, b"after")
    wait_until(lambda: TreeCacheEventType.NODE_UPDATED in types)
    cache.close()


@pytest.mark.parametrize("mode", list(PathChildrenCacheStartMode), ids=lambda mode: mode.value)
def test_path_children_cache_start_modes(server: Any, make_client: Any, mode: Any) -> None:
    client = make_client(server.hosts)
    root = _root("children")
    client.create(root + "/one", b"1", parents=True)
    client.create(root + "/one/deeper", b"")
    client.create(root + "/two", b"2")
    events: list[Any] = []
    cache = PathChildrenCache(client, root)
    cache.get_listenable().add_listener(lambda _client, event: events.append(event))
    cache.start(mode)
    if mode is PathChildrenCacheStartMode.BUILD_INITIAL_CACHE:
        # Loaded when start returns, and no events for what it found.
        assert [node.path for node in cache.get_current_data()] == [root + "/one", root + "/two"]
    wait_until(lambda: len(cache.get_current_data()) == 2)
    client.create(root + "/three", b"3")
    wait_until(
        lambda: any(
            e.type is PathChildrenCacheEventType.CHILD_ADDED and e.data.path.endswith("three")
            for e in events
        )
    )
    types = [event.type for event in events]
    added = PathChildrenCacheEventType.CHILD_ADDED
    if mode is PathChildrenCacheStartMode.BUILD_INITIAL_CACHE:
        assert types == [added]
    elif mode is PathChildrenCacheStartMode.NORMAL:
        assert types == [added, added, added]
    else:
        assert types == [added, added, PathChildrenCacheEventType.INITIALIZED, added]
        assert [node.path for node in events[2].initial_data] == [root + "/one", root + "/two"]
    assert cache.get_current_data(root + "/one").data == b"1"
    client.set_data(root + "/two", b"2b")
    client.delete(root + "/one", children=True)
    wait_until(lambda: types_of(events)[-2:] == ["CHILD_UPDATED", "CHILD_REMOVED"])
    assert [node.path for node in cache.get_current_data()] == [root + "/three", root + "/two"]
    cache.close()


def types_of(events: list[Any]) -> list[str]:
    return [event.type.value for event in events]


def test_path_children_cache_creates_its_parent(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    root = _root("parent") + "/deep/er"
    cache = PathChildrenCache(client, root)
    cache.start(PathChildrenCacheStartMode.BUILD_INITIAL_CACHE)
    assert client.exists(root) is not None
    assert cache.get_current_data() == []
    cache.close()


def test_node_cache(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _root("node")
    cache = NodeCache(client, path)
    changes = threading.Semaphore(0)
    cache.get_listenable().add_listener(changes.release)
    cache.start(build_initial=True)
    assert cache.get_current_data() is None
    client.create(path, b"born")
    assert changes.acquire(timeout=15)
    assert cache.get_current_data().data == b"born"
    client.set_data(path, b"grown")
    assert changes.acquire(timeout=15)
    assert cache.get_current_data().data == b"grown"
    client.create(path + "/child", b"")
    client.delete(path, children=True)
    wait_until(lambda: cache.get_current_data() is None)
    cache.close()


def test_node_cache_build_initial_is_silent(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _root("nodeinit")
    client.create(path, b"there")
    cache = NodeCache(client, path)
    heard: list[int] = []
    cache.get_listenable().add_listener(lambda: heard.append(1))
    cache.start(build_initial=True)
    assert cache.get_current_data().data == b"there"
    client.set_data(path, b"moved")
    wait_until(lambda: heard == [1])
    cache.close()


@pytest.mark.parametrize("persistent_watch", [True, False], ids=["recursive", "one-shot"])
def test_closing_one_cache_keeps_another_on_the_same_path(
    server: Any, make_client: Any, persistent_watch: bool
) -> None:
    """Two caches of one session on one path: closing one leaves the other's watch."""
    client = make_client(server.hosts)
    root = _root("twins")
    client.create(root, b"")
    first = CuratorCache(client, root, persistent_watch=persistent_watch)
    second = CuratorCache(client, root, persistent_watch=persistent_watch)
    first.start()
    second.start()
    wait_until(lambda: first.size() == 1 and second.size() == 1)
    first.close()
    client.create(root + "/after", b"x")
    client.set_data(root, b"changed")
    wait_until(lambda: second.get(root + "/after") is not None, message="the second cache")
    wait_until(lambda: second.get(root).data == b"changed")
    second.close()
