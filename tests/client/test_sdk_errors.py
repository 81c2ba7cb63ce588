"""Every error class the SDK raises, from the real gateway where it can produce the error on demand, and from
`ScriptedFront` (a named fake: answers a fixed script of gateway-shaped errors, then passes requests to the real
gateway) for the upstream failures the embedded backend cannot be made to produce."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import client
from client import NO_RETRY, AsyncClient, Client, RetryPolicy
from client._exceptions import _BY_CODE, _BY_STATUS, error_from_response
from serving import errors as gateway_errors


def png_bytes(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, 120).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (64, 64)).save(buffer, format="GIF")
    return buffer.getvalue()


def in_process(app: object, retry: RetryPolicy = NO_RETRY) -> AsyncClient:
    return AsyncClient("http://gateway", transport=httpx.ASGITransport(app=app), retry=retry)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("send", "error", "status", "code"),
    [
        (lambda: b"", client.BadRequest, 400, "empty_body"),
        (lambda: b"plain text, not an image", client.InvalidImage, 415, "unsupported_media_type"),
        (gif_bytes, client.InvalidImage, 415, "unsupported_media_type"),
        (lambda: png_bytes()[:60], client.InvalidImage, 422, "undecodable_image"),
        (lambda: b"\xff\xd8" + bytes(21 * 1024 * 1024), client.PayloadTooLarge, 413, "payload_too_large"),
    ],
    ids=["empty", "text", "gif", "truncated-png", "too-large"],
)
async def test_gateway_errors_map_to_classes(gateway: TestClient, send, error, status, code) -> None:
    async with in_process(gateway.app) as sdk:
        with pytest.raises(error) as raised:
            await sdk.predict(send())
    assert (raised.value.status_code, raised.value.code) == (status, code)
    assert raised.value.request_id and raised.value.message


async def test_unknown_operating_point(gateway: TestClient) -> None:
    async with in_process(gateway.app) as sdk:
        with pytest.raises(client.UnknownOperatingPoint) as raised:
            await sdk.predict(png_bytes(), operating_point="no-such-point")
    assert (raised.value.status_code, raised.value.code) == (422, "unknown_operating_point")


async def test_wrong_base_url_is_not_found(gateway: TestClient) -> None:
    sdk = AsyncClient("http://gateway/some/prefix", transport=httpx.ASGITransport(app=gateway.app))
    async with sdk:
        with pytest.raises(client.NotFound) as raised:
            await sdk.predict(png_bytes())
    assert (raised.value.status_code, raised.value.code) == (404, "not_found")


class ScriptedFront:
    """Fake front of the gateway: answers `script` (status, code, headers) in order, then passes every later
    request to the real app. Records when each request arrived."""

    def __init__(self, app: object, script: list[tuple[int, str, dict[str, str]]]) -> None:
        self.app = app
        self.script = list(script)
        self.arrivals: list[float] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        self.arrivals.append(time.monotonic())
        if not self.script:
            await self.app(scope, receive, send)  # type: ignore[operator]
            return
        status, code, headers = self.script.pop(0)
        body = json.dumps({"error": {"code": code, "message": f"scripted {code}", "request_id": "scripted"}})
        raw_headers = [(b"content-type", b"application/json")]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body.encode()})


UPSTREAM_ERRORS = [
    (429, "rate_limited", client.RateLimited, True),
    (500, "internal_error", client.ServerError, False),
    (502, "upstream_error", client.ServerError, False),
    (503, "overloaded", client.ServiceUnavailable, True),
    (503, "not_ready", client.ServiceUnavailable, True),
    (503, "upstream_unavailable", client.ServiceUnavailable, True),
    (503, "upstream_overloaded", client.ServiceUnavailable, True),
    (504, "upstream_timeout", client.GatewayTimeout, True),
]


@pytest.mark.parametrize(("status", "code", "error", "retried"), UPSTREAM_ERRORS)
async def test_upstream_errors_map_and_retry(gateway: TestClient, status, code, error, retried) -> None:
    """Retried errors: a second attempt reaches the real gateway and succeeds. Others: raised after one request."""
    front = ScriptedFront(gateway.app, [(status, code, {"Retry-After": "0"})])
    async with in_process(front, RetryPolicy(attempts=2)) as sdk:
        if retried:
            prediction = await sdk.predict(png_bytes())
            assert prediction.request_id != "scripted"
        else:
            with pytest.raises(error) as raised:
                await sdk.predict(png_bytes())
            assert (raised.value.status_code, raised.value.code, raised.value.request_id) == (status, code, "scripted")
    assert len(front.arrivals) == (2 if retried else 1)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "bad_request"),
        (401, "unauthorized"),
        (403, "forbidden"),
        (413, "image_too_large"),
        (422, "undecodable_image"),
    ],
)
async def test_other_4xx_are_never_retried(gateway: TestClient, status: int, code: str) -> None:
    front = ScriptedFront(gateway.app, [(status, code, {"Retry-After": "0"})])
    async with in_process(front, RetryPolicy(attempts=5, backoff_s=0.001)) as sdk:
        with pytest.raises(client.APIError) as raised:
            await sdk.predict(png_bytes())
    assert (raised.value.status_code, raised.value.code) == (status, code)
    assert len(front.arrivals) == 1


async def test_retry_after_is_honoured(gateway: TestClient) -> None:
    front = ScriptedFront(gateway.app, [(503, "upstream_unavailable", {"Retry-After": "1"})])
    async with in_process(front, RetryPolicy(attempts=2, backoff_s=0.0)) as sdk:
        await sdk.predict(png_bytes())
    first, second = front.arrivals
    assert second - first >= 0.99


async def test_no_retry_that_would_end_past_the_budget(gateway: TestClient) -> None:
    front = ScriptedFront(gateway.app, [(503, "overloaded", {"Retry-After": "30"})])
    async with in_process(front, RetryPolicy(attempts=5, total_s=5.0)) as sdk:
        with pytest.raises(client.ServiceUnavailable) as raised:
            await sdk.predict(png_bytes())
    assert raised.value.retry_after == 30.0
    assert len(front.arrivals) == 1


async def test_attempts_are_bounded(gateway: TestClient) -> None:
    front = ScriptedFront(gateway.app, [(504, "upstream_timeout", {})] * 10)
    async with in_process(front, RetryPolicy(attempts=3, backoff_s=0.001)) as sdk:
        with pytest.raises(client.GatewayTimeout):
            await sdk.predict(png_bytes())
    assert len(front.arrivals) == 3


def test_sync_client_retries_connection_errors_then_succeeds(live_gateway, training_sample: list[Path]) -> None:
    """`httpx.MockTransport` as a fake network: the first two attempts fail to connect, the third goes through a
    real HTTP transport to the live gateway."""
    real = httpx.HTTPTransport()
    calls: list[str] = []

    def network(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) <= 2:
            raise httpx.ConnectError("connection refused", request=request)
        response = real.handle_request(request)
        response.read()
        return response

    retry = RetryPolicy(attempts=3, backoff_s=0.01)
    with Client(live_gateway.url, live_gateway.api_key, retry=retry, transport=httpx.MockTransport(network)) as sdk:
        prediction = sdk.predict(training_sample[0])
    assert calls == ["/v1/predict"] * 3
    assert prediction.model_name == "pneumonia"
    real.close()


def test_gateway_down_is_a_transport_error() -> None:
    port = _closed_port()
    sdk = Client(f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=2, backoff_s=0.01))
    with sdk, pytest.raises(client.TransportError) as raised:
        sdk.predict(png_bytes())
    assert not isinstance(raised.value, client.Timeout)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A real socket that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_no_answer_is_a_timeout(silent_server: int) -> None:
    sdk = Client(f"http://127.0.0.1:{silent_server}", timeout=0.3, retry=NO_RETRY)
    with sdk, pytest.raises(client.Timeout):
        sdk.predict(png_bytes())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_non_json_error_page_still_maps_by_status() -> None:
    response = httpx.Response(502, text="<html>Bad Gateway</html>", headers={"x-request-id": "proxy-1"})
    error = error_from_response(response, retry_after=None)
    assert isinstance(error, client.ServerError)
    assert (error.status_code, error.code, error.request_id) == (502, "http_502", "proxy-1")


def gateway_error_classes() -> list[type[gateway_errors.GatewayError]]:
    found, pending = [], [gateway_errors.GatewayError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending += kind.__subclasses__()
    return found


def test_the_client_knows_every_gateway_error_code() -> None:
    """Every code of serving/errors.py's tree maps to a client class, and where the status alone has a class (a
    proxy's page), the code agrees with it: the two tables cannot drift apart unnoticed."""
    classes = gateway_error_classes()
    assert len(classes) > 10 and "not_supported" in {kind.code for kind in classes}
    for kind in classes:
        by_code = _BY_CODE.get(kind.code)
        assert by_code is not None, f"the client has no class for the gateway's {kind.code!r}"
        assert _BY_STATUS.get(kind.status_code, by_code) is by_code, (kind.code, kind.status_code)


def test_not_supported_is_its_own_class() -> None:
    body = {"error": {"code": "not_supported", "message": "no explain", "request_id": "r-501"}}
    error = error_from_response(httpx.Response(501, json=body), retry_after=None)
    assert type(error) is client.NotSupported
    assert (error.status_code, error.code, error.message) == (501, "not_supported", "no explain")
    assert error.request_id == "r-501"
