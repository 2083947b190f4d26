"""
Worker processes for the recipes' contention tests: each runs one recipe in its own
process with its own client, so contention is between sessions, as in production.

    python -m tests.curatorish.recipes.workers atomic-increment <hosts> <path> <count>
        -> prints "DONE <succeeded> <failed>"
    python -m tests.curatorish.recipes.workers queue-consume <hosts> <path> <expected>
        -> prints "GOT <item>" per item, then "DONE"
"""

from __future__ import annotations

import sys

from curatorish.blocking import BlockingCuratorFramework
from curatorish.retry import RetryNTimes


def _client(hosts: str) -> BlockingCuratorFramework:
    client = BlockingCuratorFramework(
        hosts,
        retry_policy=RetryNTimes(10, 100),
        session_timeout_ms=10_000,
        connection_timeout_ms=5_000,
        call_timeout_s=60.0,
        default_data=b"",
    )
    client.start()
    if not client.block_until_connected(30):
        raise SystemExit(f"no connection to {hosts}")
    return client


def atomic_increment(hosts: str, path: str, count: str) -> None:
    from curatorish.recipes import DistributedAtomicLong

    client = _client(hosts)
    counter = DistributedAtomicLong(client, path, RetryNTimes(1000, 5))
    succeeded = failed = 0
    print("READY", flush=True)
    for _ in range(int(count)):
        if counter.increment().succeeded:
            succeeded += 1
        else:
            failed += 1
    print(f"DONE {succeeded} {failed}", flush=True)
    client.close()


WORKERS = {"atomic-increment": atomic_increment}


if __name__ == "__main__":
    WORKERS[sys.argv[1]](*sys.argv[2:])
