"""
The operations of a client that are one request each (L{SingleRequests}): reads,
set-data, ACLs, sync, counts, ephemerals, identities, config and auth, and the
persistent watches and watch removal.

Separate from creates, deletes and transactions, which build on a request with
recovery or results of their own: each operation here fixes its path, wraps its
watcher and sends one request through the view's fast path (L{ClientView._call}).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer

from curatorish import errors
from curatorish.client_view import ClientView
from curatorish.connection.operations import check_data
from curatorish.connection.watches import Watcher
from zkreg.proto.consts import AddWatchMode, WatcherType
from zkreg.proto.records import Stat


def _decompressed(read: tuple[bytes | None, Stat]) -> tuple[bytes | None, Stat]:
    """
    @return: a read's C{(data, stat)} with the data gunzipped (C{decompressed()}).
    """
    data, stat = read
    return (gzip.decompress(data) if data else data), stat


class SingleRequests(ClientView):
    """
    The one-request operations of L{curatorish.framework.CuratorFramework}.
    """

    # -- reads and writes -------------------------------------------------------------

    def exists(self, path: str, *, watcher: Watcher | None = None) -> defer.Deferred[Stat | None]:
        """
        @return: Deferred firing with the node's stat, or L{None} (C{checkExists()}).
        """
        full = self.fix_path(path)
        wrapped = self._wrap(watcher)
        return self._call(lambda: self._core.connection.exists(full, wrapped))

    def get_data(
        self, path: str, *, watcher: Watcher | None = None, decompress: bool = False
    ) -> defer.Deferred[tuple[bytes | None, Stat]]:
        """
        @param decompress: gunzip the data (C{decompressed()}).
        @return: Deferred firing with C{(data, stat)} (C{getData().storingStatIn()}).
        """
        full = self.fix_path(path)
        wrapped = self._wrap(watcher)

        reading = self._call(lambda: self._core.connection.get_data(full, wrapped))
        if decompress:
            reading.addCallback(_decompressed)
        return reading

    def set_data(
        self, path: str, data: bytes, *, version: int = -1, compress: bool = False
    ) -> defer.Deferred[Stat]:
        """
        @return: Deferred firing with the new stat (C{setData().withVersion()}).
        @raise TypeError: (at once) when C{data} is not bytes.
        """
        check_data(data, path)
        full = self.fix_path(path)
        payload = self._core.payload(data, compress)
        return self._call(lambda: self._core.connection.set_data(full, payload, version))

    def get_children(
        self, path: str, *, watcher: Watcher | None = None, include_stat: bool = False
    ) -> defer.Deferred[Any]:
        """
        @return: Deferred firing with the child names (or C{(names, stat)}).
        """
        full = self.fix_path(path)
        wrapped = self._wrap(watcher)
        return self._call(lambda: self._core.connection.get_children(full, wrapped, include_stat))

    def get_acl(self, path: str) -> defer.Deferred[tuple[list[Any], Stat]]:
        """
        @return: Deferred firing with C{(acl list, stat)} (C{getACL()}).
        """
        full = self.fix_path(path)
        return self._call(lambda: self._core.connection.get_acl(full))

    def set_acl(self, path: str, acl: Sequence[Any], *, version: int = -1) -> defer.Deferred[Stat]:
        """
        Set the ACL if its version is C{version} (C{setACL().withVersion()}); fires with the stat.
        """
        full = self.fix_path(path)
        return self._call(lambda: self._core.connection.set_acl(full, acl, version))

    def sync(self, path: str) -> defer.Deferred[str]:
        """
        Wait until the server has caught up with the leader (C{sync()}); fires with the path.
        """
        full = self.fix_path(path)

        return self._call(lambda: self._core.connection.sync(full)).addCallback(self.unfix_path)

    def get_all_children_number(self, path: str) -> defer.Deferred[int]:
        """
        @return: Deferred firing with the number of descendants of C{path}.
        """
        full = self.fix_path(path)
        return self._call(lambda: self._core.connection.get_all_children_number(full))

    def get_ephemerals(self, prefix_path: str = "/") -> defer.Deferred[list[str]]:
        """
        @return: Deferred firing with this session's ephemerals whose paths start with C{prefix_path}.
        """
        full_prefix = self._namespace_path + prefix_path if self._namespace_path else prefix_path

        return self._call(lambda: self._core.connection.get_ephemerals(full_prefix)).addCallback(
            lambda found: [self.unfix_path(p) for p in found]
        )

    def who_am_i(self) -> defer.Deferred[list[tuple[str, str]]]:
        """
        @return: Deferred firing with this session's C{(scheme, user)} identities.
        """
        return self._call(self._core.connection.who_am_i)

    def get_config(
        self, *, watcher: Watcher | None = None
    ) -> defer.Deferred[tuple[bytes | None, Stat]]:
        """
        @return: Deferred firing with C{(data, stat)} of C{/zookeeper/config} (C{getConfig()}).
        """
        return self._call(lambda: self._core.connection.get_config(watcher))

    def add_auth(self, scheme: str, credential: str | bytes) -> defer.Deferred[None]:
        """
        Add an auth info now (C{add_auth("digest", "user:password")}); it is
        replayed on every reconnect.

        @param credential: bytes, or a C{str} sent as UTF-8 (as kazoo does).
        """
        return self._core.connection.add_auth(scheme, credential)

    # -- watches ----------------------------------------------------------------------

    def add_watch(
        self, path: str, watcher: Watcher, *, recursive: bool = False
    ) -> defer.Deferred[None]:
        """
        Add a persistent watch (C{watchers().add().withMode(PERSISTENT[_RECURSIVE])}).
        """
        full = self.fix_path(path)
        wrapped = self._wrap(watcher)
        assert wrapped is not None
        mode = AddWatchMode.PERSISTENT_RECURSIVE if recursive else AddWatchMode.PERSISTENT
        return self._call(lambda: self._core.connection.add_watch(full, wrapped, mode))

    def remove_watches(
        self,
        path: str,
        watcher: Watcher | None = None,
        *,
        watcher_type: WatcherType = WatcherType.Any,
        local: bool = False,
        quietly: bool = False,
        guaranteed: bool = False,
    ) -> defer.Deferred[None]:
        """
        Remove one watcher, or all of C{watcher_type} on C{path}
        (C{watchers().remove(w)} / C{removeAll()} with C{ofType}, C{locally},
        C{quietly}, C{guaranteed}).
        """
        full = self.fix_path(path)
        wrapped = self._wrap(watcher)
        zk = self._core.connection

        async def attempt() -> None:
            try:
                if wrapped is None:
                    await zk.remove_all_watches(full, watcher_type, local)
                else:
                    await zk.remove_watcher(full, wrapped, watcher_type, local)
            except errors.NoWatcherError:
                if not quietly:
                    raise

        async def run() -> None:
            try:
                await self._run(attempt)
            except Exception as error:
                if guaranteed and self._core.retry_policy.allow_retry_on(error):
                    self._core.run_in_background(
                        self._core.retry_until_done(attempt), f"guaranteed watch removal on {full}"
                    )
                raise

        return self._deferred(run())


__all__ = ["SingleRequests"]
