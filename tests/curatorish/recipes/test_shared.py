"""
SharedCount / SharedValue against ZooKeeper and zkreg: Curator's 4-byte format,
versioned writes, listeners told of other clients' writes.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from curatorish.recipes import SharedCount, SharedCountListener, SharedValue, VersionedValue
from tests.support.waiting import wait_until


def _path(name: str) -> str:
    return f"/shared/{name}-{uuid.uuid4().hex[:8]}"


def test_count_seed_format_and_versioned_writes(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("count")
    count = SharedCount(client, path, 7)
    assert count.get_count() == 7  # the seed, before start
    count.start()
    assert client.get_data(path)[0] == b"\x00\x00\x00\x07"
    assert count.get_versioned_value() == VersionedValue(0, 7)

    count.set_count(-2)
    assert client.get_data(path)[0] == b"\xff\xff\xff\xfe"
    assert count.get_versioned_value() == VersionedValue(1, -2)

    stale = VersionedValue(0, 7)
    assert count.try_set_count(stale, 100) is False
    assert count.try_set_count(count.get_versioned_value(), 100) is True
    assert count.get_count() == 100

    # A second instance starts from the stored value, not its seed.
    other = SharedCount(client, path, 55)
    other.start()
    assert other.get_count() == 100
    other.close()
    count.close()
    with pytest.raises(RuntimeError):
        count.set_count(1)


def test_listeners_hear_other_clients(server: Any, make_client: Any) -> None:
    path = _path("listen")
    reader_client = make_client(server.hosts)
    reader = SharedCount(reader_client, path, 0)
    heard: list[int] = []
    threads: list[str] = []

    class Listener(SharedCountListener):
        def count_has_changed(self, shared_count: SharedCount, new_count: int) -> None:
            threads.append(threading.current_thread().name)
            heard.append(new_count)

    reader.add_listener(Listener())
    reader.start()
    writer = SharedCount(make_client(server.hosts), path, 0)
    writer.start()
    for value in (1, 2, 3):
        writer.set_count(value)
        wait_until(lambda value=value: reader.get_count() == value, timeout=20)
    wait_until(lambda: heard and heard[-1] == 3, timeout=20)
    assert set(threads) == {"curatorish-events"}
    # A stale version on the reader side after another client wrote: refused, then
    # the reader's copy is current again.
    stale = reader.get_versioned_value()
    writer.set_count(10)
    assert reader.try_set_count(stale, 11) is False
    wait_until(lambda: reader.get_count() == 10, timeout=20)
    reader.close()
    writer.close()


def test_shared_value_bytes_and_async_face(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("value")
    value = SharedValue(client.async_client, path, b"seed")
    client.call(value.start)
    assert value.get_value() == b"seed"
    client.call(value.set_value, b"next")
    assert client.get_data(path)[0] == b"next"
    assert client.call(value.try_set_value, value.get_versioned_value(), b"last") is True
    client.call(value.close)
