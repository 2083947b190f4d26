"""
The data servers a session server links to (C{--data-server tcp:h:p[,tcp:h:p...]}),
tried in turn: each connection attempt uses the current one, a failed attempt moves on
to the next.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure
from zope.interface import implementer


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
    One endpoint out of several: each connection attempt uses the current one, and a
    failed attempt moves on to the next (C{ClientService} backs off between attempts).
    """

    def __init__(self, endpoints: list[tuple[str, Any]], on_failure: Any = None) -> None:
        self._endpoints = endpoints
        self._index = 0
        self._on_failure = on_failure

    def __len__(self) -> int:
        return len(self._endpoints)

    @property
    def current(self) -> str | None:
        """The description of the endpoint used now (L{None} without endpoints)."""
        if not self._endpoints:
            return None
        return self._endpoints[self._index][0]

    def connect(self, factory: Any) -> Deferred:
        _, endpoint = self._endpoints[self._index]

        def failed(reason: Failure) -> Failure:
            description = self._endpoints[self._index][0]
            self._index = (self._index + 1) % len(self._endpoints)
            if self._on_failure is not None:
                self._on_failure(description, reason)
            return reason

        return endpoint.connect(factory).addErrback(failed)
