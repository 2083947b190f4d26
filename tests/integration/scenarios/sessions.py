"""
Sessions: timeout negotiation, resuming a session, wrong passwords, expiry and the
removal of ephemerals, closeSession, the handshake's edge cases.

Expiry scenarios ask for the minimum timeout (4000 ms at tickTime 2000) and wait
with a deadline; they are marked slow.
"""

from __future__ import annotations

import struct

from tests.support.differential import EventLog, ScenarioContext, scenario
from tests.support.rawclient import ConnectionClosed, RawClient, describe_trace

EXPIRY_DEADLINE = 20.0


def _handshake(ctx: ScenarioContext, **options) -> RawClient:
    raw = RawClient(ctx.server.port, **options)
    ctx._raw_clients.append(raw)
    return raw


def _connect_view(raw: RawClient) -> dict:
    """The comparable part of a handshake answer."""
    try:
        result = raw.connect()
    except ConnectionClosed:
        return {"closed": True}
    return {
        "timeout": result.timeout_ms,
        "session is zero": result.session_id == 0,
        "password length": len(result.passwd or b""),
        "read only": result.read_only,
    }


def _register_timeout(asked: int) -> None:
    def run(ctx: ScenarioContext) -> None:
        raw = _handshake(ctx, timeout_ms=asked)
        ctx.record("handshake", _connect_view(raw))
        if raw.connected:
            ctx.session_ids.append(raw.session_id)
            ctx.call("ping", raw.ping)

    run.__doc__ = (
        f"Asking for a {asked} ms session timeout: the negotiated value (min 4000, max 40000)."
    )
    scenario(f"session_timeout_ask_{asked if asked >= 0 else 'neg' + str(-asked)}")(run)


for _asked in (0, 1, 3999, 4000, 4001, 10000, 39999, 40000, 40001, 1000000, -5):
    _register_timeout(_asked)


@scenario()
def session_kazoo_negotiated_timeout(ctx: ScenarioContext) -> None:
    """kazoo reports the negotiated timeout for a too-small and a too-large request."""
    small = ctx.client(timeout=1.0)
    large = ctx.client(timeout=600.0)
    ctx.record("small", small._session_timeout)
    ctx.record("large", large._session_timeout)


@scenario()
def session_resume_same_id(ctx: ScenarioContext) -> None:
    """Reconnecting with the session id and password resumes the session: same id,
    its ephemeral node stays, its timeout is renegotiated."""
    raw = ctx.raw(timeout_ms=10000)
    raw.create(ctx.root)
    raw.create(ctx.path("e"), b"", None, 1)
    session = raw.session_id
    raw.drop()
    other = ctx.raw()
    ctx.call("ephemeral while disconnected", other.exists, ctx.path("e"))
    view = _connect_view(raw)
    ctx.record("resume", view)
    ctx.record("same id", raw.session_id == session)
    ctx.call("still owner", raw.exists, ctx.path("e"))
    ctx.call("whoami", raw.who_am_i)


@scenario()
def session_resume_with_different_timeout(ctx: ScenarioContext) -> None:
    """A resumed session renegotiates the timeout it asks for."""
    raw = ctx.raw(timeout_ms=10000)
    raw.drop()
    raw.timeout_ms = 20000
    ctx.record("resume", _connect_view(raw))


@scenario()
def session_wrong_password(ctx: ScenarioContext) -> None:
    """Resuming with a wrong password: timeout 0 (expired) and the connection closes;
    the real session lives on."""
    raw = ctx.raw(timeout_ms=10000)
    raw.create(ctx.root)
    raw.create(ctx.path("e"), b"", None, 1)
    thief = _handshake(ctx, session_id=raw.session_id, passwd=b"x" * 16)
    ctx.record("thief", _connect_view(thief))
    ctx.call("thief closed", thief.server_closed, 3.0)
    ctx.call("owner still fine", raw.exists, ctx.path("e"))


@scenario()
def session_unknown_id(ctx: ScenarioContext) -> None:
    """Resuming a session id the server never issued: expired."""
    stranger = _handshake(ctx, session_id=0x0123456789AB, passwd=b"\x00" * 16)
    ctx.record("handshake", _connect_view(stranger))
    ctx.call("closed", stranger.server_closed, 3.0)


@scenario()
def session_resume_after_close(ctx: ScenarioContext) -> None:
    """A session ended with closeSession cannot be resumed."""
    raw = ctx.raw()
    session, password = raw.session_id, raw.passwd
    raw.close()
    again = _handshake(ctx, session_id=session, passwd=password)
    ctx.record("resume closed", _connect_view(again))


@scenario()
def session_close_removes_ephemerals_and_notifies(ctx: ScenarioContext) -> None:
    """closeSession deletes the session's ephemerals (in one txn); watchers of the
    nodes and of their parent are notified."""
    owner = ctx.raw()
    owner.create(ctx.root)
    owner.create(ctx.path("p"))
    for name in ("e1", "e2"):
        owner.create(ctx.path("p", name), b"", None, 1)
    owner.create(ctx.path("p", "s-"), b"", None, 3)
    watcher = ctx.raw()
    watcher.exists(ctx.path("p", "e1"), True)
    watcher.get_data(ctx.path("p", "e2"), True)
    watcher.get_children(ctx.path("p"), True)
    owner.close()
    watcher.wait_events(3)
    watcher.settle()
    # ZooKeeper deletes a closing session's ephemerals in hash-set order, so the
    # order of these events is unspecified: compare them sorted.
    ctx.record("events settled (sorted)", sorted(watcher.events, key=repr))
    ctx.call("children", watcher.get_children2, ctx.path("p"))


@scenario()
def session_ephemerals_listing(ctx: ScenarioContext) -> None:
    """getEphemerals lists the session's own ephemerals by prefix, sorted as ZooKeeper
    answers, and not other sessions' ones."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("a"))
    for path in ("a/e1", "a/e2", "b1", "a/s-"):
        flags = 3 if path.endswith("-") else 1
        raw.create(ctx.path(*path.split("/")), b"", None, flags)
    other = ctx.raw()
    other.create(ctx.path("theirs"), b"", None, 1)
    ctx.call("root prefix", lambda: sorted(raw.get_ephemerals(ctx.root).body.ephemerals))
    ctx.call("a prefix", lambda: sorted(raw.get_ephemerals(ctx.path("a")).body.ephemerals))
    ctx.call(
        "string prefix", lambda: sorted(raw.get_ephemerals(ctx.path("a", "e")).body.ephemerals)
    )
    ctx.call("none", raw.get_ephemerals, ctx.path("zzz"))
    ctx.call("slash", lambda: sorted(e for e in raw.get_ephemerals("/").body.ephemerals))
    ctx.call("other", other.get_ephemerals, ctx.root)


@scenario()
def session_request_after_close(ctx: ScenarioContext) -> None:
    """A request after closeSession on the same connection: closed or an error."""
    raw = ctx.raw()
    ctx.call("close", raw.call, -11, None)
    ctx.call("then exists", raw.exists, "/")


@scenario()
def session_last_zxid_from_future(ctx: ScenarioContext) -> None:
    """A client claiming to have seen a zxid beyond the server's is refused (the
    connection closes without a session)."""
    raw = _handshake(ctx, last_zxid=0x7FFFFFFF00000000)
    ctx.record("handshake", _connect_view(raw))


@scenario()
def session_read_only_flag(ctx: ScenarioContext) -> None:
    """A read-only-capable client connecting to a standalone server gets a normal
    session (readOnly false in the answer)."""
    raw = _handshake(ctx, read_only=True)
    ctx.record("handshake", _connect_view(raw))
    if raw.connected:
        ctx.session_ids.append(raw.session_id)
        raw.create(ctx.root)
        ctx.call("write", raw.create, ctx.path("w"))


@scenario()
def session_handshake_without_readonly_byte(ctx: ScenarioContext) -> None:
    """An old-style handshake without the trailing readOnly byte still works."""
    from zkreg.proto import records as R

    raw = _handshake(ctx)
    raw.open_socket()
    body = R.ConnectRequest(0, 0, 10000, 0, b"\x00" * 16, None).serialize()
    raw.send_frame(body)
    try:
        payload = raw.read_frame_bytes()
        response, _ = R.ConnectResponse.deserialize(payload)
        ctx.record("timeout", response.timeOut)
        ctx.record("length", len(payload))
        raw.session_id = response.sessionId
        ctx.session_ids.append(response.sessionId)
        ctx.call("ping", raw.ping)
    except ConnectionClosed:
        ctx.record("closed", True)


@scenario()
def session_garbage_handshake(ctx: ScenarioContext) -> None:
    """A handshake frame too short to be a ConnectRequest: the server closes."""
    raw = _handshake(ctx)
    raw.open_socket()
    raw.send_bytes(struct.pack(">i", 3) + b"abc")
    ctx.call("closed", raw.server_closed, 5.0)


@scenario()
def session_negative_frame_length(ctx: ScenarioContext) -> None:
    """A negative frame length after the handshake closes the connection."""
    raw = ctx.raw()
    raw.send_bytes(struct.pack(">i", -5))
    ctx.call("closed", raw.server_closed, 5.0)


@scenario()
def session_unknown_opcode(ctx: ScenarioContext) -> None:
    """A request with an unknown opcode."""
    raw = ctx.raw()
    ctx.call("opcode 999", raw.call, 999, b"")
    ctx.call("closed", raw.server_closed, 1.0)


@scenario()
def session_truncated_request_body(ctx: ScenarioContext) -> None:
    """A getData request whose body is cut short: error reply or closed connection."""
    raw = ctx.raw()
    ctx.call("getData truncated", raw.call, 4, b"\x00\x00\x00\x10/ab")
    ctx.call("closed", raw.server_closed, 1.0)


@scenario()
def session_ping_reply(ctx: ScenarioContext) -> None:
    """Pings are answered with xid -2 and no error."""
    raw = ctx.raw()
    xid = raw.submit(11, None, xid=-2)
    reply = raw.wait_reply(xid)
    ctx.record("ping", {"xid": reply.xid, "err": reply.err, "trailing": reply.trailing})


@scenario(slow=True)
def session_expiry_removes_ephemerals(ctx: ScenarioContext) -> None:
    """A session that stops talking expires after its timeout: its ephemerals are
    deleted, watchers see NodeDeleted, and resuming it answers expired."""
    owner = ctx.raw(timeout_ms=4000)
    owner.create(ctx.root)
    owner.create(ctx.path("e"), b"", None, 1)
    watcher = ctx.raw()
    watcher.exists(ctx.path("e"), True)
    watcher.get_children(ctx.root, True)
    session, password = owner.session_id, owner.passwd
    owner.drop()
    ctx.call("events", watcher.wait_events, 2, EXPIRY_DEADLINE)
    ctx.call("gone", watcher.exists, ctx.path("e"))
    late = _handshake(ctx, session_id=session, passwd=password)
    ctx.record("resume expired", _connect_view(late))


@scenario(slow=True)
def session_kazoo_expiry_seen_by_other_client(ctx: ScenarioContext) -> None:
    """A kazoo client whose connection is blocked long enough loses its session
    (LOST); another kazoo client sees its ephemeral disappear."""
    from kazoo.client import KazooClient

    from tests.support.proxy import TcpProxy

    proxy = TcpProxy(ctx.server.port)
    proxy.start()
    try:
        observer = ctx.client()
        observer.create(ctx.root)
        victim = KazooClient(hosts=proxy.hosts, timeout=4.0)
        victim.start(timeout=15.0)
        try:
            ctx.session_ids.append(victim.client_id[0])
            states: list[str] = []
            victim.add_listener(lambda state: states.append(str(state)))
            victim.create(ctx.path("e"), b"", ephemeral=True)
            log = EventLog("observer")
            observer.exists(ctx.path("e"), watch=log)
            proxy.block()
            proxy.cut()
            ctx.wait_events(log, 1, timeout=EXPIRY_DEADLINE)
            ctx.events("observer", log)
            proxy.unblock()
            ctx.wait(lambda: "LOST" in states, timeout=EXPIRY_DEADLINE, what="kazoo LOST")
            ctx.record("states start", states[:2])
        finally:
            victim.stop()
            victim.close()
    finally:
        proxy.stop()


@scenario(slow=True)
def session_pings_keep_alive(ctx: ScenarioContext) -> None:
    """A session that pings stays alive past its timeout."""
    raw = ctx.raw(timeout_ms=4000)
    raw.create(ctx.root)
    raw.create(ctx.path("e"), b"", None, 1)
    raw.idle(6.0)
    ctx.call("alive", raw.exists, ctx.path("e"))


@scenario()
def session_second_connection_takes_over(ctx: ScenarioContext) -> None:
    """Resuming a session on a second connection while the first is still open: the
    server closes the first connection; the second works."""
    first = ctx.raw()
    first.create(ctx.root)
    second = _handshake(ctx, session_id=first.session_id, passwd=first.passwd)
    ctx.record("second", _connect_view(second))
    ctx.call("first closed", first.server_closed, 5.0)
    ctx.call("second works", second.exists, ctx.root)


@scenario()
def session_auth_not_carried_across_connections(ctx: ScenarioContext) -> None:
    """Auth belongs to the connection: after resuming on a new connection the
    session has only its ip id until it adds auth again."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.add_auth("digest", b"dave:pw")
    raw.create(
        ctx.path("mine"),
        b"",
        [__import__("tests.integration.scenarios._ops", fromlist=["acl"]).acl(31, "auth", "")],
    )
    raw.drop()
    ctx.record("resume", _connect_view(raw))
    ctx.call("who", raw.who_am_i)
    ctx.call("read without auth", raw.get_data, ctx.path("mine"))
    raw.add_auth("digest", b"dave:pw")
    ctx.call("read with auth", raw.get_data, ctx.path("mine"))


@scenario()
def session_watches_lost_without_set_watches(ctx: ScenarioContext) -> None:
    """Watches belong to the connection: resuming without setWatches leaves none."""
    writer = ctx.raw()
    writer.create(ctx.root)
    writer.create(ctx.path("n"))
    watcher = ctx.raw()
    watcher.get_data(ctx.path("n"), True)
    watcher.drop()
    ctx.record("resume", _connect_view(watcher))
    ctx.call("check", watcher.check_watches, ctx.path("n"), 2)
    writer.set_data(ctx.path("n"), b"x")
    watcher.settle()
    ctx.record("events", watcher.events)


@scenario()
def session_close_then_socket_closed(ctx: ScenarioContext) -> None:
    """closeSession is answered, then the server closes the connection."""
    raw = ctx.raw()
    ctx.call("close", raw.call, -11, None)
    ctx.call("closed", raw.server_closed, 5.0)


@scenario()
def session_ephemeral_owner_after_resume(ctx: ScenarioContext) -> None:
    """Ephemerals created before and after resuming a session have the same owner."""
    raw = ctx.raw()
    raw.create(ctx.root)
    raw.create(ctx.path("before"), b"", None, 1)
    raw.drop()
    raw.connect()
    raw.create(ctx.path("after"), b"", None, 1)
    ctx.call("before", raw.exists, ctx.path("before"))
    ctx.call("after", raw.exists, ctx.path("after"))
    ctx.call("ephemerals", lambda: sorted(raw.get_ephemerals(ctx.root).body.ephemerals))


@scenario()
def session_read_zxid_not_behind_own_write(ctx: ScenarioContext) -> None:
    """A read's reply zxid is never older than the session's last write, and a
    write's reply zxid is the txn's (the new mzxid)."""
    raw = ctx.raw()
    raw.create(ctx.root)
    write = raw.create2(ctx.path("n"), b"")
    read = raw.get_data(ctx.path("n"))
    ctx.record("write zxid is czxid", write.zxid == write.body.stat.czxid)
    ctx.record("read zxid >= write zxid", read.zxid >= write.zxid)
    setter = raw.set_data(ctx.path("n"), b"x")
    ctx.record("set zxid is mzxid", setter.zxid == setter.body.stat.mzxid)
    other = ctx.raw()
    ctx.record("other session read not behind", other.get_data(ctx.path("n")).zxid >= setter.zxid)


@scenario(slow=True)
def session_expiry_not_early_not_late(ctx: ScenarioContext) -> None:
    """A silent 4000 ms session expires no earlier than its timeout and within the
    timeout plus two ticks (ZooKeeper's expiry runs on tick boundaries)."""
    import time

    owner = ctx.raw(timeout_ms=4000)
    owner.create(ctx.root)
    owner.create(ctx.path("e"), b"", None, 1)
    watcher = ctx.raw()
    watcher.exists(ctx.path("e"), True)
    dropped_at = time.monotonic()
    owner.drop()
    watcher.wait_events(1, EXPIRY_DEADLINE)
    elapsed = time.monotonic() - dropped_at
    ctx.record("not early (>= 3.9 s)", elapsed >= 3.9)
    ctx.record("not late (<= 8.5 s)", elapsed <= 8.5)
    ctx.record("events", watcher.events)


@scenario()
def session_pipelined_then_close(ctx: ScenarioContext) -> None:
    """Requests pipelined just before closeSession are all answered, then the close,
    then the connection ends; an ephemeral created in the burst is gone."""
    raw = ctx.raw()
    raw.create(ctx.root)
    from tests.integration.scenarios._ops import op_create as _create

    raw.trace.clear()
    raw.submit(*_create(ctx.path("p")))
    raw.submit(*_create(ctx.path("e"), b"", 1))
    close_xid = raw.submit(-11, None)
    raw.wait_reply(close_xid)
    ctx.record("replies", [item for kind, item in raw.trace if kind == "reply"])
    ctx.call("closed", raw.server_closed, 5.0)
    other = ctx.raw()
    ctx.call("p", other.exists, ctx.path("p"))
    ctx.call("e", other.exists, ctx.path("e"))


@scenario()
def session_reply_headers(ctx: ScenarioContext) -> None:
    """Reply-header xid/zxid/err of the special replies: notification (-1, -1),
    ping, auth, setWatches (and the replayed event before its reply), sync, a failed
    read, closeSession; zxids shown as -1, 0, "last write" or "other"."""
    from zkreg.proto import records as R

    raw = ctx.raw()
    raw.create(ctx.root)
    last = raw.create(ctx.path("a")).zxid

    def zx(value: int) -> object:
        if value in (-1, 0):
            return value
        return "last write" if value == last else ("newer" if value > last else "older")

    raw.get_data(ctx.path("a"), True)
    writer = ctx.raw(register_session=False)
    last = writer.set_data(ctx.path("a"), b"x").zxid
    raw.wait_events(1)
    ctx.record("notification", (raw.events[-1].header_zxid, zx(raw.events[-1].header_zxid)))
    raw.trace.clear()
    raw.ping()
    ping = [item for kind, item in raw.trace if kind == "reply"]
    ctx.record("ping", [(r.xid, zx(r.zxid), r.err, r.trailing) for r in ping])
    auth = raw.add_auth("digest", b"u:p")
    ctx.record("auth", (auth.xid, zx(auth.zxid), auth.err, auth.trailing))
    raw.trace.clear()
    reply = raw.set_watches(0, [ctx.path("a")], [], [])
    ctx.record("setWatches", (reply.xid, zx(reply.zxid), reply.err, reply.trailing))
    ctx.record("setWatches trace", describe_trace(raw.trace))
    ctx.record("replayed event header", [zx(e.header_zxid) for e in raw.events[1:]])
    sync = raw.sync(ctx.path("a"))
    ctx.record("sync", (zx(sync.zxid), sync.err))
    missing = raw.get_data(ctx.path("zz"))
    ctx.record("failed read", (zx(missing.zxid), missing.err, missing.trailing))
    missing_exists = raw.call(3, R.ExistsRequest(ctx.path("zz"), False))
    ctx.record(
        "exists missing", (zx(missing_exists.zxid), missing_exists.err, missing_exists.trailing)
    )
    close = raw.call(-11, None)
    ctx.record("close", (zx(close.zxid), close.err, close.trailing))
