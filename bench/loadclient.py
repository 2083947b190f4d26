"""
A lean load generator speaking the raw ZooKeeper client protocol on asyncio.

Why not kazoo: kazoo runs a thread per client and decodes every reply into Python
objects, so it saturates long before either server does.  This client keeps many
sessions in one event loop, sends pre-encoded frames (L{bench.wire}) whose xid is the
only thing patched, pipelines by xid, answers nothing but pings, and reads only the
12-byte reply header of each reply.  It runs in its own process, started by
L{bench.workloads}, so it gets one of the machine's cores while the server gets the
other.  The sessions and the drivers that keep requests in flight on them are in
L{bench.rawclient}; this module holds the workloads and the command line.

Run alone as C{python -m bench.loadclient '<json spec>'}; it prints one JSON object (the
workload's result) on stdout.  The spec holds C{host}, C{port}, C{workload} and the
workload's parameters (see L{WORKLOADS}), and optionally C{tls}: C{{"ca": ..., "cert":
..., "key": ...}} to connect over TLS.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench import wire
from bench.cpu import process_cpu_seconds
from bench.rawclient import (
    Feed,
    Pinger,
    Pipeline,
    ServerError,
    Session,
    connect,
    connect_many,
    ensure_node,
    use_tls,
)

#: CreateMode.PERSISTENT_SEQUENTIAL
_SEQUENTIAL = 2
#: CreateMode.EPHEMERAL
_EPHEMERAL = 1


async def _checked(session: Session, template: bytes) -> None:
    _, err, _ = await session.call(template)
    if err:
        raise ServerError(f"error {err}")


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


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
