"""Test harness for the TF Serving path: gateway settings, model roots of symlinked versions, metric scraping.
The gateway itself runs with `devtools.live_servers.gateway_thread`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from radiograph.contract import resolve_model_dir
from radiograph.precision import PrecisionPoints
from serving.config import SHIPPED_MODEL_DIR, Settings

MODEL_NAME = "pneumonia"
TIMEOUT_S = 2.0
"""The test gateways' upstream deadline (the default): CPU inference on a busy 2-core machine needs it."""


def link_version(root: Path, version: int) -> None:
    """`root/<version>` → the shipped model's newest version directory (a symlink, not an 82 MB copy)."""
    shipped, _ = resolve_model_dir(SHIPPED_MODEL_DIR)
    (root / str(version)).symlink_to(shipped, target_is_directory=True)


def gateway_settings(address: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "serving_address": address,
        "model_name": MODEL_NAME,
        "upstream_timeout_s": TIMEOUT_S,
        "readiness_cache_s": 0.2,
        "max_batch_images": 4,
    }
    return Settings(**(values | overrides))


def embedded_tolerance(gateway: TestClient) -> float:
    """How far the embedded gateway's P may be from TensorFlow float32, what the Serving stand-in runs: OpenVINO's
    conversion in float32 (1e-4), the served precision's stored validation max |ΔP| otherwise."""
    scoring = gateway.app.state.backend.scoring  # type: ignore[attr-defined]
    if scoring.precision == "float32":
        return 1e-4
    points = PrecisionPoints.read(scoring.model.path)
    assert points is not None
    return points.precisions[scoring.precision].max_abs_difference


def same_verdict(remote: dict, local: dict, tolerance: float) -> bool:
    """Same P within `tolerance`; the same label unless P lies within `tolerance` of the threshold."""
    near = abs(remote["probability"] - remote["threshold"]) <= tolerance
    same_label = near or remote["label"] == local["label"]
    return abs(remote["probability"] - local["probability"]) <= tolerance and same_label


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def metric(client: httpx.Client, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0
