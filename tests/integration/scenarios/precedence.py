"""
Which error wins when a request is wrong in several ways at once, and how writes
are checked against writes still in flight (ZooKeeper's PrepRequestProcessor checks
in a fixed order against the tree plus outstanding changes).

Each scenario builds one combination and records the single error code returned.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.scenarios._ops import acl, op_create, op_delete, op_set
from tests.support.differential import ScenarioContext, scenario
from tests.support.rawclient import RawClient
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode

READ, WRITE, CREATE, DELETE, ADMIN, ALL = 1, 2, 4, 8, 16, 31
BAD_ACL = [acl(ALL, "nosuch", "x")]


def _fixture(ctx: ScenarioContext) -> RawClient:
    """A tree with every kind of obstacle below the root:
    open/ (with child kid), noauth/ (world: READ only, child kid), eph (ephemeral),
    versioned (version 1, child kid), locked (perms 0)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("open"))
    raw.create(ctx.path("open", "kid"))
    raw.create(ctx.path("noauth"))
    raw.create(ctx.path("noauth", "kid"))
    raw.set_acl(ctx.path("noauth"), [acl(READ)])
    raw.create(ctx.path("eph"), b"", None, 1)
    raw.create(ctx.path("versioned"))
    raw.set_data(ctx.path("versioned"), b"v1")
    raw.create(ctx.path("versioned", "kid"))
    raw.create(ctx.path("locked"), b"", [acl(0)])
    return raw


CASES: dict[str, Callable[[ScenarioContext, RawClient], object]] = {
    # create
    "create_missing_parent_and_bad_acl": lambda c, r: r.create(c.path("nope", "x"), b"", BAD_ACL),
    "create_existing_and_bad_acl": lambda c, r: r.create(c.path("open"), b"", BAD_ACL),
    "create_noauth_parent_and_existing": lambda c, r: r.create(c.path("noauth", "kid")),
    "create_noauth_parent_and_bad_acl": lambda c, r: r.create(c.path("noauth", "x"), b"", BAD_ACL),
    "create_noauth_parent_sequential": lambda c, r: r.create(c.path("noauth", "s-"), b"", None, 2),
    "create_ephemeral_parent_and_bad_acl": lambda c, r: r.create(c.path("eph", "x"), b"", BAD_ACL),
    "create_locked_parent_ephemeral": lambda c, r: r.create(c.path("locked", "x"), b"", None, 1),
    "create_missing_parent_bad_path": lambda c, r: r.create(c.path("nope") + "//x"),
    "create_bad_flags_and_existing": lambda c, r: r.create(c.path("open"), b"", None, 99),
    "create_bad_flags_missing_parent": lambda c, r: r.create(c.path("nope", "x"), b"", None, 99),
    "create_ttl_bad_and_missing_parent": lambda c, r: r.create_ttl(c.path("nope", "t"), 0),
    "create_ttl_bad_and_existing": lambda c, r: r.create_ttl(c.path("open"), -1),
    "create_container_existing_bad_acl": lambda c, r: r.create_container(
        c.path("open"), b"", BAD_ACL
    ),
    "create_empty_acl_existing": lambda c, r: r.create(c.path("open"), b"", []),
    "create_child_of_locked_existing_name": lambda c, r: r.create(c.path("locked")),
    # delete
    "delete_missing_under_noauth_parent": lambda c, r: r.delete(c.path("noauth", "ghost")),
    "delete_missing_parent_and_node": lambda c, r: r.delete(c.path("nope", "x")),
    "delete_bad_version_and_not_empty": lambda c, r: r.delete(c.path("versioned"), 0),
    "delete_right_version_not_empty": lambda c, r: r.delete(c.path("versioned"), 1),
    "delete_noauth_parent_bad_version": lambda c, r: r.delete(c.path("noauth", "kid"), 7),
    "delete_locked_itself": lambda c, r: r.delete(c.path("locked")),
    "delete_root": lambda c, r: r.delete("/"),
    "delete_zookeeper": lambda c, r: r.delete("/zookeeper"),
    "delete_ephemeral_other_version": lambda c, r: r.delete(c.path("eph"), 3),
    # setData
    "set_noauth_and_bad_version": lambda c, r: r.set_data(c.path("locked"), b"x", 9),
    "set_missing_and_bad_version": lambda c, r: r.set_data(c.path("nope"), b"x", 9),
    "set_read_only_right_version": lambda c, r: r.set_data(c.path("noauth"), b"x", 0),
    # setACL
    "setacl_noauth_and_bad_version": lambda c, r: r.set_acl(c.path("locked"), [acl(ALL)], 9),
    "setacl_bad_acl_and_bad_version": lambda c, r: r.set_acl(c.path("open"), BAD_ACL, 9),
    "setacl_bad_acl_and_noauth": lambda c, r: r.set_acl(c.path("locked"), BAD_ACL),
    "setacl_bad_acl_missing_node": lambda c, r: r.set_acl(c.path("nope"), BAD_ACL),
    "setacl_empty_acl": lambda c, r: r.set_acl(c.path("open"), []),
    # reads
    "getdata_locked": lambda c, r: r.get_data(c.path("locked")),
    "getchildren_locked": lambda c, r: r.get_children(c.path("locked")),
    "getacl_locked": lambda c, r: r.get_acl(c.path("locked")),
    "exists_locked": lambda c, r: r.exists(c.path("locked")),
    "getchildren_of_missing_under_locked": lambda c, r: r.get_children(c.path("locked", "x")),
    # multi: the first failing op decides
    "multi_noauth_before_nonode": lambda c, r: r.multi(
        [op_set(c.path("locked"), b"x"), op_delete(c.path("nope"))]
    ),
    "multi_nonode_before_noauth": lambda c, r: r.multi(
        [op_delete(c.path("nope")), op_set(c.path("locked"), b"x")]
    ),
    "multi_check_on_locked": lambda c, r: r.multi(
        [(OpCode.check, R.CheckVersionRequest(c.path("locked"), 0))]
    ),
    "multi_bad_acl_create": lambda c, r: r.multi([op_create(c.path("z"), b"", 0, BAD_ACL)]),
}


def _register(name: str, case: Callable[[ScenarioContext, RawClient], object]) -> None:
    def run(ctx: ScenarioContext) -> None:
        raw = _fixture(ctx)
        stranger = ctx.raw()
        ctx.call("reply", case, ctx, stranger)
        ctx.call("tree root stat", raw.exists, ctx.root)

    run.__doc__ = f"Error precedence: {name.replace('_', ' ')}."
    scenario(f"precedence_{name}")(run)


for _name, _case in CASES.items():
    _register(_name, _case)


@scenario()
def inflight_dependent_pipelined_writes(ctx: ScenarioContext) -> None:
    """Pipelined writes are checked against the writes before them, still in flight:
    create a parent then its child, a NotEmpty delete, then delete child and parent,
    set with the version an earlier in-flight set produced."""
    raw = ctx.raw()
    raw.create(ctx.root)
    base = ctx.path("p")
    requests = [
        op_create(base, b"0"),
        op_create(base + "/c"),
        op_delete(base),
        op_set(base, b"1", 0),
        op_set(base, b"2", 1),
        op_set(base, b"3", 1),
        op_create(base + "/s-", b"", 2),
        op_delete(base + "/c"),
        op_delete(base + "/s-0000000001"),
        op_delete(base, 2),
        op_create(base, b"again"),
        op_create(base + "/e", b"", 1),
        op_create(base + "/e/x"),
    ]
    xids = [raw.submit(*request) for request in requests]
    raw.wait_reply(xids[-1], 30.0)
    ctx.record("replies", [item for kind, item in raw.trace if kind == "reply"][1:])
    ctx.call("final", raw.get_children2, base)


@scenario()
def inflight_two_sessions_interleaved(ctx: ScenarioContext) -> None:
    """Two sessions pipelining conflicting writes: every write gets exactly one
    outcome and the final tree is consistent with some serial order (recorded:
    which creates succeeded in total, and the final version)."""
    first = ctx.raw()
    first.create(ctx.root)
    second = ctx.raw()
    first.create(ctx.path("n"))
    xa = [first.submit(*op_set(ctx.path("n"), b"a", v)) for v in range(5)]
    xb = [second.submit(*op_set(ctx.path("n"), b"b", v)) for v in range(5)]
    replies_a = [first.wait_reply(x) for x in xa]
    replies_b = [second.wait_reply(x) for x in xb]
    successes = sum(1 for r in replies_a + replies_b if r.ok)
    ctx.record("successful sets", successes)
    ctx.record("final version", first.exists(ctx.path("n")).body.stat.version)
