"""
Reads as FinalRequestProcessor answers them: ACL checks where ZooKeeper does them,
getACL redaction, getEphemerals, multiRead per-op errors, the last zxid in replies.
"""

from __future__ import annotations

from datahelpers import IP_AUTH, OPEN, Harness

from zkreg.data import codes
from zkreg.data.acl import generate_digest
from zkreg.data.messages import Request
from zkreg.data.reads import answer_read, get_config, perform_read
from zkreg.proto.records import (
    ACL,
    ExistsRequest,
    GetACLRequest,
    GetAllChildrenNumberRequest,
    GetChildren2Request,
    GetChildrenRequest,
    GetDataRequest,
    GetEphemeralsRequest,
    Id,
)

SECRET_OWNER = Id("digest", generate_digest("owner:pw"))
OWNER_AUTH = (*IP_AUTH, SECRET_OWNER)


def read(h, opcode, record, auth=IP_AUTH, session_id=1):
    return perform_read(h.tree, Request(session_id, 0, opcode, record, auth), h.acl)


def setup_tree():
    h = Harness()
    h.create("/open", b"hello")
    h.create("/open/child")
    h.create("/secret", b"s", acl=[ACL(codes.PERM_ALL, SECRET_OWNER)])
    assert h.create("/secret/child", auth=OWNER_AUTH).err == 0
    h.create("/adminonly", acl=[ACL(codes.PERM_ADMIN, Id("world", "anyone"))])
    return h


def test_get_data_and_stat_and_zxid():
    h = setup_tree()
    outcome = read(h, codes.OP_GET_DATA, GetDataRequest("/open", True))
    assert outcome.err == 0 and outcome.zxid == h.tree.last_zxid == 5
    assert outcome.response.data == b"hello"
    assert outcome.response.stat == h.stat("/open")
    assert read(h, codes.OP_GET_DATA, GetDataRequest("/none", False)).err == codes.NO_NODE
    assert read(h, codes.OP_GET_DATA, GetDataRequest("/secret", False)).err == codes.NO_AUTH
    ok = read(h, codes.OP_GET_DATA, GetDataRequest("/secret", False), auth=OWNER_AUTH)
    assert ok.err == 0 and ok.response.data == b"s"


def test_exists_checks_no_acl_and_refuses_nul():
    h = setup_tree()
    outcome = read(h, codes.OP_EXISTS, ExistsRequest("/secret", False))
    assert outcome.err == 0 and outcome.response.stat == h.stat("/secret")
    assert read(h, codes.OP_EXISTS, ExistsRequest("/none", True)).err == codes.NO_NODE
    assert read(h, codes.OP_EXISTS, ExistsRequest("/a\x00", True)).err == codes.BAD_ARGUMENTS


def test_get_children_variants_check_read():
    h = setup_tree()
    assert read(h, codes.OP_GET_CHILDREN, GetChildrenRequest("/open", False)).response.children == [
        "child"
    ]
    two = read(h, codes.OP_GET_CHILDREN2, GetChildren2Request("/open", False))
    assert two.response.children == ["child"] and two.response.stat == h.stat("/open")
    for opcode, record in (
        (codes.OP_GET_CHILDREN, GetChildrenRequest("/secret", False)),
        (codes.OP_GET_CHILDREN2, GetChildren2Request("/secret", False)),
        (codes.OP_GET_ALL_CHILDREN_NUMBER, GetAllChildrenNumberRequest("/secret")),
    ):
        assert read(h, opcode, record).err == codes.NO_AUTH
        assert read(h, opcode, record, auth=OWNER_AUTH).err == 0
    assert read(h, codes.OP_GET_CHILDREN, GetChildrenRequest("/none", False)).err == codes.NO_NODE


def test_get_all_children_number():
    h = setup_tree()
    number = read(h, codes.OP_GET_ALL_CHILDREN_NUMBER, GetAllChildrenNumberRequest("/"))
    assert number.response.totalNumber == 8
    number = read(h, codes.OP_GET_ALL_CHILDREN_NUMBER, GetAllChildrenNumberRequest("/open"))
    assert number.response.totalNumber == 1
    assert (
        read(h, codes.OP_GET_ALL_CHILDREN_NUMBER, GetAllChildrenNumberRequest("/x")).err
        == codes.NO_NODE
    )


def test_get_acl_needs_read_or_admin_and_redacts_digest_without_admin():
    h = setup_tree()
    digest_acl = ACL(codes.PERM_READ, SECRET_OWNER)
    h.create("/readable", acl=[digest_acl, ACL(codes.PERM_READ, Id("world", "anyone"))])
    redacted = read(h, codes.OP_GET_ACL, GetACLRequest("/readable"))
    assert redacted.err == 0
    assert redacted.response.acl == [
        ACL(codes.PERM_READ, Id("digest", "owner:x")),
        ACL(codes.PERM_READ, Id("world", "anyone")),
    ]
    assert redacted.response.stat == h.stat("/readable")
    admin = read(h, codes.OP_GET_ACL, GetACLRequest("/adminonly"))
    assert admin.err == 0 and admin.response.acl == [ACL(codes.PERM_ADMIN, Id("world", "anyone"))]
    assert read(h, codes.OP_GET_ACL, GetACLRequest("/secret")).err == codes.NO_AUTH
    full = read(h, codes.OP_GET_ACL, GetACLRequest("/secret"), auth=OWNER_AUTH)
    assert full.response.acl == [ACL(codes.PERM_ALL, SECRET_OWNER)]
    assert read(h, codes.OP_GET_ACL, GetACLRequest("/none")).err == codes.NO_NODE


def test_get_ephemerals_of_own_session_with_prefix():
    h = Harness()
    h.create("/a")
    h.create("/a/e1", flags=codes.FLAG_EPHEMERAL, session_id=5)
    h.create("/b", flags=codes.FLAG_EPHEMERAL, session_id=5)
    h.create("/c", flags=codes.FLAG_EPHEMERAL, session_id=6)
    all_mine = read(h, codes.OP_GET_EPHEMERALS, GetEphemeralsRequest("/"), session_id=5)
    assert all_mine.response.ephemerals == ["/a/e1", "/b"]
    prefixed = read(h, codes.OP_GET_EPHEMERALS, GetEphemeralsRequest("/a"), session_id=5)
    assert prefixed.response.ephemerals == ["/a/e1"]
    none_set = read(h, codes.OP_GET_EPHEMERALS, GetEphemeralsRequest(None), session_id=6)
    assert none_set.response.ephemerals == ["/c"]


def test_multi_read_reports_errors_per_op():
    h = setup_tree()
    outcome = read(
        h,
        codes.OP_MULTI_READ,
        [
            (codes.OP_GET_DATA, GetDataRequest("/open", False)),
            (codes.OP_GET_CHILDREN, GetChildrenRequest("/none", False)),
            (codes.OP_GET_DATA, GetDataRequest("/secret", False)),
            (codes.OP_GET_CHILDREN, GetChildrenRequest("/open", False)),
        ],
    )
    assert outcome.err == 0
    kinds = [(t, err) for t, err, _ in outcome.response]
    assert kinds == [
        (codes.OP_GET_DATA, 0),
        (codes.OP_ERROR, codes.NO_NODE),
        (codes.OP_ERROR, codes.NO_AUTH),
        (codes.OP_GET_CHILDREN, 0),
    ]
    assert outcome.response[0][2].data == b"hello"
    assert outcome.response[3][2].children == ["child"]


def test_multi_read_with_a_write_op_is_a_marshalling_error():
    from zkreg.proto.records import DeleteRequest

    h = setup_tree()
    outcome = read(h, codes.OP_MULTI_READ, [(codes.OP_DELETE, DeleteRequest("/open", -1))])
    assert outcome.err == codes.MARSHALLING_ERROR


def test_get_config_is_get_data_of_the_config_node():
    h = setup_tree()
    outcome = get_config(h.tree, Request(1, 0, codes.OP_GET_DATA, None, IP_AUTH), h.acl)
    assert outcome.err == 0 and outcome.response.data == b""
    assert outcome.response.stat.aversion == -1


def test_unknown_read_opcode_is_unimplemented():
    h = setup_tree()
    assert read(h, codes.OP_CREATE, None).err == codes.UNIMPLEMENTED


def test_open_acl_constant_is_world_all():
    assert OPEN == [ACL(codes.PERM_ALL, Id("world", "anyone"))]


def test_empty_path_reads_the_root_as_zookeeper_does():
    h = setup_tree()
    root = h.stat("/")
    assert read(h, codes.OP_EXISTS, ExistsRequest("", False)).response.stat == root
    assert read(h, codes.OP_GET_DATA, GetDataRequest("", False)).response.stat == root
    children = read(h, codes.OP_GET_CHILDREN, GetChildrenRequest("", False)).response.children
    assert sorted(children) == ["adminonly", "open", "secret", "zookeeper"]
    assert read(h, codes.OP_GET_ACL, GetACLRequest("")).err == 0
    number = read(h, codes.OP_GET_ALL_CHILDREN_NUMBER, GetAllChildrenNumberRequest(""))
    assert number.response.totalNumber == h.tree.node_count()


def test_null_path_is_a_marshalling_error_even_inside_multi_read():
    h = setup_tree()
    for opcode, record in (
        (codes.OP_EXISTS, ExistsRequest(None, False)),
        (codes.OP_GET_DATA, GetDataRequest(None, False)),
        (codes.OP_GET_CHILDREN, GetChildrenRequest(None, False)),
        (codes.OP_GET_CHILDREN2, GetChildren2Request(None, False)),
        (codes.OP_GET_ACL, GetACLRequest(None)),
        (codes.OP_GET_ALL_CHILDREN_NUMBER, GetAllChildrenNumberRequest(None)),
        (
            codes.OP_MULTI_READ,
            [
                (codes.OP_GET_DATA, GetDataRequest("/open", False)),
                (codes.OP_GET_DATA, GetDataRequest(None, False)),
            ],
        ),
    ):
        assert read(h, opcode, record).err == codes.MARSHALLING_ERROR, opcode


def test_answer_read_gives_what_perform_read_gives():
    """The record-free entry point (the session server's local reads) answers alike:
    every read op, found and missing nodes, open and closed ACLs, "" and None paths."""
    h = setup_tree()
    h.create("/e", flags=codes.FLAG_EPHEMERAL, session_id=1)
    paths = ["/open", "/open/child", "/secret", "/secret/child", "/adminonly", "/none", "/", ""]
    cases = []
    for path in [*paths, None]:
        cases += [
            (codes.OP_GET_DATA, GetDataRequest(path, False)),
            (codes.OP_EXISTS, ExistsRequest(path, False)),
            (codes.OP_GET_CHILDREN, GetChildrenRequest(path, False)),
            (codes.OP_GET_CHILDREN2, GetChildren2Request(path, False)),
            (codes.OP_GET_ALL_CHILDREN_NUMBER, GetAllChildrenNumberRequest(path)),
            (codes.OP_GET_ACL, GetACLRequest(path)),
            (codes.OP_GET_EPHEMERALS, GetEphemeralsRequest(path)),
        ]
    cases.append(
        (codes.OP_MULTI_READ, [(codes.OP_GET_DATA, GetDataRequest(p, False)) for p in paths])
    )
    cases.append((codes.OP_CREATE, GetDataRequest("/open", False)))
    answered = 0
    for auth in (IP_AUTH, OWNER_AUTH):
        for opcode, record in cases:
            try:
                expected = read(h, opcode, record, auth=auth)
            except Exception as failure:  # noqa: BLE001 - the same failure is expected
                try:
                    answer_read(h.tree, opcode, record, auth, 1, h.acl)
                except type(failure):
                    continue
                raise AssertionError(f"{opcode} {record}: only perform_read raised") from failure
            err, response = answer_read(h.tree, opcode, record, auth, 1, h.acl)
            assert (err, response) == (expected.err, expected.response), (opcode, record, auth)
            answered += 1
    assert answered > 100
    # The inlined getData path covers NoNode, NoAuth and open-ACL answers.
    assert (
        answer_read(h.tree, codes.OP_GET_DATA, GetDataRequest("/secret", False), IP_AUTH, 1, h.acl)[
            0
        ]
        == codes.NO_AUTH
    )
