"""
The raw-protocol asyncio client the load generator (L{bench.loadclient}) is built on:
a L{Session} per connection (handshake, replies dispatched by xid, watch events,
pings), the drivers that keep requests in flight on it (L{Pipeline}: a repeating
pattern; L{Feed}: a finite stream of distinct requests), and opening sessions, over
TLS after L{use_tls}.

Separate from the load client's workloads because other benchmarks (L{bench.liveness},
L{bench.durability}, L{bench.etcd_snapshot}) drive these sessions with workloads of
their own.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator

from bench import wire

_LENGTH = struct.Struct(">i")
_REPLY = wire.REPLY_HEADER
#: ZooKeeper's error code for a node that already exists.
_NODE_EXISTS = -110


class ServerError(Exception):
    """A reply carried a non-zero error code where the workload needs success."""


class Session(asyncio.Protocol):
    """
    One ZooKeeper session on one connection.

    Replies are dispatched by xid to a waiting future (L{call}), or, when a pipeline is
    attached, only counted and answered with as many new requests (L{Pipeline}).

    @ivar ready: future firing with the L{wire.ConnectResponse} after the handshake.
    @ivar lost: future firing (with the reason, or None) when the connection closes.
    @ivar session_id: the session id the server granted, once ready.
    @ivar on_event: called with C{(receive_time, payload)} for each watch notification.
    @ivar pipeline: the L{Pipeline} or L{Feed} driving this session, or L{None}.
    """

    def __init__(self, timeout_ms: int) -> None:
        self._timeout_ms = timeout_ms
        self._buffer = bytearray()
        self._handshaken = False
        self._next_xid = 1
        self._waiters: dict[int, asyncio.Future] = {}
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()
        self.session_id = 0
        self.on_event: Callable[[float, bytes], None] | None = None
        self.pipeline: Pipeline | Feed | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(wire.connect_frame(self._timeout_ms))  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        reason = ConnectionError(f"connection lost: {exc!r}")
        for future in (self.ready, *self._waiters.values()):
            if not future.done():
                future.set_exception(reason)
        self._waiters.clear()
        if not self.lost.done():
            self.lost.set_result(exc)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        size = len(buffer)
        offset = 0
        completed = 0
        while size - offset >= 4:
            (length,) = _LENGTH.unpack_from(buffer, offset)
            end = offset + 4 + length
            if end > size:
                break
            if not self._handshaken:
                self._on_handshake(bytes(buffer[offset + 4 : end]))
            else:
                xid, zxid, err = _REPLY.unpack_from(buffer, offset + 4)
                if xid == wire.WATCH_XID:
                    if self.on_event is not None:
                        self.on_event(time.perf_counter(), bytes(buffer[offset + 4 : end]))
                elif xid == wire.PING_XID:
                    pass
                else:
                    waiter = self._waiters.pop(xid, None)
                    if waiter is not None:
                        waiter.set_result((zxid, err, bytes(buffer[offset + 16 : end])))
                    else:
                        completed += 1
                        if err:
                            self.pipeline.errors += 1  # type: ignore[union-attr]
            offset = end
        del buffer[:offset]
        if completed:
            self.pipeline.completed(self, completed)  # type: ignore[union-attr]

    def _on_handshake(self, payload: bytes) -> None:
        response = wire.parse_connect_response(payload)
        self._handshaken = True
        if self.ready.done():  # the handshake timed out meanwhile
            return
        if response.timeOut <= 0:
            self.ready.set_exception(ConnectionError("session refused"))
            return
        self.session_id = response.sessionId
        self.ready.set_result(response)

    def take_xid(self) -> int:
        """@return: the next xid of this session."""
        xid = self._next_xid
        self._next_xid = xid + 1
        return xid

    def call(self, template: bytes) -> asyncio.Future:
        """
        Send one request and return a future firing with C{(zxid, err, body)}.
        """
        xid = self.take_xid()
        future = asyncio.get_running_loop().create_future()
        self._waiters[xid] = future
        self.transport.write(wire.with_xid(template, xid))  # type: ignore[union-attr]
        return future

    def ping(self) -> None:
        """Send a ping; its reply is ignored."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_PING)

    def close(self) -> None:
        """Close the connection without a closeSession (the session expires later)."""
        if self.transport is not None:
            self.transport.close()


_PING = wire.ping_frame()


class Pipeline:
    """
    Keeps C{window} requests in flight on each of its sessions until stopped.

    The requests cycle through C{templates} (one template for a single-op workload,
    nine getData and one setData for the mixed one, a create and a delete of the same
    ephemeral for churn); a session's replies come back in request order, so a
    pattern's order is preserved on the wire.  Each reply is answered with the next
    request, written in one batch per received chunk, so the client costs one write
    per chunk, not per op.  The send time of every request is kept in a FIFO and
    matched with its reply (replies of a session are in request order) for the
    latency percentiles.

    @ivar done: replies received since the last L{reset}.
    @ivar errors: replies with a non-zero error code.
    @ivar latencies: seconds from send to reply of each request completed since the
        last L{reset}.
    """

    def __init__(self, templates: bytes | list[bytes], window: int) -> None:
        if isinstance(templates, bytes):
            templates = [templates]
        self._templates = [bytearray(t) for t in templates]
        self._cursor = 0
        self._window = window
        self._running = True
        self._sent: deque[float] = deque()
        self.done = 0
        self.errors = 0
        self.latencies: list[float] = []

    def start(self, session: Session) -> None:
        """Fill C{session}'s window."""
        session.pipeline = self
        self._send(session, self._window)

    def completed(self, session: Session, count: int) -> None:
        """Account C{count} replies on C{session} and send as many new requests."""
        self.done += count
        now = time.perf_counter()
        popleft = self._sent.popleft
        append = self.latencies.append
        for _ in range(count):
            append(now - popleft())
        if self._running:
            self._send(session, count)

    def _send(self, session: Session, count: int) -> None:
        templates = self._templates
        cursor = self._cursor
        length = len(templates)
        chunks = []
        for _ in range(count):
            template = templates[cursor]
            cursor = (cursor + 1) % length
            struct.pack_into(">i", template, wire.XID_OFFSET, session.take_xid())
            chunks.append(bytes(template))
        self._cursor = cursor
        now = time.perf_counter()
        self._sent.extend([now] * count)
        session.transport.write(b"".join(chunks))  # type: ignore[union-attr]

    def reset(self) -> None:
        """Restart the counters (after the warm-up)."""
        self.done = 0
        self.errors = 0
        self.latencies = []

    def stop(self) -> None:
        """Send no more requests; replies in flight are still counted."""
        self._running = False


class Feed:
    """
    Sends a finite stream of distinct requests on one session, C{window} in flight,
    and fires L{finished} when every reply is in (used to build big trees and to set
    many watches, where every request names its own path).

    @ivar finished: future firing with the error count once the stream is exhausted
        and every reply received.
    """

    def __init__(self, frames: Iterator[bytes], window: int) -> None:
        self._frames = frames
        self._window = window
        self._outstanding = 0
        self._exhausted = False
        self.errors = 0
        self.finished: asyncio.Future = asyncio.get_running_loop().create_future()

    def start(self, session: Session) -> None:
        """Fill C{session}'s window."""
        session.pipeline = self
        self._send(session, self._window)

    def completed(self, session: Session, count: int) -> None:
        """Account C{count} replies and send as many new requests, if any are left."""
        self._outstanding -= count
        self._send(session, count)

    def _send(self, session: Session, count: int) -> None:
        chunks = []
        for frame in itertools.islice(self._frames, count):
            patched = bytearray(frame)
            struct.pack_into(">i", patched, wire.XID_OFFSET, session.take_xid())
            chunks.append(patched)
        if chunks:
            self._outstanding += len(chunks)
            session.transport.write(b"".join(chunks))  # type: ignore[union-attr]
        elif self._outstanding == 0 and not self.finished.done():
            self.finished.set_result(self.errors)


#: The TLS context every connection uses (the spec's C{tls}), or L{None}: plain TCP.
_TLS: ssl.SSLContext | None = None


def use_tls(ca: str, cert: str | None = None, key: str | None = None) -> None:
    """
    Connect over TLS from now on: the server's certificate checked against C{ca},
    the client certificate C{cert} (PEM, its key in C{key}) presented if given.
    """
    global _TLS
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    _TLS = context


async def connect(
    host: str, port: int, timeout_ms: int = 30000, handshake_timeout: float = 20.0
) -> Session:
    """
    Open a session and wait for its handshake (over TLS after L{use_tls}).
    """
    loop = asyncio.get_running_loop()
    _, session = await asyncio.wait_for(
        loop.create_connection(
            lambda: Session(timeout_ms),
            host,
            port,
            ssl=_TLS,
            server_hostname=host if _TLS is not None else None,
        ),
        handshake_timeout,
    )
    await asyncio.wait_for(session.ready, handshake_timeout)
    return session


async def connect_many(host: str, port: int, count: int, concurrency: int = 100) -> list[Session]:
    """
    Open C{count} sessions, at most C{concurrency} handshakes at a time (a storm of
    SYNs overflows the listen backlog and costs seconds of SYN retries).
    """
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Session:
        async with gate:
            return await connect(host, port)

    return list(await asyncio.gather(*(one() for _ in range(count))))


class Pinger:
    """
    Pings every session periodically so idle ones stay alive during long workloads.
    """

    def __init__(self, sessions: list[Session], interval: float = 5.0) -> None:
        self._sessions = sessions
        self._interval = interval
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for session in self._sessions:
                session.ping()

    def stop(self) -> None:
        """Stop pinging."""
        self._task.cancel()


async def ensure_node(session: Session, path: str, data: bytes = b"") -> None:
    """Create C{path} (persistent) unless it exists."""
    _, err, _ = await session.call(wire.create_frame(path, data))
    if err not in (0, _NODE_EXISTS):
        raise ServerError(f"create {path}: error {err}")
