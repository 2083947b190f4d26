"""
The retry loop every framework operation runs in (Curator's C{RetryLoop}): wait for a
connection, make the attempt, and after a failure the retry policy calls retryable,
pause as the policy says and try again.

Separate from the client core it serves because it is the one place that applies a
L{curatorish.retry.RetryPolicy}: the policies say whether and how long, this loop does
the waiting and the logging of each retry and of giving up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from twisted.internet import task
from twisted.logger import Logger

from curatorish.logbridge import FRAMEWORK_NAMESPACE

if TYPE_CHECKING:
    from curatorish.client_core import ClientCore

_log = Logger(namespace=FRAMEWORK_NAMESPACE)

T = TypeVar("T")


class RetryLoop:
    """
    Run an operation until it succeeds, fails for good, or the policy gives up
    (Curator's C{RetryLoop.callWithRetry}).
    """

    def __init__(self, core: ClientCore) -> None:
        self._core = core

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        first_error: Exception | None = None,
        started: float | None = None,
    ) -> T:
        """
        @param first_error: the failure of an attempt already made (by the caller's
            fast path, L{curatorish.client_view.ClientView._call}), treated as this
            loop's first.
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


__all__ = ["RetryLoop"]
