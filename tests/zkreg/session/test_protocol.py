"""
The client connection over a StringTransport: framing, handshake, ordering, limits.
"""

from __future__ import annotations

import struct

from twisted.internet import address, task
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest

from zkreg.config import ServerConfig
from zkreg.data.messages import Commit, Outcome
from zkreg.data.server import DataServerFailed
from zkreg.proto.consts import OPEN_ACL_UNSAFE as OPEN_ACL
from zkreg.proto.consts import Err, EventType, OpCode
from zkreg.proto.records import (
    AuthPacket,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    CreateResponse,
    ExistsRequest,
    GetDataRequest,
    GetDataResponse,
    ReplyHeader,
    RequestHeader,
    SetDataRequest,
    SetDataResponse,
    SetWatches,
    Stat,
    WatcherEvent,
    WhoAmIResponse,
)
from zkreg.session.factory import SessionServerFactory

from .fakes import CallbackFakeLink, FakeLink, FakeNode

_STAT = Stat(1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1)


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def connect_frame(session_id=0, password=b"\0" * 16, timeout=30000, last_zxid=0, read_only=False):
    return frame(ConnectRequest(0, last_zxid, timeout, session_id, password, read_only).serialize())


def request_frame(xid: int, opcode: int, body=None) -> bytes:
    payload = RequestHeader(xid, opcode).serialize()
    if body is not None:
        payload += body.serialize()
    return frame(payload)


def split_frames(data: bytes) -> list[bytes]:
    frames = []
    offset = 0
    while offset < len(data):
        (length,) = struct.unpack_from(">i", data, offset)
        frames.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return frames


def reply_of(payload: bytes):
    header, offset = ReplyHeader.deserialize(payload, 0)
    return header, payload[offset:]


class FakeReader:
    """Answers getData from the fake view; records the calls."""

    def __init__(self, link: FakeLink) -> None:
        self.link = link
        self.calls = []

    def __call__(self, connection, opcode, record):
        self.calls.append((opcode, record.path))
        node = self.link.view.get(record.path)
        if node is None:
            if opcode == OpCode.exists and record.watch:
                connection.factory.watches.add_data_watch(record.path, connection)
            return Err.NONODE, None
        if record.watch:
            connection.factory.watches.add_data_watch(record.path, connection)
        if opcode == OpCode.exists:
            return 0, None
        return 0, GetDataResponse(node.data, _STAT)


class ConnectionTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.link = FakeLink()
        self.config = ServerConfig(
            four_letter_words=frozenset({"ruok", "srvr"}), max_client_cnxns=2
        )
        self.reader = FakeReader(self.link)
        self.factory = SessionServerFactory(self.config, self.link, self.clock, reader=self.reader)

    def connect(self, host="127.0.0.1", port=40000):
        peer = address.IPv4Address("TCP", host, port)
        proto = self.factory.buildProtocol(peer)
        if proto is None:
            return None, None
        transport = StringTransport(peerAddress=peer)
        proto.makeConnection(transport)
        return proto, transport

    def establish(self, **kwargs):
        proto, transport = self.connect()
        proto.dataReceived(connect_frame(**kwargs))
        response, _ = ConnectResponse.deserialize(split_frames(transport.value())[0], 0)
        transport.clear()
        return proto, transport, response


class HandshakeTests(ConnectionTestCase):
    def test_new_session_negotiates_timeout(self):
        """A timeout above the maximum is cut to 20 ticks; the readOnly byte is echoed."""
        proto, transport, response = self.establish(timeout=999999)
        self.assertEqual(response.timeOut, 40000)
        self.assertEqual(response.sessionId, 0x100)
        self.assertEqual(response.readOnly, False)
        self.assertEqual(proto.session_id, 0x100)

    def test_timeout_below_minimum_is_raised(self):
        _, _, response = self.establish(timeout=10)
        self.assertEqual(response.timeOut, 4000)

    def test_old_client_without_read_only_byte(self):
        """A ConnectRequest without the trailing readOnly gets a reply without it."""
        proto, transport = self.connect()
        payload = ConnectRequest(0, 0, 10000, 0, b"\0" * 16, None).serialize()
        proto.dataReceived(frame(payload))
        body = split_frames(transport.value())[0]
        response, end = ConnectResponse.deserialize(body, 0)
        self.assertIsNone(response.readOnly)
        self.assertEqual(end, len(body))
        self.assertEqual(response.timeOut, 10000)

    def test_wrong_password_refused(self):
        """ZooKeeper answers timeout 0, session 0, zero password, and closes."""
        _, _, first = self.establish()
        proto, transport = self.connect(port=40001)
        proto.dataReceived(connect_frame(session_id=first.sessionId, password=b"x" * 16))
        response, _ = ConnectResponse.deserialize(split_frames(transport.value())[0], 0)
        self.assertEqual((response.timeOut, response.sessionId), (0, 0))
        self.assertEqual(response.passwd, b"\0" * 16)
        self.assertTrue(transport.disconnecting)

    def test_reconnect_moves_session(self):
        """Reattaching a session closes the connection it was on."""
        old, old_transport, first = self.establish()
        proto, transport = self.connect(port=40001)
        proto.dataReceived(connect_frame(session_id=first.sessionId, password=first.passwd))
        response, _ = ConnectResponse.deserialize(split_frames(transport.value())[0], 0)
        self.assertEqual(response.sessionId, first.sessionId)
        self.assertTrue(old_transport.disconnecting)
        self.assertIs(self.factory.connections_by_session[first.sessionId], proto)

    def test_client_ahead_refused(self):
        """A client that saw a newer zxid than ours is closed without an answer."""
        proto, transport = self.connect()
        proto.dataReceived(connect_frame(last_zxid=5))
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)

    def test_requests_pipelined_with_connect(self):
        """Requests in the same segment as the ConnectRequest are answered after it."""
        self.link.view.nodes["/a"] = FakeNode(data=b"A")
        proto, transport = self.connect()
        proto.dataReceived(
            connect_frame() + request_frame(1, OpCode.getData, GetDataRequest("/a", False))
        )
        frames = split_frames(transport.value())
        self.assertEqual(len(frames), 2)
        header, body = reply_of(frames[1])
        self.assertEqual((header.xid, header.err), (1, 0))
        self.assertEqual(GetDataResponse.deserialize(body, 0)[0].data, b"A")


class FramingTests(ConnectionTestCase):
    def test_frames_split_across_segments(self):
        self.link.view.nodes["/a"] = FakeNode(data=b"A")
        proto, transport, _ = self.establish()
        data = request_frame(1, OpCode.getData, GetDataRequest("/a", False)) * 3
        for index in range(len(data)):
            proto.dataReceived(data[index : index + 1])
        self.assertEqual([reply_of(f)[0].xid for f in split_frames(transport.value())], [1, 1, 1])

    def test_all_replies_of_one_segment_in_one_write(self):
        self.link.view.nodes["/a"] = FakeNode(data=b"A")
        proto, transport, _ = self.establish()
        writes = []
        proto._write = writes.append
        proto.dataReceived(
            b"".join(
                request_frame(x, OpCode.getData, GetDataRequest("/a", False)) for x in range(5)
            )
        )
        self.assertEqual(len(writes), 1)
        self.assertEqual(len(split_frames(writes[0])), 5)

    def test_oversize_frame_closes(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(struct.pack(">i", self.config.max_packet_size + 1))
        self.assertTrue(transport.disconnected or transport.disconnecting)

    def test_negative_length_closes(self):
        proto, transport = self.connect()
        proto.dataReceived(struct.pack(">i", -5) + b"xxxx")
        self.assertTrue(transport.disconnected or transport.disconnecting)

    def test_garbage_handshake_closes(self):
        proto, transport = self.connect()
        proto.dataReceived(frame(b"\x01\x02"))
        self.assertTrue(transport.disconnected or transport.disconnecting)
        self.assertNotIn(proto, self.factory.connections_by_session.values())

    def test_short_request_closes_only_that_connection(self):
        proto, transport, _ = self.establish()
        other, other_transport = self.connect(port=40002)
        proto.dataReceived(frame(b"\x00\x01"))
        self.assertTrue(transport.disconnected or transport.disconnecting)
        self.assertFalse(other_transport.disconnecting)

    def test_undecodable_body_is_marshalling_error(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(frame(RequestHeader(3, OpCode.getData).serialize() + b"\xff"))
        header, _ = reply_of(split_frames(transport.value())[0])
        self.assertEqual((header.xid, header.err), (3, Err.MARSHALLINGERROR))
        self.assertFalse(transport.disconnecting)

    def test_max_client_cnxns(self):
        self.connect()
        self.connect(port=40001)
        proto, _ = self.connect(port=40002)
        self.assertIsNone(proto)
        proto, _ = self.connect(host="127.0.0.2")
        self.assertIsNotNone(proto)


class RequestTests(ConnectionTestCase):
    def test_ping(self):
        self.link.view.last_zxid = 0
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(-2, OpCode.ping))
        header, body = reply_of(split_frames(transport.value())[0])
        self.assertEqual((header.xid, header.zxid, header.err, body), (-2, 0, 0, b""))

    def test_touch_batched_per_turn(self):
        proto, transport, response = self.establish()
        proto.dataReceived(request_frame(-2, OpCode.ping) * 3)
        self.assertEqual(self.link.touched, [])
        self.clock.advance(0)
        self.assertEqual(self.link.touched, [{response.sessionId}])

    def test_touch_once_per_millisecond_across_turns(self):
        proto, transport, response = self.establish()
        proto.dataReceived(request_frame(-2, OpCode.ping))
        self.clock.advance(0)
        proto.dataReceived(request_frame(-2, OpCode.ping))
        self.clock.advance(0.0004)
        # The second ping came in the millisecond the first one's touch recorded.
        self.assertEqual(self.link.touched, [{response.sessionId}])
        self.clock.advance(0.001)
        proto.dataReceived(request_frame(-2, OpCode.ping))
        self.clock.advance(0)
        self.assertEqual(self.link.touched, [{response.sessionId}] * 2)

    def test_unknown_opcode_unimplemented_and_close(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(7, 999))
        header, _ = reply_of(split_frames(transport.value())[0])
        self.assertEqual((header.xid, header.err), (7, Err.UNIMPLEMENTED))
        self.assertTrue(transport.disconnecting)

    def test_digest_auth_and_who_am_i(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(-4, OpCode.auth, AuthPacket(0, "digest", b"bob:secret")))
        proto.dataReceived(request_frame(1, OpCode.whoAmI))
        frames = split_frames(transport.value())
        self.assertEqual(reply_of(frames[0])[0], ReplyHeader(-4, 0, 0))
        header, body = reply_of(frames[1])
        infos = WhoAmIResponse.deserialize(body, 0)[0].clientInfo
        # ZooKeeper keeps auth ids in a ConcurrentHashMap: whoAmI lists them in its order.
        self.assertEqual(
            [(i.authScheme, i.user) for i in infos], [("digest", "bob"), ("ip", "127.0.0.1")]
        )

    def test_super_digest(self):
        from zkreg.data.acl import AclChecker, generate_digest

        self.factory.acl_checker = AclChecker(generate_digest("super:pw"))
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(-4, OpCode.auth, AuthPacket(0, "digest", b"super:pw")))
        self.assertIn("super", [auth_id.scheme for auth_id in proto.auth])

    def test_unknown_auth_scheme_fails_and_closes(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(-4, OpCode.auth, AuthPacket(0, "kerberos", b"x")))
        header, _ = reply_of(split_frames(transport.value())[0])
        self.assertEqual(header, ReplyHeader(-4, 0, Err.AUTHFAILED))
        self.assertTrue(transport.disconnecting)

    def test_read_waits_behind_write(self):
        """A read after an unanswered write of the same session is answered after it."""
        self.link.view.nodes["/a"] = FakeNode(data=b"old")
        proto, transport, _ = self.establish()
        proto.dataReceived(
            request_frame(1, OpCode.setData, SetDataRequest("/a", b"new", -1))
            + request_frame(2, OpCode.getData, GetDataRequest("/a", False))
        )
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.reader.calls, [])
        self.link.view.nodes["/a"].data = b"new"
        self.link.view.last_zxid = 7
        self.link.submitted[0][1].callback(Outcome(7, 0, None))
        self.clock.advance(0)
        frames = split_frames(transport.value())
        self.assertEqual([reply_of(f)[0].xid for f in frames], [1, 2])
        self.assertEqual(GetDataResponse.deserialize(reply_of(frames[1])[1], 0)[0].data, b"new")

    def test_write_behind_waiting_read_is_held(self):
        """W1, R, W2: W2 is not submitted until R has been answered."""
        self.link.view.nodes["/a"] = FakeNode(data=b"x")
        proto, transport, _ = self.establish()
        proto.dataReceived(
            request_frame(1, OpCode.setData, SetDataRequest("/a", b"1", -1))
            + request_frame(2, OpCode.getData, GetDataRequest("/a", False))
            + request_frame(3, OpCode.setData, SetDataRequest("/a", b"2", -1))
        )
        self.assertEqual(len(self.link.submitted), 1)
        self.link.submitted[0][1].callback(Outcome(1, 0, None))
        self.clock.advance(0)
        self.assertEqual(len(self.link.submitted), 2)
        self.link.submitted[1][1].callback(Outcome(2, 0, None))
        self.clock.advance(0)
        self.assertEqual([reply_of(f)[0].xid for f in split_frames(transport.value())], [1, 2, 3])

    def test_replies_in_request_order_when_writes_finish_out_of_order(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(
            request_frame(1, OpCode.setData, SetDataRequest("/a", b"1", -1))
            + request_frame(2, OpCode.setData, SetDataRequest("/b", b"2", -1))
        )
        self.assertEqual(len(self.link.submitted), 2)
        self.link.submitted[1][1].callback(Outcome(2, 0, None))
        self.clock.advance(0)
        self.assertEqual(transport.value(), b"")
        self.link.submitted[0][1].callback(Outcome(1, 0, None))
        self.clock.advance(0)
        self.assertEqual([reply_of(f)[0].xid for f in split_frames(transport.value())], [1, 2])

    def test_synchronous_writes(self):
        """A link answering inside submit still yields ordered replies, event first."""
        self.link.view.nodes["/a"] = FakeNode(data=b"x")
        self.link.auto_answer = lambda request: (
            [(EventType.NodeDataChanged, request.record.path)],
            Outcome(self.link.view.last_zxid + 1, 0, None),
        )
        proto, transport, _ = self.establish()
        proto.dataReceived(
            request_frame(1, OpCode.getData, GetDataRequest("/a", True))
            + request_frame(2, OpCode.setData, SetDataRequest("/a", b"1", -1))
            + request_frame(3, OpCode.getData, GetDataRequest("/a", False))
        )
        headers = [reply_of(f)[0].xid for f in split_frames(transport.value())]
        self.assertEqual(headers, [1, -1, 2, 3])

    def test_close_session(self):
        proto, transport, response = self.establish()
        proto.dataReceived(request_frame(5, OpCode.closeSession))
        header, _ = reply_of(split_frames(transport.value())[0])
        self.assertEqual((header.xid, header.err), (5, 0))
        self.assertEqual(self.link.closed, [response.sessionId])
        self.assertTrue(transport.disconnecting)

    def test_expiry_closes_connection(self):
        from zkreg.data.messages import Commit

        proto, transport, response = self.establish()
        self.link.commit(Commit(9, 0, 0, -11, None, (), response.sessionId))
        self.clock.advance(0)
        self.assertTrue(transport.disconnecting)


class WatchDeliveryTests(ConnectionTestCase):
    def test_event_to_watcher(self):
        from zkreg.data.messages import Commit

        self.link.view.nodes["/a"] = FakeNode()
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(1, OpCode.exists, ExistsRequest("/b", True)))
        transport.clear()
        self.link.commit(Commit(2, 0, 0, 1, None, ((EventType.NodeCreated, "/b"),)))
        self.clock.advance(0)
        header, body = reply_of(split_frames(transport.value())[0])
        self.assertEqual(header, ReplyHeader(-1, -1, 0))
        self.assertEqual(WatcherEvent.deserialize(body, 0)[0], WatcherEvent(1, 3, "/b"))

    def test_set_watches_fires_missed_events(self):
        view = self.link.view
        view.nodes["/changed"] = FakeNode(mzxid=10)
        view.nodes["/same"] = FakeNode(mzxid=2)
        view.nodes["/kids"] = FakeNode(pzxid=10)
        view.nodes["/exists"] = FakeNode()
        view.last_zxid = 10
        proto, transport, _ = self.establish()
        record = SetWatches(5, ["/changed", "/same", "/gone"], ["/exists", "/absent"], ["/kids"])
        proto.dataReceived(request_frame(-8, OpCode.setWatches, record))
        frames = split_frames(transport.value())
        events = [WatcherEvent.deserialize(reply_of(f)[1], 0)[0] for f in frames[:-1]]
        self.assertEqual(
            [(e.type, e.path) for e in events],
            [(3, "/changed"), (2, "/gone"), (1, "/exists"), (4, "/kids")],
        )
        self.assertEqual(reply_of(frames[-1])[0], ReplyHeader(-8, 10, 0))
        watches = self.factory.watches
        self.assertTrue(watches.data_watches.contains("/same", proto))
        self.assertTrue(watches.data_watches.contains("/absent", proto))
        self.assertFalse(watches.data_watches.contains("/changed", proto))

    def test_watches_dropped_on_disconnect(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(1, OpCode.exists, ExistsRequest("/b", True)))
        proto.connectionLost(None)
        self.assertEqual(self.factory.watches.watch_count(), 0)


class FourLetterTests(ConnectionTestCase):
    def test_ruok(self):
        proto, transport = self.connect()
        proto.dataReceived(b"ruok")
        self.assertEqual(transport.value(), b"imok")
        self.assertTrue(transport.disconnecting)

    def test_not_whitelisted(self):
        proto, transport = self.connect()
        proto.dataReceived(b"dump")
        self.assertEqual(
            transport.value(), b"dump is not executed because it is not in the whitelist.\n"
        )

    def test_unknown_word_is_a_length(self):
        """Four bytes that are no known word read as a (huge) length: close."""
        proto, transport = self.connect()
        proto.dataReceived(b"xxxx")
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnected or transport.disconnecting)


class EventAclTests(ConnectionTestCase):
    def test_event_not_delivered_without_read(self):
        """ZooKeeper 3.8 filters notifications by the node's READ permission."""
        from zkreg.data.messages import Commit
        from zkreg.proto.records import ACL, Id

        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(1, OpCode.exists, ExistsRequest("/secret", True)))
        transport.clear()
        self.link.view.nodes["/secret"] = FakeNode(acl=(ACL(1, Id("digest", "bob:x")),))
        self.link.commit(Commit(2, 0, 0, 1, None, ((EventType.NodeCreated, "/secret"),)))
        self.clock.advance(0)
        self.assertEqual(transport.value(), b"")


class ResourceTests(ConnectionTestCase):
    def test_sessionless_connection_closed_after_ten_seconds(self):
        proto, transport = self.connect()
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)

    def test_established_connection_not_closed_by_sessionless_timer(self):
        proto, transport, _ = self.establish()
        self.clock.advance(60)
        self.assertFalse(transport.disconnecting)

    def test_large_frame_in_pieces(self):
        proto, transport, _ = self.establish()
        data = bytes(range(256)) * 1000
        whole = request_frame(1, OpCode.setData, SetDataRequest("/big", data, -1))
        for start in range(0, len(whole), 4096):
            proto.dataReceived(whole[start : start + 4096])
        self.assertEqual(len(self.link.submitted), 1)
        self.assertEqual(self.link.submitted[0][0].record.data, data)

    def test_reading_paused_while_too_many_outstanding(self):
        from zkreg.session.pipeline import MAX_OUTSTANDING

        proto, transport, _ = self.establish()
        one = request_frame(1, OpCode.setData, SetDataRequest("/a", b"", -1))
        proto.dataReceived(one * MAX_OUTSTANDING)
        self.assertEqual(transport.producerState, "paused")
        for _, deferred in self.link.submitted:
            deferred.callback(Outcome(1, 0, None))
            self.clock.advance(0)
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(len(split_frames(transport.value())), MAX_OUTSTANDING)


class ZooKeeperQuirkTests(ConnectionTestCase):
    """Behaviours that follow ZooKeeper 3.8.0 exactly, checked against it."""

    def reply(self, proto, transport, frame_bytes):
        transport.clear()
        proto.dataReceived(frame_bytes)
        return reply_of(split_frames(transport.value())[0])[0]

    def test_bad_watcher_type_and_mode_are_marshalling_errors(self):
        from zkreg.proto.records import AddWatchRequest, CheckWatchesRequest, RemoveWatchesRequest

        proto, transport, _ = self.establish()
        for opcode, record in [
            (OpCode.addWatch, AddWatchRequest("/", 2)),
            (OpCode.checkWatches, CheckWatchesRequest("/", 4)),
            (OpCode.removeWatches, RemoveWatchesRequest("/", 5)),
            (OpCode.checkWatches, CheckWatchesRequest(None, 1)),
            (OpCode.getData, GetDataRequest(None, False)),
            (OpCode.exists, ExistsRequest(None, False)),
        ]:
            header = self.reply(proto, transport, request_frame(1, opcode, record))
            self.assertEqual(header.err, Err.MARSHALLINGERROR, (opcode, record))
        self.assertFalse(transport.disconnecting)

    def test_check_watches_on_relative_path(self):
        from zkreg.proto.records import AddWatchRequest, CheckWatchesRequest

        proto, transport, _ = self.establish()
        self.reply(proto, transport, request_frame(1, OpCode.addWatch, AddWatchRequest("a", 0)))
        header = self.reply(
            proto, transport, request_frame(2, OpCode.checkWatches, CheckWatchesRequest("a", 3))
        )
        self.assertEqual(header.err, Err.MARSHALLINGERROR)
        header = self.reply(
            proto, transport, request_frame(3, OpCode.checkWatches, CheckWatchesRequest("", 3))
        )
        self.assertEqual(header.err, Err.NOWATCHER)

    def test_standalone_check_is_answered_only_when_it_fails(self):
        from zkreg.proto.records import CheckVersionRequest

        proto, transport, _ = self.establish()
        proto.dataReceived(
            request_frame(1, OpCode.check, CheckVersionRequest("/", -1))
            + request_frame(2, OpCode.check, CheckVersionRequest("/", 7))
            + request_frame(3, OpCode.exists, ExistsRequest("/", False))
        )
        self.assertEqual(len(self.link.submitted), 2)
        self.link.submitted[0][1].callback(Outcome(1, 0, None))
        self.clock.advance(0)
        self.link.submitted[1][1].callback(Outcome(2, Err.BADVERSION, None))
        self.clock.advance(0)
        frames = split_frames(transport.value())
        self.assertEqual([reply_of(f)[0].xid for f in frames], [2, 3])

    def test_delete_container_body_is_the_raw_path(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(frame(RequestHeader(1, OpCode.deleteContainer).serialize() + b"/c"))
        self.assertEqual(self.link.submitted[0][0].record, "/c")

    def test_invalid_utf8_path_decoded_leniently(self):
        body = RequestHeader(1, OpCode.setData).serialize()
        body += struct.pack(">i", 3) + b"/\xff\xfe" + struct.pack(">i", 1) + b"x"
        body += struct.pack(">i", -1)
        proto, transport, _ = self.establish()
        proto.dataReceived(frame(body))
        self.assertEqual(self.link.submitted[0][0].record.path, "/\ufffd\ufffd")


class RobustnessTests(ConnectionTestCase):
    def test_failure_inside_data_tier_closes_only_that_connection(self):
        def broken(request):
            raise RuntimeError("boom")

        proto, transport, _ = self.establish()
        other, other_transport, _ = self.establish()
        self.link.submit = broken
        proto.dataReceived(request_frame(1, OpCode.setData, SetDataRequest("/a", b"", -1)))
        self.assertTrue(transport.disconnected)
        self.assertFalse(other_transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class InPlaceDecodingTests(ConnectionTestCase):
    def test_body_cut_short_by_its_frame_is_not_completed_from_the_next(self):
        """A body whose string runs past its frame fails alone; the next frame is intact."""
        self.link.view.nodes["/a"] = FakeNode(data=b"A")
        proto, transport, _ = self.establish()
        short = RequestHeader(1, OpCode.getData).serialize() + struct.pack(">i", 12) + b"/a"
        proto.dataReceived(
            frame(short) + request_frame(2, OpCode.getData, GetDataRequest("/a", False))
        )
        headers = [reply_of(f)[0] for f in split_frames(transport.value())]
        self.assertEqual([(h.xid, h.err) for h in headers], [(1, Err.MARSHALLINGERROR), (2, 0)])


class CoalescingTests(ConnectionTestCase):
    def test_replies_of_one_group_commit_leave_in_one_write(self):
        proto, transport, _ = self.establish()
        writes = []
        proto._write = writes.append
        proto.dataReceived(
            b"".join(
                request_frame(x, OpCode.setData, SetDataRequest("/a", b"", -1)) for x in range(4)
            )
        )
        self.link.commit(Commit(1, 0, 0, 5, None, ((EventType.NodeDataChanged, "/w"),)))
        for _, deferred in self.link.submitted:
            deferred.callback(Outcome(1, 0, None))
        self.assertEqual(writes, [])
        self.clock.advance(0)
        self.assertEqual(len(writes), 1)
        self.assertEqual([reply_of(f)[0].xid for f in split_frames(writes[0])], [0, 1, 2, 3])

    def test_queued_frames_go_out_with_the_next_data_received(self):
        """Frames waiting for the turn's flush leave early, in order, with new replies."""
        self.link.view.nodes["/a"] = FakeNode(data=b"A")
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(1, OpCode.setData, SetDataRequest("/a", b"", -1)))
        self.link.submitted[0][1].callback(Outcome(1, 0, None))
        proto.dataReceived(request_frame(2, OpCode.getData, GetDataRequest("/a", False)))
        self.assertEqual([reply_of(f)[0].xid for f in split_frames(transport.value())], [1, 2])
        self.clock.advance(0)
        self.assertEqual(len(split_frames(transport.value())), 2)


class NullDataTests(ConnectionTestCase):
    def test_commit_of_a_node_with_null_data(self):
        """ZooKeeper allows null data; counting it must not break commit handling."""
        proto, transport, response = self.establish()
        self.link.view.nodes["/n"] = FakeNode(data=None)
        self.link.commit(
            Commit(2, 0, 0, -11, None, ((EventType.NodeCreated, "/n"),), response.sessionId)
        )
        self.assertTrue(transport.disconnecting)


class CallbackLinkTests(RequestTests):
    """
    The request tests again over a link with C{submit_with_callback}: the same
    replies, in the same order, with no Deferred between the link and the connection.
    """

    def setUp(self) -> None:
        super().setUp()
        self.link = CallbackFakeLink()
        self.reader = FakeReader(self.link)
        self.factory = SessionServerFactory(self.config, self.link, self.clock, reader=self.reader)

    def test_writes_go_through_submit_with_callback(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(1, OpCode.setData, SetDataRequest("/a", b"", -1)))
        self.link.submitted[0][1].callback(Outcome(3, 0, None))
        self.clock.advance(0)
        self.assertEqual(self.link.callback_submits, 1)
        header, _ = reply_of(split_frames(transport.value())[0])
        self.assertEqual((header.xid, header.zxid, header.err), (1, 3, 0))

    def test_pipelined_writes_answered_in_order_with_their_bodies(self):
        """
        Writes answered one by one at the head of the queue (the answer path without
        the drain loop) leave in request order, with the reply bodies a setData and a
        create carry, in one write per batch; a read queued behind them sees both.
        """
        self.link.view.nodes["/a"] = FakeNode(data=b"A")
        proto, transport, _ = self.establish()
        stat = Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
        proto.dataReceived(
            request_frame(1, OpCode.setData, SetDataRequest("/a", b"x", -1))
            + request_frame(2, OpCode.create, CreateRequest("/b", b"", list(OPEN_ACL), 0))
            + request_frame(3, OpCode.getData, GetDataRequest("/a", False))
        )
        self.link.submitted[0][1].callback(Outcome(5, 0, SetDataResponse(stat)))
        self.link.view.last_zxid = 6
        self.link.submitted[1][1].callback(Outcome(6, 0, CreateResponse("/b")))
        self.assertEqual(transport.value(), b"")  # until the batch is flushed
        self.clock.advance(0)
        frames = split_frames(transport.value())
        headers = [reply_of(f)[0] for f in frames]
        self.assertEqual(
            [(h.xid, h.zxid, h.err) for h in headers], [(1, 5, 0), (2, 6, 0), (3, 6, 0)]
        )
        self.assertEqual(SetDataResponse.from_bytes(reply_of(frames[0])[1]).stat, stat)
        self.assertEqual(CreateResponse.from_bytes(reply_of(frames[1])[1]).path, "/b")
        self.assertEqual(len(transport.io.getvalue()), sum(4 + len(f) for f in frames))

    def test_write_latency_counted_as_its_reply_leaves(self):
        """
        A write's latency runs from the data that brought it to its reply's batch;
        the connection's and the server's counters (cons, stat, mntr) include it once
        the batch is written, before a later read's.
        """
        self.link.view.nodes["/a"] = FakeNode(data=b"A")
        proto, transport, _ = self.establish()
        stats = self.factory.stats
        before = (stats.latency_count, stats.update_latency.count, stats.read_latency.count)
        self.clock.advance(1.0)
        proto.dataReceived(
            request_frame(1, OpCode.setData, SetDataRequest("/a", b"x", -1))
            + request_frame(2, OpCode.getData, GetDataRequest("/a", False))
        )
        self.clock.advance(0.25)
        self.link.view.last_zxid = 8
        self.link.submitted[0][1].callback(Outcome(7, 0, None))
        self.clock.advance(0)
        self.assertEqual(proto.latency_count, 2)
        self.assertEqual(proto.max_latency_ms, 250)
        self.assertEqual(proto.last_zxid, 8)  # the read's, counted after the write
        after = (stats.latency_count, stats.update_latency.count, stats.read_latency.count)
        self.assertEqual([b - a for a, b in zip(before, after, strict=True)], [2, 1, 1])
        self.assertEqual(stats.update_latency.recent[-1], 250)
        self.assertEqual(stats.max_latency_ms, 250)

    def test_data_server_failure_is_system_error_and_keeps_session(self):
        """A DataServerFailed Failure answers SystemError; later requests still answered."""
        self.link.view.nodes["/a"] = FakeNode(data=b"A")
        proto, transport, _ = self.establish()
        proto.dataReceived(
            request_frame(1, OpCode.setData, SetDataRequest("/a", b"", -1))
            + request_frame(2, OpCode.getData, GetDataRequest("/a", False))
        )
        self.link.submitted[0][1].errback(Failure(DataServerFailed("disk gone")))
        self.clock.advance(0)
        headers = [reply_of(f)[0] for f in split_frames(transport.value())]
        self.assertEqual([(h.xid, h.err) for h in headers], [(1, Err.SYSTEMERROR), (2, 0)])
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(DataServerFailed)), 0)

    def test_other_failure_closes_the_connection(self):
        proto, transport, _ = self.establish()
        proto.dataReceived(request_frame(1, OpCode.setData, SetDataRequest("/a", b"", -1)))
        self.link.submitted[0][1].errback(Failure(RuntimeError("link broke")))
        self.assertTrue(transport.disconnecting or transport.disconnected)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
