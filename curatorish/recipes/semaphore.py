"""
Counting semaphores on Curator's znodes: C{InterProcessSemaphoreV2} and the
non-reentrant C{InterProcessSemaphoreMutex} built on it.

Layout (Curator's): C{<path>/locks} is an L{InterProcessMutex} that serialises
acquirers; C{<path>/leases} holds one protected ephemeral-sequential node
C{_c_<uuid>-lease-<seq>} per lease.  An acquirer, holding the mutex, creates its lease
node and waits until at most C{max_leases} lease nodes exist; then it lets the mutex
go.  So a Java process and a Python one with the same C{max_leases} never hold more
leases together than that.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from curatorish import errors
from curatorish.connection.paths import validate_path
from curatorish.node_names import make_path, split_path
from curatorish.recipes.face import Recipe, recipe_method
from curatorish.recipes.lock_internals import wait_for_wake, wake_on_event
from curatorish.recipes.locks import AnyClient, InterProcessMutex, LockContext, LockNotHeldError
from zkreg.proto.consts import CreateMode

#: Curator's C{InterProcessSemaphoreV2} child names.
LOCK_PARENT = "locks"
LEASE_PARENT = "leases"
LEASE_BASE_NAME = "lease-"

_RETRY = object()


class Lease:
    """
    One lease of an L{InterProcessSemaphoreV2} (Curator's C{Lease}).

    @ivar path: the lease's node.
    """

    def __init__(self, semaphore: InterProcessSemaphoreV2, path: str) -> None:
        self._semaphore = semaphore
        self.path = path

    @property
    def node_name(self) -> str:
        return split_path(self.path)[1]

    def close(self) -> Any:
        """Give the lease back (as L{InterProcessSemaphoreV2.return_lease})."""
        return self._semaphore.return_lease(self)

    def get_data(self) -> Any:
        """@return: the lease node's data (a Deferred on the async face)."""
        return self._semaphore.lease_data(self)

    def __repr__(self) -> str:
        return f"Lease({self.path!r})"


class InterProcessSemaphoreV2(Recipe):
    """
    A semaphore of C{max_leases} leases shared across processes (Curator's
    C{InterProcessSemaphoreV2}); leases are not tied to a thread or owner.
    """

    def __init__(
        self, client: AnyClient, path: str, max_leases: int, node_data: bytes | None = None
    ) -> None:
        """
        @param max_leases: how many leases may be out at once, across all processes
            (each must use the same number).
        @param node_data: data of our lease nodes (L{None}: the client's default data).
        """
        super().__init__(client)
        validate_path(path)
        if max_leases < 1:
            raise ValueError("max_leases must be at least 1")
        self.path = path
        self.max_leases = max_leases
        self.node_data = node_data
        self.leases_path = make_path(path, LEASE_PARENT)
        self._lock = InterProcessMutex(self.client, make_path(path, LOCK_PARENT))

    @recipe_method(waits=True)
    async def acquire(self, timeout: float | None = None) -> Lease | None:
        """
        @param timeout: seconds; L{None} waits for ever.
        @return: a L{Lease}, or L{None} if C{timeout} passed first.
        """
        leases = await self._acquire(1, timeout)
        return None if leases is None else leases[0]

    @recipe_method(waits=True)
    async def acquire_many(self, qty: int, timeout: float | None = None) -> list[Lease] | None:
        """
        @return: C{qty} leases, or L{None} (none kept) if C{timeout} passed first.
        """
        if qty < 1:
            raise ValueError("qty cannot be 0")
        return await self._acquire(qty, timeout)

    async def _acquire(self, qty: int, timeout: float | None) -> list[Lease] | None:
        reactor = self.client.zookeeper.reactor
        deadline = None if timeout is None else reactor.seconds() + timeout
        leases: list[Lease] = []
        success = False
        retry_count = 0
        started = reactor.seconds()
        try:
            while len(leases) < qty:
                result = await self._acquire_one(deadline)
                if result is None:
                    return None
                if result is _RETRY:
                    pauses: list[int] = []
                    elapsed_ms = int((reactor.seconds() - started) * 1000)
                    if not self.client.retry_policy.allow_retry(
                        retry_count, elapsed_ms, pauses.append
                    ):
                        raise errors.NoNodeError(
                            self.leases_path, "Sequential path not found (retries exhausted)"
                        )
                    retry_count += 1
                    continue
                assert isinstance(result, Lease)
                leases.append(result)
            success = True
            return leases
        finally:
            if not success:
                for lease in leases:
                    await self._return(lease)

    async def _acquire_one(self, deadline: float | None) -> Lease | object | None:
        reactor = self.client.zookeeper.reactor
        if not self.client.is_started:
            return None
        owner = object()  # each acquire waits for the mutex on its own
        remaining = None if deadline is None else deadline - reactor.seconds()
        if not await self._lock.acquire(remaining, owner=owner):
            return None
        try:
            try:
                created = await self.client.create(
                    make_path(self.leases_path, LEASE_BASE_NAME),
                    self.node_data,
                    mode=CreateMode.EPHEMERAL_SEQUENTIAL,
                    parents_as_containers=True,
                    protected=True,
                )
            except errors.NoNodeError:
                return _RETRY  # a container parent was reaped under us
            lease = Lease(self, created.path)
            success = False
            try:
                while True:
                    woken: defer.Deferred[None] = defer.Deferred()
                    try:
                        children = await self.client.get_children(
                            self.leases_path, watcher=wake_on_event(woken)
                        )
                    except errors.NoNodeError:
                        children = []
                    if lease.node_name not in children:
                        return _RETRY
                    if len(children) <= self.max_leases:
                        success = True
                        return lease
                    if not await wait_for_wake(self.client, woken, deadline):
                        return None
            finally:
                if not success:
                    await self._return(lease)
        finally:
            await self._lock.release(owner=owner)

    async def _return(self, lease: Lease) -> None:
        try:
            await self.client.delete(lease.path, guaranteed=True, quietly=True)
        except errors.ZooKeeperError:
            pass  # guaranteed: the delete goes on in the background

    @recipe_method
    async def return_lease(self, lease: Lease) -> None:
        """Give a lease back: its node is deleted, guaranteed."""
        await self._return(lease)

    @recipe_method
    async def return_all(self, leases: list[Lease]) -> None:
        """Give several leases back."""
        for lease in leases:
            await self._return(lease)

    @recipe_method
    async def lease_data(self, lease: Lease) -> bytes | None:
        data, _stat = await self.client.get_data(lease.path)
        return data

    @recipe_method
    async def get_participant_nodes(self) -> list[str]:
        """@return: the node names of the leases out now (Curator's getParticipantNodes)."""
        try:
            return list(await self.client.get_children(self.leases_path))
        except errors.NoNodeError:
            return []


class InterProcessSemaphoreMutex(LockContext):
    """
    A mutex that is not reentrant (Curator's C{InterProcessSemaphoreMutex}): a
    semaphore of one lease.  A second L{acquire} in the same process waits like any
    other contender, and any thread may L{release}.
    """

    def __init__(self, client: AnyClient, path: str) -> None:
        super().__init__(client)
        self.semaphore = InterProcessSemaphoreV2(self.client, path, 1)
        self._lease: Lease | None = None

    @recipe_method(waits=True)
    async def acquire(self, timeout: float | None = None) -> bool:
        """@return: C{True} once held, C{False} if C{timeout} passed first."""
        lease = await self.semaphore.acquire(timeout)
        if lease is None:
            return False
        self._lease = lease
        return True

    @recipe_method
    async def release(self) -> None:
        """@raise LockNotHeldError: this process does not hold it."""
        lease, self._lease = self._lease, None
        if lease is None:
            raise LockNotHeldError("Not acquired")
        await self.semaphore.return_lease(lease)

    def is_acquired_in_this_process(self) -> bool:
        return self._lease is not None

    @recipe_method
    async def get_participant_nodes(self) -> list[str]:
        return await self.semaphore.get_participant_nodes()


__all__ = [
    "InterProcessSemaphoreMutex",
    "InterProcessSemaphoreV2",
    "LEASE_BASE_NAME",
    "LEASE_PARENT",
    "LOCK_PARENT",
    "Lease",
]
