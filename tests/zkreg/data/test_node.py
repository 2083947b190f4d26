"""
The node's packed layout: every field reads back as it was set through every
change (small, large, empty and null data; leaves and parents), a leaf costs two
small objects, and large data stays one shared bytes object.
"""

from __future__ import annotations

import sys

import pytest
from datahelpers import Harness

from zkreg.data.node import LARGE_DATA, Node
from zkreg.data.replica import copy_tree
from zkreg.persistence.recovery import load_tree, write_tree_snapshot

ZXID = 0x1_0000_0005
TIME = 1_700_000_000_123
OWNER = 0x1_2345_6789


def fields(node):
    return (node.data, node.persisted_fields(), node.stat_fields(), node.num_children)


@pytest.mark.parametrize("data", [b"x" * 100, b"", None, b"L" * LARGE_DATA, b"\xff" * 7], ids=repr)
def test_fields_read_back_through_a_set_data(data):
    node = Node("/a", data, (), ZXID, TIME, OWNER)
    assert node.data == data
    assert node.data_length == (0 if data is None else len(data))
    assert node.persisted_fields() == (ZXID, ZXID, TIME, TIME, 0, 0, 0, OWNER, ZXID)
    for new in (b"y" * 3, None, b"B" * (LARGE_DATA + 1), b"", data):
        node.set_data(new, ZXID + 7, TIME + 9, 4)
        assert node.data == new
        assert node.persisted_fields() == (ZXID, ZXID + 7, TIME, TIME + 9, 4, 0, 0, OWNER, ZXID)
        assert node.stat_fields()[8] == (0 if new is None else len(new))


def test_child_bookkeeping_defaults_and_moves():
    node = Node("/p", b"d", (), ZXID, TIME, 0)
    # A leaf that never had a child: ZooKeeper's fresh node, cversion 0, pzxid = czxid.
    assert (node.cversion, node.pzxid, node.children) == (0, ZXID, None)
    node.add_child("/p/c")
    assert (node.cversion, node.pzxid, node.child_names()) == (0, ZXID, ["c"])
    node.cversion = 3
    node.pzxid = ZXID + 2
    node.set_data(b"e", ZXID + 3, TIME, 1)
    node.aversion = -1
    assert node.persisted_fields() == (ZXID, ZXID + 3, TIME, TIME, 1, 3, -1, 0, ZXID + 2)
    # The client-visible cversion: 2 * stored - live children.
    assert node.stat_fields()[5] == 5 and node.stat_fields()[9] == 1
    node.remove_child("/p/c")
    assert node.num_children == 0 and node.pzxid == ZXID + 2 and node.data == b"e"


def test_a_leaf_costs_a_small_node_and_one_record():
    """
    The memory a 100-byte leaf holds of its own: the node and its record (path and
    ACL are shared with the tree's index and ACL cache); separate stat fields and
    data cost 136 + 133 + 32 bytes.
    """
    node = Node("/bench/m/1/12345", b"m" * 100, (), ZXID, TIME, 0)
    assert node.children is None
    assert sys.getsizeof(node) + sys.getsizeof(node.record) <= 256


def test_large_data_is_one_shared_object():
    data = b"L" * (LARGE_DATA * 2)
    node = Node("/big", data, (), ZXID, TIME, 0)
    assert node.data is data and node.children.large_data is data
    assert len(node.record) < 100  # the record holds the head only
    node.set_data(b"small", ZXID + 1, TIME, 1)
    assert node.children.large_data is None and node.data == b"small"


def test_tree_round_trips_through_a_snapshot_and_a_copy(tmp_path):
    h = Harness()
    h.create("/null", None)
    h.create("/empty", b"")
    h.create("/big", b"B" * LARGE_DATA)
    h.create("/p", b"parent")
    h.create("/p/c", b"child")
    h.create("/p/gone", b"")
    h.delete("/p/gone")
    h.set_data("/p", b"P" * (LARGE_DATA + 5))
    h.delete("/missing-child-of-a-leaf")  # NoNode: nothing moves
    expected = {path: fields(node) for path, node in h.tree.nodes.items()}
    path = write_tree_snapshot(str(tmp_path), h.tree, with_digest=True)
    for tree in (load_tree(path), copy_tree(h.tree)):
        assert {p: fields(node) for p, node in tree.nodes.items()} == expected
        assert tree.digest() == h.tree.digest()
