"""
Benchmark zkreg against Apache ZooKeeper 3.8 with the same workloads, in one run.

Method: each server runs alone (ZooKeeper first, then zkreg), started by the test
launchers of L{tests.support.servers} on a free loopback port with its default
durability (ZooKeeper forceSync=yes, zkreg fsync on).  Every workload is driven by
L{bench.loadclient}, a raw-protocol asyncio client in its own process, so on a 2-core
machine the server and the load generator each have a core.  The load client reports
its own CPU use and the server's over the measured window, so a reader can see which
side was saturated.

Usage::

    python -m bench [--quick] [--only WORKLOAD[,WORKLOAD]] [--servers zookeeper,zkreg]
                    [--zkreg-session-processes N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import profile, tree
from bench.loadprocess import LoadProcess
from bench.rss import settled_rss_kib
from tests.support.servers import (
    ServerProcess,
    ZkregServer,
    ZooKeeperOracle,
    unavailable_reason,
)

#: JVM flags for the benchmark: ZooKeeper's production defaults (C2 JIT, G1, a 1 GiB
#: heap) rather than the test launcher's fast-start flags; the last flag wins.
ZOOKEEPER_BENCH_JVM_ARGS = (
    "-XX:TieredStopAtLevel=4",
    "-XX:-UseSerialGC",
    "-XX:+UseG1GC",
    "-Xmx1g",
)

#: zkreg options for the benchmark: no per-IP connection limit (the load client opens
#: thousands of sessions from 127.0.0.1), as ZooKeeper's maxClientCnxns=0 above.
ZKREG_BENCH_ARGS = ("--max-client-cnxns", "0")

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


@dataclass
class Row:
    """
    One line of the result table.

    @ivar label: what is measured, with its unit.
    @ivar higher_is_better: whether a larger figure is the better one.
    @ivar figures: server name -> the figure of each repetition (the median is shown).
    @ivar cpu: server name -> C{(client %, server %)} over the measured window.
    """

    label: str
    higher_is_better: bool
    figures: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[tuple[float | None, float | None]]] = field(default_factory=dict)

    def figure(self, server: str) -> float | None:
        """@return: the median over repetitions of C{server}'s figure, or None."""
        values = self.figures.get(server)
        return statistics.median(values) if values else None

    def cpu_cell(self, server: str) -> str:
        """@return: median client and server CPU %, as C{"client/server"}."""
        samples = [c for c in self.cpu.get(server, []) if c[0] is not None and c[1] is not None]
        if not samples:
            return "-"
        client = statistics.median(c[0] for c in samples)  # type: ignore[misc]
        srv = statistics.median(c[1] for c in samples)  # type: ignore[misc]
        return f"{client:.0f}/{srv:.0f}"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: What a failed measurement raises: reported, and the other servers still measured.
MEASUREMENT_FAILURES = (RuntimeError, OSError, subprocess.SubprocessError, ValueError)


def server_names(option: str) -> list[str]:
    """@return: the server names of a comma-separated C{--servers} option."""
    return [name.strip() for name in option.split(",") if name.strip()]


def measure_each(
    names: list[str],
    make: Callable[[str], ServerProcess],
    measure: Callable[[str, ServerProcess], None],
    failures: list[str],
    note: str = "",
) -> None:
    """
    The servers of a benchmark, each alone in turn: started, measured, cleaned up.  A
    server that cannot run here is skipped; one whose start or measurement fails is
    reported (with its log's end) and added to C{failures}, and the next one measured.

    @param make: an unstarted server by name.
    @param measure: what to measure on the running server.
    @param note: added to the "starting" line (e.g. the repetition).
    """
    for name in names:
        reason = unavailable_reason(name)
        if reason is not None:
            _log(f"skipping {name}: {reason}")
            continue
        server = make(name)
        try:
            _log(f"starting {name} on port {server.port}{note}")
            server.start()
            measure(name, server)
        except MEASUREMENT_FAILURES as failure:
            # One server failing (or a workload on it) still leaves a table of the
            # rest; the failure is reported and the exit status says so.
            _log(f"[{name}] FAILED: {failure}\n{server.log_tail(2000)}")
            failures.append(f"{name}: {failure}")
        finally:
            server.cleanup()


def exit_status(failures: list[str]) -> int:
    """@return: 0, or 1 after printing the failures."""
    if failures:
        print("\nFAILED: " + "; ".join(failures))
        return 1
    return 0


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
        _log(f"[{server.name}] memory: {params.idle_sessions} idle sessions")
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
        _log(f"[{server.name}] sequential: {params.sequential_count} getData, setData")
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
            _log(f"[{server.name}] pipelined {name}: {shape} in flight, {params.pipeline_seconds}s")
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
                _log(summary)
            raw[f"pipelined_{op}_{shape}"] = result
            if result["errors"] or result["connections_lost"]:
                _log(
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
        _log(f"[{server.name}] znodes: {params.znodes} znodes of 100 bytes, then a watch on each")
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
        _log(f"[{server.name}] held ({held}): {result}")
        if result["watches"] is not None:
            add("tree_wchs", "watches the server counts (wchs)", False, result["watches"], {})
        add(
            "tree_create",
            f"create {count} znodes, 8x100 in flight (s)",
            False,
            result["create_seconds"],
            {},
        )
        _log(f"[{server.name}] restart with {count} znodes")
        try:
            restart = tree.measure_restart(server)
        except RuntimeError as failure:
            # The memory rows above stand; the failure is in the log and the row is "-".
            _log(f"[{server.name}] restart not measured: {failure}")
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
        _log(f"[{server.name}] fan-out: {params.fanout_watchers} watchers")
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
            _log(f"[zkreg] read scale-out: {count} session process(es), getData {shape}")
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


def make_server(name: str, fsync: bool = True, session_processes: int = 0) -> ServerProcess:
    """
    @param fsync: sync writes to disk before acknowledging them (both servers'
        default); off means ZooKeeper's forceSync=no and zkreg's --no-fsync.
    @param session_processes: zkreg's C{--session-processes} (0: one process).
    @return: an unstarted server of the benchmark's configuration.
    """
    if name == "zookeeper":
        # No per-IP connection limit: the load client opens thousands of sessions.
        config = {"maxClientCnxns": "0"}
        if not fsync:
            config["forceSync"] = "no"
        return ZooKeeperOracle(extra_config=config, extra_jvm_args=ZOOKEEPER_BENCH_JVM_ARGS)
    extra = ZKREG_BENCH_ARGS + (() if fsync else ("--no-fsync",))
    if session_processes:
        extra += ("--session-processes", str(session_processes))
    return ZkregServer(extra_args=extra)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def render(rows: dict[str, Row], servers: list[str]) -> str:
    """
    @return: the table: workload, each server's figure, zkreg/ZooKeeper, and the
        client/server CPU use (100% = one core) during each measurement.
    """
    header = ["workload", *servers]
    if servers == ["zookeeper", "zkreg"]:
        header.append("zkreg/ZK")
    header += [f"cpu% cli/srv {name}" for name in servers]
    lines = [header]
    for row in rows.values():
        cells = [row.label] + [_fmt(row.figure(name)) for name in servers]
        if servers == ["zookeeper", "zkreg"]:
            zk, ours = row.figure("zookeeper"), row.figure("zkreg")
            cells.append(f"{ours / zk:.2f}" if zk and ours is not None else "-")
        cells += [row.cpu_cell(name) for name in servers]
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(line)
            )
        )
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


METHOD = """\
Method: each server runs alone on 127.0.0.1 (ZooKeeper 3.8.0 standalone, JVM with G1 and
-Xmx1g; zkreg via twistd), {durability}, started by tests/support/servers.py.
Load comes from bench/loadclient.py: one asyncio process speaking the raw protocol
(pre-encoded frames, only the xid patched, only reply headers parsed), separate from
the server process, so on this {cores}-core machine each side has a core. cpu% columns
give the load client's and the server's CPU use over the measured window (100 = one
core): a load client well under 100% was not the bottleneck. Ratio zkreg/ZK: above 1
is better for ops/s, below 1 is better for latency, time and memory."""


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[1])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run, < 60 s)")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_WORKLOADS),
        help=f"comma-separated workloads among {', '.join(WORKLOAD_NAMES)} "
        f"[default: all but znodes]",
    )
    parser.add_argument(
        "--depths",
        help="pipeline depths as SESSIONSxWINDOW[,...] [default: 4x64,8x100]",
    )
    parser.add_argument(
        "--znodes", type=int, help="znodes of the znodes workload [default: 1000000]"
    )
    parser.add_argument("--servers", default="zookeeper,zkreg", help="zookeeper,zkreg or one")
    parser.add_argument(
        "--zkreg-session-processes",
        type=int,
        default=0,
        metavar="N",
        help="run zkreg with --session-processes N (0: one process) [default: 0]",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the raw results here")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run everything N times, alternating servers; the table shows medians",
    )
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="acknowledge writes before syncing them (ZooKeeper forceSync=no, zkreg --no-fsync)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="sample zkreg with py-spy during the pipelined workloads; stacks and hot-spot "
        "summaries go to DIR",
    )
    options = parser.parse_args(argv)
    only = {name.strip() for name in options.only.split(",") if name.strip()}
    unknown = only - set(WORKLOAD_NAMES)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    servers = server_names(options.servers)
    params = replace(QUICK if options.quick else Params())
    if options.depths:
        try:
            params.depths = tuple(
                (int(part.split("x")[0]), int(part.split("x")[1]))
                for part in options.depths.split(",")
            )
        except (ValueError, IndexError):
            parser.error(f"--depths: expected SESSIONSxWINDOW[,...], got {options.depths!r}")
    if options.znodes:
        params.znodes = options.znodes
    profile_dir = None
    if options.profile:
        if not profile.available():
            parser.error("--profile needs py-spy")
        profile_dir = Path(options.profile)
        profile_dir.mkdir(parents=True, exist_ok=True)

    rows: dict[str, Row] = {}
    raw: dict[str, Any] = {"params": params.__dict__, "servers": {}}
    started = time.monotonic()
    # Servers alternate within each repetition, so a burst of load from elsewhere on
    # the machine hits both rather than one.
    failures: list[str] = []

    def make(name: str) -> ServerProcess:
        return make_server(
            name,
            fsync=not options.no_fsync,
            session_processes=options.zkreg_session_processes if name == "zkreg" else 0,
        )

    def measure(name: str, server: ServerProcess) -> None:
        result = run_workloads(server, params, only, rows, profile_dir)
        raw["servers"].setdefault(name, []).append(result)

    for repetition in range(options.repeat):
        measure_each(servers, make, measure, failures, f" (repetition {repetition + 1})")
        if "scale-out" in only and "zkreg" in servers:
            try:
                raw.setdefault("scale_out", []).append(
                    measure_read_scale_out(params, rows, fsync=not options.no_fsync)
                )
            except MEASUREMENT_FAILURES as failure:
                _log(f"[zkreg] read scale-out FAILED: {failure}")
                failures.append(f"scale-out: {failure}")
    raw["seconds"] = time.monotonic() - started
    durability = (
        "writes acknowledged before fsync (forceSync=no, --no-fsync)"
        if options.no_fsync
        else "each server's default durability (ZooKeeper forceSync=yes)"
    )
    print(METHOD.format(cores=os.cpu_count(), durability=durability))
    print()
    print(render(rows, servers))
    kind = "quick" if options.quick else "full"
    print(f"\n({kind} run, {options.repeat} repetition(s), medians shown, {raw['seconds']:.0f} s)")
    if options.json:
        with open(options.json, "w") as out:
            json.dump(raw, out, indent=2)
    return exit_status(failures)


if __name__ == "__main__":
    sys.exit(main())
