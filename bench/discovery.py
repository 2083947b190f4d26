"""
Discovery fan-out: how fast every subscriber's L{ServiceCache} learns of a change.

    python -m bench.discovery [--instances 10000] [--services 100] [--caches 1000]
                              [--processes 4] [--rounds 10] [--servers zookeeper,zkreg]

Per server (Apache ZooKeeper 3.8, then zkreg, each started as L{bench.run} starts
them), in one run:

  1. one registrar client registers C{--instances} instances spread evenly over
     C{--services} services (curator-x-discovery layout and JSON);
  2. C{--processes} subscriber processes open C{--caches} L{ServiceCache}s in all, each
     on its own session, cache i following service i mod C{--services} (so every
     service has caches / services subscribers), and report when they are loaded;
  3. I{single change}: C{--rounds} times, one instance is updated (its payload carries
     a mark) and the clock runs from just before the write until each cache of its
     service holds it;
  4. I{burst}: one instance of every service is updated at once (C{--services}
     pipelined writes), so every cache must see one change; the clock runs from just
     before the first write.

Each subscriber stamps the wall clock (same machine) on the reactor thread when its
cache's listener first sees a mark.  Reported: p50, p99 and max over every delivery,
and the time until the last cache had it; ratios are zkreg / ZooKeeper (below 1:
zkreg faster).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from twisted.internet import defer, task

from bench.harness import make_server
from curatorish import BlockingCuratorFramework, CuratorFramework
from curatorish.discovery import (
    JsonInstanceSerializer,
    ServiceCacheListener,
    ServiceDiscovery,
    ServiceInstance,
)
from curatorish.retry import RetryNTimes
from tests.support.servers import REPO_ROOT

#: Caches sharing one subscriber session.
CACHES_PER_SESSION = 10

#: Bound on waiting for the subscribers to load, or for a change to arrive everywhere.
LOAD_TIMEOUT_S = 600.0
CHANGE_TIMEOUT_S = 60.0


def _service(index: int) -> str:
    return f"svc{index:03d}"


def _instance(service: int, number: int, mark: int = 0) -> ServiceInstance:
    return ServiceInstance(
        _service(service),
        f"{_service(service)}-{number:05d}",
        "10.0.0.1",
        8000 + number % 1000,
        payload={"mark": mark},
        registration_time_utc=1,
    )


# -- subscriber processes -------------------------------------------------------------


async def _subscribe(
    reactor: Any, hosts: str, base: str, first: int, count: int, services: int
) -> None:
    """
    Open caches first..first+count-1, L{CACHES_PER_SESSION} per session (each on a
    different service, so a change still reaches as many sessions as caches); print
    READY, then C{SEEN <mark> <cache> <time>} the first time a cache holds a mark.
    """
    armed = [False]
    clients: list[CuratorFramework] = []
    starting = []
    for cache_index in range(first, first + count):
        if (cache_index - first) % CACHES_PER_SESSION == 0:
            client = CuratorFramework(
                hosts, retry_policy=RetryNTimes(3, 100), session_timeout_ms=40_000, default_data=b""
            )
            client.start()
            clients.append(client)
        discovery = ServiceDiscovery(clients[-1], base)
        cache = discovery.service_cache(_service(cache_index % services))

        class Listener(ServiceCacheListener):
            def __init__(self, cache: Any, cache_index: int) -> None:
                self.cache, self.cache_index = cache, cache_index
                self.seen: set[int] = set()

            def cache_changed(self) -> None:
                if not armed[0]:
                    return  # the initial load; no mark is written before READY
                now = time.time()
                for instance in self.cache.get_instances():
                    mark = (instance.payload or {}).get("mark", 0)
                    if mark and mark not in self.seen:
                        self.seen.add(mark)
                        sys.stdout.write(f"SEEN {mark} {self.cache_index} {now:.6f}\n")
                sys.stdout.flush()

        cache.add_listener(Listener(cache, cache_index))
        starting.append(cache.start())
        if len(starting) % 20 == 0:
            await defer.gatherResults(starting)
    await defer.gatherResults(starting)
    armed[0] = True
    print("READY", flush=True)
    stop: defer.Deferred[None] = defer.Deferred()
    reactor.addReader(_StdinClosed(reactor, stop))
    await stop


class _StdinClosed:
    """Fires C{stop} when the parent closes our stdin (or dies)."""

    def __init__(self, reactor: Any, stop: defer.Deferred[None]) -> None:
        self.reactor, self.stop = reactor, stop

    def fileno(self) -> int:
        return sys.stdin.fileno()

    def doRead(self) -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            self.reactor.removeReader(self)
            self.stop.callback(None)

    def connectionLost(self, reason: Any) -> None:
        pass

    def logPrefix(self) -> str:
        return "stdin"


# -- the driver -----------------------------------------------------------------------


class Subscribers:
    """The subscriber processes and the SEEN lines they print."""

    def __init__(self, hosts: str, base: str, caches: int, processes: int, services: int):
        share = -(-caches // processes)
        self.children = []
        #: The subscribers' logs (connection trouble under load shows here).
        self.log = tempfile.NamedTemporaryFile(
            prefix="bench-discovery-", suffix=".log", delete=False
        )
        for first in range(0, caches, share):
            count = min(share, caches - first)
            command = [
                sys.executable,
                "-m",
                "bench.discovery",
                "--subscriber",
                hosts,
                base,
                str(first),
                str(count),
                str(services),
            ]
            self.children.append(
                subprocess.Popen(
                    command,
                    cwd=REPO_ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=self.log,
                )
            )
        self.seen: dict[int, list[float]] = {}
        self._buffers = {child.stdout.fileno(): b"" for child in self.children}  # type: ignore[union-attr]
        self.ready = 0

    def pump(self, timeout: float) -> None:
        readable, _, _ = select.select(list(self._buffers), [], [], timeout)
        for fd in readable:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError("a subscriber process died")
            lines = (self._buffers[fd] + chunk).split(b"\n")
            self._buffers[fd] = lines.pop()
            for line in lines:
                words = line.split()
                if words[:1] == [b"READY"]:
                    self.ready += 1
                elif words[:1] == [b"SEEN"]:
                    self.seen.setdefault(int(words[1]), []).append(float(words[3]))

    def wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"timed out waiting for {what}")
            self.pump(min(left, 0.5))

    def close(self) -> None:
        for child in self.children:
            child.stdin.close()  # type: ignore[union-attr]
            child.terminate()  # the reactor stops on SIGTERM
        for child in self.children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()


def _register_all(
    client: BlockingCuratorFramework, base: str, instances: int, services: int
) -> None:
    async def register(async_client: CuratorFramework) -> None:
        discovery = ServiceDiscovery(async_client, base)
        await discovery.start()
        batch = []
        for number in range(instances):
            batch.append(discovery.register_service(_instance(number % services, number)))
            if len(batch) == 500:
                await defer.gatherResults(batch)
                batch = []
        await defer.gatherResults(batch)

    client.run(register)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(kind: str, options: argparse.Namespace) -> dict[str, Any]:
    server = make_server(kind)
    server.start()
    try:
        hosts = server.hosts
        base = f"/bench-discovery-{uuid.uuid4().hex[:6]}"
        registrar = BlockingCuratorFramework(
            hosts, retry_policy=RetryNTimes(3, 100), call_timeout_s=600, default_data=b""
        )
        registrar.start()
        started = time.monotonic()
        _register_all(registrar, base, options.instances, options.services)
        register_s = time.monotonic() - started
        subscribers = Subscribers(hosts, base, options.caches, options.processes, options.services)
        started = time.monotonic()
        subscribers.wait(
            lambda: subscribers.ready == len(subscribers.children), LOAD_TIMEOUT_S, "caches"
        )
        load_s = time.monotonic() - started
        per_service = options.caches // options.services
        discovery = ServiceDiscovery(registrar.async_client, base)
        serializer = JsonInstanceSerializer()

        def update(instance: ServiceInstance) -> defer.Deferred[Any]:
            path = discovery.path_for_instance(instance.name, instance.id)
            return registrar.async_client.set_data(path, serializer.serialize(instance))

        mark = 0
        single: list[float] = []
        single_all: list[float] = []
        for round_number in range(options.rounds):
            mark += 1
            service = (round_number * 37) % options.services
            changed = _instance(service, service, mark)
            before = time.time()
            registrar.call(update, changed)
            subscribers.wait(
                lambda mark=mark: len(subscribers.seen.get(mark, ())) >= per_service,
                CHANGE_TIMEOUT_S,
                f"mark {mark}",
            )
            latencies = [seen - before for seen in subscribers.seen[mark]]
            single.extend(latencies)
            single_all.append(max(latencies))
        burst_marks = list(range(mark + 1, mark + 1 + options.services))
        changes = [
            _instance(s, s, m) for s, m in zip(range(options.services), burst_marks, strict=True)
        ]

        async def burst(_client: CuratorFramework) -> None:
            await defer.gatherResults([update(c) for c in changes])

        before = time.time()
        registrar.run(burst)
        subscribers.wait(
            lambda: all(len(subscribers.seen.get(m, ())) >= per_service for m in burst_marks),
            CHANGE_TIMEOUT_S,
            "the burst",
        )
        burst_latencies = [seen - before for m in burst_marks for seen in subscribers.seen[m]]
        subscribers.close()
        registrar.close()
        print(f"{kind}: subscriber logs in {subscribers.log.name}", file=sys.stderr)
        return {
            "register_s": register_s,
            "load_s": load_s,
            "single_p50": _percentile(single, 0.5),
            "single_p99": _percentile(single, 0.99),
            "single_max": max(single),
            "single_all_median": statistics.median(single_all),
            "burst_p50": _percentile(burst_latencies, 0.5),
            "burst_p99": _percentile(burst_latencies, 0.99),
            "burst_max": max(burst_latencies),
            "deliveries": len(single) + len(burst_latencies),
        }
    finally:
        server.cleanup()


ROWS = [
    ("register_s", "register all instances (s)", 1),
    ("load_s", "subscribers' caches loaded (s)", 1),
    ("single_p50", "one change: p50 delivery (ms)", 1000),
    ("single_p99", "one change: p99 delivery (ms)", 1000),
    ("single_max", "one change: max delivery (ms)", 1000),
    ("single_all_median", "one change: every subscriber, median of rounds (ms)", 1000),
    ("burst_p50", "burst: p50 delivery (ms)", 1000),
    ("burst_p99", "burst: p99 delivery (ms)", 1000),
    ("burst_max", "burst: every cache has its change (ms)", 1000),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--caches", type=int, default=1_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--servers", default="zookeeper,zkreg")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--subscriber", nargs=5, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.subscriber:
        hosts, base, first, count, services = options.subscriber
        task.react(
            lambda reactor: defer.ensureDeferred(
                _subscribe(reactor, hosts, base, int(first), int(count), int(services))
            )
        )
        return 0
    servers = options.servers.split(",")
    results = {kind: measure(kind, options) for kind in servers}
    print(
        f"discovery fan-out: {options.instances} instances / {options.services} services, "
        f"{options.caches} caches in {options.processes} processes, {options.rounds} single changes"
    )
    header = ["", *servers] + ([f"{servers[1]}/{servers[0]}"] if len(servers) == 2 else [])
    print(" | ".join(header))
    for key, label, scale in ROWS:
        values = [results[kind][key] * scale for kind in servers]
        cells = [label, *(f"{value:.1f}" for value in values)]
        if len(values) == 2:
            cells.append(f"{values[1] / values[0]:.2f}")
        print(" | ".join(cells))
    if options.json:
        with open(options.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
