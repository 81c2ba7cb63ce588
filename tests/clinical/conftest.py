"""Fixtures of the clinical tests: a few training pictures as the gateway's JPEG path sees them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from radiograph import imaging
from radiograph.contract import ModelMetadata
from radiograph.savedmodel import LoadedModel

PER_CLASS = 3


@dataclass(frozen=True)
class Picture:
    name: str
    truth: str
    jpeg: bytes
    gray: np.ndarray
    """uint8 [H, W], the decoded JPEG (what a DICOM file of the same picture stores)."""
    probability: float
    """The gateway's answer for the JPEG."""
    threshold: float


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
            gray = np.asarray(imaging.decode(jpeg, 224).convert("L"))
            body = _score(gateway, jpeg, "image/jpeg")
            result.append(Picture(path.name, truth, jpeg, gray, float(body["probability"]), float(body["threshold"])))
    return result
