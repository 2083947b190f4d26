"""
The lock recipes against Apache ZooKeeper 3.8 and zkreg: Curator's node names and
order, mutual exclusion across processes, reentrancy, no herd, locks freed and
known lost when a holder's session expires, the read-write rules, the semaphore's
bound, multi-locks and revocation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from curatorish.errors import ConnectionLossError
from curatorish.kill_session import expire_session, session_of
from curatorish.recipes import (
    InterProcessMultiLock,
    InterProcessMutex,
    InterProcessReadWriteLock,
    InterProcessSemaphoreMutex,
    InterProcessSemaphoreV2,
    LockLostError,
    LockNotHeldError,
    Revoker,
    StandardLockInternalsDriver,
)
from curatorish.recipes.lock_internals import PredicateResults
from tests.support.waiting import wait_until

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
NODE = re.compile(
    r"^_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-(.+?)(\d{10})$"
)


def unique(name: str) -> str:
    return f"/locks-test/{name}-{uuid.uuid4().hex[:8]}"


def names(paths: Sequence[str]) -> list[str]:
    return [path.rsplit("/", 1)[1] for path in paths]


def test_curator_node_names_and_container_parent(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = unique("names")
    lock = InterProcessMutex(client, path)
    assert lock.acquire(10)
    (node,) = lock.get_participant_nodes()
    match = NODE.match(node.rsplit("/", 1)[1])
    assert match is not None and match.group(1) == "lock-", node
    assert node == lock.lock_path()
    data, stat = client.get_data(node)
    assert stat.ephemeralOwner == session_of(client)[0]
    lock.release()
    assert client.get_children(path) == []


def test_reentrant_per_thread_on_the_blocking_face(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = unique("reentrant")
    lock = InterProcessMutex(client, path)
    assert lock.acquire(10)
    assert lock.acquire(10)  # the same thread: held twice, one node
    assert len(lock.get_participant_nodes()) == 1
    other_thread: list[bool] = []
    worker = threading.Thread(target=lambda: other_thread.append(lock.acquire(0.3)))
    worker.start()
    worker.join(30)
    assert other_thread == [False]  # another thread of the same process waits
    lock.release()
    assert lock.is_acquired_in_this_process()
    lock.release()
    assert not lock.is_acquired_in_this_process()
    assert lock.get_participant_nodes() == []
    with pytest.raises(LockNotHeldError):
        lock.release()


def test_reentrant_per_owner_on_the_async_face(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = unique("owners")

    async def scenario(async_client: Any) -> tuple[bool, bool, bool, int]:
        lock = InterProcessMutex(async_client, path)
        first = await lock.acquire(5, owner="a")
        again = await lock.acquire(5, owner="a")
        other = await lock.acquire(0.3, owner="b")
        nodes = len(await lock.get_participant_nodes())
        await lock.release(owner="a")
        await lock.release(owner="a")
        async with lock:
            assert lock.is_owned_by(lock)
        return first, again, other, nodes

    assert client.run(scenario) == (True, True, False, 1)
    assert client.get_children(path) == []


@pytest.mark.parametrize(
    ("kind", "processes", "rounds"),
    [("mutex", 4, 15), ("semaphore-mutex", 3, 8), ("write", 3, 8)],
)
def test_mutual_exclusion_across_processes(
    server: Any, make_client: Any, kind: str, processes: int, rounds: int
) -> None:
    """
    Several processes increment a counter node (read, then write the value plus one,
    with no version check) under the lock: only mutual exclusion keeps it exact.
    """
    client = make_client(server.hosts)
    counter = unique("counter")
    client.create(counter, b"0", parents=True)
    lock_path = unique("shared")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.curatorish.recipes.lock_worker",
                server.hosts,
                kind,
                lock_path,
                counter,
                str(rounds),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0 and out.strip() == b"done", err.decode()[-2000:]
    data, _stat = client.get_data(counter)
    assert int(data) == processes * rounds


class CountingDriver(StandardLockInternalsDriver):
    """Counts how often a contender looks at the children: once, plus once per wake."""

    def __init__(self) -> None:
        self.looks = 0

    def gets_the_lock(
        self, children: Sequence[str], sequence_node_name: str, max_leases: int, owner: Any = None
    ) -> PredicateResults:
        self.looks += 1
        return super().gets_the_lock(children, sequence_node_name, max_leases, owner)


def test_no_herd_only_the_next_waiter_wakes(server: Any, make_client: Any) -> None:
    path = unique("herd")
    holder = InterProcessMutex(make_client(server.hosts), path)
    assert holder.acquire(10)
    drivers = [CountingDriver() for _ in range(4)]
    waiters = [InterProcessMutex(make_client(server.hosts), path, driver=d) for d in drivers]
    results: dict[int, bool] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, waiters[i].acquire(60)))
        for i in range(len(waiters))
    ]
    for index, thread in enumerate(threads):
        thread.start()
        # queue them in order: each joins once the previous one has looked
        wait_until(lambda index=index: drivers[index].looks == 1, timeout=20)
    wait_until(lambda: len(holder.get_participant_nodes()) == 5, timeout=20)
    holder.release()
    wait_until(lambda: results.get(0) is True, timeout=20, message="next waiter took the lock")
    assert [d.looks for d in drivers] == [2, 1, 1, 1]
    # and so on down the queue, each release waking exactly one
    for index in range(len(waiters)):
        threads[index].join(30)
        waiters[index].release(owner=threads[index])  # the thread that acquired
        if index + 1 < len(waiters):
            wait_until(lambda index=index: results.get(index + 1) is True, timeout=20)
            assert drivers[index + 1].looks == 2
    assert [d.looks for d in drivers] == [2, 2, 2, 2]


def test_lock_freed_and_known_lost_when_the_holders_session_expires(
    server: Any, make_client: Any
) -> None:
    path = unique("expiry")
    holder_client = make_client(server.hosts)
    holder = InterProcessMutex(holder_client, path)
    waiter = InterProcessMutex(make_client(server.hosts), path)
    assert holder.acquire(10)
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(waiter.acquire(60)))
    thread.start()
    wait_until(lambda: len(waiter.get_participant_nodes()) == 2, timeout=20)
    session_id, password = session_of(holder_client)
    assert expire_session(server.hosts, session_id, password)
    thread.join(60)
    assert got == [True], "the waiter took the lock once the holder's session expired"
    wait_until(lambda: not holder.is_acquired_in_this_process(), timeout=30)
    with pytest.raises(LockLostError):
        holder.release()
    waiter.release(owner=thread)


def test_acquire_times_out_and_leaves_no_node(server: Any, make_client: Any) -> None:
    path = unique("timeout")
    holder = InterProcessMutex(make_client(server.hosts), path)
    other = InterProcessMutex(make_client(server.hosts), path)
    assert holder.acquire(10)
    assert other.acquire(0.2) is False
    assert len(holder.get_participant_nodes()) == 1
    holder.release()
    assert other.acquire(10)
    other.release()


def test_read_write_lock_rules(server: Any, make_client: Any) -> None:
    path = unique("rw")
    one = InterProcessReadWriteLock(make_client(server.hosts), path)
    two = InterProcessReadWriteLock(make_client(server.hosts), path)
    # readers share
    assert one.read_lock().acquire(10)
    assert two.read_lock().acquire(10)
    assert two.write_lock().acquire(0.3) is False  # a writer waits for readers
    one.read_lock().release()
    two.read_lock().release()
    # a writer excludes readers and writers; it may take the read lock itself
    assert one.write_lock().acquire(10)
    assert two.read_lock().acquire(0.3) is False
    assert two.write_lock().acquire(0.3) is False
    assert one.read_lock().acquire(10)
    nodes = names(one.write_lock().get_participant_nodes()) + names(
        one.read_lock().get_participant_nodes()
    )
    kinds = [NODE.match(name).group(1) for name in nodes]  # type: ignore[union-attr]
    assert kinds == ["__WRIT__", "__READ__"]
    one.write_lock().release()  # downgraded: still a reader
    assert two.read_lock().acquire(10)
    assert two.write_lock().acquire(0.3) is False
    one.read_lock().release()
    two.read_lock().release()
    assert two.write_lock().acquire(10)
    two.write_lock().release()


def test_waiting_writer_keeps_later_readers_out(server: Any, make_client: Any) -> None:
    path = unique("rw-order")
    reader = InterProcessReadWriteLock(make_client(server.hosts), path)
    writer = InterProcessReadWriteLock(make_client(server.hosts), path)
    late = InterProcessReadWriteLock(make_client(server.hosts), path)
    assert reader.read_lock().acquire(10)
    wrote: list[bool] = []
    thread = threading.Thread(target=lambda: wrote.append(writer.write_lock().acquire(60)))
    thread.start()
    wait_until(lambda: len(writer.write_lock().get_participant_nodes()) == 1, timeout=20)
    assert late.read_lock().acquire(0.3) is False  # behind the waiting writer
    reader.read_lock().release()
    thread.join(60)
    assert wrote == [True]
    writer.write_lock().release(owner=thread)
    assert late.read_lock().acquire(10)
    late.read_lock().release()


def test_semaphore_never_over_its_leases(server: Any, make_client: Any) -> None:
    path = unique("semaphore")
    max_leases, workers, rounds = 2, 5, 4
    holding = 0
    most = 0
    guard = threading.Lock()
    failures: list[BaseException] = []

    def work() -> None:
        nonlocal holding, most
        semaphore = InterProcessSemaphoreV2(make_client(server.hosts), path, max_leases)
        try:
            for _ in range(rounds):
                lease = semaphore.acquire(60)
                assert lease is not None
                try:
                    with guard:
                        holding += 1
                        most = max(most, holding)
                        assert holding <= max_leases
                    # lease nodes: the holders', plus at most one acquirer's waiting
                    assert len(semaphore.get_participant_nodes()) <= max_leases + 1
                finally:
                    with guard:
                        holding -= 1
                    lease.close()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert most >= 1
    assert InterProcessSemaphoreV2(make_client(server.hosts), path, 2).get_participant_nodes() == []


def test_semaphore_acquire_many_timeout_and_names(server: Any, make_client: Any) -> None:
    path = unique("semaphore-many")
    client = make_client(server.hosts)
    semaphore = InterProcessSemaphoreV2(client, path, 3)
    leases = semaphore.acquire_many(2, 10)
    assert leases is not None and len(leases) == 2
    other = InterProcessSemaphoreV2(make_client(server.hosts), path, 3)
    assert other.acquire_many(2, 0.3) is None  # only one left: none kept
    assert len(semaphore.get_participant_nodes()) == 2
    one = other.acquire(10)
    assert one is not None
    match = NODE.match(one.node_name)
    assert match is not None and match.group(1) == "lease-"
    assert one.path.startswith(path + "/leases/")
    assert sorted(client.get_children(path)) == ["leases", "locks"]
    semaphore.return_lease(leases[0])
    leases[1].close()
    one.close()
    assert semaphore.get_participant_nodes() == []


def test_semaphore_mutex_is_not_reentrant(server: Any, make_client: Any) -> None:
    path = unique("semaphore-mutex")
    lock = InterProcessSemaphoreMutex(make_client(server.hosts), path)
    assert lock.acquire(10)
    assert lock.acquire(0.3) is False
    assert lock.is_acquired_in_this_process()
    lock.release()
    with pytest.raises(LockNotHeldError):
        lock.release()
    with lock:
        assert lock.is_acquired_in_this_process()


def test_multi_lock_all_or_none(server: Any, make_client: Any) -> None:
    first, second = unique("multi-a"), unique("multi-b")
    client = make_client(server.hosts)
    other_client = make_client(server.hosts)
    blocker = InterProcessMutex(other_client, second)
    assert blocker.acquire(10)
    multi = InterProcessMultiLock(client, [first, second])
    assert multi.acquire(0.5) is False
    assert InterProcessMutex(other_client, first).acquire(1)  # first was let go
    blocker.release()


def test_multi_lock_holds_every_path(server: Any, make_client: Any) -> None:
    first, second = unique("multi-c"), unique("multi-d")
    multi = InterProcessMultiLock(make_client(server.hosts), [first, second])
    other = make_client(server.hosts)
    with multi:
        assert multi.is_acquired_in_this_process()
        assert InterProcessMutex(other, first).acquire(0.2) is False
        assert InterProcessMutex(other, second).acquire(0.2) is False
    assert InterProcessMutex(other, second).acquire(5)


def test_revocation_asks_the_holder(server: Any, make_client: Any) -> None:
    path = unique("revoke")
    client = make_client(server.hosts)
    lock = InterProcessMutex(client, path)
    asked = threading.Event()
    acquirer = threading.current_thread()

    def on_revoke(revoked: InterProcessMutex) -> None:
        assert revoked is lock
        revoked.release(owner=acquirer)  # runs on the event thread
        asked.set()

    lock.make_revocable(on_revoke)
    assert lock.acquire(10)
    other = make_client(server.hosts)
    (node,) = InterProcessMutex(other, path).get_participant_nodes()
    other.run(lambda async_client: Revoker.attempt_revoke(async_client, node))
    assert asked.wait(20)
    assert InterProcessMutex(other, path).acquire(10)


def test_closing_the_client_ends_a_wait(server: Any, make_client: Any) -> None:
    """A closed client delivers no watch events: the waiter must not wait for ever."""
    path = unique("closed")
    holder = InterProcessMutex(make_client(server.hosts), path)
    assert holder.acquire(10)
    waiter_client = make_client(server.hosts)
    waiter = InterProcessMutex(waiter_client, path)
    outcome: list[BaseException | bool] = []

    def wait() -> None:
        try:
            outcome.append(waiter.acquire())
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=wait)
    thread.start()
    wait_until(lambda: len(holder.get_participant_nodes()) == 2, timeout=20)
    waiter_client.close()
    thread.join(20)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectionLossError), outcome
    wait_until(lambda: len(holder.get_participant_nodes()) == 1, timeout=20)
    holder.release()
