"""
Interop with Apache Curator 5.4 (Java) against zkreg, for the shared count, the atomic
long, the barrier and the queues: what one side writes the other reads.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from curatorish.recipes import (
    DistributedAtomicLong,
    DistributedBarrier,
    DistributedDoubleBarrier,
    DistributedPriorityQueue,
    DistributedQueue,
    QueueSerializer,
    SharedCount,
    SimpleDistributedQueue,
)
from curatorish.retry import RetryNTimes
from tests.support.java import JavaProcess
from tests.support.waiting import wait_until

TEXT = QueueSerializer(lambda item: item.encode(), lambda data: data.decode())


def _path(name: str) -> str:
    return f"/interop/{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def java(curatorish_zkreg: Any, java_program: Any) -> Iterator[JavaProcess]:
    process = java_program("CuratorRecipes").start(curatorish_zkreg.hosts)
    process.expect("READY", timeout=90)
    yield process


def test_shared_count_both_ways(curatorish_zkreg: Any, make_client: Any, java: Any) -> None:
    path = _path("count")
    count = SharedCount(make_client(curatorish_zkreg.hosts), path, 5)
    count.start()
    assert java.request(f"count-start {path} 99", "COUNT") == "COUNT 5"
    count.set_count(-7)
    assert java.request(f"count-await {path} -7 20000", "COUNT") == "COUNT -7"
    assert java.request(f"count-set {path} 123456", "COUNT") == "COUNT 123456"
    wait_until(lambda: count.get_count() == 123456, timeout=20, message="Java's write seen")
    count.close()


def test_atomic_long_both_ways(curatorish_zkreg: Any, make_client: Any, java: Any) -> None:
    path = _path("long")
    counter = DistributedAtomicLong(make_client(curatorish_zkreg.hosts), path, RetryNTimes(10, 10))
    assert counter.add(2**40).post_value == 2**40
    assert java.request(f"long-add {path} 3", "LONG") == f"LONG true {2**40} {2**40 + 3}"
    assert counter.decrement().pre_value == 2**40 + 3
    assert java.request(f"long-get {path}", "LONG") == f"LONG true {2**40 + 2} {2**40 + 2}"
    assert java.request(f"long-add {path} {-(2**41)}", "LONG").endswith(f" {2**40 + 2 - 2**41}")
    assert counter.get().post_value == 2**40 + 2 - 2**41


def test_java_barrier_holds_a_python_waiter(
    curatorish_zkreg: Any, make_client: Any, java: Any
) -> None:
    path = _path("barrier")
    assert java.request(f"barrier-set {path}", "BARRIER") == "BARRIER"
    barrier = DistributedBarrier(make_client(curatorish_zkreg.hosts), path)
    released: list[bool] = []
    waiter = threading.Thread(target=lambda: released.append(barrier.wait_on_barrier(60)))
    waiter.start()
    assert barrier.wait_on_barrier(0.5) is False
    assert released == []
    assert java.request(f"barrier-remove {path}", "BARRIER") == "BARRIER"
    waiter.join(60)
    assert released == [True]


def test_queues_both_ways(curatorish_zkreg: Any, make_client: Any, java: Any) -> None:
    client = make_client(curatorish_zkreg.hosts)
    path = _path("queue")
    producer = DistributedQueue(client, path, TEXT)
    producer.start()
    for item in ("a", "b", "c"):
        producer.put(item)
    assert java.request(f"queue-consume {path} 3 30000", "ITEMS", timeout=60) == "ITEMS a,b,c"

    for item in ("x", "y"):
        assert java.request(f"queue-put {path} {item}", "PUT") == "PUT"
    got: list[str] = []
    consumer = DistributedQueue(client, path, TEXT, got.append)
    consumer.start()
    wait_until(lambda: got == ["x", "y"], timeout=30, message="Java's items consumed")
    consumer.close()
    producer.close()

    simple = _path("simple")
    SimpleDistributedQueue(client, simple).offer(b"py")
    assert java.request(f"simple-poll {simple} 10000", "POLLED") == "POLLED py"
    assert java.request(f"simple-offer {simple} java", "OFFERED") == "OFFERED"
    assert SimpleDistributedQueue(client, simple).poll(10) == b"java"


def test_double_barrier_with_java_member(
    curatorish_zkreg: Any, make_client: Any, java: Any
) -> None:
    """Two curatorish members and one Curator member enter and leave one double barrier."""
    path = _path("double")
    members = [
        DistributedDoubleBarrier(make_client(curatorish_zkreg.hosts), path, 3) for _ in range(2)
    ]
    entered: list[bool] = []
    left: list[bool] = []

    def run(member: DistributedDoubleBarrier) -> None:
        entered.append(member.enter(60))
        left.append(member.leave(60))

    threads = [threading.Thread(target=run, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    observer = make_client(curatorish_zkreg.hosts)
    wait_until(lambda: observer.exists(path) and len(observer.get_children(path)) == 2, timeout=30)
    assert entered == []  # two of three: held
    assert java.request(f"double-enter {path} 3 30000", "ENTERED") == "ENTERED true"
    wait_until(lambda: entered == [True, True], timeout=30)
    assert java.request(f"double-leave {path} 30000", "LEFT") == "LEFT true"
    for thread in threads:
        thread.join(60)
    assert left == [True, True]


def test_priority_queue_order_shared_with_java(
    curatorish_zkreg: Any, make_client: Any, java: Any
) -> None:
    path = _path("priority")
    producer = DistributedPriorityQueue(make_client(curatorish_zkreg.hosts), path, TEXT)
    producer.start()
    producer.put("ten", 10)
    producer.put("minus", -3)
    assert java.request(f"pqueue-put {path} zero 0", "PUT") == "PUT"
    producer.close()
    assert (
        java.request(f"pqueue-consume {path} 3 30000", "ITEMS", timeout=60)
        == "ITEMS minus,zero,ten"
    )
