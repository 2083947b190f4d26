"""
How long the active data server on etcd stalls while it snapshots a big tree.

One etcd member, one data server (C{--role data --etcd}, C{--snap-count} just above
the tree), one session server following it.  The tree is built with pipelined
creates (C{--znodes}, 200,000 by default, 100 bytes each); then one session writes
sequential setData (each round trip crosses the data server's reactor) until etcd
holds the snapshot's manifest, and a little longer.  The snapshot starts during
that probe; the longest probe round trip is the longest stall the snapshot caused
(a request that waits on the reactor waits for all of it), next to the longest
before the snapshot started.  Meanwhile a thread asks the data server's admin HTTP
server (C{/commands/leader}, answered on the same reactor, without etcd) every few
ms: its longest answer bounds the reactor's own longest pause, apart from the time
the writes wait in etcd.

C{--baseline}: the same probes for 10 s with no snapshot due (C{--snap-count} far
above the tree), to compare with.

Usage::

    python -m bench.etcd_snapshot [--znodes N] [--baseline] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from bench import wire
from bench.rawclient import Feed, Pinger, connect, connect_many, ensure_node
from tests.support.etcd import EtcdCluster
from tests.support.etcd_tier import EtcdDataServer
from tests.support.servers import ZkregServer
from tests.support.waiting import wait_until

PREFIX = "/zkreg-snapbench"
CONNECTIONS = 8
WINDOW = 100
#: probe round trips kept going after the manifest appeared
AFTER_S = 3.0
#: give up the probe after this long
PROBE_LIMIT_S = 300.0


def manifest_exists(etcd_url: str) -> bool:
    """@return: whether etcd holds the data tier's snapshot manifest."""
    key = base64.b64encode(f"{PREFIX}/snapshot".encode()).decode()
    request = urllib.request.Request(
        etcd_url + "/v3/kv/range", data=json.dumps({"key": key}).encode()
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return bool(json.loads(answer.read()).get("kvs"))


async def build_tree(port: int, znodes: int) -> float:
    """Create C{znodes} znodes pipelined; @return: seconds taken."""
    sessions = await connect_many("127.0.0.1", port, CONNECTIONS)
    pinger = Pinger(sessions)
    setup = sessions[0]
    await ensure_node(setup, "/bench")
    await ensure_node(setup, "/bench/s")
    for index in range(CONNECTIONS):
        await ensure_node(setup, f"/bench/s/{index}")
    per = [znodes // CONNECTIONS + (index < znodes % CONNECTIONS) for index in range(CONNECTIONS)]
    data = b"s" * 100

    def creates(index: int) -> Iterator[bytes]:
        for n in range(per[index]):
            yield wire.create_frame(f"/bench/s/{index}/{n}", data)

    started = time.perf_counter()
    feeds = [Feed(creates(index), WINDOW) for index in range(CONNECTIONS)]
    for feed, session in zip(feeds, sessions, strict=True):
        feed.start(session)
    await asyncio.gather(*(feed.finished for feed in feeds))
    pinger.stop()
    for session in sessions:
        session.close()
    return time.perf_counter() - started


#: how long the baseline probes run
BASELINE_S = 10.0


async def probe(port: int, etcd_url: str, baseline: bool = False) -> dict[str, Any]:
    """
    Sequential setData until the snapshot is in etcd, and L{AFTER_S} more (with
    C{baseline}, for L{BASELINE_S}).
    """
    session = await connect("127.0.0.1", port)
    await ensure_node(session, "/bench/probe")
    template = wire.set_data_frame("/bench/probe", b"p" * 100)
    loop = asyncio.get_running_loop()
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()
    seen_at: float | None = None
    checking: asyncio.Future | None = None
    while True:
        sent = time.perf_counter()
        zxid, err, _ = await session.call(template)
        done = time.perf_counter()
        if err:
            raise RuntimeError(f"setData failed: {err}")
        samples.append((sent - started, (done - sent) * 1000))
        if baseline:
            if done - started > BASELINE_S:
                break
            continue
        if seen_at is None:
            if checking is None:
                checking = loop.run_in_executor(None, manifest_exists, etcd_url)
            elif checking.done():
                if checking.result():
                    seen_at = done
                checking = None
        elif done - seen_at > AFTER_S:
            break
        if done - started > PROBE_LIMIT_S:
            raise RuntimeError("no snapshot in etcd within the probe's limit")
    session.close()
    latencies = sorted(latency for _, latency in samples)
    worst = max(samples, key=lambda sample: sample[1])
    return {
        "probes": len(samples),
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "max_ms": worst[1],
        "max_at_s": worst[0],
        "manifest_seen_at_s": (seen_at or 0) - started,
    }


class AdminProbe(threading.Thread):
    """Asks the data server's admin C{leader} command in a loop; keeps the longest wait."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/commands/leader"
        self.longest_ms = 0.0
        self.count = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.005):
            started = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=30) as answer:
                answer.read()
            self.longest_ms = max(self.longest_ms, (time.perf_counter() - started) * 1000)
            self.count += 1


def run(znodes: int, baseline: bool = False) -> dict[str, Any]:
    etcd = EtcdCluster(1)
    started: list[ZkregServer] = []
    try:
        etcd.start()
        data = EtcdDataServer(
            etcd.endpoints_option,
            PREFIX,
            extra_args=["--snap-count", str(10 * znodes if baseline else znodes + 200)],
        )
        started.append(data)
        data.start()
        wait_until(data.is_active, timeout=60, message="the data server active")
        session = ZkregServer(
            extra_args=["--role", "session", "--etcd", etcd.endpoints_option]
            + ["--etcd-prefix", PREFIX]
        )
        started.append(session)
        session.start()
        built = asyncio.run(build_tree(session.port, znodes))
        print(f"{znodes} znodes created in {built:.1f} s", file=sys.stderr)
        admin = AdminProbe(data.port)
        admin.start()
        result = asyncio.run(probe(session.port, etcd.members[0].url, baseline))
        admin.stopping.set()
        admin.join()
        result["admin_max_ms"] = admin.longest_ms
        result["admin_probes"] = admin.count
        state = data.state() or {}
        result["znodes"] = znodes
        result["fork_pause_ms"] = state.get("longest_snapshot_pause_ms")
        snapshot_lines = [
            line for line in data.log_tail(200_000).splitlines() if "in etcd (" in line
        ]
        result["snapshot_log"] = snapshot_lines[-1:] if snapshot_lines else []
        return result
    finally:
        for server in reversed(started):
            server.cleanup()
        etcd.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--znodes", type=int, default=200_000)
    parser.add_argument("--baseline", action="store_true", help="probe with no snapshot")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    result = run(args.znodes, args.baseline)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
