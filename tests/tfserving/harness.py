"""Test harness for the TF Serving path: gateway settings, model roots of symlinked versions, metric scraping.
The gateway itself runs with `devtools.live_servers.gateway_thread`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from radiograph.contract import resolve_model_dir
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
