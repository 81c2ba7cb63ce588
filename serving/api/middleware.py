"""Pure ASGI middleware: request IDs, request metrics, and the request body limit."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import errors
from serving.observability.logs import request_id_var
from serving.observability.metrics import GatewayMetrics

log = logging.getLogger("serving.access")

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Sets `request.state.request_id` (from `X-Request-ID` when well-formed), echoes it back, and
    counts every request by route template, status and returned label."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        token = request_id_var.set(request_id)  # every log line of this request carries it
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            self.metrics.request_latency.labels(route).observe(elapsed)
            self.metrics.requests.labels(route, str(status["code"]), state.get("label", "")).inc()
            # the route template, never the raw path or query: nothing a client typed reaches the logs
            fields = {"method": scope["method"], "route": route, "status": status["code"]}
            fields["ms"] = round(elapsed * 1e3, 1)
            log.info("request", extra={"fields": fields})
            request_id_var.reset(token)


class BodyLimit:
    """413 for bodies over `max_bytes` (or the limit of the first of `path_limits`' prefixes the path starts with),
    from `Content-Length` at once or while a chunked body streams."""

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = next((n for prefix, n in self.path_limits.items() if path.startswith(prefix)), self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        declared_too_large = declared.isdigit() and int(declared) > limit
        too_large = errors.PayloadTooLarge(f"the request body is over {limit} bytes")
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared_too_large:
                raise too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large
            return message

        await self.app(scope, limited_receive, send)
