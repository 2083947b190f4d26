"""
Container and TTL nodes (ZooKeeper 3.5+/3.6 extended types), through the raw client.

Both servers run with a container check every 500 ms and extended types enabled.
"Not deleted" is observed by staying connected for several check intervals
(C{raw.idle}) and then reading; "deleted" is awaited with a deadline.
"""

from __future__ import annotations

from tests.integration.scenarios._ops import op_container, op_create, op_ttl
from tests.support.differential import ScenarioContext, scenario
from zkreg.proto.consts import OpCode

CHECK_INTERVALS = 2.0  # seconds: four container checks
GONE_DEADLINE = 10.0


def _wait_gone(ctx: ScenarioContext, raw, path: str) -> None:
    ctx.wait(lambda: raw.exists(path).err != 0, timeout=GONE_DEADLINE, what=f"{path} deleted")


@scenario()
def container_create_and_stat(ctx: ScenarioContext) -> None:
    """createContainer answers like create2; the stat marks the node as a container
    (ephemeralOwner Long.MIN_VALUE)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    ctx.call("create", raw.create_container, ctx.path("c"), b"data")
    ctx.call("dup", raw.create_container, ctx.path("c"), b"data")
    ctx.call("exists", raw.exists, ctx.path("c"))
    ctx.call("under missing", raw.create_container, ctx.path("x", "c"))


@scenario()
def container_flags_checked(ctx: ScenarioContext) -> None:
    """createContainer with non-container flags, and create with the container flag."""
    raw = ctx.raw()
    raw.create(ctx.root)
    for flags in (0, 1, 2, 3, 5, 6, 7, -1):
        ctx.call(
            f"createContainer flags={flags}",
            raw.create,
            ctx.path(f"cc{flags}"),
            b"",
            None,
            flags,
            OpCode.createContainer,
        )
    ctx.call("create flags=4", raw.create, ctx.path("c4"), b"", None, 4)
    ctx.call("create2 flags=4", raw.create, ctx.path("c42"), b"", None, 4, OpCode.create2)
    ctx.call("children", lambda: sorted(raw.get_children(ctx.root).body.children))


@scenario(slow=True)
def container_never_had_children_survives(ctx: ScenarioContext) -> None:
    """An empty container that never had a child is not deleted."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_container(ctx.path("c"))
    raw.idle(CHECK_INTERVALS)
    ctx.call("still there", raw.exists, ctx.path("c"))


@scenario(slow=True)
def container_with_child_survives(ctx: ScenarioContext) -> None:
    """A container that has a child is not deleted."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_container(ctx.path("c"))
    raw.create(ctx.path("c", "kid"))
    raw.idle(CHECK_INTERVALS)
    ctx.call("still there", raw.exists, ctx.path("c"))
    ctx.call("kid", raw.exists, ctx.path("c", "kid"))


@scenario(slow=True)
def container_deleted_once_emptied(ctx: ScenarioContext) -> None:
    """A container whose last child is deleted is itself deleted; its data watcher
    gets NodeDeleted and its parent's child watcher NodeChildrenChanged."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_container(ctx.path("c"))
    raw.create(ctx.path("c", "kid"))
    watcher = ctx.raw()
    watcher.exists(ctx.path("c"), watch=True)
    watcher.get_children(ctx.root, watch=True)
    raw.delete(ctx.path("c", "kid"))
    ctx.call("events", watcher.wait_events, 2, GONE_DEADLINE)
    ctx.call("gone", raw.exists, ctx.path("c"))
    ctx.call("root stat", raw.exists, ctx.root)


@scenario(slow=True)
def container_nested_cascade(ctx: ScenarioContext) -> None:
    """Nested containers: emptying the inner one deletes it, which empties the outer
    one, which is deleted in turn."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_container(ctx.path("outer"))
    raw.create_container(ctx.path("outer", "inner"))
    raw.create(ctx.path("outer", "inner", "leaf"))
    raw.delete(ctx.path("outer", "inner", "leaf"))
    _wait_gone(ctx, raw, ctx.path("outer", "inner"))
    _wait_gone(ctx, raw, ctx.path("outer"))
    ctx.call("outer", raw.exists, ctx.path("outer"))
    ctx.call("root", raw.exists, ctx.root)


@scenario(slow=True)
def container_recreated_child_in_time(ctx: ScenarioContext) -> None:
    """A container in a multi with its child: the child keeps it alive; deleting the
    child via multi then deletes the container."""
    raw = ctx.raw()
    raw.create(ctx.root)
    ctx.call("multi", raw.multi, [op_container(ctx.path("c")), op_create(ctx.path("c", "k"))])
    raw.idle(1.0)
    ctx.call("alive", raw.exists, ctx.path("c"))
    ctx.call("delete kid", raw.delete, ctx.path("c", "k"))
    _wait_gone(ctx, raw, ctx.path("c"))
    ctx.call("gone", raw.exists, ctx.path("c"))


@scenario()
def container_delete_explicitly(ctx: ScenarioContext) -> None:
    """A container can be deleted by a client like any node; not while it has children."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_container(ctx.path("c"))
    raw.create(ctx.path("c", "k"))
    ctx.call("not empty", raw.delete, ctx.path("c"))
    ctx.call("kid", raw.delete, ctx.path("c", "k"))
    ctx.call("container", raw.delete, ctx.path("c"))


@scenario()
def container_ephemeral_child_and_sequential(ctx: ScenarioContext) -> None:
    """Containers accept ephemeral and sequential children (a lock's usual layout)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_container(ctx.path("lock"))
    ctx.call("eph seq", raw.create, ctx.path("lock", "n-"), b"", None, 3)
    ctx.call("seq", raw.create, ctx.path("lock", "n-"), b"", None, 2)
    ctx.call("stat", raw.exists, ctx.path("lock"))


@scenario()
def ttl_create_and_stat(ctx: ScenarioContext) -> None:
    """createTTL answers like create2; the stat's ephemeralOwner encodes the TTL."""
    raw = ctx.raw()
    raw.create(ctx.root)
    ctx.call("ttl", raw.create_ttl, ctx.path("t"), 60000, b"x")
    ctx.call("ttl seq", raw.create_ttl, ctx.path("s-"), 60000, b"", 6)
    ctx.call("ttl seq 2", raw.create_ttl, ctx.path("s-"), 123456, b"", 6)
    ctx.call("exists", raw.exists, ctx.path("t"))
    ctx.call("children", lambda: sorted(raw.get_children(ctx.root).body.children))


@scenario()
def ttl_bad_arguments(ctx: ScenarioContext) -> None:
    """TTL out of range (0, negative, above 2^40-1 ms) or non-TTL flags are refused."""
    raw = ctx.raw()
    raw.create(ctx.root)
    cases = [
        ("zero", 0, 5),
        ("negative", -5, 5),
        ("max ok", 0xFFFFFFFFFF, 5),
        ("above max", 0xFFFFFFFFFF + 1, 5),
        ("flags persistent", 1000, 0),
        ("flags ephemeral", 1000, 1),
        ("flags sequential", 1000, 2),
        ("flags container", 1000, 4),
        ("flags bogus", 1000, 9),
    ]
    for label, ttl, flags in cases:
        ctx.call(label, raw.create_ttl, ctx.path(label.replace(" ", "_")), ttl, b"", flags)
    ctx.call("plain create ttl flag", raw.create, ctx.path("p5"), b"", None, 5)
    ctx.call("plain create ttl seq flag", raw.create, ctx.path("p6"), b"", None, 6)
    ctx.call("children", lambda: sorted(raw.get_children(ctx.root).body.children))


@scenario()
def ttl_duplicate_and_missing_parent(ctx: ScenarioContext) -> None:
    """createTTL errors like create: NodeExists, NoNode, NoChildrenForEphemerals."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_ttl(ctx.path("t"), 60000)
    ctx.call("dup", raw.create_ttl, ctx.path("t"), 60000)
    ctx.call("no parent", raw.create_ttl, ctx.path("x", "t"), 60000)
    raw.create(ctx.path("e"), b"", None, 1)
    ctx.call("under ephemeral", raw.create_ttl, ctx.path("e", "t"), 60000)


@scenario(slow=True)
def ttl_expires_when_childless(ctx: ScenarioContext) -> None:
    """A childless TTL node not modified for its TTL is deleted; a watcher sees it."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_ttl(ctx.path("t"), 1000)
    watcher = ctx.raw()
    watcher.exists(ctx.path("t"), watch=True)
    ctx.call("events", watcher.wait_events, 1, GONE_DEADLINE)
    ctx.call("gone", raw.exists, ctx.path("t"))


@scenario(slow=True)
def ttl_with_child_survives(ctx: ScenarioContext) -> None:
    """A TTL node with a child is not deleted, even past its TTL; once the child is
    gone it expires."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_ttl(ctx.path("t"), 500)
    raw.create(ctx.path("t", "k"))
    raw.idle(CHECK_INTERVALS)
    ctx.call("alive", raw.exists, ctx.path("t"))
    raw.delete(ctx.path("t", "k"))
    _wait_gone(ctx, raw, ctx.path("t"))
    ctx.call("gone", raw.exists, ctx.path("t"))


@scenario(slow=True)
def ttl_long_survives(ctx: ScenarioContext) -> None:
    """A TTL node with a long TTL survives several check intervals."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_ttl(ctx.path("t"), 600000)
    raw.idle(CHECK_INTERVALS)
    ctx.call("alive", raw.exists, ctx.path("t"))


@scenario()
def ttl_in_multi(ctx: ScenarioContext) -> None:
    """createTTL and createContainer inside a multi answer with create2 results."""
    raw = ctx.raw()
    raw.create(ctx.root)
    ctx.call(
        "multi",
        raw.multi,
        [op_ttl(ctx.path("t"), 60000), op_container(ctx.path("c")), op_ttl(ctx.path("s"), 0)],
    )
    ctx.call(
        "multi ok",
        raw.multi,
        [
            op_ttl(ctx.path("t"), 60000),
            op_container(ctx.path("c")),
            op_ttl(ctx.path("q-"), 5000, 6),
        ],
    )
    ctx.call("children", lambda: sorted(raw.get_children(ctx.root).body.children))


@scenario(slow=True)
def container_and_ttl_deletions_seen_by_recursive_watch(ctx: ScenarioContext) -> None:
    """A recursive watcher sees the background deletions: an emptied container and
    an expired TTL node (each a NodeDeleted, after the child's own NodeDeleted)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create_container(ctx.path("c"))
    raw.create(ctx.path("c", "k"))
    raw.create_ttl(ctx.path("t"), 1000)
    watcher = ctx.raw()
    watcher.add_watch(ctx.root, 1)
    raw.delete(ctx.path("c", "k"))
    watcher.wait_events(3, GONE_DEADLINE)
    watcher.settle()
    first, rest = watcher.events[0], watcher.events[1:]
    ctx.record("first event", first)
    # the container sweep and the TTL sweep may run in either order
    ctx.record("background deletions (sorted)", sorted(rest, key=repr))
