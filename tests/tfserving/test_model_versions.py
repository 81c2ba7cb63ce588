"""Versions rolled out by Serving reach the gateway without a restart; labels pin a version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.live_servers import GENEROUS_UPSTREAM_TIMEOUT_S, gateway_thread
from localserving import BackgroundServer
from tests.tfserving.harness import MODEL_NAME, gateway_settings, link_version, metric, wait_for


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, BackgroundServer]]:
    """A stand-in of its own (the test changes its versions), version 1 only at first."""
    root = tmp_path_factory.mktemp("rollout") / MODEL_NAME
    root.mkdir()
    link_version(root, 1)
    server = BackgroundServer(root, MODEL_NAME, labels={"stable": 1}, poll_s=0.1)
    server.start()
    yield root, server
    server.close()


def predict(client: httpx.Client, data: bytes) -> dict[str, object]:
    response = client.post("/v1/predict", content=data, headers={"content-type": "image/jpeg"})
    assert response.status_code == 200, response.text
    return response.json()


def test_new_version_on_disk_is_reported_without_restart(
    rollout: tuple[Path, BackgroundServer], fullres_samples
) -> None:
    root, server = rollout
    data = fullres_samples[0][0].read_bytes()
    timeout = {"upstream_timeout_s": GENEROUS_UPSTREAM_TIMEOUT_S}  # the stand-in loads version 2 while requests run
    default = gateway_settings(server.address, **timeout)
    pinned = gateway_settings(server.address, model_version_label="stable", **timeout)
    with gateway_thread(default) as latest, gateway_thread(pinned) as stable:
        first = predict(latest, data)
        assert first["model_version"] == 1
        assert predict(stable, data)["model_version"] == 1

        link_version(root, 2)
        wait_for(lambda: predict(latest, data)["model_version"] == 2, 60, "version 2 to be served")
        second = predict(latest, data)
        assert abs(second["probability"] - first["probability"]) <= 1e-5  # the same weights, linked twice
        assert second["threshold"] == first["threshold"]  # metadata fetched for version 2 and used
        info = {"backend": "tfserving", "model_name": MODEL_NAME}
        assert metric(latest, "gateway_model_info", info | {"model_version": "2"}) == 1
        assert metric(latest, "gateway_model_info", info | {"model_version": "1"}) == 0
        assert metric(latest, "gateway_predictions_total", {"model_version": "2"}) >= 1
        assert predict(stable, data)["model_version"] == 1  # the label still points at version 1
