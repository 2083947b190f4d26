"""
Durability and recovery: the server is killed (-9) or stopped mid-scenario and
started again on the same data directory.  These run on private servers (see
C{Scenario.restarts}); the shared servers never go down.

After a restart ZooKeeper restores the tree, the sessions (with their ephemerals
and timeouts) and continues the zxid sequence; a client may resume its session.
"""

from __future__ import annotations

from tests.integration.scenarios._ops import acl, op_container, op_create
from tests.support.differential import EventLog, ScenarioContext, scenario

RESUME_TIMEOUT_MS = 30000


def _build(ctx: ScenarioContext, raw) -> None:
    raw.create(ctx.root)
    raw.create(ctx.path("a"), b"alpha")
    raw.set_data(ctx.path("a"), b"alpha2")
    raw.create(ctx.path("a", "k"))
    raw.create(ctx.path("s-"), b"", None, 2)
    raw.create(ctx.path("s-"), b"", None, 2)
    raw.create(ctx.path("acl"), b"", [acl(1), acl(31, "digest", "u:x")])
    raw.set_acl(ctx.path("acl"), [acl(3)])
    raw.multi([op_create(ctx.path("m1")), op_create(ctx.path("m2"), b"mm")])
    raw.create(ctx.path("gone"))
    raw.delete(ctx.path("gone"))


def _dump(ctx: ScenarioContext, raw, label: str) -> None:
    """Every node below the root: data, stat, ACL (children sorted)."""
    nodes = []

    def walk(path: str) -> None:
        nodes.append((path, raw.get_data(path), raw.get_acl(path)))
        kids = raw.get_children(path)
        if kids.ok:
            for kid in sorted(kids.body.children):
                walk(f"{path}/{kid}")

    walk(ctx.root)
    ctx.record(label, nodes)


def _register(hard: bool) -> None:
    kind = "kill" if hard else "stop"

    def run(ctx: ScenarioContext) -> None:
        raw = ctx.raw()
        _build(ctx, raw)
        _dump(ctx, raw, "before")
        ctx.restart(hard=hard)
        reader = ctx.raw()
        _dump(ctx, reader, "after")
        ctx.call("sequence continues", reader.create, ctx.path("s-"), b"", None, 2)
        ctx.call("new write", reader.create2, ctx.path("new"), b"")

    run.__doc__ = f"The tree (data, stats, ACLs, sequence counters) survives a {kind} and restart."
    scenario(f"restart_tree_survives_{kind}", restarts=True)(run)


_register(True)
_register(False)


@scenario(restarts=True)
def restart_session_resumes(ctx: ScenarioContext) -> None:
    """A session and its ephemeral survive a kill and restart; the client resumes it
    with its id and password; the ephemeral keeps its owner."""
    raw = ctx.raw(timeout_ms=RESUME_TIMEOUT_MS)
    raw.create(ctx.root)
    raw.create(ctx.path("e"), b"", None, 1)
    session = raw.session_id
    ctx.restart(hard=True)
    result = raw.connect()
    ctx.record("resumed", {"timeout": result.timeout_ms, "same": result.session_id == session})
    ctx.call("ephemeral", raw.exists, ctx.path("e"))
    ctx.call("ephemerals", raw.get_ephemerals, ctx.root)


@scenario(slow=True, restarts=True)
def restart_session_expires_if_not_resumed(ctx: ScenarioContext) -> None:
    """A session restored at restart but never resumed expires after its timeout;
    its ephemeral is deleted."""
    owner = ctx.raw(timeout_ms=4000)
    owner.create(ctx.root)
    owner.create(ctx.path("e"), b"", None, 1)
    ctx.restart(hard=True)
    watcher = ctx.raw()
    ctx.call("still there at first", watcher.exists, ctx.path("e"), True)
    ctx.call("event", watcher.wait_events, 1, 20.0)
    ctx.call("gone", watcher.exists, ctx.path("e"))


@scenario(restarts=True)
def restart_closed_session_stays_closed(ctx: ScenarioContext) -> None:
    """A session closed before the restart cannot be resumed after it."""
    raw = ctx.raw()
    session, password = raw.session_id, raw.passwd
    raw.close()
    ctx.restart(hard=True)
    from tests.support.rawclient import RawClient

    again = RawClient(ctx.server.port, session_id=session, passwd=password)
    ctx._raw_clients.append(again)
    result = again.connect()
    ctx.record("resume closed", result.timeout_ms)


@scenario(restarts=True)
def restart_zxid_continues(ctx: ScenarioContext) -> None:
    """Writes after a restart get zxids above every zxid before it."""
    raw = ctx.raw()
    raw.create(ctx.root)
    before = raw.create2(ctx.path("a"), b"")
    ctx.restart(hard=True)
    raw.connect()
    after = raw.create2(ctx.path("b"), b"")
    ctx.record("after > before", after.zxid > before.zxid)
    ctx.record("czxid after > before", after.body.stat.czxid > before.body.stat.czxid)
    ctx.record("replies", [before, after])


@scenario(slow=True, restarts=True)
def restart_containers_and_ttl(ctx: ScenarioContext) -> None:
    """Containers and TTL nodes keep their kind across a restart: emptying the
    container afterwards deletes it; the TTL node's stat still encodes its TTL."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.multi([op_container(ctx.path("c")), op_create(ctx.path("c", "k"))])
    raw.create_ttl(ctx.path("t"), 600000, b"")
    ctx.restart(hard=True)
    raw.connect()
    ctx.call("container", raw.exists, ctx.path("c"))
    ctx.call("ttl", raw.exists, ctx.path("t"))
    raw.delete(ctx.path("c", "k"))
    ctx.wait(lambda: raw.exists(ctx.path("c")).err != 0, timeout=10.0, what="container deleted")
    ctx.call("container gone", raw.exists, ctx.path("c"))


@scenario(restarts=True)
def restart_kazoo_watch_survives(ctx: ScenarioContext) -> None:
    """A kazoo client rides through a restart (same session). Kazoo 2.x sends no
    setWatches: on the disconnect it drops its watchers and calls each once with a
    NONE event, which is what the log records (setWatches itself is covered with
    the raw client in watches.py and sessions.py).

    The host is listed three times so that kazoo waits at most 30 / 3 s for a
    connect reply (kazoo divides the session timeout by the host count): ZooKeeper
    3.8 accepts connections before it is running and, for one that arrives then,
    fails its close on a NullPointerException (zkDb is null) and never answers it;
    with a single host kazoo waited the whole 30 s session timeout on that socket
    and the restored session had expired by its next attempt (2 of 20 runs)."""
    a = ctx.client(timeout=30.0, hosts=",".join([ctx.server.hosts] * 3))
    a.create(ctx.root)
    a.create(ctx.path("n"), b"0")
    log = EventLog("a")
    a.get(ctx.path("n"), watch=log)
    session = a.client_id[0]
    states: list[str] = []
    a.add_listener(lambda state: states.append(str(state)))
    ctx.restart(hard=True)
    ctx.wait(lambda: states[-1:] == ["CONNECTED"], timeout=30.0, what="kazoo reconnected")
    b = ctx.client()
    b.set(ctx.path("n"), b"1")
    ctx.wait_events(log, 1, timeout=15.0)
    ctx.events("events", log)
    ctx.record("same session", a.client_id[0] == session)
    ctx.call("data", a.get, ctx.path("n"))


@scenario(restarts=True)
def restart_twice_in_a_row(ctx: ScenarioContext) -> None:
    """Two restarts in a row (kill, then stop) with writes between them."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("one"), b"1")
    ctx.restart(hard=True)
    raw.connect()
    raw.create(ctx.path("two"), b"2")
    raw.set_data(ctx.path("one"), b"11")
    ctx.restart(hard=False)
    reader = ctx.raw()
    _dump(ctx, reader, "after two restarts")


@scenario(restarts=True)
def restart_after_many_txns(ctx: ScenarioContext) -> None:
    """Several hundred txns (past a few snapshots at snapCount 50), interleaved
    creates, sets and deletes, then kill -9: the tree is the same after recovery."""
    raw = ctx.raw()
    raw.create(ctx.root)
    for batch in range(6):
        raw.multi([op_create(ctx.path(f"b{batch}n{i}"), str(i).encode()) for i in range(5)])
        for i in range(40):
            raw.set_data(ctx.path(f"b{batch}n{i % 5}"), f"{batch}-{i}".encode())
        raw.delete(ctx.path(f"b{batch}n0"))
        raw.create(ctx.path(f"s{batch}-"), b"", None, 2)
    _dump(ctx, raw, "before")
    ctx.restart(hard=True)
    reader = ctx.raw()
    _dump(ctx, reader, "after")
    ctx.call("next seq", reader.create, ctx.path("s-"), b"", None, 2)


@scenario(restarts=True)
def restart_set_watches_resume(ctx: ScenarioContext) -> None:
    """A raw client's watches, re-sent with setWatches on the session it resumes
    after a kill -9, fire for the change made while it was away (relative to its
    last zxid) and, once each, for the changes made afterwards."""
    raw = ctx.raw()
    raw.create(ctx.root)
    for name in ("missed", "later", "parent"):
        raw.create(ctx.path(name), b"0")
    raw.get_data(ctx.path("missed"), True)
    raw.get_data(ctx.path("later"), True)
    raw.exists(ctx.path("absent"), True)
    raw.get_children(ctx.path("parent"), True)
    last_seen = raw.last_zxid
    ctx.restart(hard=True)
    writer = ctx.raw()
    writer.set_data(ctx.path("missed"), b"1")
    ctx.call("resume", lambda: raw.connect().session_id == raw.session_id)
    ctx.call(
        "setWatches",
        raw.set_watches,
        last_seen,
        [ctx.path("missed"), ctx.path("later")],
        [ctx.path("absent")],
        [ctx.path("parent")],
    )
    raw.settle()
    ctx.record("events after setWatches", raw.events)
    writer.set_data(ctx.path("later"), b"1")
    writer.create(ctx.path("absent"))
    writer.create(ctx.path("parent", "kid"))
    writer.set_data(ctx.path("missed"), b"2")
    raw.settle()
    ctx.record("events after later writes", raw.events)
