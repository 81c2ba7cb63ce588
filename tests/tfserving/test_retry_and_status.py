"""The gRPC status → gateway answer table, and retries that never outlive the deadline."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from serving import errors
from serving.inference.grpc_status import to_gateway_error
from serving.inference.retry import RetryPolicy, call_with_retries


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="from the test")


@pytest.mark.parametrize(
    ("code", "status", "error_code", "retry_after"),
    [
        (grpc.StatusCode.UNAVAILABLE, 503, "upstream_unavailable", "1"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 503, "upstream_overloaded", "1"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "upstream_timeout", None),
        (grpc.StatusCode.CANCELLED, 503, "upstream_unavailable", "1"),
        (grpc.StatusCode.INVALID_ARGUMENT, 502, "upstream_error", None),
        (grpc.StatusCode.NOT_FOUND, 502, "upstream_error", None),
        (grpc.StatusCode.FAILED_PRECONDITION, 502, "upstream_error", None),
        (grpc.StatusCode.INTERNAL, 502, "upstream_error", None),
        (grpc.StatusCode.UNKNOWN, 502, "upstream_error", None),
    ],
)
def test_status_table(code: grpc.StatusCode, status: int, error_code: str, retry_after: str | None) -> None:
    error = to_gateway_error(code, "details")
    assert isinstance(error, errors.UpstreamError)
    assert (error.status_code, error.code, error.headers.get("Retry-After")) == (status, error_code, retry_after)
    assert error.message == f"TF Serving answered {code.name}: details"


class FlakyCall:
    """A fake RPC: fails with the given codes in turn, then answers `ok`; records what it was given."""

    def __init__(self, *codes: grpc.StatusCode, forever: bool = False) -> None:
        self.codes, self.forever = list(codes), forever
        self.remaining: list[float] = []

    async def __call__(self, remaining_s: float) -> str:
        self.remaining.append(remaining_s)
        await asyncio.sleep(0)
        if self.forever:
            raise rpc_error(self.codes[0])
        if self.codes:
            raise rpc_error(self.codes.pop(0))
        return "ok"


async def test_retries_transient_failures_then_answers() -> None:
    call = FlakyCall(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
    seen: list[grpc.StatusCode] = []
    result = await call_with_retries(call, timeout_s=2, policy=RetryPolicy(attempts=3), on_failure=seen.append)
    assert result == "ok"
    assert seen == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert call.remaining[0] <= 2 and call.remaining == sorted(call.remaining, reverse=True)


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.DEADLINE_EXCEEDED])
async def test_other_failures_are_not_retried(code: grpc.StatusCode) -> None:
    call = FlakyCall(code)
    with pytest.raises(errors.UpstreamError) as raised:
        await call_with_retries(call, timeout_s=2, policy=RetryPolicy(attempts=5), on_failure=lambda _: None)
    assert len(call.remaining) == 1
    assert raised.value.message.startswith(f"TF Serving answered {code.name}")


async def test_retries_stop_at_the_deadline() -> None:
    call = FlakyCall(grpc.StatusCode.UNAVAILABLE, forever=True)
    policy = RetryPolicy(attempts=1000, backoff_s=0.02, backoff_max_s=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(errors.UpstreamUnavailable):
        await call_with_retries(call, timeout_s=0.3, policy=policy, on_failure=lambda _: None)
    assert loop.time() - started <= 0.3
    assert 3 <= len(call.remaining) < 1000
    assert all(remaining > 0 for remaining in call.remaining)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_s=0.1, backoff_max_s=0.3)
    for failures, step in [(1, 0.1), (2, 0.2), (3, 0.3), (8, 0.3)]:
        pauses = {policy.pause(failures) for _ in range(50)}
        assert all(step / 2 <= pause <= step for pause in pauses)
        assert len(pauses) > 1
