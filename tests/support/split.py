"""
The split layout with real processes, as the fault tests and benches build it: a data
server (a standalone zkreg with C{--data-link-listen}, optionally with the test hook
that kills it between a commit and its reply) and session servers linked to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

from tests.support.ports import free_port
from tests.support.servers import ZkregServer


def link_listen(link_port: int) -> list[str]:
    """@return: the options making a zkreg serve session servers on C{link_port}."""
    return ["--data-link-listen", f"tcp:{link_port}:interface=127.0.0.1"]


def session_server(link_port: int, *options: str) -> ZkregServer:
    """
    @return: a session server (C{--role session}, not started) linked to the data
        server of C{link_port} on loopback, with further C{options} (data-link TLS, a
        data-tier timeout).
    """
    return ZkregServer(
        extra_args=["--role", "session", "--data-server", f"tcp:127.0.0.1:{link_port}", *options]
    )


class FaultyDataServer(ZkregServer):
    """
    A data server started with the C{ZKREG_TEST_EXIT_BEFORE_REPLY} test hook: with
    C{fault} set to C{"N"}, it exits after committing the Nth stamped write, before
    replying; with C{fault} None (set it between starts), without the hook.
    """

    fault: str | None = None

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.pop("ZKREG_TEST_EXIT_BEFORE_REPLY", None)
        if self.fault is not None:
            env["ZKREG_TEST_EXIT_BEFORE_REPLY"] = self.fault
        return env


class Split(NamedTuple):
    """A running split: the data server, its session servers, its data-link port."""

    data: ZkregServer
    sessions: list[ZkregServer]
    link_port: int


@contextmanager
def running_split(
    sessions: int = 1, data_options: Sequence[str] = (), session_options: Sequence[str] = ()
) -> Iterator[Split]:
    """
    Start a data server on a free data-link port, then C{sessions} session servers
    linked to it (each with C{session_options}); every one is cleaned up on the way
    out, the session servers first.
    """
    link_port = free_port()
    data = ZkregServer(extra_args=[*link_listen(link_port), *data_options])
    started = [data]
    try:
        data.start()
        for _ in range(sessions):
            session = session_server(link_port, *session_options)
            started.append(session)
            session.start()
        yield Split(data, started[1:], link_port)
    finally:
        for server in reversed(started):
            server.cleanup()
