"""Through the gateway (tiny model, default runtime): concurrent `/v1/predict` requests share model calls, and
`/v1/predict/batch` goes through the same micro-batcher, split at `GATEWAY_BATCH_MAX_SIZE`, answers in order."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client import CollectorRegistry

from radiograph import imaging
from serving.config import Settings
from serving.main import create_app


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (96, 80), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        model_dir=tiny_model, batch_max_size=4, batch_timeout_micros=2_000_000,  # a batch waits up to 2 s to fill
        openvino_cache_dir=tmp_path_factory.mktemp("openvino"), drift_window=0,
    )
    with TestClient(create_app(settings, registry=CollectorRegistry())) as test_client:
        yield test_client


def calls(client: TestClient) -> tuple[float, float]:
    """(model calls, images scored) so far, from the gateway's own metrics."""
    registry: CollectorRegistry = client.app.state.metrics.registry  # type: ignore[attr-defined]
    count = registry.get_sample_value("gateway_batch_size_images_count") or 0.0
    return count, registry.get_sample_value("gateway_batch_size_images_sum") or 0.0


def expected(client: TestClient, images: list[bytes]) -> list[float]:
    model = client.app.state.backend.scoring.model  # type: ignore[attr-defined]
    size = model.metadata.input_height
    pixels = np.stack([imaging.load_radiograph(data, size).pixels for data in images])[..., None]
    return [float(p) for p in model.predict(pixels)]


def test_concurrent_requests_are_scored_in_one_call(client: TestClient) -> None:
    images = [png(seed) for seed in range(4)]
    before = calls(client)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda data: client.post("/v1/predict", content=data,
                                                          headers={"content-type": "image/png"}), images))
    assert [a.status_code for a in answers] == [200] * 4
    after = calls(client)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 4)  # four requests, one model call of four images
    np.testing.assert_allclose([a.json()["probability"] for a in answers], expected(client, images), atol=1e-5)


def test_a_batch_request_is_split_at_the_batch_size_and_answered_in_order(client: TestClient) -> None:
    images = [png(seed) for seed in range(10, 16)]
    before = calls(client)
    response = client.post("/v1/predict/batch", files=[("files", (f"{i}.png", d, "image/png")) for i, d in
                                                          enumerate(images)])
    assert response.status_code == 200, response.text
    after = calls(client)
    assert (after[0] - before[0], after[1] - before[1]) == (2, 6)  # 4 + 2
    got = [item["probability"] for item in response.json()["results"]]
    np.testing.assert_allclose(got, expected(client, images), atol=1e-5)
