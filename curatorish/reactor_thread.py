"""
The shared reactor thread of the blocking face, and calls handed to it.

Twisted's reactor runs once per process, so every blocking client shares one reactor
running in a background daemon thread, started on first use (or the reactor the
program already runs in another thread).  L{call_in_reactor} hands a call to that
thread and waits for its result.  Kept apart from L{curatorish.blocking} because it
knows nothing of clients: L{curatorish.testing} runs an in-process zkreg on the same
reactor, and the recipes' blocking face calls their async code through it.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.python import threadable
from twisted.python.failure import Failure

_lock = threading.Lock()
_reactor_thread: threading.Thread | None = None
#: The global reactor once L{shared_reactor} imported it (importing it installs the
#: default reactor, so this module does not import it when loaded).
_reactor: Any = None

#: How long the shared reactor may take to start.
REACTOR_START_TIMEOUT_S = 10.0


def shared_reactor() -> Any:
    """
    @return: the global reactor, running: started in a daemon thread on first use
        unless something else already runs it.
    """
    global _reactor_thread, _reactor
    if _reactor is not None and _reactor.running:
        return _reactor
    from twisted.internet import reactor

    _reactor = reactor
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
    if threadable.isInIOThread():
        raise RuntimeError("blocking curatorish call made from the reactor thread")
    call = _CallFromThread(function, args, kwargs)
    reactor.callFromThread(call.run)
    if not call.done.acquire(timeout=-1 if timeout_s is None else timeout_s):
        raise TimeoutError(f"no answer within {timeout_s} s from {function!r}")
    result = call.result
    if isinstance(result, Failure):
        result.raiseException()
    return result


class _CallFromThread:
    """
    One call of L{call_in_reactor}: run on the reactor thread, its result handed back
    through a bare lock held until the result is in.  A lock rather than a
    C{threading.Event}: its acquire and release are C calls where C{Event.wait/set}
    run a Python C{Condition}; and one object with slots rather than closures and a
    list per call.
    """

    __slots__ = ("function", "args", "kwargs", "done", "result")

    def __init__(
        self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None

    def run(self) -> None:
        """
        Call the function (on the reactor thread); wait for the Deferred or coroutine
        it returns.
        """
        try:
            result = self.function(*self.args, **self.kwargs)
            if not isinstance(result, defer.Deferred) and hasattr(result, "__await__"):
                result = defer.ensureDeferred(result)
        except BaseException:
            self.finish(Failure())
            return
        if isinstance(result, defer.Deferred):
            result.addBoth(self.finish)
        else:
            self.finish(result)

    def finish(self, result: Any) -> None:
        self.result = result
        self.done.release()


__all__ = [
    "REACTOR_START_TIMEOUT_S",
    "call_in_reactor",
    "in_reactor_thread",
    "release_shared_reactor",
    "shared_reactor",
]
