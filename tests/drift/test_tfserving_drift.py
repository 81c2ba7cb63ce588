"""Drift with the TF Serving backend: the gateway reads the reference of the version Serving answered
with from GATEWAY_DRIFT_REFERENCE (the model repository, mounted read-only); unset, drift is
unavailable and scoring goes on. Against the local stand-in (real gRPC, real SavedModel)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devtools.live_servers import gateway_thread
from localserving import BackgroundServer
from radiograph.contract import resolve_model_dir
from serving.config import SHIPPED_MODEL_DIR
from serving.observability.drift import FEATURES
from tests.tfserving.harness import MODEL_NAME, gateway_settings, link_version, metric

VERSION = resolve_model_dir(SHIPPED_MODEL_DIR)[1]  # the shipped version, whose reference is committed


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drift-serving") / MODEL_NAME
    root.mkdir()
    link_version(root, VERSION)
    return root


@pytest.fixture(scope="module")
def serving(model_root: Path) -> Iterator[BackgroundServer]:
    server = BackgroundServer(model_root, MODEL_NAME)
    server.start()
    yield server
    server.close()


def pngs(pixels: np.ndarray) -> list[bytes]:
    bodies = []
    for picture in pixels:
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, "PNG")
        bodies.append(buffer.getvalue())
    return bodies


def test_drift_through_tf_serving(serving: BackgroundServer, model_root: Path, validation_pixels: np.ndarray) -> None:
    settings = gateway_settings(serving.address, drift_reference=model_root, drift_window=4, upstream_timeout_s=30)
    with gateway_thread(settings) as client:
        for body in pngs(validation_pixels[:5]):
            response = client.post("/v1/predict", content=body, headers={"content-type": "image/png"})
            assert response.status_code == 200 and response.json()["model_version"] == VERSION
        labels = {"model_version": str(VERSION)}
        assert metric(client, "gateway_drift_reference", labels) == 1
        assert metric(client, "gateway_drift_window_images", labels) == 4
        psi = client.get("/v1/drift").json()["versions"][str(VERSION)]["psi"]
        assert set(psi) == set(FEATURES)
        sharpness = metric(client, "gateway_input_drift", labels | {"feature": "sharpness"})
        assert sharpness == pytest.approx(psi["sharpness"])


def test_without_a_reference_setting_drift_is_unavailable(serving: BackgroundServer,
                                                          validation_pixels: np.ndarray) -> None:
    settings = gateway_settings(serving.address, drift_window=4, upstream_timeout_s=30)
    with gateway_thread(settings) as client:
        response = client.post("/v1/predict", content=pngs(validation_pixels[:1])[0],
                               headers={"content-type": "image/png"})
        assert response.status_code == 200
        assert metric(client, "gateway_drift_reference", {"model_version": str(VERSION)}) == 0
        assert client.get("/v1/drift").json()["versions"] == {
            str(VERSION): {"reference": False, "images": 0, "psi": None, "references": {}, "site_baseline": None}
        }
