"""Free loopback ports for servers started by tests."""

from __future__ import annotations

import socket


def free_port() -> int:
    """
    Find a TCP port free on 127.0.0.1 right now.

    The port is released before returning, so another process could take it; the
    window is short and a server that then fails to bind reports it in its log.

    @return: the port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
