"""
The parent side of C{--session-processes N}: a standalone zkreg spread over the
machine's cores.

The parent runs the data role (tree, sequencer, log, session expiry) and serves the
data link on a Unix socket in a private directory; N session processes
(L{zkreg.processes.child}) link to it and share the client ports.  They are spawned
and supervised by Twisted's L{ProcessMonitor}: a child that dies is started again
(its clients reconnect to its siblings meanwhile, their sessions kept by the data
server), and stopping the parent stops them.

Reads are as on one ZooKeeper server: a write's reply is released only once every
child has applied it (the children acknowledge what they applied), so a read on any
child after a write was acknowledged sees it (docs/processes.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from dataclasses import replace
from typing import Any

from twisted.application import service, strports
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.runner.procmon import ProcessMonitor

import zkreg
from zkreg.config import ServerConfig
from zkreg.processes.child import encode_config
from zkreg.processes.listeners import parse_stream_endpoint, reserve

__all__ = ["SessionProcesses", "default_session_processes", "session_processes_supported"]

_log = Logger(namespace="zkreg.processes")

#: Seconds a child has to stop after SIGTERM before it is killed.
CHILD_STOP_S = 5

#: Longest wait before a child that keeps dying at start is started again.
MAX_RESTART_DELAY_S = 10


def session_processes_supported() -> bool:
    """@return: whether this system shares a port between processes (C{SO_REUSEPORT})."""
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def default_session_processes(cpu_count: int | None = None) -> int:
    """
    The session processes of C{--session-processes auto}: none (one process, as
    before) below 4 cores; one per core beyond the data server's from 4 cores up,
    at most 8.  On 2 cores the data server and one session process compete with the
    clients and the log's fsync for the same cores (docs/processes.md has the
    measurements).

    @param cpu_count: the cores (L{os.cpu_count} by default).
    """
    cores = os.cpu_count() if cpu_count is None else cpu_count
    if not session_processes_supported() or cores is None or cores < 4:
        return 0
    return min(cores - 1, 8)


class SessionProcesses(service.MultiService):
    """
    The Unix-socket data link and the supervised session processes of one parent.

    Made before twistd starts the services: the client ports are reserved here
    (L{zkreg.processes.listeners.reserve}), so a port in use stops the start with
    one line, and the children share the same resolved port even for C{tcp:0}.

    @ivar count: the number of session processes.
    @ivar link_path: the Unix socket of the data link.
    @ivar child_config: the settings each child runs with.
    @ivar monitor: the L{ProcessMonitor} of the children.
    """

    def __init__(
        self, config: ServerConfig, count: int, link_factory: Any, reactor: Any = None
    ) -> None:
        """
        @raise twisted.internet.error.CannotListenError: when a client port is taken.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.count = count
        self._reserved: list[socket.socket] = []
        self._added: set[str] = set()
        listen = self._reserve(config.listen)
        secure_listen = (
            self._reserve(config.secure_listen) if config.secure_listen is not None else None
        )
        # A write's reply waits until every child applied it: a read on any child
        # after the reply sees the write, as on one ZooKeeper server.
        link_factory.replies_wait_for_every_replica = True
        self.directory = tempfile.mkdtemp(prefix="zkreg-")
        self.link_path = os.path.join(self.directory, "link.sock")
        strports.service(f"unix:{self.link_path}:mode=600", link_factory).setServiceParent(self)
        self.child_config = replace(
            config,
            role="session",
            listen=listen,
            secure_listen=secure_listen,
            data_server=f"unix:{self.link_path}",
            data_link_listen=None,
            data_link_ssl_keystore=None,
            data_link_ssl_truststore=None,
            metrics_listen=None,
            admin_listen=None,
            session_processes=0,
        )
        self.monitor = ProcessMonitor(reactor)
        self.monitor.killTime = CHILD_STOP_S
        self.monitor.maxRestartDelay = MAX_RESTART_DELAY_S
        self.monitor.setServiceParent(self)

    def _reserve(self, description: str) -> str:
        sock, address = reserve(parse_stream_endpoint(description))
        self._reserved.append(sock)
        return address.describe()

    def child_names(self) -> list[str]:
        """@return: the names the children are monitored (and logged) under."""
        return [f"session-{index}" for index in range(1, self.count + 1)]

    def startService(self) -> None:
        # The parent's pid after twistd has daemonized, which the children watch.
        arguments = [
            sys.executable,
            "-m",
            "zkreg.processes.child",
            encode_config(self.child_config),
            str(os.getpid()),
        ]
        environment = dict(os.environ)
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(zkreg.__file__)))
        environment["PYTHONPATH"] = os.pathsep.join(
            [package_root, *filter(None, [environment.get("PYTHONPATH")])]
        )
        for name in self.child_names():
            if name not in self._added:
                self.monitor.addProcess(name, arguments, env=environment, cwd=os.getcwd())
                self._added.add(name)
        super().startService()
        _log.info(
            "zkreg: {count} session process(es) on {listen}, data link {link}",
            count=self.count,
            listen=self.child_config.listen,
            link=self.link_path,
        )

    def pids(self) -> dict[str, int]:
        """@return: the pid of each running child by name."""
        return {
            name: protocol.transport.pid
            for name, protocol in self.monitor.protocols.items()
            if protocol.transport is not None and protocol.transport.pid is not None
        }

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        """Stop the children (SIGTERM, then SIGKILL) and wait until they are gone."""
        yield super().stopService()
        waited = 0.0
        while self.monitor.protocols and waited < CHILD_STOP_S + 1.0:
            yield task.deferLater(self.reactor, 0.05, lambda: None)
            waited += 0.05
        for sock in self._reserved:
            sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)
