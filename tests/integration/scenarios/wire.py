"""
The connection layer: framing edge cases (split and coalesced frames, a request
pipelined behind the handshake, zero-length frames), xids echoed as sent, handshake
field variants, and what a four-letter word means once a session is established.
"""

from __future__ import annotations

import struct

from tests.integration.scenarios._ops import op_create
from tests.support.differential import ScenarioContext, scenario
from tests.support.rawclient import ConnectionClosed, RawClient
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode


def _frame(xid: int, opcode: int, record) -> bytes:
    out = bytearray()
    R.RequestHeader(xid, opcode).serialize_into(out)
    if record is not None:
        record.serialize_into(out)
    return struct.pack(">i", len(out)) + bytes(out)


def _bare(ctx: ScenarioContext, **options) -> RawClient:
    raw = RawClient(ctx.server.port, **options)
    ctx._raw_clients.append(raw)
    return raw


@scenario()
def wire_request_pipelined_behind_handshake(ctx: ScenarioContext) -> None:
    """A create sent in the same packet as the ConnectRequest is processed after the
    session is established."""
    setup = ctx.raw()
    setup.create(ctx.root)
    raw = _bare(ctx)
    raw.open_socket()
    connect = R.ConnectRequest(0, 0, 10000, 0, b"\x00" * 16, False).serialize()
    request = R.CreateRequest(ctx.path("early"), b"x", [R.ACL(31, R.Id("world", "anyone"))], 1)
    raw.send_bytes(struct.pack(">i", len(connect)) + connect + _frame(1, OpCode.create, request))
    response, _ = R.ConnectResponse.deserialize(raw.read_frame_bytes())
    ctx.record("timeout", response.timeOut)
    ctx.session_ids.append(response.sessionId)
    raw._pending[1] = OpCode.create
    ctx.call("create reply", raw.wait_reply, 1)
    ctx.call("stat", setup.exists, ctx.path("early"))


@scenario()
def wire_frame_split_into_bytes(ctx: ScenarioContext) -> None:
    """A request delivered one byte per send is assembled and answered."""
    raw = ctx.raw()
    raw.create(ctx.root, b"rootdata")
    frame = _frame(50, OpCode.getData, R.GetDataRequest(ctx.root, False))
    raw._pending[50] = OpCode.getData
    for index in range(len(frame)):
        raw.send_bytes(frame[index : index + 1])
    ctx.call("reply", raw.wait_reply, 50)


@scenario()
def wire_frames_coalesced(ctx: ScenarioContext) -> None:
    """Five requests in one send are answered in order."""
    raw = ctx.raw()
    raw.create(ctx.root)
    blob = b""
    for i in range(5):
        raw._pending[100 + i] = OpCode.create
        blob += _frame(100 + i, OpCode.create, op_create(ctx.path(f"n{i}"))[1])
    raw.trace.clear()
    raw.send_bytes(blob)
    raw.wait_reply(104)
    ctx.record("replies", [item for kind, item in raw.trace if kind == "reply"])


@scenario()
def wire_xids_echoed(ctx: ScenarioContext) -> None:
    """Replies carry the xid the client sent, even repeated, zero or large."""
    raw = ctx.raw()
    raw.create(ctx.root)
    for xid in (7, 7, 0, 2147483647, 123456):
        raw.submit(OpCode.exists, R.ExistsRequest(ctx.root, False), xid=xid)
        reply = raw.wait_reply(xid)
        ctx.record(f"xid {xid}", (reply.xid, reply.err))


@scenario()
def wire_zero_length_frame(ctx: ScenarioContext) -> None:
    """A zero-length frame after the handshake."""
    raw = ctx.raw()
    raw.send_bytes(struct.pack(">i", 0))
    ctx.call("closed", raw.server_closed, 3.0)


@scenario()
def wire_header_only_create(ctx: ScenarioContext) -> None:
    """A create frame with a header and no body."""
    raw = ctx.raw()
    ctx.call("create without body", raw.call, OpCode.create, b"", 3.0)
    ctx.call("closed", raw.server_closed, 1.0)


@scenario()
def wire_four_letter_word_after_handshake(ctx: ScenarioContext) -> None:
    """ "ruok" sent on an established session is just a (huge) frame length."""
    raw = ctx.raw()
    raw.send_bytes(b"ruok")
    ctx.call("closed", raw.server_closed, 3.0)


@scenario()
def wire_handshake_protocol_version_and_password(ctx: ScenarioContext) -> None:
    """Handshake variants: protocol version 5, an empty password, a 20-byte one."""
    for label, version, password in (
        ("version 5", 5, b"\x00" * 16),
        ("empty pw", 0, b""),
        ("long pw", 0, b"\x01" * 20),
    ):
        raw = _bare(ctx)
        raw.open_socket()
        raw.send_frame(R.ConnectRequest(version, 0, 10000, 0, password, False).serialize())
        try:
            response, _ = R.ConnectResponse.deserialize(raw.read_frame_bytes())
            ctx.record(label, (response.protocolVersion, response.timeOut, len(response.passwd)))
            ctx.session_ids.append(response.sessionId)
        except ConnectionClosed:
            ctx.record(label, "closed")


@scenario()
def wire_handshake_oversized(ctx: ScenarioContext) -> None:
    """A first frame claiming more than jute.maxbuffer bytes is refused."""
    raw = _bare(ctx)
    raw.open_socket()
    raw.send_bytes(struct.pack(">i", 5_000_000) + b"\x00" * 64)
    ctx.call("closed", raw.server_closed, 3.0)


@scenario()
def wire_concurrent_sequential_creates(ctx: ScenarioContext) -> None:
    """Eight clients creating 25 sequential children each, concurrently: 200
    distinct names numbered 0..199 and the parent's cversion 200."""
    import threading

    setup = ctx.raw()
    setup.create(ctx.root)
    clients = [ctx.raw(register_session=False) for _ in range(8)]
    errors: list[object] = []

    def work(raw: RawClient) -> None:
        xids = [raw.submit(*op_create(ctx.path("q-"), b"", 2)) for _ in range(25)]
        for xid in xids:
            reply = raw.wait_reply(xid, 30.0)
            if not reply.ok:
                errors.append(reply.err)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60.0)
    ctx.record("errors", errors)
    names = sorted(setup.get_children(ctx.root).body.children)
    ctx.record("names", names == [f"q-{i:010d}" for i in range(200)])
    ctx.call("parent", setup.exists, ctx.root)
