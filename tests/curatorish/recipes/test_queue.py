"""
The distributed queues against ZooKeeper and zkreg: Curator's node names and item
envelope, every item delivered exactly once to competing consumers, requeue on a
consumer's error, ids, priorities, delays, and the simple queue.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from curatorish.recipes import (
    DistributedDelayQueue,
    DistributedIdQueue,
    DistributedPriorityQueue,
    DistributedQueue,
    ErrorMode,
    NoSuchElementError,
    QueueSerializer,
    SimpleDistributedQueue,
)
from curatorish.recipes.queue import deserialize_items, serialize_items
from tests.support.waiting import wait_until

TEXT = QueueSerializer(lambda item: item.encode(), lambda data: data.decode())


def _path(name: str) -> str:
    return f"/queues/{name}-{uuid.uuid4().hex[:8]}"


def test_envelope_format() -> None:
    data = serialize_items(["ab", ""], TEXT)
    assert data == (
        b"\x00\x01\x00\x01" + b"\x01\x00\x00\x00\x02ab" + b"\x01\x00\x00\x00\x00" + b"\x02"
    )
    assert deserialize_items(data, TEXT) == ["ab", ""]
    with pytest.raises(ValueError):
        deserialize_items(b"\x00\x01\x00\x02\x02", TEXT)
    with pytest.raises(ValueError):
        deserialize_items(b"\x00\x01\x00\x01\x01\x00\x00\x00\x09ab\x02", TEXT)


def test_producer_writes_curators_nodes(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("names")
    queue = DistributedQueue(client, path, TEXT)
    queue.start()
    assert queue.put("one") == f"{path}/queue-0000000000"
    queue.put_multi(["two", "three"])
    names = sorted(client.get_children(path))
    assert names == ["queue-0000000000", "queue-0000000001"]
    assert deserialize_items(client.get_data(f"{path}/{names[1]}")[0], TEXT) == ["two", "three"]
    queue.close()


@pytest.mark.parametrize("with_lock", [False, True], ids=["plain", "lock-safety"])
def test_every_item_delivered_exactly_once(server: Any, make_client: Any, with_lock: bool) -> None:
    path = _path("once")
    lock_path = path + "-locks" if with_lock else None
    delivered: Counter[str] = Counter()
    mutex = threading.Lock()

    def consume(item: str) -> None:
        with mutex:
            delivered[item] += 1

    consumers = [
        DistributedQueue(make_client(server.hosts), path, TEXT, consume, lock_path=lock_path)
        for _ in range(3)
    ]
    for consumer in consumers:
        consumer.start()
    producers = [DistributedQueue(make_client(server.hosts), path, TEXT) for _ in range(2)]
    for producer in producers:
        producer.start()
    expected = set()

    def produce(index: int, producer: DistributedQueue) -> None:
        for n in range(30):
            producer.put(f"{index}-{n}")

    threads = [threading.Thread(target=produce, args=(i, p)) for i, p in enumerate(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    expected = {f"{i}-{n}" for i in range(2) for n in range(30)}
    wait_until(lambda: set(delivered) == expected, timeout=60, message="all delivered")
    observer = make_client(server.hosts)
    wait_until(lambda: observer.get_children(path) == [], timeout=30)
    assert max(delivered.values()) == 1, delivered
    for queue in consumers + producers:
        queue.close()


def test_requeued_after_a_consumer_error(server: Any, make_client: Any) -> None:
    path = _path("requeue")
    attempts: list[str] = []

    def flaky(item: str) -> None:
        attempts.append(item)
        if len(attempts) == 1:
            raise RuntimeError("first delivery fails")

    queue = DistributedQueue(
        make_client(server.hosts), path, TEXT, flaky, lock_path=path + "-locks"
    )
    queue.start()
    queue.put("job")
    wait_until(lambda: attempts == ["job", "job"], timeout=30, message="redelivered")
    queue.close()


def test_async_face_consumer(server: Any, make_client: Any) -> None:
    from twisted.internet import defer

    client = make_client(server.hosts)
    got: list[str] = []

    def consume(item: str) -> defer.Deferred[None]:
        got.append(item)
        return defer.succeed(None)

    queue = DistributedQueue(client.async_client, _path("async"), TEXT, consume)
    client.call(queue.start)
    client.call(queue.put, "x")
    wait_until(lambda: got == ["x"], timeout=30)
    client.call(queue.close)


def test_id_queue_names_and_remove(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("id")
    queue = DistributedIdQueue(client, path, TEXT)
    queue.start()
    assert queue.put("a", "job/1") == f"{path}/queue-|job_1|0000000000"
    queue.put("b", "other")
    queue.put("c", "job/1")
    assert queue.remove("job_1") == 2
    assert client.get_children(path) == ["queue-|other|0000000001"]
    got: list[str] = []
    consumer = DistributedIdQueue(make_client(server.hosts), path, TEXT, got.append)
    consumer.start()
    wait_until(lambda: got == ["b"], timeout=30)
    consumer.close()
    queue.close()


def test_priority_queue_order(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("priority")
    producer = DistributedPriorityQueue(client, path, TEXT)
    producer.start()
    for item, priority in [("low", 10), ("neg", -5), ("zero", 0), ("high", 2**31 - 1)]:
        producer.put(item, priority)
    assert sorted(client.get_children(path))[0] == "queue-0FFFFFFFB0000000001"
    got: list[str] = []
    consumer = DistributedPriorityQueue(make_client(server.hosts), path, TEXT, got.append)
    consumer.start()
    wait_until(lambda: len(got) == 4, timeout=30)
    assert got == ["neg", "zero", "low", "high"]
    consumer.close()
    producer.close()


def test_delay_queue_waits_for_the_time(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("delay")
    got: list[tuple[str, float]] = []
    queue = DistributedDelayQueue(client, path, TEXT, lambda item: got.append((item, time.time())))
    queue.start()
    due = int(time.time() * 1000) + 1500
    node = queue.put("later", due)
    assert node.rsplit("/", 1)[1] == f"queue-|{due:08X}|0000000000"
    queue.put("now", 1)
    wait_until(lambda: [item for item, _ in got] == ["now", "later"], timeout=30)
    assert got[1][1] * 1000 >= due
    queue.close()


def test_simple_queue(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("simple")
    queue = SimpleDistributedQueue(client, path)
    assert queue.peek() is None
    assert queue.poll() is None
    with pytest.raises(NoSuchElementError):
        queue.element()
    queue.offer(b"1")
    queue.offer(b"2")
    assert sorted(client.get_children(path)) == ["qn-0000000000", "qn-0000000001"]
    assert client.get_data(f"{path}/qn-0000000000")[0] == b"1"
    assert queue.element() == b"1"
    assert queue.remove() == b"1"
    assert queue.take() == b"2"
    assert queue.poll(0.2) is None

    taker = SimpleDistributedQueue(make_client(server.hosts), path)
    taken: list[bytes] = []
    thread = threading.Thread(target=lambda: taken.append(taker.take()), daemon=True)
    thread.start()
    queue.offer(b"3")
    thread.join(30)
    assert taken == [b"3"]


def test_error_mode_delete_drops(server: Any, make_client: Any) -> None:
    path = _path("drop")
    attempts: list[str] = []

    def failing(item: str) -> None:
        attempts.append(item)
        raise RuntimeError("always")

    client = make_client(server.hosts)
    queue = DistributedQueue(
        client, path, TEXT, failing, lock_path=path + "-locks", error_mode=ErrorMode.DELETE
    )
    queue.start()
    queue.put("job")
    wait_until(lambda: attempts == ["job"] and client.get_children(path) == [], timeout=30)
    queue.close()


def test_consumer_goes_on_after_its_session_expires(server: Any, make_client: Any) -> None:
    from curatorish.kill_session import expire_session, session_of

    path = _path("expiry")
    got: list[str] = []
    states: list[str] = []
    consumer_client = make_client(server.hosts, states=states)
    consumer = DistributedQueue(consumer_client, path, TEXT, got.append, lock_path=path + "-l")
    consumer.start()
    producer = DistributedQueue(make_client(server.hosts), path, TEXT)
    producer.start()
    producer.put("before")
    wait_until(lambda: got == ["before"], timeout=30)
    assert expire_session(server.hosts, *session_of(consumer_client))
    wait_until(lambda: "LOST" in states and states[-1] == "RECONNECTED", timeout=60)
    producer.put("after")
    wait_until(lambda: got == ["before", "after"], timeout=30, message="delivered after expiry")
    consumer.close()
    producer.close()


def test_lock_safety_redelivers_when_the_consumer_dies(server: Any, make_client: Any) -> None:
    """
    A consumer holding an item's lock loses its session while handling it: the lock
    goes with the session and another consumer gets the item (at least once).
    """
    from curatorish.kill_session import expire_session, session_of

    path = _path("redeliver")
    lock_path = path + "-locks"
    stuck = threading.Event()
    release = threading.Event()

    def hang(item: str) -> None:
        stuck.set()
        release.wait(60)

    dying_client = make_client(server.hosts)
    dying = DistributedQueue(dying_client, path, TEXT, hang, lock_path=lock_path)
    dying.start()
    producer = DistributedQueue(make_client(server.hosts), path, TEXT)
    producer.start()
    producer.put("job")
    assert stuck.wait(30)
    got: list[str] = []
    survivor = DistributedQueue(
        make_client(server.hosts), path, TEXT, got.append, lock_path=lock_path
    )
    survivor.start()
    observer = make_client(server.hosts)
    assert len(observer.get_children(lock_path)) == 1  # held by the stuck consumer
    assert got == []
    assert expire_session(server.hosts, *session_of(dying_client))
    wait_until(lambda: got == ["job"], timeout=60, message="redelivered to the survivor")
    release.set()
    for queue in (dying, survivor, producer):
        queue.close()
