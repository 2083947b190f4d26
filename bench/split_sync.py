"""
Streamed sync of a joining session server: how long a session server takes to join
a data server holding N znodes, and the worst latency of the writes the data server
answers meanwhile (they must not stall while the snapshot streams: a forked child
writes it, see L{zkreg.link.snapshot_transfer}).

For each N (default 100,000 and 1,000,000):
  1. a data directory with one snapshot of N znodes (100-byte values, 1,000 per
     parent) is written directly (no client needed);
  2. a zkreg data server (standalone, with --data-link-listen) starts from it;
  3. a kazoo client sets one node in a loop, one write at a time, timing each;
  4. a session server (--role session) is started; join time is from its spawn until
     it answers ruok (it listens once its replica is loaded), which includes its
     Python start-up (measured alone, without a tree, as the baseline);
  5. the worst and p99 write latency while the session server was joining, and
     before it (the baseline on the same machine), are reported.

With C{--tls} the data link runs over mutual TLS (C{--data-link-ssl-keystore},
C{--data-link-ssl-truststore}, certificates made by L{tests.support.certs}).

Run: C{python -m bench.split_sync [--nodes 100000,1000000] [--tls] [--json PATH]}.
This is a benchmark, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.ports import free_port  # noqa: E402
from tests.support.servers import ZkregServer  # noqa: E402
from tests.support.split import link_listen, session_server  # noqa: E402
from zkreg.data.node import Node  # noqa: E402
from zkreg.data.tree import DataTree  # noqa: E402
from zkreg.persistence.recovery import write_tree_snapshot  # noqa: E402


def build_tree(count: int) -> DataTree:
    """A tree of C{count} znodes under /bench/pNNNN, straight into the dicts."""
    tree = DataTree()
    acl = tree.intern_acl([])
    nodes = tree.nodes
    value = b"v" * 100
    zxid = 1

    def add(path: str, parent: str) -> None:
        nonlocal zxid
        node = Node(path, value, acl, zxid, 1_700_000_000_000, 0)
        node.pzxid = zxid
        nodes[path] = node
        parent_node = nodes[parent]
        # Children are keyed by their full path (the same string as the index).
        parent_node.add_child(path)
        parent_node.cversion += 1
        zxid += 1

    add("/bench", "/")
    made = 1
    parent = None
    while made < count:
        if parent is None or made % 1000 == 1:
            parent = f"/bench/p{made // 1000:05d}"
            add(parent, "/bench")
            made += 1
            continue
        add(f"{parent}/n{made:08d}", parent)
        made += 1
    tree.last_zxid = zxid - 1
    return tree


class Writer(threading.Thread):
    """Sets one node in a loop, one write at a time, recording (start time, latency)."""

    def __init__(self, client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.samples: list[tuple[float, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            self.client.set("/bench", b"x")
            self.samples.append((started, time.monotonic() - started))


def latencies(samples: list[tuple[float, float]], start: float, end: float) -> dict:
    window = sorted(latency for at, latency in samples if start <= at <= end)
    if not window:
        return {"writes": 0}
    return {
        "writes": len(window),
        "p99_ms": round(window[int(0.99 * (len(window) - 1))] * 1000, 2),
        "worst_ms": round(window[-1] * 1000, 2),
    }


#: C{--data-link-ssl-*} options of the data server and of the session server, or
#: empty lists for a plain link (set by C{--tls}).
LINK_TLS: dict[str, list[str]] = {"data": [], "session": []}


def use_tls_link() -> None:
    """Make the link mutual TLS, with a CA and certificates in a temporary directory."""
    import tempfile

    from tests.support.certs import make_stores

    stores = make_stores(Path(tempfile.mkdtemp(prefix="zkreg-bench-link-")))
    for side, keystore in (("data", stores.server), ("session", stores.clients["alice"])):
        LINK_TLS[side] = stores.data_link(keystore)


def data_server(link_port: int, *extra: str) -> ZkregServer:
    return ZkregServer(extra_args=[*link_listen(link_port), *LINK_TLS["data"], *extra])


def measure(count: int) -> dict:
    from kazoo.client import KazooClient

    link_port = free_port()
    data = data_server(link_port, "--no-fsync")
    servers = [data]
    try:
        started = time.monotonic()
        write_tree_snapshot(str(data.data_dir), build_tree(count), sync=False)
        prepared = time.monotonic() - started
        started = time.monotonic()
        data.start(deadline_s=600)
        recovered = time.monotonic() - started
        client = KazooClient(hosts=data.hosts, timeout=30)
        client.start(timeout=30)
        writer = Writer(client)
        writer.start()
        time.sleep(3)
        baseline_end = time.monotonic()
        joiner = session_server(link_port, *LINK_TLS["session"])
        servers.append(joiner)
        join_start = time.monotonic()
        joiner.start(deadline_s=600)
        join_end = time.monotonic()
        time.sleep(0.5)
        log = data.log_tail(200_000).splitlines()
        fork_lines = [line for line in log if "fork paused" in line]
        writer.stopping.set()
        writer.join(timeout=30)
        client.stop()
        client.close()
        return {
            "znodes": count,
            "link": "tls" if LINK_TLS["data"] else "tcp",
            "snapshot_written_s": round(prepared, 1),
            "data_server_start_s": round(recovered, 1),
            "join_s": round(join_end - join_start, 2),
            "writes_before_join": latencies(writer.samples, baseline_end - 3, baseline_end),
            "writes_during_join": latencies(writer.samples, join_start, join_end),
            "fork_pause": fork_lines[-1].rsplit("(", 1)[-1].rstrip(")") if fork_lines else None,
        }
    finally:
        for server in reversed(servers):
            server.cleanup()


def baseline_join() -> float:
    """Join time of a session server to an empty data server (its start-up cost)."""
    link_port = free_port()
    data = data_server(link_port)
    joiner = session_server(link_port, *LINK_TLS["session"])
    try:
        data.start()
        started = time.monotonic()
        joiner.start()
        return round(time.monotonic() - started, 2)
    finally:
        joiner.cleanup()
        data.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="100000,1000000")
    parser.add_argument("--tls", action="store_true", help="the data link over mutual TLS")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.tls:
        use_tls_link()
    results = {"empty_join_s": baseline_join(), "runs": []}
    print(f"join of an empty tree (process start-up): {results['empty_join_s']} s", flush=True)
    for count in [int(n) for n in args.nodes.split(",")]:
        result = measure(count)
        results["runs"].append(result)
        print(json.dumps(result), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
