"""
What every benchmark command shares: the servers' benchmark configuration, measuring
each server alone in turn, progress lines and the exit status.

C{python -m bench} (L{bench.run}) and the other commands (L{bench.client},
L{bench.liveness}, L{bench.tls}, L{bench.discovery}, ...) start ZooKeeper and zkreg
the same way and report failures the same way; this module holds that, apart from any
one command's workloads and options.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

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


def log(message: str) -> None:
    """Print a progress line on stderr (the results go to stdout)."""
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
            log(f"skipping {name}: {reason}")
            continue
        server = make(name)
        try:
            log(f"starting {name} on port {server.port}{note}")
            server.start()
            measure(name, server)
        except MEASUREMENT_FAILURES as failure:
            # One server failing (or a workload on it) still leaves a table of the
            # rest; the failure is reported and the exit status says so.
            log(f"[{name}] FAILED: {failure}\n{server.log_tail(2000)}")
            failures.append(f"{name}: {failure}")
        finally:
            server.cleanup()


def exit_status(failures: list[str]) -> int:
    """@return: 0, or 1 after printing the failures."""
    if failures:
        print("\nFAILED: " + "; ".join(failures))
        return 1
    return 0
