"""
DistributedBarrier and DistributedDoubleBarrier against ZooKeeper and zkreg.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from curatorish.errors import NoNodeError
from curatorish.recipes import DistributedBarrier, DistributedDoubleBarrier
from tests.support.waiting import wait_until


def _path(name: str) -> str:
    return f"/barriers/{name}-{uuid.uuid4().hex[:8]}"


def _children(client: Any, path: str) -> list[str]:
    """The children of a container that the server may already have reaped."""
    try:
        return client.get_children(path)  # type: ignore[no-any-return]
    except NoNodeError:
        return []


def test_barrier_holds_waiters_until_removed(server: Any, make_client: Any) -> None:
    path = _path("single")
    setter = DistributedBarrier(make_client(server.hosts), path)
    setter.set_barrier()
    setter.set_barrier()  # idempotent
    waiters = [DistributedBarrier(make_client(server.hosts), path) for _ in range(3)]
    released: list[bool] = []

    def wait(barrier: DistributedBarrier) -> None:
        released.append(barrier.wait_on_barrier())

    threads = [threading.Thread(target=wait, args=(w,), daemon=True) for w in waiters]
    for thread in threads:
        thread.start()
    # Held: a bounded wait times out while the barrier is set.
    assert waiters[0].wait_on_barrier(timeout=0.5) is False
    assert released == []
    setter.remove_barrier()
    for thread in threads:
        thread.join(30)
    assert released == [True, True, True]
    assert waiters[0].wait_on_barrier(timeout=0) is True
    setter.remove_barrier()  # absent is fine


def test_barrier_async_face(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    barrier = DistributedBarrier(client.async_client, _path("async"))
    client.call(barrier.set_barrier)
    assert client.call(barrier.wait_on_barrier, 0.2) is False
    client.call(barrier.remove_barrier)
    assert client.call(barrier.wait_on_barrier, 5) is True


def test_double_barrier_enters_and_leaves_together(server: Any, make_client: Any) -> None:
    path = _path("double")
    members = [DistributedDoubleBarrier(make_client(server.hosts), path, 3) for _ in range(3)]
    log: list[str] = []
    lock = threading.Lock()

    def run(index: int, member: DistributedDoubleBarrier) -> None:
        assert member.enter(timeout=60)
        with lock:
            log.append(f"in{index}")
        assert member.leave(timeout=60)
        with lock:
            log.append(f"out{index}")

    # Two members alone cannot enter.
    threads = [
        threading.Thread(target=run, args=(i, m), daemon=True) for i, m in enumerate(members[:2])
    ]
    for thread in threads:
        thread.start()
    observer = make_client(server.hosts)
    wait_until(lambda: len(_children(observer, path)) == 2, timeout=30)
    assert log == []
    last = threading.Thread(target=run, args=(2, members[2]), daemon=True)
    last.start()
    for thread in [*threads, last]:
        thread.join(60)
    assert sorted(log[:3]) == ["in0", "in1", "in2"]
    assert sorted(log[3:]) == ["out0", "out1", "out2"]
    assert _children(observer, path) == []


def test_double_barrier_enter_survives_its_parent_reaped(
    server: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    The barrier's empty container is deleted (as the server's container reaper
    does) between the framework making the parents and creating the member's node:
    C{enter} makes them again instead of failing with C{NoNodeError}.
    """
    client = make_client(server.hosts)
    framework = client.async_client
    path = _path("reaped")
    real_mkdirs = framework._mkdirs  # the window is inside create(parents=...)
    reaped: list[str] = []

    async def mkdirs_then_reap(full_path: str, make_last: bool, as_containers: bool) -> None:
        await real_mkdirs(full_path, make_last, as_containers)
        if not reaped:
            reaped.append(path)
            await framework.delete(path)

    monkeypatch.setattr(framework, "_mkdirs", mkdirs_then_reap)
    member = DistributedDoubleBarrier(client, path, 1)
    assert member.enter(timeout=30) is True
    assert reaped == [path]
    children = client.get_children(path)
    assert "ready" in children and len(children) == 2
    assert member.leave(timeout=30) is True
    assert _children(client, path) == []


def test_double_barrier_enter_times_out(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    path = _path("timeout")
    member = DistributedDoubleBarrier(client, path, 2)
    assert member.enter(timeout=0.5) is False
    assert len(client.get_children(path)) == 1
    assert member.leave(timeout=5) is True
    assert _children(client, path) == []


def test_waiter_survives_its_session_expiring(server: Any, make_client: Any) -> None:
    """
    The waiter's session expires while it waits; on its new session it is still
    released when the barrier goes.
    """
    from curatorish.kill_session import expire_session, session_of

    path = _path("expiry")
    setter = DistributedBarrier(make_client(server.hosts), path)
    setter.set_barrier()
    states: list[str] = []
    waiter_client = make_client(server.hosts, states=states)
    waiter = DistributedBarrier(waiter_client, path)
    released: list[bool] = []
    thread = threading.Thread(target=lambda: released.append(waiter.wait_on_barrier(60)))
    thread.start()
    assert expire_session(server.hosts, *session_of(waiter_client))
    wait_until(lambda: "LOST" in states and states[-1] == "RECONNECTED", timeout=60)
    setter.remove_barrier()
    thread.join(60)
    assert released == [True]
