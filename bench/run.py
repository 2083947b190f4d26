"""
Benchmark zkreg against Apache ZooKeeper 3.8 with the same workloads, in one run.

Method: each server runs alone (ZooKeeper first, then zkreg), started by the test
launchers of L{tests.support.servers} on a free loopback port with its default
durability (ZooKeeper forceSync=yes, zkreg fsync on).  Every workload is driven by
L{bench.loadclient}, a raw-protocol asyncio client in its own process, so on a 2-core
machine the server and the load generator each have a core.  The load client reports
its own CPU use and the server's over the measured window, so a reader can see which
side was saturated.  The workloads are in L{bench.workloads}, the servers' set-up in
L{bench.harness}, the table in L{bench.table}; this module is the command line.

Usage::

    python -m bench [--quick] [--only WORKLOAD[,WORKLOAD]] [--servers zookeeper,zkreg]
                    [--zkreg-session-processes N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import profile
from bench.harness import (
    MEASUREMENT_FAILURES,
    exit_status,
    log,
    make_server,
    measure_each,
    server_names,
)
from bench.table import Row, render
from bench.workloads import (
    DEFAULT_WORKLOADS,
    QUICK,
    WORKLOAD_NAMES,
    Params,
    measure_read_scale_out,
    run_workloads,
)
from tests.support.servers import ServerProcess

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
                log(f"[zkreg] read scale-out FAILED: {failure}")
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
