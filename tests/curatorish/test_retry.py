"""
Retry policies: Curator's parameters, defaults, caps and retryable errors, with a
recording sleeper so no test waits.
"""

from __future__ import annotations

import random

import pytest

from curatorish import errors
from curatorish.retry import (
    BoundedExponentialBackoffRetry,
    ExponentialBackoffRetry,
    RetryForever,
    RetryNTimes,
    RetryOneTime,
    RetryPolicy,
    RetryUntilElapsed,
    SessionFailedRetryPolicy,
)


class RecordingSleeper:
    """Records each pause asked for, and returns at once."""

    def __init__(self) -> None:
        self.pauses: list[int] = []

    def __call__(self, ms: int) -> None:
        self.pauses.append(ms)


def retries_allowed(policy: RetryPolicy, sleeper: RecordingSleeper, limit: int = 100) -> int:
    """Count the consecutive retries the policy allows (elapsed time 0)."""
    count = 0
    while count < limit and policy.allow_retry(count, 0, sleeper):
        count += 1
    return count


def test_exponential_backoff_allows_max_retries_then_stops() -> None:
    sleeper = RecordingSleeper()
    assert retries_allowed(ExponentialBackoffRetry(10, 3), sleeper) == 3
    assert len(sleeper.pauses) == 3


def test_exponential_backoff_caps_retries_at_29() -> None:
    policy = ExponentialBackoffRetry(1, 1000)
    assert policy.n == 29
    assert retries_allowed(policy, RecordingSleeper()) == 29


def test_exponential_backoff_sleeps_base_times_random_factor() -> None:
    sleeper = RecordingSleeper()
    policy = ExponentialBackoffRetry(100, 10, random_source=random.Random(7))
    for count in range(10):
        assert policy.allow_retry(count, 0, sleeper)
    for count, pause in enumerate(sleeper.pauses):
        assert pause % 100 == 0
        assert 100 <= pause < 100 * (1 << (count + 1))
    # With 10 draws the factors cannot all be 1 (a growing range is being sampled).
    assert max(sleeper.pauses) > 100


def test_exponential_backoff_pins_sleep_to_max_sleep() -> None:
    sleeper = RecordingSleeper()
    policy = ExponentialBackoffRetry(1000, 29, max_sleep_ms=1500, random_source=random.Random(1))
    for count in range(29):
        policy.allow_retry(count, 0, sleeper)
    assert max(sleeper.pauses) == 1500
    assert ExponentialBackoffRetry(1, 1).max_sleep_ms == 2**31 - 1


def test_bounded_exponential_backoff_never_exceeds_its_bound() -> None:
    sleeper = RecordingSleeper()
    policy = BoundedExponentialBackoffRetry(100, 250, 20, random_source=random.Random(3))
    assert retries_allowed(policy, sleeper) == 20
    assert max(sleeper.pauses) == 250
    assert min(sleeper.pauses) == 100


def test_retry_n_times_fixed_pause() -> None:
    sleeper = RecordingSleeper()
    assert retries_allowed(RetryNTimes(4, 25), sleeper) == 4
    assert sleeper.pauses == [25, 25, 25, 25]


def test_retry_one_time() -> None:
    sleeper = RecordingSleeper()
    assert retries_allowed(RetryOneTime(70), sleeper) == 1
    assert sleeper.pauses == [70]


def test_retry_until_elapsed_stops_once_time_is_up_but_asks_for_the_pause() -> None:
    sleeper = RecordingSleeper()
    policy = RetryUntilElapsed(1000, 50)
    assert policy.allow_retry(0, 0, sleeper)
    assert policy.allow_retry(5, 999, sleeper)
    assert not policy.allow_retry(6, 1000, sleeper)
    # Curator sleeps before checking the elapsed time: three pauses were asked for.
    assert sleeper.pauses == [50, 50, 50]


def test_retry_forever_always_retries_and_rejects_non_positive_interval() -> None:
    sleeper = RecordingSleeper()
    policy = RetryForever(5)
    assert retries_allowed(policy, sleeper, limit=1000) == 1000
    assert set(sleeper.pauses) == {5}
    with pytest.raises(ValueError):
        RetryForever(0)


@pytest.mark.parametrize(
    "error_class, retryable",
    [
        (errors.ConnectionLossError, True),
        (errors.OperationTimeoutError, True),
        (errors.SessionMovedError, True),
        (errors.SessionExpiredError, True),
        (errors.NoNodeError, False),
        (errors.NodeExistsError, False),
        (errors.BadVersionError, False),
        (errors.RequestTimeoutError, False),
        (errors.ConnectionClosedError, True),
    ],
)
def test_retryable_errors_are_curators(error_class: type, retryable: bool) -> None:
    assert RetryNTimes(1, 0).allow_retry_on(error_class("/p")) is retryable


def test_non_zookeeper_errors_are_not_retried() -> None:
    assert not RetryForever(1).allow_retry_on(ValueError("x"))


def test_session_failed_policy_refuses_session_expiry_only() -> None:
    sleeper = RecordingSleeper()
    policy = SessionFailedRetryPolicy(RetryNTimes(2, 10))
    assert not policy.allow_retry_on(errors.SessionExpiredError())
    assert policy.allow_retry_on(errors.ConnectionLossError())
    assert retries_allowed(policy, sleeper) == 2
    assert sleeper.pauses == [10, 10]
