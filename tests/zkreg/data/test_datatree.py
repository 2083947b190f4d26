"""
The DataTree: stats moved exactly as ZooKeeper's DataTree moves them, watch events,
system nodes, ephemerals, containers/TTL bookkeeping and determinism.
"""

from __future__ import annotations

from datahelpers import OPEN, Harness, replay

from zkreg.data import codes
from zkreg.data.codes import CONTAINER_EPHEMERAL_OWNER, ttl_ephemeral_owner
from zkreg.data.tree import DataTree
from zkreg.proto.records import ACL, CreateTxn, Id, Stat, TxnHeader

CREATED, DELETED, CHANGED, CHILDREN = 1, 2, 3, 4


def test_fresh_tree_has_zookeepers_system_nodes():
    """/, /zookeeper, /zookeeper/quota, /zookeeper/config as a standalone 3.8 shows them."""
    tree = DataTree()
    assert sorted(tree.nodes) == ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
    root = tree.stat_of(tree.get("/"))
    # stored cversion 0 with one child reads as -1 (DataNode.copyStat).
    assert root == Stat(0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0)
    assert tree.stat_of(tree.get("/zookeeper")).cversion == -2
    config = tree.get("/zookeeper/config")
    assert config.data == b""
    assert tree.stat_of(config).aversion == -1
    assert list(config.acl) == [ACL(codes.PERM_READ, Id("world", "anyone"))]
    assert list(tree.get("/").acl) == OPEN
    assert tree.last_zxid == 0


def test_create_moves_node_and_parent_stats():
    h = Harness()
    result = h.create("/a", b"data")
    assert result.err == 0 and result.path == "/a"
    stat = h.stat("/a")
    assert (stat.czxid, stat.mzxid, stat.pzxid) == (1, 1, 1)
    assert stat.ctime == stat.mtime == h.time
    assert (stat.version, stat.cversion, stat.aversion) == (0, 0, 0)
    assert (stat.dataLength, stat.numChildren, stat.ephemeralOwner) == (4, 0, 0)
    assert result.stat == stat
    root = h.stat("/")
    assert root.pzxid == 1
    assert root.cversion == 0  # stored 1, two children
    assert root.numChildren == 2
    assert result.events == [(CREATED, "/a"), (CHILDREN, "/")]


def test_set_data_moves_mzxid_mtime_version_only():
    h = Harness()
    h.create("/a", b"x")
    h.create("/a/b")
    before = h.stat("/a")
    result = h.set_data("/a", b"longer data")
    after = h.stat("/a")
    assert result.stat == after
    assert after.mzxid == 3 and after.version == 1 and after.mtime == h.time
    assert after.dataLength == 11
    assert (after.czxid, after.ctime, after.pzxid, after.cversion, after.aversion) == (
        before.czxid,
        before.ctime,
        before.pzxid,
        before.cversion,
        before.aversion,
    )
    assert result.events == [(CHANGED, "/a")]


def test_delete_moves_parent_pzxid_but_not_stored_cversion():
    """Delete leaves the stored cversion: the visible one (2*stored - children) rises."""
    h = Harness()
    h.create("/p")
    h.create("/p/a")
    h.create("/p/b")
    assert h.stat("/p").cversion == 2  # stored 2, 2 children
    result = h.delete("/p/a")
    assert result.events == [(DELETED, "/p/a"), (CHILDREN, "/p")]
    stat = h.stat("/p")
    assert stat.pzxid == 4
    assert stat.numChildren == 1
    assert stat.cversion == 3  # stored 2, 1 child
    assert h.tree.get("/p").cversion == 2


def test_set_acl_moves_aversion_only_and_fires_nothing():
    h = Harness()
    h.create("/a")
    acl = [ACL(codes.PERM_READ, Id("world", "anyone"))]
    result = h.set_acl("/a", acl)
    assert result.err == 0 and result.events == []
    stat = h.stat("/a")
    assert stat.aversion == 1 and stat.mzxid == 1 and stat.version == 0
    assert list(h.tree.get("/a").acl) == acl


def test_null_and_empty_data_stay_distinct():
    h = Harness()
    h.create("/null", None)
    h.create("/empty", b"")
    assert h.tree.get("/null").data is None
    assert h.tree.get("/empty").data == b""
    assert h.stat("/null").dataLength == 0


def test_ephemerals_tracked_by_session_and_shown_with_owner():
    h = Harness()
    h.create_session(7)
    h.create("/e1", flags=codes.FLAG_EPHEMERAL, session_id=7)
    h.create("/e2", flags=codes.FLAG_EPHEMERAL, session_id=7)
    assert h.tree.ephemerals_of(7) == ["/e1", "/e2"]
    assert h.stat("/e1").ephemeralOwner == 7
    h.delete("/e1")
    assert h.tree.ephemerals_of(7) == ["/e2"]


def test_close_session_removes_its_ephemerals_with_events():
    h = Harness()
    h.create_session(7)
    h.create_session(8)
    h.create("/p")
    h.create("/p/e", flags=codes.FLAG_EPHEMERAL, session_id=7)
    h.create("/keep", flags=codes.FLAG_EPHEMERAL, session_id=8)
    assert h.tree.sessions == {7: 10000, 8: 10000}
    hdr_txn = h.prep_only(codes.OP_CLOSE_SESSION, None, session_id=7)
    assert list(hdr_txn[1].paths2Delete) == ["/p/e"]
    result = h.apply(*hdr_txn)
    assert result.closed_session == 7
    assert result.events == [(DELETED, "/p/e"), (CHILDREN, "/p")]
    assert h.tree.get("/p/e") is None and h.tree.get("/keep") is not None
    assert h.tree.sessions == {8: 10000}
    assert h.stat("/p").pzxid == hdr_txn[0].zxid
    assert 7 not in h.tree.ephemerals


def test_close_session_txn_without_paths_still_deletes_local_ephemerals():
    """A closeSession logged without paths (older format) deletes what the tree knows."""
    h = Harness()
    h.create("/e", flags=codes.FLAG_EPHEMERAL, session_id=5)
    result = h.tree.apply(TxnHeader(5, 0, 99, 0, codes.OP_CLOSE_SESSION), None)
    assert result.events == [(DELETED, "/e"), (CHILDREN, "/")]
    assert h.tree.last_zxid == 99


def test_container_and_ttl_owners_are_hidden_from_clients():
    h = Harness(extended_types=True)
    h.run(codes.OP_CREATE_CONTAINER, _create("/c", codes.FLAG_CONTAINER))
    h.create("/t", flags=codes.FLAG_PERSISTENT_WITH_TTL, ttl=5000)
    assert h.tree.get("/c").ephemeral_owner == CONTAINER_EPHEMERAL_OWNER
    assert h.tree.get("/t").ephemeral_owner == ttl_ephemeral_owner(5000)
    assert h.stat("/c").ephemeralOwner == 0
    assert h.stat("/t").ephemeralOwner == 0
    assert list(h.tree.containers) == ["/c"]
    assert list(h.tree.ttls) == ["/t"]
    h.delete("/c")
    h.delete("/t")
    assert not h.tree.containers and not h.tree.ttls


def test_ttl_owner_encoding_matches_zookeeper():
    # EphemeralType.TTL.toEphemeralOwner(100) == 0xff00000000000064 as a Java long.
    assert ttl_ephemeral_owner(100) == 0xFF00000000000064 - (1 << 64)
    assert codes.ttl_of(ttl_ephemeral_owner(100)) == 100


def test_count_descendants_as_get_all_children_number():
    h = Harness()
    h.create("/a")
    h.create("/a/b")
    h.create("/a/b/c")
    h.create("/a/d")
    assert h.tree.count_descendants("/a") == 3
    assert h.tree.count_descendants("/a/b/c") == 0
    # "/" counts every node but the root, system nodes included (nodes.size() - 2).
    assert h.tree.count_descendants("/") == 7
    assert h.tree.count_descendants("/zookeeper") == 2


def test_replayed_create_of_existing_node_still_moves_parent_cversion():
    """ZooKeeper's fuzzy-snapshot rule: a NodeExists create txn sets cversion/pzxid."""
    tree = DataTree()
    acl = OPEN
    tree.apply(TxnHeader(1, 1, 1, 5, codes.OP_CREATE), CreateTxn("/a", b"", acl, False, 1))
    result = tree.apply(TxnHeader(1, 2, 2, 6, codes.OP_CREATE), CreateTxn("/a", b"", acl, False, 5))
    assert result.err == codes.NODE_EXISTS
    assert tree.get("/").cversion == 5 and tree.get("/").pzxid == 2


def test_same_log_gives_same_digest_and_different_log_does_not():
    h = Harness()
    h.create_session(3)
    h.create("/a", b"1")
    h.create("/a/s-", flags=codes.FLAG_PERSISTENT_SEQUENTIAL)
    h.create("/a/e", flags=codes.FLAG_EPHEMERAL, session_id=3)
    h.set_data("/a", b"2")
    h.set_acl("/a", [ACL(31, Id("digest", "u:h"))])
    h.multi([(codes.OP_CREATE, _create("/b")), (codes.OP_DELETE, _delete("/nope"))])
    h.delete("/a/s-0000000000")
    h.close_session(3)
    copy = replay(h.log)
    assert copy.digest() == h.tree.digest()
    assert copy.sessions == h.tree.sessions
    assert sorted(copy.nodes) == sorted(h.tree.nodes)
    h.set_data("/a", b"3")
    assert copy.digest() != h.tree.digest()


def test_error_txn_only_advances_zxid():
    h = Harness()
    before = h.tree.digest()
    result = h.delete("/missing")
    assert result.err == codes.NO_NODE and result.events == []
    assert h.tree.last_zxid == 1
    assert h.tree.digest() != before  # the zxid moved
    assert sorted(h.tree.nodes) == ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]


def test_acls_are_shared_between_nodes():
    h = Harness()
    h.create("/a")
    h.create("/b")
    assert h.tree.get("/a").acl is h.tree.get("/b").acl


def test_iter_nodes_lists_parents_before_children():
    h = Harness()
    h.create("/a")
    h.create("/a/b")
    order = [path for path, _ in h.tree.iter_nodes()]
    assert order.index("/a") < order.index("/a/b")
    assert order[0] == "/" and len(order) == len(h.tree.nodes)


def _create(path, flags=0):
    from zkreg.proto.records import CreateRequest

    return CreateRequest(path, b"", OPEN, flags)


def _delete(path, version=-1):
    from zkreg.proto.records import DeleteRequest

    return DeleteRequest(path, version)


def test_stat_bytes_are_the_stat_encoding_for_every_kind_of_node():
    """
    Node.stat_bytes packs the fields itself (no record, no cache): for every kind of
    node and after every change it equals the serialized Stat, TTL and container
    owners shown as 0, null data as length 0, a wrapped cversion as Java's int.
    """
    from zkreg.data.node import Node

    h = Harness()
    h.create("/s", b"v")
    node = h.tree.get("/s")

    def check_all():
        for path, each in h.tree.nodes.items():
            for extended in (False, True):
                assert each.stat_bytes(extended) == each.stat(extended).serialize(), path

    changes = [
        lambda: h.set_data("/s", b"longer"),
        lambda: h.create("/s/c"),
        lambda: h.delete("/s/c"),
        lambda: h.set_acl("/s", OPEN),
        lambda: h.create("/e", flags=codes.FLAG_EPHEMERAL, session_id=9),
        lambda: h.close_session(9),
    ]
    for change in changes:
        before = node.stat_bytes()
        assert change().err == 0
        check_all()
        if change is not changes[-2] and change is not changes[-1]:
            assert node.stat_bytes() != before  # the change of /s shows
    odd = [
        Node("/p", None, OPEN, 5, 6, 0),
        Node("/q", b"x", OPEN, 5, 6, CONTAINER_EPHEMERAL_OWNER),
        Node("/q", b"x", OPEN, 5, 6, ttl_ephemeral_owner(1000)),
        Node("/q", b"x", OPEN, 5, 6, 0x1234),
    ]
    odd[0].cversion = 0x7FFFFFFF  # 2 * cversion overflows a Java int
    odd[0].add_child("/p/a")
    for each in odd:
        for extended in (False, True):
            assert each.stat_bytes(extended) == each.stat(extended).serialize()
    assert odd[0].stat().cversion == -3


def test_kept_descendant_counts_follow_creates_deletes_and_session_closes():
    """
    count_descendants keeps the counts it was asked for up to date (getAllChildrenNumber
    answered in constant time after the first ask); they always equal a fresh count.
    """
    import random

    rng = random.Random(8)
    h = Harness()
    h.create_session(7)
    paths = ["/a"]
    h.create("/a")
    for _ in range(400):
        action = rng.random()
        if action < 0.55:
            parent = rng.choice(paths)
            path = f"{parent}/n{rng.randrange(1000)}"
            flags = codes.FLAG_EPHEMERAL if rng.random() < 0.2 else 0
            if h.create(path, flags=flags, session_id=7 if flags else 1).err == 0 and not flags:
                paths.append(path)
        elif action < 0.9:
            victim = rng.choice(paths[1:] or ["/a"])
            if h.delete(victim).err == 0:
                paths.remove(victim)
        else:
            h.close_session(7)
            h.create_session(7)
        asked = rng.choice(paths)
        fresh = DataTree()
        fresh.nodes = h.tree.nodes
        assert h.tree.count_descendants(asked) == fresh.count_descendants(asked)
