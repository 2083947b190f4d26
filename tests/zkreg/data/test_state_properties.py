"""
Properties of the state machine over random request sequences:

  - prep and apply never raise, whatever the requests;
  - a log that acknowledges late, in random batches and orders, gives exactly the
    replies, commits and tree of a log that acknowledges at once;
  - replaying the log into a fresh tree gives the same digest;
  - the tree's bookkeeping stays consistent (children, ephemerals, containers, TTLs)
    and no cached stat is stale;
  - reads submitted between the writes answer the same either way.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import task

from zkreg.config import ServerConfig
from zkreg.data import codes
from zkreg.data.codes import EPHEMERAL_CONTAINER, EPHEMERAL_NORMAL, EPHEMERAL_TTL, ephemeral_type
from zkreg.data.messages import Request
from zkreg.data.server import DataServer
from zkreg.data.tree import DataTree
from zkreg.data.txncodec import decode_txn
from zkreg.persistence.memlog import ManualLog, MemoryLog
from zkreg.proto.records import (
    ACL,
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ExistsRequest,
    GetChildren2Request,
    GetDataRequest,
    Id,
    SetACLRequest,
    SetDataRequest,
)

# Mostly a small valid tree, so that ops meet each other; a few invalid paths.
PATHS = ["/a", "/a/b", "/a/b/c", "/d", "/d/e", "/a/s"] * 3 + ["/a/", "bad", "/zookeeper"]
OPEN = [ACL(31, Id("world", "anyone"))]
READ_ONLY = [ACL(1, Id("world", "anyone"))]
ACLS = st.sampled_from([OPEN, READ_ONLY, [], [ACL(31, Id("auth", ""))]])
VERSIONS = st.sampled_from([-1, 0, 1, 2])

creates = st.builds(
    lambda op, path, flags, acl: (op, CreateRequest(path, b"d", acl, flags)),
    st.sampled_from([codes.OP_CREATE, codes.OP_CREATE2, codes.OP_CREATE_CONTAINER]),
    st.sampled_from(PATHS),
    st.integers(min_value=0, max_value=7),
    ACLS,
)
ttl_creates = st.builds(
    lambda path, flags, ttl: (codes.OP_CREATE_TTL, CreateTTLRequest(path, b"", OPEN, flags, ttl)),
    st.sampled_from(PATHS),
    st.sampled_from([0, 5, 6]),
    st.sampled_from([-1, 0, 1, 1000]),
)
deletes = st.builds(
    lambda path, version: (codes.OP_DELETE, DeleteRequest(path, version)),
    st.sampled_from(PATHS),
    VERSIONS,
)
set_datas = st.builds(
    lambda path, version: (codes.OP_SET_DATA, SetDataRequest(path, b"x", version)),
    st.sampled_from(PATHS),
    VERSIONS,
)
set_acls = st.builds(
    lambda path, acl, version: (codes.OP_SET_ACL, SetACLRequest(path, acl, version)),
    st.sampled_from(PATHS),
    ACLS,
    VERSIONS,
)
checks = st.builds(
    lambda path, version: (codes.OP_CHECK, CheckVersionRequest(path, version)),
    st.sampled_from(PATHS),
    VERSIONS,
)
reads = st.builds(
    lambda opcode, path: (opcode, record_for_read(opcode, path)),
    st.sampled_from([codes.OP_GET_DATA, codes.OP_EXISTS, codes.OP_GET_CHILDREN2]),
    st.sampled_from(PATHS),
)
single = st.one_of(creates, ttl_creates, deletes, set_datas, set_acls, checks)
multis = st.lists(single, max_size=4).map(lambda ops: (codes.OP_MULTI, ops))
closes = st.just((codes.OP_CLOSE_SESSION, None))
requests = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.one_of(single, single, multis, closes, reads)),
    max_size=30,
)
ack_plans = st.lists(st.tuples(st.integers(min_value=1, max_value=5), st.booleans()), max_size=40)


def record_for_read(opcode, path):
    if opcode == codes.OP_GET_DATA:
        return GetDataRequest(path, False)
    if opcode == codes.OP_EXISTS:
        return ExistsRequest(path, False)
    return GetChildren2Request(path, False)


class AckedAtOnceLog(MemoryLog):
    """A MemoryLog seen only through IDurableLog.append (an already fired Deferred)."""

    append_durable = None


def run(script, log, ack_plan=(), via_callback=False):
    clock = task.Clock()
    clock.advance(1_700_000_000)
    server = DataServer(ServerConfig(extended_types=True), log=log, clock=clock)
    sessions = []
    for _ in range(2):
        granted = server.create_session(10_000)
        if isinstance(log, ManualLog):
            log.flush()
        sessions.append(granted.result.session_id)
    replies: list = []
    commits: list = []

    class Listener:
        def committed(self, commit):
            commits.append((commit.zxid, commit.txn_type, commit.events, commit.closed_session))

    server.subscribe(Listener())
    auth = (Id("ip", "127.0.0.1"), Id("digest", "u:h"))
    for cxid, (who, (opcode, record)) in enumerate(script):
        request = Request(sessions[who], cxid, opcode, record, auth)
        if via_callback:
            server.submit_with_callback(request, replies.append)
        else:
            server.submit(request).addCallback(replies.append)
        clock.advance(0.01)
    if isinstance(log, ManualLog):
        for count, reverse in ack_plan:
            log.flush(count=count, reverse=reverse)
        log.flush()
    return server, replies, commits


def check_invariants(tree: DataTree) -> None:
    ephemerals: dict[int, set] = {}
    containers = set()
    ttls = set()
    for path, node in tree.nodes.items():
        # The packed Stat encoding must equal the record's.
        stat = node.stat(tree.extended_types)
        assert node.stat_bytes(tree.extended_types) == stat.serialize(), path
        if path != "/":
            parent = tree.nodes[path.rsplit("/", 1)[0] or "/"]
            assert parent.has_child(path)
        for child_path in node.child_paths():
            assert child_path in tree.nodes
            assert (child_path.rsplit("/", 1)[0] or "/") == path
        assert [p.rsplit("/", 1)[1] for p in node.child_paths()] == node.child_names()
        kind = ephemeral_type(node.ephemeral_owner, tree.extended_types)
        if kind == EPHEMERAL_NORMAL:
            ephemerals.setdefault(node.ephemeral_owner, set()).add(path)
            assert not node.children
        elif kind == EPHEMERAL_CONTAINER:
            containers.add(path)
        elif kind == EPHEMERAL_TTL:
            ttls.add(path)
    assert {owner: set(paths) for owner, paths in tree.ephemerals.items()} == ephemerals
    assert set(tree.containers) == containers
    assert set(tree.ttls) == ttls


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=requests, ack_plan=ack_plans)
def test_random_requests_pipelined_equal_immediate_and_replay(script, ack_plan):
    immediate, immediate_replies, immediate_commits = run(script, MemoryLog())
    log = ManualLog()
    delayed, delayed_replies, delayed_commits = run(script, log, ack_plan)
    assert len(immediate_replies) == len(script)
    assert delayed_replies == immediate_replies
    assert delayed_commits == immediate_commits
    assert delayed.tree.digest() == immediate.tree.digest()
    assert delayed.prep.outstanding_count == 0
    check_invariants(immediate.tree)
    replayed = DataTree(extended_types=True)
    replayed.approximate_data_size()  # counted now, then kept up to date by apply
    for _zxid, record in log.records:
        replayed.apply(*decode_txn(record))
    assert replayed.digest() == immediate.tree.digest()
    assert replayed.approximate_data_size() == sum(
        len(path) + len(node.data or b"") for path, node in replayed.nodes.items()
    )
    # The Deferred-free API and a log acknowledging through Deferreds change nothing.
    for other_log, via_callback, plan in (
        (MemoryLog(), True, ()),
        (AckedAtOnceLog(), False, ()),
        (ManualLog(), True, ack_plan),
    ):
        other, other_replies, other_commits = run(script, other_log, plan, via_callback)
        assert other_replies == immediate_replies
        assert other_commits == immediate_commits
        assert other.tree.digest() == immediate.tree.digest()
        assert other_log.records == log.records
