"""
multi (transactions) and multiRead, through the raw client (exact per-op result
records) and through kazoo's transaction API.
"""

from __future__ import annotations

from tests.integration.scenarios._ops import (
    acl,
    op_check,
    op_children,
    op_container,
    op_create,
    op_create2,
    op_delete,
    op_get,
    op_set,
)
from tests.support.differential import ScenarioContext, scenario
from tests.support.rawclient import describe_trace
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode


def _setup(ctx: ScenarioContext):
    raw = ctx.raw()
    raw.create(ctx.root)
    return raw


def _tree(ctx: ScenarioContext, raw, label: str = "tree") -> None:
    """Record every node below the root with its data and stat (sorted)."""

    def walk(path: str, out: list) -> None:
        reply = raw.get_data(path)
        out.append((path, reply))
        kids = raw.get_children(path)
        if kids.ok:
            for kid in sorted(kids.body.children):
                walk(f"{path}/{kid}", out)

    nodes: list = []
    walk(ctx.root, nodes)
    ctx.record(label, nodes)


@scenario()
def multi_success_results(ctx: ScenarioContext) -> None:
    """A successful multi answers each op: create path, create2 path+stat, setData
    stat, delete and check with no body; all ops share one zxid."""
    raw = _setup(ctx)
    raw.create(ctx.path("old"), b"o")
    ctx.call(
        "multi",
        raw.multi,
        [
            op_create(ctx.path("a"), b"1"),
            op_create2(ctx.path("b"), b"2"),
            op_set(ctx.path("a"), b"11", 0),
            op_check(ctx.path("b"), 0),
            op_delete(ctx.path("old"), 0),
        ],
    )
    _tree(ctx, raw)


@scenario()
def multi_failure_middle(ctx: ScenarioContext) -> None:
    """A multi failing in its third op: OK for earlier ops, the failure's code for it,
    RuntimeInconsistency after it; nothing applied; no watch fires."""
    raw = _setup(ctx)
    raw.create(ctx.path("x"), b"x")
    watcher = ctx.raw()
    watcher.get_data(ctx.path("x"), watch=True)
    watcher.get_children(ctx.root, watch=True)
    watcher.exists(ctx.path("a"), watch=True)
    ctx.call(
        "multi",
        raw.multi,
        [
            op_create(ctx.path("a")),
            op_set(ctx.path("x"), b"y"),
            op_delete(ctx.path("missing")),
            op_create(ctx.path("b")),
            op_set(ctx.path("x"), b"z"),
        ],
    )
    _tree(ctx, raw)
    watcher.settle()
    ctx.record("watcher events", watcher.events)
    ctx.call("later write", raw.set_data, ctx.path("x"), b"w")
    watcher.settle()
    ctx.record("watcher events after real write", watcher.events)


@scenario()
def multi_failure_first_op(ctx: ScenarioContext) -> None:
    """A multi failing on its first op."""
    raw = _setup(ctx)
    ctx.call("multi", raw.multi, [op_create(ctx.root), op_create(ctx.path("a"))])
    _tree(ctx, raw)


@scenario()
def multi_failure_last_op(ctx: ScenarioContext) -> None:
    """A multi failing on its last op rolls back the earlier ones."""
    raw = _setup(ctx)
    ctx.call(
        "multi",
        raw.multi,
        [op_create(ctx.path("a")), op_create(ctx.path("a", "b")), op_set(ctx.path("a"), b"", 3)],
    )
    _tree(ctx, raw)


@scenario()
def multi_check_version(ctx: ScenarioContext) -> None:
    """check ops: matching version passes, wrong version BadVersion, missing NoNode."""
    raw = _setup(ctx)
    raw.create(ctx.path("a"))
    raw.set_data(ctx.path("a"), b"1")
    ctx.call("check ok", raw.multi, [op_check(ctx.path("a"), 1)])
    ctx.call("check any", raw.multi, [op_check(ctx.path("a"), -1)])
    ctx.call("check bad", raw.multi, [op_check(ctx.path("a"), 0), op_create(ctx.path("b"))])
    ctx.call("check missing", raw.multi, [op_check(ctx.path("zz"), -1)])
    ctx.call(
        "check then write", raw.multi, [op_check(ctx.path("a"), 1), op_set(ctx.path("a"), b"2", 1)]
    )
    _tree(ctx, raw)


@scenario()
def multi_check_alone_opcode(ctx: ScenarioContext) -> None:
    """A check (opcode 13) sent alone, outside a multi, followed by an exists: which
    replies come back, in order.  (ZooKeeper 3.8 logs the check as a txn but sends
    no reply to it at all; the exists after it is answered.  It also writes a txn
    of type check to its log that it cannot replay: a ZooKeeper restarted after
    this scenario fails to start, so restarting scenarios use private servers.)"""
    raw = _setup(ctx)
    raw.create(ctx.path("a"))
    raw.trace.clear()
    raw.submit(OpCode.check, R.CheckVersionRequest(ctx.path("a"), 0))
    follow = raw.submit(OpCode.exists, R.ExistsRequest(ctx.path("a"), False))
    ctx.call("exists after check", raw.wait_reply, follow, 5.0)
    ctx.record("trace", describe_trace(raw.trace))
    raw.trace.clear()
    raw.submit(OpCode.check, R.CheckVersionRequest(ctx.path("a"), 5))
    follow = raw.submit(OpCode.exists, R.ExistsRequest(ctx.path("a"), False))
    ctx.call("exists after bad check", raw.wait_reply, follow, 5.0)
    ctx.record("trace bad", describe_trace(raw.trace))


@scenario()
def multi_delete_container_opcode_from_client(ctx: ScenarioContext) -> None:
    """deleteContainer (opcode 20) is internal to ZooKeeper; a client sending it."""
    raw = _setup(ctx)
    raw.create_container(ctx.path("c"))
    raw.create(ctx.path("p"))
    for label, name in (("on container", "c"), ("on plain", "p"), ("on missing", "m")):
        if not raw.connected:
            raw = ctx.raw(register_session=False)
        request = R.DeleteRequest(ctx.path(name), -1)
        ctx.call(label, raw.call, OpCode.deleteContainer, request, 3.0)
    if not raw.connected:
        raw = ctx.raw(register_session=False)
    _tree(ctx, raw)


@scenario()
def multi_empty(ctx: ScenarioContext) -> None:
    """An empty multi succeeds with no results."""
    raw = _setup(ctx)
    ctx.call("empty", raw.multi, [])


@scenario()
def multi_dependent_ops(ctx: ScenarioContext) -> None:
    """Later ops see earlier ops of the same multi: create parent then child, set the
    new node at version 0, delete and recreate, sequential names."""
    raw = _setup(ctx)
    ctx.call(
        "multi",
        raw.multi,
        [
            op_create(ctx.path("p")),
            op_create(ctx.path("p", "c")),
            op_set(ctx.path("p", "c"), b"v", 0),
            op_set(ctx.path("p", "c"), b"w", 1),
            op_delete(ctx.path("p", "c"), 2),
            op_create(ctx.path("p", "c"), b"again"),
            op_create(ctx.path("p", "s-"), b"", 2),
            op_create(ctx.path("p", "s-"), b"", 2),
            op_check(ctx.path("p"), 0),
        ],
    )
    _tree(ctx, raw)


@scenario()
def multi_sequential_failure_consumes_nothing(ctx: ScenarioContext) -> None:
    """A failed multi with sequential creates does not advance the parent's cversion."""
    raw = _setup(ctx)
    ctx.call("failed", raw.multi, [op_create(ctx.path("s-"), b"", 2), op_delete(ctx.path("nope"))])
    ctx.call("next seq", raw.create, ctx.path("s-"), b"", None, 2)
    ctx.call("root", raw.exists, ctx.root)


@scenario()
def multi_ephemeral_and_not_empty(ctx: ScenarioContext) -> None:
    """Ephemeral creates in a multi; delete of a non-empty node fails the multi."""
    raw = _setup(ctx)
    ctx.call("eph", raw.multi, [op_create(ctx.path("e"), b"", 1), op_create(ctx.path("f"))])
    ctx.call("child of eph", raw.multi, [op_create(ctx.path("e", "x"))])
    raw.create(ctx.path("f", "k"))
    ctx.call("not empty", raw.multi, [op_delete(ctx.path("f"))])
    ctx.call(
        "delete kid then parent",
        raw.multi,
        [op_delete(ctx.path("f", "k")), op_delete(ctx.path("f"))],
    )
    _tree(ctx, raw)


@scenario()
def multi_with_read_op(ctx: ScenarioContext) -> None:
    """A multi containing a read op (getData/getChildren) is refused."""
    raw = _setup(ctx)
    raw.create(ctx.path("a"), b"1")
    ctx.call("multi getData", raw.multi, [op_create(ctx.path("b")), op_get(ctx.path("a"))])
    ctx.call("multi getChildren", raw.multi, [op_children(ctx.path("a"))])
    ctx.call("still open", raw.exists, ctx.path("b"))


@scenario()
def multi_read_results(ctx: ScenarioContext) -> None:
    """multiRead answers each read with its own result or error; no rollback."""
    raw = _setup(ctx)
    raw.create(ctx.path("a"), b"1")
    raw.create(ctx.path("a", "k1"))
    raw.create(ctx.path("a", "k2"))
    ctx.call(
        "multiRead",
        raw.multi_read,
        [
            op_get(ctx.path("a")),
            op_children(ctx.path("a")),
            op_get(ctx.path("missing")),
            op_children(ctx.path("missing")),
            op_get(ctx.path("a", "k1")),
        ],
    )
    ctx.call("empty multiRead", raw.multi_read, [])


@scenario()
def multi_read_with_write_op(ctx: ScenarioContext) -> None:
    """A multiRead containing a write op is refused and applies nothing."""
    raw = _setup(ctx)
    ctx.call("multiRead create", raw.multi_read, [op_create(ctx.path("a")), op_get(ctx.root)])
    ctx.call("after", raw.exists, ctx.path("a"))


@scenario()
def multi_read_no_auth(ctx: ScenarioContext) -> None:
    """multiRead on an unreadable node answers NoAuth for that op only."""
    raw = _setup(ctx)
    raw.create(ctx.path("secret"), b"s", [acl(2)])
    raw.create(ctx.path("open"), b"o")
    ctx.call(
        "multiRead",
        raw.multi_read,
        [op_get(ctx.path("secret")), op_get(ctx.path("open")), op_children(ctx.path("secret"))],
    )


@scenario()
def multi_no_auth(ctx: ScenarioContext) -> None:
    """A multi with a write the session may not do fails as a whole with NoAuth."""
    raw = _setup(ctx)
    raw.create(ctx.path("ro"), b"", [acl(1)])
    ctx.call("multi", raw.multi, [op_create(ctx.path("a")), op_set(ctx.path("ro"), b"x")])
    ctx.call("create under ro", raw.multi, [op_create(ctx.path("ro", "k"))])
    _tree(ctx, raw)


@scenario()
def multi_bad_path_and_acl(ctx: ScenarioContext) -> None:
    """Malformed paths and invalid ACLs inside a multi fail it."""
    raw = _setup(ctx)
    ctx.call("bad path", raw.multi, [op_create(ctx.path("a")), op_create(ctx.root + "//x")])
    ctx.call("bad acl", raw.multi, [op_create(ctx.path("b"), b"", 0, [acl(31, "nope", "x")])])
    ctx.call("empty acl", raw.multi, [op_create(ctx.path("c"), b"", 0, [])])
    _tree(ctx, raw)


@scenario()
def multi_watch_events(ctx: ScenarioContext) -> None:
    """Watches fire for every op of a successful multi, in op order."""
    raw = _setup(ctx)
    raw.create(ctx.path("a"), b"")
    raw.create(ctx.path("d"), b"")
    watcher = ctx.raw()
    watcher.get_children(ctx.root, watch=True)
    watcher.get_data(ctx.path("a"), watch=True)
    watcher.exists(ctx.path("d"), watch=True)
    watcher.exists(ctx.path("n"), watch=True)
    ctx.call(
        "multi",
        raw.multi,
        [op_set(ctx.path("a"), b"x"), op_create(ctx.path("n")), op_delete(ctx.path("d"))],
    )
    ctx.call("events", watcher.wait_events, 4)


@scenario()
def multi_container_in_multi(ctx: ScenarioContext) -> None:
    """createContainer in a multi, then a child in the same multi."""
    raw = _setup(ctx)
    ctx.call("multi", raw.multi, [op_container(ctx.path("c")), op_create(ctx.path("c", "k"))])
    _tree(ctx, raw)


@scenario()
def multi_duplicate_create(ctx: ScenarioContext) -> None:
    """Creating the same path twice in one multi fails on the second op."""
    raw = _setup(ctx)
    ctx.call("multi", raw.multi, [op_create(ctx.path("a")), op_create(ctx.path("a"))])
    _tree(ctx, raw)


@scenario()
def multi_failure_consumes_zxid(ctx: ScenarioContext) -> None:
    """A failed multi's reply zxid is a new zxid (the error txn is logged), ordered
    between the writes before and after it."""
    raw = _setup(ctx)
    first = raw.create(ctx.path("a"))
    failed = raw.multi([op_delete(ctx.path("zz"))])
    after = raw.create(ctx.path("b"))
    ctx.record("replies", [first, failed, after])


@scenario()
def multi_kazoo_transaction(ctx: ScenarioContext) -> None:
    """kazoo's transaction API: results of a committed transaction and of one rolled
    back (kazoo maps per-op errors to exceptions, RolledBackError for the others)."""
    c = ctx.client()
    c.create(ctx.root)
    t = c.transaction()
    t.create(ctx.path("a"), b"1")
    t.create(ctx.path("s-"), b"", sequence=True)
    t.set_data(ctx.path("a"), b"2")
    t.check(ctx.path("a"), 1)
    ctx.call("commit", t.commit)
    t = c.transaction()
    t.create(ctx.path("b"))
    t.delete(ctx.path("a"), version=0)
    t.create(ctx.path("c"))
    ctx.call("failing commit", t.commit)
    ctx.call("children", lambda: sorted(c.get_children(ctx.root)))


@scenario()
def multi_large_many_ops(ctx: ScenarioContext) -> None:
    """A multi with 500 creates succeeds; the parent's cversion moves by 500."""
    raw = _setup(ctx)
    reply = raw.multi([op_create(ctx.path(f"n{i}")) for i in range(500)])
    ctx.record("err", reply.err)
    ctx.record("results", len(reply.body or []))
    ctx.record("first", reply.body[0] if reply.body else None)
    ctx.call("root", raw.exists, ctx.root)


@scenario()
def multi_setdata_stat_in_result(ctx: ScenarioContext) -> None:
    """setData results inside a multi carry the node's new stat."""
    raw = _setup(ctx)
    raw.create(ctx.path("a"), b"0")
    ctx.call("multi", raw.multi, [op_set(ctx.path("a"), b"1"), op_set(ctx.path("a"), b"22")])


@scenario()
def multi_unknown_op_type(ctx: ScenarioContext) -> None:
    """A multi with an op type not allowed there (a setACL header) is answered with an
    error or a closed connection."""
    raw = _setup(ctx)
    body = bytearray()
    R.MultiHeader(OpCode.setACL, False, -1).serialize_into(body)
    R.SetACLRequest(ctx.path("a"), [acl(31)], -1).serialize_into(body)
    R.MultiHeader(-1, True, -1).serialize_into(body)
    ctx.call("multi", raw.call, OpCode.multi, bytes(body))
    ctx.call("closed", raw.server_closed, 1.0)


@scenario()
def multi_nodes_share_txn_time(ctx: ScenarioContext) -> None:
    """Nodes created by one multi share ctime and czxid; a parent's mtime is not
    changed by creating its children."""
    raw = _setup(ctx)
    parent_before = raw.exists(ctx.root).body.stat
    raw.multi([op_create(ctx.path("a")), op_create(ctx.path("b")), op_create(ctx.path("a", "c"))])
    stats = [raw.exists(ctx.path(p)).body.stat for p in ("a", "b", "a/c")]
    ctx.record("same ctime", len({s.ctime for s in stats}) == 1)
    ctx.record("same czxid", len({s.czxid for s in stats}) == 1)
    parent_after = raw.exists(ctx.root).body.stat
    ctx.record("parent mtime unchanged", parent_after.mtime == parent_before.mtime)
    ctx.record("stats", stats)
