"""
A small blocking ZooKeeper client speaking the wire protocol through L{zkreg.proto}.

It exists for what kazoo cannot do or hides: the operations of ZooKeeper 3.5+
(containers, TTL nodes, addWatch, removeWatches, getEphemerals,
getAllChildrenNumber, whoAmI, multiRead), paths kazoo would normalise, malformed
requests, and the exact order of frames on the connection (a watch event read
before the reply that caused it).

One socket, no threads: L{RawClient.call} sends a request and reads frames until
that request's reply, keeping every notification met on the way in L{RawClient.events}
and every frame in L{RawClient.trace}, in arrival order.  Idle waits
(L{RawClient.wait_events}) ping so the session stays alive.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from zkreg.proto import multi as multi_codec
from zkreg.proto import records as R
from zkreg.proto.consts import Err, EventType, KeeperState, OpCode

#: The response body record of each opcode (None: the reply has no body).
RESPONSE_RECORDS: dict[int, type | None] = {
    OpCode.create: R.CreateResponse,
    OpCode.create2: R.Create2Response,
    OpCode.createContainer: R.Create2Response,
    OpCode.createTTL: R.Create2Response,
    OpCode.delete: None,
    OpCode.exists: R.ExistsResponse,
    OpCode.getData: R.GetDataResponse,
    OpCode.setData: R.SetDataResponse,
    OpCode.getACL: R.GetACLResponse,
    OpCode.setACL: R.SetACLResponse,
    OpCode.getChildren: R.GetChildrenResponse,
    OpCode.getChildren2: R.GetChildren2Response,
    OpCode.sync: R.SyncResponse,
    OpCode.check: None,
    OpCode.checkWatches: None,
    OpCode.removeWatches: None,
    OpCode.getEphemerals: R.GetEphemeralsResponse,
    OpCode.getAllChildrenNumber: R.GetAllChildrenNumberResponse,
    OpCode.addWatch: None,
    OpCode.whoAmI: R.WhoAmIResponse,
    OpCode.setWatches: None,
    OpCode.setWatches2: None,
    OpCode.reconfig: R.GetDataResponse,
    OpCode.sasl: R.SetSASLResponse,
    OpCode.closeSession: None,
    OpCode.ping: None,
    OpCode.auth: None,
}

#: Opcodes whose reply zxid is the zxid of the write (or of its error txn).
WRITE_OPCODES = frozenset(
    {
        OpCode.create,
        OpCode.create2,
        OpCode.createContainer,
        OpCode.createTTL,
        OpCode.delete,
        OpCode.setData,
        OpCode.setACL,
        OpCode.multi,
    }
)

NOTIFICATION_XID = -1
PING_XID = -2
AUTH_XID = -4
SET_WATCHES_XID = -8


class ConnectionClosed(ConnectionError):
    """The server closed the connection."""


def err_name(code: int) -> str:
    """@return: the ZooKeeper name of an error code (or the number)."""
    try:
        return Err(code).name
    except ValueError:
        return str(code)


def event_name(code: int) -> str:
    """@return: the name of a watch event type."""
    try:
        return EventType(code).name
    except ValueError:
        return str(code)


def state_name(code: int) -> str:
    """@return: the name of a keeper state."""
    try:
        return KeeperState(code).name
    except ValueError:
        return str(code)


@dataclass
class Reply:
    """
    The answer to one request.

    @ivar opcode: the request's opcode.
    @ivar xid: the reply header xid.
    @ivar zxid: the reply header zxid.
    @ivar err: the reply header error code (0 is OK).
    @ivar body: the decoded body (a record; for multi and multiRead a list of
        C{(result type, err, record)}), or None.
    @ivar trailing: bytes left after the body (should be none).
    """

    opcode: int
    xid: int
    zxid: int
    err: int
    body: Any = None
    trailing: int = 0

    @property
    def ok(self) -> bool:
        return self.err == 0

    def describe_for_diff(self) -> dict[str, Any]:
        """
        The comparable view: error name, body, and for writes the reply zxid (reads
        answer the server's latest zxid, which background work may move).
        """
        from tests.support.differential import Zxid

        view: dict[str, Any] = {"err": err_name(self.err), "body": record_view(self.body)}
        if self.opcode in WRITE_OPCODES:
            view["zxid"] = Zxid(self.zxid)
        if self.trailing:
            view["trailing_bytes"] = self.trailing
        return view


def record_view(value: Any) -> Any:
    """A decoded record (or list of them) as plain data, stats tagged."""
    from tests.support.differential import tag_stat

    if isinstance(value, R.Stat):
        return {"stat": tag_stat(value)}
    if isinstance(value, R.ACL):
        return {"acl": (value.perms, value.id.scheme, value.id.id)}
    if isinstance(value, R.Id):
        return {"id": (value.scheme, value.id)}
    if hasattr(value, "as_dict") and hasattr(value, "_fields"):
        return {type(value).__name__: {k: record_view(v) for k, v in value.as_dict().items()}}
    if isinstance(value, list | tuple):
        items = [record_view(v) for v in value]
        if len(value) == 3 and isinstance(value[0], int) and isinstance(value[1], int):
            # a multi result (type, err, record)
            return {"type": _op_name(value[0]), "err": err_name(value[1]), "result": items[2]}
        return items
    return value


def _op_name(code: int) -> str:
    try:
        return OpCode(code).name
    except ValueError:
        return str(code)


@dataclass
class Event:
    """A watch notification: type, state and path."""

    type: int
    state: int
    path: str
    #: the notification's reply-header zxid (ZooKeeper 3.8 sends -1); not part of
    #: the comparable view, recorded by the scenarios about headers.
    header_zxid: int = -1

    def describe_for_diff(self) -> dict[str, Any]:
        return {
            "event": event_name(self.type),
            "state": state_name(self.state),
            "path": self.path,
        }


@dataclass
class ConnectResult:
    """The handshake answer."""

    protocol_version: int
    timeout_ms: int
    session_id: int
    passwd: bytes
    read_only: bool | None


@dataclass
class RawClient:
    """
    A blocking single-connection ZooKeeper client for tests.

    @ivar port: the server's client port on C{host}.
    @ivar timeout_ms: the session timeout to ask for.
    @ivar session_id: 0 for a new session, or one to resume; set after connect.
    @ivar passwd: the session password (16 zero bytes for a new session).
    @ivar last_zxid: the largest zxid seen; sent on (re)connect.
    @ivar events: every watch notification received, in order.
    @ivar trace: every frame received, in order: C{("event", Event)},
        C{("reply", Reply)}.
    """

    port: int
    host: str = "127.0.0.1"
    timeout_ms: int = 30000
    session_id: int = 0
    passwd: bytes = b"\x00" * 16
    last_zxid: int = 0
    read_only: bool = False
    io_timeout: float = 10.0
    negotiated_timeout_ms: int = 0
    events: list[Event] = field(default_factory=list)
    trace: list[tuple[str, Any]] = field(default_factory=list)
    _sock: socket.socket | None = None
    _xid: int = 0
    _pending: dict[int, int] = field(default_factory=dict)
    _buffer: bytearray = field(default_factory=bytearray)
    _last_send: float = 0.0

    # -- connection ------------------------------------------------------------------

    def open_socket(self) -> None:
        """Open the TCP connection only (for crafted handshakes)."""
        self.drop()
        self._sock = socket.create_connection((self.host, self.port), timeout=self.io_timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()

    def connect(self) -> ConnectResult:
        """
        Open a connection and do the handshake (new session, or resume
        C{session_id}/C{passwd}).

        @return: the server's answer; a timeout of 0 means the session is expired
            (ZooKeeper then closes the connection).
        """
        self.open_socket()
        request = R.ConnectRequest(
            0, self.last_zxid, self.timeout_ms, self.session_id, self.passwd, self.read_only
        )
        self.send_frame(request.serialize())
        payload = self.read_frame_bytes()
        response, end = R.ConnectResponse.deserialize(payload)
        result = ConnectResult(
            response.protocolVersion,
            response.timeOut,
            response.sessionId,
            response.passwd,
            response.readOnly,
        )
        if response.timeOut > 0:
            self.session_id = response.sessionId
            self.passwd = response.passwd
            self.negotiated_timeout_ms = response.timeOut
        return result

    def reconnect(self) -> ConnectResult:
        """Drop the socket (no closeSession) and resume the same session."""
        self.drop()
        return self.connect()

    def drop(self) -> None:
        """Close the socket without ending the session (a network failure)."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
        self._pending.clear()

    def close(self) -> None:
        """End the session (closeSession) if connected, then close the socket."""
        if self._sock is None:
            return
        try:
            self.call(OpCode.closeSession, None, timeout=5.0)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.drop()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    # -- framing ---------------------------------------------------------------------

    def send_frame(self, payload: bytes) -> None:
        """Send one length-prefixed frame."""
        assert self._sock is not None, "not connected"
        self._sock.sendall(struct.pack(">i", len(payload)) + payload)
        self._last_send = time.monotonic()

    def send_bytes(self, data: bytes) -> None:
        """Send raw bytes (for malformed frames)."""
        assert self._sock is not None, "not connected"
        self._sock.sendall(data)
        self._last_send = time.monotonic()

    def _fill(self, count: int, deadline: float) -> None:
        assert self._sock is not None, "not connected"
        while len(self._buffer) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame from server before the deadline")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("no frame from server before the deadline") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.drop()
                raise ConnectionClosed("server closed the connection")
            self._buffer += chunk

    def read_frame_bytes(self, timeout: float | None = None) -> bytes:
        """@return: the payload of the next frame."""
        deadline = time.monotonic() + (self.io_timeout if timeout is None else timeout)
        self._fill(4, deadline)
        (length,) = struct.unpack(">i", self._buffer[:4])
        self._fill(4 + length, deadline)
        payload = bytes(self._buffer[4 : 4 + length])
        del self._buffer[: 4 + length]
        return payload

    def server_closed(self, timeout: float = 5.0) -> bool:
        """
        @return: whether the server closes the connection within C{timeout}
            (frames arriving meanwhile are processed as usual).
        """
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.read_one(timeout=max(0.01, deadline - time.monotonic()))
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False
        return False

    # -- requests --------------------------------------------------------------------

    def submit(self, opcode: int, record: Any, xid: int | None = None) -> int:
        """
        Send a request without waiting.

        @param record: the request record, a list of C{(opcode, record)} for multi /
            multiRead, raw C{bytes} for a hand-made body, or None for no body.
        @return: the xid used.
        """
        if xid is None:
            self._xid += 1
            xid = self._xid
        out = bytearray()
        R.RequestHeader(xid, int(opcode)).serialize_into(out)
        if isinstance(record, bytes | bytearray):
            out += record
        elif isinstance(record, list) and opcode in (OpCode.multi, OpCode.multiRead):
            multi_codec.encode_request_into(record, out)
        elif record is not None:
            record.serialize_into(out)
        self._pending[xid] = int(opcode)
        self.send_frame(bytes(out))
        return xid

    def read_one(self, timeout: float | None = None) -> tuple[str, Any]:
        """Read and decode one frame: C{("event", Event)} or C{("reply", Reply)}."""
        payload = self.read_frame_bytes(timeout)
        header, offset = R.ReplyHeader.deserialize(payload)
        if header.zxid > self.last_zxid:
            self.last_zxid = header.zxid
        if header.xid == NOTIFICATION_XID:
            watcher_event, _ = R.WatcherEvent.deserialize(payload, offset)
            event = Event(watcher_event.type, watcher_event.state, watcher_event.path, header.zxid)
            self.events.append(event)
            self.trace.append(("event", event))
            return ("event", event)
        opcode = self._pending.pop(header.xid, None)
        if opcode is None:
            opcode = {PING_XID: OpCode.ping, AUTH_XID: OpCode.auth}.get(header.xid, -999)
        body: Any = None
        if offset < len(payload):
            if opcode in (OpCode.multi, OpCode.multiRead):
                body, offset = multi_codec.decode_response(payload, offset)
            else:
                record_class = RESPONSE_RECORDS.get(opcode)
                if record_class is not None and header.err == 0:
                    body, offset = record_class.deserialize(payload, offset)
        reply = Reply(opcode, header.xid, header.zxid, header.err, body, len(payload) - offset)
        if opcode != OpCode.ping:
            self.trace.append(("reply", reply))
        return ("reply", reply)

    def wait_reply(self, xid: int, timeout: float | None = None) -> Reply:
        """Read frames until the reply to C{xid}."""
        deadline = time.monotonic() + (self.io_timeout if timeout is None else timeout)
        while True:
            kind, item = self.read_one(timeout=max(0.01, deadline - time.monotonic()))
            if kind == "reply" and item.xid == xid:
                return item

    def call(self, opcode: int, record: Any, timeout: float | None = None) -> Reply:
        """Send a request and return its reply (events met on the way are kept)."""
        return self.wait_reply(self.submit(opcode, record), timeout)

    def ping(self) -> None:
        """Send a ping and read until its answer."""
        self.submit(OpCode.ping, None, xid=PING_XID)
        self.wait_reply(PING_XID)

    def wait_events(self, count: int, timeout: float = 10.0) -> list[Event]:
        """
        Read until at least C{count} events have arrived in total, pinging every
        second so the session stays alive.

        @raise TimeoutError: when they do not arrive in time.
        """
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(self.events)} of {count} events after {timeout}s")
            if time.monotonic() - self._last_send > 1.0:
                self.submit(OpCode.ping, None, xid=PING_XID)
            try:
                self.read_one(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                continue
        return self.events

    def idle(self, seconds: float) -> None:
        """Stay connected for C{seconds}, pinging and collecting events."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if time.monotonic() - self._last_send > 1.0:
                self.submit(OpCode.ping, None, xid=PING_XID)
            try:
                self.read_one(timeout=min(0.3, max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                continue

    def settle(self) -> None:
        """A round trip (sync): events queued before its reply have been read."""
        self.sync("/")

    # -- operations ------------------------------------------------------------------

    def create(
        self,
        path: str,
        data: bytes | None = b"",
        acl: Any = None,
        flags: int = 0,
        opcode: int = OpCode.create,
        ttl: int | None = None,
    ) -> Reply:
        """create (or create2/createContainer/createTTL with C{opcode})."""
        from zkreg.proto.consts import OPEN_ACL_UNSAFE

        acl_list = list(OPEN_ACL_UNSAFE if acl is None else acl)
        if opcode == OpCode.createTTL:
            record: Any = R.CreateTTLRequest(path, data, acl_list, flags, ttl or 0)
        else:
            record = R.CreateRequest(path, data, acl_list, flags)
        return self.call(opcode, record)

    def create2(
        self, path: str, data: bytes | None = b"", flags: int = 0, acl: Any = None
    ) -> Reply:
        return self.create(path, data, acl, flags, OpCode.create2)

    def create_container(self, path: str, data: bytes | None = b"", acl: Any = None) -> Reply:
        return self.create(path, data, acl, 4, OpCode.createContainer)

    def create_ttl(
        self, path: str, ttl: int, data: bytes | None = b"", flags: int = 5, acl: Any = None
    ) -> Reply:
        return self.create(path, data, acl, flags, OpCode.createTTL, ttl)

    def delete(self, path: str, version: int = -1) -> Reply:
        return self.call(OpCode.delete, R.DeleteRequest(path, version))

    def exists(self, path: str, watch: bool = False) -> Reply:
        return self.call(OpCode.exists, R.ExistsRequest(path, watch))

    def get_data(self, path: str, watch: bool = False) -> Reply:
        return self.call(OpCode.getData, R.GetDataRequest(path, watch))

    def set_data(self, path: str, data: bytes | None, version: int = -1) -> Reply:
        return self.call(OpCode.setData, R.SetDataRequest(path, data, version))

    def get_children(self, path: str, watch: bool = False) -> Reply:
        return self.call(OpCode.getChildren, R.GetChildrenRequest(path, watch))

    def get_children2(self, path: str, watch: bool = False) -> Reply:
        return self.call(OpCode.getChildren2, R.GetChildren2Request(path, watch))

    def get_acl(self, path: str) -> Reply:
        return self.call(OpCode.getACL, R.GetACLRequest(path))

    def set_acl(self, path: str, acl: Any, version: int = -1) -> Reply:
        return self.call(OpCode.setACL, R.SetACLRequest(path, list(acl), version))

    def sync(self, path: str) -> Reply:
        return self.call(OpCode.sync, R.SyncRequest(path))

    def check(self, path: str, version: int) -> Reply:
        return self.call(OpCode.check, R.CheckVersionRequest(path, version))

    def multi(self, ops: list[tuple[int, Any]]) -> Reply:
        return self.call(OpCode.multi, ops)

    def multi_read(self, ops: list[tuple[int, Any]]) -> Reply:
        return self.call(OpCode.multiRead, ops)

    def add_watch(self, path: str, mode: int) -> Reply:
        return self.call(OpCode.addWatch, R.AddWatchRequest(path, mode))

    def check_watches(self, path: str, watcher_type: int) -> Reply:
        return self.call(OpCode.checkWatches, R.CheckWatchesRequest(path, watcher_type))

    def remove_watches(self, path: str, watcher_type: int) -> Reply:
        return self.call(OpCode.removeWatches, R.RemoveWatchesRequest(path, watcher_type))

    def get_ephemerals(self, prefix: str) -> Reply:
        return self.call(OpCode.getEphemerals, R.GetEphemeralsRequest(prefix))

    def get_all_children_number(self, path: str) -> Reply:
        return self.call(OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest(path))

    def who_am_i(self) -> Reply:
        return self.call(OpCode.whoAmI, None)

    def add_auth(self, scheme: str, auth: bytes, timeout: float | None = None) -> Reply:
        """addAuth: the reply comes with xid -4."""
        self.submit(OpCode.auth, R.AuthPacket(0, scheme, auth), xid=AUTH_XID)
        self._pending.pop(AUTH_XID, None)
        return self.wait_reply(AUTH_XID, timeout)

    def set_watches(
        self,
        relative_zxid: int,
        data: list[str] = (),  # type: ignore[assignment]
        exist: list[str] = (),  # type: ignore[assignment]
        child: list[str] = (),  # type: ignore[assignment]
        persistent: list[str] | None = None,
        recursive: list[str] | None = None,
    ) -> Reply:
        """setWatches, or setWatches2 when persistent lists are given."""
        if persistent is None and recursive is None:
            record: Any = R.SetWatches(relative_zxid, list(data), list(exist), list(child))
            opcode = OpCode.setWatches
        else:
            record = R.SetWatches2(
                relative_zxid,
                list(data),
                list(exist),
                list(child),
                list(persistent or []),
                list(recursive or []),
            )
            opcode = OpCode.setWatches2
        self.submit(opcode, record, xid=SET_WATCHES_XID)
        return self.wait_reply(SET_WATCHES_XID)


def describe_events(events: list[Event]) -> list[dict[str, Any]]:
    """@return: the comparable view of a list of events."""
    return [e.describe_for_diff() for e in events]


def describe_trace(trace: list[tuple[str, Any]]) -> list[Any]:
    """@return: the comparable view of frame order: events and replies by opcode."""
    view = []
    for kind, item in trace:
        if kind == "event":
            view.append(("event", item.describe_for_diff()))
        else:
            view.append(("reply", _op_name(item.opcode), err_name(item.err)))
    return view
