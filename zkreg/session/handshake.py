"""
The session handshake, as pure functions: negotiate a timeout, encode the answer.

Kept apart from the protocol so the rules (ZooKeeper's
C{ZooKeeperServer.processConnectRequest} and C{finishSessionInit}) can be read and
tested without a transport.
"""

from __future__ import annotations

import struct

from zkreg.proto.records import ConnectRequest, ConnectResponse

_LENGTH = struct.Struct(">i")

#: The password ZooKeeper sends with a refused reconnect: 16 zero bytes.
REFUSED_PASSWORD = bytes(16)


def negotiate_timeout(requested_ms: int, min_ms: int, max_ms: int) -> int:
    """
    Clamp a client's requested session timeout into the server's bounds.

    @return: the negotiated timeout in milliseconds.
    """
    if requested_ms < min_ms:
        return min_ms
    if requested_ms > max_ms:
        return max_ms
    return requested_ms


def decode_connect_request(frame: memoryview | bytes) -> ConnectRequest:
    """
    Decode the first frame of a connection.

    Bytes after the record (and after the optional readOnly flag) are ignored, as
    ZooKeeper's decoder ignores them.

    @param frame: the frame's payload, exactly (the optional trailing readOnly byte
        is recognised by the frame's end).
    @raise zkreg.proto.jute.DecodeError: when it is not a ConnectRequest.
    """
    request, _ = ConnectRequest.deserialize(frame, 0)
    return request


def zxid_ahead_message(peer: str, client_zxid: int, server_zxid: int) -> str:
    """
    ZooKeeper's reason for refusing a client that has seen a newer zxid than ours.
    """
    return (
        f"Refusing session request for client {peer} as it has seen zxid 0x{client_zxid:x} "
        f"our last zxid is 0x{server_zxid:x} client must try another server"
    )


def encode_connect_response(
    session_id: int, timeout_ms: int, password: bytes, with_read_only: bool
) -> bytes:
    """
    Encode the handshake answer as a length-prefixed frame.

    @param with_read_only: append the readOnly flag (false: zkreg is never a read-only
        server), only when the client's request carried one, as ZooKeeper does for
        old clients.
    """
    response = ConnectResponse(
        0, timeout_ms, session_id, password, False if with_read_only else None
    )
    body = response.serialize()
    return _LENGTH.pack(len(body)) + body


def encode_refusal(with_read_only: bool) -> bytes:
    """
    The answer to a reconnect with an expired session or a wrong password.

    ZooKeeper answers both the same way (C{finishSessionInit(cnxn, false)}): timeout
    0, session id 0, a zeroed password, and then closes the connection.
    """
    return encode_connect_response(0, 0, REFUSED_PASSWORD, with_read_only)
