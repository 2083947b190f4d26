"""
kazoo's recipes run against each server: realistic mixes of sequential/ephemeral
nodes, watches and multi.  Random parts of node names (kazoo's uuid4 hex) are
replaced by C{<uuid>} before recording.
"""

from __future__ import annotations

import re
import threading

from tests.support.differential import ScenarioContext, scenario

_UUID = re.compile(r"[0-9a-f]{32}")


def _names(children: list[str]) -> list[str]:
    return sorted(_UUID.sub("<uuid>", c) for c in children)


def _tree(ctx: ScenarioContext, client, path: str | None = None) -> list:
    out = []

    def walk(p: str) -> None:
        data, stat = client.get(p)
        out.append(
            (_UUID.sub("<uuid>", p), data, stat.version, stat.numChildren, stat.ephemeralOwner != 0)
        )
        for kid in sorted(client.get_children(p)):
            walk(f"{p}/{kid}")

    walk(path or ctx.root)
    return sorted(out)


@scenario()
def recipe_lock_contention(ctx: ScenarioContext) -> None:
    """Two kazoo Locks on one path: the second waits until the first releases; the
    lock nodes' names and the contenders list."""
    a, b = ctx.client(), ctx.client()
    a.create(ctx.root)
    lock_a = a.Lock(ctx.path("lock"), "alice")
    lock_b = b.Lock(ctx.path("lock"), "bob")
    ctx.record("a acquires", lock_a.acquire(timeout=10))
    got_b = threading.Event()

    def take_b() -> None:
        if lock_b.acquire(timeout=20):
            got_b.set()

    waiter = threading.Thread(target=take_b)
    waiter.start()
    ctx.wait(lambda: len(a.get_children(ctx.path("lock"))) == 2, what="two contenders")
    ctx.record("contenders", lock_a.contenders())
    ctx.record("children", _names(a.get_children(ctx.path("lock"))))
    ctx.record("b waiting", not got_b.is_set())
    lock_a.release()
    ctx.record("b got it", got_b.wait(10))
    waiter.join(10)
    ctx.record("children after", _names(a.get_children(ctx.path("lock"))))
    lock_b.release()


@scenario()
def recipe_counter(ctx: ScenarioContext) -> None:
    """kazoo Counter: increments and decrements from two clients (versioned sets)."""
    a, b = ctx.client(), ctx.client()
    a.create(ctx.root)
    ca, cb = a.Counter(ctx.path("c")), b.Counter(ctx.path("c"))
    for _ in range(5):
        ca += 1
        cb += 2
    cb -= 3
    ctx.record("value", a.Counter(ctx.path("c")).value)
    ctx.record("stat version", a.exists(ctx.path("c")).version)


@scenario()
def recipe_queue(ctx: ScenarioContext) -> None:
    """kazoo Queue and LockingQueue: put/get order with priorities."""
    c = ctx.client()
    c.create(ctx.root)
    q = c.Queue(ctx.path("q"))
    for item in (b"one", b"two", b"three"):
        q.put(item)
    q.put(b"urgent", priority=10)
    ctx.record("names", _names(c.get_children(ctx.path("q"))))
    ctx.record("gets", [q.get() for _ in range(5)])
    lq = c.LockingQueue(ctx.path("lq"))
    lq.put(b"x", priority=50)
    lq.put_all([b"y", b"z"], priority=10)
    ctx.record("lq len", len(lq))
    ctx.record("lq get", lq.get(timeout=5))
    ctx.record("lq consume", lq.consume())
    ctx.record("lq tree", _tree(ctx, c, ctx.path("lq")))


@scenario()
def recipe_election_and_party(ctx: ScenarioContext) -> None:
    """kazoo Election contenders and a Party's membership."""
    a, b = ctx.client(), ctx.client()
    a.create(ctx.root)
    party_a = a.Party(ctx.path("party"), "alice")
    party_b = b.Party(ctx.path("party"), "bob")
    party_a.join()
    party_b.join()
    ctx.record("members", sorted(party_a))
    party_b.leave()
    ctx.record("members after leave", sorted(party_a))
    started = threading.Event()
    release = threading.Event()

    def lead() -> None:
        started.set()
        release.wait(10)

    election = a.Election(ctx.path("election"), "alice")
    runner = threading.Thread(target=election.run, args=(lead,))
    runner.start()
    ctx.record("leading", started.wait(10))
    ctx.record("contenders", b.Election(ctx.path("election")).contenders())
    release.set()
    runner.join(10)


@scenario()
def recipe_barriers(ctx: ScenarioContext) -> None:
    """kazoo Barrier and DoubleBarrier node layouts."""
    a, b = ctx.client(), ctx.client()
    a.create(ctx.root)
    barrier = a.Barrier(ctx.path("b"))
    barrier.create()
    ctx.record("wait timeout", barrier.wait(0.2))
    b.Barrier(ctx.path("b")).remove()
    ctx.record("wait after remove", barrier.wait(5))
    db_a = a.DoubleBarrier(ctx.path("db"), 2, identifier="a")
    db_b = b.DoubleBarrier(ctx.path("db"), 2, identifier="b")
    t = threading.Thread(target=db_b.enter)
    t.start()
    db_a.enter()
    t.join(10)
    ctx.record("entered tree", _tree(ctx, a, ctx.path("db")))
    t = threading.Thread(target=db_b.leave)
    t.start()
    db_a.leave()
    t.join(10)
    ctx.record("left children", _names(a.get_children(ctx.path("db"))))


@scenario()
def recipe_semaphore_and_rwlock(ctx: ScenarioContext) -> None:
    """kazoo Semaphore (2 leases) and ReadLock/WriteLock node layouts."""
    a, b, c = ctx.client(), ctx.client(), ctx.client()
    a.create(ctx.root)
    s1 = a.Semaphore(ctx.path("sem"), max_leases=2, identifier="a")
    s2 = b.Semaphore(ctx.path("sem"), max_leases=2, identifier="b")
    s3 = c.Semaphore(ctx.path("sem"), max_leases=2, identifier="c")
    ctx.record("s1", s1.acquire(timeout=5))
    ctx.record("s2", s2.acquire(timeout=5))
    ctx.call("s3 blocked", s3.acquire, timeout=0.5)
    ctx.record("lease holders", sorted(s1.lease_holders()))
    s1.release()
    ctx.record("s3 after release", s3.acquire(timeout=5))
    s2.release()
    s3.release()
    r1 = a.ReadLock(ctx.path("rw"), "r1")
    r2 = b.ReadLock(ctx.path("rw"), "r2")
    ctx.record("r1", r1.acquire(timeout=5))
    ctx.record("r2", r2.acquire(timeout=5))
    w = c.WriteLock(ctx.path("rw"), "w")
    ctx.call("w blocked", w.acquire, timeout=0.5)
    ctx.record("rw children", _names(a.get_children(ctx.path("rw"))))
    r1.release()
    r2.release()
    ctx.record("w after", w.acquire(timeout=5))
    w.release()


@scenario()
def recipe_data_and_children_watch(ctx: ScenarioContext) -> None:
    """kazoo DataWatch and ChildrenWatch callbacks over a series of changes."""
    c = ctx.client()
    c.create(ctx.root)
    data_calls: list = []
    child_calls: list = []
    lock = threading.Lock()

    def on_data(data, stat, event=None):
        with lock:
            data_calls.append(
                (
                    data,
                    None if stat is None else stat.version,
                    None if event is None else event.type,
                )
            )

    def on_children(children):
        with lock:
            child_calls.append(sorted(children))

    c.DataWatch(ctx.path("n"), on_data)
    c.ChildrenWatch(ctx.root, on_children)
    c.create(ctx.path("n"), b"0")
    ctx.wait(lambda: len(data_calls) >= 2 and len(child_calls) >= 2, what="first callbacks")
    c.set(ctx.path("n"), b"1")
    ctx.wait(lambda: len(data_calls) >= 3, what="set callback")
    c.delete(ctx.path("n"))
    ctx.wait(lambda: len(data_calls) >= 4 and len(child_calls) >= 3, what="delete callbacks")
    ctx.record("data calls", data_calls)
    ctx.record("child calls", child_calls)
