"""
What one fenced append to etcd costs through the client zkreg uses (etcd's v3 JSON
gateway over treq, on the Twisted reactor): sequential appends (one record each,
latency), then many appends in flight (group commit: records per etcd txn, records
per second).  etcd runs here as one member on loopback (it fsyncs every commit).

Usage::

    python -m bench.etcd_append [--count 2000] [--in-flight 256] [--record-bytes 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from twisted.internet import defer, task

from tests.support.etcd import EtcdCluster
from zkreg.persistence.etcd.client import EtcdClient
from zkreg.persistence.etcd.election import campaign
from zkreg.persistence.etcd.layout import Layout
from zkreg.persistence.etcd.log import EtcdLog


@defer.inlineCallbacks
def measure(reactor, endpoints: list[str], count: int, in_flight: int, record_bytes: int):
    client = EtcdClient(endpoints, reactor)
    layout = Layout("/bench-append")
    leadership = yield campaign(client, layout, b"bench", 10)
    log = EtcdLog(client, layout, leadership.token, 0, 0, reactor)
    record = b"x" * record_bytes
    latencies = []
    zxid = 0
    for _ in range(count):
        zxid += 1
        started = time.perf_counter()
        yield log.append(zxid, record)
        latencies.append((time.perf_counter() - started) * 1e6)
    latencies.sort()
    appends_before = log.appends
    started = time.perf_counter()
    pending = []
    total = count * 4
    for _ in range(total):
        zxid += 1
        pending.append(log.append(zxid, record))
        if len(pending) >= in_flight:
            yield pending.pop(0)
    yield defer.gatherResults(pending)
    elapsed = time.perf_counter() - started
    txns = log.appends - appends_before
    yield leadership.resign()
    yield client.close()
    return {
        "sequential_p50_us": round(statistics.median(latencies)),
        "sequential_p99_us": round(latencies[int(len(latencies) * 0.99) - 1]),
        "pipelined_records_per_s": round(total / elapsed),
        "pipelined_records_per_txn": round(total / max(txns, 1), 1),
        "in_flight": in_flight,
        "record_bytes": record_bytes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.etcd_append", description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--record-bytes", type=int, default=100)
    args = parser.parse_args(argv)
    with EtcdCluster(1) as etcd:
        results = []

        def run(reactor):
            done = measure(reactor, etcd.endpoints, args.count, args.in_flight, args.record_bytes)
            return done.addCallback(results.append)

        try:
            task.react(run)
        except SystemExit:
            pass
    print(json.dumps(results[0], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
