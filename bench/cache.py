"""
Cache convergence: how long after a burst of 1,000 changes a cache holds all of them.

    python -m bench.cache [--changes 1000] [--rounds 3] [--servers zookeeper,zkreg] [--no-java]

For each server (Apache ZooKeeper 3.8 and zkreg, started by L{tests.support.servers}),
and each cache, the same two bursts, written pipelined by one curatorish client:
1,000 creates of children of one node, then 1,000 setData on them.  The clock starts
when the first write is sent and stops when the cache holds the burst's final state:
size and the sum of the data versions.  Each cache is measured alone, in its own
session.

Caches: curatorish L{CuratorCache} on a persistent recursive watch, the same on one-shot
watches (C{persistent_watch=False}), L{TreeCache}, and Apache Curator 5.4's
C{CuratorCache} (tests/java/CuratorCacheMirror.java; skipped with C{--no-java} or
without a JDK).  Medians over the rounds; ratios are zkreg/ZooKeeper.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from curatorish import BlockingCuratorFramework, CuratorFramework
from curatorish.recipes import (
    ChildData,
    CuratorCache,
    CuratorCacheListener,
    CuratorCacheListenerType,
    TreeCache,
    TreeCacheEventType,
)
from curatorish.retry import RetryNTimes
from tests.support.java import JavaProgram, java_unavailable_reason
from tests.support.servers import ServerProcess, ZkregServer, ZooKeeperOracle


class Convergence:
    """Counts a cache's size and version sum from its events; notes when they hit a target."""

    def __init__(self) -> None:
        self.size = 0
        self.versions = 0
        self.target: tuple[int, int] | None = None
        self.reached = threading.Event()
        self.at = 0.0

    def apply(self, old: ChildData | None, new: ChildData | None) -> None:
        if old is not None:
            self.size -= 1
            self.versions -= old.stat.version
        if new is not None:
            self.size += 1
            self.versions += new.stat.version
        if self.target == (self.size, self.versions) and not self.reached.is_set():
            self.at = time.monotonic()
            self.reached.set()

    def expect(self, size: int, versions: int) -> None:
        self.reached.clear()
        self.target = (size, versions)


def _curator_cache(client: CuratorFramework, root: str, tally: Convergence, **kw: Any) -> Any:
    class Listener(CuratorCacheListener):
        def event(self, type: Any, old_data: Any, data: Any) -> None:
            if type is CuratorCacheListenerType.NODE_CREATED:
                tally.apply(None, data)
            elif type is CuratorCacheListenerType.NODE_CHANGED:
                tally.apply(old_data, data)
            else:
                tally.apply(old_data, None)

    cache = CuratorCache(client, root, **kw)
    cache.listenable().add_listener(Listener())
    return cache


def _tree_cache(client: CuratorFramework, root: str, tally: Convergence) -> Any:
    def listener(_client: Any, event: Any) -> None:
        if event.type is TreeCacheEventType.NODE_ADDED:
            tally.apply(None, event.data)
        elif event.type is TreeCacheEventType.NODE_UPDATED:
            tally.apply(event.old_data, event.data)
        elif event.type is TreeCacheEventType.NODE_REMOVED:
            tally.apply(event.data, None)

    cache = TreeCache(client, root)
    cache.get_listenable().add_listener(listener)
    return cache


CACHES: dict[str, Callable[[CuratorFramework, str, Convergence], Any]] = {
    "CuratorCache (recursive watch)": lambda c, r, t: _curator_cache(c, r, t),
    "CuratorCache (one-shot watches)": lambda c, r, t: _curator_cache(
        c, r, t, persistent_watch=False
    ),
    "TreeCache": _tree_cache,
}


async def _burst(client: CuratorFramework, root: str, changes: int, create: bool) -> None:
    writes = [
        client.create(f"{root}/n{i}", b"x" * 32)
        if create
        else client.set_data(f"{root}/n{i}", b"y" * 32)
        for i in range(changes)
    ]
    await defer.gatherResults(writes, consumeErrors=True)


def measure_python(hosts: str, name: str, changes: int) -> tuple[float, float]:
    """@return: seconds to converge after the create burst and after the set burst."""
    writer = _client(hosts)
    watcher = _client(hosts)
    root = f"/bench-cache-{uuid.uuid4().hex[:8]}"
    writer.create(root, b"")
    tally = Convergence()
    tally.expect(1, 0)
    cache = watcher.call(CACHES[name], watcher.async_client, root, tally)
    watcher.call(cache.start)
    assert tally.reached.wait(30), "no initial load"
    timings = []
    for create, versions in ((True, 0), (False, changes)):
        tally.expect(changes + 1, versions)
        started = time.monotonic()
        writer.run(_burst, root, changes, create)
        assert tally.reached.wait(120), f"{name} did not converge: {tally.size}, {tally.versions}"
        timings.append(tally.at - started)
    watcher.call(cache.close)
    writer.delete(root, children=True)
    writer.close()
    watcher.close()
    return timings[0], timings[1]


def measure_curator(program: JavaProgram, hosts: str, changes: int) -> tuple[float, float]:
    writer = _client(hosts)
    root = f"/bench-cache-{uuid.uuid4().hex[:8]}"
    writer.create(root, b"")
    timings = []
    with program.start(hosts) as java:
        java.expect("READY", timeout=60)
        java.request(f"cache {root}", "CACHING")
        for create, versions in ((True, 0), (False, changes)):
            java.send(f"converge {changes + 1} {versions}")
            started = time.monotonic()
            writer.run(_burst, root, changes, create)
            java.expect("CONVERGED", timeout=120)
            timings.append(time.monotonic() - started)
        java.request("quit", "BYE")
    writer.delete(root, children=True)
    writer.close()
    return timings[0], timings[1]


def _client(hosts: str) -> BlockingCuratorFramework:
    client = BlockingCuratorFramework(
        hosts, retry_policy=RetryNTimes(3, 100), default_data=b"", call_timeout_s=300
    )
    client.start()
    assert client.block_until_connected(30)
    return client


def _server(kind: str) -> ServerProcess:
    server: ServerProcess = ZooKeeperOracle() if kind == "zookeeper" else ZkregServer()
    server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default="zookeeper,zkreg")
    parser.add_argument("--no-java", action="store_true")
    options = parser.parse_args(argv)
    servers = options.servers.split(",")
    program = None
    if not options.no_java and java_unavailable_reason() is None:
        program = JavaProgram("CuratorCacheMirror")
        program.compile()
    names = [*CACHES, *(["Curator 5.4 CuratorCache"] if program else [])]
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for kind in servers:
        server = _server(kind)
        try:
            for _ in range(options.rounds):
                for name in names:
                    if name in CACHES:
                        timing = measure_python(server.hosts, name, options.changes)
                    else:
                        assert program is not None
                        timing = measure_curator(program, server.hosts, options.changes)
                    results.setdefault((name, kind), []).append(timing)
        finally:
            server.cleanup()
    print(f"cache convergence after {options.changes} changes, median of {options.rounds} (ms)")
    header = ["cache", *(f"{kind} create/set" for kind in servers)]
    if len(servers) == 2:
        header.append(f"{servers[1]}/{servers[0]}")
    print(" | ".join(header))
    for name in names:
        cells = [name]
        medians = []
        for kind in servers:
            runs = results[(name, kind)]
            create = statistics.median(run[0] for run in runs) * 1000
            update = statistics.median(run[1] for run in runs) * 1000
            medians.append((create, update))
            cells.append(f"{create:.0f} / {update:.0f}")
        if len(medians) == 2:
            cells.append(
                f"{medians[1][0] / medians[0][0]:.2f} / {medians[1][1] / medians[0][1]:.2f}"
            )
        print(" | ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
