"""Test harness for the TF Serving path: the gateway on a real uvicorn in a thread (its gRPC channel
lives on that thread's event loop), model roots of symlinked versions, metric scraping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from radiograph.contract import resolve_model_dir
from serving.config import SHIPPED_MODEL_DIR, Settings
from serving.main import create_app

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


@contextmanager
def running_gateway(settings: Settings) -> Iterator[httpx.Client]:
    """The gateway app on a real uvicorn on a free loopback port; yields a client pointed at it."""
    app = create_app(settings, registry=CollectorRegistry())
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


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
