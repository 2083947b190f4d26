"""
The system nodes (/zookeeper, /zookeeper/quota, /zookeeper/config), getConfig,
reconfig and SASL answers of a standalone server, getAllChildrenNumber, and packet
size limits (jute.maxbuffer = 1048575 bytes per frame).
"""

from __future__ import annotations

from tests.support.differential import ScenarioContext, scenario
from tests.support.rawclient import ConnectionClosed
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode

MAX_FRAME = 1048575  # jute.maxbuffer default: largest accepted frame payload


@scenario()
def system_zookeeper_node(ctx: ScenarioContext) -> None:
    """/zookeeper: its data, stat, ACL and children (sorted)."""
    raw = ctx.raw()
    ctx.call("getData", raw.get_data, "/zookeeper")
    ctx.call("children", lambda: sorted(raw.get_children("/zookeeper").body.children))
    ctx.call("getACL", raw.get_acl, "/zookeeper")
    ctx.call("exists", raw.exists, "/zookeeper")


#: The stat fields of /zookeeper/quota that count every quota ever set on the server
#: (its children's creations and deletions): they depend on which scenarios ran before
#: on the same server, and the oracle is shared by layouts whose zkreg servers are not.
_QUOTA_HISTORY_FIELDS = ("cversion", "pzxid")


def _quota_view(reply):
    """A /zookeeper/quota read without its history-dependent stat fields."""
    body = reply.body
    fields = {k: v for k, v in body.as_dict().items() if k != "stat"}
    stat = body.stat.as_dict()
    return {
        "err": reply.err,
        "body": fields,
        "stat": {k: v for k, v in stat.items() if k not in _QUOTA_HISTORY_FIELDS},
    }


@scenario()
def system_quota_node(ctx: ScenarioContext) -> None:
    """/zookeeper/quota: data, stat, children (none until quotas are set); the stat's
    cversion and pzxid are compared by system_quota_nodes, as changes."""
    raw = ctx.raw()
    ctx.call("getData", lambda: _quota_view(raw.get_data("/zookeeper/quota")))
    ctx.call("children", lambda: _quota_view(raw.get_children2("/zookeeper/quota")))
    ctx.call("getACL", lambda: _quota_view(raw.get_acl("/zookeeper/quota")))


@scenario()
def system_config_node(ctx: ScenarioContext) -> None:
    """/zookeeper/config (getConfig): data, stat, ACL of a standalone server without
    dynamic reconfig; watches on it are accepted."""
    raw = ctx.raw()
    ctx.call("getData", raw.get_data, "/zookeeper/config", True)
    ctx.call("getACL", raw.get_acl, "/zookeeper/config")
    ctx.call("children", raw.get_children2, "/zookeeper/config")
    ctx.call("kazoo get", lambda: ctx.client().get("/zookeeper/config"))


@scenario()
def system_nodes_refuse_writes(ctx: ScenarioContext) -> None:
    """Writes to the system nodes: create below /zookeeper, setData and delete of
    /zookeeper/config and /zookeeper/quota, setACL on /zookeeper/config."""
    raw = ctx.raw()
    ctx.call("create under /zookeeper", raw.create, "/zookeeper/mine", b"")
    ctx.call("create under config", raw.create, "/zookeeper/config/x", b"")
    ctx.call("setData config", raw.set_data, "/zookeeper/config", b"x")
    ctx.call("delete config", raw.delete, "/zookeeper/config")
    ctx.call("delete quota", raw.delete, "/zookeeper/quota")
    ctx.call(
        "setACL config", raw.set_acl, "/zookeeper/config", [R.ACL(31, R.Id("world", "anyone"))]
    )
    ctx.call("cleanup", raw.delete, "/zookeeper/mine")


@scenario()
def system_root_children_include_zookeeper(ctx: ScenarioContext) -> None:
    """The root lists "zookeeper"; our own subtree appears after we create it."""
    raw = ctx.raw()
    ctx.call("has zookeeper", lambda: "zookeeper" in raw.get_children("/").body.children)
    raw.create(ctx.root)
    ctx.call("has ours", lambda: ctx.root[1:] in raw.get_children("/").body.children)


@scenario()
def system_reconfig_standalone(ctx: ScenarioContext) -> None:
    """reconfig on a standalone server without reconfigEnabled."""
    raw = ctx.raw()
    ctx.call(
        "reconfig",
        raw.call,
        OpCode.reconfig,
        R.ReconfigRequest("server.1=127.0.0.1:2888:3888", "", "", -1),
    )
    ctx.call("closed", raw.server_closed, 0.5)


@scenario()
def system_sasl_request(ctx: ScenarioContext) -> None:
    """A SASL token (opcode 102) to a server without SASL configured."""
    raw = ctx.raw()
    ctx.call("sasl", raw.call, OpCode.sasl, R.GetSASLRequest(b"token"))
    ctx.call("closed", raw.server_closed, 0.5)


@scenario()
def system_get_all_children_number(ctx: ScenarioContext) -> None:
    """getAllChildrenNumber counts all descendants (not the node itself)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    ctx.call("empty", raw.get_all_children_number, ctx.root)
    for path in ("a", "a/b", "a/b/c", "d", "d/e"):
        raw.create(ctx.path(*path.split("/")))
    raw.create(ctx.path("a", "e1"), b"", None, 1)
    ctx.call("root", raw.get_all_children_number, ctx.root)
    ctx.call("a", raw.get_all_children_number, ctx.path("a"))
    ctx.call("leaf", raw.get_all_children_number, ctx.path("a", "b", "c"))
    ctx.call("missing", raw.get_all_children_number, ctx.path("zz"))
    ctx.call("/zookeeper", raw.get_all_children_number, "/zookeeper")


@scenario()
def system_get_all_children_number_acl(ctx: ScenarioContext) -> None:
    """getAllChildrenNumber on an unreadable node."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("s"), b"", [R.ACL(2, R.Id("world", "anyone"))])
    ctx.call("unreadable", raw.get_all_children_number, ctx.path("s"))


def _create_frame_size(path: str, data_len: int) -> int:
    """The payload size of a create frame (header + request) for this path/data."""
    header = 8
    request = R.CreateRequest(path, b"", [R.ACL(31, R.Id("world", "anyone"))], 0).serialize()
    return header + len(request) + data_len


def _register_size(label: str, delta: int) -> None:
    def run(ctx: ScenarioContext) -> None:
        raw = ctx.raw()
        raw.create(ctx.root)
        path = ctx.path("big")
        data_len = MAX_FRAME - _create_frame_size(path, 0) + delta
        try:
            reply = raw.create(path, b"z" * data_len)
            ctx.record("create", reply)
        except ConnectionClosed:
            ctx.record("create", "connection closed")
        reader = ctx.raw()
        got = reader.get_data(path)
        ctx.record("read back length", len(got.body.data) if got.ok else got.err)
        ctx.record("stat", got.body.stat if got.ok else None)

    run.__doc__ = (
        f"A create whose frame is {delta:+d} bytes from jute.maxbuffer (1048575): "
        "accepted up to the limit, connection closed beyond it."
    )
    scenario(f"size_create_frame_{label}")(run)


for _label, _delta in (
    ("limit_minus_1", -1),
    ("at_limit", 0),
    ("limit_plus_1", 1),
    ("far_over", 100000),
):
    _register_size(_label, _delta)


@scenario()
def size_set_data_near_limit(ctx: ScenarioContext) -> None:
    """setData with 1000000 bytes, read back; then setData far over the limit closes
    the connection and the data is unchanged."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("n"))
    ctx.call("set 1e6", raw.set_data, ctx.path("n"), b"a" * 1000000)
    try:
        ctx.record("set 2e6", raw.set_data(ctx.path("n"), b"b" * 2000000))
    except ConnectionClosed:
        ctx.record("set 2e6", "connection closed")
    reader = ctx.raw()
    got = reader.get_data(ctx.path("n"))
    ctx.record("length", len(got.body.data))
    ctx.record("first byte", got.body.data[:1])


@scenario()
def size_many_large_children_listing(ctx: ScenarioContext) -> None:
    """getChildren whose answer is large (2000 children with 200-char names)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    from tests.integration.scenarios._ops import op_create

    names = [f"{i:05d}" + "x" * 195 for i in range(2000)]
    for start in range(0, 2000, 500):
        raw.multi([op_create(ctx.path(n)) for n in names[start : start + 500]])
    reply = raw.get_children2(ctx.root)
    ctx.record("count", len(reply.body.children))
    ctx.record("equal", sorted(reply.body.children) == names)
    ctx.record("stat", reply.body.stat)


@scenario()
def size_null_data_create(ctx: ScenarioContext) -> None:
    """create and setData with null data (buffer length -1): how the node reads back."""
    raw = ctx.raw()
    raw.create(ctx.root)
    ctx.call("create null", raw.create, ctx.path("n"), None)
    ctx.call("get", raw.get_data, ctx.path("n"))
    raw.create(ctx.path("m"), b"x")
    ctx.call("set null", raw.set_data, ctx.path("m"), None)
    ctx.call("get m", raw.get_data, ctx.path("m"))
    ctx.call("kazoo get", lambda: ctx.client().get(ctx.path("n")))


@scenario()
def system_quota_nodes(ctx: ScenarioContext) -> None:
    """Quota bookkeeping: a zookeeper_limits/zookeeper_stats pair under
    /zookeeper/quota<path> as zkCli setquota writes it; the stats node is updated by
    the server as the quota'd subtree changes (ZooKeeper's DataTree does this)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    quota = "/zookeeper/quota" + ctx.root
    before = raw.get_data("/zookeeper/quota").body.stat
    try:
        created = raw.create(quota, b"")
        ctx.record("create quota dir", created)
        after = raw.get_data("/zookeeper/quota").body.stat
        ctx.record("quota cversion change", after.cversion - before.cversion)
        ctx.record("quota pzxid is the create's", after.pzxid == created.zxid)
        ctx.call("limits", raw.create, quota + "/zookeeper_limits", b"count=10,bytes=-1")
        ctx.call("stats", raw.create, quota + "/zookeeper_stats", b"count=1,bytes=0")
        raw.create(ctx.path("a"), b"12345")
        raw.create(ctx.path("b"), b"")
        raw.set_data(ctx.path("a"), b"1234567")
        raw.delete(ctx.path("b"))
        ctx.call("stats data", raw.get_data, quota + "/zookeeper_stats")
        ctx.call("limits data", raw.get_data, quota + "/zookeeper_limits")
    finally:
        for path in (quota + "/zookeeper_stats", quota + "/zookeeper_limits", quota):
            raw.delete(path)
