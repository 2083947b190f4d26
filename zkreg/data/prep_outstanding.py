"""
The writes in flight as prep sees them: ZooKeeper's outstanding change records.

Prep validates each write against the tree I{plus} the changes of the writes already
prepped but not yet applied, so pipelined writes see each other exactly as if each had
been applied before the next arrived: versions, sequence numbers, existence, child
counts and ACLs.  This module holds that overlay: one L{Change} per node a write in
flight touches, found by path, forgotten once the applier reports the txn applied
(L{OutstandingChanges.committed}) or dropped when the writes in flight are abandoned
(L{OutstandingChanges.reset}); and the staging a multi's changes go into until every
one of its ops has passed.

It is separate from the rules of the operations (L{zkreg.data.prep_ops}) and of a
multi (L{zkreg.data.prep_multi}) because it knows nothing of any operation: it only
records and looks up node states, and it is the part of prep the rest of the pipeline
drives (the sequencer resets it, the applier forgets what it applied).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from zkreg.data.tree import DataTree


class Change:
    """
    A node as the writes in flight leave it (ZooKeeper's C{ChangeRecord}).

    Has the attributes of L{zkreg.data.node.Node} that prep reads, so lookups return
    either without copying.  C{deleted} marks a node a write in flight removes.
    """

    __slots__ = (
        "zxid",
        "path",
        "deleted",
        "version",
        "cversion",
        "aversion",
        "ephemeral_owner",
        "num_children",
        "acl",
    )

    def __init__(
        self,
        zxid: int,
        path: str,
        deleted: bool,
        version: int,
        cversion: int,
        aversion: int,
        ephemeral_owner: int,
        num_children: int,
        acl: Any,
    ) -> None:
        self.zxid = zxid
        self.path = path
        self.deleted = deleted
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeral_owner = ephemeral_owner
        self.num_children = num_children
        self.acl = acl


class OutstandingChanges:
    """
    The change records of the writes in flight, over the applied tree (a base of
    L{zkreg.data.prep.Prep}: the operations look nodes up with C{_lookup} and record
    what they change with C{_add}).

    @ivar tree: the applied state.
    """

    def __init__(self, tree: DataTree) -> None:
        self.tree = tree
        self._outstanding: deque[Change] = deque()
        self._latest: dict[str, Change] = {}
        #: The changes of the multi being prepped, by path and in order (L{None}: no
        #: multi): they become outstanding only if every op of the multi passed.
        self._staged: dict[str, Change] | None = None
        self._staged_order: list[Change] = []
        #: session id -> {path: number of outstanding changes of that path naming the
        #: session as ephemeral owner}: the candidates a closeSession must add to the
        #: tree's ephemerals, found without scanning every outstanding change.
        self._owned_in_flight: dict[int, dict[str, int]] = {}

    def committed(self, zxid: int) -> None:
        """
        Forget the changes of every txn up to C{zxid}: the tree now holds them.
        """
        outstanding = self._outstanding
        latest = self._latest
        owned_in_flight = self._owned_in_flight
        while outstanding and outstanding[0].zxid <= zxid:
            change = outstanding.popleft()
            path = change.path
            if latest.get(path) is change:
                del latest[path]
            owner = change.ephemeral_owner
            if owner and not change.deleted:
                owned = owned_in_flight.get(owner)
                if owned is not None:
                    left = owned.get(path, 0) - 1
                    if left > 0:
                        owned[path] = left
                    else:
                        owned.pop(path, None)
                        if not owned:
                            del owned_in_flight[owner]

    def reset(self) -> None:
        """Drop every outstanding change (the writes in flight were abandoned)."""
        self._outstanding.clear()
        self._latest.clear()
        self._owned_in_flight.clear()

    @property
    def outstanding_count(self) -> int:
        """Number of change records not yet applied."""
        return len(self._outstanding)

    def _lookup(self, path: str) -> Any:
        """The node at C{path} as the writes in flight leave it, or L{None}."""
        staged = self._staged
        if staged is not None:
            change = staged.get(path)
            if change is not None:
                return None if change.deleted else change
        change = self._latest.get(path)
        if change is not None:
            return None if change.deleted else change
        return self.tree.nodes.get(path)

    def _add(self, change: Change) -> None:
        staged = self._staged
        if staged is not None:
            staged[change.path] = change
            self._staged_order.append(change)
        else:
            self._outstanding.append(change)
            self._latest[change.path] = change
            owner = change.ephemeral_owner
            if owner and not change.deleted:
                owned = self._owned_in_flight.get(owner)
                if owned is None:
                    owned = self._owned_in_flight[owner] = {}
                owned[change.path] = owned.get(change.path, 0) + 1
