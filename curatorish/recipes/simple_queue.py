"""
ZooKeeper's plain queue of byte strings (Curator's C{SimpleDistributedQueue}).

Layout, as Curator 5.4: items are C{<path>/qn-<seq>} (persistent sequential, the queue
node a container), holding the caller's bytes as they are; the head is the lowest
name.  A consumer takes the head by reading and deleting it; when two race, the one
whose delete fails moves on to the next item.

Connection states: every operation goes through the client's retry loop; a waiting
C{take}/C{poll} reads again on C{RECONNECTED} and C{LOST} (an expired session's watches
are gone).  An C{offer} whose reply was lost with the connection is sent again, so its
item may be queued twice, as with Curator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.connection.paths import validate_path
from curatorish.framework import CuratorFramework
from curatorish.node_names import make_path
from curatorish.recipes._wakeup import Deadline, Wakeup
from curatorish.recipes.face import Recipe, recipe_method
from zkreg.proto.consts import CreateMode

#: The name prefix of a simple queue's items.
SIMPLE_ITEM_NAME = "qn-"


class NoSuchElementError(LookupError):
    """The queue is empty (Java's C{NoSuchElementException})."""


class SimpleDistributedQueue(Recipe):
    """
    ZooKeeper's plain queue of byte strings (Curator's C{SimpleDistributedQueue}):
    C{qn-<seq>} nodes with the data as it is.
    """

    def __init__(self, client: CuratorFramework | BlockingCuratorFramework, path: str) -> None:
        super().__init__(client)
        validate_path(path)
        self.path = path

    @recipe_method
    async def offer(self, data: bytes) -> bool:
        """Add C{data} at the tail. @return: True."""
        await self.client.create(
            make_path(self.path, SIMPLE_ITEM_NAME),
            bytes(data),
            mode=CreateMode.PERSISTENT_SEQUENTIAL,
            parents_as_containers=True,
        )
        return True

    async def _element(
        self, remove: bool, watcher: Callable[..., Any] | None = None
    ) -> bytes | None:
        """@return: the head (removed if C{remove}), None when empty.
        @raise errors.NoNodeError: when the queue node does not exist."""
        names = await self.client.get_children(self.path, watcher=watcher)
        for name in sorted(n for n in names if n.startswith(SIMPLE_ITEM_NAME)):
            item_path = make_path(self.path, name)
            try:
                data, _stat = await self.client.get_data(item_path)
                if remove:
                    await self.client.delete(item_path)
            except errors.NoNodeError:
                continue  # another consumer took it
            return data or b""
        return None

    async def _element_or_none(self, remove: bool) -> bytes | None:
        try:
            return await self._element(remove)
        except errors.NoNodeError:
            return None

    @recipe_method
    async def peek(self) -> bytes | None:
        """@return: the head without removing it, or None when empty."""
        return await self._element_or_none(False)

    @recipe_method
    async def element(self) -> bytes:
        """@return: the head without removing it. @raise NoSuchElementError: empty."""
        data = await self._element_or_none(False)
        if data is None:
            raise NoSuchElementError(self.path)
        return data

    @recipe_method
    async def remove(self) -> bytes:
        """@return: the head, removed. @raise NoSuchElementError: when empty."""
        data = await self._element_or_none(True)
        if data is None:
            raise NoSuchElementError(self.path)
        return data

    @recipe_method(waits=True)
    async def poll(self, timeout: float = 0.0) -> bytes | None:
        """
        @param timeout: seconds to wait for an item (0: do not wait).
        @return: the head, removed, or None if none came in time.
        """
        return await self._poll(Deadline(timeout))

    @recipe_method(waits=True)
    async def take(self) -> bytes:
        """@return: the head, removed, waiting as long as it takes."""
        data = await self._poll(Deadline(None))
        assert data is not None
        return data

    async def _poll(self, deadline: Deadline) -> bytes | None:
        while True:
            with Wakeup(self.client) as wakeup:
                try:
                    data = await self._element(True, wakeup.watcher)
                except errors.NoNodeError:
                    # No queue yet: wait for it to be made (by the first offer).
                    if await self.client.exists(self.path, watcher=wakeup.watcher) is not None:
                        continue
                    data = None
                if data is not None:
                    return data
                if not await wakeup.wait(deadline):
                    return None


__all__ = ["NoSuchElementError", "SIMPLE_ITEM_NAME", "SimpleDistributedQueue"]
