"""
Scenarios on plain znodes through kazoo: create, get, set, delete, exists, children,
stats, versions, sequential and ephemeral nodes.
"""

from __future__ import annotations

from kazoo.security import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE

from tests.support.differential import ScenarioContext, scenario


def _base(ctx: ScenarioContext):
    c = ctx.client()
    c.create(ctx.root)
    return c


@scenario()
def create_returns_path_and_stat(ctx: ScenarioContext) -> None:
    """create returns the path; the new node's stat has ctime == mtime, versions 0."""
    c = _base(ctx)
    ctx.call("create", c.create, ctx.path("a"), b"hello")
    data, stat = c.get(ctx.path("a"))
    ctx.record("get", (data, stat))
    ctx.record("ctime==mtime", stat.ctime == stat.mtime)
    ctx.record("czxid==mzxid==pzxid", stat.czxid == stat.mzxid == stat.pzxid)
    ctx.call("exists", c.exists, ctx.path("a"))


@scenario()
def create_include_data_stat(ctx: ScenarioContext) -> None:
    """create2 (include_data=True) returns the path and the node's stat."""
    c = _base(ctx)
    ctx.call("create2", c.create, ctx.path("a"), b"xyz", include_data=True)
    ctx.call("create2 dup", c.create, ctx.path("a"), b"xyz", include_data=True)
    ctx.call("get", c.get, ctx.path("a"))


@scenario()
def create_existing_node_exists(ctx: ScenarioContext) -> None:
    """Creating an existing path fails with NodeExists and changes nothing."""
    c = _base(ctx)
    c.create(ctx.path("a"), b"1")
    ctx.call("dup", c.create, ctx.path("a"), b"2")
    ctx.call("get", c.get, ctx.path("a"))
    ctx.call("parent", c.exists, ctx.root)


@scenario()
def create_without_parent_no_node(ctx: ScenarioContext) -> None:
    """Creating below a missing parent fails with NoNode; makepath creates the chain."""
    c = _base(ctx)
    ctx.call("orphan", c.create, ctx.path("x", "y"), b"")
    ctx.call("makepath", c.create, ctx.path("p", "q", "r"), b"d", makepath=True)
    for p in ("p", "p/q", "p/q/r"):
        ctx.call(f"exists {p}", c.exists, ctx.path(p))


@scenario()
def empty_versus_null_data(ctx: ScenarioContext) -> None:
    """Empty data and data of one zero byte are distinct; dataLength follows."""
    c = _base(ctx)
    c.create(ctx.path("empty"), b"")
    c.create(ctx.path("zero"), b"\x00")
    ctx.call("empty", c.get, ctx.path("empty"))
    ctx.call("zero", c.get, ctx.path("zero"))
    ctx.call("set empty", c.set, ctx.path("zero"), b"")
    ctx.call("zero now", c.get, ctx.path("zero"))


@scenario()
def binary_data_roundtrip(ctx: ScenarioContext) -> None:
    """Arbitrary bytes (all 256 values) round-trip unchanged."""
    c = _base(ctx)
    payload = bytes(range(256)) * 4
    c.create(ctx.path("bin"), payload)
    data, stat = c.get(ctx.path("bin"))
    ctx.record("equal", data == payload)
    ctx.record("stat", stat)


@scenario()
def set_data_versions(ctx: ScenarioContext) -> None:
    """set bumps version and mzxid, keeps czxid/ctime; matching version succeeds."""
    c = _base(ctx)
    c.create(ctx.path("a"), b"v0")
    _, before = c.get(ctx.path("a"))
    ctx.call("set any", c.set, ctx.path("a"), b"v1")
    ctx.call("set v1", c.set, ctx.path("a"), b"v2", version=1)
    ctx.call("set v5 bad", c.set, ctx.path("a"), b"v3", version=5)
    ctx.call("set v0 bad", c.set, ctx.path("a"), b"v3", version=0)
    data, after = c.get(ctx.path("a"))
    ctx.record("get", (data, after))
    ctx.record("ctime kept", before.ctime == after.ctime)
    ctx.record("mtime advanced", after.mtime >= before.mtime)


@scenario()
def set_data_missing_node(ctx: ScenarioContext) -> None:
    """set on a missing node is NoNode whatever the version."""
    c = _base(ctx)
    ctx.call("set", c.set, ctx.path("nope"), b"x")
    ctx.call("set v3", c.set, ctx.path("nope"), b"x", version=3)


@scenario()
def set_same_data_still_versions(ctx: ScenarioContext) -> None:
    """Setting identical data still bumps the version and mzxid."""
    c = _base(ctx)
    c.create(ctx.path("a"), b"same")
    for i in range(3):
        ctx.call(f"set {i}", c.set, ctx.path("a"), b"same")


@scenario()
def delete_versions(ctx: ScenarioContext) -> None:
    """delete with a wrong version is BadVersion; right version deletes; NoNode after."""
    c = _base(ctx)
    c.create(ctx.path("a"), b"")
    c.set(ctx.path("a"), b"x")
    ctx.call("delete v0", c.delete, ctx.path("a"), version=0)
    ctx.call("delete v1", c.delete, ctx.path("a"), version=1)
    ctx.call("again", c.delete, ctx.path("a"))
    ctx.call("exists", c.exists, ctx.path("a"))


@scenario()
def delete_not_empty(ctx: ScenarioContext) -> None:
    """delete of a node with children is NotEmpty; recursive delete works."""
    c = _base(ctx)
    c.create(ctx.path("a", "b", "c"), makepath=True)
    ctx.call("delete", c.delete, ctx.path("a"))
    ctx.call("delete bad version first", c.delete, ctx.path("a"), version=7)
    ctx.call("recursive", c.delete, ctx.path("a"), recursive=True)
    ctx.call("exists", c.exists, ctx.path("a"))
    ctx.call("children", c.get_children, ctx.root)


@scenario()
def delete_root_and_zookeeper(ctx: ScenarioContext) -> None:
    """Deleting / or /zookeeper is refused."""
    c = ctx.client()
    ctx.call("delete /", c.delete, "/")
    ctx.call("delete /zookeeper", c.delete, "/zookeeper")
    ctx.call("delete /zookeeper/quota", c.delete, "/zookeeper/quota")


@scenario()
def parent_stat_through_children(ctx: ScenarioContext) -> None:
    """A parent's cversion, numChildren and pzxid track child creates and deletes,
    while its version, mzxid and aversion do not move."""
    c = _base(ctx)
    ctx.call("root0", c.exists, ctx.root)
    c.create(ctx.path("a"))
    ctx.call("root1", c.exists, ctx.root)
    c.create(ctx.path("b"))
    ctx.call("root2", c.exists, ctx.root)
    c.set(ctx.path("a"), b"x")
    ctx.call("root after child set", c.exists, ctx.root)
    c.set_acls(ctx.path("a"), READ_ACL_UNSAFE)
    ctx.call("root after child setACL", c.exists, ctx.root)
    c.delete(ctx.path("b"))
    ctx.call("root3", c.exists, ctx.root)
    c.create(ctx.path("b"))
    ctx.call("root4", c.exists, ctx.root)


@scenario()
def get_children_with_stat(ctx: ScenarioContext) -> None:
    """getChildren2 returns the children (compared sorted) and the parent stat."""
    c = _base(ctx)
    for name in ("zeta", "alpha", "mid", "Beta", "0"):
        c.create(ctx.path(name))
    children, stat = c.get_children(ctx.root, include_data=True)
    ctx.record("children", sorted(children))
    ctx.record("stat", stat)
    ctx.call("leaf children", c.get_children, ctx.path("alpha"))
    ctx.call("missing children", c.get_children, ctx.path("missing"))


@scenario()
def exists_missing_and_present(ctx: ScenarioContext) -> None:
    """exists returns None for a missing node and a stat for a present one."""
    c = _base(ctx)
    ctx.call("missing", c.exists, ctx.path("m"))
    c.create(ctx.path("m"), b"123")
    ctx.call("present", c.exists, ctx.path("m"))
    ctx.call("get missing", c.get, ctx.path("n"))


@scenario()
def sequential_numbering(ctx: ScenarioContext) -> None:
    """Sequence numbers come from the parent's cversion: ten digits, growing after
    deletes and after failed creates of other nodes; independent per parent."""
    c = _base(ctx)
    c.create(ctx.path("p1"))
    c.create(ctx.path("p2"))
    ctx.call("s1", c.create, ctx.path("p1", "n-"), sequence=True)
    ctx.call("s2", c.create, ctx.path("p1", "n-"), sequence=True)
    c.delete(ctx.path("p1", "n-0000000001"))
    ctx.call("after delete", c.create, ctx.path("p1", "n-"), sequence=True)
    c.create(ctx.path("p1", "plain"))
    ctx.call("after plain", c.create, ctx.path("p1", "n-"), sequence=True)
    ctx.call("failed dup", c.create, ctx.path("p1", "plain"))
    ctx.call("after failed", c.create, ctx.path("p1", "n-"), sequence=True)
    ctx.call("other parent", c.create, ctx.path("p2", "n-"), sequence=True)
    ctx.call("empty prefix", c.create, ctx.path("p2", ""), sequence=True)
    ctx.call("children p1", lambda: sorted(c.get_children(ctx.path("p1"))))
    ctx.call("children p2", lambda: sorted(c.get_children(ctx.path("p2"))))


@scenario()
def sequential_under_root_of_scenario(ctx: ScenarioContext) -> None:
    """A sequential node's name embeds the parent's cversion even after many ops."""
    c = _base(ctx)
    for i in range(5):
        c.create(ctx.path(f"x{i}"))
    for i in range(3):
        c.delete(ctx.path(f"x{i}"))
    ctx.call("seq", c.create, ctx.path("s"), sequence=True)
    ctx.call("seq data", c.create, ctx.path("s"), b"data", sequence=True)
    ctx.call("stat root", c.exists, ctx.root)


@scenario()
def sequential_failed_create_under_ephemeral(ctx: ScenarioContext) -> None:
    """A sequential child of an ephemeral fails (NoChildrenForEphemerals); the
    ephemeral's cversion does not move."""
    c = _base(ctx)
    c.create(ctx.path("eph"), ephemeral=True)
    ctx.call("child", c.create, ctx.path("eph", "c"))
    ctx.call("seq child", c.create, ctx.path("eph", "c"), sequence=True)
    ctx.call("eph seq child", c.create, ctx.path("eph", "c"), ephemeral=True, sequence=True)
    ctx.call("stat", c.exists, ctx.path("eph"))


@scenario()
def ephemeral_sequential(ctx: ScenarioContext) -> None:
    """Ephemeral sequential nodes get numbers and the owner's session id."""
    c = _base(ctx)
    for i in range(3):
        ctx.call(f"es{i}", c.create, ctx.path("lock-"), ephemeral=True, sequence=True)
    ctx.call("stat", c.exists, ctx.path("lock-0000000001"))
    ctx.call("children", lambda: sorted(c.get_children(ctx.root)))


@scenario()
def ephemeral_owner_and_removal_on_close(ctx: ScenarioContext) -> None:
    """An ephemeral node carries its owner and disappears when that session closes;
    another client's watch sees NodeDeleted and the parent's NodeChildrenChanged."""
    from tests.support.differential import EventLog

    watcher = ctx.client()
    watcher.create(ctx.root)
    owner = ctx.client()
    owner.create(ctx.path("e"), b"mine", ephemeral=True)
    ctx.call("stat", watcher.exists, ctx.path("e"))
    node_events, child_events = EventLog("node"), EventLog("children")
    watcher.exists(ctx.path("e"), watch=node_events)
    watcher.get_children(ctx.root, watch=child_events)
    owner.stop()
    ctx.wait_events(node_events, 1)
    ctx.wait_events(child_events, 1)
    ctx.events("node events", node_events)
    ctx.events("child events", child_events)
    ctx.call("gone", watcher.exists, ctx.path("e"))
    ctx.call("root", watcher.exists, ctx.root)


@scenario()
def no_children_for_ephemerals(ctx: ScenarioContext) -> None:
    """Children of an ephemeral are refused with NoChildrenForEphemerals."""
    c = _base(ctx)
    c.create(ctx.path("e"), ephemeral=True)
    ctx.call("child", c.create, ctx.path("e", "x"))
    ctx.call("ephemeral child", c.create, ctx.path("e", "x"), ephemeral=True)
    ctx.call("deep orphan", c.create, ctx.path("e", "x", "y"))


@scenario()
def acl_of_created_node(ctx: ScenarioContext) -> None:
    """A node created with an explicit ACL reports it back with aversion 0."""
    c = _base(ctx)
    c.create(ctx.path("a"), acl=READ_ACL_UNSAFE)
    ctx.call("getACL", c.get_acls, ctx.path("a"))
    ctx.call("set denied", c.set, ctx.path("a"), b"x")
    ctx.call("getACL open", c.get_acls, ctx.root)


@scenario()
def set_acl_versions(ctx: ScenarioContext) -> None:
    """setACL checks and bumps aversion only; BadVersion on mismatch."""
    c = _base(ctx)
    c.create(ctx.path("a"), b"d")
    ctx.call("setACL v0", c.set_acls, ctx.path("a"), OPEN_ACL_UNSAFE, version=0)
    ctx.call("setACL v0 again", c.set_acls, ctx.path("a"), OPEN_ACL_UNSAFE, version=0)
    ctx.call("setACL any", c.set_acls, ctx.path("a"), READ_ACL_UNSAFE)
    ctx.call("getACL", c.get_acls, ctx.path("a"))
    ctx.call("setACL missing", c.set_acls, ctx.path("zz"), OPEN_ACL_UNSAFE)
    ctx.call("getACL missing", c.get_acls, ctx.path("zz"))


@scenario()
def many_children_listing(ctx: ScenarioContext) -> None:
    """A parent with 300 children lists them all; numChildren and cversion agree."""
    c = _base(ctx)
    tx = c.transaction()
    for i in range(300):
        tx.create(ctx.path(f"n{i:04d}"))
    ctx.record("commit", tx.commit()[:3])
    children, stat = c.get_children(ctx.root, include_data=True)
    ctx.record("count", len(children))
    ctx.record("sorted equal", sorted(children) == [f"n{i:04d}" for i in range(300)])
    ctx.record("stat", stat)


@scenario()
def unicode_names_and_data(ctx: ScenarioContext) -> None:
    """Non-ASCII node names and data round-trip as UTF-8."""
    c = _base(ctx)
    ctx.call("create", c.create, ctx.path("名前-ü-€"), "données".encode())
    ctx.call("get", c.get, ctx.path("名前-ü-€"))
    ctx.call("children", c.get_children, ctx.root)
    ctx.call("emoji", c.create, ctx.path("😀"), b"")
    ctx.call("children2", lambda: sorted(c.get_children(ctx.root)))


@scenario()
def pipelined_async_fifo(ctx: ScenarioContext) -> None:
    """Many pipelined kazoo async operations from one session give the results of
    sequential execution."""
    import threading

    c = _base(ctx)
    order: list[int] = []
    lock = threading.Lock()
    results: list[object] = [None] * 60
    asyncs = []
    for i in range(60):
        if i % 3 == 0:
            a = c.create_async(ctx.path(f"n{i}"), str(i).encode())
        elif i % 3 == 1:
            a = c.set_async(ctx.path(f"n{i - 1}"), b"s")
        else:
            a = c.get_async(ctx.path(f"n{i - 2}"))

        def done(result, index=i):
            with lock:
                order.append(index)
            try:
                results[index] = result.get()
            except Exception as error:  # noqa: BLE001
                results[index] = error

        a.rawlink(done)
        asyncs.append(a)
    ctx.wait(lambda: len(order) == 60, what="60 replies")
    # kazoo runs a callback linked to an already-finished result at once in the
    # linking thread, so callback order is not reply order: the wire order is
    # checked by pipelined_raw_reply_order; here the results are compared.
    ctx.record("results", results)


@scenario()
def sync_then_read(ctx: ScenarioContext) -> None:
    """sync returns the path and the next read sees a write from another session."""
    a = _base(ctx)
    b = ctx.client()
    a.create(ctx.path("x"), b"1")
    ctx.call("sync", b.sync, ctx.path("x"))
    ctx.call("read", b.get, ctx.path("x"))
    ctx.call("sync missing", b.sync, ctx.path("nope"))
    ctx.call("sync root", b.sync, "/")


@scenario()
def create2_modes_stat(ctx: ScenarioContext) -> None:
    """create2 for each create mode: the returned path and stat (ephemeralOwner for
    ephemerals is the session)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    for flags in (0, 1, 2, 3):
        ctx.call(f"create2 flags={flags}", raw.create2, ctx.path(f"m{flags}-"), b"d", flags)
    for flags in (7, -1, 100):
        ctx.call(f"create flags={flags}", raw.create, ctx.path(f"x{flags}"), b"", None, flags)


@scenario()
def sequential_counter_after_many(ctx: ScenarioContext) -> None:
    """Sequence numbers keep growing with the parent's cversion past 100 changes."""
    raw = ctx.raw()
    raw.create(ctx.root)
    from tests.integration.scenarios._ops import op_create as _create
    from tests.integration.scenarios._ops import op_delete as _delete

    raw.multi([_create(ctx.path(f"c{i}")) for i in range(60)])
    raw.multi([_delete(ctx.path(f"c{i}")) for i in range(60)])
    ctx.call("seq", raw.create, ctx.path("s"), b"", None, 2)
    ctx.call("root", raw.exists, ctx.root)


@scenario()
def set_data_version_wraps_check(ctx: ScenarioContext) -> None:
    """setData with version -1 always matches; other negative versions never do."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("a"))
    ctx.call("v -1", raw.set_data, ctx.path("a"), b"x", -1)
    ctx.call("v -2", raw.set_data, ctx.path("a"), b"x", -2)
    ctx.call("delete v -2", raw.delete, ctx.path("a"), -2)
    ctx.call(
        "setACL v -2",
        raw.set_acl,
        ctx.path("a"),
        [__import__("tests.integration.scenarios._ops", fromlist=["acl"]).acl(31)],
        -2,
    )


@scenario()
def pipelined_raw_reply_order(ctx: ScenarioContext) -> None:
    """Sixty pipelined requests (creates, sets, reads, a failing write, syncs) on one
    connection: the replies come back in request (xid) order with the results of
    sequential execution."""
    from tests.integration.scenarios._ops import op_create as _create
    from tests.integration.scenarios._ops import op_set as _set
    from zkreg.proto import records as R

    raw = ctx.raw()
    raw.create(ctx.root)
    raw.trace.clear()
    xids = []
    for i in range(20):
        xids.append(raw.submit(*_create(ctx.path(f"n{i}"), str(i).encode())))
        xids.append(raw.submit(4, R.GetDataRequest(ctx.path(f"n{i}"), False)))
        if i % 5 == 0:
            xids.append(raw.submit(*_create(ctx.path(f"n{i}"))))  # NodeExists
            xids.append(raw.submit(9, R.SyncRequest(ctx.path(f"n{i}"))))
        xids.append(raw.submit(*_set(ctx.path(f"n{i}"), b"s", 0)))
    raw.wait_reply(xids[-1], 30.0)
    replies = [item for kind, item in raw.trace if kind == "reply"]
    ctx.record("reply xids in request order", [r.xid for r in replies] == xids)
    ctx.record("replies", replies)
