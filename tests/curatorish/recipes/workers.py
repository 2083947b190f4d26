"""
Worker processes for the recipes' contention tests: each runs one recipe in its own
process with its own client, so contention is between sessions, as in production.

    python -m tests.curatorish.recipes.workers atomic-increment <hosts> <path> <count>
        [<lock path>]
        -> prints "READY", waits for a line on stdin, increments, prints
           "DONE <succeeded> <failed> <promoted tries>"
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


def atomic_increment(hosts: str, path: str, count: str, lock_path: str = "") -> None:
    """
    Increment C{count} times: optimistic with many retries, or (with C{lock_path})
    one optimistic try and then promoted to the lock.  Prints C{DONE <succeeded>
    <failed> <promoted tries>}.
    """
    from curatorish.recipes import DistributedAtomicLong, PromotedToLock

    client = _client(hosts)
    if lock_path:
        counter = DistributedAtomicLong(
            client, path, RetryNTimes(0, 0), PromotedToLock(lock_path, 60.0, RetryNTimes(50, 5))
        )
    else:
        counter = DistributedAtomicLong(client, path, RetryNTimes(1000, 5))
    succeeded = failed = promoted = 0
    print("READY", flush=True)
    sys.stdin.readline()  # "GO": all workers start together, so they contend
    for _ in range(int(count)):
        result = counter.increment()
        promoted += result.stats.promoted_tries
        if result.succeeded:
            succeeded += 1
        else:
            failed += 1
    print(f"DONE {succeeded} {failed} {promoted}", flush=True)
    client.close()


WORKERS = {"atomic-increment": atomic_increment}


if __name__ == "__main__":
    WORKERS[sys.argv[1]](*sys.argv[2:])
