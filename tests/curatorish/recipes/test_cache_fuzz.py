"""
Caches under random changes, connection cuts, outages and a session expiry: at the end
every cache equals the server's tree, and its events alone (replayed into an empty map,
rejecting any that does not fit) rebuild that same tree: none missed, none reordered.

All the caches watch the same writes at once, through one TCP proxy that the test cuts
and blocks: L{CuratorCache} on a persistent recursive watch and on one-shot watches,
L{TreeCache} whole and to depth 1, L{PathChildrenCache}.  CI runs a few hundred changes
per server; C{CURATORISH_CACHE_FUZZ_CHANGES=5000} runs more (and so more cuts).
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from curatorish.errors import NodeExistsError, NoNodeError
from curatorish.kill_session import expire_session, session_of
from curatorish.recipes import CuratorCache, PathChildrenCache, TreeCache
from tests.curatorish.recipes.cache_support import Replay, server_tree, snapshot
from tests.support.waiting import WaitTimeout, wait_until

CHANGES = int(os.environ.get("CURATORISH_CACHE_FUZZ_CHANGES", "600"))
#: A connection event (cut, or outage) every this many changes.
CUT_EVERY = 100
SEED = int(os.environ.get("CURATORISH_CACHE_FUZZ_SEED", "9"))
NAMES = ("a", "b", "c")


def _random_path(rng: random.Random, root: str) -> str:
    depth = rng.randint(1, 3)
    return root + "".join("/" + rng.choice(NAMES) for _ in range(depth))


def _change(rng: random.Random, client: Any, root: str) -> None:
    """One random write: create, set, delete a leaf or a subtree, rarely the root."""
    roll = rng.random()
    if roll < 0.01:
        client.delete(root, children=True, quietly=True)
        client.create(root, b"root again")
        return
    path = _random_path(rng, root)
    data = rng.randbytes(rng.randint(0, 12))
    try:
        if roll < 0.45:
            client.create(path, data, parents=True)
        elif roll < 0.8:
            client.set_data(path, data)
        else:
            client.delete(path, children=rng.random() < 0.5)
    except (NoNodeError, NodeExistsError):
        pass
    except Exception as error:
        if type(error).__name__ != "NotEmptyError":
            raise


def _connection_trouble(
    rng: random.Random, round_number: int, proxy: Any, server: Any, watchers: list[Any]
) -> None:
    if round_number == 2:
        # Session loss: every watch is gone; the caches must rebuild.
        for watcher in watchers:
            expire_session(server.hosts, *session_of(watcher))
    elif rng.random() < 0.5:
        proxy.cut()
    else:
        # An outage during which writes go on (events for them are never sent).
        proxy.block()
        proxy.cut()
        return
    proxy.unblock()


def test_caches_equal_the_tree_after_random_changes_and_reconnects(
    server: Any, make_client: Any, proxy: Any
) -> None:
    rng = random.Random(SEED)
    writer = make_client(server.hosts)
    watcher = make_client(proxy.hosts, session_timeout_ms=8_000)
    # ZooKeeper before 3.9 keeps one watch mode per (session, path): a one-shot watch
    # on the root would replace the persistent recursive one (ZOOKEEPER-4466).  So the
    # persistent cache has a session of its own.
    persistent_watcher = make_client(proxy.hosts, session_timeout_ms=8_000)
    root = f"/cache-fuzz-{uuid.uuid4().hex[:8]}"
    writer.create(root, b"root")

    caches: list[tuple[str, Any, Replay, int | None, bool]] = []

    def add(name: str, cache: Any, replay: Replay, depth: int | None, root_too: bool) -> None:
        caches.append((name, cache, replay, depth, root_too))

    for persistent in (True, False):
        replay = Replay()
        cache = CuratorCache(
            persistent_watcher if persistent else watcher, root, persistent_watch=persistent
        )
        cache.listenable().add_listener(replay.curator_cache_listener())
        add(f"CuratorCache(persistent={persistent})", cache, replay, None, True)
    for depth in (None, 1):
        replay = Replay()
        tree = TreeCache(watcher, root, max_depth=depth)
        tree.get_listenable().add_listener(replay.tree_cache_listener)
        add(f"TreeCache(max_depth={depth})", tree, replay, depth, True)
    replay = Replay()
    children = PathChildrenCache(watcher, root)
    children.get_listenable().add_listener(replay.path_children_listener)
    add("PathChildrenCache", children, replay, 1, False)
    for _, cache, *_ in caches:
        cache.start()

    for number in range(CHANGES):
        _change(rng, writer, root)
        if number % CUT_EVERY == CUT_EVERY // 2:
            _connection_trouble(
                rng, number // CUT_EVERY, proxy, server, [watcher, persistent_watcher]
            )
    proxy.unblock()

    failures: dict[str, Any] = {}
    for name, cache, replay, depth, root_too in caches:
        truth = server_tree(writer, root, depth)
        if not root_too:
            truth.pop(root, None)

        def cached(cache: Any = cache, root_too: bool = root_too) -> dict[str, Any]:
            return _contents(cache, root, root_too)

        try:
            wait_until(lambda truth=truth, cached=cached: cached() == truth, timeout=60)
        except WaitTimeout:
            failures[name] = _differences(cached(), truth)
            continue
        try:
            wait_until(lambda truth=truth, replay=replay: replay.snapshot() == truth, timeout=30)
        except WaitTimeout:
            failures[name + " events"] = _differences(replay.snapshot(), truth)
        if replay.errors:
            failures[name + " event errors"] = replay.errors[:5]
    assert failures == {}
    for _, cache, *_ in caches:
        cache.close()


def _contents(cache: Any, root: str, root_too: bool) -> dict[str, Any]:
    if isinstance(cache, CuratorCache):
        return snapshot(cache.stream())
    if isinstance(cache, PathChildrenCache):
        return snapshot(cache.get_current_data())
    found = []
    pending = [root]
    while pending:
        path = pending.pop()
        node = cache.get_current_data(path)
        if node is None:
            continue
        found.append(node)
        pending.extend(path + "/" + name for name in cache.get_current_children(path) or {})
    nodes = snapshot(found)
    if not root_too:
        nodes.pop(root, None)
    return nodes


def _differences(cached: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    return {
        path: (cached.get(path), truth.get(path))
        for path in sorted(set(cached) | set(truth))
        if cached.get(path) != truth.get(path)
    }
