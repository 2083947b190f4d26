"""
Watches: one-shot data/exist/child watches and the events each operation fires,
persistent and persistent-recursive watches (addWatch), checkWatches/removeWatches,
setWatches after a reconnect, and the order of events relative to replies.

The raw client sees frames in arrival order, so event-before-reply ordering is
checked on its trace; kazoo scenarios compare the events delivered to watchers.
"""

from __future__ import annotations

from tests.integration.scenarios._ops import op_create, op_delete, op_set
from tests.support.differential import EventLog, ScenarioContext, scenario
from tests.support.rawclient import describe_trace

DATA, CHILDREN, ANY = 2, 1, 3
PERSISTENT, RECURSIVE = 0, 1


def _pair(ctx: ScenarioContext):
    """A writer and a watcher raw client, with the root created."""
    writer = ctx.raw()
    writer.create(ctx.root)
    watcher = ctx.raw()
    return writer, watcher


def _settled_events(ctx: ScenarioContext, watcher, label: str = "events") -> None:
    """Record the watcher's events once every event due has arrived (a sync round
    trip from the watcher is answered after them)."""
    watcher.settle()
    ctx.record(label, watcher.events)


# -- one-shot watches, per operation ---------------------------------------------------

_OPERATIONS = {
    "set": lambda w, p: w.set_data(p, b"new"),
    "delete": lambda w, p: w.delete(p),
    "create_child": lambda w, p: w.create(p + "/kid"),
    "delete_child": lambda w, p: w.delete(p + "/old"),
    "set_child": lambda w, p: w.set_data(p + "/old", b"x"),
    "setacl": lambda w, p: w.set_acl(
        p, [__import__("tests.integration.scenarios._ops", fromlist=["acl"]).acl(31)]
    ),
    "create_sibling": lambda w, p: w.create(p + "_sibling"),
}

_WATCHES = {
    "getData": lambda c, p: c.get_data(p, watch=True),
    "exists": lambda c, p: c.exists(p, watch=True),
    "getChildren": lambda c, p: c.get_children(p, watch=True),
    "getChildren2": lambda c, p: c.get_children2(p, watch=True),
}


def _register_matrix(watch_name: str, op_name: str) -> None:
    def run(ctx: ScenarioContext) -> None:
        writer, watcher = _pair(ctx)
        node = ctx.path("n")
        writer.create(node, b"d")
        if op_name != "delete":
            writer.create(node + "/old")
        ctx.call("operation", _OPERATIONS[op_name], writer, node)
        _settled_events(ctx, watcher)
        # one-shot: a second change fires nothing more
        writer.create(node + "/again") if writer.exists(node).ok else writer.create(node)
        _settled_events(ctx, watcher, "events after second change")

    run.__doc__ = f"A {watch_name} watch, then {op_name.replace('_', ' ')}: the events fired."
    scenario(f"watch_{watch_name}_then_{op_name}")(run)


for _w in _WATCHES:
    for _op in _OPERATIONS:
        _register_matrix(_w, _op)


@scenario()
def watch_exists_on_missing_then_create(ctx: ScenarioContext) -> None:
    """An exists watch on a missing node fires NodeCreated once."""
    writer, watcher = _pair(ctx)
    ctx.call("exists", watcher.exists, ctx.path("n"), True)
    writer.create(ctx.path("n"))
    writer.delete(ctx.path("n"))
    _settled_events(ctx, watcher)


@scenario()
def watch_getdata_on_missing_sets_nothing(ctx: ScenarioContext) -> None:
    """getData/getChildren with a watch on a missing node fail with NoNode and leave
    no watch behind: the later create fires nothing."""
    writer, watcher = _pair(ctx)
    ctx.call("getData", watcher.get_data, ctx.path("n"), True)
    ctx.call("getChildren", watcher.get_children, ctx.path("n"), True)
    writer.create(ctx.path("n"))
    writer.create(ctx.path("n", "k"))
    _settled_events(ctx, watcher)
    ctx.call("checkWatches data", watcher.check_watches, ctx.path("n"), DATA)


@scenario()
def watch_same_path_data_and_exists_one_event(ctx: ScenarioContext) -> None:
    """A data watch and an exists watch from one session on one node: one event."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("n"))
    watcher.get_data(ctx.path("n"), True)
    watcher.exists(ctx.path("n"), True)
    writer.set_data(ctx.path("n"), b"x")
    _settled_events(ctx, watcher)


@scenario()
def watch_data_and_child_then_delete_one_event(ctx: ScenarioContext) -> None:
    """Data and child watches on a node, then its deletion: one NodeDeleted."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("n"))
    watcher.get_data(ctx.path("n"), True)
    watcher.get_children(ctx.path("n"), True)
    writer.delete(ctx.path("n"))
    _settled_events(ctx, watcher)


@scenario()
def watch_two_sessions_both_notified(ctx: ScenarioContext) -> None:
    """Two sessions watching one node both get the event."""
    writer, first = _pair(ctx)
    second = ctx.raw()
    writer.create(ctx.path("n"))
    first.get_data(ctx.path("n"), True)
    second.exists(ctx.path("n"), True)
    writer.set_data(ctx.path("n"), b"x")
    _settled_events(ctx, first, "first")
    _settled_events(ctx, second, "second")


@scenario()
def watch_event_before_reply_own_write(ctx: ScenarioContext) -> None:
    """A session's own write to a node it watches: the event frame arrives before the
    write's reply."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("n"))
    raw.get_data(ctx.path("n"), True)
    raw.get_children(ctx.root, True)
    raw.trace.clear()
    raw.set_data(ctx.path("n"), b"x")
    raw.create(ctx.path("m"))
    ctx.record("trace", describe_trace(raw.trace))


@scenario()
def watch_event_before_later_reply_other_session(ctx: ScenarioContext) -> None:
    """A watcher that reads after another session's write sees the event before the
    reply of its next request."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("n"))
    watcher.get_data(ctx.path("n"), True)
    watcher.trace.clear()
    writer.set_data(ctx.path("n"), b"x")
    watcher.sync(ctx.path("n"))
    watcher.get_data(ctx.path("n"))
    ctx.record("trace", describe_trace(watcher.trace))


@scenario()
def watch_pipelined_trace(ctx: ScenarioContext) -> None:
    """Pipelined requests with watches: replies in request order, each event placed
    before the reply of the write that caused it."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.trace.clear()
    xids = [
        raw.submit(*op_create(ctx.path("a"))),
        raw.submit(
            3, __import__("zkreg.proto.records", fromlist=["R"]).ExistsRequest(ctx.path("a"), True)
        ),
        raw.submit(*op_set(ctx.path("a"), b"1")),
        raw.submit(*op_set(ctx.path("a"), b"2")),
        raw.submit(*op_delete(ctx.path("a"))),
    ]
    raw.wait_reply(xids[-1])
    ctx.record("trace", describe_trace(raw.trace))


@scenario()
def watch_reads_pipelined_between_writes(ctx: ScenarioContext) -> None:
    """Reads pipelined between writes of the same session (zkreg submits the writes
    behind them at once): each read sees exactly the writes before it, its watch
    fires for the next write, and another session's pipelined reads are unaffected."""
    from zkreg.proto import records as R

    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("n"))
    other = ctx.raw()
    raw.trace.clear()
    other.trace.clear()
    xids = []
    for i in range(8):
        xids.append(raw.submit(*op_set(ctx.path("n"), str(i).encode())))
        xids.append(raw.submit(4, R.GetDataRequest(ctx.path("n"), True)))
        xids.append(raw.submit(3, R.ExistsRequest(ctx.path(f"n/c{i}"), True)))
        xids.append(raw.submit(*op_create(ctx.path(f"n/c{i}"), str(i).encode())))
        xids.append(raw.submit(8, R.GetChildrenRequest(ctx.path("n"), i % 2 == 0)))
        xids.append(raw.submit(4, R.GetDataRequest(ctx.path(f"n/c{i}"), False)))
        if i % 3 == 2:
            xids.append(raw.submit(*op_delete(ctx.path(f"n/c{i}"))))
            xids.append(raw.submit(3, R.ExistsRequest(ctx.path(f"n/c{i}"), False)))
    raw.wait_reply(xids[-1], 30.0)
    ctx.record("trace", describe_trace(raw.trace))
    children = other.get_children(ctx.path("n")).body.children
    ctx.record("another session's children", sorted(children))


@scenario()
def watch_child_events_for_sequential_and_ephemeral(ctx: ScenarioContext) -> None:
    """Child watches fire for sequential/ephemeral creates and for an ephemeral's
    removal when its session closes."""
    writer, watcher = _pair(ctx)
    watcher.get_children(ctx.root, True)
    writer.create(ctx.path("s-"), b"", None, 2)
    _settled_events(ctx, watcher, "after seq")
    owner = ctx.raw()
    owner.create(ctx.path("e"), b"", None, 1)
    watcher.get_children(ctx.root, True)
    watcher.exists(ctx.path("e"), True)
    owner.close()
    ctx.call("wait", watcher.wait_events, 3)
    _settled_events(ctx, watcher, "after close")


@scenario()
def watch_kazoo_data_watch_sequence(ctx: ScenarioContext) -> None:
    """kazoo watchers: get() watch fires once for set; exists() watch for create;
    get_children() watch for a child."""
    c = ctx.client()
    c.create(ctx.root)
    c.create(ctx.path("n"), b"0")
    data_log, exist_log, child_log = EventLog("data"), EventLog("exist"), EventLog("child")
    c.get(ctx.path("n"), watch=data_log)
    c.exists(ctx.path("m"), watch=exist_log)
    c.get_children(ctx.root, watch=child_log)
    c.set(ctx.path("n"), b"1")
    c.set(ctx.path("n"), b"2")
    c.create(ctx.path("m"))
    ctx.settle(c)
    ctx.events("data", data_log)
    ctx.events("exist", exist_log)
    ctx.events("child", child_log)


@scenario()
def watch_kazoo_other_client_delete(ctx: ScenarioContext) -> None:
    """A kazoo watcher sees another client's delete of a watched node and the child
    change of its parent."""
    a = ctx.client()
    b = ctx.client()
    a.create(ctx.path("n", "k"), makepath=True)
    node_log, child_log = EventLog("node"), EventLog("child")
    a.get(ctx.path("n", "k"), watch=node_log)
    a.get_children(ctx.path("n"), watch=child_log)
    b.delete(ctx.path("n", "k"))
    ctx.wait_events(node_log, 1)
    ctx.wait_events(child_log, 1)
    ctx.events("node", node_log)
    ctx.events("child", child_log)


# -- persistent and recursive watches ----------------------------------------------------


@scenario()
def watch_persistent_node(ctx: ScenarioContext) -> None:
    """A persistent watch fires for every change to the node and its direct children
    list, repeatedly, not for grandchildren or children's data."""
    writer, watcher = _pair(ctx)
    ctx.call("addWatch", watcher.add_watch, ctx.path("n"), PERSISTENT)
    writer.create(ctx.path("n"), b"0")
    writer.set_data(ctx.path("n"), b"1")
    writer.set_data(ctx.path("n"), b"2")
    writer.create(ctx.path("n", "k"))
    writer.set_data(ctx.path("n", "k"), b"x")
    writer.create(ctx.path("n", "k", "g"))
    writer.delete(ctx.path("n", "k", "g"))
    writer.delete(ctx.path("n", "k"))
    writer.delete(ctx.path("n"))
    writer.create(ctx.path("n"))
    _settled_events(ctx, watcher)


@scenario()
def watch_persistent_recursive(ctx: ScenarioContext) -> None:
    """A persistent recursive watch fires created/changed/deleted for the node and
    every descendant, and no NodeChildrenChanged."""
    writer, watcher = _pair(ctx)
    ctx.call("addWatch", watcher.add_watch, ctx.path("n"), RECURSIVE)
    writer.create(ctx.path("n"))
    writer.create(ctx.path("n", "a"))
    writer.create(ctx.path("n", "a", "b"), b"")
    writer.set_data(ctx.path("n", "a", "b"), b"1")
    writer.create(ctx.path("n_sibling"))
    writer.delete(ctx.path("n", "a", "b"))
    writer.multi([op_create(ctx.path("n", "m")), op_set(ctx.path("n", "a"), b"q")])
    _settled_events(ctx, watcher)


@scenario()
def watch_persistent_plus_one_shot(ctx: ScenarioContext) -> None:
    """A persistent watch and a one-shot data watch on one node from one session:
    the events delivered (ZooKeeper delivers one per trigger to a session)."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("n"))
    watcher.add_watch(ctx.path("n"), PERSISTENT)
    watcher.get_data(ctx.path("n"), True)
    writer.set_data(ctx.path("n"), b"1")
    writer.set_data(ctx.path("n"), b"2")
    _settled_events(ctx, watcher)


@scenario()
def watch_recursive_and_persistent_overlap(ctx: ScenarioContext) -> None:
    """Recursive on the root and persistent on a child, from one session."""
    writer, watcher = _pair(ctx)
    watcher.add_watch(ctx.root, RECURSIVE)
    watcher.add_watch(ctx.path("n"), PERSISTENT)
    writer.create(ctx.path("n"))
    writer.create(ctx.path("n", "k"))
    writer.delete(ctx.path("n", "k"))
    _settled_events(ctx, watcher)


@scenario()
def watch_add_watch_bad_mode(ctx: ScenarioContext) -> None:
    """addWatch with an unknown mode."""
    raw = ctx.raw()
    raw.create(ctx.root)
    ctx.call("mode 2", raw.add_watch, ctx.root, 2)
    ctx.call("mode -1", raw.add_watch, ctx.root, -1)
    ctx.call("closed", raw.server_closed, 0.5)


@scenario()
def watch_add_watch_on_missing_and_acl(ctx: ScenarioContext) -> None:
    """addWatch on a missing node succeeds; on an unreadable node (ACL) it is
    refused or accepted as ZooKeeper does."""
    from tests.integration.scenarios._ops import acl

    writer, watcher = _pair(ctx)
    ctx.call("missing", watcher.add_watch, ctx.path("nope"), PERSISTENT)
    writer.create(ctx.path("secret"), b"", [acl(2)])
    ctx.call("unreadable", watcher.add_watch, ctx.path("secret"), PERSISTENT)
    writer.set_data(ctx.path("secret"), b"x")
    writer.create(ctx.path("nope"))
    _settled_events(ctx, watcher)


# -- checkWatches / removeWatches ---------------------------------------------------------


@scenario()
def watch_remove_and_check(ctx: ScenarioContext) -> None:
    """checkWatches/removeWatches per type: NoWatcher when absent; removal stops the
    event; the server sends no event for a removal."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("n"))
    ctx.call("check data none", watcher.check_watches, ctx.path("n"), DATA)
    ctx.call("check child none", watcher.check_watches, ctx.path("n"), CHILDREN)
    ctx.call("check any none", watcher.check_watches, ctx.path("n"), ANY)
    watcher.get_data(ctx.path("n"), True)
    ctx.call("check data", watcher.check_watches, ctx.path("n"), DATA)
    ctx.call("check child", watcher.check_watches, ctx.path("n"), CHILDREN)
    ctx.call("check any", watcher.check_watches, ctx.path("n"), ANY)
    ctx.call("remove child", watcher.remove_watches, ctx.path("n"), CHILDREN)
    ctx.call("remove data", watcher.remove_watches, ctx.path("n"), DATA)
    ctx.call("remove data again", watcher.remove_watches, ctx.path("n"), DATA)
    writer.set_data(ctx.path("n"), b"x")
    _settled_events(ctx, watcher)
    watcher.get_children(ctx.path("n"), True)
    watcher.exists(ctx.path("n"), True)
    ctx.call("remove any", watcher.remove_watches, ctx.path("n"), ANY)
    ctx.call("check any after", watcher.check_watches, ctx.path("n"), ANY)
    writer.create(ctx.path("n", "k"))
    _settled_events(ctx, watcher, "events after remove any")


@scenario()
def watch_remove_exists_watch_on_missing(ctx: ScenarioContext) -> None:
    """An exists watch on a missing node is a data watch for removeWatches."""
    writer, watcher = _pair(ctx)
    watcher.exists(ctx.path("n"), True)
    ctx.call("check data", watcher.check_watches, ctx.path("n"), DATA)
    ctx.call("remove data", watcher.remove_watches, ctx.path("n"), DATA)
    writer.create(ctx.path("n"))
    _settled_events(ctx, watcher)


@scenario()
def watch_remove_persistent(ctx: ScenarioContext) -> None:
    """Persistent watches: checkWatches/removeWatches with type Any, Data, Children,
    and the wire values 4/5 (persistent types of 3.9)."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("n"))
    watcher.add_watch(ctx.path("n"), PERSISTENT)
    watcher.add_watch(ctx.path("r"), RECURSIVE)
    for label, kind in (
        ("data", DATA),
        ("children", CHILDREN),
        ("any", ANY),
        ("4", 4),
        ("5", 5),
        ("9", 9),
    ):
        ctx.call(f"check n {label}", watcher.check_watches, ctx.path("n"), kind)
        ctx.call(f"check r {label}", watcher.check_watches, ctx.path("r"), kind)
    ctx.call("remove n any", watcher.remove_watches, ctx.path("n"), ANY)
    ctx.call("remove r any", watcher.remove_watches, ctx.path("r"), ANY)
    writer.set_data(ctx.path("n"), b"x")
    writer.create(ctx.path("r"))
    _settled_events(ctx, watcher)


@scenario()
def watch_remove_other_sessions_untouched(ctx: ScenarioContext) -> None:
    """removeWatches removes only the calling session's watches."""
    writer, first = _pair(ctx)
    second = ctx.raw()
    writer.create(ctx.path("n"))
    first.get_data(ctx.path("n"), True)
    second.get_data(ctx.path("n"), True)
    ctx.call("remove", first.remove_watches, ctx.path("n"), DATA)
    ctx.call("second check", second.check_watches, ctx.path("n"), DATA)
    writer.set_data(ctx.path("n"), b"x")
    _settled_events(ctx, first, "first")
    _settled_events(ctx, second, "second")


# -- setWatches on reconnect ---------------------------------------------------------------


@scenario()
def watch_set_watches_missed_events(ctx: ScenarioContext) -> None:
    """A client watches, loses its connection, another client changes things, the
    first resumes its session and re-sends its watches with its last zxid: exactly
    the missed events fire (data changed, deleted, created, children changed)."""
    writer, watcher = _pair(ctx)
    for name in ("changed", "deleted", "same", "parent"):
        writer.create(ctx.path(name), b"0")
    watcher.get_data(ctx.path("changed"), True)
    watcher.get_data(ctx.path("deleted"), True)
    watcher.get_data(ctx.path("same"), True)
    watcher.exists(ctx.path("created"), True)
    watcher.exists(ctx.path("absent"), True)
    watcher.get_children(ctx.path("parent"), True)
    last_seen = watcher.last_zxid
    watcher.drop()
    writer.set_data(ctx.path("changed"), b"1")
    writer.delete(ctx.path("deleted"))
    writer.create(ctx.path("created"))
    writer.create(ctx.path("parent", "kid"))
    ctx.call("resume", lambda: watcher.connect().session_id == watcher.session_id)
    ctx.call(
        "setWatches",
        watcher.set_watches,
        last_seen,
        [ctx.path("changed"), ctx.path("deleted"), ctx.path("same")],
        [ctx.path("created"), ctx.path("absent")],
        [ctx.path("parent")],
    )
    _settled_events(ctx, watcher)
    writer.set_data(ctx.path("same"), b"later")
    writer.create(ctx.path("absent"))
    _settled_events(ctx, watcher, "events after later writes")


@scenario()
def watch_set_watches_nothing_missed(ctx: ScenarioContext) -> None:
    """setWatches with the current zxid fires nothing now, and the watches are live."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("n"))
    watcher.sync("/")
    ctx.call(
        "setWatches",
        watcher.set_watches,
        writer.last_zxid,
        [ctx.path("n")],
        [ctx.path("m")],
        [ctx.path("n")],
    )
    _settled_events(ctx, watcher, "immediately")
    writer.set_data(ctx.path("n"), b"x")
    writer.create(ctx.path("m"))
    writer.create(ctx.path("n", "k"))
    _settled_events(ctx, watcher, "after writes")


@scenario()
def watch_set_watches2_persistent(ctx: ScenarioContext) -> None:
    """setWatches2 re-registers persistent and recursive watches (no missed events
    are replayed for them) plus one-shot ones."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("p"))
    writer.create(ctx.path("d"), b"0")
    relative = writer.sync("/").zxid
    writer.set_data(ctx.path("d"), b"1")
    ctx.call(
        "setWatches2",
        watcher.set_watches,
        relative,
        [ctx.path("d")],
        [],
        [],
        [ctx.path("p")],
        [ctx.path("r")],
    )
    _settled_events(ctx, watcher, "immediately")
    writer.set_data(ctx.path("p"), b"x")
    writer.create(ctx.path("r"))
    writer.create(ctx.path("r", "deep"))
    _settled_events(ctx, watcher, "after writes")


@scenario()
def watch_set_watches_zero_zxid(ctx: ScenarioContext) -> None:
    """setWatches with relative zxid 0: every watched node that exists fires as
    changed (its mzxid is newer), a missing one under exist fires nothing."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("a"))
    ctx.call(
        "setWatches",
        watcher.set_watches,
        0,
        [ctx.path("a"), ctx.path("gone")],
        [ctx.path("b")],
        [ctx.path("a")],
    )
    _settled_events(ctx, watcher)


@scenario()
def watch_kazoo_reconnect_via_proxy(ctx: ScenarioContext) -> None:
    """kazoo through a cuttable proxy: its watches survive a connection loss; an
    event missed while disconnected is delivered after kazoo reconnects (kazoo sends
    setWatches with its last zxid)."""
    from tests.support.proxy import TcpProxy

    proxy = TcpProxy(ctx.server.port)
    proxy.start()
    try:
        a = ctx.client()
        a.create(ctx.root)
        a.create(ctx.path("n"), b"0")
        from kazoo.client import KazooClient

        b = KazooClient(hosts=proxy.hosts, timeout=10.0)
        b.start(timeout=15.0)
        try:
            ctx.session_ids.append(b.client_id[0])
            log = EventLog("b")
            b.get(ctx.path("n"), watch=log)
            states: list[str] = []
            b.add_listener(lambda state: states.append(str(state)))
            proxy.block()
            proxy.cut()
            ctx.wait(lambda: "SUSPENDED" in states, what="kazoo SUSPENDED")
            a.set(ctx.path("n"), b"1")
            proxy.unblock()
            ctx.wait(lambda: states[-1:] == ["CONNECTED"], timeout=20.0, what="kazoo reconnected")
            ctx.wait_events(log, 1)
            ctx.events("events", log)
            ctx.record("same session", b.client_id[0] == ctx.session_ids[-1])
            ctx.record("states", states)
        finally:
            b.stop()
            b.close()
    finally:
        proxy.stop()


@scenario()
def watch_persistent_event_before_own_reply(ctx: ScenarioContext) -> None:
    """A session with a recursive watch writing below it: each event frame comes
    before the reply to the write that caused it."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.add_watch(ctx.root, RECURSIVE)
    raw.trace.clear()
    raw.create(ctx.path("a"))
    raw.set_data(ctx.path("a"), b"1")
    raw.multi([op_create(ctx.path("b")), op_delete(ctx.path("a"))])
    ctx.record("trace", describe_trace(raw.trace))


@scenario()
def watch_child_watch_not_fired_by_grandchild(ctx: ScenarioContext) -> None:
    """A child watch fires for a child, not for a grandchild or a child's data."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("k"))
    watcher.get_children(ctx.root, True)
    writer.create(ctx.path("k", "g"))
    writer.set_data(ctx.path("k"), b"x")
    _settled_events(ctx, watcher, "before child change")
    writer.delete(ctx.path("k", "g"))
    writer.delete(ctx.path("k"))
    _settled_events(ctx, watcher, "after child deleted")


@scenario()
def watch_many_watchers_one_write(ctx: ScenarioContext) -> None:
    """Five sessions watching one node all get exactly one event for one write."""
    writer = ctx.raw()
    writer.create(ctx.root)
    writer.create(ctx.path("n"))
    watchers = [ctx.raw() for _ in range(5)]
    for i, w in enumerate(watchers):
        (w.get_data if i % 2 else w.exists)(ctx.path("n"), True)
    writer.set_data(ctx.path("n"), b"x")
    writer.set_data(ctx.path("n"), b"y")
    for i, w in enumerate(watchers):
        _settled_events(ctx, w, f"watcher {i}")


@scenario()
def watch_set_watches_deleted_and_recreated(ctx: ScenarioContext) -> None:
    """setWatches after a gap in which: a child-watched node was deleted, a
    data-watched node was deleted and recreated, an exist-watched node was created
    and deleted again, a child-watched node only had a child's data changed."""
    writer, watcher = _pair(ctx)
    for name in ("parent", "recreated", "quiet"):
        writer.create(ctx.path(name))
    writer.create(ctx.path("quiet", "k"))
    relative = writer.sync("/").zxid
    writer.delete(ctx.path("parent"))
    writer.delete(ctx.path("recreated"))
    writer.create(ctx.path("recreated"))
    writer.create(ctx.path("flicker"))
    writer.delete(ctx.path("flicker"))
    writer.set_data(ctx.path("quiet", "k"), b"x")
    ctx.call(
        "setWatches",
        watcher.set_watches,
        relative,
        [ctx.path("recreated")],
        [ctx.path("flicker")],
        [ctx.path("parent"), ctx.path("quiet")],
    )
    _settled_events(ctx, watcher, "replayed")
    writer.create(ctx.path("flicker"))
    writer.create(ctx.path("quiet", "k2"))
    _settled_events(ctx, watcher, "after later writes")


@scenario()
def watch_set_watches_ignores_acl(ctx: ScenarioContext) -> None:
    """setWatches on a node the session may not read: ZooKeeper does not check ACLs
    for watch registration here."""
    writer, watcher = _pair(ctx)
    writer.create(
        ctx.path("secret"),
        b"",
        [__import__("tests.integration.scenarios._ops", fromlist=["acl"]).acl(2)],
    )
    relative = writer.sync("/").zxid
    ctx.call(
        "setWatches", watcher.set_watches, relative, [ctx.path("secret")], [], [ctx.path("secret")]
    )
    writer.set_data(ctx.path("secret"), b"x")
    _settled_events(ctx, watcher)


@scenario()
def watch_persistent_sees_delete_and_recreate_in_multi(ctx: ScenarioContext) -> None:
    """A multi deleting and recreating a watched node: a persistent watcher sees
    NodeDeleted then NodeCreated, in op order."""
    writer, watcher = _pair(ctx)
    writer.create(ctx.path("n"), b"0")
    watcher.add_watch(ctx.path("n"), PERSISTENT)
    writer.multi(
        [op_delete(ctx.path("n")), op_create(ctx.path("n"), b"1"), op_set(ctx.path("n"), b"2")]
    )
    _settled_events(ctx, watcher)


@scenario()
def watch_recursive_sees_ephemeral_expiry_on_close(ctx: ScenarioContext) -> None:
    """A recursive watcher sees NodeDeleted for each ephemeral removed when its owner
    closes (order unspecified in ZooKeeper: compared sorted)."""
    writer, watcher = _pair(ctx)
    owner = ctx.raw()
    owner.create(ctx.path("a"), b"", None, 1)
    owner.create(ctx.path("b"), b"", None, 1)
    watcher.add_watch(ctx.root, RECURSIVE)
    owner.close()
    watcher.wait_events(2)
    watcher.settle()
    ctx.record("events (sorted)", sorted(watcher.events, key=repr))


@scenario()
def watch_exists_then_getdata_same_session_missing(ctx: ScenarioContext) -> None:
    """exists watch (missing node), then create, then getData watch, then delete:
    NodeCreated then NodeDeleted."""
    writer, watcher = _pair(ctx)
    watcher.exists(ctx.path("n"), True)
    writer.create(ctx.path("n"))
    watcher.settle()
    watcher.get_data(ctx.path("n"), True)
    writer.delete(ctx.path("n"))
    _settled_events(ctx, watcher)


@scenario()
def watch_child_watch_on_ephemeral_node(ctx: ScenarioContext) -> None:
    """getChildren with a watch on an ephemeral (it can have no children): the watch
    fires NodeDeleted when the owner closes."""
    writer, watcher = _pair(ctx)
    owner = ctx.raw()
    owner.create(ctx.path("e"), b"", None, 1)
    ctx.call("children", watcher.get_children2, ctx.path("e"), True)
    owner.close()
    watcher.wait_events(1)
    _settled_events(ctx, watcher)
