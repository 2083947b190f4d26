"""
Nodes that stay (Curator's C{recipes.nodes}): a node this client keeps in existence,
recreating it when it is deleted and after the session that owned it is lost.

A worker that registers itself with a hand-made ephemeral node silently disappears
when its session expires (for example when the server is down longer than the session
timeout).  L{PersistentNode} watches its node and the connection: when the node is
deleted, and on every C{RECONNECTED} (a new session included), it creates the node
again, with the latest data.  If the node exists already (a previous session's
ephemeral not yet expired), it takes it over: sets its data and watches it, and
recreates it when the old session's expiry deletes it.

Layout, as Curator 5.4: the node is created at C{path} (with container parents unless
C{use_parent_creation} is False); with protection its name is C{_c_<uuid>-<name>}, one
uuid for the life of the recipe, so that a create retried after a connection loss finds
the node it made instead of making a second one; a sequential node keeps its sequence
suffix when recreated.  L{PersistentTtlNode} is a container node C{path} with a TTL child
C{path/touch} touched every C{ttl/2} ms; L{GroupMember} is an ephemeral
C{path/<member_id>} holding the member's payload, the group read from a cache.

Connection states: on C{SUSPENDED} nothing is done (an ephemeral node stays on the
server while the session lives); on C{LOST} the node is gone with the session, and is
recreated on the C{RECONNECTED} that follows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.connection.paths import validate_path
from curatorish.connection.watches import WatchedEvent
from curatorish.framework import CuratorFramework, local_address_bytes
from curatorish.node_names import make_path, protected_name, split_path
from curatorish.recipes._wakeup import Deadline
from curatorish.recipes.cache import CuratorCache
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.state import ConnectionState
from zkreg.proto.consts import CreateMode, EventType

_log = Logger()

#: Pause before creating again after a retryable failure (the client's retry loop has
#: already waited for a connection), so a dead server is not hammered.
_RECREATE_PAUSE_S = 0.2

#: Length of ZooKeeper's sequence suffix (C{%010d}).
_SEQUENCE_DIGITS = 10


def _sequential_suffix(path: str) -> str:
    """@return: the sequence number a server appended to C{path} (Curator's C{ZKPaths})."""
    return path[-_SEQUENCE_DIGITS:] if len(path) > _SEQUENCE_DIGITS else ""


def _create_mode_for_existing(mode: CreateMode) -> CreateMode:
    """
    A sequential node recreated under its known name is created non-sequentially.
    """
    return {
        CreateMode.EPHEMERAL_SEQUENTIAL: CreateMode.EPHEMERAL,
        CreateMode.PERSISTENT_SEQUENTIAL: CreateMode.PERSISTENT,
        CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL: CreateMode.PERSISTENT_WITH_TTL,
    }.get(mode, mode)


class PersistentNode(Recipe):
    """
    A node kept in existence while the recipe runs (Curator's C{PersistentNode}).

    C{PersistentNode(client, mode, use_protection, path, data)}; L{start} it, L{close}
    it to delete the node.

    @ivar auth_failure: the last create was refused for lack of permission.
    @ivar parent_creation_failure: the parent is missing and may not be created.
    """

    _LATENT, _STARTED, _CLOSED = "LATENT", "STARTED", "CLOSED"

    def __init__(
        self,
        client: CuratorFramework | BlockingCuratorFramework,
        mode: CreateMode,
        use_protection: bool,
        path: str,
        data: bytes,
        ttl: int = -1,
        use_parent_creation: bool = True,
    ) -> None:
        """
        @param mode: any L{CreateMode}; the TTL modes need C{ttl}.
        @param use_protection: name the node C{_c_<uuid>-<name>} (for sequential and
            ephemeral nodes whose creation must not be duplicated).
        @param ttl: milliseconds, for the TTL modes.
        @param use_parent_creation: create missing parents as containers.
        """
        super().__init__(client)
        validate_path(path, CreateMode(mode).is_sequential)
        if data is None:
            raise ValueError("data cannot be None")
        self.base_path = path
        self.mode = CreateMode(mode)
        self.use_protection = use_protection
        self.ttl = ttl
        self.use_parent_creation = use_parent_creation
        self.auth_failure = False
        self.parent_creation_failure = False
        self._data = bytes(data)
        self._node_path: str | None = None
        self._state = self._LATENT
        self._protected_id = str(uuid.uuid4())
        self._initialised = False
        self._initial_waiters: list[defer.Deferred[None]] = []
        self._creating = False
        self._create_again = False
        self._listeners: list[tuple[Any, Callable[..., None]]] = []

    # -- lifecycle --------------------------------------------------------------------

    @property
    def _active(self) -> bool:
        return self._state == self._STARTED

    @recipe_method
    def start(self) -> None:
        """Start creating the node (in the background: see L{wait_for_initial_create})."""
        if self._state != self._LATENT:
            raise RuntimeError("Already started")
        self._state = self._STARTED
        self.client.add_connection_state_listener(self._state_changed)
        self._create_node()

    @recipe_method(waits=True)
    async def wait_for_initial_create(self, timeout: float | None = None) -> bool:
        """
        Wait until the node was first created (or taken over).

        @param timeout: seconds; None waits forever.
        @return: True once created, False when the timeout passed first.
        """
        if self._state != self._STARTED:
            raise RuntimeError("Not started")
        if self._initialised:
            return True
        waiter: defer.Deferred[None] = defer.Deferred()
        self._initial_waiters.append(waiter)
        deadline = Deadline(timeout)
        remaining = deadline.remaining()
        if remaining is not None:
            from twisted.internet import reactor

            waiter.addTimeout(remaining, reactor)  # type: ignore[arg-type]
        try:
            await waiter
        except defer.TimeoutError:
            return False
        finally:
            if waiter in self._initial_waiters:
                self._initial_waiters.remove(waiter)
        return True

    @recipe_method
    async def close(self) -> None:
        """Stop, and delete the node (a guaranteed delete: retried until done)."""
        if self._state != self._STARTED:
            return
        self._state = self._CLOSED
        self.client.remove_connection_state_listener(self._state_changed)
        self._listeners.clear()
        await self._delete_node()

    async def _delete_node(self) -> None:
        path, self._node_path = self._node_path, None
        if path is not None:
            await self.client.delete(path, guaranteed=True, quietly=True)

    # -- what the node is -------------------------------------------------------------

    def get_actual_path(self) -> str | None:
        """@return: the node's path (with its protection prefix and sequence), or None
        before it was first created."""
        return self._node_path

    def get_data(self) -> bytes:
        """@return: the data the node is (re)created with."""
        return self._data

    @recipe_method
    async def set_data(self, data: bytes) -> None:
        """
        Change the node's data now and for every later recreation.

        @raise RuntimeError: before the node was first created.
        """
        if self._node_path is None:
            raise RuntimeError(
                "initial create has not been processed. Call wait_for_initial_create() to ensure."
            )
        if self.parent_creation_failure:
            raise RuntimeError("Failed to create parent nodes.")
        self._data = bytes(data)
        if self._active:
            await self.client.set_data(self._node_path, self._data)

    def add_listener(self, listener: Callable[[str], Any]) -> None:
        """
        Call C{listener(actual_path)} each time the node is created (Curator's
        C{PersistentNodeListener.nodeCreated}); on the blocking face, on the event thread.
        """
        self._listeners.append((listener, self.listener_caller(listener)))

    def remove_listener(self, listener: Callable[[str], Any]) -> None:
        """Stop calling C{listener}."""
        self._listeners = [entry for entry in self._listeners if entry[0] is not listener]

    # -- keeping the node -------------------------------------------------------------

    def _state_changed(self, client: Any, state: ConnectionState) -> None:
        if state is ConnectionState.RECONNECTED and self._active:
            self._create_node()

    def _watcher(self, event: WatchedEvent) -> None:
        if not self._active:
            return
        if event.type is EventType.NodeDeleted:
            self._create_node()
        elif event.type is EventType.NodeDataChanged:
            self._in_background(self._watch_node(), "watch")

    def _in_background(self, work: Any, what: str) -> None:
        def failed(failure: Any) -> None:
            if self._active and not failure.check(errors.ConnectionClosedError):
                _log.failure(
                    "PersistentNode {path}: {what} failed",
                    failure=failure,
                    path=self.base_path,
                    what=what,
                )

        defer.ensureDeferred(work).addErrback(failed)

    def _create_node(self) -> None:
        """Create (again), one create at a time: a request during one runs after it."""
        if not self._active:
            return
        if self._creating:
            self._create_again = True
            return
        self._creating = True
        self._in_background(self._create_loop(), "create")

    async def _create_loop(self) -> None:
        try:
            while True:
                self._create_again = False
                await self._create_once()
                if not (self._create_again and self._active):
                    return
        finally:
            self._creating = False

    def _create_path(self) -> str:
        existing = self._node_path
        if existing is not None and not self.use_protection:
            return existing
        path = self.base_path
        if existing is not None and self.mode.is_sequential:
            path = self.base_path + _sequential_suffix(existing)
        if self.use_protection:
            parent, name = split_path(path)
            path = make_path(parent, protected_name(name, self._protected_id))
        return path

    async def _find_protected(self) -> str | None:
        """@return: a node this recipe made earlier under its protected name, if any."""
        parent, _ = split_path(self.base_path)
        prefix = protected_name("", self._protected_id)
        try:
            children = await self.client.get_children(parent)
        except errors.NoNodeError:
            return None
        for child in children:
            if child.startswith(prefix):
                return make_path(parent, child)
        return None

    async def _create_once(self) -> None:
        while self._active:
            existing = self._node_path is not None
            create_path = self._create_path()
            mode = _create_mode_for_existing(self.mode) if existing else self.mode
            path: str | None = None
            node_exists = False
            try:
                if self.use_protection and mode.is_sequential:
                    # A create lost with its connection may have happened: find it.
                    path = await self._find_protected()
                    node_exists = path is not None
                if path is None:
                    created = await self.client.create(
                        create_path,
                        self._data,
                        mode=mode,
                        ttl=self.ttl if mode.is_ttl else None,
                        parents_as_containers=self.use_parent_creation,
                    )
                    path = created.path
            except errors.NodeExistsError:
                path, node_exists = create_path, True
            except errors.NoAuthError:
                _log.warn("Not authorised to create {path}", path=create_path)
                self.auth_failure = True
                return
            except errors.NoNodeError:
                _log.warn(
                    "Cannot create the parents of {path} (use_parent_creation={flag})",
                    path=create_path,
                    flag=self.use_parent_creation,
                )
                self.parent_creation_failure = True
                return
            except errors.ZooKeeperError as error:
                if isinstance(error, errors.ConnectionClosedError) or not (
                    self.client.retry_policy.allow_retry_on(error)
                ):
                    raise
                from twisted.internet import reactor

                await task.deferLater(reactor, _RECREATE_PAUSE_S)  # type: ignore[arg-type]
                continue
            if not self._active:
                # Closed while creating: what we made must not outlive the recipe.
                await self.client.delete(path, guaranteed=True, quietly=True)
                return
            self.auth_failure = False
            self._node_path = path
            await self._watch_node()
            if node_exists:
                await self.client.set_data(path, self._data)
            self._initialisation_complete()
            if not node_exists:
                for _listener, call in list(self._listeners):
                    call(path)
            return

    def _initialisation_complete(self) -> None:
        self._initialised = True
        waiters, self._initial_waiters = self._initial_waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    async def _watch_node(self) -> None:
        path = self._node_path
        if not self._active or path is None:
            return
        stat = await self.client.exists(path, watcher=self._watcher)
        if stat is None:
            self._create_node()
        elif (stat.ephemeralOwner != 0) != self.mode.is_ephemeral:
            _log.warn(
                "Existing node {path} is {what} but the recipe's mode is not: created "
                "outside of PersistentNode?",
                path=path,
                what="ephemeral" if stat.ephemeralOwner else "persistent",
            )


class PersistentTtlNode(Recipe):
    """
    A node that lives while this client touches it, and is removed by the server
    after C{ttl_ms} without (Curator's C{PersistentTtlNode}): a container C{path} whose
    TTL child C{path/touch} is touched every C{ttl_ms / touch_schedule_factor} ms.
    """

    DEFAULT_CHILD_NODE_NAME = "touch"
    DEFAULT_TOUCH_SCHEDULE_FACTOR = 2

    def __init__(
        self,
        client: CuratorFramework | BlockingCuratorFramework,
        path: str,
        ttl_ms: int,
        init_data: bytes,
        use_parent_creation: bool = True,
        child_node_name: str = DEFAULT_CHILD_NODE_NAME,
        touch_schedule_factor: int = DEFAULT_TOUCH_SCHEDULE_FACTOR,
    ) -> None:
        super().__init__(client)
        self.ttl_ms = ttl_ms
        self.touch_schedule_factor = touch_schedule_factor
        self._node = _UndeletedPersistentNode(
            self.client, CreateMode.CONTAINER, False, path, init_data, -1, use_parent_creation
        )
        self.child_path = make_path(path, child_node_name)
        self._touching: task.LoopingCall | None = None

    @recipe_method
    def start(self) -> None:
        """Create the container and start touching its TTL child."""
        self._node.start()
        self._touching = task.LoopingCall(self._touch)
        interval = self.ttl_ms / self.touch_schedule_factor / 1000.0
        self._touching.start(interval, now=False).addErrback(
            lambda failure: _log.failure(
                "Touching {path} stopped", failure=failure, path=self.child_path
            )
        )

    async def _touch_once(self) -> None:
        try:
            try:
                await self.client.set_data(self.child_path, b"")
            except errors.NoNodeError:
                await self.client.create(
                    self.child_path,
                    mode=CreateMode.PERSISTENT_WITH_TTL,
                    ttl=self.ttl_ms,
                    or_set_data=True,
                )
        except errors.NoNodeError:
            pass  # the container is being recreated
        except errors.ZooKeeperError as error:
            _log.debug("Could not touch {path}: {error}", path=self.child_path, error=error)

    def _touch(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._touch_once())

    @recipe_method(waits=True)
    async def wait_for_initial_create(self, timeout: float | None = None) -> bool:
        """@return: True once the container was created, False on timeout."""
        return await self._node.wait_for_initial_create(timeout)  # type: ignore[no-any-return]

    @recipe_method
    async def set_data(self, data: bytes) -> None:
        """Change the container's data."""
        await self._node.set_data(data)

    def get_data(self) -> bytes:
        """@return: the container's data."""
        return self._node.get_data()

    @recipe_method
    async def close(self) -> None:
        """Stop touching (the server removes the nodes once the TTL passes)."""
        if self._touching is not None and self._touching.running:
            self._touching.stop()
        await self._node.close()


class _UndeletedPersistentNode(PersistentNode):
    """A persistent node left in place on close (the TTL node's container)."""

    async def _delete_node(self) -> None:
        self._node_path = None


class GroupMember(Recipe):
    """
    Membership of a group: an ephemeral C{path/<member_id>} kept by a
    L{PersistentNode}, and the group read from a L{CuratorCache} of C{path}
    (Curator's C{GroupMember}).
    """

    def __init__(
        self,
        client: CuratorFramework | BlockingCuratorFramework,
        membership_path: str,
        member_id: str,
        payload: bytes | None = None,
    ) -> None:
        super().__init__(client)
        if not member_id:
            raise ValueError("member_id cannot be empty")
        self.membership_path = membership_path
        self.member_id = member_id
        self._cache = CuratorCache(self.client, membership_path)
        self._node = PersistentNode(
            self.client,
            CreateMode.EPHEMERAL,
            False,
            make_path(membership_path, member_id),
            local_address_bytes() if payload is None else payload,
        )

    @recipe_method
    async def start(self) -> None:
        """Join the group (in the background) and start following it."""
        self._node.start()
        await self._cache.start()

    @recipe_method(waits=True)
    async def wait_for_initial_create(self, timeout: float | None = None) -> bool:
        """@return: True once this member's node exists, False on timeout."""
        return await self._node.wait_for_initial_create(timeout)  # type: ignore[no-any-return]

    @recipe_method
    async def set_this_data(self, data: bytes) -> None:
        """Change this member's payload."""
        await self._node.set_data(data)

    def get_current_members(self) -> dict[str, bytes]:
        """
        @return: member id to payload, from the cache (no I/O: as current as the
            cache); this member is always included, with its own payload, even
            before its node is created or seen.
        """
        prefix = make_path(self.membership_path, None).rstrip("/") + "/"
        members: dict[str, bytes] = {}
        for node in self._cache.stream():
            name = node.path[len(prefix) :] if node.path.startswith(prefix) else ""
            if name and "/" not in name:
                members[name] = node.data or b""
        members.setdefault(self.member_id, self._node.get_data())
        return dict(sorted(members.items()))

    @staticmethod
    def id_from_path(path: str) -> str:
        """@return: the member id of a member node's path (its last segment)."""
        return path.rsplit("/", 1)[-1]

    @recipe_method
    async def close(self) -> None:
        """Leave the group (delete this member's node) and stop following it."""
        await self._cache.close()
        await self._node.close()


__all__ = ["GroupMember", "PersistentNode", "PersistentTtlNode"]
