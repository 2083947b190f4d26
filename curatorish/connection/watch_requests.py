"""
The requests that manage watches on the server: adding a persistent (or persistent
recursive) watch, and removing watchers (checkWatches, removeWatches).

L{WatchRequests}, a part of L{curatorish.connection.session.ZooKeeperConnection}
(over L{curatorish.connection.operations.ZooKeeperOperations}), keeps the session's
L{WatchManager} (L{curatorish.connection.watches}) in step with the server: a
persistent watch is kept here once the server has set it, and a removed watcher is
dropped here (and told with a C{*WatchRemoved} event) once the server has dropped it,
or at once for a local removal.  Separate from the reads, whose one-shot watches come
with a read: these requests are about watches only.
"""

from __future__ import annotations

from twisted.internet import defer

from curatorish import errors
from curatorish.connection.operations import ZooKeeperOperations
from curatorish.connection.watches import PERSISTENT, PERSISTENT_RECURSIVE, WatchedEvent, Watcher
from zkreg.proto.consts import AddWatchMode, OpCode, WatcherType
from zkreg.proto.records import AddWatchRequest, CheckWatchesRequest, RemoveWatchesRequest


class WatchRequests(ZooKeeperOperations):
    """
    Adds and removes watches, for the session: over C{_submit}, the reply readers,
    C{_to_server}, C{_call_watcher}, C{_current_keeper_state} and the session's
    L{WatchManager} (L{ZooKeeperOperations}).
    """

    # -- watches ----------------------------------------------------------------------

    def add_watch(
        self, path: str, watcher: Watcher, mode: AddWatchMode = AddWatchMode.PERSISTENT
    ) -> defer.Deferred[None]:
        """
        Add a persistent (or persistent recursive) watch: it stays until removed, and
        a recursive one sees every change below C{path} too (no child events).
        """
        try:
            record = AddWatchRequest(self._to_server(path), int(mode))
        except ValueError as error:
            return defer.fail(error)
        kind = PERSISTENT if mode == AddWatchMode.PERSISTENT else PERSISTENT_RECURSIVE

        def complete(err: int, frame: bytes, offset: int) -> None:
            self._check(err, path)
            self.watches.add(kind, path, watcher)

        return self._submit(OpCode.addWatch, record, complete, path)

    def remove_watcher(
        self,
        path: str,
        watcher: Watcher,
        watcher_type: WatcherType = WatcherType.Any,
        local: bool = False,
    ) -> defer.Deferred[None]:
        """
        Remove one watcher (Java's C{removeWatches(path, watcher, type, local)}): the
        server is asked whether it has such a watch (checkWatches); the watcher is
        then dropped here and told with a C{*WatchRemoved} event.

        @param local: do not ask the server (works while disconnected).
        @raise errors.NoWatcherError: (in the Deferred) when there is no such watcher.
        """
        return self._remove_watches(path, watcher, watcher_type, local, OpCode.checkWatches)

    def remove_all_watches(
        self, path: str, watcher_type: WatcherType = WatcherType.Any, local: bool = False
    ) -> defer.Deferred[None]:
        """
        Remove every watcher of C{watcher_type} on C{path}, here and on the server
        (removeWatches).
        """
        return self._remove_watches(path, None, watcher_type, local, OpCode.removeWatches)

    def _remove_watches(
        self,
        path: str,
        watcher: Watcher | None,
        watcher_type: WatcherType,
        local: bool,
        opcode: int,
    ) -> defer.Deferred[None]:
        try:
            server_path = self._to_server(path)
        except ValueError as error:
            return defer.fail(error)
        if not self.watches.contains(path, watcher, watcher_type):
            return defer.fail(errors.NoWatcherError(path))

        def remove_here(_: object = None) -> None:
            for removed, event_type in self.watches.remove(path, watcher, watcher_type):
                event = WatchedEvent(event_type, self._current_keeper_state(), path)
                self._call_watcher(removed, event)

        if local:
            remove_here()
            return defer.succeed(None)
        # Java's wire types are Children, Data and Any; persistent ones go as Any.
        wire_type = watcher_type if watcher_type <= WatcherType.Any else WatcherType.Any
        record_class = (
            CheckWatchesRequest if opcode == OpCode.checkWatches else RemoveWatchesRequest
        )
        record = record_class(server_path, int(wire_type))
        return self._submit(opcode, record, self._reader(path, None), path).addCallback(remove_here)
