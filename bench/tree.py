"""
The big-tree workload: memory per znode and per watch with 1,000,000 znodes, and the
time a server takes to restart with that tree.

Memory is read two ways, because the two runtimes hold memory differently:

- RSS (VmRSS of the server's pid), what the operating system charges: the figure an
  operator pays.  A JVM's RSS counts heap the collector has committed whether or not
  it is live: after a million creates ZooKeeper's heap is committed far past its live
  data (garbage from the requests), so the watches that follow fit into heap already
  committed and its RSS per watch undercounts what the watches hold.
- for ZooKeeper also its live heap: C{jcmd <pid> GC.run} (a full collection) then
  C{GC.heap_info}'s C{used}, read after the RSS.  This is what its data structures
  hold.  zkreg has no such hook and needs none: CPython frees an object when its last
  reference goes (the collector only finds reference cycles, and the tree and the watch
  tables make none), so its RSS growth is its live data plus allocator slack.

Both servers also report their own watch count (C{wchs}), so a table row is only
compared when both hold the same number of watches.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from typing import Any

from bench import wire
from bench.loadprocess import LoadProcess
from bench.rss import settled_rss_kib
from tests.support.servers import ServerProcess, four_letter

#: The node whose getData the restart measurement waits for (created by the tree load).
PROBE_PATH = "/bench/m/0/0"

_HEAP_USED = re.compile(r"used (\d+)K")
_TOTAL_WATCHES = re.compile(r"Total watches:\s*(\d+)")


def jvm_heap_used_kib(pid: int) -> int | None:
    """
    @return: the JVM's heap in use right after a full collection (C{jcmd GC.run},
        then C{GC.heap_info}), in KiB, or L{None} when jcmd cannot tell.
    """
    try:
        subprocess.run(["jcmd", str(pid), "GC.run"], capture_output=True, timeout=120, check=True)
        info = subprocess.run(
            ["jcmd", str(pid), "GC.heap_info"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = _HEAP_USED.search(info)
    return int(found.group(1)) if found else None


def total_watches(port: int) -> int | None:
    """@return: the server's own count of watches (the C{wchs} four-letter word)."""
    try:
        answer = four_letter(port, "wchs", timeout=30.0)
    except OSError:
        return None
    found = _TOTAL_WATCHES.search(answer)
    return int(found.group(1)) if found else None


def measure_tree(server: ServerProcess, znodes: int) -> dict[str, Any]:
    """
    RSS of the server before and after C{znodes} znodes of 100 bytes are created, and
    after one data watch is set on each (by 8 sessions that stay open meanwhile); for
    ZooKeeper also its live heap after a full collection before the creates, with the
    watches, and once the watching sessions closed.

    @return: C{per_znode_b} and C{per_watch_b} (RSS), C{per_znode_heap_b} and
        C{per_watch_heap_b} (ZooKeeper only, else L{None}), the readings in KiB, the
        server's watch count and the time the creates took.
    """
    pid = server.pid
    assert pid is not None
    jvm = server.name == "zookeeper"

    def heap() -> int | None:
        return jvm_heap_used_kib(pid) if jvm else None

    before = settled_rss_kib(pid)
    heap_before = heap()
    spec = {"workload": "tree", "host": "127.0.0.1", "port": server.port, "znodes": znodes}
    driver = LoadProcess(spec)
    # The RSS readings come first, with no forced collection between them (a full GC
    # would let G1 shrink its heap and turn the next RSS difference into noise); the
    # live heap with the watches is read at the end, then again once the sessions,
    # and so their watches, are gone.
    try:
        created = driver.phase(1800.0, "the tree load client")
        with_nodes = settled_rss_kib(pid)
        driver.send("watch")
        driver.phase(1800.0, "the tree load client")
        with_watches = settled_rss_kib(pid)
        watches = total_watches(server.port)
        heap_watches = heap()
    finally:
        driver.close(60)
    deadline = time.monotonic() + 60
    while total_watches(server.port) and time.monotonic() < deadline:
        time.sleep(0.2)
    heap_nodes = heap()
    after_close = settled_rss_kib(pid)

    def per(later: int | None, earlier: int | None) -> float | None:
        if later is None or earlier is None:
            return None
        return (later - earlier) * 1024 / znodes

    return {
        "before_kib": before,
        "with_znodes_kib": with_nodes,
        "with_watches_kib": with_watches,
        "sessions_closed_kib": after_close,
        "heap_kib": {"before": heap_before, "znodes": heap_nodes, "watches": heap_watches},
        "watches": watches,
        "create_seconds": created["seconds"],
        "per_znode_b": per(with_nodes, before),
        "per_watch_b": per(with_watches, with_nodes),
        "per_znode_heap_b": per(heap_nodes, heap_before),
        "per_watch_heap_b": per(heap_watches, heap_nodes),
    }


def get_data_answers(port: int, path: str, timeout: float = 5.0) -> str | None:
    """
    Open a session, send one getData of C{path}: did it answer with its data?

    A plain blocking socket, so nothing but the server's own start-up is timed.

    @return: L{None} when it answered without error, else what happened instead.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(wire.connect_frame(10000) + wire.get_data_frame(path))
            replies = 0
            buffer = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return f"closed after {replies} replies"
                buffer += chunk
                while len(buffer) >= 4:
                    size = int.from_bytes(buffer[:4], "big")
                    if len(buffer) < 4 + size:
                        break
                    frame, buffer = buffer[: 4 + size], buffer[4 + size :]
                    replies += 1
                    if replies == 2:
                        _, _, err = wire.REPLY_HEADER.unpack_from(frame, 4)
                        return None if err == 0 else f"getData answered error {err}"
    except OSError as error:
        return repr(error)


def measure_restart(server: ServerProcess, deadline: float = 300.0) -> float:
    """
    Stop the server (SIGTERM, as an operator would), start it again on the same data,
    and time from the start until a new session's getData of L{PROBE_PATH} answers.

    The server is started from this (the main) thread and the getData attempts run
    in another: the launcher ties the server's life to the thread that spawned it
    (C{PR_SET_PDEATHSIG}), so a server spawned from a short-lived thread would be
    killed as that thread ends.

    @return: seconds from spawning the process to the first answered getData.
    @raise RuntimeError: when it does not answer within C{deadline} seconds.
    """
    server.stop(timeout=120.0)
    answered: list[float] = []
    last = ["no attempt"]
    began = time.monotonic()

    def probe() -> None:
        while time.monotonic() - began < deadline:
            outcome = get_data_answers(server.port, PROBE_PATH)
            if outcome is None:
                answered.append(time.monotonic() - began)
                return
            last[0] = outcome
            time.sleep(0.02)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        server.start(deadline_s=deadline)
    except Exception as failure:
        raise RuntimeError(f"restart failed: {failure}") from None
    finally:
        prober.join(deadline)
    if not answered:
        raise RuntimeError(f"no getData answer {deadline:.0f} s after the restart: {last[0]}")
    return answered[0]
