"""
Deleting nodes (L{DeleteOperations}, Curator's C{DeleteBuilder}): quietly, with the
descendants, and guaranteed (L{guaranteed_delete}: after the retry policy gives up on
a retryable error, the delete goes on in the background until it happens or the
client closes).

Separate from the other operations because the guaranteed delete is background work
of its own, which the protected create uses too (for an old session's node).
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger

from curatorish import errors
from curatorish.client_core import ClientCore
from curatorish.client_view import ClientView
from curatorish.connection.session import ZooKeeperConnection
from curatorish.logbridge import FRAMEWORK_NAMESPACE
from curatorish.node_names import make_path

_log = Logger(namespace=FRAMEWORK_NAMESPACE)


class DeleteOperations(ClientView):
    """
    The delete operation of L{curatorish.framework.CuratorFramework}.
    """

    def delete(
        self,
        path: str,
        *,
        version: int = -1,
        quietly: bool = False,
        children: bool = False,
        guaranteed: bool = False,
    ) -> defer.Deferred[None]:
        """
        Delete a node (Curator's C{delete()}).

        @param quietly: a missing node is not an error (C{quietly()}).
        @param children: delete its descendants first (C{deletingChildrenIfNeeded}).
        @param guaranteed: if the delete fails with a retryable error after all retries,
            keep retrying in the background until it succeeds (C{guaranteed()}); the
            error is still raised to the caller.
        """
        return self._deferred(self._delete(path, version, quietly, children, guaranteed))

    async def _delete(
        self, path: str, version: int, quietly: bool, children: bool, guaranteed: bool
    ) -> None:
        full = self.fix_path(path)
        zk = self._core.connection
        try:
            await self._run(lambda: _delete_once(zk, full, version, children, quietly))
        except Exception as error:
            if guaranteed and self._core.retry_policy.allow_retry_on(error):
                _log.info("Guaranteed delete of {path} continues in the background", path=full)
                self._core.run_in_background(
                    guaranteed_delete(self._core, full, version, children),
                    f"guaranteed delete of {full}",
                )
            raise


async def guaranteed_delete(
    core: ClientCore, full: str, version: int = -1, children: bool = False
) -> None:
    """
    Delete C{full} (a connection-level path), a missing node counting as deleted,
    retrying until it is done or the client closes (L{ClientCore.retry_until_done}).
    """
    zk = core.connection
    await core.retry_until_done(lambda: _delete_once(zk, full, version, children, True))
    _log.info("Guaranteed delete of {path} done", path=full)


async def _delete_once(
    zk: ZooKeeperConnection, full: str, version: int, children: bool, quietly: bool
) -> None:
    try:
        try:
            await zk.delete(full, version)
        except errors.NotEmptyError:
            if not children:
                raise
            await _delete_children(zk, full)
            await zk.delete(full, version)
    except errors.NoNodeError:
        if not quietly:
            raise


async def _delete_children(zk: ZooKeeperConnection, full: str) -> None:
    try:
        names = await zk.get_children(full)
    except errors.NoNodeError:
        return
    for name in names:
        child = make_path(full, name)
        await _delete_children(zk, child)
        try:
            await zk.delete(child)
        except errors.NoNodeError:
            pass


__all__ = ["DeleteOperations", "guaranteed_delete"]
