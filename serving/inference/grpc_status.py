"""The one table from a TF Serving gRPC status to the gateway's answer.

    UNAVAILABLE          → 503 upstream_unavailable + Retry-After  (retried first; Serving down or restarting,
                                                                   or its batch queue full)
    RESOURCE_EXHAUSTED   → 503 upstream_overloaded + Retry-After   (retried first; e.g. GPU memory exhausted)
    CANCELLED            → 503 upstream_unavailable + Retry-After  (Serving dropped the call, e.g. shutting down)
    DEADLINE_EXCEEDED    → 504 upstream_timeout
    anything else        → 502 upstream_error, e.g. INVALID_ARGUMENT (the request does not fit the model),
                           NOT_FOUND (no such model or version), FAILED_PRECONDITION, INTERNAL, UNKNOWN

The message names the gRPC status so a client (and an operator reading the body) can tell which.
"""

from __future__ import annotations

import grpc

from serving import errors

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
"""Statuses where another attempt may succeed: Serving restarting, its queue or GPU memory momentarily full."""

RETRY_AFTER_S = 1
"""What 503 answers suggest to clients: Serving restarts and queue spikes last about that long."""

_MAX_DETAILS = 200

_TABLE: dict[grpc.StatusCode, type[errors.UpstreamError]] = {
    grpc.StatusCode.UNAVAILABLE: errors.UpstreamUnavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.UpstreamOverloaded,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.UpstreamTimeout,
    grpc.StatusCode.CANCELLED: errors.UpstreamUnavailable,
}


def to_gateway_error(code: grpc.StatusCode, details: str | None) -> errors.UpstreamError:
    """The gateway error for a failed call to TF Serving."""
    error_class = _TABLE.get(code, errors.UpstreamError)
    message = f"TF Serving answered {code.name}: {(details or 'no details')[:_MAX_DETAILS]}"
    headers = {"Retry-After": str(RETRY_AFTER_S)} if error_class.status_code == 503 else None
    error = error_class(message, headers=headers)
    error.upstream_status = code.name
    return error
