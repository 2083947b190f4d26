"""
The split layout with real processes, as the fault tests and benches build it: a data
server (a standalone zkreg with C{--data-link-listen}, optionally with the test hook
that kills it between a commit and its reply) and session servers linked to it.
"""

from __future__ import annotations

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
