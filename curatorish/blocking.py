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
"""

from __future__ import annotations

import atexit
import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish.connection.watches import WatchedEvent
from curatorish.framework import CuratorFramework
from curatorish.state import ConnectionState

_log = Logger()

_lock = threading.Lock()
_reactor_thread: threading.Thread | None = None

#: How long the shared reactor may take to start.
REACTOR_START_TIMEOUT_S = 10.0


def shared_reactor() -> Any:
    """
    @return: the global reactor, running: started in a daemon thread on first use
        unless something else already runs it.
    """
    global _reactor_thread
    from twisted.internet import reactor

    with _lock:
        if not reactor.running and _reactor_thread is None:
            _reactor_thread = threading.Thread(
                target=reactor.run,
                kwargs={"installSignalHandlers": False},
                name="curatorish-reactor",
                daemon=True,
            )
            _reactor_thread.start()
            atexit.register(_stop_shared_reactor)
    deadline = time.monotonic() + REACTOR_START_TIMEOUT_S
    while not reactor.running:
        if time.monotonic() > deadline:
            raise RuntimeError("the shared reactor did not start")
        time.sleep(0.005)
    return reactor


def release_shared_reactor(timeout_s: float = 10.0) -> bool:
    """
    Give the global reactor back: stop running it in our thread without shutting it
    down (C{reactor.crash}, as trial does between tests), so something else may run
    it, e.g. trial test cases later in the same pytest process.  Close blocking clients
    first.  The next blocking call starts it again in a new thread.

    @return: C{True} if our thread was running it and has finished.
    """
    global _reactor_thread
    from twisted.internet import reactor

    with _lock:
        thread = _reactor_thread
        if thread is None:
            return False
        if reactor.running:
            reactor.callFromThread(reactor.crash)  # type: ignore[attr-defined]
        thread.join(timeout_s)
        if thread.is_alive():
            return False
        _reactor_thread = None
        return True


def _stop_shared_reactor() -> None:
    from twisted.internet import reactor

    if reactor.running:
        try:
            reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]
        except Exception:
            pass


def in_reactor_thread() -> bool:
    """
    @return: whether the caller runs on the reactor thread.
    """
    from twisted.python import threadable

    return threadable.isInIOThread()


def call_in_reactor(
    function: Callable[..., Any], *args: Any, timeout_s: float | None = None, **kwargs: Any
) -> Any:
    """
    Call C{function} on the shared reactor's thread and wait for its result (waiting
    for the Deferred or coroutine it returns).

    @param timeout_s: give up waiting after this long (the operation itself goes on).
    @raise TimeoutError: when C{timeout_s} passes first.
    @raise RuntimeError: when called from the reactor thread itself.
    """
    reactor = shared_reactor()
    if in_reactor_thread():
        raise RuntimeError("blocking curatorish call made from the reactor thread")
    done = threading.Event()
    box: list[Any] = []

    def finish(result: Any) -> None:
        box.append(result)
        done.set()

    def start() -> None:
        try:
            result = function(*args, **kwargs)
            if hasattr(result, "__await__") and not isinstance(result, defer.Deferred):
                result = defer.ensureDeferred(result)
        except BaseException:
            finish(Failure())
            return
        if isinstance(result, defer.Deferred):
            result.addBoth(finish)
        else:
            finish(result)

    reactor.callFromThread(start)
    if not done.wait(timeout_s):
        raise TimeoutError(f"no answer within {timeout_s} s from {function!r}")
    result = box[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result


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


#: The operations forwarded as they are (a watcher argument is moved to the event thread).
_FORWARDED = frozenset(
    {
        "create",
        "delete",
        "exists",
        "get_data",
        "set_data",
        "get_children",
        "get_acl",
        "set_acl",
        "sync",
        "get_all_children_number",
        "get_ephemerals",
        "who_am_i",
        "get_config",
        "add_auth",
        "transaction",
        "add_watch",
        "remove_watches",
    }
)


class BlockingCuratorFramework:
    """
    L{CuratorFramework} with blocking methods: the same names, arguments and results.

    @ivar async_client: the underlying async client (use it from the reactor thread).
    @ivar call_timeout_s: bound on each blocking call (L{None}: wait as long as the
        operation's own retries and timeouts take).
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
        self._wrappers: dict[Any, Callable[..., Any]] = {}
        self.ops = _async_client.ops

    def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return call_in_reactor(function, *args, timeout_s=self.call_timeout_s, **kwargs)

    def _on_event_thread(self, watcher: Callable[[WatchedEvent], Any]) -> Callable[..., Any]:
        wrapper = self._wrappers.get(watcher)
        if wrapper is None:

            def wrapper(event: WatchedEvent) -> None:
                self._events.post(watcher, event)

            self._wrappers[watcher] = wrapper
        return wrapper

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
    def zookeeper(self) -> Any:
        return self.async_client.zookeeper

    def session_id(self) -> int:
        return self.async_client.session_id()

    def add_connection_state_listener(
        self, listener: Callable[[Any, ConnectionState], Any]
    ) -> None:
        """
        Call C{listener(this blocking client, state)} on the event thread.
        """

        def wrapper(client: Any, state: ConnectionState) -> None:
            self._events.post(listener, self, state)

        self._wrappers[listener] = wrapper
        self._call(self.async_client.add_connection_state_listener, wrapper)

    def remove_connection_state_listener(
        self, listener: Callable[[Any, ConnectionState], Any]
    ) -> None:
        wrapper = self._wrappers.pop(listener, None)
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

    def __enter__(self) -> BlockingCuratorFramework:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _forwarder(name: str) -> Callable[..., Any]:
    """
    The blocking method C{name}: the async method's signature and docstring, run on
    the reactor thread; watchers move to the client's event thread.
    """
    method = getattr(CuratorFramework, name)

    @functools.wraps(method)
    def blocking(self: BlockingCuratorFramework, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("watcher") is not None:
            kwargs["watcher"] = self._on_event_thread(kwargs["watcher"])
        if name in ("add_watch", "remove_watches") and len(args) > 1 and args[1] is not None:
            args = (args[0], self._on_event_thread(args[1]), *args[2:])
        return self._call(getattr(self.async_client, name), *args, **kwargs)

    return blocking


for _name in _FORWARDED:
    setattr(BlockingCuratorFramework, _name, _forwarder(_name))
del _name


__all__ = [
    "BlockingCuratorFramework",
    "EventThread",
    "call_in_reactor",
    "in_reactor_thread",
    "release_shared_reactor",
    "shared_reactor",
]
