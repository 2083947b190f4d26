"""
Connect strings, path rules, chroot mapping, the client watch table, and Curator's
protected names and path joins.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curatorish.connection import (
    Chroot,
    HostRotation,
    WatchManager,
    parse_connect_string,
    paths,
    validate_path,
)
from curatorish.connection.paths import check_path_rules
from curatorish.node_names import (
    is_protected_name,
    make_path,
    normalize_protected,
    protected_name,
    split_path,
)
from zkreg.proto.consts import EventType, WatcherType


def test_connect_string_hosts_ports_and_chroot() -> None:
    parsed = parse_connect_string("a:1, b ,[::1]:3/app/x")
    assert parsed.hosts == (("a", 1), ("b", 2181), ("::1", 3))
    assert parsed.chroot == "/app/x"
    assert parse_connect_string("h:5/").chroot is None
    assert str(parsed) == "a:1,b:2181,[::1]:3/app/x"
    for bad in ("", "h:0", "h:1/a/", "h:1/a//b"):
        with pytest.raises(ValueError):
            parse_connect_string(bad)


def test_host_rotation_is_shuffled_and_reports_full_rounds() -> None:
    hosts = tuple((f"h{i}", i) for i in range(8))
    rotation = HostRotation(hosts, random.Random(1))
    assert sorted(rotation.hosts) == sorted(hosts) and rotation.hosts != list(hosts)
    seen = [rotation.next() for _ in range(8)]
    assert sorted(seen) == sorted(hosts) and rotation.round_complete
    rotation.on_connected()
    assert not rotation.round_complete


def test_path_validation() -> None:
    for good in ("/", "/a", "/a/b-c", "/zookeeper/config"):
        validate_path(good)
    validate_path("/a/", sequential=True)
    for bad in ("", "a", "/a/", "//a", "/a/./b", "/a/../b", "/a\x00b", "/a\ud800"):
        with pytest.raises(ValueError):
            validate_path(bad)


def _verdict(check: object, path: str, sequential: bool) -> str | None:
    try:
        check(path, sequential)  # type: ignore[operator]
    except ValueError as error:
        return str(error)
    return None


@given(
    st.text(
        alphabet=st.sampled_from(
            [
                "/",
                ".",
                "a",
                "-",
                "\x00",
                "\x1f",
                "\x7f",
                "\x9f",
                "\xa0",
                "\ud800",
                "\uf8ff",
                "\uf900",
                "\ufff0",
                "\uffff",
                "\u00e9",
            ]
        ),
        max_size=12,
    ),
    st.booleans(),
)
def test_path_validation_shortcut_agrees_with_the_rules(path: str, sequential: bool) -> None:
    """
    validate_path accepts plain paths with one regular expression, and paths it
    accepted lately by a set lookup: it must accept and refuse exactly what the
    rule-by-rule check does, with the same message, however it was asked before
    (a path accepted as sequential is not remembered as accepted for a plain one).
    """
    for asked in (sequential, not sequential, sequential):
        assert _verdict(validate_path, path, asked) == _verdict(check_path_rules, path, asked)


def test_accepted_paths_remembered_stay_few() -> None:
    """The set of paths accepted lately is emptied when full, never grows past it."""
    for index in range(paths._ACCEPTED_MAX * 2 + 10):
        validate_path(f"/bound/{index}")
        assert len(paths._ACCEPTED) <= paths._ACCEPTED_MAX
    assert "/bound/0" not in paths._ACCEPTED
    with pytest.raises(ValueError):
        validate_path("/bound/0/")


def test_chroot_mapping() -> None:
    chroot = Chroot("/app")
    assert chroot.to_server("/") == "/app" and chroot.to_server("/x") == "/app/x"
    assert chroot.to_client("/app") == "/" and chroot.to_client("/app/x/y") == "/x/y"
    assert chroot.to_client("/apple") == "/apple"
    assert Chroot(None).to_server("/x") == "/x"


def test_watch_manager_materializes_like_zookeeper() -> None:
    watches = WatchManager()
    calls: list[str] = []

    def watcher(name: str):
        def watch(event: object) -> None:
            calls.append(name)

        return watch

    data, child, exist, persistent, recursive = (
        watcher(n) for n in ("data", "child", "exist", "persistent", "recursive")
    )
    watches.add("data", "/a", data)
    watches.add("child", "/a", child)
    watches.add("exist", "/b", exist)
    watches.add("persistent", "/a", persistent)
    watches.add("persistent_recursive", "/", recursive)
    assert watches.materialize(EventType.NodeChildrenChanged, "/a") == [child, persistent]
    assert watches.materialize(EventType.NodeDataChanged, "/a") == [data, persistent, recursive]
    assert watches.materialize(EventType.NodeDataChanged, "/a") == [persistent, recursive]
    assert watches.materialize(EventType.NodeCreated, "/b") == [exist, recursive]
    assert watches.materialize(EventType.NodeCreated, "/b") == [recursive]
    assert watches.paths("persistent_recursive") == ["/"]
    removed = watches.remove("/a", None, WatcherType.Any)
    assert removed == [(persistent, EventType.PersistentWatchRemoved)]
    assert watches.contains("/", recursive, WatcherType.PersistentRecursive)
    assert not watches.contains("/", recursive, WatcherType.Children)
    assert watches.clear() == [recursive] and watches.is_empty()


def test_one_watcher_registered_twice_is_called_once() -> None:
    watches = WatchManager()

    def watcher(event: object) -> None:
        pass

    watches.add("data", "/a", watcher)
    watches.add("data", "/a", watcher)
    watches.add("child", "/a", watcher)
    assert watches.materialize(EventType.NodeDeleted, "/a") == [watcher]


def test_protected_names_and_paths() -> None:
    uid = "3f2a4b6c-1d2e-4f30-8a9b-0c1d2e3f4a5b"
    name = protected_name("lock-", uid)
    assert name == f"_c_{uid}-lock-"
    assert is_protected_name(name + "0000000001")
    assert not is_protected_name("_c_not-a-uuid-lock")
    assert normalize_protected(name + "0000000001") == "lock-0000000001"
    assert make_path("/a/", "b") == "/a/b" and make_path("/", "b") == "/b"
    assert make_path("a", None) == "/a" and make_path("/", None) == "/"
    assert split_path("/a/b") == ("/a", "b") and split_path("/a") == ("/", "a")
