"""
Retry policies: Apache Curator's, with its parameters, defaults and caps.

A policy answers two questions for the retry loop that wraps every framework operation:

  - L{RetryPolicy.allow_retry_on}: is this error worth retrying at all?  (Curator's
    C{allowRetry(Throwable)}: connection loss, operation timeout, session moved and
    session expired are; everything else is the operation's real answer.)
  - L{RetryPolicy.allow_retry}: may the operation be tried again now, after C{retry_count}
    failures and C{elapsed_ms} since it started?  If yes, the policy first asks the
    C{sleeper} for the pause it wants.

The sleeper is a callable C{sleeper(ms)}.  Policies never sleep themselves: the async
retry loop passes a sleeper that records the pause and then waits for it on the
reactor, and tests pass one that records it and returns at once, so no test needs real
time.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from twisted.logger import Logger

from curatorish import errors

Sleeper = Callable[[int], None]
"""C{sleeper(milliseconds)}: asked by a policy for the pause before the next attempt."""

_log = Logger()

RETRYABLE_ERRORS: tuple[type[errors.ZooKeeperError], ...] = (
    errors.ConnectionLossError,
    errors.OperationTimeoutError,
    errors.SessionMovedError,
    errors.SessionExpiredError,
)
"""
The errors Curator retries (C{RetryPolicy.allowRetry(Throwable)}).  Session expiry is
among them because the client then starts a new session, and the operation can succeed
on it; L{SessionFailedRetryPolicy} is for callers for whom it must not.
"""

_INT_MAX = 2**31 - 1


class RetryPolicy:
    """
    The base of every policy (Curator's C{RetryPolicy} interface).
    """

    def allow_retry(self, retry_count: int, elapsed_ms: int, sleeper: Sleeper) -> bool:
        """
        Decide whether to try again, asking C{sleeper} for the pause first when so.

        @param retry_count: how many times the operation has been retried already
            (0 after the first failure).
        @param elapsed_ms: milliseconds since the operation started.
        @param sleeper: called with the pause, in milliseconds, before the next attempt.
        @return: C{True} to retry.
        """
        raise NotImplementedError

    def allow_retry_on(self, error: BaseException) -> bool:
        """
        @return: C{True} if C{error} is one a retry might cure (L{RETRYABLE_ERRORS}).
        """
        return isinstance(error, RETRYABLE_ERRORS)


class SleepingRetry(RetryPolicy):
    """
    A policy that allows C{n} retries, pausing L{sleep_time_ms} before each.

    @ivar n: the number of retries allowed.
    """

    def __init__(self, n: int) -> None:
        self.n = n

    def allow_retry(self, retry_count: int, elapsed_ms: int, sleeper: Sleeper) -> bool:
        if retry_count < self.n:
            sleeper(self.sleep_time_ms(retry_count, elapsed_ms))
            return True
        return False

    def sleep_time_ms(self, retry_count: int, elapsed_ms: int) -> int:
        """
        @return: the pause before retry number C{retry_count}.
        """
        raise NotImplementedError


class ExponentialBackoffRetry(SleepingRetry):
    """
    Retry up to C{max_retries} times (capped at 29, as Curator does, so the shift cannot
    overflow), pausing C{base_sleep_ms} times a random number in
    C{[1, 2 ** (retry_count + 1))}, pinned to C{max_sleep_ms}.
    """

    MAX_RETRIES_LIMIT = 29
    DEFAULT_MAX_SLEEP_MS = _INT_MAX

    def __init__(
        self,
        base_sleep_ms: int,
        max_retries: int,
        max_sleep_ms: int = DEFAULT_MAX_SLEEP_MS,
        random_source: random.Random | None = None,
    ) -> None:
        """
        @param random_source: where the random factor comes from (tests seed one).
        """
        if max_retries > self.MAX_RETRIES_LIMIT:
            _log.warn(
                "maxRetries too large ({max_retries}). Pinning to {limit}",
                max_retries=max_retries,
                limit=self.MAX_RETRIES_LIMIT,
            )
            max_retries = self.MAX_RETRIES_LIMIT
        super().__init__(max_retries)
        self.base_sleep_ms = base_sleep_ms
        self.max_sleep_ms = max_sleep_ms
        self._random = random_source or random.Random()

    def sleep_time_ms(self, retry_count: int, elapsed_ms: int) -> int:
        factor = max(1, self._random.randrange(1 << (retry_count + 1)))
        sleep_ms = self.base_sleep_ms * factor
        if sleep_ms > self.max_sleep_ms:
            _log.warn(
                "Sleep extension too large ({sleep_ms}). Pinning to {max_sleep_ms}",
                sleep_ms=sleep_ms,
                max_sleep_ms=self.max_sleep_ms,
            )
            sleep_ms = self.max_sleep_ms
        return sleep_ms


class BoundedExponentialBackoffRetry(ExponentialBackoffRetry):
    """
    L{ExponentialBackoffRetry} whose pause never exceeds C{max_sleep_time_ms}.

    The argument order is Curator's: base, maximum, retries.
    """

    def __init__(
        self,
        base_sleep_ms: int,
        max_sleep_time_ms: int,
        max_retries: int,
        random_source: random.Random | None = None,
    ) -> None:
        super().__init__(base_sleep_ms, max_retries, random_source=random_source)
        self.max_sleep_time_ms = max_sleep_time_ms

    def sleep_time_ms(self, retry_count: int, elapsed_ms: int) -> int:
        return min(self.max_sleep_time_ms, super().sleep_time_ms(retry_count, elapsed_ms))


class RetryNTimes(SleepingRetry):
    """
    Retry C{n} times with a fixed pause of C{sleep_ms_between_retries}.
    """

    def __init__(self, n: int, sleep_ms_between_retries: int) -> None:
        super().__init__(n)
        self.sleep_ms_between_retries = sleep_ms_between_retries

    def sleep_time_ms(self, retry_count: int, elapsed_ms: int) -> int:
        return self.sleep_ms_between_retries


class RetryOneTime(RetryNTimes):
    """
    Retry once, after C{sleep_ms_between_retry}.
    """

    def __init__(self, sleep_ms_between_retry: int) -> None:
        super().__init__(1, sleep_ms_between_retry)


class RetryUntilElapsed(SleepingRetry):
    """
    Retry with a fixed pause until C{max_elapsed_ms} have passed since the operation began.

    Like Curator's, it asks for the pause before checking the time, so the last pause is
    requested even when the answer is no.
    """

    def __init__(self, max_elapsed_ms: int, sleep_ms_between_retries: int) -> None:
        super().__init__(_INT_MAX)
        self.max_elapsed_ms = max_elapsed_ms
        self.sleep_ms_between_retries = sleep_ms_between_retries

    def allow_retry(self, retry_count: int, elapsed_ms: int, sleeper: Sleeper) -> bool:
        return (
            super().allow_retry(retry_count, elapsed_ms, sleeper)
            and elapsed_ms < self.max_elapsed_ms
        )

    def sleep_time_ms(self, retry_count: int, elapsed_ms: int) -> int:
        return self.sleep_ms_between_retries


class RetryForever(RetryPolicy):
    """
    Always retry, pausing C{retry_interval_ms} (which must be positive) each time.
    """

    def __init__(self, retry_interval_ms: int) -> None:
        if retry_interval_ms <= 0:
            raise ValueError("retry_interval_ms must be > 0")
        self.retry_interval_ms = retry_interval_ms

    def allow_retry(self, retry_count: int, elapsed_ms: int, sleeper: Sleeper) -> bool:
        sleeper(self.retry_interval_ms)
        return True


class SessionFailedRetryPolicy(RetryPolicy):
    """
    Wrap another policy, but never retry after a session expiry: for operations that
    belong to one session (an ephemeral lock node, say) and are meaningless on a new one.
    """

    def __init__(self, delegate: RetryPolicy) -> None:
        self.delegate = delegate

    def allow_retry(self, retry_count: int, elapsed_ms: int, sleeper: Sleeper) -> bool:
        return self.delegate.allow_retry(retry_count, elapsed_ms, sleeper)

    def allow_retry_on(self, error: BaseException) -> bool:
        if isinstance(error, errors.SessionExpiredError):
            return False
        return self.delegate.allow_retry_on(error)


__all__ = [
    "RETRYABLE_ERRORS",
    "BoundedExponentialBackoffRetry",
    "ExponentialBackoffRetry",
    "RetryForever",
    "RetryNTimes",
    "RetryOneTime",
    "RetryPolicy",
    "RetryUntilElapsed",
    "SessionFailedRetryPolicy",
    "Sleeper",
    "SleepingRetry",
]
