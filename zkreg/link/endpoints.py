"""
Which data server a session server's data link connects to: the endpoints of
C{--data-server tcp:h:p[,tcp:h:p...]}, tried in turn (L{EndpointsInTurn}).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["EndpointsInTurn", "parse_data_servers"]


def parse_data_servers(reactor: Any, description: str) -> list[tuple[str, Any]]:
    """
    @param description: C{tcp:h:p[,tcp:h:p...]}.
    @return: C{(description, endpoint)} of each, in order.
    @raise ValueError: for an empty list or an endpoint Twisted cannot parse.
    """
    from twisted.internet.endpoints import clientFromString

    parts = [part.strip() for part in description.split(",") if part.strip()]
    if not parts:
        raise ValueError("no data server given")
    return [(part, clientFromString(reactor, part)) for part in parts]


@implementer(IStreamClientEndpoint)
class EndpointsInTurn:
    """
    One endpoint out of several: each connection attempt starts with the current one
    and, while they fail, goes on to the next, once round the list; the first that
    connects stays current (C{ClientService} backs off between attempts).  Sweeping
    the list in one attempt reaches a data server that just took over (a standby
    does not listen before) without waiting a backoff per dead one before it.
    """

    def __init__(self, endpoints: list[tuple[str, Any]], on_failure: Any = None) -> None:
        self._endpoints = endpoints
        self._index = 0
        self._on_failure = on_failure

    def __len__(self) -> int:
        return len(self._endpoints)

    @property
    def current(self) -> str | None:
        """
        The description of the endpoint used now (L{None} without endpoints): the
        address it connected to when it says (C{connected_to}, as an endpoint
        following etcd's leader does), else its description.
        """
        if not self._endpoints:
            return None
        description, endpoint = self._endpoints[self._index]
        return getattr(endpoint, "connected_to", None) or description

    def others(self) -> list[tuple[int, str, Any]]:
        """
        @return: C{(index, description, endpoint)} of every endpoint but the current
            one, in turn order (the next one first).
        """
        count = len(self._endpoints)
        return [
            (index, *self._endpoints[index])
            for index in ((self._index + step) % count for step in range(1, count))
        ]

    def select(self, index: int) -> None:
        """Make the endpoint at C{index} the one the next connection attempt uses."""
        self._index = index % len(self._endpoints)

    def connect(self, factory: Any) -> Deferred:
        tried = 0

        def attempt() -> Deferred:
            nonlocal tried
            tried += 1
            _, endpoint = self._endpoints[self._index]
            return endpoint.connect(factory).addErrback(failed)

        def failed(reason: Failure) -> Any:
            description = self._endpoints[self._index][0]
            self._index = (self._index + 1) % len(self._endpoints)
            if self._on_failure is not None:
                self._on_failure(description, reason)
            if tried < len(self._endpoints):
                return attempt()
            return reason

        return attempt()
