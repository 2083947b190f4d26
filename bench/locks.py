"""
Lock throughput: curatorish's InterProcessMutex against kazoo's Lock and Apache
Curator 5.4's InterProcessMutex, on the same server.

    python -m bench.locks [--seconds 5] [--contenders 8] [--servers zkreg] [--no-java]

Two workloads per library, each on a fresh lock path:

  - uncontended: one client loops acquire + release; pairs per second.
  - contended: C{--contenders} clients (each its own session) loop acquire + release
    on one path; hand-offs (acquisitions) per second, all clients together.

Each loop runs one warm-up second that is not counted.  Every acquire creates a node
and every release deletes one, so with the servers' default durability the figures
are mostly the disk's fsync latency; C{--no-fsync} shows the clients' own costs.  Libraries: curatorish on the
async face (all clients on one reactor, no thread hops), curatorish on the blocking
face (a thread per client, as kazoo), kazoo 2.x (a thread per client), and Curator
(tests/java/CuratorLockBench.java, a thread per client in one JVM; skipped with
C{--no-java} or without a JDK).  Servers are started by L{tests.support.servers}.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from curatorish import BlockingCuratorFramework
from curatorish.recipes import InterProcessMutex
from curatorish.retry import RetryNTimes
from tests.support.java import JavaProgram, java_unavailable_reason
from tests.support.servers import ServerProcess, ZkregServer, ZooKeeperOracle

WARM_UP_S = 1.0


def _client(hosts: str) -> BlockingCuratorFramework:
    client = BlockingCuratorFramework(
        hosts, retry_policy=RetryNTimes(3, 100), default_data=b"", call_timeout_s=300
    )
    client.start()
    assert client.block_until_connected(30)
    return client


def curatorish_async(hosts: str, clients: int, seconds: float) -> int:
    """All clients' loops as coroutines on the one reactor."""
    path = f"/bench-locks/{uuid.uuid4().hex[:8]}"
    blocking = [_client(hosts) for _ in range(clients)]
    counted = 0

    async def loop(lock: InterProcessMutex, reactor: Any) -> None:
        nonlocal counted
        started = reactor.seconds()
        while True:
            await lock.acquire()
            await lock.release()
            elapsed = reactor.seconds() - started
            if elapsed >= WARM_UP_S + seconds:
                return
            if elapsed >= WARM_UP_S:
                counted += 1

    def run_all() -> defer.Deferred[Any]:
        loops = []
        for client in blocking:
            async_client = client.async_client
            lock = InterProcessMutex(async_client, path)
            loops.append(defer.ensureDeferred(loop(lock, async_client.zookeeper.reactor)))
        return defer.gatherResults(loops, consumeErrors=True)

    blocking[0].call(run_all)
    for client in blocking:
        client.close()
    return counted


def _threaded(
    make_lock: Callable[[], tuple[Any, Callable[[], None]]], clients: int, seconds: float
) -> int:
    counts = [0] * clients
    barrier = threading.Barrier(clients)

    def loop(index: int) -> None:
        lock, close = make_lock()
        barrier.wait()
        started = time.monotonic()
        try:
            while True:
                lock.acquire()
                lock.release()
                elapsed = time.monotonic() - started
                if elapsed >= WARM_UP_S + seconds:
                    return
                if elapsed >= WARM_UP_S:
                    counts[index] += 1
        finally:
            close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def curatorish_blocking(hosts: str, clients: int, seconds: float) -> int:
    path = f"/bench-locks/{uuid.uuid4().hex[:8]}"

    def make() -> tuple[Any, Callable[[], None]]:
        client = _client(hosts)
        return InterProcessMutex(client, path), client.close

    return _threaded(make, clients, seconds)


def kazoo_lock(hosts: str, clients: int, seconds: float) -> int:
    from kazoo.client import KazooClient

    path = f"/bench-locks/{uuid.uuid4().hex[:8]}"

    def make() -> tuple[Any, Callable[[], None]]:
        client = KazooClient(hosts=hosts)
        client.start(30)

        def close() -> None:
            client.stop()
            client.close()

        return client.Lock(path), close

    return _threaded(make, clients, seconds)


def curator_lock(program: JavaProgram, hosts: str, clients: int, seconds: float) -> int:
    path = f"/bench-locks/{uuid.uuid4().hex[:8]}"
    result = program.run(hosts, path, str(clients), str(int(seconds)), timeout=seconds + 120)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
    if not lines:
        raise RuntimeError(f"CuratorLockBench failed: {result.stdout}{result.stderr[-2000:]}")
    return int(lines[0].split()[1])


def _server(kind: str, fsync: bool) -> ServerProcess:
    server: ServerProcess
    if kind == "zookeeper":
        server = ZooKeeperOracle(extra_config={} if fsync else {"forceSync": "no"})
    else:
        server = ZkregServer(extra_args=() if fsync else ("--no-fsync",))
    server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--contenders", type=int, default=8)
    parser.add_argument("--servers", default="zkreg")
    parser.add_argument("--no-java", action="store_true")
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="servers skip fsync, so the clients' costs show (every acquire and release writes)",
    )
    options = parser.parse_args(argv)
    program = None
    if not options.no_java and java_unavailable_reason() is None:
        program = JavaProgram("CuratorLockBench")
        program.compile()
    libraries: dict[str, Callable[[str, int, float], int]] = {
        "curatorish (async face)": curatorish_async,
        "curatorish (blocking face)": curatorish_blocking,
        "kazoo 2.x Lock": kazoo_lock,
    }
    if program is not None:
        libraries["Curator 5.4 InterProcessMutex"] = lambda h, c, s: curator_lock(program, h, c, s)
    for kind in options.servers.split(","):
        server = _server(kind, not options.no_fsync)
        try:
            sync = "no fsync" if options.no_fsync else "fsync"
            print(f"server: {kind} ({sync}); {options.seconds:.0f} s per measurement, 1 s warm-up")
            print(
                f"{'library':32} {'uncontended pairs/s':>20} {f'{options.contenders} clients hand-offs/s':>24}"
            )
            for name, measure in libraries.items():
                alone = measure(server.hosts, 1, options.seconds) / options.seconds
                contended = (
                    measure(server.hosts, options.contenders, options.seconds) / options.seconds
                )
                print(f"{name:32} {alone:20.0f} {contended:24.0f}", flush=True)
        finally:
            server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
