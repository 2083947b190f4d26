"""
TLS overhead: the same workloads on a server's plain port and on its TLS port, for
Apache ZooKeeper 3.8 and zkreg in one run.

ZooKeeper runs with its Netty connection factory (which C{secureClientPort} needs; its
plain port is Netty's too), PEM key and trust stores and C{ssl.clientAuth=need}; zkreg
with C{--secure-listen} and the same PEM files.  The load client (L{bench.loadclient})
connects over TLS with a client certificate, checking the server's, exactly as it
connects in plain.  Rows: sequential getData and setData (one session, p50 of N round
trips), and pipelined getData and setData at one depth (ops/s, and the server's CPU
per op, which a busy shared machine disturbs less than ops/s).  Columns: each
server's plain and TLS figures, TLS/plain, and zkreg/ZooKeeper over TLS.

Run: C{python -m bench.tls [--quick] [--repeat N] [--depth 4x64] [--no-fsync]
[--json PATH]}.  This is a benchmark, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import ZKREG_BENCH_ARGS, ZOOKEEPER_BENCH_JVM_ARGS
from bench.workloads import run_loadclient
from tests.support.certs import Stores, make_stores
from tests.support.ports import free_port
from tests.support.servers import NettyZooKeeperOracle, ServerProcess, ZkregServer

SERVERS = ("zookeeper", "zkreg")
TRANSPORTS = ("plain", "tls")


def make_server(name: str, stores: Stores, fsync: bool) -> tuple[ServerProcess, int]:
    """
    @return: an unstarted server with a plain and a TLS client port, and the TLS port.
    """
    secure_port = free_port()
    if name == "zookeeper":
        config = {"maxClientCnxns": "0", **stores.zookeeper_secure_port(secure_port)}
        if not fsync:
            config["forceSync"] = "no"
        server: ServerProcess = NettyZooKeeperOracle(
            extra_config=config, extra_jvm_args=ZOOKEEPER_BENCH_JVM_ARGS
        )
    else:
        server = ZkregServer(
            extra_args=[
                *ZKREG_BENCH_ARGS,
                *(() if fsync else ("--no-fsync",)),
                *stores.zkreg_secure_listen(secure_port),
            ]
        )
    return server, secure_port


def measure(
    server: ServerProcess, port: int, tls: dict[str, str] | None, args: argparse.Namespace
) -> dict[str, float]:
    """One server, one transport: every workload's figures by row name."""
    base: dict[str, Any] = {"host": "127.0.0.1", "port": port, "server_pid": server.pid}
    if tls is not None:
        base["tls"] = tls
    figures: dict[str, float] = {}
    result = run_loadclient({**base, "workload": "sequential", "count": args.count}, timeout=600)
    figures["sequential getData p50 (us)"] = result["get_p50_us"]
    figures["sequential setData p50 (us)"] = result["set_p50_us"]
    connections, window = (int(n) for n in args.depth.split("x"))
    for op, name in (("get", "getData"), ("set", "setData")):
        spec = {
            **base,
            "workload": "pipelined",
            "op": op,
            "connections": connections,
            "window": window,
            "seconds": args.seconds,
            "warmup": args.warmup,
        }
        result = run_loadclient(spec, timeout=120 + args.seconds)
        label = f"pipelined {name} {args.depth}"
        figures[f"{label} (ops/s)"] = result["ops_per_s"]
        server_pct = result.get("server_cpu_pct")
        if server_pct is not None and result["ops_per_s"]:
            figures[f"{label}: server CPU per op (us)"] = (
                server_pct / 100 / result["ops_per_s"] * 1e6
            )
    return figures


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _ratio(top: float | None, bottom: float | None) -> str:
    return "-" if top is None or not bottom else f"{top / bottom:.2f}"


def render(samples: dict[tuple[str, str, str], list[float]]) -> str:
    """The table: per row, each server's plain and TLS medians and the ratios."""
    rows = list(dict.fromkeys(row for row, _, _ in samples))

    def median(row: str, server: str, transport: str) -> float | None:
        values = samples.get((row, server, transport))
        return statistics.median(values) if values else None

    header = [
        "workload",
        "ZK plain",
        "ZK TLS",
        "ZK TLS/plain",
        "zkreg plain",
        "zkreg TLS",
        "zkreg TLS/plain",
        "zkreg/ZK TLS",
    ]
    lines = [header]
    for row in rows:
        zk_plain, zk_tls = median(row, "zookeeper", "plain"), median(row, "zookeeper", "tls")
        ours_plain, ours_tls = median(row, "zkreg", "plain"), median(row, "zkreg", "tls")
        lines.append(
            [
                row,
                _fmt(zk_plain),
                _fmt(zk_tls),
                _ratio(zk_tls, zk_plain),
                _fmt(ours_plain),
                _fmt(ours_tls),
                _ratio(ours_tls, ours_plain),
                _ratio(ours_tls, zk_tls),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        )
        for line in lines
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (~1 min)")
    parser.add_argument("--repeat", type=int, default=1, help="servers alternate; medians")
    parser.add_argument("--depth", default="4x64", help="sessions x requests in flight")
    parser.add_argument("--no-fsync", action="store_true", help="forceSync=no / --no-fsync")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--json")
    args = parser.parse_args()
    args.count = 300 if args.quick else 5000
    args.seconds = 1.0 if args.quick else 5.0
    args.warmup = 0.3 if args.quick else 1.0
    stores = make_stores(Path(tempfile.mkdtemp(prefix="zkreg-bench-tls-")))
    client_tls = {
        "ca": str(stores.truststore),
        "cert": str(stores.certificates["alice"]),
        "key": str(stores.keys["alice"]),
    }
    samples: dict[tuple[str, str, str], list[float]] = {}
    loads = [os.getloadavg()]
    for repetition in range(args.repeat):
        for name in args.servers.split(","):
            server, secure_port = make_server(name, stores, fsync=not args.no_fsync)
            print(f"[{name}] repetition {repetition + 1}", file=sys.stderr, flush=True)
            server.start()
            try:
                # Alternate which port goes first: a JVM still warming up would
                # otherwise always count against the first.
                for transport in TRANSPORTS[:: 1 if repetition % 2 == 0 else -1]:
                    tls = client_tls if transport == "tls" else None
                    port = secure_port if tls is not None else server.port
                    for row, value in measure(server, port, tls, args).items():
                        samples.setdefault((row, name, transport), []).append(value)
            finally:
                server.cleanup()
            loads.append(os.getloadavg())
    print(render(samples))
    low = min(load[0] for load in loads)
    high = max(load[0] for load in loads)
    print(f"load average (1 min) during the run: {low:.1f}-{high:.1f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "samples": [
                        {"row": row, "server": server, "transport": transport, "values": values}
                        for (row, server, transport), values in samples.items()
                    ],
                    "load_average": loads,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
