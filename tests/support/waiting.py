"""Polling with a deadline: the only way tests wait for something to happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
