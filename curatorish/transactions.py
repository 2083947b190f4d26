"""
Transactions (Curator's C{transaction().forOperations()}): the ops built in a view's
namespace (L{TransactionOps}, C{client.ops}), applied atomically by
L{TransactionOperations.transaction}, each answered by a L{TransactionResult}.

Separate from the single-node operations because a transaction's ops are values built
ahead (with the namespace, the ACL provider and the default data applied then) and its
results are mapped back op by op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from twisted.internet import defer

from curatorish.client_core import ClientCore
from curatorish.client_view import ClientView
from curatorish.connection import multi_requests as multi_ops
from zkreg.proto.consts import CreateMode
from zkreg.proto.records import Stat


class TransactionResult(NamedTuple):
    """
    One op's result (Curator's C{CuratorTransactionResult}).

    @ivar op_type: C{"CREATE"}, C{"DELETE"}, C{"SET_DATA"} or C{"CHECK"}.
    @ivar for_path: the path the op named.
    @ivar result_path: for a create, the created path; else L{None}.
    @ivar result_stat: for a create (when the server returns it) or set-data, the stat.
    """

    op_type: str
    for_path: str
    result_path: str | None
    result_stat: Stat | None


class TransactionOps:
    """
    Builds the ops of a transaction in a client's namespace (Curator's
    C{transactionOp()}); pass them to L{TransactionOperations.transaction}.
    """

    def __init__(self, client: ClientView, core: ClientCore) -> None:
        """
        @param client: the view whose namespace the ops' paths are in.
        @param core: its core (ACL provider, default data).
        """
        self._client = client
        self._core = core

    def create(
        self,
        path: str,
        data: bytes | None = None,
        *,
        mode: CreateMode = CreateMode.PERSISTENT,
        acl: Sequence[Any] | None = None,
        ttl: int | None = None,
        compress: bool = False,
    ) -> multi_ops.CreateOp:
        full = self._client.fix_path(path, CreateMode(mode).is_sequential)
        payload = self._core.payload(data, compress)
        return multi_ops.CreateOp(full, payload, tuple(self._core.acl_for(full, acl)), mode, ttl)

    def delete(self, path: str, *, version: int = -1) -> multi_ops.DeleteOp:
        return multi_ops.DeleteOp(self._client.fix_path(path), version)

    def set_data(
        self, path: str, data: bytes, *, version: int = -1, compress: bool = False
    ) -> multi_ops.SetDataOp:
        payload = self._core.payload(data, compress)
        return multi_ops.SetDataOp(self._client.fix_path(path), payload, version)

    def check(self, path: str, *, version: int) -> multi_ops.CheckOp:
        return multi_ops.CheckOp(self._client.fix_path(path), version)


class TransactionOperations(ClientView):
    """
    The transaction operation of L{curatorish.framework.CuratorFramework}.
    """

    def transaction(self, operations: Sequence[multi_ops.MultiOp]) -> defer.Deferred[list[Any]]:
        """
        Apply ops built with L{ops<curatorish.framework.CuratorFramework.ops>}
        (C{client.ops.create(...)}, C{.delete}, C{.set_data}, C{.check}) atomically
        (Curator's C{transaction().forOperations()}).

        @return: Deferred firing with a L{TransactionResult} per op; a failed
            transaction fails with the failing op's error (its C{results} attribute
            holds every op's raw result).
        """
        operations = list(operations)

        return self._call(lambda: self._core.connection.multi(operations)).addCallback(
            lambda raw: [
                self._transaction_result(op, result)
                for op, result in zip(operations, raw, strict=False)
            ]
        )

    def _transaction_result(self, op: multi_ops.MultiOp, result: Any) -> TransactionResult:
        for_path = self.unfix_path(op.path)
        if isinstance(op, multi_ops.CreateOp):
            return TransactionResult(
                "CREATE", for_path, self.unfix_path(result.path), getattr(result, "stat", None)
            )
        if isinstance(op, multi_ops.DeleteOp):
            return TransactionResult("DELETE", for_path, None, None)
        if isinstance(op, multi_ops.SetDataOp):
            return TransactionResult("SET_DATA", for_path, None, result.stat)
        return TransactionResult("CHECK", for_path, None, None)


__all__ = ["TransactionOperations", "TransactionOps", "TransactionResult"]
