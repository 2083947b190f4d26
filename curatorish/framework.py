"""
A Curator-style client: Apache Curator's C{CuratorFramework} in Pythonic form.

Builder chains become keyword arguments::

    client.create().creatingParentsIfNeeded().withMode(EPHEMERAL).forPath(p, data)
    await client.create(p, data, mode=CreateMode.EPHEMERAL, parents=True)

Every operation returns a Deferred (so it can be awaited under C{ensureDeferred}) and
runs in a retry loop (L{curatorish.retry_loop.RetryLoop}) driven by the client's retry
policy: before each attempt the loop waits, up to the connection timeout, for a
connection; a failure the policy calls retryable (connection loss, operation timeout,
session moved, session expired) is retried after the policy's pause, anything else is
the answer.

On top of the connection (L{curatorish.connection}) the framework adds Curator's
connection states and listeners (L{curatorish.state}), namespaces, an ACL provider,
default data, gzip compression per call, protected creates (C{_c_<uuid>-name} with
recovery after a connection loss), guaranteed deletes (retried in the background until
they succeed), and transactions with per-op results.

This module holds the client object itself: its options, the core its namespace views
share (L{curatorish.client_core}), its lifecycle and connection-state listeners.  The
operations are in one module per group, each a base class of L{CuratorFramework}:
L{curatorish.creates}, L{curatorish.deletes}, L{curatorish.transactions} and
L{curatorish.single_requests}, on L{curatorish.client_view} (namespace and running a
request).  L{ACLProvider}, L{Created} and L{TransactionResult} are importable from here
as before (they are public in L{curatorish}); their homes are
L{curatorish.client_core}, L{curatorish.creates} and L{curatorish.transactions}.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet import defer

from curatorish.client_core import ACLProvider, ClientCore
from curatorish.connection.sasl import SASLConfig
from curatorish.connection.session import ZooKeeperConnection
from curatorish.creates import Created, CreateOperations
from curatorish.deletes import DeleteOperations
from curatorish.retry import ExponentialBackoffRetry, RetryPolicy
from curatorish.single_requests import SingleRequests
from curatorish.state import (
    ConnectionState,
    ConnectionStateErrorPolicy,
    ConnectionStateListener,
    StandardConnectionStateErrorPolicy,
)
from curatorish.transactions import TransactionOperations, TransactionOps, TransactionResult

#: Curator's defaults (C{CuratorFrameworkFactory}).
DEFAULT_SESSION_TIMEOUT_MS = 60_000
DEFAULT_CONNECTION_TIMEOUT_MS = 15_000


def local_address_bytes() -> bytes:
    """
    Curator's default node data: this host's address as text (C{getLocalAddress}).
    """
    try:
        return socket.gethostbyname(socket.gethostname()).encode("ascii")
    except OSError:
        return b"127.0.0.1"


class CuratorFramework(CreateOperations, DeleteOperations, TransactionOperations, SingleRequests):
    """
    The client (Curator's C{CuratorFramework}); see the module docstring.

    @ivar namespace: this view's namespace (C{None} for the root view).
    @ivar zookeeper: the underlying L{ZooKeeperConnection} (Curator's
        C{getZookeeperClient().getZooKeeper()}).
    @ivar ops: builds the ops of a L{transaction} in this view's namespace.
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
        @param session_expiration_percent: simulated expiration
            (L{curatorish.state.ConnectionStateManager}).
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
        core = ClientCore(
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
        core.state_manager.set_client(self)

    @classmethod
    def _view(cls, core: ClientCore, namespace: str | None) -> CuratorFramework:
        view = cls.__new__(cls)
        view._init_view(core, namespace)
        return view

    def _init_view(self, core: ClientCore, namespace: str | None) -> None:
        super()._init_view(core, namespace)
        self.ops = TransactionOps(self, core)

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
    "TransactionResult",
    "new_client",
]
