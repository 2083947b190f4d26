"""
Curator's C{Listenable}: a recipe's listeners, each called where its face runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from twisted.logger import Logger

_log = Logger()

L = TypeVar("L")


class Listenable(Generic[L]):
    """
    The listeners of one recipe (Curator's C{StandardListenerManager}).  The recipe
    calls L{call} on the reactor thread; each listener then runs through C{caller}
    (the recipe's L{Recipe.listener_caller}: at once on the async face, on the
    blocking client's event thread on the blocking face), in registration order.  A
    listener that raises is logged and the others still run.
    """

    def __init__(self, caller: Callable[[Callable[..., Any]], Callable[..., None]]) -> None:
        self._caller = caller
        self._listeners: list[L] = []

    def add_listener(self, listener: L) -> None:
        """Call C{listener} from now on (Curator's C{addListener})."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: L) -> None:
        """Stop calling C{listener}."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def clear(self) -> None:
        """Drop every listener."""
        self._listeners.clear()

    def size(self) -> int:
        return len(self._listeners)

    def call(self, pick: Callable[[L], Callable[..., Any]], *args: Any) -> None:
        """
        Call C{pick(listener)(*args)} for every listener.

        @param pick: from a listener to the callable to run (the listener itself, or
            one of its methods).
        """
        for listener in list(self._listeners):
            self._caller(_safely(pick(listener)))(*args)


def _safely(function: Callable[..., Any]) -> Callable[..., None]:
    def run(*args: Any) -> None:
        try:
            function(*args)
        except Exception:
            _log.failure("Listener {listener!r} raised", listener=function)

    return run


__all__ = ["Listenable"]
