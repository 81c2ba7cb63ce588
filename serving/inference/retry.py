"""Calls to TF Serving under one deadline: retries on UNAVAILABLE / RESOURCE_EXHAUSTED only, with
exponential backoff and jitter, and never an attempt or a pause that would end past the deadline."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from serving.inference.grpc_status import RETRYABLE, to_gateway_error

T = TypeVar("T")

MIN_ATTEMPT_S = 0.05
"""No new attempt with less time than this left: it could only end in DEADLINE_EXCEEDED."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    """Most attempts per call, the first included."""
    backoff_s: float = 0.05
    """Pause before the second attempt; doubles after each further failure."""
    backoff_max_s: float = 0.5
    """Longest pause between two attempts."""

    def pause(self, failures: int) -> float:
        """Equal jitter: half the exponential step fixed, half random, so retries of many requests spread out."""
        step = min(self.backoff_max_s, self.backoff_s * 2 ** (failures - 1))
        return step / 2 + random.uniform(0, step / 2)


async def call_with_retries(
    call: Callable[[float], Awaitable[T]],
    *,
    timeout_s: float,
    policy: RetryPolicy,
    on_failure: Callable[[grpc.StatusCode], None],
) -> T:
    """`call(remaining_s)` until it succeeds; raises the gateway error of the last failure.

    `on_failure` sees every failed attempt (metrics), retried or not.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    failures = 0
    while True:
        try:
            return await call(deadline - loop.time())
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            on_failure(code)
            failures += 1
            pause = policy.pause(failures)
            out_of_time = loop.time() + pause + MIN_ATTEMPT_S > deadline
            if code not in RETRYABLE or failures >= policy.attempts or out_of_time:
                raise to_gateway_error(code, exc.details()) from None
            await asyncio.sleep(pause)
