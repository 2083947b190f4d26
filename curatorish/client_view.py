"""
What every operation of a client stands on (L{ClientView}, the base of
L{curatorish.framework.CuratorFramework} and of its operation groups): the view's
namespace (adding it to paths, taking it off watcher events, creating it on first use)
and running a request, through the retry loop or at once when nothing can be in the way.

Separate so that each group of operations (creates, deletes, transactions, single
requests) is its own module on this one base, and the facade keeps only what makes
a client: its options, its core, its lifecycle and connection-state listeners.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.client_core import ClientCore
from curatorish.connection.paths import validate_path
from curatorish.connection.watches import Watcher
from curatorish.logbridge import FRAMEWORK_NAMESPACE
from curatorish.namespace import NamespaceWatcher, unfix_for_namespace
from zkreg.proto.consts import CreateMode

_log = Logger(namespace=FRAMEWORK_NAMESPACE)

T = TypeVar("T")


class ClientView:
    """
    One client seen through one namespace: the shared L{ClientCore} and this view's
    namespace.

    @ivar namespace: this view's namespace (C{None} for the root view).
    """

    _core: ClientCore
    namespace: str | None
    _namespace_path: str
    _namespace_ensured: bool

    def _init_view(self, core: ClientCore, namespace: str | None) -> None:
        if namespace:
            namespace = namespace.strip("/")
            try:
                validate_path("/" + namespace)
            except ValueError as error:
                raise ValueError(f"Invalid namespace: {namespace}, {error}") from None
        self._core = core
        self.namespace = namespace or None
        self._namespace_path = "/" + namespace if namespace else ""
        self._namespace_ensured = not namespace

    # -- paths ------------------------------------------------------------------------

    def fix_path(self, path: str, sequential: bool = False) -> str:
        """
        @return: the connection-level path of the application's C{path} (namespace added).
        """
        validate_path(path, sequential)
        if not self._namespace_path:
            return path
        return self._namespace_path if path == "/" else self._namespace_path + path

    def unfix_path(self, path: str) -> str:
        """
        @return: the application's path of a connection-level one (namespace removed).
        """
        return unfix_for_namespace(self._namespace_path, path)

    def _wrap(self, watcher: Watcher | None) -> Watcher | None:
        if watcher is None or not self._namespace_path:
            return watcher
        return NamespaceWatcher(watcher, self._namespace_path)

    async def _ensure_namespace(self) -> None:
        if self._namespace_ensured:
            return
        try:
            await self._core.retry_loop.call(
                lambda: self._mkdirs(self._namespace_path, make_last=True, as_containers=True)
            )
            self._namespace_ensured = True
        except errors.ZooKeeperError as error:
            _log.error("Ensure path threw exception: {error}", error=error)

    async def _mkdirs(self, full_path: str, make_last: bool, as_containers: bool) -> None:
        """
        Create the missing ancestors of C{full_path} (and itself with C{make_last}),
        as Curator's C{ZKPaths.mkdirs}: find the deepest existing one first, so no
        read access to the upper levels is needed.
        """
        zk = self._core.connection
        parts = [p for p in full_path.split("/") if p]
        wanted = parts if make_last else parts[:-1]
        prefixes = ["/" + "/".join(wanted[: i + 1]) for i in range(len(wanted))]
        first_missing = len(prefixes)
        while first_missing > 0 and await zk.exists(prefixes[first_missing - 1]) is None:
            first_missing -= 1
        mode = CreateMode.CONTAINER if as_containers else CreateMode.PERSISTENT
        for sub_path in prefixes[first_missing:]:
            try:
                await zk.create(sub_path, b"", self._core.acl_for(sub_path, None), mode)
            except errors.NodeExistsError:
                pass

    # -- running requests -------------------------------------------------------------

    async def _run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        await self._ensure_namespace()
        return await self._core.retry_loop.call(self._guarded(attempt))

    def _guarded(self, attempt: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        """
        @return: C{attempt}, failing first with a connection loss while the test hook
            C{debug_fail_before_next_operation} counts.
        """
        core = self._core

        async def guarded() -> T:
            if core.debug_fail_before_next_operation > 0:
                core.debug_fail_before_next_operation -= 1
                raise errors.ConnectionLossError(None, "injected for testing")
            return await attempt()

        return guarded

    def _deferred(self, coroutine: Awaitable[T]) -> defer.Deferred[T]:
        return defer.ensureDeferred(coroutine)  # type: ignore[arg-type]

    def _call(self, attempt: Callable[[], defer.Deferred[T]]) -> defer.Deferred[T]:
        """
        L{_run} for one request, without its coroutines while nothing needs them.

        When the client is open and connected, the namespace is made and no failure is
        injected, every check of L{_run}'s first round passes, so the request is sent
        at once and its own Deferred returned: about a third of the CPU of a read
        went to the five coroutines of the general path.  A failure of that first
        attempt goes on in the retry loop, as if the loop had made the attempt.
        """
        core = self._core
        if not (
            core.started
            and not core.closed
            and self._namespace_ensured
            and not core.debug_fail_before_next_operation
            and core.connection.is_connected
        ):
            return self._deferred(self._run(attempt))
        started = core.reactor.seconds()
        try:
            sent = attempt()
        except Exception as error:
            return self._retry(attempt, error, started)
        return sent.addErrback(self._retry_failed, attempt, started)

    def _retry_failed(
        self, failure: Failure, attempt: Callable[[], Awaitable[T]], started: float
    ) -> defer.Deferred[T]:
        if not isinstance(failure.value, Exception):
            return defer.fail(failure)
        return self._retry(attempt, failure.value, started)

    def _retry(
        self, attempt: Callable[[], Awaitable[T]], error: Exception, started: float
    ) -> defer.Deferred[T]:
        """
        Go on after the failure C{error} of a first attempt made by L{_call}.
        """
        return self._deferred(self._core.retry_loop.call(self._guarded(attempt), error, started))


__all__ = ["ClientView"]
