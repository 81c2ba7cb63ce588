"""Shared fixtures: the data set beside the repo, the shipped model, and the gateway app on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from serving.config import SHIPPED_MODEL_DIR, Settings
from serving.main import create_app

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CHEST_XRAY_DIR", REPO.parent / "shared" / "data" / "chest_xray"))
WEIGHTS = Path(
    os.environ.get("XCEPTION_WEIGHTS", REPO.parent / "shared" / "weights" / "xception_imagenet_notop.weights.h5")
)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA_DIR.is_dir(), f"the data set is expected at {DATA_DIR} (set CHEST_XRAY_DIR)"
    return DATA_DIR


@pytest.fixture(scope="session")
def fullres_samples(data_dir: Path) -> list[tuple[Path, str]]:
    """The 16 full-resolution originals as (path, true label)."""
    root = data_dir / "fullres_samples"
    samples = [(path, path.parent.name) for path in sorted(root.glob("*/*.jpeg"))]
    assert len(samples) == 16
    return samples


@pytest.fixture(scope="session")
def shipped_model_dir() -> Path:
    return SHIPPED_MODEL_DIR


@pytest.fixture(scope="session")
def gateway() -> Iterator[TestClient]:
    """The gateway on the shipped model (embedded backend), started once per session; its
    lifespan loads the model. Tests that count metrics compare before/after values."""
    app = create_app(Settings(), registry=CollectorRegistry())
    with TestClient(app) as client:
        yield client
