"""
The session server's reads over the real in-process data tier: the getData fast path
gives the very bytes the data tier's answer would encode to, and watches are
registered by ZooKeeper's rules.
"""

from __future__ import annotations

from twisted.internet import task

from zkreg.config import ServerConfig
from zkreg.data.messages import Request
from zkreg.data.node import LARGE_DATA
from zkreg.data.reads import answer_read
from zkreg.proto.consts import OPEN_ACL_UNSAFE, Err, OpCode
from zkreg.proto.records import (
    ACL,
    CreateRequest,
    ExistsRequest,
    GetChildrenRequest,
    GetDataRequest,
    Id,
)
from zkreg.session.assembly import build_standalone
from zkreg.session.replies import encode_body

_LOOPBACK = (Id("ip", "127.0.0.1"),)


class Reader:
    def __init__(self, session_id=0, auth=_LOOPBACK):
        self.session_id = session_id
        self.auth = auth


def standalone():
    clock = task.Clock()
    data_server, factory = build_standalone(ServerConfig(), clock=clock)
    return data_server, factory


def create(factory, path, data, acl=OPEN_ACL_UNSAFE):
    grants = []
    factory.link.create_session(30000).addCallback(grants.append)
    results = []
    request = Request(
        grants[0].session_id, 1, OpCode.create, CreateRequest(path, data, list(acl), 0)
    )
    factory.link.submit(request).addCallback(results.append)
    assert results and results[0].err == 0, results


def test_get_data_fast_path_bytes_equal_the_record_encoding():
    _, factory = standalone()
    create(factory, "/a", b"hello")
    create(factory, "/null", None)
    create(factory, "/big", b"B" * LARGE_DATA)
    reader = Reader()
    for path in ("/a", "/null", "/", "/big"):
        err, body = factory.perform_read(reader, OpCode.getData, GetDataRequest(path, False))
        if type(body) is tuple:  # pieces around a large node's own bytes
            body = b"".join(body)
        expected_err, expected = answer_read(
            factory.read_view, OpCode.getData, GetDataRequest(path, False), reader.auth, 0,
            factory.acl_checker,
        )  # fmt: skip
        assert err == expected_err == 0
        assert encode_body(OpCode.getData, body) == expected.serialize()


def test_get_data_of_a_large_node_shares_its_bytes():
    """Every reply of a large node holds the tree's one bytes object, not a copy."""
    _, factory = standalone()
    create(factory, "/big", b"B" * LARGE_DATA)
    replies = [
        factory.perform_read(Reader(), OpCode.getData, GetDataRequest("/big", False))[1]
        for _ in range(2)
    ]
    shared = factory.read_view.get("/big").data  # large: the one stored object
    assert all(any(piece is shared for piece in reply) for reply in replies)


def test_get_data_errors():
    _, factory = standalone()
    create(factory, "/secret", b"x", [ACL(31, Id("digest", "bob:abc"))])
    reader = Reader()
    assert factory.perform_read(reader, OpCode.getData, GetDataRequest("/no", True)) == (
        Err.NONODE,
        None,
    )
    assert factory.perform_read(reader, OpCode.getData, GetDataRequest("/secret", True)) == (
        Err.NOAUTH,
        None,
    )
    assert factory.watches.watch_count() == 0


def test_watch_registration_rules():
    _, factory = standalone()
    create(factory, "/a", b"")
    reader = Reader()
    factory.perform_read(reader, OpCode.getData, GetDataRequest("/a", True))
    factory.perform_read(reader, OpCode.exists, ExistsRequest("/missing", True))
    factory.perform_read(reader, OpCode.getChildren, GetChildrenRequest("/a", True))
    factory.perform_read(reader, OpCode.getChildren, GetChildrenRequest("/missing2", True))
    watches = factory.watches
    assert watches.data_watches.contains("/a", reader)
    assert watches.data_watches.contains("/missing", reader)
    assert watches.child_watches.contains("/a", reader)
    assert not watches.child_watches.contains("/missing2", reader)


def test_watches_on_existing_nodes_key_with_the_trees_own_path_string():
    """
    Memory: a watch set by getData, exists, getChildren or addWatch on an existing
    node keys the watch table with the tree's own path string (the request's copy is
    dropped); a watch on a missing path keeps the request's.
    """
    _, factory = standalone()
    create(factory, "/shared", b"")
    tree_path = factory.read_view.get("/shared").path
    reader = Reader()

    def request_path(text):
        return "".join(list(text))  # an equal string that is not the tree's

    factory.perform_read(reader, OpCode.exists, ExistsRequest(request_path("/shared"), True))
    factory.perform_read(
        reader, OpCode.getChildren, GetChildrenRequest(request_path("/shared"), True)
    )
    missing = request_path("/gone")
    factory.perform_read(reader, OpCode.exists, ExistsRequest(missing, True))
    data_keys = {id(path) for path in factory.watches.data_watches.by_path}
    child_keys = {id(path) for path in factory.watches.child_watches.by_path}
    assert id(tree_path) in data_keys and id(tree_path) in child_keys
    assert id(missing) in data_keys
    factory.watches.add_persistent_watch(request_path("/shared"), Reader(2), recursive=False)
    assert factory.watches.data_watches.watchers_at("/shared") != []
    assert {id(path) for path in factory.watches.data_watches.by_path} == data_keys
