"""The gateway's drift window and gauges: bounded, exact against the reference, safe under concurrent
requests, and unavailable (not failing) for a model without a reference."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from radiograph import acquisition
from radiograph.contract import ModelMetadata, resolve_model_dir
from radiograph.drift import PROBABILITY, DriftReference
from radiograph.savedmodel import LoadedModel
from serving.config import SHIPPED_MODEL_DIR, Settings
from serving.inference.base import Inference
from serving.main import create_app
from serving.observability.drift import FEATURES, DriftMonitor, Window

SHIPPED = resolve_model_dir(SHIPPED_MODEL_DIR)[1]
"""The shipped version, whose reference is committed."""


class ScoresBackend:
    """A fake backend (no TensorFlow) answering as model `version` with P drawn from `probabilities`."""

    name = "fake"

    def __init__(self, metadata: ModelMetadata, version: int, probabilities: np.ndarray) -> None:
        self._metadata, self.version, self.probabilities = metadata, version, probabilities
        self._calls = 0
        self._lock = threading.Lock()

    async def start(self) -> None:
        pass

    async def predict(self, images: np.ndarray, request_id: str) -> Inference:
        with self._lock:
            start, self._calls = self._calls, self._calls + len(images)
        p = np.take(self.probabilities, np.arange(start, start + len(images)), mode="wrap")
        return Inference(p.astype(np.float32), self.version)

    async def metadata(self, version: int | None = None) -> ModelMetadata:
        return self._metadata

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        pass


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text) for s in family.samples if s.name == name
    }


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")  # lossless at 224×224: scored as it is
    return buffer.getvalue()


def test_the_window_is_bounded_and_its_counts_match_its_ring(shipped_reference: DriftReference) -> None:
    window = Window(shipped_reference.features, size=50)
    rng = np.random.default_rng(3)
    allocated = window.bins.nbytes + window.counts.nbytes
    for _ in range(40):  # 2000 images through a window of 50
        values = {name: rng.normal(100, 50, 50) for name in FEATURES} | {PROBABILITY: rng.random(50)}
        window.add(window.bin_rows(values))
    assert window.n == 50 and window.bins.shape == (50, len(FEATURES))
    assert window.bins.nbytes + window.counts.nbytes == allocated < 16_000
    for column in range(len(FEATURES)):
        assert window.counts[column].tolist() == np.bincount(window.bins[:, column],
                                                             minlength=window.counts.shape[1]).tolist()


def test_the_gauges_are_the_psi_of_the_last_window_images(
    shipped_reference: DriftReference, shipped_model_dir: Path, validation_pixels: np.ndarray
) -> None:
    registry = CollectorRegistry()
    monitor = DriftMonitor(shipped_model_dir, window=100, registry=registry)
    pixels = validation_pixels[:250]
    probabilities = np.linspace(0, 1, len(pixels))
    for start in range(0, 250, 7):  # uneven batches; the window slides past the first 150
        monitor.observe(SHIPPED, list(pixels[start:start + 7]), probabilities[start:start + 7])
    traits = acquisition.traits_of(pixels[-100:])
    expected = {name: shipped_reference.features[name].psi(traits[:, i])
                for i, name in enumerate(acquisition.FEATURES)}
    expected[PROBABILITY] = shipped_reference.features[PROBABILITY].psi(probabilities[-100:])
    gauges = {dict(k)["feature"]: v for k, v in samples(generate(registry), "gateway_input_drift").items()}
    assert gauges == pytest.approx(expected)
    expected_status = {str(SHIPPED): {"reference": True, "images": 100, "psi": gauges,
                                      "references": dict.fromkeys(FEATURES, "validation"), "site_baseline": None}}
    assert monitor.status() == {"window": 100, "versions": expected_status}


def generate(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


def test_no_gauge_until_the_window_is_full(shipped_model_dir: Path, validation_pixels: np.ndarray) -> None:
    registry = CollectorRegistry()
    monitor = DriftMonitor(shipped_model_dir, window=20, registry=registry)
    monitor.observe(SHIPPED, list(validation_pixels[:19]), np.full(19, 0.5))
    text = generate(registry)
    assert samples(text, "gateway_input_drift") == {}
    assert samples(text, "gateway_drift_window_images") == {(("model_version", str(SHIPPED)),): 19}
    monitor.observe(SHIPPED, list(validation_pixels[19:20]), np.full(1, 0.5))
    assert len(samples(generate(registry), "gateway_input_drift")) == len(FEATURES)


def test_a_model_without_a_reference_is_reported_unavailable(tmp_path: Path, shipped_model_dir: Path,
                                                             validation_pixels: np.ndarray) -> None:
    registry = CollectorRegistry()
    wrong_file = tmp_path / "other.json"
    wrong_file.write_text((shipped_model_dir / "4/assets.extra/drift_reference.json").read_text())
    for source, version in ((tmp_path, 4), (wrong_file, 5), (None, 4)):  # missing; another version's; none
        registry = CollectorRegistry()
        monitor = DriftMonitor(source, window=5, registry=registry)
        monitor.observe(version, list(validation_pixels[:10]), np.full(10, 0.5))
        text = generate(registry)
        assert samples(text, "gateway_drift_reference") == {(("model_version", str(version)),): 0}
        assert samples(text, "gateway_input_drift") == {}
        assert monitor.status()["versions"] == {str(version): {
            "reference": False, "images": 0, "psi": None, "references": {}, "site_baseline": None}}


def test_only_the_last_versions_keep_a_window(shipped_model_dir: Path, validation_pixels: np.ndarray) -> None:
    registry = CollectorRegistry()
    monitor = DriftMonitor(shipped_model_dir, window=5, registry=registry)
    for version in (1, 2, 3, 4, 5, 6):
        monitor.observe(version, list(validation_pixels[:5]), np.full(5, 0.5))
    versions = {dict(k)["model_version"] for k in samples(generate(registry), "gateway_drift_reference")}
    assert versions == {"4", "5", "6"} and set(monitor.status()["versions"]) == {"4", "5", "6"}  # type: ignore[arg-type]


def test_the_monitor_survives_concurrent_observers(shipped_model_dir: Path, validation_pixels: np.ndarray) -> None:
    registry = CollectorRegistry()
    monitor = DriftMonitor(shipped_model_dir, window=64, registry=registry)
    pixels = validation_pixels[:96]

    def feed(worker: int) -> None:
        for start in range(worker, 96, 8):
            monitor.observe(SHIPPED, [pixels[start]], np.array([start / 96]))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(feed, range(8)))
    status = monitor.status()["versions"][str(SHIPPED)]  # type: ignore[index]
    assert status["images"] == 64 and set(status["psi"]) == set(FEATURES)
    assert all(np.isfinite(v) and v >= 0 for v in status["psi"].values())


def test_the_gateway_reports_drift_under_concurrent_requests(
    shipped_model: LoadedModel, shipped_model_dir: Path, validation_pixels: np.ndarray
) -> None:
    """The one data plane feeds the window: single and batch requests from 8 threads at once."""
    bodies = [png(p) for p in validation_pixels[:48]]
    backend = ScoresBackend(shipped_model.metadata, SHIPPED, np.linspace(0.01, 0.99, 48))
    registry = CollectorRegistry()
    app = create_app(Settings(model_dir=shipped_model_dir, drift_window=32), backend=backend, registry=registry)
    with TestClient(app) as client:

        def one(k: int) -> int:
            if k % 4 == 0:
                files = [("files", (f"{k + j}.png", bodies[k + j], "image/png")) for j in range(4)]
                return client.post("/v1/predict/batch", files=files).status_code
            return client.post("/v1/predict", content=bodies[k], headers={"content-type": "image/png"}).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(0, 48)))
        assert set(statuses) == {200}
        text = client.get("/metrics").text
        drift = client.get("/v1/drift").json()
    assert samples(text, "gateway_drift_reference") == {(("model_version", str(SHIPPED)),): 1}
    assert samples(text, "gateway_drift_window_images") == {(("model_version", str(SHIPPED)),): 32}
    gauges = {dict(k)["feature"]: v for k, v in samples(text, "gateway_input_drift").items()}
    assert set(gauges) == set(FEATURES) and all(np.isfinite(v) and v >= 0 for v in gauges.values())
    expected_status = {str(SHIPPED): {"reference": True, "images": 32, "psi": pytest.approx(gauges),
                                      "references": dict.fromkeys(FEATURES, "validation"), "site_baseline": None}}
    assert drift == {"window": 32, "versions": expected_status}


def test_a_version_without_a_reference_still_serves(shipped_model: LoadedModel, tmp_path: Path,
                                                    validation_pixels: np.ndarray) -> None:
    backend = ScoresBackend(shipped_model.metadata, 3, np.array([0.9]))
    app = create_app(Settings(model_dir=tmp_path, drift_window=4), backend=backend, registry=CollectorRegistry())
    with TestClient(app) as client:
        response = client.post("/v1/predict", content=png(validation_pixels[0]), headers={"content-type": "image/png"})
        assert response.status_code == 200 and response.json()["model_version"] == 3
        assert client.get("/v1/drift").json() == {"window": 4, "versions": {"3": {
            "reference": False, "images": 0, "psi": None, "references": {}, "site_baseline": None}}}
        assert 'gateway_drift_reference{model_version="3"} 0.0' in client.get("/metrics").text


def test_drift_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings().drift_window == 500
    assert Settings().drift_reference_source() == Settings().model_dir  # embedded: the model's own folder
    assert Settings(serving_address="tfserving:8500").drift_reference_source() is None  # not set: unavailable
    monkeypatch.setenv("GATEWAY_DRIFT_REFERENCE", str(tmp_path))
    monkeypatch.setenv("GATEWAY_DRIFT_WINDOW", "200")
    settings = Settings(serving_address="tfserving:8500")
    assert (settings.drift_reference_source(), settings.drift_window) == (tmp_path, 200)
