"""
C{zkreg discovery list} against ZooKeeper 3.8 and zkreg, run as the operator runs it
(a subprocess): the listing, a name filter, C{--watch} following changes live, and a
clear error for an unreachable server.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from curatorish.discovery import ServiceDiscovery, ServiceInstance, UriSpec
from tests.support.ports import free_port
from tests.support.servers import REPO_ROOT

COMMAND = [sys.executable, "-m", "zkreg.cli", "discovery", "list"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )


def test_list_prints_services_and_instances(server: Any, make_client: Any) -> None:
    base = f"/cli-{uuid.uuid4().hex[:8]}"
    discovery = ServiceDiscovery(make_client(server.hosts), base)
    discovery.start()
    discovery.register_service(
        ServiceInstance(
            "web",
            "w1",
            "10.0.0.1",
            8080,
            8443,
            {"zone": "a"},
            # Registered 2 h 5 min 30 s ago: the age shown is 2h05m, give or take 30 s.
            registration_time_utc=int((time.time() - 7530) * 1000),
            uri_spec=UriSpec("{scheme}://{address}"),
        )
    )
    discovery.register_service(ServiceInstance("db", "d1", "10.0.0.2", 5432))
    result = _run("--server", server.hosts, "--base", base)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "db (1 instance)"
    assert lines[1].strip().split("  ")[:2] == ["d1", "10.0.0.2:5432"]
    assert lines[2] == "web (1 instance)"
    assert lines[3].strip().split("  ")[:3] == ["w1", "10.0.0.1:8080", "ssl:8443"]
    assert "  age 2h05m  " in lines[3]
    assert lines[3].endswith('DYNAMIC  https://10.0.0.1  {"zone": "a"}')

    only = _run("--server", server.hosts, "--base", base, "db")
    assert only.stdout.splitlines()[0] == "db (1 instance)" and "web" not in only.stdout
    empty = _run("--server", server.hosts, "--base", base + "-none")
    assert empty.stdout == f"no services under {base}-none\n"
    discovery.close()


def test_watch_follows_changes(server: Any, make_client: Any) -> None:
    base = f"/cli-{uuid.uuid4().hex[:8]}"
    discovery = ServiceDiscovery(make_client(server.hosts), base)
    discovery.start()
    discovery.register_service(ServiceInstance("web", "w1", "h1", 1))
    watcher = subprocess.Popen(
        [*COMMAND, "--server", server.hosts, "--base", base, "--watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line.rstrip("\n")) for line in watcher.stdout],  # type: ignore[union-attr]
        daemon=True,
    ).start()

    def next_line() -> str:
        return lines.get(timeout=30)

    try:
        assert next_line() == "web (1 instance)"
        assert next_line().startswith("  w1  h1:1")
        assert next_line().startswith("-- watching")
        discovery.register_service(ServiceInstance("api", "a1", "h2", 2))
        assert next_line().startswith("+ api a1  h2:2")
        discovery.update_service(ServiceInstance("web", "w1", "h1", 3))
        assert next_line().startswith("~ web w1  h1:3")
        discovery.unregister_service(ServiceInstance("web", "w1"))
        assert next_line() == "- web w1"
    finally:
        watcher.terminate()
        watcher.wait(30)
        discovery.close()


def test_unreachable_server_is_a_clear_error() -> None:
    port = free_port()
    result = subprocess.run(
        [*COMMAND, "--server", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 1
    assert result.stdout == f"zkreg discovery: cannot reach 127.0.0.1:{port}\n"
    assert "Traceback" not in result.stderr
