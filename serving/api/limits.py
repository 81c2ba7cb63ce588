"""Bounded concurrency: load shedding instead of an unbounded queue.

At most `max_in_flight` requests are processed at once. One more gets 503 `overloaded` with a
`Retry-After` at once, without decoding anything, so an overload costs the gateway almost nothing and
clients (or the load balancer) back off or go elsewhere. Its body is drained first (up to
`drain_bytes`): closing a socket with unread data resets it, and the client would lose the answer.
Health, readiness, metrics and docs are never shed: probes must keep answering under load.
503 rather than 429: the limit is the server's capacity, not a quota of one client. REST and the Open Inference
Protocol's gRPC server (`serving/v2/grpc_service.py`) count against the same `InFlight`.

Graceful shutdown is uvicorn's: on SIGTERM it stops accepting connections and waits up to
`GATEWAY_SHUTDOWN_GRACE_S` for the requests in flight (see `serving.__main__`).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import errors
from serving.api.security import OPEN_PATHS
from serving.observability.metrics import GatewayMetrics


class InFlight:
    """Requests admitted and not yet answered; one event loop: no lock between the check and the increment."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def admit(self) -> bool:
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def release(self) -> None:
        self.count -= 1

    def overloaded(self) -> errors.Overloaded:
        return errors.Overloaded(f"the gateway is at its limit of {self.limit} requests in flight; retry later")


class ConcurrencyLimit:
    def __init__(
        self, app: ASGIApp, in_flight: InFlight, retry_after_s: int, metrics: GatewayMetrics, drain_bytes: int
    ) -> None:
        self.app = app
        self.drain_bytes = drain_bytes
        self.in_flight = in_flight
        self.retry_after_s = retry_after_s
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if not self.in_flight.admit():
            self.metrics.shed.inc()
            drained = await self._drain(receive)
            await self._shed(scope, send, keep_alive=drained)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.release()

    async def _drain(self, receive: Receive) -> bool:
        """Read and drop the request body; False if it was larger than `drain_bytes` or cut off."""
        received = 0
        while received <= self.drain_bytes:
            message: Message = await receive()
            if message["type"] != "http.request":
                return False
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return False

    async def _shed(self, scope: Scope, send: Send, keep_alive: bool) -> None:
        exc = self.in_flight.overloaded()
        request_id = scope.get("state", {}).get("request_id")
        status, answer = errors.answer(scope["path"], exc.status_code, exc.code, exc.message, request_id)
        body = json.dumps(answer).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.retry_after_s).encode()),
        ]
        if not keep_alive:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
