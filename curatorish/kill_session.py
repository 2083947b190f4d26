"""
Expire a session from outside its client, as Curator's C{KillSession} does: join the
session from a second connection (its id and password) and close it.

Kept apart from L{curatorish.testing} because it needs none of its servers: it
speaks just enough of the wire protocol (a connect and a closeSession, on a blocking
socket) to expire a session on any ZooKeeper-compatible server.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from zkreg.proto.consts import OpCode
from zkreg.proto.records import ConnectRequest, ConnectResponse, RequestHeader


def _read_frame(conn: socket.socket, deadline: float) -> bytes | None:
    def read_exactly(count: int) -> bytes | None:
        data = b""
        while len(data) < count:
            conn.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = conn.recv(count - len(data))
            except (TimeoutError, ConnectionResetError):
                return None
            if not chunk:
                return None
            data += chunk
        return data

    prefix = read_exactly(4)
    if prefix is None:
        return None
    return read_exactly(struct.unpack(">i", prefix)[0])


def _write_frame(conn: socket.socket, frame: bytes) -> None:
    conn.sendall(struct.pack(">i", len(frame)) + frame)


def expire_session(
    connect_string: str,
    session_id: int,
    password: bytes,
    timeout_s: float = 10.0,
    attempts: int = 10,
) -> bool:
    """
    Expire a session now, as Curator's C{KillSession} does: join it from a second
    connection (its id and password) and close it.  The server then drops the
    session's ephemerals and connections; its client sees C{EXPIRED} on reconnecting.

    Joining takes the session away from its client, which may reconnect and take it
    back before our close arrives; so we join again to check that the server now
    calls the session expired, and close again if not (up to C{attempts} times).

    @param connect_string: C{"host:port"} of the server (the first host is used).
    @return: C{True} if the session is now gone because we closed it, C{False} if it
        was already gone (or could not be closed).
    """
    first = connect_string.split("/", 1)[0].split(",")[0]
    host, _, port_text = first.rpartition(":")
    address = (host.strip("[]"), int(port_text))
    deadline = time.monotonic() + timeout_s
    closed_once = False
    for _ in range(attempts):
        if time.monotonic() >= deadline:
            break
        with socket.create_connection(address, timeout=timeout_s) as conn:
            request = ConnectRequest(0, 0, 30_000, session_id, password, False)
            _write_frame(conn, request.serialize())
            frame = _read_frame(conn, deadline)
            if frame is None:
                continue
            response, _ = ConnectResponse.deserialize(frame, 0)
            if response.timeOut <= 0:
                return closed_once
            _write_frame(conn, RequestHeader(1, OpCode.closeSession).serialize())
            _read_frame(conn, deadline)
            closed_once = True
    return False


def session_of(client: Any) -> tuple[int, bytes]:
    """
    @return: C{(session id, password)} of a curatorish client (blocking or async), a
        L{curatorish.connection.ZooKeeperConnection}, or a kazoo client.
    """
    connection = getattr(client, "zookeeper", client)
    if hasattr(connection, "session_password"):
        return connection.session_id, connection.session_password
    if hasattr(client, "client_id") and client.client_id:
        session_id, password = client.client_id
        return session_id, password
    raise TypeError(f"cannot find the session of {client!r}")


__all__ = ["expire_session", "session_of"]
