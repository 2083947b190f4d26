"""
A contender process for the multi-process lock tests:

    python -m tests.curatorish.recipes.lock_worker HOSTS KIND LOCK_PATH COUNTER_PATH ROUNDS

Each round takes the lock (KIND: C{mutex}, C{semaphore-mutex} or C{write}: a
read-write lock's write side), reads the counter node, yields to other threads and
processes, writes the counter plus one (no version check: only the lock keeps the
increments from being lost), and releases.  Prints C{done} at the end.
"""

from __future__ import annotations

import sys
import time

from curatorish import BlockingCuratorFramework, RetryNTimes
from curatorish.recipes import (
    InterProcessMutex,
    InterProcessReadWriteLock,
    InterProcessSemaphoreMutex,
)


def make_lock(client: BlockingCuratorFramework, kind: str, path: str) -> object:
    if kind == "mutex":
        return InterProcessMutex(client, path)
    if kind == "semaphore-mutex":
        return InterProcessSemaphoreMutex(client, path)
    if kind == "write":
        return InterProcessReadWriteLock(client, path).write_lock()
    raise SystemExit(f"unknown lock kind {kind}")


def main(hosts: str, kind: str, lock_path: str, counter_path: str, rounds: int) -> None:
    client = BlockingCuratorFramework(
        hosts, retry_policy=RetryNTimes(10, 100), call_timeout_s=120, session_timeout_ms=10_000
    )
    client.start()
    if not client.block_until_connected(30):
        raise SystemExit("no connection")
    lock = make_lock(client, kind, lock_path)
    for _ in range(rounds):
        with lock:  # type: ignore[attr-defined]
            data, _stat = client.get_data(counter_path)
            time.sleep(0.001)
            client.set_data(counter_path, str(int(data or b"0") + 1).encode())
    client.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
