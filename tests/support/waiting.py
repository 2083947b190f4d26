"""Polling with a deadline: the only way tests wait for something to happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not become true before the deadline."""


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str | None = None,
) -> T:
    """
    Call C{predicate} until it returns a true value or C{timeout} seconds pass.

    @param predicate: polled condition; exceptions it raises propagate at once.
    @param timeout: the deadline, in seconds from now.
    @param interval: pause between polls.
    @param message: what was awaited, for the failure message.
    @return: the first true value the predicate returned.
    @raise WaitTimeout: when the deadline passes (an AssertionError, so pytest
        reports it as a test failure).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out after {timeout:.1f}s waiting for {message or predicate!r}"
            )
        time.sleep(interval)


def reactor_wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.01
) -> Any:
    """
    L{wait_until} for tests running on the reactor (trial's async tests): poll
    C{predicate} between reactor turns instead of blocking the thread.

    @return: a Deferred (awaitable, or yielded from C{inlineCallbacks}) firing once
        C{predicate()} is true, failing with L{WaitTimeout} after C{timeout} seconds.
    """
    from twisted.internet import defer, reactor, task

    @defer.inlineCallbacks
    def poll() -> Any:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {predicate!r}")
            yield task.deferLater(reactor, interval, lambda: None)

    return poll()
