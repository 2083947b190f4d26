"""
Path validation through the raw client (kazoo normalises paths before sending them,
so it cannot send most of these).  One scenario per path: every operation taking a
path is tried with it, and each reply (or a closed connection) is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.scenarios._ops import op_create, op_get
from tests.support.differential import ScenarioContext, scenario
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode

#: (label, path builder from the scenario root).  Malformed or suspicious paths.
PATHS: list[tuple[str, Callable[[str], str]]] = [
    ("empty", lambda r: ""),
    ("relative", lambda r: "a"),
    ("relative_nested", lambda r: r[1:] + "/a"),
    ("root", lambda r: "/"),
    ("root_trailing_dot", lambda r: "/."),
    ("double_slash_only", lambda r: "//"),
    ("trailing_slash", lambda r: r + "/"),
    ("trailing_slash_child", lambda r: r + "/a/"),
    ("double_slash", lambda r: r + "//a"),
    ("dot_component", lambda r: r + "/./a"),
    ("dot_last", lambda r: r + "/."),
    ("dotdot_last", lambda r: r + "/.."),
    ("dotdot_middle", lambda r: r + "/../x"),
    ("dot_prefix_ok", lambda r: r + "/.a"),
    ("dotdot_prefix_ok", lambda r: r + "/..a"),
    ("dot_suffix_ok", lambda r: r + "/a."),
    ("space_ok", lambda r: r + "/a b"),
    ("null_char", lambda r: r + "/a\x00b"),
    ("null_only", lambda r: "/\x00"),
    ("control_01", lambda r: r + "/\x01"),
    ("control_1f", lambda r: r + "/a\x1f"),
    ("del_7f", lambda r: r + "/\x7f"),
    ("c1_control_9f", lambda r: r + "/\x9f"),
    ("c1_control_80", lambda r: r + "/\x80"),
    ("a0_nbsp_ok", lambda r: r + "/\xa0"),
    ("bmp_d7ff_ok", lambda r: r + "/\ud7ff"),
    ("private_use_f000", lambda r: r + "/\uf000"),
    ("private_use_f8ff", lambda r: r + "/\uf8ff"),
    ("f900_ok", lambda r: r + "/\uf900"),
    ("specials_fff0", lambda r: r + "/\ufff0"),
    ("specials_fffd", lambda r: r + "/\ufffd"),
    ("nonchar_ffff", lambda r: r + "/\uffff"),
    ("astral_emoji", lambda r: r + "/\U0001f600"),
    ("cjk_ok", lambda r: r + "/名前"),
    ("zookeeper_named_child_ok", lambda r: r + "/zookeeper"),
    ("long_name_ok", lambda r: r + "/" + "n" * 1000),
    ("null_path", lambda r: None),  # type: ignore[return-value, arg-type]
]


#: Paths that are (or may be read as) the tree's root, shared by every scenario: only
#: error codes are recorded for them and nothing is written there.
GLOBAL_PATHS = {"empty", "root", "root_trailing_dot", "double_slash_only", "null_path", "null_only"}


def _try_ops(ctx: ScenarioContext, path: str, global_path: bool = False) -> None:
    """Every path-taking operation with C{path}; reconnects after a closed connection."""
    raw_holder: dict[str, Any] = {"raw": ctx.raw()}
    raw_holder["raw"].create(ctx.root)

    def attempt(label: str, func: Callable[[Any], Any]) -> None:
        if not raw_holder["raw"].connected:
            raw_holder["raw"] = ctx.raw(register_session=False)
        if global_path:
            writes = ("create", "setData", "setACL", "delete", "multi create")
            if any(label.startswith(w) for w in writes) and label != "create":
                return
            if label in ("children of root", "events"):
                return
            ctx.call(label, lambda c: _err_only(func(c)), raw_holder["raw"])
            return
        ctx.call(label, func, raw_holder["raw"])

    attempt("create", lambda c: c.create(path, b"d"))
    attempt("create sequential", lambda c: c.create(path, b"d", flags=2))
    attempt("create2", lambda c: c.create2(path, b"d"))
    attempt("create ephemeral", lambda c: c.create(path, b"d", flags=1))
    attempt("createContainer", lambda c: c.create_container(path))
    attempt("createTTL", lambda c: c.create_ttl(path, 60000))
    attempt("exists", lambda c: c.exists(path))
    attempt("exists watch", lambda c: c.exists(path, watch=True))
    attempt("getData", lambda c: c.get_data(path))
    attempt("setData", lambda c: c.set_data(path, b"x"))
    attempt("getChildren", lambda c: c.get_children(path))
    attempt("getChildren2", lambda c: c.get_children2(path))
    attempt("getACL", lambda c: c.get_acl(path))
    attempt("setACL", lambda c: c.set_acl(path, [R.ACL(31, R.Id("world", "anyone"))]))
    if any(ord(ch) > 0xFFFF for ch in path or ""):
        # ZooKeeper writes strings with its own encoder, which turns a character
        # beyond the BMP into two 3-byte surrogates (CESU-8, not UTF-8): its sync
        # reply echoing such a path cannot be decoded as UTF-8.  Compare the code.
        attempt("sync", lambda c: _err_or_undecodable(c, path))
    else:
        attempt("sync", lambda c: c.sync(path))
    attempt("getAllChildrenNumber", lambda c: c.get_all_children_number(path))
    attempt("getEphemerals", lambda c: c.get_ephemerals(path))
    attempt("addWatch", lambda c: c.add_watch(path, 0))
    attempt("checkWatches", lambda c: c.check_watches(path, 3))
    attempt("removeWatches", lambda c: c.remove_watches(path, 3))
    attempt("multi create", lambda c: c.multi([op_create(path)]))
    attempt("multiRead get", lambda c: c.multi_read([op_get(path)]))
    attempt("delete", lambda c: c.delete(path))
    attempt("children of root", lambda c: sorted(c.get_children(ctx.root).body.children))
    attempt("events", lambda c: c.events)


def _err_or_undecodable(raw: Any, path: str) -> Any:
    """Sync C{path}; an undecodable reply (CESU-8 from ZooKeeper) counts as OK."""
    from zkreg.proto.jute import DecodeError

    try:
        return raw.sync(path).err
    except DecodeError:
        return 0


def _err_only(reply: Any) -> Any:
    """The error name of a reply (for paths whose contents are shared state)."""
    return getattr(reply, "err", reply)


def _register(label: str, build: Callable[[str], str]) -> None:
    def run(ctx: ScenarioContext) -> None:
        _try_ops(ctx, build(ctx.root), global_path=label in GLOBAL_PATHS)

    run.__doc__ = f"Every path operation on the {label.replace('_', ' ')} path."
    scenario(f"path_{label}")(run)


for _label, _build in PATHS:
    _register(_label, _build)


@scenario()
def path_sequential_suffix_on_trailing_slash(ctx: ScenarioContext) -> None:
    """A sequential create of "<parent>/" makes a child named by the number alone,
    and a plain create of the same path is refused."""
    raw = ctx.raw()
    raw.create(ctx.root)
    ctx.call("seq", raw.create, ctx.root + "/", b"", None, 2)
    ctx.call("seq again", raw.create, ctx.root + "/", b"", None, 2)
    ctx.call("ephemeral seq", raw.create, ctx.root + "/", b"", None, 3)
    ctx.call("plain", raw.create, ctx.root + "/", b"", None, 0)
    ctx.call("children", lambda: sorted(raw.get_children(ctx.root).body.children))


@scenario()
def path_sequential_with_bad_component(ctx: ScenarioContext) -> None:
    """Sequential creates whose prefix has "." components or "//" are refused."""
    raw = ctx.raw()
    raw.create(ctx.root)
    for label, suffix in (("dot", "/./"), ("dotdot", "/../"), ("double", "//"), ("nul", "/\x00")):
        ctx.call(label, raw.create, ctx.root + suffix, b"", None, 2)
    ctx.call("root stat", raw.exists, ctx.root)


@scenario()
def path_invalid_utf8_bytes(ctx: ScenarioContext) -> None:
    """A create whose path bytes are not UTF-8: ZooKeeper decodes leniently (the
    replacement character) - the reply, or a closed connection, is compared."""
    raw = ctx.raw()
    raw.create(ctx.root)
    bad = ctx.root.encode() + b"/\xff\xfe"
    body = bytearray()
    body += len(bad).to_bytes(4, "big") + bad
    body += (0).to_bytes(4, "big")  # empty data
    body += (1).to_bytes(4, "big")  # one ACL
    body += R.ACL(31, R.Id("world", "anyone")).serialize()
    body += (0).to_bytes(4, "big")
    ctx.call("create", raw.call, OpCode.create, bytes(body))
    ctx.call("closed", raw.server_closed, 1.0)
