"""
One recipe, two faces: the generic adapter that lets every recipe class take either
client.

A recipe is written once, on the async L{CuratorFramework} (its methods are
coroutines or return Deferreds).  Built with a L{BlockingCuratorFramework}, the same
instance runs each public method on the reactor thread and blocks the calling thread
until it finishes, returning the value (or raising the error) instead of a Deferred.
Listeners registered on a blocking-face recipe run on the blocking client's event
thread, like its watchers, so they may call blocking methods themselves.

    class SharedThing(Recipe):
        @recipe_method
        async def get(self) -> int:
            data, _ = await self.client.get_data(self.path)
            ...

    SharedThing(async_client, "/p").get()      # Deferred[int]
    SharedThing(blocking_client, "/p").get()   # int

Inside a recipe, C{self.client} is always the async client; recipe code never blocks
and never checks which face it serves, except through L{Recipe.blocking} when it must
know the calling thread (a reentrant lock's owner on the blocking face).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from twisted.internet import defer

from curatorish.blocking import BlockingCuratorFramework
from curatorish.framework import CuratorFramework
from curatorish.reactor_thread import call_in_reactor

F = TypeVar("F", bound=Callable[..., Any])


class Recipe:
    """
    Base of every recipe: holds the async client and, on the blocking face, the
    blocking client whose reactor thread and event thread it uses.

    @ivar client: the async L{CuratorFramework} the recipe's code runs on.
    """

    def __init__(self, client: CuratorFramework | BlockingCuratorFramework) -> None:
        if isinstance(client, BlockingCuratorFramework):
            self._blocking_client: BlockingCuratorFramework | None = client
            self.client: CuratorFramework = client.async_client
        elif isinstance(client, CuratorFramework):
            self._blocking_client = None
            self.client = client
        else:
            raise TypeError(
                f"a recipe takes a CuratorFramework or BlockingCuratorFramework, not {client!r}"
            )

    @property
    def blocking(self) -> bool:
        """Whether this instance serves the blocking face."""
        return self._blocking_client is not None

    def _run_blocking(
        self, function: Callable[..., Any], *args: Any, unbounded: bool = False, **kwargs: Any
    ) -> Any:
        assert self._blocking_client is not None
        if unbounded:
            return call_in_reactor(function, *args, **kwargs)
        return self._blocking_client.call(function, *args, **kwargs)

    def listener_caller(self, listener: Callable[..., Any]) -> Callable[..., None]:
        """
        @return: a callable that calls C{listener} with the same arguments where this
            face's listeners run: at once on the reactor thread (async face), or posted
            to the blocking client's event thread (blocking face).
        """
        blocking_client = self._blocking_client
        if blocking_client is None:
            return listener

        def post(*args: Any) -> None:
            blocking_client.post_event(listener, *args)

        return post


def recipe_method(
    method: F | None = None,
    *,
    defaults_in_caller: Mapping[str, Callable[[Any], Any]] | None = None,
    waits: bool = False,
) -> Any:
    """
    Decorate a recipe's public method (a coroutine function, or a function returning a
    Deferred or a plain value).  Async face: the result as a Deferred (plain values
    are returned as they are).  Blocking face: run on the reactor thread and wait.

    Used bare (C{@recipe_method}) or with options (C{@recipe_method(waits=True)}).

    @param defaults_in_caller: keyword arguments the caller left out (or passed as
        L{None}) computed as C{function(recipe)} in the I{calling} thread, before the
        hop to the reactor: what a method needs to know about its caller (a reentrant
        lock's owner is the calling thread on the blocking face).
    @param waits: the method bounds its own waiting (it takes a timeout, L{None} for
        ever): on the blocking face the client's C{call_timeout_s} does not cut it
        short, since giving up on the wait would leave its work (a lock acquired)
        going on with nobody to hand the result to.
    """

    def decorate(method: F) -> F:
        is_coroutine = inspect.iscoroutinefunction(method)

        @functools.wraps(method)
        def face(self: Recipe, *args: Any, **kwargs: Any) -> Any:
            if defaults_in_caller:
                for name, compute in defaults_in_caller.items():
                    if kwargs.get(name) is None:
                        kwargs[name] = compute(self)
            if self._blocking_client is not None:
                return self._run_blocking(method, self, *args, unbounded=waits, **kwargs)
            result = method(self, *args, **kwargs)
            if is_coroutine:
                return defer.ensureDeferred(result)
            return result

        return face  # type: ignore[return-value]

    if method is not None:
        return decorate(method)
    return decorate


__all__ = ["Recipe", "recipe_method"]
