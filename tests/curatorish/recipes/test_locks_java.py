"""
Interop with Apache Curator 5.4 (tests/java/CuratorLocks.java) against zkreg: a Java
InterProcessMutex and a curatorish one exclude each other both ways (a shared
counter ends exact), the read-write lock's and the semaphore's rules hold across the
two languages, and a Java LeaderLatch and a curatorish one never both lead.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from curatorish.kill_session import expire_session, session_of
from curatorish.recipes import (
    InterProcessMutex,
    InterProcessReadWriteLock,
    InterProcessSemaphoreV2,
    LeaderLatch,
)
from tests.support.waiting import wait_until


def unique(name: str) -> str:
    return f"/locks-java/{name}-{uuid.uuid4().hex[:8]}"


def start_java(java_program: Any, hosts: str) -> Any:
    java = java_program("CuratorLocks").start(hosts)
    java.expect("READY", timeout=90)
    return java


def test_java_and_python_mutexes_exclude_each_other(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    path = unique("mutex")
    lock = InterProcessMutex(make_client(curatorish_zkreg.hosts), path)
    with start_java(java_program, curatorish_zkreg.hosts) as java:
        assert lock.acquire(10)
        assert java.request(f"acquire {path} 300", "ACQUIRED") == "ACQUIRED false"
        lock.release()
        assert java.request(f"acquire {path} 10000", "ACQUIRED") == "ACQUIRED true"
        assert lock.acquire(0.3) is False
        (node,) = lock.get_participant_nodes()  # Curator's name, sorted by our driver
        assert "-lock-" in node and node.rsplit("/", 1)[1].startswith("_c_")
        waiting: list[bool] = []
        thread = threading.Thread(target=lambda: waiting.append(lock.acquire(30)))
        thread.start()
        wait_until(lambda: len(lock.get_participant_nodes()) == 2, timeout=20)
        assert java.request(f"release {path}", "RELEASED") == "RELEASED"
        thread.join(30)
        assert waiting == [True]  # the Python waiter watched the Java holder's node
        lock.release(owner=thread)
        assert java.request("quit", "BYE") == "BYE"


def test_shared_counter_under_java_and_python_locks(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    client = make_client(curatorish_zkreg.hosts)
    lock_path, counter = unique("counter-lock"), unique("counter")
    client.create(counter, b"0", parents=True)
    rounds = 20
    with start_java(java_program, curatorish_zkreg.hosts) as java:
        assert java.request(f"count {lock_path} {counter} {rounds}", "COUNTING") == "COUNTING"
        failures: list[BaseException] = []

        def count() -> None:
            try:
                mutex = InterProcessMutex(make_client(curatorish_zkreg.hosts), lock_path)
                for _ in range(rounds):
                    with mutex:
                        data, _stat = client.get_data(counter)
                        client.set_data(counter, str(int(data) + 1).encode())
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=count) for _ in range(2)]
        for thread in threads:
            thread.start()
        assert java.expect("COUNTED", timeout=120) == f"COUNTED {rounds}"
        for thread in threads:
            thread.join(120)
        assert not failures, failures
        data, _stat = client.get_data(counter)
        assert int(data) == 3 * rounds
        assert java.request("quit", "BYE") == "BYE"


def test_read_write_rules_across_languages(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    path = unique("rw")
    rw = InterProcessReadWriteLock(make_client(curatorish_zkreg.hosts), path)
    with start_java(java_program, curatorish_zkreg.hosts) as java:
        # Java writes: Python can neither read nor write
        assert java.request(f"write-acquire {path} 10000", "ACQUIRED") == "ACQUIRED true"
        assert rw.read_lock().acquire(0.3) is False
        assert rw.write_lock().acquire(0.3) is False
        assert java.request(f"write-release {path}", "RELEASED") == "RELEASED"
        # readers share across languages; a writer on either side waits
        assert rw.read_lock().acquire(10)
        assert java.request(f"read-acquire {path} 10000", "ACQUIRED") == "ACQUIRED true"
        assert java.request(f"write-acquire {path} 300", "ACQUIRED") == "ACQUIRED false"
        assert rw.write_lock().acquire(0.3) is False
        assert java.request(f"read-release {path}", "RELEASED") == "RELEASED"
        rw.read_lock().release()
        # Python writes: Java can neither read nor write
        assert rw.write_lock().acquire(10)
        assert java.request(f"read-acquire {path} 300", "ACQUIRED") == "ACQUIRED false"
        assert java.request(f"write-acquire {path} 300", "ACQUIRED") == "ACQUIRED false"
        rw.write_lock().release()
        assert java.request(f"write-acquire {path} 10000", "ACQUIRED") == "ACQUIRED true"
        assert java.request(f"write-release {path}", "RELEASED") == "RELEASED"
        assert java.request("quit", "BYE") == "BYE"


def test_semaphore_leases_across_languages(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    path = unique("semaphore")
    semaphore = InterProcessSemaphoreV2(make_client(curatorish_zkreg.hosts), path, 2)
    with start_java(java_program, curatorish_zkreg.hosts) as java:
        java_lease = java.request(f"lease {path} 2 10000", "LEASE").split()[1]
        assert java_lease != "none" and "-lease-" in java_lease
        ours = semaphore.acquire(10)
        assert ours is not None
        assert semaphore.acquire(0.3) is None  # two out: one Java, one Python
        assert java.request(f"lease {path} 2 300", "LEASE") == "LEASE none"
        assert sorted(semaphore.get_participant_nodes()) == sorted([java_lease, ours.node_name])
        ours.close()
        second = java.request(f"lease {path} 2 10000", "LEASE").split()[1]
        assert second != "none"
        assert semaphore.acquire(0.3) is None
        assert java.request(f"return {java_lease}", "RETURNED") == "RETURNED"
        again = semaphore.acquire(10)
        assert again is not None
        again.close()
        assert java.request(f"return {second}", "RETURNED") == "RETURNED"
        assert java.request("quit", "BYE") == "BYE"


def test_java_and_python_latches_never_both_lead(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    path = unique("latch")
    client = make_client(curatorish_zkreg.hosts, session_timeout_ms=4000)
    with start_java(java_program, curatorish_zkreg.hosts) as java:

        def java_leads() -> bool:
            return java.request(f"latch-leads {path}", "LEADS") == "LEADS true"

        def exactly_one_leader(python: LeaderLatch) -> str | None:
            before = python.has_leadership()
            java_now = java_leads()
            after = python.has_leadership()
            assert not (before and after and java_now), "Java and Python lead at once"
            if java_now and not before and not after:
                return "java"
            if before and after and not java_now:
                return "python"
            return None

        assert java.request(f"latch-start {path} java", "STARTED") == "STARTED"
        wait_until(java_leads, timeout=30, message="the Java latch leads")
        python = LeaderLatch(client, path, "python")
        python.start()
        wait_until(lambda: len(python.get_participants()) == 2, timeout=30)
        assert exactly_one_leader(python) == "java"
        assert python.get_leader().id == "java"
        # the Java leader leaves: Python takes over
        assert java.request(f"latch-close {path}", "CLOSED") == "CLOSED"
        wait_until(lambda: exactly_one_leader(python) == "python", timeout=30)
        # Java joins again, behind Python; then Python's session expires: Java leads
        assert java.request(f"latch-start {path} java", "STARTED") == "STARTED"
        wait_until(lambda: len(python.get_participants()) == 2, timeout=30)
        assert exactly_one_leader(python) == "python"
        assert expire_session(curatorish_zkreg.hosts, *session_of(client))
        wait_until(lambda: exactly_one_leader(python) == "java", timeout=60)
        wait_until(lambda: len(python.get_participants()) == 2, timeout=30)  # Python rejoined
        for _ in range(10):
            assert exactly_one_leader(python) == "java"
        python.close()
        assert java.request(f"latch-close {path}", "CLOSED") == "CLOSED"
        assert java.request("quit", "BYE") == "BYE"
