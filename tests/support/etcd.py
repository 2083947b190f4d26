"""
A real etcd (Debian's C{etcd-server}, 3.4) for tests: one member or a cluster of
three, on free loopback ports, each with its own temporary data directory.

Members die with the test process (PR_SET_PDEATHSIG); readiness is C{/health}
answering C{{"health":"true"}}, polled against a deadline.  A member can be killed
(SIGKILL), paused and restarted on the same ports and data, for the fault tests.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from tests.support.ports import free_port
from tests.support.servers import _DIE_WITH_PARENT
from tests.support.waiting import wait_until

ETCD_BINARY = shutil.which("etcd") or "/usr/bin/etcd"

#: How long a member (or a cluster) may take to report itself healthy.
START_DEADLINE_S = 60.0


def etcd_unavailable_reason() -> str | None:
    """@return: why etcd cannot run here, or L{None} when it can."""
    if not os.access(ETCD_BINARY, os.X_OK):
        return f"{ETCD_BINARY} is absent (Debian package etcd-server not installed)"
    return None


class EtcdMember:
    """
    One etcd member process.

    @ivar name: the member name in the cluster.
    @ivar client_port: where clients (and the v3 JSON gateway) listen.
    @ivar peer_port: where the other members connect.
    """

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = workdir / name
        self.log_path = workdir / f"{name}.log"
        self.initial_cluster = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._started_once = False

    @property
    def url(self) -> str:
        """The client URL, C{http://127.0.0.1:<port>}."""
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        """The peer URL."""
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        """The process id while running, else L{None}."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def command(self) -> list[str]:
        """@return: the argv of this member."""
        return [
            ETCD_BINARY,
            "--name",
            self.name,
            "--data-dir",
            str(self.data_dir),
            "--listen-client-urls",
            self.url,
            "--advertise-client-urls",
            self.url,
            "--listen-peer-urls",
            self.peer_url,
            "--initial-advertise-peer-urls",
            self.peer_url,
            "--initial-cluster",
            self.initial_cluster,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            "zkreg-test",
            # Short Raft timers: a lost member is noticed quickly on loopback.
            "--heartbeat-interval",
            "100",
            "--election-timeout",
            "1000",
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
        ]

    def spawn(self) -> None:
        """Start the process (on the same ports and data directory as before)."""
        if self.pid is not None:
            return
        with open(self.log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_DIE_WITH_PARENT,  # type: ignore[arg-type]
            )
        self._started_once = True

    def healthy(self) -> bool:
        """@return: whether C{/health} says so now."""
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as answer:
                return json.loads(answer.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        """SIGKILL the member and reap it."""
        process = self._process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def signal(self, signum: int) -> None:
        """Send C{signum} (SIGSTOP, SIGCONT) to the running member."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signum)

    def status(self) -> dict | None:
        """@return: its C{/v3/maintenance/status} answer, or L{None} if it does not answer."""
        request = urllib.request.Request(self.url + "/v3/maintenance/status", data=b"{}")
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError):
            return None

    def tail(self, lines: int = 30) -> str:
        """@return: the end of this member's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class EtcdCluster:
    """
    One or three etcd members on loopback, started together.

    Use as a context manager, or call L{start} and L{stop}.
    """

    def __init__(self, size: int = 1) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="etcd-test-"))
        self.members = [EtcdMember(f"m{index}", self.workdir) for index in range(size)]
        initial = ",".join(f"{member.name}={member.peer_url}" for member in self.members)
        for member in self.members:
            member.initial_cluster = initial

    @property
    def endpoints(self) -> list[str]:
        """The client URLs of every member."""
        return [member.url for member in self.members]

    @property
    def endpoints_option(self) -> str:
        """The endpoints as C{--etcd} takes them (comma-separated)."""
        return ",".join(self.endpoints)

    def start(self, deadline_s: float = START_DEADLINE_S) -> EtcdCluster:
        """
        Spawn every member and wait until each is healthy.

        @raise pytest.skip.Exception: when etcd is not installed.
        """
        reason = etcd_unavailable_reason()
        if reason is not None:
            import pytest

            pytest.skip(reason)
        for member in self.members:
            member.spawn()
        for member in self.members:
            self.wait_healthy(member, deadline_s)
        return self

    def wait_healthy(self, member: EtcdMember, deadline_s: float = START_DEADLINE_S) -> None:
        """Wait until C{member} answers C{/health}; fail with its log tail if it dies."""

        def ready() -> bool:
            if member.pid is None:
                raise RuntimeError(f"etcd {member.name} exited:\n{member.tail()}")
            return member.healthy()

        wait_until(ready, timeout=deadline_s, interval=0.1, message=f"etcd {member.name} healthy")

    def raft_leader(self) -> EtcdMember | None:
        """@return: the member that says it is the Raft leader now, or L{None}."""
        for member in self.members:
            status = member.status()
            if status is not None and status.get("leader") == status["header"]["member_id"]:
                return member
        return None

    def restart(self, member: EtcdMember) -> None:
        """Start a killed member again on its ports and data, and wait until healthy."""
        member.spawn()
        self.wait_healthy(member)

    def delete_prefix(self, prefix: str) -> int:
        """
        Delete every key under C{prefix} (through the first member's v3 JSON gateway).

        @return: how many keys went.
        """
        key = prefix.encode("utf-8")
        end = key[:-1] + bytes([key[-1] + 1])
        body = json.dumps(
            {
                "key": base64.b64encode(key).decode("ascii"),
                "range_end": base64.b64encode(end).decode("ascii"),
            }
        ).encode("ascii")
        request = urllib.request.Request(self.members[0].url + "/v3/kv/deleterange", data=body)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(json.loads(answer.read()).get("deleted", 0))

    def stop(self) -> None:
        """Kill every member and remove the data."""
        for member in self.members:
            member.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ModuleEtcd:
    """
    One single-member etcd for the tests of one module (each test keeps to keys of
    its own): C{setUpModule = ETCD.start}, C{tearDownModule = ETCD.stop}.
    """

    def __init__(self) -> None:
        self.cluster: EtcdCluster | None = None

    def start(self) -> None:
        """Start the member (skips the module when etcd is not installed)."""
        self.cluster = EtcdCluster(1).start()

    def stop(self) -> None:
        """Stop the member, if it was started."""
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None

    @property
    def endpoints(self) -> list[str]:
        """The member's client URL, as a list."""
        assert self.cluster is not None, "etcd is not started"
        return self.cluster.endpoints
