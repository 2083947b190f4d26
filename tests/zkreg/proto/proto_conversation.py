"""
Decode a recorded ZooKeeper conversation (a fixture of C{fixtures/capture.py}) with
L{zkreg.proto}, the way a server and a client would: the first frame each way on a
connection is the handshake, then requests are a header and the body
L{zkreg.proto.ops.OPS} names, and replies are matched to their request by xid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkreg.proto import multi
from zkreg.proto import records as R
from zkreg.proto.consts import OpCode, Xid
from zkreg.proto.ops import MULTI, OPS

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_NAMES = ("zookeeper_raw.json", "zookeeper_old_handshake.json", "kazoo.json", "zkcli.json")


@dataclass
class Frame:
    """
    One decoded frame.

    @ivar conn: the connection's number in the fixture.
    @ivar direction: C{"c2s"} or C{"s2c"}.
    @ivar raw: the payload as recorded (without the length prefix).
    @ivar header: the RequestHeader or ReplyHeader (None for a handshake frame).
    @ivar body: the decoded body: a record, a multi list, or None.
    @ivar opcode: the request's opcode (for replies, that of the matched request;
        C{OpCode.notification} for watch events; None for handshakes).
    """

    conn: int
    direction: str
    raw: bytes
    header: Any
    body: Any
    opcode: int | None

    def reencode(self) -> bytes:
        """@return: the frame encoded again from the decoded values."""
        out = bytearray()
        if self.header is not None:
            self.header.serialize_into(out)
        if self.opcode in (OpCode.multi, OpCode.multiRead) and self.body is not None:
            if self.direction == "c2s":
                multi.encode_request_into(self.body, out)
            else:
                multi.encode_response_into(self.body, out)
        elif self.body is not None:
            self.body.serialize_into(out)
        return bytes(out)


def load_frames(name: str) -> tuple[str, list[tuple[int, str, bytes]]]:
    """@return: the fixture's source description and its raw frames."""
    document = json.loads((FIXTURES / name).read_text())
    frames = [(f["conn"], f["dir"], bytes.fromhex(f["hex"])) for f in document["frames"]]
    return document["source"], frames


def _decode_body(spec: Any, payload: bytes, offset: int, request: bool) -> tuple[Any, int]:
    if spec is None:
        return None, offset
    if spec is MULTI:
        if request:
            return multi.decode_request(payload, offset)
        return multi.decode_response(payload, offset)
    return spec.deserialize(payload, offset)


class _Connection:
    def __init__(self) -> None:
        self.greeted = {"c2s": False, "s2c": False}
        self.pending: dict[int, int] = {}


def decode_conversation(frames: list[tuple[int, str, bytes]]) -> list[Frame]:
    """
    Decode every frame of a fixture; each must be consumed exactly.

    @raise AssertionError: when bytes are left over after a frame's records.
    """
    decoded: list[Frame] = []
    connections: dict[int, _Connection] = {}
    for conn, direction, payload in frames:
        state = connections.setdefault(conn, _Connection())
        if not state.greeted[direction]:
            state.greeted[direction] = True
            handshake = R.ConnectRequest if direction == "c2s" else R.ConnectResponse
            decoded.append(
                Frame(conn, direction, payload, None, handshake.from_bytes(payload), None)
            )
            continue
        if direction == "c2s":
            header, offset = R.RequestHeader.deserialize(payload)
            body, offset = _decode_body(OPS[header.type].request, payload, offset, True)
            state.pending[header.xid] = header.type
            opcode = header.type
        else:
            header, offset = R.ReplyHeader.deserialize(payload)
            if header.xid == Xid.NOTIFICATION:
                opcode = OpCode.notification
                body, offset = R.WatcherEvent.deserialize(payload, offset)
            else:
                opcode = state.pending.pop(header.xid)
                if header.err != 0 and offset == len(payload):
                    body = None
                else:
                    body, offset = _decode_body(OPS[opcode].response, payload, offset, False)
        frame = Frame(conn, direction, payload, header, body, opcode)
        if offset != len(payload):
            raise AssertionError(f"{len(payload) - offset} bytes left in {frame}")
        decoded.append(frame)
    return decoded
