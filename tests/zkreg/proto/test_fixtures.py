"""
The codec against bytes real peers produced: Apache ZooKeeper 3.8's replies, and the
requests of kazoo 2.11 and of the Java client (fixtures recorded by
C{fixtures/capture.py}), plus kazoo's serializers run live.

Every recorded frame must decode completely and re-encode byte for byte; the frames
whose shape matters (errors, null against empty, multi results, watch events, the
readOnly byte) are checked for their exact decoded values.
"""

from __future__ import annotations

import pytest
from proto_conversation import FIXTURE_NAMES, Frame, decode_conversation, load_frames

from zkreg.proto import multi
from zkreg.proto import records as R
from zkreg.proto.consts import (
    OPEN_ACL_UNSAFE,
    CreateMode,
    Err,
    EventType,
    KeeperState,
    OpCode,
    Xid,
)

ACL = list(OPEN_ACL_UNSAFE)


def conversation(name: str) -> list[Frame]:
    _, frames = load_frames(name)
    return decode_conversation(frames)


def reply_to(frames: list[Frame], request_body: object, opcode: int | None = None) -> Frame:
    """@return: the reply to the first request with this body (and opcode, if given)."""
    for index, frame in enumerate(frames):
        if frame.direction == "c2s" and frame.body == request_body:
            if opcode is not None and frame.opcode != opcode:
                continue
            for later in frames[index + 1 :]:
                if (
                    later.direction == "s2c"
                    and later.header
                    and later.header.xid == frame.header.xid
                ):
                    return later
    raise AssertionError(f"no reply to {request_body!r}")


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_frame_decodes_and_reencodes_identically(name: str) -> None:
    """Each recorded frame is consumed exactly, and encoding the result gives the same bytes."""
    frames = conversation(name)
    assert len(frames) >= 6
    for frame in frames:
        assert frame.reencode() == frame.raw, frame


# -- what ZooKeeper sends back --------------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> list[Frame]:
    return conversation("zookeeper_raw.json")


def test_zookeeper_handshake_with_read_only_byte(raw: list[Frame]) -> None:
    """A client sending readOnly gets a response carrying readOnly (false: not r/o server)."""
    request, response = raw[0].body, raw[1].body
    assert request == R.ConnectRequest(0, 0, 30000, 0, bytes(16), False)
    assert isinstance(response, R.ConnectResponse)
    assert response.readOnly is False
    assert response.timeOut == 30000 and response.sessionId != 0 and len(response.passwd) == 16
    assert raw[1].raw.endswith(b"\x00") and len(raw[1].raw) == 4 + 4 + 8 + 4 + 16 + 1


def test_zookeeper_handshake_without_read_only_byte() -> None:
    """A client omitting readOnly gets a response omitting it too; both decode as None."""
    frames = conversation("zookeeper_old_handshake.json")
    assert frames[0].body.readOnly is None
    assert frames[1].body.readOnly is None
    assert len(frames[1].raw) == 4 + 4 + 8 + 4 + 16


def test_zookeeper_create_replies(raw: list[Frame]) -> None:
    assert reply_to(raw, R.CreateRequest("/fx", b"hello", ACL, 0)).body == R.CreateResponse("/fx")
    sequential = reply_to(
        raw, R.CreateRequest("/fx/seq-", b"s", ACL, CreateMode.PERSISTENT_SEQUENTIAL)
    )
    assert sequential.body.path.startswith("/fx/seq-") and len(sequential.body.path) == 18
    created2 = reply_to(raw, R.CreateRequest("/fx/c2", b"", ACL, 0), OpCode.create2).body
    assert isinstance(created2, R.Create2Response) and created2.path == "/fx/c2"
    assert created2.stat.czxid == created2.stat.mzxid == created2.stat.pzxid
    assert created2.stat.dataLength == 0 and created2.stat.ephemeralOwner == 0


def test_zookeeper_error_replies_are_header_only(raw: list[Frame]) -> None:
    """An error reply is the 16-byte ReplyHeader with err set, and nothing after it."""
    cases = [
        (R.CreateRequest("/fx", b"again", ACL, 0), Err.NODEEXISTS),
        (R.ExistsRequest("/fx/missing", False), Err.NONODE),
        (R.SetDataRequest("/fx", b"x", 7), Err.BADVERSION),
        (R.DeleteRequest("/fx", -1), Err.NOTEMPTY),
        (R.RemoveWatchesRequest("/fx/c2", 3), None),
    ]
    for request, err in cases[:-1]:
        reply = reply_to(raw, request)
        assert reply.header.err == err
        assert reply.body is None and len(reply.raw) == 16
    second_remove = [f for f in raw if f.opcode == OpCode.removeWatches and f.direction == "s2c"][1]
    assert second_remove.header.err == Err.NOWATCHER and len(second_remove.raw) == 16


def test_zookeeper_get_data_null_and_empty_data(raw: list[Frame]) -> None:
    """A node created with null data reads back null; one created with b"" reads b""."""
    assert reply_to(raw, R.GetDataRequest("/fx", True)).body.data == b"hello"
    null_data = reply_to(raw, R.GetDataRequest("/fx/nul", False)).body
    empty_data = reply_to(raw, R.GetDataRequest("/fx/c2", False)).body
    assert null_data.data is None and null_data.stat.dataLength == 0
    assert empty_data.data == b""
    assert null_data.stat.ephemeralOwner == raw[1].body.sessionId


def test_zookeeper_watch_event_precedes_the_reply_that_caused_it(raw: list[Frame]) -> None:
    """setData on a watched node: the notification (xid -1, zxid -1) comes before the reply."""
    index = next(i for i, f in enumerate(raw) if f.body == R.SetDataRequest("/fx", b"world", 0))
    event, reply = raw[index + 1], raw[index + 2]
    assert event.header == R.ReplyHeader(Xid.NOTIFICATION, -1, 0)
    assert event.body == R.WatcherEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, "/fx")
    assert reply.header.xid == raw[index].header.xid
    assert reply.body.stat.version == 1 and reply.body.stat.dataLength == 5


def test_zookeeper_failing_multi(raw: list[Frame]) -> None:
    """A failed multi answers every op with an error result: 0 before, the code, then -2."""
    failing = [
        (OpCode.create, R.CreateRequest("/fx/m1", b"1", ACL, 0)),
        (OpCode.delete, R.DeleteRequest("/fx/absent", -1)),
        (OpCode.setData, R.SetDataRequest("/fx", b"never", -1)),
    ]
    reply = reply_to(raw, failing)
    assert reply.header.err == 0
    assert reply.body == [
        (OpCode.error, Err.OK, R.ErrorResponse(0)),
        (OpCode.error, Err.NONODE, R.ErrorResponse(Err.NONODE)),
        (OpCode.error, Err.RUNTIMEINCONSISTENCY, R.ErrorResponse(Err.RUNTIMEINCONSISTENCY)),
    ]


def test_zookeeper_succeeding_multi(raw: list[Frame]) -> None:
    """
    Results per op.  ZooKeeper 3.8 answers a create2 op with a plain create result,
    but createTTL and createContainer ops with create2 results.
    """
    ops = [f for f in raw if f.opcode == OpCode.multi and f.direction == "c2s"][1].body
    reply = reply_to(raw, ops)
    kinds = [(kind, err) for kind, err, _ in reply.body]
    assert kinds == [
        (OpCode.create, 0),
        (OpCode.create, 0),
        (OpCode.setData, 0),
        (OpCode.check, 0),
        (OpCode.delete, 0),
        (OpCode.create2, 0),
        (OpCode.create2, 0),
    ]
    assert reply.body[0][2] == R.CreateResponse("/fx/m2")
    assert reply.body[1][2] == R.CreateResponse("/fx/m3")
    assert reply.body[5][2].path == "/fx/m4" and reply.body[6][2].path == "/fx/m5"
    assert reply.body[2][2].stat.version == 1
    assert reply.body[3][2] is None and reply.body[4][2] is None


def test_zookeeper_multi_read_and_empty_multi(raw: list[Frame]) -> None:
    reads = [f for f in raw if f.opcode == OpCode.multiRead and f.direction == "s2c"][0].body
    assert reads[0][:2] == (OpCode.getData, 0) and reads[0][2].data == b"22"
    assert reads[1][:2] == (OpCode.getChildren, 0) and "m2" in reads[1][2].children
    assert reads[2] == (OpCode.error, Err.NONODE, R.ErrorResponse(Err.NONODE))
    empty = reply_to(raw, [], OpCode.multi)
    assert empty.body == [] and empty.raw[16:] == bytes.fromhex("ffffffff01ffffffff")


def test_zookeeper_newer_operations(raw: list[Frame]) -> None:
    """Replies of the 3.5+ operations: addWatch answers ErrorResponse(0), TTL/container Create2."""
    assert reply_to(raw, R.AddWatchRequest("/fx/c2", 0)).body == R.ErrorResponse(0)
    assert reply_to(raw, R.CheckWatchesRequest("/fx/c2", 3)).body is None
    ttl = reply_to(raw, R.CreateTTLRequest("/fx/ttl", b"t", ACL, 5, 60000)).body
    assert isinstance(ttl, R.Create2Response) and ttl.path == "/fx/ttl"
    container = reply_to(raw, R.CreateRequest("/fx/box", b"", ACL, 4), OpCode.createContainer)
    assert isinstance(container.body, R.Create2Response)
    assert reply_to(raw, R.GetEphemeralsRequest("/")).body == R.GetEphemeralsResponse(["/fx/nul"])
    assert reply_to(raw, R.GetAllChildrenNumberRequest("/fx")).body.totalNumber >= 3
    assert reply_to(raw, R.SyncRequest("/fx")).body == R.SyncResponse("/fx")
    who = [f for f in raw if f.opcode == OpCode.whoAmI and f.direction == "s2c"][0]
    assert who.body == R.WhoAmIResponse([R.ClientInfo("ip", "127.0.0.1")])


def test_zookeeper_reserved_xid_replies(raw: list[Frame]) -> None:
    """auth, setWatches and ping replies carry their reserved xids and no body."""
    replies = {
        f.header.xid: f for f in raw if f.direction == "s2c" and f.header and f.header.xid < -1
    }
    assert set(replies) == {Xid.AUTH, Xid.SET_WATCHES, Xid.PING}
    assert replies[Xid.AUTH].header == R.ReplyHeader(Xid.AUTH, 0, 0)
    for reply in replies.values():
        assert reply.body is None and len(reply.raw) == 16


def test_zookeeper_set_watches_fires_missed_events(raw: list[Frame]) -> None:
    """setWatches from zxid 0 fires what changed since, before its own reply."""
    index = next(i for i, f in enumerate(raw) if f.opcode == OpCode.setWatches)
    following = raw[index + 1 : index + 4]
    assert [f.body for f in following[:2]] == [
        R.WatcherEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, "/fx"),
        R.WatcherEvent(EventType.NodeChildrenChanged, KeeperState.SyncConnected, "/fx"),
    ]
    assert following[2].header.xid == Xid.SET_WATCHES


# -- what clients send ----------------------------------------------------------------------


def test_kazoo_requests() -> None:
    frames = conversation("kazoo.json")
    requests = [f for f in frames if f.direction == "c2s"]
    assert requests[0].body == R.ConnectRequest(0, 0, 10000, 0, bytes(16), False)
    assert requests[1].header == R.RequestHeader(1, OpCode.create)
    assert requests[1].body == R.CreateRequest("/kz", b"hello", ACL, 0)
    assert requests[2].body == R.CreateRequest("/kz/eph", b"", ACL, CreateMode.EPHEMERAL_SEQUENTIAL)
    assert R.AuthPacket(0, "digest", b"user:secret") in [f.body for f in requests]
    transaction = next(f for f in requests if f.opcode == OpCode.multi)
    assert transaction.body == [
        (OpCode.create, R.CreateRequest("/kz/t1", b"1", ACL, 0)),
        (OpCode.check, R.CheckVersionRequest("/kz", 1)),
        (OpCode.delete, R.DeleteRequest("/kz/absent", -1)),
    ]
    assert requests[-1].opcode == OpCode.closeSession and requests[-1].body is None


def test_java_client_requests() -> None:
    """ZooKeeperMain: the readOnly byte, a null buffer for no data, 3.6+ opcodes."""
    frames = conversation("zkcli.json")
    requests = [f for f in frames if f.direction == "c2s"]
    assert requests[0].body.readOnly is False
    container = next(f for f in requests if f.opcode == OpCode.createContainer)
    assert container.body == R.CreateRequest("/jvc", None, ACL, CreateMode.CONTAINER)
    ttl = next(f for f in requests if f.opcode == OpCode.createTTL)
    assert ttl.body == R.CreateTTLRequest(
        "/jvt", b"ttl", ACL, CreateMode.PERSISTENT_WITH_TTL, 60000
    )
    add_watch = next(f for f in requests if f.opcode == OpCode.addWatch)
    assert add_watch.body == R.AddWatchRequest("/jvc", 1)
    who = next(f for f in requests if f.opcode == OpCode.whoAmI)
    assert who.body is None and len(who.raw) == 8
    deleteall = next(f for f in requests if f.opcode == OpCode.multi)
    assert [opcode for opcode, _ in deleteall.body] == [OpCode.delete, OpCode.delete]


# -- kazoo's serializers, live ----------------------------------------------------------------


def kazoo_acl() -> list:
    from kazoo.security import OPEN_ACL_UNSAFE as KAZOO_OPEN

    return KAZOO_OPEN


def test_kazoo_serializers_match_records() -> None:
    """For non-empty strings kazoo and zkreg.proto produce identical request bytes."""
    S = pytest.importorskip("kazoo.protocol.serialization")
    pairs = [
        (
            S.Connect(0, 5, 30000, 7, b"p" * 16, True),
            R.ConnectRequest(0, 5, 30000, 7, b"p" * 16, True),
        ),
        (S.Create("/a", b"d", kazoo_acl(), 3), R.CreateRequest("/a", b"d", ACL, 3)),
        (S.Create2("/a", None, kazoo_acl(), 0), R.CreateRequest("/a", None, ACL, 0)),
        (S.Delete("/a", 4), R.DeleteRequest("/a", 4)),
        (S.Exists("/a", True), R.ExistsRequest("/a", True)),
        (S.GetData("/a", False), R.GetDataRequest("/a", False)),
        (S.SetData("/a", b"v", -1), R.SetDataRequest("/a", b"v", -1)),
        (S.GetACL("/a"), R.GetACLRequest("/a")),
        (S.SetACL("/a", kazoo_acl(), 2), R.SetACLRequest("/a", ACL, 2)),
        (S.GetChildren("/a", True), R.GetChildrenRequest("/a", True)),
        (S.GetChildren2("/a", False), R.GetChildren2Request("/a", False)),
        (S.Sync("/a"), R.SyncRequest("/a")),
        (S.CheckVersion("/a", 9), R.CheckVersionRequest("/a", 9)),
        (S.Auth(0, "digest", "u:p"), R.AuthPacket(0, "digest", b"u:p")),
        (S.SASL(b"tok"), R.GetSASLRequest(b"tok")),
        (S.Reconfig("j", "l", "n", 5), R.ReconfigRequest("j", "l", "n", 5)),
    ]
    for kazoo_request, record in pairs:
        assert bytes(kazoo_request.serialize()) == record.serialize(), record


def test_kazoo_transaction_matches_multi_encoding() -> None:
    S = pytest.importorskip("kazoo.protocol.serialization")
    kazoo_ops = [S.Create("/a", b"", kazoo_acl(), 0), S.CheckVersion("/a", 1), S.Delete("/b", -1)]
    ours = [
        (OpCode.create, R.CreateRequest("/a", b"", ACL, 0)),
        (OpCode.check, R.CheckVersionRequest("/a", 1)),
        (OpCode.delete, R.DeleteRequest("/b", -1)),
    ]
    assert bytes(S.Transaction(kazoo_ops).serialize()) == multi.encode_request(ours)


def test_kazoo_writes_empty_string_as_null_and_we_do_not() -> None:
    """kazoo's write_string turns "" into null; zkreg.proto keeps them apart (STYLE.md)."""
    S = pytest.importorskip("kazoo.protocol.serialization")
    assert bytes(S.Sync("").serialize()) == R.SyncRequest(None).serialize()
    assert R.SyncRequest("").serialize() == bytes(4)


def test_kazoo_parses_our_replies() -> None:
    """kazoo's reply parsers read what zkreg.proto encodes."""
    S = pytest.importorskip("kazoo.protocol.serialization")
    stat = R.Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    data, kazoo_stat = S.GetData.deserialize(R.GetDataResponse(b"v", stat).serialize(), 0)
    assert data == b"v" and tuple(kazoo_stat) == tuple(range(1, 12))
    header, _ = S.ReplyHeader.deserialize(R.ReplyHeader(3, 99, -101).serialize(), 0)
    assert tuple(header) == (3, 99, -101)
    event, _ = S.Watch.deserialize(R.WatcherEvent(3, 3, "/p").serialize(), 0)
    assert tuple(event) == (3, 3, "/p")
    connect, _ = S.Connect.deserialize(
        R.ConnectResponse(0, 4000, 5, b"k" * 16, False).serialize(), 0
    )
    assert (connect.time_out, connect.session_id, connect.read_only) == (4000, 5, False)
