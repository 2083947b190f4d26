"""
DistributedAtomicLong / DistributedAtomicInteger against ZooKeeper and zkreg: Curator's
byte formats, every operation's result, and exact counts under contention from several
processes.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import pytest

from curatorish.recipes import (
    AtomicValue,
    DistributedAtomicInteger,
    DistributedAtomicLong,
)
from curatorish.retry import RetryNTimes
from tests.support.servers import REPO_ROOT


def _path(name: str) -> str:
    return f"/atomic/{name}-{uuid.uuid4().hex[:8]}"


def test_long_operations_and_format(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("long")
    counter = DistributedAtomicLong(client, path, RetryNTimes(3, 10))
    assert counter.get() == AtomicValue(True, 0, 0)
    assert client.exists(path) is None  # a read does not create

    assert counter.increment() == AtomicValue(True, 0, 1)
    assert client.get_data(path)[0] == b"\x00" * 7 + b"\x01"
    assert counter.add(41) == AtomicValue(True, 1, 42)
    assert counter.subtract(2) == AtomicValue(True, 42, 40)
    assert counter.decrement() == AtomicValue(True, 40, 39)
    assert counter.get().post_value == 39

    assert counter.compare_and_set(5, 6) == AtomicValue(False, 39, 39)
    assert counter.compare_and_set(39, -1) == AtomicValue(True, 39, -1)
    assert client.get_data(path)[0] == b"\xff" * 8

    assert not counter.try_initialize(100)
    assert counter.try_initialize(100).pre_value == -1
    assert counter.force_set(2**63 - 1).post_value == 2**63 - 1
    assert counter.increment().post_value == -(2**63)  # wraps as Java's long

    fresh = DistributedAtomicLong(client, _path("init"), RetryNTimes(3, 10))
    assert fresh.try_initialize(7) == AtomicValue(True, 0, 7)
    assert fresh.try_set(9) == AtomicValue(True, 7, 9)


def test_integer_is_four_bytes(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("int")
    counter = DistributedAtomicInteger(client, path, RetryNTimes(3, 10))
    assert counter.add(258) == AtomicValue(True, 0, 258)
    assert client.get_data(path)[0] == b"\x00\x00\x01\x02"
    counter.force_set(2**31 - 1)
    assert counter.increment().post_value == -(2**31)


def test_corrupt_data_is_an_error(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("corrupt")
    client.create(path, b"abc", parents=True)
    with pytest.raises(ValueError, match="Corrupted"):
        DistributedAtomicLong(client, path, RetryNTimes(3, 10)).get()


def test_async_face(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    counter = DistributedAtomicLong(client.async_client, _path("async"), RetryNTimes(3, 10))
    assert client.call(counter.increment) == AtomicValue(True, 0, 1)
    assert client.call(counter.add, 2).post_value == 3


@pytest.mark.parametrize("promoted", [False, True], ids=["optimistic", "promoted"])
def test_exact_under_contention_from_processes(
    server: Any, make_client: Any, promoted: bool
) -> None:
    """
    Three processes increment one counter concurrently, retrying optimistically or
    promoted to an InterProcessMutex; every increment is counted exactly once.
    """
    path = _path("contended")
    per_worker, workers = 25, 3
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.curatorish.recipes.workers",
                "atomic-increment",
                server.hosts,
                path,
                str(per_worker),
                path + "-lock" if promoted else "",
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    succeeded = promoted_tries = 0
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "READY"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("GO\n")
            process.stdin.flush()
        for process in processes:
            out, _ = process.communicate(timeout=240)
            assert process.returncode == 0, out
            done = out.strip().splitlines()[-1].split()
            assert done[0] == "DONE", out
            succeeded += int(done[1])
            promoted_tries += int(done[3])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert succeeded == per_worker * workers
    if promoted:
        assert promoted_tries > 0  # the lock was actually used
    client = make_client(server.hosts)
    assert DistributedAtomicLong(client, path, RetryNTimes(0, 0)).get().post_value == succeeded


def test_optimistic_gives_up_without_writing(server: Any, make_client: Any) -> None:
    """
    With no retries allowed and a conflicting write injected between read and write,
    the update reports failure and writes nothing.
    """
    client = make_client(server.hosts)
    path = _path("conflict")
    counter = DistributedAtomicLong(client.async_client, path, RetryNTimes(0, 0))
    client.call(counter.force_set, 10)
    other = DistributedAtomicLong(client, path, RetryNTimes(0, 0))

    original_read = counter._read

    async def read_then_conflict() -> Any:
        value = await original_read()
        await client.async_client.set_data(path, b"\x00" * 7 + b"\x14")
        return value

    counter._read = read_then_conflict  # type: ignore[method-assign]
    result = client.call(counter.increment)
    assert not result.succeeded
    assert result.stats.optimistic_tries == 1
    assert other.get().post_value == 20


def test_no_successful_increment_lost_across_cut_connections(
    server: Any, proxy: Any, make_client: Any
) -> None:
    """
    Connections cut while incrementing: every increment reported as done is in the
    count (one whose reply was lost may be counted twice: see the module docstring).
    """
    import threading

    from tests.support.waiting import wait_until

    states: list[str] = []
    client = make_client(proxy.hosts, states=states, retry_policy=RetryNTimes(20, 100))
    path = _path("cuts")
    counter = DistributedAtomicLong(client, path, RetryNTimes(50, 10))
    succeeded: list[int] = []
    finished = threading.Event()

    def increment() -> None:
        try:
            for _ in range(60):
                if counter.increment().succeeded:
                    succeeded.append(1)
        finally:
            finished.set()

    worker = threading.Thread(target=increment)
    worker.start()
    for round_number in range(1, 4):
        wait_until(lambda n=round_number: len(succeeded) >= n * 10 or finished.is_set(), timeout=60)
        proxy.cut()
        wait_until(lambda n=round_number: states.count("RECONNECTED") >= n, timeout=30)
    worker.join(120)
    assert finished.is_set()
    final = DistributedAtomicLong(make_client(server.hosts), path, RetryNTimes(0, 0)).get()
    assert final.post_value >= len(succeeded) > 0
