"""
The data link inside one process: direct calls on a L{DataServer}.

The session server reads from the data server's own tree, so a read sees every
applied write at once; writes go through the data server's pipeline like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from zkreg.data.server import DataServer
from zkreg.data.tree import DataTree
from zkreg.interfaces import IDataLink


@implementer(IDataLink)
class InProcessDataLink:
    """
    L{IDataLink} over a L{DataServer} in the same process.

    @ivar server: the data server.
    """

    def __init__(self, server: DataServer) -> None:
        self.server = server

    def create_session(self, timeout_ms: int) -> Deferred:
        """See L{IDataLink.create_session}."""
        return self.server.create_session(timeout_ms)

    def revalidate_session(self, session_id: int, password: bytes, timeout_ms: int) -> Deferred:
        """See L{IDataLink.revalidate_session}."""
        return self.server.revalidate_session(session_id, password, timeout_ms)

    def touch_sessions(self, session_ids: Iterable[int]) -> None:
        """See L{IDataLink.touch_sessions}."""
        self.server.touch_sessions(session_ids)

    def close_session(self, session_id: int) -> Deferred:
        """See L{IDataLink.close_session}."""
        return self.server.close_session(session_id)

    def submit(self, request: Any) -> Deferred:
        """See L{IDataLink.submit}."""
        return self.server.submit(request)

    @property
    def writes_pass_reads(self) -> bool:
        """
        Whether a session may submit a write past its waiting reads: each write is
        applied after C{submit} returned and answered before the next is applied,
        so a read evaluated in one write's answer sees exactly the writes before it.
        True unless the data server applies during C{submit} (a memory log).
        """
        return not self.server.applies_during_submit

    def submit_with_callback(self, request: Any, callback: Any) -> None:
        """
        L{submit} without a Deferred (not part of L{IDataLink}): see
        L{DataServer.submit_with_callback}.  C{callback} gets the L{Outcome} or a
        L{Failure} of L{DataServerFailed}, exactly once, possibly before this returns.
        """
        self.server.submit_with_callback(request, callback)

    def subscribe(self, listener: Any) -> None:
        """See L{IDataLink.subscribe}."""
        self.server.subscribe(listener)

    def unsubscribe(self, listener: Any) -> None:
        """See L{IDataLink.unsubscribe}."""
        self.server.unsubscribe(listener)

    def read_view(self) -> DataTree:
        """The data server's own tree."""
        return self.server.tree
