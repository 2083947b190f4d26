"""
One session process of a zkreg started with C{--session-processes N}:
C{python -m zkreg.processes.child CONFIG PARENT_PID}, spawned and supervised by
L{zkreg.processes.supervisor.SessionProcesses} in the parent.

It is a session server (L{zkreg.roles.SessionRoleService}) of the parent's data
server, linked over the parent's Unix socket, listening on the shared client ports
with C{SO_REUSEPORT} (L{zkreg.processes.listeners}).  Its log lines go to stdout,
which the parent's process monitor writes into the parent's log.

It never outlives the parent: the kernel sends it SIGTERM when the parent dies
(Linux C{PR_SET_PDEATHSIG}), and it stops when its stdin, a pipe from the parent,
reaches end of file (the parent is gone however it ended, on any system).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from twisted.application import service
from twisted.internet.protocol import Protocol
from twisted.logger import FileLogObserver, Logger, formatEvent, globalLogBeginner

from zkreg.config import ServerConfig

_log = Logger(namespace="zkreg.processes.child")


def encode_config(config: ServerConfig) -> str:
    """@return: C{config} as the JSON text a child reads with L{decode_config}."""
    from dataclasses import asdict

    fields = asdict(config)
    fields["four_letter_words"] = sorted(config.four_letter_words)
    return json.dumps(fields)


def decode_config(text: str) -> ServerConfig:
    """@return: the L{ServerConfig} encoded by L{encode_config}."""
    fields = json.loads(text)
    fields["four_letter_words"] = frozenset(fields["four_letter_words"])
    return ServerConfig(**fields)


def die_with_parent(parent_pid: int) -> None:
    """
    Have the kernel send SIGTERM to this process when its parent dies (Linux), and
    exit now if the parent is already gone (it may have died before the request).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the stdin pipe still tells
    if os.getppid() != parent_pid:
        os._exit(0)


class _ParentPipe(Protocol):
    """The child's stdin: its end of file means the parent is gone."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def connectionLost(self, reason: Any = None) -> None:
        _log.info("the parent process is gone: stopping")
        if self.reactor.running:
            self.reactor.stop()


def listen_shared(config: ServerConfig, factory: Any, parent: service.MultiService) -> None:
    """
    Add the client listeners, sharing the ports with the sibling processes: the
    plain one, and with C{--secure-listen} the TLS one (same TLS settings as a
    standalone server's).
    """
    from twisted.internet import reactor

    from zkreg.processes.listeners import ReusePortListener, parse_stream_endpoint
    from zkreg.roles import client_tls_factory

    ReusePortListener(reactor, parse_stream_endpoint(config.listen), factory).setServiceParent(
        parent
    )
    if config.secure_listen is not None:
        ReusePortListener(
            reactor,
            parse_stream_endpoint(config.secure_listen),
            client_tls_factory(config, factory),
        ).setServiceParent(parent)


def _log_line(event: dict[str, Any]) -> str:
    """
    One log line without a time: the parent's log, where the process monitor writes
    it, stamps it (with the child's name).
    """
    text = formatEvent(event)
    if "log_failure" in event:
        text += "\n" + event["log_failure"].getTraceback()
    level = event.get("log_level")
    return f"[{event.get('log_namespace', '-')}#{level.name if level else '-'}] {text}\n"


def main(argv: list[str]) -> None:
    """Run one session process until it is stopped or its parent is gone."""
    config_text, parent_pid = argv[1], int(argv[2])
    die_with_parent(parent_pid)
    globalLogBeginner.beginLoggingTo(
        [FileLogObserver(sys.stdout, _log_line)], redirectStandardIO=False
    )
    from twisted.internet import reactor, stdio

    from zkreg.allocator import tune_allocator
    from zkreg.roles import SessionRoleService

    tune_allocator()

    config = decode_config(config_text)
    top = service.MultiService()
    SessionRoleService(
        config, reactor, None, listen=listen_shared, acknowledge_applied=True
    ).setServiceParent(top)
    # stdout stays the log's: the pipe's protocol writes nothing, to /dev/null.
    # (mypy reads StandardIO's Windows signature, which has no stdout.)
    stdio.StandardIO(  # type: ignore[call-arg]
        _ParentPipe(reactor), stdout=os.open(os.devnull, os.O_WRONLY)
    )
    reactor.callWhenRunning(top.startService)
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.run()
    if os.getppid() != parent_pid:
        _remove_link_directory(config)


def _remove_link_directory(config: ServerConfig) -> None:
    """
    The parent died without its cleanup (kill -9): remove the private directory of
    its data-link socket, which it would have removed when stopping.
    """
    import shutil

    path = (config.data_server or "").removeprefix("unix:")
    directory = os.path.dirname(path)
    if os.path.basename(path) == "link.sock" and os.path.basename(directory).startswith("zkreg-"):
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
