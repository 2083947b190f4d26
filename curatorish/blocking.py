"""
The blocking face of curatorish, for threaded programs.

Twisted's reactor runs once per process, so every blocking client shares one reactor
running in a background daemon thread, started on first use (or the reactor the
program already runs in another thread).  A blocking call hands the async operation
to the reactor thread and waits for its Deferred: there is one implementation of each
operation, L{curatorish.framework.CuratorFramework}, and this module only forwards.

Watchers and connection-state listeners given to a blocking client run on one event
thread per client (like Java's C{EventThread}), in order, so they may call the
blocking client themselves without blocking the reactor.

Never call a blocking client from the reactor thread (from a watcher of an I{async}
client, say): that would wait for itself, so it raises L{RuntimeError}.

The shared reactor thread itself (L{shared_reactor}, L{call_in_reactor},
L{in_reactor_thread}, L{release_shared_reactor}) lives in
L{curatorish.reactor_thread}; those names are imported here too because the README
documents them as C{curatorish.blocking}'s.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

from twisted.logger import Logger

from curatorish.connection.multi_requests import MultiOp
from curatorish.connection.session import ZooKeeperConnection
from curatorish.connection.watches import WatchedEvent, Watcher
from curatorish.creates import Created
from curatorish.framework import CuratorFramework
from curatorish.reactor_thread import (
    call_in_reactor,
    in_reactor_thread,
    release_shared_reactor,
    shared_reactor,
)
from curatorish.state import ConnectionState
from curatorish.transactions import TransactionOps, TransactionResult
from zkreg.proto.consts import CreateMode, WatcherType
from zkreg.proto.records import Stat

_log = Logger()


class EventThread:
    """
    Runs callbacks one at a time, in order, on a daemon thread.
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def post(self, callback: Callable[..., Any], *args: Any) -> None:
        self._queue.put((callback, args))

    def stop(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            callback, args = item
            try:
                callback(*args)
            except Exception:
                _log.failure("Callback {callback!r} raised", callback=callback)


class _EventThreadWatcher:
    """
    A watcher that runs another on an event thread.  Two wrappers of one watcher for
    one event thread are equal, so the connection's watch bookkeeping (each watcher
    once per path, removal of a given watcher) works as for the watcher itself, and
    nothing needs remembering per watcher.
    """

    __slots__ = ("watcher", "events")

    def __init__(self, watcher: Watcher, events: EventThread) -> None:
        self.watcher = watcher
        self.events = events

    def __call__(self, event: WatchedEvent) -> None:
        self.events.post(self.watcher, event)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _EventThreadWatcher)
            and other.watcher == self.watcher
            and other.events is self.events
        )

    def __hash__(self) -> int:
        return hash(self.watcher)


class BlockingCuratorFramework:
    """
    L{CuratorFramework} with blocking methods: the same names and arguments, and
    the values the async methods' Deferreds fire with (or their errors, raised).

    Each method runs the async one on the reactor thread and waits for it; a watcher
    or listener given to it runs on this client's event thread.

    @ivar async_client: the underlying async client (use it from the reactor thread).
    @ivar call_timeout_s: bound on each blocking call (L{None}: wait as long as the
        operation's own retries and timeouts take).
    @ivar ops: builds the ops of a L{transaction} (C{client.ops.create(...)}).
    """

    def __init__(
        self,
        connect_string: str | None = None,
        *,
        call_timeout_s: float | None = None,
        _async_client: CuratorFramework | None = None,
        _events: EventThread | None = None,
        **options: Any,
    ) -> None:
        """
        @param options: those of L{CuratorFramework} (C{retry_policy},
            C{session_timeout_ms}, C{namespace}, ...).
        """
        self.call_timeout_s = call_timeout_s
        reactor = shared_reactor()
        if _async_client is None:
            if connect_string is None:
                raise TypeError("connect_string is required")
            _async_client = call_in_reactor(
                lambda: CuratorFramework(connect_string, reactor=reactor, **options)
            )
        self.async_client = _async_client
        self._events = _events or EventThread("curatorish-events")
        self._listener_wrappers: dict[Any, Callable[..., Any]] = {}
        self.ops: TransactionOps = _async_client.ops

    def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return call_in_reactor(function, *args, timeout_s=self.call_timeout_s, **kwargs)

    def _on_event_thread(self, watcher: Watcher | None) -> Watcher | None:
        """
        @return: a watcher that runs C{watcher} on this client's event thread.
        """
        if watcher is None:
            return None
        return _EventThreadWatcher(watcher, self._events)

    # -- lifecycle and state ----------------------------------------------------------

    def start(self) -> None:
        self._call(self.async_client.start)

    def close(self) -> None:
        try:
            self._call(self.async_client.close)
        finally:
            self._events.stop()

    def block_until_connected(self, timeout_s: float | None = None) -> bool:
        return bool(self._call(self.async_client.block_until_connected, timeout_s))

    @property
    def state(self) -> ConnectionState | None:
        return self.async_client.state

    @property
    def framework_state(self) -> str:
        return self.async_client.framework_state

    @property
    def namespace(self) -> str | None:
        return self.async_client.namespace

    @property
    def zookeeper(self) -> ZooKeeperConnection:
        return self.async_client.zookeeper

    @property
    def session_id(self) -> int:
        """
        The current session id (0 before the first connection).
        """
        return self.async_client.session_id

    @property
    def is_started(self) -> bool:
        return self.async_client.is_started

    def add_connection_state_listener(
        self, listener: Callable[[Any, ConnectionState], Any]
    ) -> None:
        """
        Call C{listener(this blocking client, state)} on the event thread.
        """

        def wrapper(client: Any, state: ConnectionState) -> None:
            self._events.post(listener, self, state)

        self._listener_wrappers[listener] = wrapper
        self._call(self.async_client.add_connection_state_listener, wrapper)

    def remove_connection_state_listener(
        self, listener: Callable[[Any, ConnectionState], Any]
    ) -> None:
        wrapper = self._listener_wrappers.pop(listener, None)
        if wrapper is not None:
            self._call(self.async_client.remove_connection_state_listener, wrapper)

    def using_namespace(self, namespace: str | None) -> BlockingCuratorFramework:
        view = self.async_client.using_namespace(namespace)
        return BlockingCuratorFramework(
            call_timeout_s=self.call_timeout_s, _async_client=view, _events=self._events
        )

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """
        Call C{function(*args, **kwargs)} on the reactor thread and wait for its result
        (a Deferred or coroutine is waited for), bounded by C{call_timeout_s}: how the
        recipes' blocking face runs their async code.
        """
        return self._call(function, *args, **kwargs)

    def post_event(self, callback: Callable[..., Any], *args: Any) -> None:
        """
        Run C{callback(*args)} on this client's event thread, after the watchers and
        listeners already queued there.
        """
        self._events.post(callback, *args)

    def run(self, coroutine_function: Callable[..., Any], *args: Any) -> Any:
        """
        Run C{coroutine_function(async_client, *args)} on the reactor and wait for it:
        a way to use the async API (and recipes) from a thread.
        """
        return self._call(coroutine_function, self.async_client, *args)

    # -- operations (see L{CuratorFramework} for what each does) ------------------------

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
    ) -> Created:
        """
        Create a node (L{CuratorFramework.create}).

        @return: L{Created}C{(path, stat)}: the created path (sequence number and
            protected prefix included) and the node's stat.
        """
        return self._call(
            self.async_client.create,
            path,
            data,
            mode=mode,
            acl=acl,
            ttl=ttl,
            parents=parents,
            parents_as_containers=parents_as_containers,
            protected=protected,
            or_set_data=or_set_data,
            set_data_version=set_data_version,
            idempotent=idempotent,
            compress=compress,
        )

    def delete(
        self,
        path: str,
        *,
        version: int = -1,
        quietly: bool = False,
        children: bool = False,
        guaranteed: bool = False,
    ) -> None:
        """
        Delete a node (L{CuratorFramework.delete}).
        """
        self._call(
            self.async_client.delete,
            path,
            version=version,
            quietly=quietly,
            children=children,
            guaranteed=guaranteed,
        )

    def exists(self, path: str, *, watcher: Watcher | None = None) -> Stat | None:
        """
        @return: the node's stat, or L{None} if it does not exist.
        """
        return self._call(self.async_client.exists, path, watcher=self._on_event_thread(watcher))

    def get_data(
        self, path: str, *, watcher: Watcher | None = None, decompress: bool = False
    ) -> tuple[bytes | None, Stat]:
        """
        @return: C{(data, stat)}.
        """
        return self._call(
            self.async_client.get_data,
            path,
            watcher=self._on_event_thread(watcher),
            decompress=decompress,
        )

    def set_data(
        self, path: str, data: bytes, *, version: int = -1, compress: bool = False
    ) -> Stat:
        """
        @return: the node's new stat.
        """
        return self._call(
            self.async_client.set_data, path, data, version=version, compress=compress
        )

    @overload
    def get_children(
        self, path: str, *, watcher: Watcher | None = None, include_stat: Literal[False] = False
    ) -> list[str]: ...

    @overload
    def get_children(
        self, path: str, *, watcher: Watcher | None = None, include_stat: Literal[True]
    ) -> tuple[list[str], Stat]: ...

    def get_children(
        self, path: str, *, watcher: Watcher | None = None, include_stat: bool = False
    ) -> list[str] | tuple[list[str], Stat]:
        """
        @return: the child names, or C{(names, stat)} with C{include_stat}.
        """
        return self._call(
            self.async_client.get_children,
            path,
            watcher=self._on_event_thread(watcher),
            include_stat=include_stat,
        )

    def get_acl(self, path: str) -> tuple[list[Any], Stat]:
        """
        @return: C{(acl list, stat)}.
        """
        return self._call(self.async_client.get_acl, path)

    def set_acl(self, path: str, acl: Sequence[Any], *, version: int = -1) -> Stat:
        """
        Set the ACL if its version is C{version}.

        @return: the node's new stat.
        """
        return self._call(self.async_client.set_acl, path, acl, version=version)

    def sync(self, path: str) -> str:
        """
        Wait until the server has caught up with the leader.

        @return: the path.
        """
        return self._call(self.async_client.sync, path)

    def get_all_children_number(self, path: str) -> int:
        """
        @return: the number of descendants of C{path}.
        """
        return self._call(self.async_client.get_all_children_number, path)

    def get_ephemerals(self, prefix_path: str = "/") -> list[str]:
        """
        @return: this session's ephemerals whose paths start with C{prefix_path}.
        """
        return self._call(self.async_client.get_ephemerals, prefix_path)

    def who_am_i(self) -> list[tuple[str, str]]:
        """
        @return: this session's C{(scheme, user)} identities.
        """
        return self._call(self.async_client.who_am_i)

    def get_config(self, *, watcher: Watcher | None = None) -> tuple[bytes | None, Stat]:
        """
        @return: C{(data, stat)} of C{/zookeeper/config}.
        """
        return self._call(self.async_client.get_config, watcher=self._on_event_thread(watcher))

    def add_auth(self, scheme: str, credential: str | bytes) -> None:
        """
        Authenticate (C{add_auth("digest", "user:password")}); replayed on every
        reconnect.

        @param credential: bytes, or a C{str} sent as UTF-8.
        """
        self._call(self.async_client.add_auth, scheme, credential)

    def transaction(self, operations: Sequence[MultiOp]) -> list[TransactionResult]:
        """
        Apply ops built with L{ops} atomically.

        @return: a L{TransactionResult} per op.
        """
        return self._call(self.async_client.transaction, operations)

    def add_watch(self, path: str, watcher: Watcher, *, recursive: bool = False) -> None:
        """
        Add a persistent (or persistent recursive) watch.
        """
        self._call(
            self.async_client.add_watch,
            path,
            self._on_event_thread(watcher),
            recursive=recursive,
        )

    def remove_watches(
        self,
        path: str,
        watcher: Watcher | None = None,
        *,
        watcher_type: WatcherType = WatcherType.Any,
        local: bool = False,
        quietly: bool = False,
        guaranteed: bool = False,
    ) -> None:
        """
        Remove one watcher, or all of C{watcher_type} on C{path}.
        """
        self._call(
            self.async_client.remove_watches,
            path,
            self._on_event_thread(watcher),
            watcher_type=watcher_type,
            local=local,
            quietly=quietly,
            guaranteed=guaranteed,
        )

    def __enter__(self) -> BlockingCuratorFramework:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


__all__ = [
    "BlockingCuratorFramework",
    "EventThread",
    "call_in_reactor",
    "in_reactor_thread",
    "release_shared_reactor",
    "shared_reactor",
]
