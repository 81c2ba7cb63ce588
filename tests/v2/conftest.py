"""Fixtures of the Open Inference Protocol tests: the gateway on the shipped model (embedded backend, uvicorn on
loopback, API keys required, gRPC port on), a batch of four images of the three formats, and /v1's answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from devtools import dicom_files
from devtools.live_servers import GENEROUS_UPSTREAM_TIMEOUT_S, free_port, gateway_thread
from serving.config import Settings
from serving.main import create_app
from tests.v2.live import API_KEY, LiveV2, Picture, gray, png


@pytest.fixture(scope="session")
def v2_gateway() -> Iterator[LiveV2]:
    settings = Settings(
        api_keys=f"mlops:{API_KEY}",
        grpc_port=free_port(),
        upstream_timeout_s=GENEROUS_UPSTREAM_TIMEOUT_S,
        log_level="WARNING",
    )
    app = create_app(settings, registry=CollectorRegistry())
    with gateway_thread(settings, app=app) as client:
        client.headers["x-api-key"] = API_KEY
        yield LiveV2(client, client.base_url.netloc.decode(), f"127.0.0.1:{settings.grpc_port}", app)


@pytest.fixture(scope="session")
def mixed_batch(fullres_samples: list[tuple[Path, str]], data_dir: Path) -> list[Picture]:
    """JPEG, PNG, DICOM, JPEG: a 224×224 NORMAL training picture, then full-resolution originals (the PNG and the
    DICOM made from two)."""
    paths = [path for path, _ in fullres_samples]
    dicom = dicom_files.to_bytes(dicom_files.monochrome2_8bit(gray(paths[-2])))
    return [
        Picture("image/jpeg", sorted((data_dir / "train" / "NORMAL").glob("*.jpeg"))[0].read_bytes()),
        Picture("image/png", png(gray(paths[1]))),
        Picture("application/dicom", dicom),
        Picture("image/jpeg", paths[-1].read_bytes()),
    ]


@pytest.fixture(scope="session")
def v1_answers(v2_gateway: LiveV2, mixed_batch: list[Picture]) -> list[dict]:
    """/v1/predict's answer for each image of the batch, one request each."""
    answers = []
    for picture in mixed_batch:
        headers = {"content-type": picture.media_type}
        response = v2_gateway.http.post("/v1/predict", content=picture.data, headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers
