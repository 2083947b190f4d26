"""
Container and TTL-node reaping as a small service of the data server (ZooKeeper's
C{ContainerManager}).

Every C{container_check_interval_ms} it submits a deleteContainer request for each
candidate of L{zkreg.data.containers.deletion_candidates}; prep re-checks them
against the writes in flight, so a child created meanwhile saves the node.  A path
is not submitted again while its deleteContainer is in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet.task import LoopingCall

from zkreg.data import codes
from zkreg.data.containers import deletion_candidates
from zkreg.data.messages import Request
from zkreg.data.tree import DataTree

__all__ = ["ContainerReaper"]


class ContainerReaper(service.Service):
    """Deletes empty containers and expired TTL nodes, periodically, while running."""

    def __init__(
        self,
        tree: DataTree,
        clock: Any,
        now_ms: Callable[[], int],
        submit_with_callback: Callable[[Request, Any], None],
        refusing_writes: Callable[[], bool],
        interval_ms: int,
    ) -> None:
        """
        @param submit_with_callback: the data server's write entry (request, reply).
        @param refusing_writes: true once the data server takes no more writes.
        @param interval_ms: the period; 0 or less: never reap.
        """
        self._tree = tree
        self._clock = clock
        self._now_ms = now_ms
        self._submit = submit_with_callback
        self._refusing_writes = refusing_writes
        self._interval_ms = interval_ms
        self._in_flight: set[str] = set()
        self._loop: LoopingCall | None = None

    def check(self) -> list[str]:
        """
        Submit a deleteContainer for each due container and TTL node.

        @return: the paths a deleteContainer was submitted for.
        """
        if self._refusing_writes():
            return []
        submitted = []
        in_flight = self._in_flight
        for path in deletion_candidates(self._tree, self._now_ms()):
            if path in in_flight:
                continue
            in_flight.add(path)
            submitted.append(path)
            self._submit(
                Request(0, 0, codes.OP_DELETE_CONTAINER, path),
                lambda _result, path=path: in_flight.discard(path),
            )
        return submitted

    def startService(self) -> None:
        service.Service.startService(self)
        if self._interval_ms > 0:
            self._loop = LoopingCall(self.check)
            self._loop.clock = self._clock
            self._loop.start(self._interval_ms / 1000.0, now=False)

    def stopService(self) -> None:
        service.Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
