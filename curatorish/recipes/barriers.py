"""
Barriers (Curator's C{recipes.barriers}): a single barrier node that waiters wait to
see deleted, and a double barrier that a fixed number of members enter and leave
together.

Znode layout, as Curator 5.4 (so Java and Python processes share one barrier):

  - L{DistributedBarrier}: the barrier is the node C{path} itself (created with
    container parents, the client's default data); it is open when the node is absent.
  - L{DistributedDoubleBarrier}: each member is an ephemeral child C{path/<uuid>}; the
    last member to enter creates C{path/ready}, which releases everyone; leaving, the
    members delete their nodes lowest-last (the lowest waits for the highest, the
    others for the lowest), and the one that finds no members left deletes C{ready}.

Connection states: waiting continues through C{SUSPENDED} (the reads wait for the
connection through the client's retry loop); on C{LOST} and C{RECONNECTED} every waiter
reads again, since the watches of an expired session are gone.  A double-barrier member
whose session expired has lost its ephemeral node: C{enter} goes on waiting with the
node recreated, C{leave} treats the node as gone.
"""

from __future__ import annotations

import uuid

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.connection.paths import validate_path
from curatorish.framework import CuratorFramework
from curatorish.node_names import make_path
from curatorish.recipes._wakeup import Deadline, Wakeup
from curatorish.recipes.face import Recipe, recipe_method
from zkreg.proto.consts import CreateMode

#: The double barrier's release node (Curator's C{READY_NODE}).
READY_NODE = "ready"

#: How many times a member's node is created when its container parents keep
#: being reaped under it (see L{DistributedDoubleBarrier._create_our_node}).
_CREATE_ATTEMPTS = 5


class DistributedBarrier(Recipe):
    """
    A barrier node: L{set_barrier} closes it, L{remove_barrier} opens it, and
    L{wait_on_barrier} waits until it is open (Curator's C{DistributedBarrier}).
    """

    def __init__(self, client: CuratorFramework | BlockingCuratorFramework, path: str) -> None:
        super().__init__(client)
        validate_path(path)
        self.path = path

    @recipe_method
    async def set_barrier(self) -> None:
        """Create the barrier node (an existing barrier is left as it is)."""
        try:
            await self.client.create(self.path, parents_as_containers=True)
        except errors.NodeExistsError:
            pass

    @recipe_method
    async def remove_barrier(self) -> None:
        """Delete the barrier node, releasing every waiter (absent is fine)."""
        await self.client.delete(self.path, quietly=True)

    @recipe_method(waits=True)
    async def wait_on_barrier(self, timeout: float | None = None) -> bool:
        """
        Wait until the barrier node does not exist.

        @param timeout: seconds; None waits forever.
        @return: True when the barrier is open, False when the timeout passed first.
        """
        deadline = Deadline(timeout)
        while True:
            with Wakeup(self.client) as wakeup:
                if await self.client.exists(self.path, watcher=wakeup.watcher) is None:
                    return True
                if not await wakeup.wait(deadline):
                    return False


class DistributedDoubleBarrier(Recipe):
    """
    Members L{enter} together once C{member_qty} have arrived, and L{leave} together
    once all have left (Curator's C{DistributedDoubleBarrier}).
    """

    def __init__(
        self, client: CuratorFramework | BlockingCuratorFramework, path: str, member_qty: int
    ) -> None:
        super().__init__(client)
        validate_path(path)
        if member_qty <= 0:
            raise ValueError("member_qty cannot be 0")
        self.path = path
        self.member_qty = member_qty
        self._our_name = str(uuid.uuid4())
        self._our_path = make_path(path, self._our_name)
        self._ready_path = make_path(path, READY_NODE)

    async def _create_our_node(self) -> None:
        """
        Create this member's ephemeral node and its container parents.

        An empty container parent (the barrier node, or an ancestor emptied by an
        earlier barrier) can be reaped by the server between the framework's
        mkdirs and the create of our node, which then fails with C{NoNodeError}
        (Curator 5.4's C{creatingParentContainersIfNeeded} has the same window).
        Each failure needs a reaper sweep to land inside that window, so trying
        again makes the parents anew and succeeds; a few rounds bound it.
        """
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                await self.client.create(
                    self._our_path, mode=CreateMode.EPHEMERAL, parents_as_containers=True
                )
                return
            except errors.NodeExistsError:
                return
            except errors.NoNodeError:
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise

    @recipe_method(waits=True)
    async def enter(self, timeout: float | None = None) -> bool:
        """
        Join, and wait until C{member_qty} members have joined.

        @param timeout: seconds; None waits forever.
        @return: True when the barrier was entered, False on timeout (this member's
            node stays: call L{leave} to withdraw).
        """
        deadline = Deadline(timeout)
        created = False
        while True:
            with Wakeup(self.client) as wakeup:
                ready = await self.client.exists(self._ready_path, watcher=wakeup.watcher)
                if not created or await self.client.exists(self._our_path) is None:
                    await self._create_our_node()
                    created = True
                if ready is not None:
                    return True
                children = await self.client.get_children(self.path)
                if len(children) >= self.member_qty:
                    try:
                        await self.client.create(self._ready_path)
                    except errors.NodeExistsError:
                        pass
                    return True
                if not await wakeup.wait(deadline):
                    return False

    @recipe_method(waits=True)
    async def leave(self, timeout: float | None = None) -> bool:
        """
        Leave, and wait until every member has left.

        @param timeout: seconds; None waits forever.
        @return: True when all left, False on timeout.
        """
        deadline = Deadline(timeout)
        our_node_should_exist = True
        result = True
        while True:
            with Wakeup(self.client) as wakeup:
                try:
                    names = await self.client.get_children(self.path)
                except errors.NoNodeError:
                    names = []
                members = sorted(name for name in names if name != READY_NODE)
                if not members:
                    break
                if self._our_name not in members and our_node_should_exist:
                    # Our ephemeral went with an expired session: we have left.
                    our_node_should_exist = False
                if len(members) == 1:
                    if our_node_should_exist:
                        await self.client.delete(self._our_path, quietly=True)
                    break
                if members[0] == self._our_name:
                    watched = make_path(self.path, members[-1])
                    stat = await self.client.exists(watched, watcher=wakeup.watcher)
                else:
                    watched = make_path(self.path, members[0])
                    stat = await self.client.exists(watched, watcher=wakeup.watcher)
                    if our_node_should_exist:
                        await self.client.delete(self._our_path, quietly=True)
                        our_node_should_exist = False
                if stat is not None and not await wakeup.wait(deadline):
                    result = False
                    break
        await self.client.delete(self._ready_path, quietly=True)
        return result


__all__ = ["DistributedBarrier", "DistributedDoubleBarrier", "READY_NODE"]
