"""
Client throughput: curatorish's blocking and async faces against kazoo 2.x, on the
same zkreg, sequential and pipelined getData of one 100-byte node.

Sequential: one call at a time, each waiting for its answer (the blocking faces in a
plain loop, the async face as a coroutine on the reactor).  Pipelined: C{--window}
calls in flight (kazoo's C{get_async}, curatorish's async face with that many
coroutines).  The ratio column is each row's rate over kazoo's of the same shape.

Usage: C{python -m bench.client [--seconds S] [--window N] [--server zkreg|zookeeper]}
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from curatorish import BlockingCuratorFramework
from curatorish.retry import RetryNTimes
from tests.support.servers import ServerProcess, ZkregServer, ZooKeeperOracle

PATH = "/bench-client"
WARM_UP_S = 0.5


def _curatorish(hosts: str) -> BlockingCuratorFramework:
    client = BlockingCuratorFramework(hosts, retry_policy=RetryNTimes(3, 100), call_timeout_s=60)
    client.start()
    assert client.block_until_connected(30)
    return client


def _timed(loop: Callable[[float], int], seconds: float) -> tuple[float, float]:
    """
    Run C{loop(deadline)} (which returns calls made) after a warm-up.

    @return: calls/s, and this process's CPU time (all its threads) per call in
        microseconds: on a loaded machine calls/s depend on the CPU the scheduler
        lends, CPU per call does not.
    """
    loop(time.perf_counter() + WARM_UP_S)
    start = time.perf_counter()
    cpu = time.process_time()
    count = loop(start + seconds)
    used = time.process_time() - cpu
    return count / (time.perf_counter() - start), used / count * 1e6


def kazoo_sequential(hosts: str, seconds: float, window: int) -> tuple[float, float]:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=hosts)
    client.start(30)
    try:

        def loop(deadline: float) -> int:
            count = 0
            while time.perf_counter() < deadline:
                for _ in range(100):
                    client.get(PATH)
                count += 100
            return count

        return _timed(loop, seconds)
    finally:
        client.stop()
        client.close()


def kazoo_pipelined(hosts: str, seconds: float, window: int) -> tuple[float, float]:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=hosts)
    client.start(30)
    try:

        def loop(deadline: float) -> int:
            count = 0
            while time.perf_counter() < deadline:
                results = [client.get_async(PATH) for _ in range(window)]
                for result in results:
                    result.get(timeout=60)
                count += window
            return count

        return _timed(loop, seconds)
    finally:
        client.stop()
        client.close()


def curatorish_blocking(hosts: str, seconds: float, window: int) -> tuple[float, float]:
    client = _curatorish(hosts)
    try:

        def loop(deadline: float) -> int:
            count = 0
            while time.perf_counter() < deadline:
                for _ in range(100):
                    client.get_data(PATH)
                count += 100
            return count

        return _timed(loop, seconds)
    finally:
        client.close()


def _async_rate(hosts: str, seconds: float, window: int) -> tuple[float, float]:
    blocking = _curatorish(hosts)
    async_client = blocking.async_client
    try:

        async def one(deadline: float) -> int:
            count = 0
            get = async_client.get_data
            while time.perf_counter() < deadline:
                for _ in range(100):
                    await get(PATH)
                count += 100
            return count

        def run(deadline: float) -> defer.Deferred[Any]:
            loops = [defer.ensureDeferred(one(deadline)) for _ in range(window)]
            return defer.gatherResults(loops, consumeErrors=True)

        def loop(deadline: float) -> int:
            return sum(blocking.call(run, deadline))

        return _timed(loop, seconds)
    finally:
        blocking.close()


def curatorish_async_sequential(hosts: str, seconds: float, window: int) -> tuple[float, float]:
    return _async_rate(hosts, seconds, 1)


def curatorish_async_pipelined(hosts: str, seconds: float, window: int) -> tuple[float, float]:
    return _async_rate(hosts, seconds, window)


#: Row -> (measure, the kazoo row it is compared with).
ROWS: dict[str, tuple[Callable[[str, float, int], tuple[float, float]], str]] = {
    "kazoo sequential get": (kazoo_sequential, "kazoo sequential get"),
    "curatorish blocking sequential get_data": (curatorish_blocking, "kazoo sequential get"),
    "curatorish async sequential get_data": (
        curatorish_async_sequential,
        "kazoo sequential get",
    ),
    "kazoo pipelined get_async": (kazoo_pipelined, "kazoo pipelined get_async"),
    "curatorish async pipelined get_data": (
        curatorish_async_pipelined,
        "kazoo pipelined get_async",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Start a server, measure every row, print rates and ratios to kazoo."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=64, help="calls in flight when pipelined")
    parser.add_argument("--server", default="zkreg", choices=("zkreg", "zookeeper"))
    parser.add_argument("--repeat", type=int, default=1, help="medians over N repetitions")
    options = parser.parse_args(argv)
    server: ServerProcess = ZkregServer() if options.server == "zkreg" else ZooKeeperOracle()
    server.start()
    try:
        setup = _curatorish(server.hosts)
        if setup.exists(PATH) is None:
            setup.create(PATH, b"x" * 100)
        setup.close()
        rates: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        for _ in range(options.repeat):
            for name, (measure, _) in ROWS.items():
                rate, cpu = measure(server.hosts, options.seconds, options.window)
                rates.setdefault(name, []).append(rate)
                cpus.setdefault(name, []).append(cpu)
    finally:
        server.cleanup()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    load = os.getloadavg()[0]
    print(
        f"server: {options.server}; {options.seconds:.0f} s per figure, window "
        f"{options.window}, {options.repeat} repetition(s), load average {load:.1f}"
    )
    print(f"{'client':42} {'calls/s':>9} {'vs kazoo':>9} {'CPU us/call':>12} {'vs kazoo':>9}")
    for name, (_, baseline) in ROWS.items():
        print(
            f"{name:42} {medians[name]:9.0f} {medians[name] / medians[baseline]:9.2f}"
            f" {cpu[name]:12.1f} {cpu[name] / cpu[baseline]:9.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
