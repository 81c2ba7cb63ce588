"""When to try a request again, and how long to wait first.

Retried: no HTTP answer (connection refused or dropped, timeouts) and the statuses that mean "later": 429, 503,
504. Never any other 4xx (the same request would fail the same way) nor 500/502 (the backend failed on this
input). Waits grow exponentially with full jitter, so that many clients do not retry in step; a `Retry-After`
from the gateway is honoured as given. The whole call, waits included, is bounded by `total_s`.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field

import httpx

from client._exceptions import APIError, GatewayTimeout, RateLimited, ServiceUnavailable, TransportError

RETRIED = (TransportError, RateLimited, ServiceUnavailable, GatewayTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    """Most attempts per call, the first included (1: never retry)."""
    backoff_s: float = 0.25
    """Base of the exponential backoff: attempt n waits up to backoff_s × 2^(n-1)."""
    max_backoff_s: float = 10.0
    """Longest wait between two attempts when the gateway sets no `Retry-After`."""
    total_s: float = 60.0
    """Budget of one call across its attempts and waits; no retry starts that would end after it."""
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, failures: int, error: Exception) -> float:
        """Seconds to wait after the `failures`-th failed attempt."""
        if isinstance(error, APIError) and error.retry_after is not None:
            return error.retry_after
        return self.rng.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (failures - 1)))


NO_RETRY = RetryPolicy(attempts=1)


def is_retried(error: Exception) -> bool:
    return isinstance(error, RETRIED)


class Deadline:
    """The time left to one call; `wait_allowed` says whether a retry after `delay` s still fits."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.ends = time.monotonic() + policy.total_s

    def next_delay(self, failures: int, error: Exception) -> float | None:
        """The wait before the next attempt, or None when the call should give up and raise `error`."""
        if failures >= self.policy.attempts or not is_retried(error):
            return None
        delay = self.policy.delay(failures, error)
        return delay if time.monotonic() + delay < self.ends else None


def parse_retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
