"""
The connect string: several C{host:port} pairs and an optional chroot, and the
shuffled rotation through them.

C{"10.0.0.1:2181,10.0.0.2:2181,zk3/app/prod"} names three servers (the port defaults
to 2181; IPv6 literals go in brackets, C{"[::1]:2181"}) and the chroot C{/app/prod}:
every path the application uses is then relative to it.  Like ZooKeeper's
C{StaticHostProvider}, the order is shuffled once so that many clients spread over
the servers, and the rotation says when it has been all the way round without a
connection, so the caller can pause before the next round.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_PORT = 2181


@dataclass(frozen=True)
class ConnectString:
    """
    A parsed connect string.

    @ivar hosts: C{(host, port)} pairs in the order written.
    @ivar chroot: the chroot path without a trailing slash, or L{None}.
    """

    hosts: tuple[tuple[str, int], ...]
    chroot: str | None

    def __str__(self) -> str:
        text = ",".join(
            f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in self.hosts
        )
        return text + (self.chroot or "")


def parse_connect_string(text: str) -> ConnectString:
    """
    Parse C{"host[:port][,host[:port]...][/chroot]"}.

    @raise ValueError: for an empty host list, a bad port, or a bad chroot path.
    """
    text = text.strip()
    chroot: str | None = None
    slash = text.find("/")
    if slash >= 0:
        chroot = text[slash:]
        text = text[:slash]
        if chroot == "/":
            chroot = None
        else:
            from curatorish.connection.paths import validate_path

            validate_path(chroot)
    hosts: list[tuple[str, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("["):
            end = part.index("]")
            host = part[1:end]
            rest = part[end + 1 :]
            port_text = rest[1:] if rest.startswith(":") else ""
        elif part.count(":") == 1:
            host, port_text = part.split(":")
        else:
            host, port_text = part, ""
        port = int(port_text) if port_text else DEFAULT_PORT
        if not 0 < port < 65536:
            raise ValueError(f"bad port in connect string: {part!r}")
        hosts.append((host, port))
    if not hosts:
        raise ValueError(f"no hosts in connect string {text!r}")
    return ConnectString(tuple(hosts), chroot)


class HostRotation:
    """
    The shuffled servers, handed out round-robin.

    @ivar hosts: the shuffled C{(host, port)} list.
    """

    def __init__(
        self, hosts: tuple[tuple[str, int], ...], random_source: random.Random | None = None
    ) -> None:
        self.hosts = list(hosts)
        (random_source or random.Random()).shuffle(self.hosts)
        self._index = -1
        self._tried_since_connected = 0

    def next(self) -> tuple[str, int]:
        """
        @return: the next server to try.
        """
        self._index = (self._index + 1) % len(self.hosts)
        self._tried_since_connected += 1
        return self.hosts[self._index]

    @property
    def round_complete(self) -> bool:
        """
        C{True} when every server has been tried since the last connection (so the
        caller should pause before trying again).
        """
        return self._tried_since_connected >= len(self.hosts)

    def move_to(self, host: tuple[str, int]) -> None:
        """
        Make C{host} the next one handed out (a read-write server found while on a
        read-only one).
        """
        self._index = self.hosts.index(host) - 1
        self._tried_since_connected = 0

    def on_connected(self) -> None:
        """
        Note that the current server took us: the next round starts afresh.
        """
        self._tried_since_connected = 0
