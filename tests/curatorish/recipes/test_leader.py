"""
Leader election against Apache ZooKeeper 3.8 and zkreg: Curator's latch layout and
participants, hand-over when the leader dies or its session expires, listeners and
close modes, the selector's turns and interruption, and never two leaders while
connections are cut, partitioned and sessions expired
(C{CURATORISH_LEADER_ROUNDS} rounds, default 4; run hundreds locally).
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from typing import Any

import pytest
from twisted.internet import defer, task

from curatorish.errors import ConnectionLossError
from curatorish.kill_session import expire_session, session_of
from curatorish.recipes import CloseMode, LeaderLatch, LeaderSelector, Participant
from curatorish.retry import RetryNTimes
from curatorish.state import SessionConnectionStateErrorPolicy
from tests.support.proxy import TcpProxy
from tests.support.waiting import wait_until

ROUNDS = int(os.environ.get("CURATORISH_LEADER_ROUNDS", "4"))
LATCH_NODE = re.compile(r"^_c_[0-9a-f-]{36}-latch-\d{10}$")


def unique(name: str) -> str:
    return f"/leader-test/{name}-{uuid.uuid4().hex[:8]}"


class Recorder:
    """A latch listener recording what it heard."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    def is_leader(self) -> None:
        self.heard.append("is_leader")

    def not_leader(self) -> None:
        self.heard.append("not_leader")


def test_latch_layout_participants_and_leader(server: Any, make_client: Any) -> None:
    path = unique("latch")
    latches = []
    for name in ("a", "b", "c"):
        latch = LeaderLatch(make_client(server.hosts), path, name)
        latch.start()
        wait_until(lambda latch=latch: latch.get_our_path() is not None, timeout=20)
        latches.append(latch)
    assert latches[0].await_leadership(20)
    assert [latch.has_leadership() for latch in latches] == [True, False, False]
    assert latches[2].get_participants() == [
        Participant("a", True),
        Participant("b", False),
        Participant("c", False),
    ]
    assert latches[1].get_leader() == Participant("a", True)
    client = make_client(server.hosts)
    children = client.get_children(path)
    assert len(children) == 3 and all(LATCH_NODE.match(name) for name in children)
    data, _stat = client.get_data(latches[1].get_our_path())
    assert data == b"b"
    for latch in latches:
        latch.close()
    assert client.get_children(path) == []
    # No participant left (and a path never used): Curator's empty leader.
    assert LeaderLatch(client, path, "x").get_leader() == Participant("", False)
    assert LeaderLatch(client, unique("never"), "x").get_leader() == Participant("", False)


def test_leadership_handed_over_when_the_leader_dies(server: Any, make_client: Any) -> None:
    path = unique("handover")
    first_client = make_client(server.hosts)
    first = LeaderLatch(first_client, path, "first")
    first.start()
    assert first.await_leadership(20)
    second = LeaderLatch(make_client(server.hosts), path, "second")
    second.start()
    assert second.await_leadership(0.3) is False
    first_client.close()  # the leader's process goes away
    assert second.await_leadership(20)
    assert second.get_leader() == Participant("second", True)


def test_leadership_handed_over_when_the_leaders_session_expires(
    server: Any, make_client: Any
) -> None:
    path = unique("expiry")
    first_client = make_client(server.hosts)
    first = LeaderLatch(first_client, path, "first")
    first.start()
    assert first.await_leadership(20)
    second = LeaderLatch(make_client(server.hosts), path, "second")
    second.start()
    wait_until(lambda: len(second.get_participants()) == 2, timeout=20)
    assert expire_session(server.hosts, *session_of(first_client))
    assert second.await_leadership(30)
    wait_until(lambda: len(second.get_participants()) == 2, timeout=30)
    assert not first.has_leadership()  # it came back behind the new leader
    assert second.get_leader() == Participant("second", True)


def test_listeners_and_close_modes(server: Any, make_client: Any) -> None:
    path = unique("listeners")
    notify = LeaderLatch(make_client(server.hosts), path, "n", close_mode=CloseMode.NOTIFY_LEADER)
    heard = Recorder()
    notify.add_listener(heard)
    notify.start()
    wait_until(lambda: heard.heard == ["is_leader"], timeout=20)
    notify.close()
    wait_until(lambda: heard.heard == ["is_leader", "not_leader"], timeout=20)

    silent = LeaderLatch(make_client(server.hosts), path, "s")
    quiet = Recorder()
    silent.add_listener(quiet)
    silent.start()
    wait_until(lambda: quiet.heard == ["is_leader"], timeout=20)
    silent.close()
    assert not silent.has_leadership()
    with pytest.raises(RuntimeError):
        silent.close()
    assert quiet.heard == ["is_leader"]


def test_listeners_run_on_the_event_thread(server: Any, make_client: Any) -> None:
    latch = LeaderLatch(make_client(server.hosts), unique("thread"))
    threads: list[str] = []

    class Listener:
        def is_leader(self) -> None:
            threads.append(threading.current_thread().name)

        def not_leader(self) -> None:
            pass

    latch.add_listener(Listener())
    latch.start()
    wait_until(lambda: threads == ["curatorish-events"], timeout=20)
    latch.close()


def test_await_leadership_times_out(server: Any, make_client: Any) -> None:
    path = unique("await")
    leader = LeaderLatch(make_client(server.hosts), path)
    leader.start()
    assert leader.await_leadership(20)
    follower = LeaderLatch(make_client(server.hosts), path)
    follower.start()
    assert follower.await_leadership(0.2) is False
    leader.close()
    assert follower.await_leadership(20)


class ExclusiveLeaders:
    """
    Latches (async face, all on this process's reactor) whose listeners check, at
    the moment one gains leadership, that no other has it.
    """

    def __init__(self) -> None:
        self.latches: list[LeaderLatch] = []
        self.violations: list[str] = []
        self.elections = 0

    def add(self, latch: LeaderLatch) -> None:
        self.latches.append(latch)
        watcher = self

        class Check:
            def is_leader(self) -> None:
                watcher.elections += 1
                others = [o.id for o in watcher.latches if o is not latch and o.has_leadership()]
                if others:
                    watcher.violations.append(f"{latch.id} leads while {others} lead")

            def not_leader(self) -> None:
                pass

        latch.add_listener(Check())

    def leaders(self) -> list[LeaderLatch]:
        return [latch for latch in self.latches if latch.has_leadership()]

    def one_leader(self) -> LeaderLatch:
        (leader,) = wait_until(
            lambda: len(self.leaders()) == 1 and self.leaders(),
            timeout=60,
            message="exactly one leader",
        )
        return leader  # type: ignore[no-any-return]


def test_never_two_leaders_under_cuts_partitions_and_expiries(
    server: Any, make_client: Any
) -> None:
    path = unique("faults")
    exclusive = ExclusiveLeaders()
    proxies: dict[str, TcpProxy] = {}
    clients: dict[str, Any] = {}
    try:
        for name in ("p0", "p1", "p2"):
            proxy = TcpProxy(server.port)
            proxy.start()
            proxies[name] = proxy
            client = make_client(proxy.hosts, session_timeout_ms=4000, connection_timeout_ms=2000)
            clients[name] = client
            latch = LeaderLatch(client.async_client, path, name)
            exclusive.add(latch)
            client.call(latch.start)
        for round_number in range(ROUNDS):
            leader = exclusive.one_leader()
            proxy, client = proxies[leader.id], clients[leader.id]
            fault = ("cut", "expire", "partition", "stall")[round_number % 4]
            if fault == "cut":
                proxy.cut()
            elif fault == "expire":
                assert expire_session(server.hosts, *session_of(client))
                wait_until(lambda leader=leader: not leader.has_leadership(), timeout=30)
            else:
                proxy.block()
                if fault == "partition":
                    proxy.cut()  # the leader notices at once
                else:
                    proxy.stall()  # the leader notices at its read timeout
                try:
                    wait_until(
                        lambda leader=leader: any(
                            latch.has_leadership()
                            for latch in exclusive.latches
                            if latch is not leader
                        ),
                        timeout=60,
                        message="a new leader behind the partition",
                    )
                    assert not leader.has_leadership()
                finally:
                    proxy.cut()
                    proxy.unstall()
                    proxy.unblock()
            assert not exclusive.violations, exclusive.violations
        exclusive.one_leader()
        assert not exclusive.violations, exclusive.violations
        assert exclusive.elections >= 1 + ROUNDS // 4
    finally:
        for name, client in clients.items():
            for latch in exclusive.latches:
                if latch.id == name and latch.state.value == "STARTED":
                    try:
                        client.call(latch.close)
                    except Exception:
                        pass
        for proxy in proxies.values():
            proxy.stop()


# -- LeaderSelector ---------------------------------------------------------------------


class TurnTaker:
    """An async-face selector listener: leads for a moment, checking it leads alone."""

    def __init__(
        self, name: str, reactor: Any, log: list[tuple[str, str]], selectors: list[Any]
    ) -> None:
        self.name = name
        self.reactor = reactor
        self.log = log
        self.selectors = selectors

    async def take_leadership(self, client: Any) -> None:
        others = [s.id for s in self.selectors if s.id != self.name and s.has_leadership()]
        self.log.append(("start", self.name) if not others else ("OVERLAP", self.name))
        try:
            await task.deferLater(self.reactor, 0.05)
        except defer.CancelledError:
            # Interrupted (SUSPENDED on a loaded machine, say): leadership ended here.
            self.log.append(("end", self.name))
            raise
        self.log.append(("end", self.name))


def test_selector_takes_turns_with_auto_requeue(server: Any, make_client: Any) -> None:
    path = unique("selector")
    log: list[tuple[str, str]] = []
    selectors: list[LeaderSelector] = []
    clients = []
    for name in ("x", "y", "z"):
        client = make_client(server.hosts)
        clients.append(client)
        selector = LeaderSelector(
            client.async_client,
            path,
            TurnTaker(name, client.async_client.zookeeper.reactor, log, selectors),
            id=name,
        )
        selectors.append(selector)
        client.call(selector.auto_requeue)
        client.call(selector.start)
    wait_until(lambda: len([e for e in log if e[0] == "end"]) >= 9, timeout=60)
    # What happened before closing (closing cancels a leader mid-turn: no "end").
    turns = client.call(lambda: list(log))
    for client, selector in zip(clients, selectors, strict=True):
        client.call(selector.close)
    assert not [entry for entry in log if entry[0] == "OVERLAP"], log
    if turns[-1][0] == "start":
        turns.pop()
    assert {name for kind, name in turns if kind == "start"} == {"x", "y", "z"}
    # strictly one at a time: every start is followed by its own end
    for index in range(0, len(turns), 2):
        assert turns[index][0] == "start" and turns[index + 1] == ("end", turns[index][1]), turns


def test_selector_blocking_face_and_interruption(server: Any, make_client: Any) -> None:
    path = unique("selector-blocking")
    started = threading.Event()
    finished = threading.Event()
    threads: list[str] = []

    class Worker:
        def take_leadership(self, client: Any) -> None:
            threads.append(threading.current_thread().name)
            started.set()
            wait_until(lambda: not selector.has_leadership(), timeout=60)
            finished.set()

    client = make_client(server.hosts)
    selector = LeaderSelector(client, path, Worker(), id="blocking")
    selector.start()
    assert started.wait(20)
    assert selector.has_leadership()
    assert selector.get_leader() == Participant("blocking", True)
    assert threads[0] not in ("curatorish-events", "MainThread")
    selector.interrupt_leadership()
    assert finished.wait(20)
    wait_until(lambda: selector.get_participants() == [], timeout=20)  # mutex released
    selector.close()


def test_selector_relinquishes_when_suspended(server: Any, make_client: Any) -> None:
    path = unique("selector-suspend")
    proxy = TcpProxy(server.port)
    proxy.start()
    try:
        leader_client = make_client(proxy.hosts, session_timeout_ms=4000)
        cancelled = threading.Event()

        class Holder:
            async def take_leadership(self, client: Any) -> None:
                try:
                    await task.deferLater(client.zookeeper.reactor, 120)
                except BaseException:
                    cancelled.set()
                    raise

        selector = LeaderSelector(leader_client.async_client, path, Holder(), id="held")
        leader_client.call(selector.start)
        wait_until(selector.has_leadership, timeout=20)
        proxy.block()
        proxy.cut()
        wait_until(lambda: not selector.has_leadership(), timeout=20)
        assert cancelled.wait(20)
        other_client = make_client(server.hosts)
        took = threading.Event()

        class Next:
            def take_leadership(self, client: Any) -> None:
                took.set()

        successor = LeaderSelector(other_client, path, Next(), id="next")
        successor.start()
        assert took.wait(60)  # once the cut-off leader's session has expired
        successor.close()
    finally:
        proxy.unblock()
        proxy.stop()


def test_session_policy_leader_steps_down_before_its_session_can_expire(
    server: Any, make_client: Any
) -> None:
    """
    Under the session error policy a latch keeps leading through SUSPENDED (as
    Curator), but only for a quarter of the session timeout, so a partitioned leader
    has stepped down before the server can expire it and elect the next.
    """
    path = unique("session-policy")
    exclusive = ExclusiveLeaders()
    proxies = []
    try:
        for name in ("s0", "s1"):
            proxy = TcpProxy(server.port)
            proxy.start()
            proxies.append(proxy)
            client = make_client(
                proxy.hosts,
                session_timeout_ms=4000,
                connection_timeout_ms=2000,
                connection_state_error_policy=SessionConnectionStateErrorPolicy(),
            )
            latch = LeaderLatch(client.async_client, path, name)
            exclusive.add(latch)
            client.call(latch.start)
        for _ in range(max(1, ROUNDS // 3)):
            leader = exclusive.one_leader()
            proxy = proxies[[latch.id for latch in exclusive.latches].index(leader.id)]
            # Black-holed, not closed: the leader's connection notices only at its read
            # timeout (two thirds of the session timeout), SUSPENDED lasts until the
            # simulated expiry, and the server expires the session in between.
            proxy.block()
            proxy.stall()
            try:
                wait_until(
                    lambda leader=leader: any(
                        latch.has_leadership() for latch in exclusive.latches if latch is not leader
                    ),
                    timeout=60,
                    message="a new leader behind the partition",
                )
            finally:
                proxy.cut()
                proxy.unstall()
                proxy.unblock()
            assert not exclusive.violations, exclusive.violations
        exclusive.one_leader()
        assert not exclusive.violations, exclusive.violations
    finally:
        for proxy in proxies:
            proxy.stop()


def test_latch_started_while_the_server_is_away_joins_once_connected(
    server: Any, make_client: Any
) -> None:
    proxy = TcpProxy(server.port)
    proxy.start()
    proxy.block()
    try:
        client = make_client(
            proxy.hosts, start=False, retry_policy=RetryNTimes(0, 10), connection_timeout_ms=300
        )
        client.start()
        latch = LeaderLatch(client, unique("late"), "late")
        latch.start()
        with pytest.raises(ConnectionLossError):
            # given up by now, as the latch's first create (sent before it) has
            client.exists("/")
        proxy.unblock()
        assert latch.await_leadership(30)
        latch.close()
    finally:
        proxy.stop()
