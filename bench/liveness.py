"""
Liveness under load, zkreg beside Apache ZooKeeper 3.8 (issue #8).

    python -m bench.liveness                  # both workloads, both servers
    python -m bench.liveness --sessions 2000  # a smaller storm
    python -m bench.liveness --only slow-consumer --servers zkreg

Workloads:

  - C{expiry-storm}: N sessions (default 10,000; 4 s timeout) each create an
    ephemeral, then their client process is killed, so they all expire in the same
    tick.  Meanwhile 5 live sessions (4 s timeout) each send an exists every 20 ms.
    Reported: the longest wait of a live request (the server's freeze), live sessions
    lost (must be 0), and the time from the kill until every ephemeral is gone.
  - C{slow-consumer}: one client sends 1,000 getData of a 1 MB node and reads nothing
    for 10 s while another session sends a getData every 20 ms.  Reported: the
    server's RSS growth (peak over the window) and the longest wait of the other
    session's requests.

The load runs in separate processes (C{python -m bench.liveness --client SPEC}),
built on L{bench.rawclient}'s raw asyncio sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from bench import wire
from bench.harness import exit_status, log, make_server, measure_each, server_names
from bench.rawclient import Session
from bench.rss import rss_kib
from bench.table import Row, render
from tests.support.servers import ServerProcess, four_letter

WORKLOAD_NAMES = ("expiry-storm", "slow-consumer")
_MB = 1_000_000
_EXISTS = 3


# -- the load processes ------------------------------------------------------------------


async def _connect(host: str, port: int, timeout_ms: int) -> Session:
    loop = asyncio.get_running_loop()
    _, session = await asyncio.wait_for(
        loop.create_connection(lambda: Session(timeout_ms), host, port), 30
    )
    await asyncio.wait_for(session.ready, 30)
    return session


async def hold_ephemerals(host: str, port: int, count: int, timeout_ms: int) -> None:
    """Open C{count} sessions with an ephemeral each, print READY, ping until killed."""
    gate = asyncio.Semaphore(100)

    async def one(index: int) -> Session:
        async with gate:
            session = await _connect(host, port, timeout_ms)
            _, err, _ = await session.call(wire.create_frame(f"/storm/e{index}", b"", flags=1))
            if err:
                raise RuntimeError(f"create ephemeral: error {err}")
            return session

    sessions = await asyncio.gather(*(one(index) for index in range(count)))
    print(json.dumps({"ready": len(sessions)}), flush=True)
    while True:
        await asyncio.sleep(timeout_ms / 3000.0)
        for session in sessions:
            session.ping()


async def live_sessions(host: str, port: int, count: int, timeout_ms: int, path: str) -> dict:
    """
    C{count} sessions each reading C{path} every 20 ms until stdin closes.

    @return: the longest wait of a request and how many sessions were lost.
    """
    sessions = [await _connect(host, port, timeout_ms) for _ in range(count)]
    template = wire.get_data_frame(path)
    worst = 0.0
    lost = 0
    stop = asyncio.Event()
    print(json.dumps({"ready": count}), flush=True)

    async def reader(session: Session) -> None:
        nonlocal worst, lost
        while not stop.is_set():
            started = time.perf_counter()
            try:
                _, err, _ = await asyncio.wait_for(session.call(template), 60)
            except (TimeoutError, ConnectionError):
                lost += 1
                return
            if err == -112:  # SESSIONEXPIRED
                lost += 1
                return
            worst = max(worst, time.perf_counter() - started)
            await asyncio.sleep(0.02)

    tasks = [asyncio.create_task(reader(session)) for session in sessions]
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    stop.set()
    await asyncio.gather(*tasks)
    return {"worst_wait_ms": worst * 1000, "lost": lost}


def client_main(spec: dict[str, Any]) -> int:
    kind = spec.pop("kind")
    if kind == "hold":
        asyncio.run(hold_ephemerals(**spec))
        return 0
    result = asyncio.run(live_sessions(**spec))
    print(json.dumps(result), flush=True)
    return 0


# -- the orchestration -------------------------------------------------------------------


def _spawn(spec: dict[str, Any]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.liveness", "--client", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _ready(process: subprocess.Popen, timeout: float) -> None:
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    if not line:
        process.kill()
        raise RuntimeError("load process did not get ready")


def _finish(process: subprocess.Popen) -> dict[str, Any]:
    # Closing its stdin tells a live-session process to stop and report.
    output, _ = process.communicate(input="", timeout=120)
    return json.loads(output.strip().splitlines()[-1])


def _ephemerals(port: int) -> int:
    for line in four_letter(port, "mntr", timeout=10).splitlines():
        if line.startswith("zk_ephemerals_count"):
            return int(line.split()[1])
    raise RuntimeError("no zk_ephemerals_count in mntr")


def _create(port: int, path: str, data: bytes = b"") -> None:
    async def run() -> None:
        session = await _connect("127.0.0.1", port, 30000)
        _, err, _ = await session.call(wire.create_frame(path, data))
        if err not in (0, -110):
            raise RuntimeError(f"create {path}: error {err}")
        session.close()

    asyncio.run(run())


def expiry_storm(port: int, sessions: int) -> dict[str, Any]:
    _create(port, "/storm")
    holder = _spawn(
        {"kind": "hold", "host": "127.0.0.1", "port": port, "count": sessions, "timeout_ms": 4000}
    )
    _ready(holder, 300)
    live = _spawn(
        {
            "kind": "live",
            "host": "127.0.0.1",
            "port": port,
            "count": 5,
            "timeout_ms": 4000,
            "path": "/storm",
        }
    )
    try:
        _ready(live, 60)
        time.sleep(1.0)
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        killed = time.monotonic()
        deadline = killed + 120
        while _ephemerals(port) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the abandoned sessions did not expire in 120 s")
            time.sleep(0.1)
        gone_s = time.monotonic() - killed
        time.sleep(2.0)
    finally:
        if holder.poll() is None:
            holder.kill()
    result = _finish(live)
    result["expired_all_s"] = gone_s
    return result


def slow_consumer(server: Any) -> dict[str, Any]:
    port = server.port
    _create(port, "/slow", b"s" * _MB)
    live = _spawn(
        {
            "kind": "live",
            "host": "127.0.0.1",
            "port": port,
            "count": 1,
            "timeout_ms": 10000,
            "path": "/slow",
        }
    )
    _ready(live, 60)
    time.sleep(1.0)
    before = rss_kib(server.pid)
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(wire.connect_frame(30000))
        sock.settimeout(10)
        sock.recv(4096)  # the ConnectResponse
        frames = b"".join(
            wire.with_xid(wire.get_data_frame("/slow"), xid) for xid in range(1, 1001)
        )
        sock.sendall(frames)
        peak = before
        until = time.monotonic() + 10.0
        while time.monotonic() < until:
            peak = max(peak, rss_kib(server.pid))
            time.sleep(0.2)
    finally:
        sock.close()
    result = _finish(live)
    result["rss_growth_mib"] = (peak - before) / 1024
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.liveness")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--only", default=",".join(WORKLOAD_NAMES))
    parser.add_argument("--servers", default="zookeeper,zkreg")
    parser.add_argument("--sessions", type=int, default=10000, help="expiry storm size")
    options = parser.parse_args(argv)
    if options.client:
        return client_main(json.loads(options.client))
    only = {name.strip() for name in options.only.split(",") if name.strip()}
    servers = server_names(options.servers)
    rows: dict[str, Row] = {}

    def add(key: str, label: str, server: str, value: float) -> None:
        rows.setdefault(key, Row(label, False)).figures.setdefault(server, []).append(value)

    def measure(name: str, server: ServerProcess) -> None:
        if "expiry-storm" in only:
            log(f"[{name}] expiry storm: {options.sessions} sessions")
            storm = expiry_storm(server.port, options.sessions)
            label = f"expiry storm of {options.sessions}"
            add(
                "storm_wait",
                f"{label}: longest live request (ms)",
                name,
                storm["worst_wait_ms"],
            )
            add("storm_lost", f"{label}: live sessions lost (of 5)", name, storm["lost"])
            add(
                "storm_all",
                f"{label}: all expired after kill (s)",
                name,
                storm["expired_all_s"],
            )
        if "slow-consumer" in only:
            log(f"[{name}] slow consumer: 1000 unread getData of 1 MB")
            slow = slow_consumer(server)
            add(
                "slow_rss",
                "slow consumer, 1000 x 1 MB unread: RSS growth (MiB)",
                name,
                slow["rss_growth_mib"],
            )
            add(
                "slow_wait",
                "slow consumer: longest request of another (ms)",
                name,
                slow["worst_wait_ms"],
            )

    failures: list[str] = []
    measure_each(servers, make_server, measure, failures)
    print(render(rows, servers))
    print(f"\n({os.cpu_count()} cores; one repetition)")
    return exit_status(failures)


if __name__ == "__main__":
    sys.exit(main())
