"""
The data tier on etcd against a ZooKeeper ensemble, in one run.

  - zkreg: a three-member etcd (loopback, its own data directories, fsync as etcd
    always does), two data servers on it (C{--role data --etcd}: one active, one
    standby), one session server following the active one; clients talk to the
    session server;
  - ZooKeeper 3.8: a three-server ensemble (QuorumPeerMain) on loopback, forceSync
    on; clients talk to one follower-or-leader member.

The same workloads as L{bench.run} (sequential getData/setData latency, pipelined
setData and create) are driven by L{bench.loadclient}.  Everything shares this one
machine, so absolute figures mean little; the ratios are the result.

C{--million}: instead, write 1,000,000 setData through the etcd tier (pipelined) and
report etcd's db size (in use and on disk) and key count: snapshots delete the log
they cover and compact, so the size must stay far below etcd's 2 GiB quota.

Usage::

    python -m bench.etcd_tier [--quick] [--json FILE]
    python -m bench.etcd_tier --million [--writes N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.harness import log
from bench.table import Row, render
from bench.workloads import QUICK, Params, run_loadclient, run_workloads
from tests.support.etcd_tier import EtcdTier
from tests.support.ports import free_port
from tests.support.servers import ServerProcess, ZooKeeperOracle
from tests.support.waiting import wait_until

PREFIX = "/zkreg-bench"


class EnsembleMember(ZooKeeperOracle):
    """One server of a ZooKeeper ensemble (QuorumPeerMain with a myid)."""

    def __init__(self, myid: int, servers: dict[str, str]) -> None:
        super().__init__(
            extra_config={"initLimit": "10", "syncLimit": "5", **servers},
            extra_jvm_args=(
                "-XX:TieredStopAtLevel=4",
                "-XX:-UseSerialGC",
                "-XX:+UseG1GC",
                "-Xmx1g",
            ),
        )
        self.myid = myid

    def _answers_ruok(self) -> bool:
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"ZooKeeper {self.myid} exited")
        try:
            return self.four_letter("ruok", timeout=1.0) == "imok"
        except OSError:
            return False

    def command(self) -> list[str]:
        (self.data_dir / "myid").write_text(f"{self.myid}\n")
        argv = super().command()
        return [
            "org.apache.zookeeper.server.quorum.QuorumPeerMain"
            if part.endswith("ZooKeeperServerMain")
            else part
            for part in argv
        ]


def start_ensemble() -> list[EnsembleMember]:
    """
    Three ZooKeeper servers.  Each is started in turn and taken as up once it answers
    ruok (none serves before a quorum); then all three must serve.  (Not from
    threads: the test launcher's children die with the thread that started them.)
    """
    servers = {f"server.{myid}": f"127.0.0.1:{free_port()}:{free_port()}" for myid in (1, 2, 3)}
    members = [EnsembleMember(myid, servers) for myid in (1, 2, 3)]
    try:
        for member in members:
            member.start(deadline_s=120)
        for member in members:
            wait_until(
                lambda member=member: "not currently serving" not in member.four_letter("srvr"),
                timeout=120,
                message=f"ensemble member {member.myid} serving",
            )
    except BaseException:
        for member in members:
            member.cleanup()
        raise
    return members


def start_tier() -> EtcdTier:
    """
    Three etcd members, two data servers, one session server (without its connection
    rate limit: the workloads open many sessions at once).
    """
    return EtcdTier(
        3,
        PREFIX,
        data_args=["--snap-count", "100000"],
        session_args=["--connection-rate-per-ip", "0"],
        data_tier_timeout_ms=40000,
    ).start()


def etcd_status(tier: EtcdTier) -> list[dict[str, Any]]:
    """@return: each etcd member's C{/v3/maintenance/status}."""
    statuses = []
    for url in tier.etcd.endpoints:
        request = urllib.request.Request(f"{url}/v3/maintenance/status", data=b"{}")
        with urllib.request.urlopen(request, timeout=5) as answer:
            statuses.append(json.loads(answer.read()))
    return statuses


def compare(params: Params, only: set[str]) -> tuple[dict[str, Row], dict[str, Any]]:
    """Run the workloads on the ZooKeeper ensemble, then on the etcd tier."""
    rows: dict[str, Row] = {}
    raw: dict[str, Any] = {}
    log("starting a three-server ZooKeeper 3.8 ensemble")
    ensemble = start_ensemble()
    try:
        target: ServerProcess = ensemble[0]
        target.name = "zookeeper"
        raw["zookeeper"] = run_workloads(target, params, only, rows)
    finally:
        for member in ensemble:
            member.cleanup()
    log("starting zkreg on a three-member etcd (two data servers, one session server)")
    tier = start_tier()
    try:
        assert tier.session is not None
        raw["zkreg"] = run_workloads(tier.session, params, only, rows)
    finally:
        tier.stop()
    return rows, raw


def million(writes: int, window: int) -> dict[str, Any]:
    """Write C{writes} setData through the etcd tier; report etcd's size."""
    tier = start_tier()
    try:
        session = tier.session
        assert session is not None
        spec = {
            "host": "127.0.0.1",
            "port": session.port,
            "server_pid": session.pid,
            "workload": "pipelined",
            "op": "set",
            "connections": 4,
            "window": window,
            "seconds": 10.0,
            "warmup": 0.5,
        }
        written = 0
        started = time.monotonic()
        while written < writes:
            result = run_loadclient(spec, timeout=300)
            written += int(result["ops_per_s"] * spec["seconds"])
            log(f"{written:,} writes, {written / (time.monotonic() - started):,.0f}/s so far")
        elapsed = time.monotonic() - started
        # Let the last snapshot (checked every second) delete the log and compact.
        time.sleep(3)
        statuses = etcd_status(tier)
        return {
            "writes": written,
            "seconds": round(elapsed, 1),
            "writes_per_s": round(written / elapsed),
            "etcd": [
                {
                    "db_size": int(status.get("dbSize", 0)),
                    "db_size_in_use": int(status.get("dbSizeInUse", 0)),
                    "revision": int(status["header"]["revision"]),
                }
                for status in statuses
            ],
        }
    finally:
        tier.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.etcd_tier", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", default="sequential,pipelined-write", help="workloads")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--million", action="store_true", help="the etcd size after N writes")
    parser.add_argument("--writes", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=64)
    args = parser.parse_args(argv)
    if args.million:
        result = million(args.writes, args.window)
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return 0
    params = QUICK if args.quick else Params()
    rows, raw = compare(params, set(args.only.split(",")))
    print(render(rows, ["zookeeper", "zkreg"]))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
