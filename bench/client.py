"""
Client throughput: curatorish's blocking and async faces against kazoo 2.x, getData of
one 100-byte node, each client against the same server (zkreg, and Apache ZooKeeper
3.8 to tell the client's cost from the server's).

Six workloads, each a client face and a shape:

  - sequential: one call at a time, each waiting for its answer: kazoo's C{get} and
    curatorish's blocking C{get_data} in a plain loop, the async face's C{get_data}
    awaited in a loop by one coroutine on the reactor;
  - pipelined, C{--window} calls in flight: kazoo's C{get_async} (a window of calls
    sent, then their results waited for, repeated); the blocking face from
    C{--window} threads sharing one client (how a threaded program keeps calls in
    flight with a blocking API); the async face with C{--window} coroutines.

The four figures the targets are about are each face's calls/s over kazoo's of the
same shape: blocking face ≥ 1.0x kazoo, async face ≥ 2.0x, sequential and pipelined.
Every workload also reports the CPU time per call of this process (all its threads,
user + system) and of the server's process: on a shared, loaded machine calls/s say
as much about the scheduler as about the client, CPU per call does not.

Usage: C{python -m bench.client [--seconds S] [--window N] [--repeat N]
[--servers zkreg,zookeeper] [--workloads NAME,...]}; profile one workload with
C{py-spy record --idle -- python -m bench.client --servers zkreg --workloads
"async pipelined"}.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from bench.cpu import process_cpu_seconds
from bench.harness import exit_status, make_server, measure_each, server_names
from curatorish import BlockingCuratorFramework
from curatorish.retry import RetryNTimes
from tests.support.servers import ServerProcess

PATH = "/bench-client"
WARM_UP_S = 0.5
#: Calls per check of the clock in the loops (each loop's own cost stays small).
CHUNK = 20


@dataclass(frozen=True)
class Figure:
    """
    One measurement: calls/s, and CPU microseconds per call of this process (the
    client) and of the server.
    """

    rate: float
    client_cpu_us: float
    server_cpu_us: float


@dataclass(frozen=True)
class Setting:
    """
    What every workload is given: the server, how long, how many calls in flight.
    """

    hosts: str
    seconds: float
    window: int
    server_pid: int | None

    def timed(self, loop: Callable[[float], int]) -> Figure:
        """
        Run C{loop(deadline)} (which returns the calls it made) once as a warm-up,
        then measured.
        """
        loop(time.perf_counter() + WARM_UP_S)
        start = time.perf_counter()
        client_cpu = _own_cpu_seconds()
        server_cpu = self._server_cpu_seconds()
        count = loop(start + self.seconds)
        elapsed = time.perf_counter() - start
        client_used = _own_cpu_seconds() - client_cpu
        server_used = self._server_cpu_seconds() - server_cpu
        return Figure(count / elapsed, client_used / count * 1e6, server_used / count * 1e6)

    def _server_cpu_seconds(self) -> float:
        return process_cpu_seconds(self.server_pid) if self.server_pid else 0.0


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _curatorish(hosts: str) -> BlockingCuratorFramework:
    client = BlockingCuratorFramework(hosts, retry_policy=RetryNTimes(3, 100), call_timeout_s=60)
    client.start()
    assert client.block_until_connected(30)
    return client


def _kazoo(hosts: str) -> Any:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=hosts)
    client.start(30)
    return client


def _close_kazoo(client: Any) -> None:
    client.stop()
    client.close()


def _calls_until(deadline: float, call: Callable[[str], object]) -> int:
    """
    C{call(PATH)} until C{deadline} (the clock read every L{CHUNK} calls).

    @return: the calls made.
    """
    count = 0
    while time.perf_counter() < deadline:
        for _ in range(CHUNK):
            call(PATH)
        count += CHUNK
    return count


def kazoo_sequential(setting: Setting) -> Figure:
    client = _kazoo(setting.hosts)
    try:
        return setting.timed(lambda deadline: _calls_until(deadline, client.get))
    finally:
        _close_kazoo(client)


def kazoo_pipelined(setting: Setting) -> Figure:
    client = _kazoo(setting.hosts)
    window = setting.window
    try:

        def loop(deadline: float) -> int:
            count = 0
            while time.perf_counter() < deadline:
                results = [client.get_async(PATH) for _ in range(window)]
                for result in results:
                    result.get(timeout=60)
                count += window
            return count

        return setting.timed(loop)
    finally:
        _close_kazoo(client)


def blocking_sequential(setting: Setting) -> Figure:
    client = _curatorish(setting.hosts)
    try:
        return setting.timed(lambda deadline: _calls_until(deadline, client.get_data))
    finally:
        client.close()


def blocking_pipelined(setting: Setting) -> Figure:
    client = _curatorish(setting.hosts)
    try:

        def loop(deadline: float) -> int:
            counts: list[int] = []

            def calls() -> None:
                counts.append(_calls_until(deadline, client.get_data))

            threads = [threading.Thread(target=calls) for _ in range(setting.window)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sum(counts)

        return setting.timed(loop)
    finally:
        client.close()


def _async_face(setting: Setting, coroutines: int) -> Figure:
    blocking = _curatorish(setting.hosts)
    async_client = blocking.async_client
    try:

        async def calls(deadline: float) -> int:
            count = 0
            get = async_client.get_data
            while time.perf_counter() < deadline:
                for _ in range(CHUNK):
                    await get(PATH)
                count += CHUNK
            return count

        def run(deadline: float) -> defer.Deferred[Any]:
            running = [defer.ensureDeferred(calls(deadline)) for _ in range(coroutines)]
            return defer.gatherResults(running, consumeErrors=True)

        def loop(deadline: float) -> int:
            return sum(blocking.call(run, deadline))

        return setting.timed(loop)
    finally:
        blocking.close()


def async_sequential(setting: Setting) -> Figure:
    return _async_face(setting, 1)


def async_pipelined(setting: Setting) -> Figure:
    return _async_face(setting, setting.window)


#: Workload name -> how it is measured, in the order they run (kazoo's first in each
#: shape, so that the faces compared with it run right after it).
WORKLOADS: dict[str, Callable[[Setting], Figure]] = {
    "kazoo sequential": kazoo_sequential,
    "blocking sequential": blocking_sequential,
    "async sequential": async_sequential,
    "kazoo pipelined": kazoo_pipelined,
    "blocking pipelined": blocking_pipelined,
    "async pipelined": async_pipelined,
}

#: The figures of the targets: (label, workload, kazoo's workload, target ratio).
RATIOS = (
    ("blocking face / kazoo, sequential", "blocking sequential", "kazoo sequential", 1.0),
    ("blocking face / kazoo, pipelined", "blocking pipelined", "kazoo pipelined", 1.0),
    ("async face / kazoo, sequential", "async sequential", "kazoo sequential", 2.0),
    ("async face / kazoo, pipelined", "async pipelined", "kazoo pipelined", 2.0),
)


def measure_server(
    server: ServerProcess, workloads: list[str], seconds: float, window: int, repeat: int
) -> dict[str, Figure]:
    """
    Measure each workload C{repeat} times (the workloads in turn each round) on one
    running server.

    @return: per workload, the medians of each of its figures.
    """
    setup = _curatorish(server.hosts)
    if setup.exists(PATH) is None:
        setup.create(PATH, b"x" * 100)
    setup.close()
    setting = Setting(server.hosts, seconds, window, server.pid)
    figures: dict[str, list[Figure]] = {name: [] for name in workloads}
    for _ in range(repeat):
        for name in workloads:
            figures[name].append(WORKLOADS[name](setting))
    return {
        name: Figure(
            statistics.median(f.rate for f in found),
            statistics.median(f.client_cpu_us for f in found),
            statistics.median(f.server_cpu_us for f in found),
        )
        for name, found in figures.items()
    }


def render(results: dict[str, dict[str, Figure]]) -> str:
    """
    @return: per server, every workload's figures; then the target ratios per server,
        of calls/s and of client CPU per call (kazoo's over ours: above 1 is less CPU).
    """
    lines = []
    for server_name, figures in results.items():
        lines.append(f"server: {server_name}")
        lines.append(
            f"  {'workload':22} {'calls/s':>9} {'client CPU us/call':>19} {'server CPU us/call':>19}"
        )
        for name, figure in figures.items():
            lines.append(
                f"  {name:22} {figure.rate:9.0f} {figure.client_cpu_us:19.1f}"
                f" {figure.server_cpu_us:19.1f}"
            )
    header = f"{'ratio (target)':42}"
    for server_name in results:
        header += f" {server_name + ' calls/s':>17} {server_name + ' CPU':>13}"
    lines += ["", header]
    for label, ours, theirs, target in RATIOS:
        row = f"{label + f' (>= {target:.1f})':42}"
        present = False
        for figures in results.values():
            if ours in figures and theirs in figures:
                present = True
                rate = figures[ours].rate / figures[theirs].rate
                cpu = figures[theirs].client_cpu_us / figures[ours].client_cpu_us
                row += f" {rate:17.2f} {cpu:13.2f}"
            else:
                row += f" {'-':>17} {'-':>13}"
        if present:
            lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure every workload against each server; print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--window", type=int, default=64, help="calls in flight when pipelined")
    parser.add_argument("--repeat", type=int, default=1, help="medians over N repetitions")
    parser.add_argument(
        "--servers",
        default="zkreg,zookeeper",
        help="comma-separated: zkreg, zookeeper (each started alone, in this order)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of: {', '.join(WORKLOADS)}",
    )
    options = parser.parse_args(argv)
    servers = server_names(options.servers)
    workloads = [name.strip() for name in options.workloads.split(",") if name.strip()]
    for name in servers:
        if name not in ("zkreg", "zookeeper"):
            parser.error(f"unknown server {name!r}")
    for name in workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}")
    load_before = os.getloadavg()
    started = time.monotonic()
    results: dict[str, dict[str, Figure]] = {}
    failures: list[str] = []

    def measure(name: str, server: ServerProcess) -> None:
        results[name] = measure_server(
            server, workloads, options.seconds, options.window, options.repeat
        )

    measure_each(servers, make_server, measure, failures)
    load_after = os.getloadavg()
    print(
        f"{options.seconds:g} s per figure, window {options.window}, {options.repeat}"
        f" repetition(s) (medians), {time.monotonic() - started:.0f} s in all; load average"
        f" (1/5/15 min) {'/'.join(f'{v:.1f}' for v in load_before)} before,"
        f" {'/'.join(f'{v:.1f}' for v in load_after)} after"
    )
    print(render(results))
    return exit_status(failures)


if __name__ == "__main__":
    sys.exit(main())
