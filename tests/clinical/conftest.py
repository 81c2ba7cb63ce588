"""Fixtures of the clinical tests: a few training pictures as the gateway's JPEG path sees them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from radiograph import imaging
from radiograph.contract import ModelMetadata
from radiograph.savedmodel import LoadedModel
from tests.clinical.pictures import Picture

PER_CLASS = 3


def _score(gateway: TestClient, data: bytes, media: str) -> dict[str, object]:
    response = gateway.post("/v1/predict", content=data, headers={"content-type": media})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session")
def model_metadata(shipped_model_dir: Path) -> ModelMetadata:
    """Read from the SavedModel itself, independently of the gateway."""
    return LoadedModel.from_dir(shipped_model_dir).metadata


@pytest.fixture(scope="session")
def pictures(gateway: TestClient, data_dir: Path) -> list[Picture]:
    """The first training pictures of each class, with the gateway's answer for their JPEG."""
    result = []
    for truth in ("NORMAL", "PNEUMONIA"):
        for path in sorted((data_dir / "train" / truth).glob("*.jpeg"))[:PER_CLASS]:
            jpeg = path.read_bytes()
            gray = np.asarray(imaging.decode(jpeg).convert("L"))
            body = _score(gateway, jpeg, "image/jpeg")
            result.append(Picture(path.name, truth, jpeg, gray, float(body["probability"]), float(body["threshold"])))
    return result
