"""
Curator's C{LeaderLatch}: each participant creates a protected ephemeral-sequential
node C{<path>/_c_<uuid>-latch-<seq>} whose data is its id; the first in sequence order
leads, each other watches only its predecessor.  Leadership lasts until the latch is
closed or the connection is in an error state (see L{curatorish.recipes.leader} for
why there are never two leaders).
"""

from __future__ import annotations

import enum
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from curatorish import errors
from curatorish.connection import WatchedEvent
from curatorish.connection.paths import validate_path
from curatorish.node_names import make_path, split_path
from curatorish.recipes.election import (
    LEADER_NAMESPACE,
    Participant,
    State,
    SuspendedDeadline,
    find_leader,
    id_bytes,
    list_participants,
    log_failure,
)
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.recipes.lock_internals import (
    LockInternalsDriver,
    sort_children,
    wait_for_wake,
)
from curatorish.recipes.locks import AnyClient
from curatorish.state import ConnectionState
from zkreg.proto.consts import CreateMode, EventType

_log = Logger(namespace=LEADER_NAMESPACE)

#: Curator's C{LeaderLatch} node name.
LATCH_LOCK_NAME = "latch-"

_DRIVER = LockInternalsDriver()


class CloseMode(enum.Enum):
    """What L{LeaderLatch.close} tells the latch's listeners (Curator's C{CloseMode})."""

    SILENT = "SILENT"
    NOTIFY_LEADER = "NOTIFY_LEADER"


class LeaderLatch(Recipe):
    """
    Curator's C{LeaderLatch}: start it, then ask L{has_leadership}, wait with
    L{await_leadership}, or listen (L{add_listener}: an object with C{is_leader()}
    and C{not_leader()}).  Leadership lasts until L{close} or a connection problem.
    """

    def __init__(
        self,
        client: AnyClient,
        path: str,
        id: str = "",  # noqa: A002  (Curator's name)
        close_mode: CloseMode = CloseMode.SILENT,
    ) -> None:
        super().__init__(client)
        validate_path(path)
        self.path = path
        self.id = id
        self.close_mode = close_mode
        self.state = State.LATENT
        self._has_leadership = False
        self._our_path: str | None = None
        self._listeners: list[Any] = []
        self._waiters: list[defer.Deferred[None]] = []
        self._suspended_deadline = SuspendedDeadline(self.client, self._suspended_too_long)

    # -- lifecycle --------------------------------------------------------------------

    @recipe_method
    def start(self) -> None:
        """Join the election (in the background: watch L{has_leadership})."""
        if self.state is not State.LATENT:
            raise RuntimeError("Cannot be started more than once")
        self.state = State.STARTED
        self.client.add_connection_state_listener(self._state_changed)
        self._spawn(self._reset(), "leader latch start")

    @recipe_method
    async def close(self, close_mode: CloseMode | None = None) -> None:
        """
        Leave the election: leadership ends at once, then our node is deleted
        (guaranteed).  With C{NOTIFY_LEADER} a leader's listeners hear C{not_leader};
        with C{SILENT} (the default) they hear nothing more.
        """
        if self.state is not State.STARTED:
            raise RuntimeError("Already closed or has not been started")
        self.state = State.CLOSED
        self.client.remove_connection_state_listener(self._state_changed)
        self._suspended_deadline.cancel()
        if (close_mode or self.close_mode) is CloseMode.NOTIFY_LEADER:
            self._set_leadership(False)
            self._listeners.clear()
        else:
            self._listeners.clear()
            self._set_leadership(False)
        self._wake_waiters()
        await self._set_node(None)

    # -- queries ----------------------------------------------------------------------

    def has_leadership(self) -> bool:
        """@return: whether this participant leads now."""
        return self.state is State.STARTED and self._has_leadership

    @recipe_method(waits=True)
    async def await_leadership(self, timeout: float | None = None) -> bool:
        """
        Wait until this participant leads.

        @param timeout: seconds; L{None} waits for ever.
        @return: whether it leads (C{False} if C{timeout} passed or the latch closed).
        """
        reactor = self.client.zookeeper.reactor
        deadline = None if timeout is None else reactor.seconds() + timeout
        while self.state is State.STARTED and not self._has_leadership:
            waiter: defer.Deferred[None] = defer.Deferred()
            self._waiters.append(waiter)
            if not await wait_for_wake(self.client, waiter, deadline):
                break
        return self.has_leadership()

    @recipe_method
    async def get_participants(self) -> list[Participant]:
        """@return: every participant, in election order (the leader first)."""
        return await list_participants(self.client, self.path, LATCH_LOCK_NAME)

    @recipe_method
    async def get_leader(self) -> Participant:
        """@return: the leader, or C{Participant("", False)} when there is none."""
        return await find_leader(self.client, self.path, LATCH_LOCK_NAME)

    def get_id(self) -> str:
        return self.id

    def get_our_path(self) -> str | None:
        """@return: our node's path (L{None} while it is being made)."""
        return self._our_path

    # -- listeners --------------------------------------------------------------------

    def add_listener(self, listener: Any) -> None:
        """
        Call C{listener.is_leader()} when we gain leadership and
        C{listener.not_leader()} when we lose it (on the blocking face, on the
        client's event thread).
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: Any) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- the algorithm (reactor thread) -----------------------------------------------

    def _spawn(self, work: Any, description: str) -> defer.Deferred[Any]:
        return defer.ensureDeferred(work).addErrback(log_failure(description))

    def _in_error_state(self) -> bool:
        state = self.client.state
        if state is None:
            return True
        return not state.is_connected or self.client.connection_state_error_policy.is_error_state(
            state
        )

    def _set_leadership(self, leads: bool) -> None:
        was = self._has_leadership
        self._has_leadership = leads
        if was and not leads:
            for listener in list(self._listeners):
                self.listener_caller(listener.not_leader)()
        elif leads and not was:
            for listener in list(self._listeners):
                self.listener_caller(listener.is_leader)()
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    async def _set_node(self, new_path: str | None) -> None:
        old, self._our_path = self._our_path, new_path
        if old is not None:
            try:
                await self.client.delete(old, guaranteed=True, quietly=True)
            except errors.ZooKeeperError:
                pass  # guaranteed: goes on in the background

    async def _reset(self) -> None:
        self._set_leadership(False)
        await self._set_node(None)
        while True:
            try:
                created = await self.client.create(
                    make_path(self.path, LATCH_LOCK_NAME),
                    id_bytes(self.id),
                    mode=CreateMode.EPHEMERAL_SEQUENTIAL,
                    parents_as_containers=True,
                    protected=True,
                )
                break
            except errors.NoNodeError:
                # A container parent was reaped between its creation and ours.
                if self.state is not State.STARTED:
                    return
            except errors.ConnectionClosedError:
                return
            except errors.ConnectionLossError:
                # No connection within the retry policy's patience (started while the
                # server is away): join once connected.  A node the unanswered create
                # may have made is found and deleted by the protected create's cleanup.
                if self.state is not State.STARTED:
                    return
                if not await self.client.block_until_connected(None):
                    return
        await self._set_node(created.path)
        if self.state is State.CLOSED:
            await self._set_node(None)
        else:
            await self._get_children()

    async def _get_children(self) -> None:
        if self.state is not State.STARTED:
            return
        children = await self.client.get_children(self.path)
        await self._check_leadership(children)

    async def _check_leadership(self, children: list[str]) -> None:
        if self.state is not State.STARTED:
            return
        our_path = self._our_path
        ordered = sort_children(children, LATCH_LOCK_NAME, _DRIVER)
        our_name = split_path(our_path)[1] if our_path is not None else None
        our_index = ordered.index(our_name) if our_name in ordered else -1
        if our_index < 0:
            _log.info("Can't find our node {path}; resetting", path=our_path)
            await self._reset()
        elif our_index == 0:
            # Only a listing made on a healthy connection makes us the leader: a reply
            # read after the connection broke (its SUSPENDED not yet delivered) does not.
            if not self._in_error_state():
                self._set_leadership(True)
        else:
            self._set_leadership(False)
            watch_path = make_path(self.path, ordered[our_index - 1])

            def watcher(event: WatchedEvent) -> None:
                if self.state is State.STARTED and event.type == EventType.NodeDeleted:
                    self._spawn(self._get_children(), "leader latch check")

            try:
                await self.client.get_data(watch_path, watcher=watcher)
            except errors.NoNodeError:
                await self._get_children()

    def _state_changed(self, client: Any, state: ConnectionState) -> None:
        if self.state is not State.STARTED:
            return
        policy = self.client.connection_state_error_policy
        if state is ConnectionState.RECONNECTED:
            if policy.is_error_state(ConnectionState.SUSPENDED) or not self._has_leadership:
                self._spawn(self._get_children(), "leader latch check after reconnect")
        elif state is ConnectionState.SUSPENDED:
            if policy.is_error_state(ConnectionState.SUSPENDED):
                self._set_leadership(False)
            else:
                self._suspended_deadline.arm()
        elif state is ConnectionState.LOST:
            self._set_leadership(False)
        if state is not ConnectionState.SUSPENDED:
            self._suspended_deadline.cancel()

    def _suspended_too_long(self) -> None:
        if self.state is State.STARTED:
            _log.info("SUSPENDED for a quarter of the session timeout: leadership ends")
            self._set_leadership(False)


__all__ = ["CloseMode", "LATCH_LOCK_NAME", "LeaderLatch"]
