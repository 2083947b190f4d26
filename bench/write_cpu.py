"""
CPU per write of each zkreg process, standalone and split (a data server and session
servers over the data link), under pipelined writes.

    python -m bench.write_cpu [--layouts standalone,split,processes]
        [--ops set,create,ephemeral] [--depth 8x100] [--seconds 5]
        [--session-servers 1] [--profile DIR]

For each layout and workload it prints the throughput and, per process, the CPU it
used per completed operation in microseconds (user + system time from
C{/proc/<pid>/stat}, every thread), which is what limits writes once the processes
have a core each; with C{--profile} each process is also sampled with py-spy and its
hot spots written to C{DIR}.  The load client runs in its own process, as in
C{python -m bench}; the session servers share the clients round-robin.  The
C{processes} layout is one zkreg with C{--session-processes N} (N from
C{--session-servers}): its parent is the data server, its children session servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import profile
from bench.cpu import process_cpu_seconds
from bench.harness import ZKREG_BENCH_ARGS
from bench.loadclient import pipelined
from tests.support.ports import free_port
from tests.support.servers import ZkregServer


def _start_layout(layout: str, session_servers: int, fsync: bool) -> dict[str, ZkregServer]:
    """@return: the started processes by role name; clients use those named C{client*}."""
    extra = list(ZKREG_BENCH_ARGS) + ([] if fsync else ["--no-fsync"])
    if layout == "standalone":
        server = ZkregServer(extra_args=extra)
        server.start()
        return {"client": server}
    if layout == "processes":
        # The data server is the parent; its session processes are measured apart.
        server = ZkregServer(extra_args=extra + ["--session-processes", str(session_servers)])
        server.start()
        return {"client": server}
    link_port = free_port()
    data = ZkregServer(
        extra_args=extra + ["--data-link-listen", f"tcp:{link_port}:interface=127.0.0.1"]
    )
    data.start()
    servers = {"data": data}
    for index in range(session_servers):
        session = ZkregServer(
            extra_args=list(ZKREG_BENCH_ARGS)
            + ["--role", "session", "--data-server", f"tcp:127.0.0.1:{link_port}"]
        )
        session.start()
        servers[f"client{index}"] = session
    return servers


def _thread_cpu(pid: int) -> dict[str, float]:
    """
    @return: CPU seconds of process C{pid} by thread and kind: C{main user},
        C{main sys} (the reactor thread, whose id is the pid), C{other user},
        C{other sys} (the WAL writer and any pool thread), from
        C{/proc/<pid>/task/*/stat}.
    """
    tick = os.sysconf("SC_CLK_TCK")
    used = {"main user": 0.0, "main sys": 0.0, "other user": 0.0, "other sys": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        who = "main" if int(tid) == pid else "other"
        used[f"{who} user"] += int(fields[11]) / tick
        used[f"{who} sys"] += int(fields[12]) / tick
    return used


def _children(pid: int) -> list[int]:
    """@return: the pids of C{pid}'s children."""
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


async def _run(ports: list[int], op: str, connections: int, window: int, seconds: float) -> Any:
    """One pipelined workload spread over the client ports (one load client each)."""
    share = max(1, connections // len(ports))
    runs = [pipelined("127.0.0.1", port, op, share, window, seconds, warmup=0.0) for port in ports]
    return await asyncio.gather(*runs)


def measure(
    layout: str,
    op: str,
    connections: int,
    window: int,
    seconds: float,
    session_servers: int,
    fsync: bool,
    profile_dir: Path | None,
) -> dict[str, Any]:
    """@return: ops/s and CPU microseconds per op of each process, for one workload."""
    servers = _start_layout(layout, session_servers, fsync)
    try:
        ports = [server.port for name, server in servers.items() if name.startswith("client")]
        pids = {name: server.pid for name, server in servers.items()}
        if layout == "processes":
            parent = pids.pop("client")
            pids["data"] = parent
            for index, child in enumerate(_children(parent)):
                pids[f"session{index}"] = child
        samplers = {}
        if profile_dir is not None:
            for name, pid in pids.items():
                raw = profile_dir / f"{layout}-{op}-{name}.txt"
                samplers[name] = (raw, profile.start(pid, raw, max(1.0, seconds - 1.0)))
        before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        threads_before = {name: _thread_cpu(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        results = asyncio.run(_run(ports, op, connections, window, seconds))
        wall = time.perf_counter() - started
        used = {name: process_cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        threads = {}
        for name, pid in pids.items():
            now = _thread_cpu(pid)
            threads[name] = {kind: 1e6 * (now[kind] - threads_before[name][kind]) for kind in now}
        for name, (raw, sampler) in samplers.items():
            sampler.wait()
            summary = profile.summarize(raw)
            (profile_dir / f"{layout}-{op}-{name}.summary.txt").write_text(summary)  # type: ignore[operator]
        # No warm-up: the CPU of the few set-up requests is lost in the run's ops.
        ops = sum(result["ops"] for result in results)
        ops_per_s = sum(result["ops_per_s"] for result in results)
        return {
            "layout": layout,
            "op": op,
            "ops_per_s": round(ops_per_s),
            "errors": sum(result["errors"] for result in results),
            "p99_us": max(result["p99_us"] or 0 for result in results),
            "cpu_us_per_op": {name: round(1e6 * cpu / ops, 1) for name, cpu in used.items()},
            "cpu_pct": {name: round(100 * cpu / wall) for name, cpu in used.items()},
            "thread_cpu_us_per_op": {
                name: {kind: round(value / max(ops, 1), 1) for kind, value in kinds.items()}
                for name, kinds in threads.items()
            },
            "ops": ops,
        }
    finally:
        for server in servers.values():
            server.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.write_cpu", description=__doc__)
    parser.add_argument("--layouts", default="standalone,split")
    parser.add_argument("--ops", default="set,create,ephemeral")
    parser.add_argument("--depth", default="8x100", help="sessions x outstanding")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--session-servers", type=int, default=1)
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--profile", metavar="DIR")
    parser.add_argument("--json", metavar="FILE")
    options = parser.parse_args(argv)
    connections, window = (int(part) for part in options.depth.split("x"))
    profile_dir = None
    if options.profile:
        profile_dir = Path(options.profile)
        profile_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for layout in options.layouts.split(","):
        for op in options.ops.split(","):
            row = measure(
                layout,
                op,
                connections,
                window,
                options.seconds,
                options.session_servers,
                not options.no_fsync,
                profile_dir,
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"{'layout':<11} {'op':<10} {'ops/s':>8} {'p99 ms':>7}  CPU us/op per process")
    for row in rows:
        cpu = "  ".join(f"{name} {value}" for name, value in row["cpu_us_per_op"].items())
        print(
            f"{row['layout']:<11} {row['op']:<10} {row['ops_per_s']:>8} "
            f"{row['p99_us'] / 1000:>7.1f}  {cpu}"
        )
        for name, kinds in row["thread_cpu_us_per_op"].items():
            split = ", ".join(f"{kind} {value}" for kind, value in kinds.items())
            print(f"{'':<11} {'':<10} {'':>8} {'':>7}  {name} by thread: {split}")
    if options.json:
        Path(options.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
