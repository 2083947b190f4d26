"""
What every namespace view of one client shares (L{ClientCore}): the connection, the
Curator connection states fed from the connection's keeper states, the retry loop and
policies, the ACL provider and default data, and the background work (guaranteed
operations) cancelled when the client closes.

Separate from the facade (L{curatorish.framework.CuratorFramework}) because a client
has one core and any number of views (C{using_namespace}); the views hold only their
namespace and reach everything else through the core.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.connection.client_state import ClientState
from curatorish.connection.operations import check_data
from curatorish.connection.session import ZooKeeperConnection
from curatorish.logbridge import FRAMEWORK_NAMESPACE
from curatorish.retry import RetryPolicy
from curatorish.retry_loop import RetryLoop
from curatorish.state import (
    ConnectionState,
    ConnectionStateErrorPolicy,
    ConnectionStateManager,
)
from zkreg.proto.consts import OPEN_ACL_UNSAFE

_log = Logger(namespace=FRAMEWORK_NAMESPACE)


class ACLProvider:
    """
    Chooses the ACL of nodes created without an explicit one (Curator's C{ACLProvider}).
    The default gives everyone everything (C{OPEN_ACL_UNSAFE}).
    """

    def get_default_acl(self) -> Sequence[Any]:
        return OPEN_ACL_UNSAFE

    def get_acl_for_path(self, path: str) -> Sequence[Any] | None:
        """
        @param path: the full path (namespace included).
        @return: the ACL for C{path}, or L{None} for the default.
        """
        return None


class ClientCore:
    """
    What every namespace view of one client shares: the connection, the state
    manager, the policies, the background (guaranteed) operations.
    """

    def __init__(
        self,
        connection: ZooKeeperConnection,
        reactor: Any,
        retry_policy: RetryPolicy,
        connection_timeout_ms: int,
        session_timeout_ms: int,
        session_expiration_percent: int,
        acl_provider: ACLProvider,
        default_data: bytes,
        error_policy: ConnectionStateErrorPolicy,
    ) -> None:
        self.connection = connection
        self.reactor = reactor
        self.retry_policy = retry_policy
        self.connection_timeout_ms = connection_timeout_ms
        self.acl_provider = acl_provider
        self.default_data = default_data
        self.error_policy = error_policy
        self.started = False
        self.closed = False
        self.state_manager = ConnectionStateManager(
            None,
            reactor,
            session_timeout_ms,
            session_expiration_percent,
            negotiated_timeout_ms=lambda: connection.negotiated_timeout_ms,
            inject_session_expiration=connection.inject_session_expiration,
        )
        self.retry_loop = RetryLoop(self)
        self.background: set[defer.Deferred[Any]] = set()
        #: Test hooks, as Curator's C{failNextCreateForTesting} and friends: each
        #: counts attempts that raise a connection loss at that point.
        self.debug_fail_before_next_operation = 0
        self.debug_fail_after_next_create = 0
        connection.add_state_listener(self._keeper_state_changed)

    def check_open(self) -> None:
        if self.closed:
            raise errors.ConnectionClosedError()
        if not self.started:
            raise RuntimeError("the client must be started (client.start()) first")

    def _keeper_state_changed(self, state: ClientState) -> None:
        manager = self.state_manager
        if state is ClientState.DISCONNECTED:
            manager.set_to_suspended()
        elif state is ClientState.AUTH_FAILED:
            # Refused credentials end the connection for good (Java's AUTH_FAILED):
            # the session is lost to this client, and nobody should wait for it.
            manager.set_to_suspended()
            manager.add_state_change(ConnectionState.LOST)
            manager.release_waiters()
        elif state is ClientState.EXPIRED:
            manager.add_state_change(ConnectionState.LOST)
        elif state is ClientState.CONNECTED:
            manager.add_state_change(ConnectionState.RECONNECTED)
        elif state is ClientState.CONNECTED_READ_ONLY:
            manager.add_state_change(ConnectionState.READ_ONLY)

    async def block_until_connected_or_timed_out(self) -> None:
        """
        Wait up to the connection timeout for a connection; then raise a (retryable)
        connection loss, as Curator's C{ConnectionState.checkTimeouts} does.
        """
        if self.connection.is_connected:
            return
        connected = await self.connection.wait_connected(self.connection_timeout_ms / 1000.0)
        if not connected:
            if self.closed:
                raise errors.ConnectionClosedError()
            if self.connection.state is ClientState.AUTH_FAILED:
                raise errors.AuthFailedError(None, self.connection.auth_failure)
            raise errors.ConnectionLossError(None, "not connected within the connection timeout")

    def acl_for(self, full_path: str, acl: Sequence[Any] | None) -> Sequence[Any]:
        """
        @return: C{acl}, or when it is empty the ACL provider's for C{full_path}.
        """
        if acl:
            return acl
        provider = self.acl_provider
        return provider.get_acl_for_path(full_path) or provider.get_default_acl()

    def payload(self, data: bytes | None, compress: bool) -> bytes:
        """
        @return: the bytes to store for C{data} (L{None}: the default data), gzipped
            with C{compress}.
        """
        check_data(data, None)
        payload = self.default_data if data is None else data
        return gzip.compress(payload) if compress else payload

    def run_in_background(self, work: Awaitable[Any], description: str) -> defer.Deferred[Any]:
        """
        Run C{work} without a caller waiting: failures are logged, and it is cancelled
        when the client closes.
        """
        running: defer.Deferred[Any] = defer.ensureDeferred(work)  # type: ignore[arg-type]
        self.background.add(running)

        def done(result: Any) -> Any:
            self.background.discard(running)
            if isinstance(result, Failure) and not result.check(
                defer.CancelledError, errors.ConnectionClosedError
            ):
                _log.failure("Background {what} failed", failure=result, what=description)
                return None
            return result

        running.addBoth(done)
        return running

    async def retry_until_done(self, work: Callable[[], Awaitable[None]]) -> None:
        """
        Background work that must happen eventually: retried through the policy, and
        after the policy gives up, again after a pause, until it succeeds, fails
        with a non-retryable error, or the client closes.
        """
        while not self.closed:
            try:
                await self.retry_loop.call(work)
                return
            except Exception as error:
                if self.closed or not self.retry_policy.allow_retry_on(error):
                    raise
                await self.sleep(max(self.connection_timeout_ms / 1000.0, 0.1) / 10)

    def sleep(self, seconds: float) -> defer.Deferred[None]:
        return task.deferLater(self.reactor, seconds)


__all__ = ["ACLProvider", "ClientCore"]
