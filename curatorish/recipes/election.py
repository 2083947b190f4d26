"""
What both leader recipes (L{curatorish.recipes.leader_latch},
L{curatorish.recipes.leader_selector}) share: the participant record and its node
data, the recipes' lifecycle states, the listing of an election's participants, and
the deadline that ends leadership kept through SUSPENDED.

Their log events keep the namespace (and stdlib logger name) they had when both
recipes were one module, C{curatorish.recipes.leader} (L{LEADER_NAMESPACE}).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

from twisted.internet import defer
from twisted.logger import Logger

from curatorish import errors
from curatorish.logbridge import ROOT_NAMESPACE
from curatorish.node_names import make_path
from curatorish.recipes.lock_internals import LockInternalsDriver, sort_children
from curatorish.state import ConnectionState

#: The namespace of both leader recipes' events, whichever of their modules logs
#: them: programs configure this logger name.
LEADER_NAMESPACE = ROOT_NAMESPACE + ".recipes.leader"

_log = Logger(namespace=LEADER_NAMESPACE)

_DRIVER = LockInternalsDriver()


class State(enum.Enum):
    LATENT = "LATENT"
    STARTED = "STARTED"
    CLOSED = "CLOSED"


class Participant(NamedTuple):
    """One participant of an election (Curator's C{Participant})."""

    id: str
    is_leader: bool


def id_bytes(participant_id: str) -> bytes:
    """@return: a participant's node data (Curator's C{LeaderSelector.getIdBytes})."""
    return participant_id.encode("utf-8")


async def _participant_ids(client: Any, path: str, lock_name: str) -> AsyncIterator[str]:
    """
    The ids of the participants under C{path} in election order, the leader first,
    each read only when the caller asks for the next (none if C{path} does not
    exist); nodes deleted meanwhile are skipped.
    """
    try:
        children = await client.get_children(path)
    except errors.NoNodeError:
        return
    for name in sort_children(children, lock_name, _DRIVER):
        try:
            data, _stat = await client.get_data(make_path(path, name))
        except errors.NoNodeError:
            continue
        yield (data or b"").decode("utf-8", "replace")


async def list_participants(client: Any, path: str, lock_name: str) -> list[Participant]:
    """
    @param lock_name: the recipe's node name (C{"latch-"} or C{"lock-"}).
    @return: the participants under C{path} in election order, the leader first
        (none if C{path} does not exist); nodes deleted while listing are skipped.
    """
    found: list[Participant] = []
    async for participant_id in _participant_ids(client, path, lock_name):
        found.append(Participant(participant_id, not found))
    return found


async def find_leader(client: Any, path: str, lock_name: str) -> Participant:
    """
    @return: the leader, or C{Participant("", False)} when there is none; only the
        first live participant's node is read (as Curator's C{getLeader}), not
        every participant's.
    """
    async for participant_id in _participant_ids(client, path, lock_name):
        return Participant(participant_id, True)
    return Participant("", False)


def log_failure(description: str) -> Callable[[Any], None]:
    """
    @return: an errback for a recipe's background work that logs its failure, unless
        the work was cancelled (as closing a recipe does).
    """

    def log(failure: Any) -> None:
        if not failure.check(defer.CancelledError):
            _log.failure(description, failure)

    return log


class SuspendedDeadline:
    """
    Under a policy that keeps leadership through SUSPENDED (Curator's session policy),
    keep it only while the server cannot yet have expired our session.  The
    connection reports SUSPENDED at most two thirds of the session timeout after it
    last heard from the server (its read timeout), and the server expires the session
    one timeout after that; so a quarter of the timeout after SUSPENDED (a margin of a
    twelfth for the clocks and the network), leadership ends, before a successor can
    be told our node is gone.  Curator waits for LOST, which comes a whole session
    timeout after SUSPENDED: two leaders for up to two thirds of the timeout.
    """

    def __init__(self, client: Any, expired: Callable[[], None]) -> None:
        self._client = client
        self._expired = expired
        self._call: Any = None

    def arm(self) -> None:
        self.cancel()
        connection = self._client.zookeeper
        timeout_ms = connection.negotiated_timeout_ms or connection.session_timeout_ms
        self._call = connection.reactor.callLater(timeout_ms / 4000.0, self._due)

    def cancel(self) -> None:
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _due(self) -> None:
        self._call = None
        if self._client.state is ConnectionState.SUSPENDED:
            self._expired()


__all__ = [
    "LEADER_NAMESPACE",
    "Participant",
    "State",
    "SuspendedDeadline",
    "find_leader",
    "id_bytes",
    "list_participants",
    "log_failure",
]
