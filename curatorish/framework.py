"""
A Curator-style client: Apache Curator's C{CuratorFramework} in Pythonic form.

Builder chains become keyword arguments::

    client.create().creatingParentsIfNeeded().withMode(EPHEMERAL).forPath(p, data)
    await client.create(p, data, mode=CreateMode.EPHEMERAL, parents=True)

Every operation returns a Deferred (so it can be awaited under C{ensureDeferred}) and
runs in a retry loop (L{RetryLoop}) driven by the client's retry policy: before each
attempt the loop waits, up to the connection timeout, for a connection; a failure
the policy calls retryable (connection loss, operation timeout, session moved,
session expired) is retried after the policy's pause, anything else is the answer.

On top of the connection (L{curatorish.connection}) the framework adds Curator's
connection states and listeners (L{curatorish.state}), namespaces, an ACL provider,
default data, gzip compression per call, protected creates (C{_c_<uuid>-name} with
recovery after a connection loss), guaranteed deletes (retried in the background until
they succeed), and transactions with per-op results.
"""

from __future__ import annotations

import gzip
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.connection import operations as multi_ops
from curatorish.connection.client_state import ClientState
from curatorish.connection.operations import check_data
from curatorish.connection.paths import validate_path
from curatorish.connection.sasl import SASLConfig
from curatorish.connection.session import ZooKeeperConnection
from curatorish.connection.watches import WatchedEvent, Watcher
from curatorish.retry import ExponentialBackoffRetry, RetryPolicy
from curatorish.state import (
    ConnectionState,
    ConnectionStateErrorPolicy,
    ConnectionStateListener,
    ConnectionStateManager,
    StandardConnectionStateErrorPolicy,
)
from zkreg.proto.consts import OPEN_ACL_UNSAFE, AddWatchMode, CreateMode, WatcherType
from zkreg.proto.records import Stat

_log = Logger()

T = TypeVar("T")

#: Curator's defaults (C{CuratorFrameworkFactory}).
DEFAULT_SESSION_TIMEOUT_MS = 60_000
DEFAULT_CONNECTION_TIMEOUT_MS = 15_000

#: The prefix of protected node names (C{ProtectedUtils.PROTECTED_PREFIX}).
PROTECTED_PREFIX = "_c_"
_PROTECTED_PREFIX_WITH_UUID_LENGTH = len(PROTECTED_PREFIX) + 36 + 1


def local_address_bytes() -> bytes:
    """
    Curator's default node data: this host's address as text (C{getLocalAddress}).
    """
    try:
        return socket.gethostbyname(socket.gethostname()).encode("ascii")
    except OSError:
        return b"127.0.0.1"


def make_path(parent: str, child: str | None) -> str:
    """
    Join paths as Curator's C{ZKPaths.makePath} does (no doubled or trailing slashes).
    """
    parent = "/" + parent.strip("/") if parent.strip("/") else ""
    if child:
        child = child.strip("/")
    return (parent + "/" + child) if child else (parent or "/")


def split_path(path: str) -> tuple[str, str]:
    """
    @return: C{(parent, name)} of C{path}; the parent of a top-level node is C{/}.
    """
    index = path.rfind("/")
    if index <= 0:
        return "/", path[index + 1 :]
    return path[:index], path[index + 1 :]


def protected_name(name: str, protected_id: str) -> str:
    """
    @return: C{_c_<protected_id>-<name>}.
    """
    return f"{PROTECTED_PREFIX}{protected_id}-{name}"


def is_protected_name(name: str) -> bool:
    """
    @return: whether C{name} has the protected prefix with a valid UUID.
    """
    if len(name) <= _PROTECTED_PREFIX_WITH_UUID_LENGTH or not name.startswith(PROTECTED_PREFIX):
        return False
    if name[_PROTECTED_PREFIX_WITH_UUID_LENGTH - 1] != "-":
        return False
    try:
        uuid.UUID(name[len(PROTECTED_PREFIX) : _PROTECTED_PREFIX_WITH_UUID_LENGTH - 1])
    except ValueError:
        return False
    return True


def normalize_protected(name: str) -> str:
    """
    @return: the name without its protected prefix (Curator's C{ProtectedUtils.normalize}).
    """
    return name[_PROTECTED_PREFIX_WITH_UUID_LENGTH:] if is_protected_name(name) else name


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


class Created(NamedTuple):
    """
    What L{CuratorFramework.create} answers: the created path (with the sequence number
    and protected prefix, without the namespace) and the node's stat.
    """

    path: str
    stat: Stat | None


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


def _decompressed(read: tuple[bytes | None, Stat]) -> tuple[bytes | None, Stat]:
    """
    @return: a read's C{(data, stat)} with the data gunzipped (C{decompressed()}).
    """
    data, stat = read
    return (gzip.decompress(data) if data else data), stat


class RetryLoop:
    """
    Run an operation until it succeeds, fails for good, or the policy gives up
    (Curator's C{RetryLoop.callWithRetry}).
    """

    def __init__(self, core: _Core) -> None:
        self._core = core

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        first_error: Exception | None = None,
        started: float | None = None,
    ) -> T:
        """
        @param first_error: the failure of an attempt already made (by the caller's
            fast path, L{CuratorFramework._call}), treated as this loop's first.
        @param started: when that first attempt started (the policies' elapsed time).
        """
        core = self._core
        if started is None:
            started = core.reactor.seconds()
        retry_count = 0
        error = first_error
        while True:
            if error is not None:
                pause_ms = self._pause_before_retry(error, retry_count, started)
                if pause_ms is None:
                    raise error
                retry_count += 1
                if pause_ms > 0:
                    await task.deferLater(core.reactor, pause_ms / 1000.0)
            try:
                core.check_open()
                await core.block_until_connected_or_timed_out()
                return await attempt()
            except Exception as caught:
                error = caught

    def _pause_before_retry(self, error: Exception, retry_count: int, started: float) -> int | None:
        """
        @return: the pause in milliseconds before retrying after C{error} (the
            C{retry_count}-th failure), or L{None} when it is the answer.
        """
        core = self._core
        if core.closed or not core.retry_policy.allow_retry_on(error):
            return None
        pauses: list[int] = []
        elapsed_ms = int((core.reactor.seconds() - started) * 1000)
        if not core.retry_policy.allow_retry(retry_count, elapsed_ms, pauses.append):
            _log.warn(
                "{kind}: {error}; giving up after {count} retries in {elapsed_ms} ms",
                kind=type(error).__name__,
                error=error,
                count=retry_count,
                elapsed_ms=elapsed_ms,
            )
            return None
        pause_ms = sum(pauses)
        _log.info(
            "{kind}: {error}; retry {count} in {pause_s:.1f} s",
            kind=type(error).__name__,
            error=error,
            count=retry_count + 1,
            pause_s=pause_ms / 1000.0,
        )
        return pause_ms


class _Core:
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

    def sleep(self, seconds: float) -> defer.Deferred[None]:
        return task.deferLater(self.reactor, seconds)


class _NamespaceWatcher:
    """
    A watcher seen through a namespace: it gets paths without the namespace, and two
    wrappers of one watcher in one namespace are equal (so removal finds them).
    """

    __slots__ = ("watcher", "namespace_path")

    def __init__(self, watcher: Watcher, namespace_path: str) -> None:
        self.watcher = watcher
        self.namespace_path = namespace_path

    def __call__(self, event: WatchedEvent) -> Any:
        path = event.path
        if path is not None:
            path = _unfix(self.namespace_path, path)
        return self.watcher(WatchedEvent(event.type, event.state, path))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _NamespaceWatcher)
            and other.watcher == self.watcher
            and other.namespace_path == self.namespace_path
        )

    def __hash__(self) -> int:
        return hash((self.watcher, self.namespace_path))


def _unfix(namespace_path: str, path: str) -> str:
    if namespace_path and namespace_path != "/" and path.startswith(namespace_path):
        if len(path) == len(namespace_path):
            return "/"
        if path[len(namespace_path)] == "/":
            return path[len(namespace_path) :]
    return path


class TransactionOps:
    """
    Builds the ops of a transaction in a client's namespace (Curator's
    C{transactionOp()}); pass them to L{CuratorFramework.transaction}.
    """

    def __init__(self, client: CuratorFramework) -> None:
        self._client = client

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
        client = self._client
        full = client.fix_path(path, CreateMode(mode).is_sequential)
        payload = client._payload(data, compress)
        return multi_ops.CreateOp(full, payload, tuple(client._acl_for(full, acl)), mode, ttl)

    def delete(self, path: str, *, version: int = -1) -> multi_ops.DeleteOp:
        return multi_ops.DeleteOp(self._client.fix_path(path), version)

    def set_data(
        self, path: str, data: bytes, *, version: int = -1, compress: bool = False
    ) -> multi_ops.SetDataOp:
        payload = self._client._payload(data, compress)
        return multi_ops.SetDataOp(self._client.fix_path(path), payload, version)

    def check(self, path: str, *, version: int) -> multi_ops.CheckOp:
        return multi_ops.CheckOp(self._client.fix_path(path), version)


class CuratorFramework:
    """
    The client (Curator's C{CuratorFramework}); see the module docstring.

    @ivar namespace: this view's namespace (C{None} for the root view).
    @ivar zookeeper: the underlying L{ZooKeeperConnection} (Curator's
        C{getZookeeperClient().getZooKeeper()}).
    """

    def __init__(
        self,
        connect_string: str,
        *,
        retry_policy: RetryPolicy | None = None,
        reactor: Any = None,
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        connection_timeout_ms: int = DEFAULT_CONNECTION_TIMEOUT_MS,
        namespace: str | None = None,
        acl_provider: ACLProvider | None = None,
        auth_info: Sequence[tuple[str, str | bytes]] = (),
        default_data: bytes | None = None,
        can_be_read_only: bool = False,
        session_expiration_percent: int = 100,
        connection_state_error_policy: ConnectionStateErrorPolicy | None = None,
        request_timeout_ms: int | None = None,
        reconnect_delay_ms: int = 1000,
        reconnect_jitter_ms: int = 1000,
        connection: ZooKeeperConnection | None = None,
        tls: Any = None,
        sasl: SASLConfig | Mapping[str, Any] | None = None,
    ) -> None:
        """
        @param connect_string: C{"host:port,host:port[/chroot]"}.
        @param retry_policy: default C{ExponentialBackoffRetry(1000, 3)}.
        @param session_timeout_ms: requested session timeout (Curator: 60 s).
        @param connection_timeout_ms: how long an operation waits for a connection
            before failing with a (retryable) connection loss (Curator: 15 s).
        @param namespace: prefix every path with C{/namespace} (created on first use).
        @param auth_info: C{(scheme, credential)} pairs sent on every connection.
        @param default_data: data of nodes created without data; Curator's default
            is this host's IP address.
        @param session_expiration_percent: simulated expiration (L{ConnectionStateManager}).
        @param request_timeout_ms: per-request timeout of the connection (none by default).
        @param reconnect_delay_ms: pause after every server was tried in vain.
        @param reconnect_jitter_ms: random pause up to this before each reconnect.
        @param tls: connect over TLS (a server's secure port): a
            L{curatorish.TLSConfig} (PEM C{ca}, C{cert}, C{key}) or Twisted client TLS
            options such as C{optionsForClientTLS(host, trustRoot, clientCertificate)}.
        @param sasl: authenticate every connection with SASL DIGEST-MD5 before it is
            used: a L{curatorish.SASLConfig} (C{username}, C{password}) or kazoo's
            C{sasl_options} mapping; needs C{pure-sasl} (C{pip install 'zkreg[sasl]'}).
            Refused credentials end the client: state C{LOST}, operations fail with
            L{errors.AuthFailedError}.
        @param connection: a connection built by the caller (then C{connect_string},
            the session and request options above are its business); for tests.
        """
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        if connection is None:
            connection = ZooKeeperConnection(
                connect_string,
                reactor,
                session_timeout_ms=session_timeout_ms,
                can_be_read_only=can_be_read_only,
                request_timeout_ms=request_timeout_ms,
                reconnect_delay_ms=reconnect_delay_ms,
                reconnect_jitter_ms=reconnect_jitter_ms,
                tls=tls,
                sasl=sasl,
            )
        for scheme, credential in auth_info:
            connection.add_auth_info(scheme, credential)
        core = _Core(
            connection,
            reactor,
            retry_policy or ExponentialBackoffRetry(1000, 3),
            connection_timeout_ms,
            session_timeout_ms,
            session_expiration_percent,
            acl_provider or ACLProvider(),
            local_address_bytes() if default_data is None else default_data,
            connection_state_error_policy or StandardConnectionStateErrorPolicy(),
        )
        self._init_view(core, namespace)
        core.state_manager._client = self

    @classmethod
    def _view(cls, core: _Core, namespace: str | None) -> CuratorFramework:
        view = cls.__new__(cls)
        view._init_view(core, namespace)
        return view

    def _init_view(self, core: _Core, namespace: str | None) -> None:
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
        self.ops = TransactionOps(self)

    # -- lifecycle --------------------------------------------------------------------

    @property
    def zookeeper(self) -> ZooKeeperConnection:
        return self._core.connection

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._core.retry_policy

    @property
    def connection_state_error_policy(self) -> ConnectionStateErrorPolicy:
        return self._core.error_policy

    @property
    def state(self) -> ConnectionState | None:
        """
        The current Curator connection state (L{None} before the first connection).
        """
        return self._core.state_manager.current_state

    @property
    def framework_state(self) -> str:
        """
        Curator's C{getState()}: C{"LATENT"} before L{start}, C{"STARTED"}, then
        C{"STOPPED"} after L{close}.
        """
        if self._core.closed:
            return "STOPPED"
        return "STARTED" if self._core.started else "LATENT"

    @property
    def is_started(self) -> bool:
        return self._core.started and not self._core.closed

    def start(self) -> None:
        """
        Start connecting.  Operations then wait (up to the connection timeout) for it.
        """
        core = self._core
        if core.started:
            raise RuntimeError("Cannot be started more than once")
        core.started = True
        core.state_manager.start()
        core.connection.start()

    def close(self) -> defer.Deferred[None]:
        """
        Close the session (ephemerals go now) and stop background work.
        """
        core = self._core
        if core.closed:
            return defer.succeed(None)
        core.closed = True
        for running in list(core.background):
            running.cancel()
        core.state_manager.close()
        return core.connection.close()

    def block_until_connected(self, timeout_s: float | None = None) -> defer.Deferred[bool]:
        """
        @return: Deferred firing C{True} once connected, C{False} when C{timeout_s}
            passes first.
        """
        return self._core.state_manager.wait_until_connected(timeout_s)

    def add_connection_state_listener(self, listener: ConnectionStateListener) -> None:
        """
        Call C{listener(client, state)} on each L{ConnectionState} change, in order,
        from the reactor's queue (Curator's C{getConnectionStateListenable().addListener}).
        """
        self._core.state_manager.add_listener(listener)

    def remove_connection_state_listener(self, listener: ConnectionStateListener) -> None:
        """
        Stop calling C{listener}.
        """
        self._core.state_manager.remove_listener(listener)

    def using_namespace(self, namespace: str | None) -> CuratorFramework:
        """
        @return: a view of this client whose paths are under C{/namespace} (L{None}: the
            root).  Views share the connection; closing one closes all.
        """
        return CuratorFramework._view(self._core, namespace)

    @property
    def session_id(self) -> int:
        """
        The current session id (0 before the first connection; a new one after an
        expiry).
        """
        return self._core.connection.session_id

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
        return _unfix(self._namespace_path, path)

    def _wrap(self, watcher: Watcher | None) -> Watcher | None:
        if watcher is None or not self._namespace_path:
            return watcher
        return _NamespaceWatcher(watcher, self._namespace_path)

    def _acl_for(self, full_path: str, acl: Sequence[Any] | None) -> Sequence[Any]:
        if acl:
            return acl
        provider = self._core.acl_provider
        return provider.get_acl_for_path(full_path) or provider.get_default_acl()

    def _payload(self, data: bytes | None, compress: bool) -> bytes:
        check_data(data, None)
        payload = self._core.default_data if data is None else data
        return gzip.compress(payload) if compress else payload

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
                await zk.create(sub_path, b"", self._acl_for(sub_path, None), mode)
            except errors.NodeExistsError:
                pass

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

    # -- create -----------------------------------------------------------------------

    def create(
        self,
        path: str,
        data: bytes | None = None,
        *,
        mode: CreateMode = CreateMode.PERSISTENT,
        acl: Sequence[Any] | None = None,
        ttl: int | None = None,
        parents: bool = False,
        parents_as_containers: bool = False,
        protected: bool = False,
        or_set_data: bool = False,
        set_data_version: int = -1,
        idempotent: bool = False,
        compress: bool = False,
    ) -> defer.Deferred[Created]:
        """
        Create a node (Curator's C{create()}).

        @param data: the node's data; L{None} means the client's default data.
        @param mode: a L{CreateMode} (CONTAINER and the TTL modes included).
        @param acl: the node's ACL; default from the ACL provider.
        @param ttl: milliseconds, for the TTL modes.
        @param parents: create missing parents (C{creatingParentsIfNeeded}).
        @param parents_as_containers: ... as containers (C{creatingParentContainersIfNeeded}).
        @param protected: name the node C{_c_<uuid>-<name>}, so that after a connection
            loss the client can find out whether its create happened
            (C{withProtection}); always use it for sequential and ephemeral nodes
            whose creation you must not lose or duplicate.
        @param or_set_data: when the node exists, set its data instead (C{orSetData}).
        @param set_data_version: the version for that set-data.
        @param idempotent: succeed if the node exists with our data at version 0
            (a retry of a create that did happen).
        @param compress: gzip the data.
        @return: Deferred firing with L{Created}C{(path, stat)}.
        @raise TypeError: (at once) when C{data} is not bytes.
        """
        check_data(data, path)
        return self._deferred(
            self._create(
                path,
                data,
                CreateMode(mode),
                acl,
                ttl,
                parents or parents_as_containers,
                parents_as_containers,
                protected,
                or_set_data,
                set_data_version,
                idempotent,
                compress,
            )
        )

    async def _create(
        self,
        path: str,
        data: bytes | None,
        mode: CreateMode,
        acl: Sequence[Any] | None,
        ttl: int | None,
        parents: bool,
        parents_as_containers: bool,
        protected: bool,
        or_set_data: bool,
        set_data_version: int,
        idempotent: bool,
        compress: bool,
    ) -> Created:
        core = self._core
        zk = core.connection
        full = self.fix_path(path, mode.is_sequential)
        payload = self._payload(data, compress)
        protected_id = str(uuid.uuid4()) if protected else None
        if protected_id is not None:
            parent, name = split_path(full)
            full = make_path(parent, protected_name(name, protected_id))
        node_acl = self._acl_for(full, acl)
        first_time = True
        session_of_create = 0

        async def attempt() -> Created:
            nonlocal first_time, session_of_create
            local_first = first_time
            first_time = False
            if protected_id is not None and session_of_create == 0 and mode.is_ephemeral:
                session_of_create = zk.session_id
            created: tuple[str, Stat | None] | None = None
            if not local_first and protected_id is not None:
                created = await self._find_protected_node(
                    full, protected_id, mode, session_of_create
                )
                if created is not None and mode.is_ephemeral:
                    session_of_create = zk.session_id
            if created is None:
                try:
                    try:
                        created = await zk.create(full, payload, node_acl, mode, ttl)
                    except errors.NoNodeError:
                        if not parents:
                            raise
                        await self._mkdirs(
                            full, make_last=False, as_containers=parents_as_containers
                        )
                        created = await zk.create(full, payload, node_acl, mode, ttl)
                except errors.NodeExistsError:
                    if or_set_data:
                        stat = await zk.set_data(full, payload, set_data_version)
                        created = (full, stat)
                    elif idempotent:
                        existing, stat = await zk.get_data(full)
                        if stat.version == 0 and existing == payload:
                            created = (full, stat)
                        else:
                            raise
                    else:
                        raise
            if core.debug_fail_after_next_create > 0:
                core.debug_fail_after_next_create -= 1
                raise errors.ConnectionLossError(full, "injected after create, for testing")
            return Created(created[0], created[1])

        try:
            result = await self._run(attempt)
        except Exception as error:
            if protected_id is not None and (
                isinstance(error, errors.ConnectionLossError)
                or not isinstance(error, errors.ZooKeeperError)
            ):
                # We cannot know whether the node was made: find it and delete it.
                parent, _ = split_path(full)
                core.run_in_background(
                    self._find_and_delete_protected(parent, protected_id),
                    f"cleanup of protected create {full}",
                )
            raise
        return Created(self.unfix_path(result.path), result.stat)

    async def _find_protected_node(
        self, full: str, protected_id: str, mode: CreateMode, session_of_create: int
    ) -> tuple[str, Stat | None] | None:
        zk = self._core.connection
        parent, _ = split_path(full)
        prefix = protected_name("", protected_id)

        async def find() -> tuple[str, Stat | None] | None:
            try:
                children = await zk.get_children(parent)
            except errors.NoNodeError:
                return None
            for child in children:
                if child.startswith(prefix):
                    found = make_path(parent, child)
                    if mode.is_ephemeral and session_of_create != zk.session_id:
                        # An ephemeral of an old session will vanish: delete it now and
                        # create again in this session.
                        _log.info("Deleting old session's protected node {path}", path=found)
                        self._core.run_in_background(
                            self._guaranteed_delete_loop(found), f"delete of {found}"
                        )
                        return None
                    return found, await zk.exists(found)
            return None

        return await self._core.retry_loop.call(find)

    async def _find_and_delete_protected(self, parent: str, protected_id: str) -> None:
        zk = self._core.connection
        prefix = protected_name("", protected_id)

        async def find_and_delete() -> None:
            try:
                children = await zk.get_children(parent)
            except errors.NoNodeError:
                return
            for child in children:
                if child.startswith(prefix):
                    try:
                        await zk.delete(make_path(parent, child))
                    except errors.NoNodeError:
                        pass

        await self._retry_until_done(find_and_delete)

    async def _retry_until_done(self, work: Callable[[], Awaitable[None]]) -> None:
        """
        Background work that must happen eventually: retried through the policy, and
        after the policy gives up, again after a pause, until it succeeds, fails
        with a non-retryable error, or the client closes.
        """
        core = self._core
        while not core.closed:
            try:
                await core.retry_loop.call(work)
                return
            except Exception as error:
                if core.closed or not core.retry_policy.allow_retry_on(error):
                    raise
                await core.sleep(max(core.connection_timeout_ms / 1000.0, 0.1) / 10)

    # -- delete -----------------------------------------------------------------------

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
        try:
            await self._run(lambda: self._delete_once(full, version, children, quietly))
        except Exception as error:
            if guaranteed and self._core.retry_policy.allow_retry_on(error):
                _log.info("Guaranteed delete of {path} continues in the background", path=full)
                self._core.run_in_background(
                    self._guaranteed_delete_loop(full, version, children),
                    f"guaranteed delete of {full}",
                )
            raise

    async def _delete_once(self, full: str, version: int, children: bool, quietly: bool) -> None:
        zk = self._core.connection
        try:
            try:
                await zk.delete(full, version)
            except errors.NotEmptyError:
                if not children:
                    raise
                await self._delete_children(full)
                await zk.delete(full, version)
        except errors.NoNodeError:
            if not quietly:
                raise

    async def _delete_children(self, full: str) -> None:
        zk = self._core.connection
        try:
            names = await zk.get_children(full)
        except errors.NoNodeError:
            return
        for name in names:
            child = make_path(full, name)
            await self._delete_children(child)
            try:
                await zk.delete(child)
            except errors.NoNodeError:
                pass

    async def _guaranteed_delete_loop(
        self, full: str, version: int = -1, children: bool = False
    ) -> None:
        await self._retry_until_done(lambda: self._delete_once(full, version, children, True))
        _log.info("Guaranteed delete of {path} done", path=full)

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
        payload = self._payload(data, compress)
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

    # -- transactions -----------------------------------------------------------------

    def transaction(self, operations: Sequence[multi_ops.MultiOp]) -> defer.Deferred[list[Any]]:
        """
        Apply ops built with L{ops} (C{client.ops.create(...)}, C{.delete}, C{.set_data},
        C{.check}) atomically (Curator's C{transaction().forOperations()}).

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
                        self._retry_until_done(attempt), f"guaranteed watch removal on {full}"
                    )
                raise

        return self._deferred(run())


def new_client(
    connect_string: str, retry_policy: RetryPolicy | None = None, **options: Any
) -> CuratorFramework:
    """
    Curator's C{CuratorFrameworkFactory.newClient(connectString, retryPolicy)}.
    """
    return CuratorFramework(connect_string, retry_policy=retry_policy, **options)


__all__ = [
    "ACLProvider",
    "Created",
    "CuratorFramework",
    "RetryLoop",
    "TransactionOps",
    "TransactionResult",
    "is_protected_name",
    "make_path",
    "new_client",
    "normalize_protected",
    "protected_name",
    "split_path",
]
