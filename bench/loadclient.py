"""
A lean load generator speaking the raw ZooKeeper client protocol on asyncio.

Why not kazoo: kazoo runs a thread per client and decodes every reply into Python
objects, so it saturates long before either server does.  This client keeps many
sessions in one event loop, sends pre-encoded frames (L{bench.wire}) whose xid is the
only thing patched, pipelines by xid, answers nothing but pings, and reads only the
12-byte reply header of each reply.  It runs in its own process, started by
L{bench.run}, so it gets one of the machine's cores while the server gets the other.

Run alone as C{python -m bench.loadclient '<json spec>'}; it prints one JSON object (the
workload's result) on stdout.  The spec holds C{host}, C{port}, C{workload} and the
workload's parameters (see L{WORKLOADS}), and optionally C{tls}: C{{"ca": ..., "cert":
..., "key": ...}} to connect over TLS.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import ssl
import statistics
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from bench import wire

_LENGTH = struct.Struct(">i")
_REPLY = wire.REPLY_HEADER
#: ZooKeeper's error code for a node that already exists.
_NODE_EXISTS = -110
#: CreateMode.PERSISTENT_SEQUENTIAL
_SEQUENTIAL = 2
#: CreateMode.EPHEMERAL
_EPHEMERAL = 1


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


async def _checked(session: Session, template: bytes) -> None:
    _, err, _ = await session.call(template)
    if err:
        raise ServerError(f"error {err}")


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def _stat_fields(pid: int) -> list[str]:
    """@return: the fields of C{/proc/<pid>/stat} after the command name."""
    with open(f"/proc/{pid}/stat") as stat_file:
        return stat_file.read().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    """
    @return: user plus system CPU seconds used so far by process C{pid} (all threads)
        and its live descendants (zkreg's session processes with
        C{--session-processes}, a snapshot child).
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat_fields(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = _stat_fields(current)
        except OSError:
            if current == pid:
                raise
            continue
        # After the command name: state is field 3, utime 14 and stime 15 (1-based).
        total += int(fields[11]) + int(fields[12])
        todo.extend(children.get(current, ()))
    return total / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class _CpuMeter:
    """
    Measures this process's and the server's CPU use over a phase, so the report
    shows which side was saturated (100% is one core).
    """

    def __init__(self, server_pid: int | None) -> None:
        self._server_pid = server_pid
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._server_cpu = process_cpu_seconds(server_pid) if server_pid else 0.0

    def percents(self) -> dict[str, float]:
        """@return: C{client_cpu_pct} and (when the pid is known) C{server_cpu_pct}."""
        wall = max(time.perf_counter() - self._wall, 1e-9)
        result = {"client_cpu_pct": 100.0 * (time.process_time() - self._cpu) / wall}
        if self._server_pid:
            used = process_cpu_seconds(self._server_pid) - self._server_cpu
            result["server_cpu_pct"] = 100.0 * used / wall
        return result


async def sequential_latency(
    host: str, port: int, count: int, size: int = 100, server_pid: int | None = None
) -> dict[str, Any]:
    """
    One session, C{count} synchronous getData then C{count} setData round trips.

    @return: p50/p99 latency of each, in microseconds.
    """
    session = await connect(host, port)
    await ensure_node(session, "/bench")
    await ensure_node(session, "/bench/lat", b"x" * size)
    get_template = wire.get_data_frame("/bench/lat")
    set_template = wire.set_data_frame("/bench/lat", b"y" * size)
    result: dict[str, Any] = {}
    meter = _CpuMeter(server_pid)
    for name, template in (("get", get_template), ("set", set_template)):
        for _ in range(min(100, count)):
            await _checked(session, template)
        samples = []
        clock = time.perf_counter_ns
        for _ in range(count):
            start = clock()
            await _checked(session, template)
            samples.append((clock() - start) / 1000.0)
        samples.sort()
        result[f"{name}_p50_us"] = _percentile(samples, 0.50)
        result[f"{name}_p99_us"] = _percentile(samples, 0.99)
        result[f"{name}_mean_us"] = statistics.fmean(samples)
    result.update(meter.percents())
    session.close()
    return result


async def pipelined(
    host: str,
    port: int,
    op: str,
    connections: int,
    window: int,
    seconds: float,
    warmup: float = 0.5,
    size: int = 100,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """
    C{connections} sessions each keeping C{window} requests of one kind in flight.

    @param op: C{"get"} (getData of one node), C{"set"} (setData of one node per
        session), C{"create"} (persistent sequential children of one parent),
        C{"mixed"} (per session nine getData of the shared node then one setData of
        its own node, repeated) or C{"ephemeral"} (per session a create of an
        ephemeral node then its delete, repeated: session-owned churn).
    @return: ops/s over C{seconds} after a warm-up, p50/p99 latency of a request in
        microseconds, and the error count.
    """
    sessions = await connect_many(host, port, connections)
    setup = sessions[0]
    await ensure_node(setup, "/bench")
    await ensure_node(setup, "/bench/read", b"r" * size)
    await ensure_node(setup, "/bench/seq")
    pipelines = []
    template: bytes | list[bytes]
    for index in range(len(sessions)):
        if op == "get":
            template = wire.get_data_frame("/bench/read")
        elif op == "set":
            path = f"/bench/w{index}"
            await ensure_node(setup, path)
            template = wire.set_data_frame(path, b"w" * size)
        elif op == "create":
            template = wire.create_frame("/bench/seq/n-", b"c" * size, _SEQUENTIAL)
        elif op == "mixed":
            path = f"/bench/w{index}"
            await ensure_node(setup, path)
            template = [wire.get_data_frame("/bench/read")] * 9
            template.append(wire.set_data_frame(path, b"w" * size))
        elif op == "ephemeral":
            path = f"/bench/seq/e{index}"
            template = [
                wire.create_frame(path, b"e" * size, _EPHEMERAL),
                wire.delete_frame(path),
            ]
        else:
            raise ValueError(op)
        pipelines.append(Pipeline(template, window))
    pinger = Pinger(sessions)
    for pipeline, session in zip(pipelines, sessions, strict=True):
        pipeline.start(session)
    await asyncio.sleep(warmup)
    for pipeline in pipelines:
        pipeline.reset()
    meter = _CpuMeter(server_pid)
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    done = sum(p.done for p in pipelines)
    elapsed = time.perf_counter() - start
    cpu = meter.percents()
    errors = sum(p.errors for p in pipelines)
    latencies = sorted(x for p in pipelines for x in p.latencies)
    lost = sum(1 for session in sessions if session.lost.done())
    for pipeline in pipelines:
        pipeline.stop()
    pinger.stop()
    for session in sessions:
        session.close()
    return {
        "ops_per_s": done / elapsed,
        "p50_us": _percentile(latencies, 0.50) * 1e6 if latencies else None,
        "p99_us": _percentile(latencies, 0.99) * 1e6 if latencies else None,
        "ops": done,
        "errors": errors,
        "connections_lost": lost,
        "seconds": elapsed,
        **cpu,
    }


async def watch_fanout(
    host: str,
    port: int,
    watchers: int,
    rounds: int,
    deadline: float = 30.0,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """
    C{watchers} sessions each set a data watch on one node; another session sets its
    data; the time from sending that setData until each watcher receives its event.

    @return: the p50 over all events, the median over rounds of the time until the
        last watcher had it, and the worst round.
    """
    loop = asyncio.get_running_loop()
    writer = await connect(host, port)
    await ensure_node(writer, "/bench")
    await ensure_node(writer, "/bench/fan", b"0")
    sessions = await connect_many(host, port, watchers)
    pinger = Pinger([writer, *sessions])
    arm = wire.get_data_frame("/bench/fan", watch=True)
    all_delays: list[float] = []
    round_max: list[float] = []
    # CPU is measured over the delivery windows only (setData sent -> last event in),
    # not while the watches are re-armed.
    windows: list[dict[str, float]] = []
    for round_number in range(rounds):
        arrivals: list[float] = []
        everyone = loop.create_future()

        def on_event(
            received: float,
            payload: bytes,
            arrivals: list = arrivals,
            everyone: asyncio.Future = everyone,
        ) -> None:
            arrivals.append(received)
            if len(arrivals) == watchers and not everyone.done():
                everyone.set_result(None)

        for session in sessions:
            session.on_event = on_event
        await asyncio.gather(*(_checked(s, arm) for s in sessions))
        meter = _CpuMeter(server_pid)
        sent = time.perf_counter()
        write = writer.call(wire.set_data_frame("/bench/fan", str(round_number).encode()))
        await asyncio.wait_for(everyone, deadline)
        windows.append(meter.percents())
        _, err, _ = await write
        if err:
            raise ServerError(f"setData /bench/fan: error {err}")
        delays = sorted((t - sent) * 1000.0 for t in arrivals)
        all_delays.extend(delays)
        round_max.append(delays[-1])
    cpu = {key: statistics.median(w[key] for w in windows) for key in windows[0]}
    pinger.stop()
    for session in [writer, *sessions]:
        session.close()
    all_delays.sort()
    return {
        "p50_ms": _percentile(all_delays, 0.5),
        "all_ms": statistics.median(round_max),
        "worst_ms": max(round_max),
        "rounds": rounds,
        "watchers": watchers,
        **cpu,
    }


async def hold_sessions(
    host: str, port: int, count: int, server_pid: int | None = None
) -> dict[str, Any]:
    """
    Open C{count} idle sessions, print a READY line, and keep them (pinging) until
    stdin closes; the caller measures the server's memory meanwhile.
    """
    start = time.perf_counter()
    sessions = await connect_many(host, port, count)
    opened = time.perf_counter() - start
    pinger = Pinger(sessions)
    print(json.dumps({"ready": len(sessions), "open_seconds": opened}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    pinger.stop()
    for session in sessions:
        session.close()
    return {"sessions": len(sessions), "open_seconds": opened}


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


async def _feed_all(sessions: list[Session], frames: list[Iterator[bytes]], window: int) -> int:
    feeds = [Feed(stream, window) for stream in frames]
    for feed, session in zip(feeds, sessions, strict=True):
        feed.start(session)
    return sum(await asyncio.gather(*(feed.finished for feed in feeds)))


async def big_tree(
    host: str,
    port: int,
    znodes: int,
    size: int = 100,
    connections: int = 8,
    window: int = 100,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """
    Memory per znode and per watch, driven by the caller over stdin/stdout.

    Creates C{znodes} persistent nodes of C{size} bytes (distinct paths under
    C{/bench/m/<connection>}, C{connections} sessions each keeping C{window} creates
    in flight), prints a C{created} line, waits for a line on stdin, then sets one
    data watch (exists with watch) on every node, prints a C{watched} line, and keeps
    its sessions (so the watches) until stdin closes.
    """
    sessions = await connect_many(host, port, connections)
    pinger = Pinger(sessions)
    setup = sessions[0]
    await ensure_node(setup, "/bench")
    await ensure_node(setup, "/bench/m")
    per = [
        znodes // connections + (1 if i < znodes % connections else 0) for i in range(connections)
    ]
    for index in range(connections):
        await ensure_node(setup, f"/bench/m/{index}")
    data = b"m" * size

    def creates(index: int) -> Iterator[bytes]:
        for n in range(per[index]):
            yield wire.create_frame(f"/bench/m/{index}/{n}", data)

    start = time.perf_counter()
    errors = await _feed_all(sessions, [creates(i) for i in range(connections)], window)
    created = time.perf_counter() - start
    print(json.dumps({"phase": "created", "seconds": created, "errors": errors}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)

    def watches(index: int) -> Iterator[bytes]:
        for n in range(per[index]):
            yield wire.exists_frame(f"/bench/m/{index}/{n}", watch=True)

    start = time.perf_counter()
    errors = await _feed_all(sessions, [watches(i) for i in range(connections)], window)
    watched = time.perf_counter() - start
    print(json.dumps({"phase": "watched", "seconds": watched, "errors": errors}), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    pinger.stop()
    for session in sessions:
        session.close()
    return {"znodes": znodes, "create_seconds": created, "watch_seconds": watched}


#: Workload name -> coroutine function taking host, port and the spec's parameters.
WORKLOADS: dict[str, Callable[..., Any]] = {
    "sequential": sequential_latency,
    "pipelined": pipelined,
    "fanout": watch_fanout,
    "hold": hold_sessions,
    "tree": big_tree,
}


def main(argv: list[str]) -> int:
    """
    Run the workload of the JSON spec in C{argv[1]}, print its result as JSON.
    """
    spec = json.loads(argv[1])
    workload = WORKLOADS[spec.pop("workload")]
    tls = spec.pop("tls", None)
    if tls is not None:
        use_tls(**tls)
    result = asyncio.run(workload(**spec))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
