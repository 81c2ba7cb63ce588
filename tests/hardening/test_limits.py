"""Bounded concurrency on the real gateway: requests whose bodies are still arriving hold their
slots; one more gets 503 `overloaded` with Retry-After at once; probes are never shed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from serving.config import Settings
from serving.main import create_app

CORPUS = Path(__file__).resolve().parent / "corpus"


async def held_body(data: bytes, release: asyncio.Event) -> AsyncIterator[bytes]:
    yield data[:100]
    await release.wait()
    yield data[100:]


@pytest.mark.timeout(120)
async def test_requests_past_the_limit_are_shed_at_once() -> None:
    registry = CollectorRegistry()
    app = create_app(Settings(max_in_flight=2, shed_retry_after_s=3), registry=registry)
    data = (CORPUS / "reference.png").read_bytes()
    headers = {"content-type": "image/png"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            release = asyncio.Event()
            holders = [
                asyncio.create_task(client.post("/v1/predict", content=held_body(data, release), headers=headers))
                for _ in range(2)
            ]
            while registry.get_sample_value("gateway_in_flight_requests") < 2:
                await asyncio.sleep(0.01)

            shed = await client.post("/v1/predict", content=data, headers={**headers, "x-request-id": "third"})
            assert shed.status_code == 503
            assert shed.headers["retry-after"] == "3"
            assert shed.json() == {
                "error": {
                    "code": "overloaded",
                    "message": "the gateway is at its limit of 2 requests in flight; retry later",
                    "request_id": "third",
                }
            }
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200
            assert (await client.get("/")).status_code == 200  # the web page itself

            release.set()
            assert [r.status_code for r in await asyncio.gather(*holders)] == [200, 200]
            assert (await client.post("/v1/predict", content=data, headers=headers)).status_code == 200
    assert registry.get_sample_value("gateway_shed_requests_total") == 1
    shed_labels = {"route": "unmatched", "status": "503", "label": ""}
    assert registry.get_sample_value("gateway_requests_total", shed_labels) == 1
