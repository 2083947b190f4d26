"""
The workloads of C{python -m bench} against one running server: their sizes
(L{Params}), each run in a load-client process (L{bench.loadclient}) and its figures
added to the result table's rows.

Separate from the command line (L{bench.run}) because L{bench.etcd_tier} runs the same
workloads against zkreg on etcd, and L{bench.tls} and L{bench.durability} run the load
client the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import profile, tree
from bench.harness import log, make_server
from bench.loadprocess import LoadProcess
from bench.rss import settled_rss_kib
from bench.table import Row
from tests.support.servers import ServerProcess

WORKLOAD_NAMES = (
    "memory",
    "sequential",
    "pipelined-read",
    "pipelined-write",
    "mixed",
    "ephemeral",
    "fanout",
    "scale-out",
    "znodes",
)

#: Session processes of the C{scale-out} workload's zkreg runs.
SCALE_OUT_PROCESSES = (1, 2, 4)

#: Workloads of a default run: C{znodes} (a million-node tree on each server) is
#: asked for by name.
DEFAULT_WORKLOADS = tuple(name for name in WORKLOAD_NAMES if name != "znodes")

#: Pipeline depths (sessions x requests in flight per session) of a default run: the
#: bench's historical 4x64 and ZooKeeper's usual benchmark depth 8x100.
DEFAULT_DEPTHS = ((4, 64), (8, 100))


@dataclass
class Params:
    """
    The sizes of one run.

    @ivar sequential_count: round trips per operation in the latency workload.
    @ivar depths: C{(sessions, requests in flight per session)} of each run of the
        pipelined workloads.
    @ivar pipeline_seconds: measured duration of each pipelined workload.
    @ivar pipeline_warmup: unmeasured lead-in of each pipelined workload.
    @ivar fanout_watchers: sessions watching the one node.
    @ivar fanout_rounds: setData rounds of the fan-out workload.
    @ivar idle_sessions: sessions opened for the memory workload.
    """

    sequential_count: int = 5000
    depths: tuple[tuple[int, int], ...] = DEFAULT_DEPTHS
    pipeline_seconds: float = 5.0
    pipeline_warmup: float = 1.0
    fanout_watchers: int = 1000
    fanout_rounds: int = 5
    idle_sessions: int = 5000
    znodes: int = 1_000_000


QUICK = Params(
    sequential_count=300,
    pipeline_seconds=1.0,
    pipeline_warmup=0.3,
    fanout_watchers=500,
    fanout_rounds=2,
    idle_sessions=1000,
    znodes=50_000,
)


def run_loadclient(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """
    Run one workload in a separate load-client process.

    @return: its JSON result.
    @raise RuntimeError: when it fails or runs past C{timeout} seconds.
    """
    completed = subprocess.run(
        [sys.executable, "-m", "bench.loadclient", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load client failed: {completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_memory(server: ServerProcess, sessions: int) -> dict[str, Any]:
    """
    RSS of the server before and while C{sessions} idle sessions are open.

    @return: C{per_session_kib}, C{before_kib}, C{after_kib}.
    """
    pid = server.pid
    assert pid is not None
    before = settled_rss_kib(pid)
    spec = {"workload": "hold", "host": "127.0.0.1", "port": server.port, "count": sessions}
    holder = LoadProcess(spec)
    try:
        opened = holder.phase(120.0, "opening the idle sessions")
        after = settled_rss_kib(pid)
    finally:
        holder.close(30)
    return {
        "sessions": opened["ready"],
        "open_seconds": opened["open_seconds"],
        "before_kib": before,
        "after_kib": after,
        "per_session_kib": (after - before) / opened["ready"],
    }


def run_workloads(
    server: ServerProcess,
    params: Params,
    only: set[str],
    rows: dict[str, Row],
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """
    Run the selected workloads against one running server, adding to C{rows}.

    @param profile_dir: when given and the server is zkreg, sample it with py-spy
        during each pipelined workload and write the raw stacks and a summary there.
    @return: the raw results by workload.
    """
    pid = server.pid
    base = {"host": "127.0.0.1", "port": server.port, "server_pid": pid}
    raw: dict[str, Any] = {}

    def add(key: str, label: str, higher: bool, value: float, result: dict[str, Any]) -> None:
        row = rows.setdefault(key, Row(label, higher))
        row.figures.setdefault(server.name, []).append(value)
        row.cpu.setdefault(server.name, []).append(
            (result.get("client_cpu_pct"), result.get("server_cpu_pct"))
        )

    if "memory" in only:
        log(f"[{server.name}] memory: {params.idle_sessions} idle sessions")
        result = measure_memory(server, params.idle_sessions)
        raw["memory"] = result
        add("mem_base", "server RSS before sessions (MiB)", False, result["before_kib"] / 1024, {})
        add(
            "mem_session",
            f"RSS per idle session, {result['sessions']} sessions (KiB)",
            False,
            result["per_session_kib"],
            {},
        )
        add(
            "mem_open", f"open {result['sessions']} sessions (s)", False, result["open_seconds"], {}
        )

    if "sequential" in only:
        log(f"[{server.name}] sequential: {params.sequential_count} getData, setData")
        spec = {**base, "workload": "sequential", "count": params.sequential_count}
        result = run_loadclient(spec, timeout=300)
        raw["sequential"] = result
        for op, name in (("get", "getData"), ("set", "setData")):
            for pct in ("p50", "p99"):
                add(
                    f"seq_{op}_{pct}",
                    f"sequential {name} {pct} (us)",
                    False,
                    result[f"{op}_{pct}_us"],
                    result,
                )

    pipelined: list[tuple[str, str]] = []
    if "pipelined-read" in only:
        pipelined.append(("get", "getData"))
    if "pipelined-write" in only:
        pipelined += [("set", "setData"), ("create", "create")]
    if "mixed" in only:
        pipelined.append(("mixed", "mixed 90% getData/10% setData"))
    if "ephemeral" in only:
        pipelined.append(("ephemeral", "ephemeral create+delete"))
    for connections, window in params.depths:
        shape = f"{connections}x{window}"
        for op, name in pipelined:
            log(f"[{server.name}] pipelined {name}: {shape} in flight, {params.pipeline_seconds}s")
            spec = {
                **base,
                "workload": "pipelined",
                "op": op,
                "connections": connections,
                "window": window,
                "seconds": params.pipeline_seconds,
                "warmup": params.pipeline_warmup,
            }
            sampler = None
            if profile_dir is not None and server.name == "zkreg" and pid is not None:
                raw_stacks = profile_dir / f"zkreg-pipelined-{op}-{shape}.txt"
                # Sample the measured window: the load client connects and warms up first.
                sampler = profile.start(
                    pid, raw_stacks, params.pipeline_seconds + params.pipeline_warmup
                )
            result = run_loadclient(spec, timeout=120 + params.pipeline_seconds)
            if sampler is not None:
                sampler.wait(60)
                summary = profile.summarize(raw_stacks)
                (profile_dir / f"zkreg-pipelined-{op}-{shape}.summary.txt").write_text(
                    summary + "\n"
                )
                log(summary)
            raw[f"pipelined_{op}_{shape}"] = result
            if result["errors"] or result["connections_lost"]:
                log(
                    f"[{server.name}] pipelined {name}: {result['errors']} error replies, "
                    f"{result['connections_lost']} connections closed by the server"
                )
            label = f"{name}, {shape} in flight"
            add(f"pipe_{op}_{shape}", f"{label} (ops/s)", True, result["ops_per_s"], result)
            if result.get("p99_us") is not None:
                add(f"pipe_{op}_{shape}_p99", f"{label}: p99 (us)", False, result["p99_us"], result)
            server_pct = result.get("server_cpu_pct")
            if server_pct is not None and result["ops_per_s"]:
                # CPU per op does not depend on how much CPU a busy machine lends the
                # server, so it compares the servers' work where ops/s cannot.
                per_op = server_pct / 100 / result["ops_per_s"] * 1e6
                add(
                    f"pipe_{op}_{shape}_cpu",
                    f"{label}: server CPU per op (us)",
                    False,
                    per_op,
                    result,
                )

    if "znodes" in only:
        log(f"[{server.name}] znodes: {params.znodes} znodes of 100 bytes, then a watch on each")
        result = tree.measure_tree(server, params.znodes)
        raw["znodes"] = result
        count = f"{params.znodes:,}"
        add(
            "tree_node",
            f"RSS per znode, {count} of 100 bytes (bytes)",
            False,
            result["per_znode_b"],
            {},
        )
        add(
            "tree_watch",
            f"RSS per watch, {count} watches (bytes)",
            False,
            result["per_watch_b"],
            {},
        )
        # The fair comparison of what the structures hold (bench/tree.py says why):
        # ZooKeeper's live heap after a full collection against zkreg's RSS, which
        # CPython returns as soon as nothing refers to it.
        jvm = server.name == "zookeeper"
        held = "live heap after full GC" if jvm else "RSS"
        add(
            "tree_node_held",
            "held per znode, ZK live heap after full GC / zkreg RSS (bytes)",
            False,
            result["per_znode_heap_b" if jvm else "per_znode_b"],
            {},
        )
        add(
            "tree_watch_held",
            "held per watch, ZK live heap after full GC / zkreg RSS (bytes)",
            False,
            result["per_watch_heap_b" if jvm else "per_watch_b"],
            {},
        )
        log(f"[{server.name}] held ({held}): {result}")
        if result["watches"] is not None:
            add("tree_wchs", "watches the server counts (wchs)", False, result["watches"], {})
        add(
            "tree_create",
            f"create {count} znodes, 8x100 in flight (s)",
            False,
            result["create_seconds"],
            {},
        )
        log(f"[{server.name}] restart with {count} znodes")
        try:
            restart = tree.measure_restart(server)
        except RuntimeError as failure:
            # The memory rows above stand; the failure is in the log and the row is "-".
            log(f"[{server.name}] restart not measured: {failure}")
        else:
            # A new process: the later workloads sample the new pid's CPU.
            pid = server.pid
            base["server_pid"] = pid
            add(
                "tree_restart",
                f"restart with {count} znodes: stop, start, first getData (s)",
                False,
                restart,
                {},
            )

    if "fanout" in only:
        log(f"[{server.name}] fan-out: {params.fanout_watchers} watchers")
        spec = {
            **base,
            "workload": "fanout",
            "watchers": params.fanout_watchers,
            "rounds": params.fanout_rounds,
        }
        result = run_loadclient(spec, timeout=300)
        raw["fanout"] = result
        label = f"watch fan-out to {params.fanout_watchers}"
        add("fan_p50", f"{label}: p50 event (ms)", False, result["p50_ms"], result)
        add("fan_all", f"{label}: all received (ms)", False, result["all_ms"], result)
    return raw


def measure_read_scale_out(
    params: Params, rows: dict[str, Row], fsync: bool = True
) -> dict[str, Any]:
    """
    The split's read scale-out on this machine: pipelined getData at the deepest
    depth against zkreg with 1, 2 and 4 session processes (C{--session-processes}),
    each a fresh server; ops/s and server CPU per op (parent and children).
    """
    connections, window = max(params.depths, key=lambda depth: depth[0] * depth[1])
    shape = f"{connections}x{window}"
    raw: dict[str, Any] = {}
    for count in SCALE_OUT_PROCESSES:
        server = make_server("zkreg", fsync=fsync, session_processes=count)
        try:
            log(f"[zkreg] read scale-out: {count} session process(es), getData {shape}")
            server.start()
            spec = {
                "host": "127.0.0.1",
                "port": server.port,
                "server_pid": server.pid,
                "workload": "pipelined",
                "op": "get",
                "connections": connections,
                "window": window,
                "seconds": params.pipeline_seconds,
                "warmup": params.pipeline_warmup,
            }
            result = run_loadclient(spec, timeout=120 + params.pipeline_seconds)
        finally:
            server.cleanup()
        raw[str(count)] = result
        label = f"read scale-out: getData {shape}, {count} session process(es)"
        row = rows.setdefault(f"scale_{count}", Row(f"{label} (ops/s)", True))
        row.figures.setdefault("zkreg", []).append(result["ops_per_s"])
        cpu = (result.get("client_cpu_pct"), result.get("server_cpu_pct"))
        row.cpu.setdefault("zkreg", []).append(cpu)
        server_pct = result.get("server_cpu_pct")
        if server_pct is not None and result["ops_per_s"]:
            per_op = rows.setdefault(
                f"scale_{count}_cpu", Row(f"{label}: server CPU per op (us)", False)
            )
            per_op.figures.setdefault("zkreg", []).append(
                server_pct / 100 / result["ops_per_s"] * 1e6
            )
            per_op.cpu.setdefault("zkreg", []).append(cpu)
    return raw
