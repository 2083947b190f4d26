"""
The session layer's fast decoding of creates that carry the open ACL.
"""

from __future__ import annotations

import struct

from zkreg.data.tree import OPEN_ACL
from zkreg.proto.consts import CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Err, OpCode
from zkreg.proto.records import ACL, CreateRequest, Id, RequestHeader
from zkreg.session.requests import decode_open_create as _decode_open_create

from .fakes import FakeNode
from .test_protocol import ConnectionTestCase, reply_of, request_frame, split_frames


def _body(path="/a/b", data=b"payload", acl=OPEN_ACL_UNSAFE, flags=2) -> bytes:
    return CreateRequest(path, data, list(acl), flags).serialize()


def test_open_acl_create_decodes_as_the_general_decoder_with_the_shared_tuple():
    for path, data, flags in [("/a/b", b"payload", 2), ("/x", b"", 0), ("/\u00e9", b"\0" * 300, 1)]:
        body = b"HDR" + _body(path, data, flags=flags)
        record = _decode_open_create(body, 3, len(body))
        expected, _ = CreateRequest.deserialize(body, 3)
        assert record == expected
        assert record.acl is OPEN_ACL


def test_other_acls_and_odd_bodies_are_left_to_the_general_decoder():
    two = OPEN_ACL_UNSAFE + READ_ACL_UNSAFE
    read_only_world = (ACL(1, Id("world", "anyone")),)
    for acl in (CREATOR_ALL_ACL, READ_ACL_UNSAFE, two, read_only_world, ()):
        body = _body(acl=acl)
        assert _decode_open_create(body, 0, len(body)) is None
    null_data = _body(data=None)
    assert _decode_open_create(null_data, 0, len(null_data)) is None
    null_path = _body(path=None)
    assert _decode_open_create(null_path, 0, len(null_path)) is None
    body = _body()
    # Cut short by its frame (the bytes after the frame's end must not complete it).
    assert _decode_open_create(body, 0, len(body) - 1) is None
    assert _decode_open_create(body[:-1], 0, len(body) - 1) is None
    bad_utf8 = struct.pack(">i", 2) + b"/\xff" + body[4 + len("/a/b") :]
    assert _decode_open_create(bad_utf8, 0, len(bad_utf8)) is None
    huge_path = struct.pack(">i", 1 << 30) + body[4:]
    assert _decode_open_create(huge_path, 0, len(huge_path)) is None


class CreateOverConnectionTests(ConnectionTestCase):
    def _submitted_record(self, opcode, acl, proto=None):
        if proto is None:
            proto, _, _ = self.establish()
        proto.dataReceived(request_frame(1, opcode, CreateRequest("/n", b"d", list(acl), 0)))
        return self.link.submitted[-1][0].record

    def test_create_with_open_acl_submits_the_shared_tuple(self):
        proto, _, _ = self.establish()
        for opcode in (OpCode.create, OpCode.create2, OpCode.createContainer):
            record = self._submitted_record(opcode, OPEN_ACL_UNSAFE, proto)
            self.assertIs(record.acl, OPEN_ACL)
            self.assertEqual(record, CreateRequest("/n", b"d", list(OPEN_ACL_UNSAFE), 0))

    def test_create_with_another_acl_is_decoded(self):
        record = self._submitted_record(OpCode.create, CREATOR_ALL_ACL)
        self.assertIsInstance(record.acl, list)
        self.assertEqual(record.acl, list(CREATOR_ALL_ACL))

    def test_create_cut_short_is_marshalling_error(self):
        self.link.view.nodes["/a"] = FakeNode(data=b"A")
        proto, transport, _ = self.establish()
        payload = RequestHeader(1, OpCode.create).serialize() + _body()[:-2]
        proto.dataReceived(struct.pack(">i", len(payload)) + payload)
        self.clock.advance(0)
        header, _ = reply_of(split_frames(transport.value())[0])
        self.assertEqual((header.xid, header.err), (1, Err.MARSHALLINGERROR))
        self.assertEqual(self.link.submitted, [])
