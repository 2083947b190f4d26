"""
Interop with Apache Curator 5.4, against zkreg: Curator's C{CuratorCache} (a Java
program, tests/java/CuratorCacheMirror.java) holds exactly what curatorish wrote, and
curatorish's L{CuratorCache} holds exactly what Curator wrote; both equal the server.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from curatorish.errors import NodeExistsError, NoNodeError
from curatorish.recipes import CuratorCache
from tests.curatorish.recipes.cache_support import Replay, Snapshot, server_tree, snapshot
from tests.support.waiting import wait_until

CHANGES = 150


def _java_nodes(java: Any) -> Snapshot:
    line = java.request("dump", "NODES")
    found: Snapshot = {}
    for entry in filter(None, line[len("NODES ") :].split(";")):
        path, value = entry.split("=", 1)
        data, czxid, mzxid = value.split(":")
        found[path] = (b"" if data == "-" else bytes.fromhex(data), int(czxid), int(mzxid))
    return found


def _paths(rng: random.Random, root: str) -> str:
    return root + "".join("/" + rng.choice("xyz") for _ in range(rng.randint(1, 3)))


def test_curator_cache_in_java_holds_curatorish_writes(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    client = make_client(curatorish_zkreg.hosts)
    root = f"/cache-java-{uuid.uuid4().hex[:8]}"
    client.create(root + "/before", b"first", parents=True)
    rng = random.Random(1)
    with java_program("CuratorCacheMirror").start(curatorish_zkreg.hosts) as java:
        java.expect("READY", timeout=60)
        assert java.request(f"cache {root}", "CACHING") == "CACHING 2"
        for _ in range(CHANGES):
            path = _paths(rng, root)
            data = rng.randbytes(rng.randint(1, 8))
            try:
                roll = rng.random()
                if roll < 0.5:
                    client.create(path, data, parents=True)
                elif roll < 0.8:
                    client.set_data(path, data)
                else:
                    client.delete(path, children=True)
            except (NoNodeError, NodeExistsError):
                pass
        truth = server_tree(client, root)
        wait_until(lambda: _java_nodes(java) == truth, timeout=30, message="Curator's cache")
        assert java.request("quit", "BYE") == "BYE"


def test_curatorish_cache_holds_curator_writes(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    client = make_client(curatorish_zkreg.hosts)
    root = f"/cache-java-{uuid.uuid4().hex[:8]}"
    client.create(root, b"")
    cache = CuratorCache(client, root)
    replay = Replay()
    cache.listenable().add_listener(replay.curator_cache_listener())
    cache.start()
    assert replay.initialized.wait(15)
    rng = random.Random(2)
    with java_program("CuratorCacheMirror").start(curatorish_zkreg.hosts) as java:
        java.expect("READY", timeout=60)
        for _ in range(CHANGES):
            path = _paths(rng, root)
            data = rng.randbytes(rng.randint(1, 8)).hex()
            roll = rng.random()
            if roll < 0.5:
                java.send(f"create {path} {data}")
            elif roll < 0.8:
                java.send(f"set {path} {data}")
            else:
                java.send(f"delete {path}")
            answer = java.read_line()
            assert answer is not None and (
                not answer.startswith("ERROR") or "NoNode" in answer or "NodeExists" in answer
            ), answer
        assert java.request("quit", "BYE") == "BYE"
    truth = server_tree(client, root)
    wait_until(lambda: snapshot(cache.stream()) == truth, timeout=30, message="curatorish's cache")
    wait_until(lambda: replay.snapshot() == truth, timeout=30)
    assert replay.errors == []
    cache.close()
