"""
Data servers on etcd (C{twistd zkreg --role data --etcd ...}) as test subprocesses.

A data server has no client port: readiness and its state (active or standby, the
applied zxid) come from its admin HTTP server's C{leader} command.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from typing import Any

from curatorish.zkreg_launch import zkreg_command
from tests.support.etcd import EtcdCluster
from tests.support.ports import free_port
from tests.support.servers import ServerStartError, ZkregServer
from tests.support.waiting import wait_until


class EtcdDataServer(ZkregServer):
    """
    One data server on an etcd cluster.

    @ivar port: its admin HTTP port (what readiness polls).
    @ivar link_port: where session servers connect while it is active.
    @ivar metrics_port: its Prometheus metrics (C{--metrics-listen}).
    """

    name = "zkreg-data"

    def __init__(self, etcd: str, prefix: str, extra_args: list[str] | None = None) -> None:
        super().__init__(extra_args=extra_args or [])
        self.etcd = etcd
        self.prefix = prefix
        self.link_port = free_port()
        self.metrics_port = free_port()

    @property
    def link(self) -> str:
        """Its data-link client endpoint, as C{--data-server} takes it."""
        return f"tcp:127.0.0.1:{self.link_port}"

    def command(self) -> list[str]:
        return zkreg_command(
            [
                "--role",
                "data",
                "--etcd",
                self.etcd,
                "--etcd-prefix",
                self.prefix,
                "--data-link-listen",
                f"tcp:{self.link_port}:interface=127.0.0.1",
                "--admin-listen",
                f"tcp:{self.port}:interface=127.0.0.1",
                "--metrics-listen",
                f"tcp:{self.metrics_port}:interface=127.0.0.1",
                "--tick-time",
                str(self.tick_time_ms),
                "--extended-types",
                "--container-check-interval",
                "500",
                *self.extra_args,
            ]
        )

    def state(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """@return: what its admin C{leader} command says, or L{None} if it does not answer."""
        url = f"http://127.0.0.1:{self.port}/commands/leader"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def scrape(self) -> str:
        """@return: its C{/metrics} text."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.read().decode("utf-8")

    def _answers_ruok(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            code = None if self._process is None else self._process.returncode
            raise ServerStartError(f"{self.name} exited with status {code}")
        described = self.state(timeout=1.0)
        return described is not None and described.get("state") in ("standby", "active")

    def is_active(self) -> bool:
        """@return: whether it says it is the active data server now."""
        described = self.state()
        return described is not None and described.get("state") == "active"

    def send_signal(self, signum: int) -> None:
        """Send C{signum} (SIGSTOP, SIGCONT) to the process."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signum)

    def pause(self) -> None:
        """SIGSTOP."""
        self.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT."""
        self.send_signal(signal.SIGCONT)


class EtcdTier:
    """
    A data tier on etcd as the fault and TLS tests use it: etcd members, two data
    servers on one prefix, and a session server following the leader through etcd.

    @ivar etcd: the etcd cluster.
    @ivar data: the data servers, in start order.
    @ivar session: the session server, once started.
    """

    def __init__(
        self,
        members: int,
        prefix: str,
        data_args: list[str] | None = None,
        session_args: list[str] | None = None,
        data_tier_timeout_ms: int = 30000,
    ) -> None:
        self.etcd = EtcdCluster(members)
        self.prefix = prefix
        self._data_args = list(data_args or [])
        self._session_args = list(session_args or [])
        self._data_tier_timeout_ms = data_tier_timeout_ms
        self.data: list[EtcdDataServer] = []
        self.session: ZkregServer | None = None

    def start(self) -> EtcdTier:
        """Start etcd, both data servers (one becomes active), then the session server."""
        self.etcd.start()
        for _ in range(2):
            server = EtcdDataServer(self.etcd.endpoints_option, self.prefix, self._data_args)
            server.start()
            self.data.append(server)
        wait_until(self.active, timeout=30, message="an active data server")
        self.session = ZkregServer(
            extra_args=[
                "--role", "session",
                "--etcd", self.etcd.endpoints_option,
                "--etcd-prefix", self.prefix,
                "--data-tier-timeout", str(self._data_tier_timeout_ms),
                *self._session_args,
            ]
        )  # fmt: skip
        self.session.start()
        return self

    def active(self) -> EtcdDataServer | None:
        """@return: the data server that is active now, if any."""
        return next((server for server in self.data if server.is_active()), None)

    def stop(self) -> None:
        """Stop every process of the tier."""
        if self.session is not None:
            self.session.cleanup()
        for server in self.data:
            server.cleanup()
        self.etcd.stop()
