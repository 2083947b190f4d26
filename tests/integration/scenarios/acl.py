"""
ACLs: world, auth, digest (with addauth), ip, super digest; NoAuth per operation and
permission bit; InvalidACL; getACL/setACL and aversion.
"""

from __future__ import annotations

import base64
import hashlib

from tests.integration.scenarios._ops import acl
from tests.support.differential import ScenarioContext, scenario

READ, WRITE, CREATE, DELETE, ADMIN, ALL = 1, 2, 4, 8, 16, 31


def digest_id(user: str, password: str) -> str:
    """The id of a digest ACL: user:base64(sha1(user:password))."""
    hashed = base64.b64encode(hashlib.sha1(f"{user}:{password}".encode()).digest()).decode()
    return f"{user}:{hashed}"


def _acl_set(reply) -> object:
    """
    A getACL reply with its ACL entries sorted.  ZooKeeper expands the "auth" scheme
    by iterating the session's auth ids, a hash set, so the order of the resulting
    entries is unspecified: compare them as a set (with the stat).
    """
    if not reply.ok:
        return reply
    entries = sorted((a.perms, a.id.scheme, a.id.id) for a in reply.body.acl)
    return {"acl (sorted)": entries, "stat": reply.body.stat}


def _who_set(reply) -> object:
    """
    A whoAmI reply with its ids sorted: ZooKeeper keeps a session's auth ids in a
    hash set, so their order is unspecified.
    """
    if not reply.ok:
        return reply
    return sorted((i.authScheme, i.user) for i in reply.body.clientInfo)


def _every_op(ctx: ScenarioContext, raw, node: str) -> None:
    """Try every operation on C{node} (which has a child "k") and record the replies."""
    ctx.call("getData", raw.get_data, node)
    ctx.call("exists", raw.exists, node)
    ctx.call("getChildren", raw.get_children, node)
    ctx.call("getChildren2", raw.get_children2, node)
    ctx.call("getAllChildrenNumber", raw.get_all_children_number, node)
    ctx.call("getACL", raw.get_acl, node)
    ctx.call("setData", raw.set_data, node, b"new")
    ctx.call("create child", raw.create, node + "/n", b"")
    ctx.call("delete child", raw.delete, node + "/k")
    ctx.call("addWatch", raw.add_watch, node, 0)
    ctx.call("sync", raw.sync, node)
    ctx.call("setACL", raw.set_acl, node, [acl(ALL)])
    ctx.call("delete node itself", raw.delete, node + "_sibling")


def _register_perm(label: str, perms: int) -> None:
    def run(ctx: ScenarioContext) -> None:
        owner = ctx.raw()
        owner.create(ctx.root)
        owner.create(ctx.path("n"), b"d")
        owner.create(ctx.path("n", "k"))
        owner.create(ctx.path("n_sibling"))
        owner.set_acl(ctx.path("n"), [acl(perms)])
        _every_op(ctx, ctx.raw(), ctx.path("n"))

    run.__doc__ = f"A node whose only world permission is {label}: every operation."
    scenario(f"acl_world_only_{label}")(run)


for _label, _perms in (
    ("none", 0),
    ("read", READ),
    ("write", WRITE),
    ("create", CREATE),
    ("delete", DELETE),
    ("admin", ADMIN),
    ("read_admin", READ | ADMIN),
    ("all", ALL),
):
    _register_perm(_label, _perms)


@scenario()
def acl_digest_with_addauth(ctx: ScenarioContext) -> None:
    """A digest ACL admits the session that added matching auth, and no other."""
    owner = ctx.raw()
    owner.create(ctx.root)
    ctx.call("create", owner.create, ctx.path("d"), b"s", [acl(ALL, "digest", digest_id("u", "p"))])
    stranger = ctx.raw()
    ctx.call("stranger get", stranger.get_data, ctx.path("d"))
    ctx.call("stranger set", stranger.set_data, ctx.path("d"), b"x")
    friend = ctx.raw()
    ctx.call("addauth", friend.add_auth, "digest", b"u:p")
    ctx.call("friend get", friend.get_data, ctx.path("d"))
    ctx.call("friend set", friend.set_data, ctx.path("d"), b"x")
    ctx.call("friend getACL", friend.get_acl, ctx.path("d"))
    wrong = ctx.raw()
    ctx.call("addauth wrong password", wrong.add_auth, "digest", b"u:wrong")
    ctx.call("wrong get", wrong.get_data, ctx.path("d"))


@scenario()
def acl_auth_scheme_creator(ctx: ScenarioContext) -> None:
    """The "auth" scheme expands to the creator's digest ids; without any
    authenticated id the ACL is invalid."""
    anon = ctx.raw()
    anon.create(ctx.root)
    ctx.call("anonymous auth acl", anon.create, ctx.path("a"), b"", [acl(ALL, "auth", "")])
    creator = ctx.raw()
    creator.add_auth("digest", b"alice:pw")
    ctx.call("creator auth acl", creator.create, ctx.path("b"), b"", [acl(ALL, "auth", "")])
    ctx.call("getACL", lambda: _acl_set(creator.get_acl(ctx.path("b"))))
    creator.add_auth("digest", b"bob:pw2")
    ctx.call("two ids", creator.create, ctx.path("c"), b"", [acl(READ, "auth", "ignored")])
    ctx.call("getACL two", lambda: _acl_set(creator.get_acl(ctx.path("c"))))
    ctx.call("anon read b", anon.get_data, ctx.path("b"))
    ctx.call("setACL auth", creator.set_acl, ctx.path("b"), [acl(READ | ADMIN, "auth", "")])
    ctx.call("getACL after setACL", lambda: _acl_set(creator.get_acl(ctx.path("b"))))


@scenario()
def acl_ip_scheme(ctx: ScenarioContext) -> None:
    """ip ACLs: exact loopback, a /8 covering it, a foreign address, malformed ones."""
    raw = ctx.raw()
    raw.create(ctx.root)
    cases = [
        ("loopback", "127.0.0.1"),
        ("loopback8", "127.0.0.0/8"),
        ("foreign", "10.1.2.3"),
        ("foreign24", "10.1.2.0/24"),
        ("bad", "not-an-ip"),
        ("bad mask", "127.0.0.1/40"),
        ("ipv6", "::1"),
    ]
    for label, ident in cases:
        ctx.call(
            f"create {label}",
            raw.create,
            ctx.path(label.replace(" ", "_")),
            b"x",
            [acl(READ | ADMIN, "ip", ident)],
        )
        ctx.call(f"read {label}", raw.get_data, ctx.path(label.replace(" ", "_")))


@scenario()
def acl_invalid(ctx: ScenarioContext) -> None:
    """Invalid ACLs: empty list, unknown scheme, world with another id, digest id
    without a colon, null id: InvalidACL on create and setACL."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("n"))
    cases = [
        ("empty", []),
        ("unknown scheme", [acl(ALL, "nosuch", "x")]),
        ("world other id", [acl(ALL, "world", "someone")]),
        ("digest no colon", [acl(ALL, "digest", "nocolon")]),
        ("perms zero ok", [acl(0)]),
        ("perms high bits", [acl(0x7FFFFFFF)]),
        ("perms negative", [acl(-1)]),
        ("super scheme", [acl(ALL, "super", "x")]),
        ("sasl scheme", [acl(ALL, "sasl", "x")]),
        ("x509 scheme", [acl(ALL, "x509", "CN=x")]),
        ("mixed valid invalid", [acl(ALL), acl(ALL, "nosuch", "x")]),
    ]
    for label, acl_list in cases:
        name = label.replace(" ", "_")
        ctx.call(f"create {label}", raw.create, ctx.path(name), b"", acl_list)
        ctx.call(f"setACL {label}", raw.set_acl, ctx.path("n"), acl_list)
        ctx.call(f"getACL {label}", raw.get_acl, ctx.path(name))
    ctx.call("final acl of n", raw.get_acl, ctx.path("n"))


@scenario()
def acl_null_acl_list(ctx: ScenarioContext) -> None:
    """A create whose ACL vector is null (-1) is refused (or closes the connection)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    from zkreg.proto import records as R
    from zkreg.proto.consts import OpCode

    ctx.call(
        "create null acl", raw.call, OpCode.create, R.CreateRequest(ctx.path("a"), b"", None, 0)
    )


@scenario()
def acl_duplicates_and_order(ctx: ScenarioContext) -> None:
    """An ACL list with duplicates and several entries comes back as ZooKeeper keeps
    it (order and duplicate removal compared)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    entries = [
        acl(READ),
        acl(READ),
        acl(ALL, "digest", digest_id("u", "p")),
        acl(READ, "ip", "127.0.0.1"),
        acl(ALL, "digest", digest_id("u", "p")),
    ]
    ctx.call("create", raw.create, ctx.path("a"), b"", entries)
    ctx.call("getACL", raw.get_acl, ctx.path("a"))
    ctx.call("setACL", raw.set_acl, ctx.path("a"), list(reversed(entries)))
    ctx.call("getACL after", raw.get_acl, ctx.path("a"))


@scenario()
def acl_aversion_and_stat(ctx: ScenarioContext) -> None:
    """setACL bumps aversion only (not version/mzxid? compared), with version checks."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("a"), b"d")
    ctx.call("setACL v0", raw.set_acl, ctx.path("a"), [acl(ALL)], 0)
    ctx.call("setACL v0 stale", raw.set_acl, ctx.path("a"), [acl(ALL)], 0)
    ctx.call("setACL v1", raw.set_acl, ctx.path("a"), [acl(READ | ADMIN)], 1)
    ctx.call("getACL", raw.get_acl, ctx.path("a"))
    ctx.call("setData denied", raw.set_data, ctx.path("a"), b"x")
    ctx.call("setACL missing", raw.set_acl, ctx.path("zz"), [acl(ALL)])
    ctx.call("setACL missing v3", raw.set_acl, ctx.path("zz"), [acl(ALL)], 3)
    ctx.call("getACL missing", raw.get_acl, ctx.path("zz"))
    ctx.call("exists", raw.exists, ctx.path("a"))


@scenario()
def acl_delete_needs_parent_delete_perm(ctx: ScenarioContext) -> None:
    """Deleting a node needs DELETE on its parent, not on the node."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("p"))
    raw.create(ctx.path("p", "locked"), b"", [acl(0)])
    ctx.call("delete locked child", raw.delete, ctx.path("p", "locked"))
    raw.create(ctx.path("q"), b"", [acl(READ | CREATE)])
    raw.create(ctx.path("q", "open"))
    ctx.call("delete open child of no-delete parent", raw.delete, ctx.path("q", "open"))


@scenario()
def acl_addauth_unknown_scheme(ctx: ScenarioContext) -> None:
    """addauth with an unknown scheme fails with AuthFailed, an AuthFailed event, and
    the connection is closed."""
    raw = ctx.raw()
    ctx.call("addauth", raw.add_auth, "nosuch", b"x")
    ctx.call("closed", raw.server_closed, 3.0)
    ctx.record("events", raw.events)


@scenario()
def acl_addauth_digest_malformed(ctx: ScenarioContext) -> None:
    """addauth digest without a colon, and an empty one."""
    raw = ctx.raw()
    ctx.call("addauth no colon", raw.add_auth, "digest", b"nocolon")
    ctx.call("closed", raw.server_closed, 1.0)
    raw2 = ctx.raw()
    ctx.call("addauth empty", raw2.add_auth, "digest", b"")
    ctx.call("closed2", raw2.server_closed, 1.0)


@scenario()
def acl_addauth_ip_and_world(ctx: ScenarioContext) -> None:
    """addauth with schemes that are not for addauth: ip, world."""
    raw = ctx.raw()
    ctx.call("addauth ip", raw.add_auth, "ip", b"127.0.0.1")
    ctx.call("closed", raw.server_closed, 1.0)
    raw2 = ctx.raw()
    ctx.call("addauth world", raw2.add_auth, "world", b"anyone")
    ctx.call("closed2", raw2.server_closed, 1.0)


@scenario()
def acl_who_am_i(ctx: ScenarioContext) -> None:
    """whoAmI lists the ip id, and the digest ids added (as a set), no duplicates."""
    raw = ctx.raw()
    ctx.call("anonymous", raw.who_am_i)
    raw.add_auth("digest", b"alice:pw")
    ctx.call("alice", lambda: _who_set(raw.who_am_i()))
    raw.add_auth("digest", b"bob:pw")
    ctx.call("alice and bob", lambda: _who_set(raw.who_am_i()))
    raw.add_auth("digest", b"alice:pw")
    ctx.call("alice again", lambda: _who_set(raw.who_am_i()))


@scenario()
def acl_kazoo_default_and_auth_data(ctx: ScenarioContext) -> None:
    """kazoo with auth_data and default_acl: the created node's ACL and access."""
    from kazoo.security import make_digest_acl

    owner = ctx.client(auth_data=[("digest", "carol:pw")])
    owner.create(ctx.root)
    ctx.call(
        "create", owner.create, ctx.path("a"), b"x", acl=[make_digest_acl("carol", "pw", all=True)]
    )
    ctx.call("getACL", owner.get_acls, ctx.path("a"))
    other = ctx.client()
    ctx.call("other get", other.get, ctx.path("a"))
    ctx.call("other addauth", other.add_auth, "digest", "carol:pw")
    ctx.call("other get after", other.get, ctx.path("a"))


@scenario(needs_super=True)
def acl_super_digest(ctx: ScenarioContext) -> None:
    """The super user (digest matching the server's superDigest) passes every ACL."""
    owner = ctx.raw()
    owner.create(ctx.root)
    owner.create(ctx.path("locked"), b"s", [acl(0)])
    owner.create(ctx.path("digest"), b"d", [acl(ALL, "digest", digest_id("u", "p"))])
    nobody = ctx.raw()
    ctx.call("nobody get", nobody.get_data, ctx.path("locked"))
    admin = ctx.raw()
    ctx.call("addauth super", admin.add_auth, "digest", b"super:super-secret")
    ctx.call("who", lambda: _who_set(admin.who_am_i()))
    ctx.call("super get", admin.get_data, ctx.path("locked"))
    ctx.call("super set", admin.set_data, ctx.path("locked"), b"x")
    ctx.call("super create child", admin.create, ctx.path("locked", "k"))
    ctx.call("super getACL", admin.get_acl, ctx.path("digest"))
    ctx.call("super setACL", admin.set_acl, ctx.path("digest"), [acl(ALL)])
    ctx.call("super delete child", admin.delete, ctx.path("locked", "k"))
    wrong = ctx.raw()
    ctx.call("addauth super wrong", wrong.add_auth, "digest", b"super:nope")
    ctx.call("wrong get", wrong.get_data, ctx.path("locked"))


@scenario()
def acl_digest_odd_credentials(ctx: ScenarioContext) -> None:
    """Digest credentials with a colon in the password and non-ASCII user names: the
    id is split at the first colon and hashed as UTF-8."""
    owner = ctx.raw()
    owner.create(ctx.root)
    cases = [("colon", "u", "p:q"), ("unicode", "jürgen", "pässwörd"), ("empty password", "e", "")]
    for label, user, password in cases:
        name = label.replace(" ", "_")
        ctx.call(
            f"create {label}",
            owner.create,
            ctx.path(name),
            b"x",
            [acl(ALL, "digest", digest_id(user, password))],
        )
        friend = ctx.raw()
        ctx.call(f"addauth {label}", friend.add_auth, "digest", f"{user}:{password}".encode())
        ctx.call(f"read {label}", friend.get_data, ctx.path(name))
        ctx.call(f"who {label}", lambda f=friend: _who_set(f.who_am_i()))
