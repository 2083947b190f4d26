"""
The blocking face: calls wait on the shared reactor thread, watchers and listeners
run in order on the client's event thread, and blocking from the reactor thread is
refused instead of deadlocking.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from curatorish.blocking import EventThread
from curatorish.reactor_thread import call_in_reactor, in_reactor_thread, shared_reactor
from tests.support.waiting import wait_until


def test_calls_run_on_the_reactor_thread() -> None:
    reactor = shared_reactor()
    assert reactor.running
    assert not in_reactor_thread()
    assert call_in_reactor(in_reactor_thread) is True


def test_a_blocking_call_from_the_reactor_thread_is_refused() -> None:
    def nested() -> Any:
        return call_in_reactor(lambda: 1)

    with pytest.raises(RuntimeError, match="reactor thread"):
        call_in_reactor(nested)


def test_call_timeout_is_a_bound() -> None:
    from twisted.internet import defer

    with pytest.raises(TimeoutError):
        call_in_reactor(defer.Deferred, timeout_s=0.2)


def test_failures_come_back_as_the_original_exception() -> None:
    def fails() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        call_in_reactor(fails)


def test_event_thread_runs_callbacks_in_order_and_survives_errors() -> None:
    events = EventThread("test-events")
    seen: list[int] = []
    threads: set[str] = set()

    def record(value: int) -> None:
        threads.add(threading.current_thread().name)
        if value == 2:
            raise RuntimeError("callback bug")
        seen.append(value)

    for value in range(5):
        events.post(record, value)
    wait_until(lambda: seen == [0, 1, 3, 4], message="callbacks in order")
    assert threads == {"test-events"}
    events.stop()


def test_watchers_of_a_blocking_client_run_on_its_event_thread(
    server: Any, make_client: Any, unique_path: str
) -> None:
    client = make_client(server.hosts)
    names: list[str] = []

    def watcher(event: Any) -> None:
        names.append(threading.current_thread().name)
        # May call the blocking client: the event thread is not the reactor's.
        names.append(str(client.exists(unique_path) is not None))

    client.exists(unique_path, watcher=watcher)
    client.create(unique_path)
    wait_until(lambda: len(names) == 2, message="watcher ran")
    assert names == ["curatorish-events", "True"]
