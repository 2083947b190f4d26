"""
Durability benchmark: what the file WAL and the snapshots cost, side by side with
Apache ZooKeeper.

Three parts, each selectable (default: all):

  - C{writes}: write latency (one session, synchronous setData) and throughput
    (pipelined setData and sequential creates from many sessions) with the log synced
    before every acknowledgement: zkreg (fsync on) against ZooKeeper
    (C{forceSync=yes}, its default) in the same run, on the same disk; zkreg with
    C{--no-fsync} as a reference.  Uses H5's raw-protocol load client
    (L{bench.loadclient}) in its own process.
  - C{snapshot}: in this process, a L{DataTree} of C{--nodes} znodes (default
    1,000,000) snapshotted by the forked child while a 1 ms C{LoopingCall} measures how
    late the reactor gets: the longest pause (the C{fork} call) and the worst loop lag;
    then the time to recover that directory (snapshot load + digest check).
  - C{restart}: both servers filled with C{--nodes} znodes over the wire, killed with
    SIGKILL and started again: the time until each serves again.

Run: C{python -m bench.durability [writes] [snapshot] [restart] [--nodes N]}.
Results are printed as a table and as JSON (C{--json PATH}).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# -- writes --------------------------------------------------------------------------


def make_server(kind: str, fsync: bool = True, jvm_heap: str = "1g") -> Any:
    """
    An unstarted server: ZooKeeper with C{forceSync} as C{fsync} says, or zkreg under
    C{twistd -n} with C{--no-fsync} when C{fsync} is off.
    """
    from bench.harness import ZKREG_BENCH_ARGS, ZOOKEEPER_BENCH_JVM_ARGS
    from tests.support.servers import ZkregServer, ZooKeeperOracle

    if kind == "zookeeper":
        config = {} if fsync else {"forceSync": "no"}
        return ZooKeeperOracle(
            extra_config=config, extra_jvm_args=[*ZOOKEEPER_BENCH_JVM_ARGS, f"-Xmx{jvm_heap}"]
        )
    return ZkregServer(extra_args=[*ZKREG_BENCH_ARGS, *(() if fsync else ("--no-fsync",))])


def bench_writes(seconds: float, connections: int, window: int) -> dict[str, Any]:
    """Latency and throughput of writes with sync on, zkreg against ZooKeeper."""
    from bench.workloads import run_loadclient

    results: dict[str, Any] = {}
    for label, kind, fsync in (
        ("zookeeper forceSync=yes", "zookeeper", True),
        ("zkreg fsync", "zkreg", True),
        ("zkreg --no-fsync (unsafe)", "zkreg", False),
    ):
        server = make_server(kind, fsync=fsync)
        _log(f"[writes] starting {label}")
        try:
            server.start()
            common = {"host": "127.0.0.1", "port": server.port, "server_pid": server.pid}
            sequential = run_loadclient(
                {"workload": "sequential", "count": 2000, **common}, timeout=300
            )
            row: dict[str, Any] = {
                "set_p50_us": sequential["set_p50_us"],
                "set_p99_us": sequential["set_p99_us"],
            }
            for op in ("set", "create"):
                piped = run_loadclient(
                    {
                        "workload": "pipelined",
                        "op": op,
                        "connections": connections,
                        "window": window,
                        "seconds": seconds,
                        **common,
                    },
                    timeout=300,
                )
                row[f"{op}_ops_per_s"] = piped["ops_per_s"]
                row[f"{op}_errors"] = piped["errors"]
            results[label] = row
            _log(f"[writes] {label}: {row}")
        finally:
            server.cleanup()
    return results


# -- snapshot pause ------------------------------------------------------------------


def build_tree(nodes: int) -> Any:
    """A tree of C{nodes} znodes (plus the system nodes), 100 children per parent."""
    from zkreg.data.tree import DataTree
    from zkreg.proto.records import ACL, CreateSessionTxn, CreateTxn, Id, TxnHeader

    acl = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]
    tree = DataTree()
    zxid = 1
    tree.apply(TxnHeader(0x77, 0, zxid, 1_700_000_000_000, -10), CreateSessionTxn(30000))
    parents = max(nodes // 100, 1)
    made = 0
    for parent_index in range(parents):
        zxid += 1
        parent = f"/p{parent_index:05d}"
        tree.apply(
            TxnHeader(0x77, zxid, zxid, 1_700_000_000_000 + zxid, 1),
            CreateTxn(parent, b"parent", acl, False, -1),
        )
        made += 1
        for child in range(99):
            if made >= nodes:
                break
            zxid += 1
            tree.apply(
                TxnHeader(0x77, zxid, zxid, 1_700_000_000_000 + zxid, 1),
                CreateTxn(f"{parent}/c{child:02d}", b"value-%d" % zxid, acl, child == 0, -1),
            )
            made += 1
    return tree


def bench_snapshot(nodes: int) -> dict[str, Any]:
    """
    Snapshot a tree of C{nodes} znodes in a forked child under a running reactor and
    measure the reactor's longest stall; then time recovery of the directory.
    """
    from twisted.internet import reactor, task

    from zkreg.persistence.durable import ForkSnapshotter
    from zkreg.persistence.recovery import recover

    started = time.perf_counter()
    tree = build_tree(nodes)
    build_seconds = time.perf_counter() - started
    _log(f"[snapshot] built {tree.node_count()} nodes in {build_seconds:.1f}s")
    directory = tempfile.mkdtemp(prefix="zkreg-bench-snap-")
    result: dict[str, Any] = {"nodes": tree.node_count(), "build_s": build_seconds}
    lag = {"worst": 0.0, "ticks": 0}
    interval = 0.001

    def tick() -> None:
        now = time.perf_counter()
        previous = lag.get("last")
        if previous is not None:
            lag["worst"] = max(lag["worst"], now - previous - interval)
        lag["last"] = now
        lag["ticks"] += 1

    def run() -> Any:
        loop = task.LoopingCall(tick)
        loop.start(interval)
        snapshotter = ForkSnapshotter(directory, tree, None)

        def measure_baseline() -> Any:
            result["baseline_loop_lag_ms"] = lag["worst"] * 1000
            lag["worst"] = 0.0
            snap_started = time.perf_counter()
            taken = snapshotter.take_snapshot()

            def done(path: str) -> None:
                result["fork_pause_ms"] = snapshotter.last_pause * 1000
                result["worst_loop_lag_during_snapshot_ms"] = lag["worst"] * 1000
                result["snapshot_seconds"] = time.perf_counter() - snap_started
                result["snapshot_bytes"] = os.path.getsize(path)
                loop.stop()

            taken.addCallback(done)
            taken.addErrback(lambda failure: result.setdefault("error", str(failure.value)))
            taken.addBoth(lambda _: reactor.stop())

        # One second of ticks first: the lag the reactor shows without a snapshot.
        reactor.callLater(1.0, measure_baseline)

    reactor.callWhenRunning(run)
    reactor.run()
    _log(f"[snapshot] {result}")
    tree = None  # free it before recovery builds its own
    started = time.perf_counter()
    state = recover(directory)
    result["recover_seconds"] = time.perf_counter() - started
    result["recovered_nodes"] = state.tree.node_count()
    shutil.rmtree(directory, ignore_errors=True)
    _log(f"[snapshot] recovery {result['recover_seconds']:.2f}s")
    return result


# -- restart -------------------------------------------------------------------------


async def populate(
    host: str, port: int, count: int, connections: int = 8, window: int = 200
) -> float:
    """
    Create C{count} persistent sequential znodes over the wire (10-byte data).

    @return: seconds taken.
    """
    from bench import wire
    from bench.rawclient import Pinger, Pipeline, connect_many, ensure_node

    sessions = await connect_many(host, port, connections)
    for parent in ("/fill", *(f"/fill/p{index}" for index in range(connections))):
        await ensure_node(sessions[0], parent)
    pipelines = [
        Pipeline(wire.create_frame(f"/fill/p{index}/n-", b"0123456789", 2), window)
        for index in range(connections)
    ]
    pinger = Pinger(sessions)
    started = time.perf_counter()
    for pipeline, session in zip(pipelines, sessions, strict=True):
        pipeline.start(session)
    last_report = started
    while sum(p.done for p in pipelines) < count:
        await asyncio.sleep(0.05)
        if time.perf_counter() - last_report > 10:
            last_report = time.perf_counter()
            _log(f"[restart]   {sum(p.done for p in pipelines)} created")
    for pipeline in pipelines:
        pipeline.stop()
    await asyncio.sleep(1.0)  # the replies still in flight
    elapsed = time.perf_counter() - started
    errors = sum(p.errors for p in pipelines)
    pinger.stop()
    for session in sessions:
        session.close()
    if errors:
        raise RuntimeError(f"{errors} creates failed while filling")
    return elapsed


def _node_count(server: Any) -> int:
    for line in server.four_letter("srvr", timeout=30).splitlines():
        if line.startswith("Node count:"):
            return int(line.split(":")[1])
    return -1


def bench_restart(nodes: int) -> dict[str, Any]:
    """Fill each server with C{nodes} znodes, kill -9 it, time the restart."""
    results: dict[str, Any] = {}
    for kind in ("zookeeper", "zkreg"):
        server = make_server(kind, fsync=True, jvm_heap="3g")
        try:
            server.start()
            _log(f"[restart] filling {kind} with {nodes} znodes")
            fill_seconds = asyncio.run(populate("127.0.0.1", server.port, nodes))
            count = _node_count(server)
            _log(f"[restart] {kind}: {count} nodes after {fill_seconds:.1f}s; kill -9")
            time.sleep(2.0)  # let a snapshot that the last creates triggered start
            server.kill()
            started = time.perf_counter()
            server.start(deadline_s=900)
            restart_seconds = time.perf_counter() - started
            count_after = _node_count(server)
            results[kind] = {
                "nodes": count,
                "nodes_after_restart": count_after,
                "fill_seconds": fill_seconds,
                "fill_creates_per_s": nodes / fill_seconds,
                "restart_seconds": restart_seconds,
                "data_dir_bytes": _dir_bytes(str(server.data_dir)),
            }
            if kind == "zkreg":
                results[kind]["fork_pauses_ms"] = _fork_pauses(server.log_tail(10_000_000))
            _log(f"[restart] {kind}: {results[kind]}")
        finally:
            server.cleanup()
    return results


def _dir_bytes(directory: str) -> int:
    total = 0
    for root, _, names in os.walk(directory):
        for name in names:
            total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


def _fork_pauses(log_text: str) -> list[float]:
    """The reactor pauses the snapshotter logged (text or JSON log lines)."""
    import re

    pauses = []
    for line in log_text.splitlines():
        if "reactor paused" not in line and '"ms"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            match = re.search(r"reactor paused ([0-9.]+) ms", line)
            if match:
                pauses.append(float(match.group(1)))
            continue
        if isinstance(event, dict) and "ms" in event and "pid" in event:
            pauses.append(round(float(event["ms"]), 2))
    return pauses


# -- main ----------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    lines = []
    writes = results.get("writes")
    if writes:
        lines.append("Writes with sync on (same disk, same run)")
        lines.append(
            f"{'server':<28}{'set p50 us':>12}{'set p99 us':>12}{'set ops/s':>12}{'create ops/s':>14}"
        )
        for label, row in writes.items():
            lines.append(
                f"{label:<28}{row['set_p50_us']:>12.0f}{row['set_p99_us']:>12.0f}"
                f"{row['set_ops_per_s']:>12.0f}{row['create_ops_per_s']:>14.0f}"
            )
    snapshot = results.get("snapshot")
    if snapshot:
        lines.append(f"Snapshot of {snapshot['nodes']} znodes (forked child)")
        for key in (
            "fork_pause_ms",
            "baseline_loop_lag_ms",
            "worst_loop_lag_during_snapshot_ms",
            "snapshot_seconds",
            "snapshot_bytes",
            "recover_seconds",
        ):
            if key in snapshot:
                lines.append(f"  {key:<36}{snapshot[key]:>14.2f}")
    restart = results.get("restart")
    if restart:
        lines.append("Restart after kill -9 with the tree on disk")
        for kind, row in restart.items():
            lines.append(
                f"  {kind:<10} {row['nodes']} nodes: restart {row['restart_seconds']:.1f}s "
                f"(fill {row['fill_creates_per_s']:.0f} creates/s, {row['data_dir_bytes'] >> 20} MiB on disk)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.durability")
    parser.add_argument("parts", nargs="*", default=["writes", "snapshot", "restart"])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for part in args.parts:
        if part == "writes":
            results["writes"] = bench_writes(args.seconds, args.connections, args.window)
        elif part == "snapshot":
            results["snapshot"] = bench_snapshot(args.nodes)
        elif part == "restart":
            results["restart"] = bench_restart(args.nodes)
        else:
            parser.error(f"unknown part {part}")
    sys.stdout.write(render(results) + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
