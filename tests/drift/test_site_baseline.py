"""The site baseline (issue 26, item 7): against the model's validation reference (about 74% PNEUMONIA) a site's
ordinary case mix alone reads as drift; against the site's own first images, only a change does. The baseline is
frozen once, kept across restarts (a collection in progress too), written atomically, and reported in the gauges'
`reference` label and by GET /v1/drift.

The site's scores are a fake case mix (NORMAL P ~ Beta(1, 12), PNEUMONIA P ~ Beta(12, 1)); the pictures are real
validation pictures, so the input features are the real ones."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from radiograph.drift import NOTABLE, PROBABILITY, SIGNIFICANT, DriftReference, write_atomically
from radiograph.savedmodel import LoadedModel
from serving.config import Settings
from serving.main import create_app
from serving.observability.drift import FEATURES, DriftMonitor
from serving.observability.site_baseline import SAVE_EVERY, SiteBaseline
from tests.drift.test_gateway_drift import SHIPPED, ScoresBackend, generate, png, samples


def site_scores(rng: np.random.Generator, n: int, prevalence: float) -> np.ndarray:
    positive = rng.random(n) < prevalence
    return np.where(positive, rng.beta(12, 1, n), rng.beta(1, 12, n))


def feed(monitor: DriftMonitor, pixels: np.ndarray, probabilities: np.ndarray, start: int = 0, batch: int = 10) -> None:
    """Scored images in batches, the pictures taken in turn from `pixels` from `start` on."""
    for i in range(0, len(probabilities), batch):
        chosen = [pixels[(start + i + j) % len(pixels)] for j in range(min(batch, len(probabilities) - i))]
        monitor.observe(SHIPPED, chosen, probabilities[i : i + len(chosen)])


def version_status(monitor: DriftMonitor) -> dict:
    return monitor.status()["versions"][str(SHIPPED)]  # type: ignore[index]


def test_the_site_baseline_measures_change_not_case_mix(
    tmp_path: Path, shipped_model_dir: Path, validation_pixels: np.ndarray
) -> None:
    registry = CollectorRegistry()
    monitor = DriftMonitor(shipped_model_dir, window=250, registry=registry, baseline_dir=tmp_path, baseline_images=500)
    rng = np.random.default_rng(0)
    feed(monitor, validation_pixels, site_scores(rng, 490, prevalence=0.1))  # go-live: a 10% prevalence site
    collecting = version_status(monitor)
    assert collecting["references"] == dict.fromkeys(FEATURES, "validation")
    assert collecting["site_baseline"] == {"images": 490, "of": 500, "frozen": False}
    against_validation = collecting["psi"][PROBABILITY]
    assert against_validation > SIGNIFICANT  # the case mix alone would fire ScoreDrift

    feed(monitor, validation_pixels, site_scores(rng, 10, prevalence=0.1), start=490)  # the 500th image freezes it
    frozen = version_status(monitor)
    assert frozen["site_baseline"] == {"images": 500, "of": 500, "frozen": True}
    assert frozen["references"] == dict.fromkeys(acquisition_features(), "validation") | {PROBABILITY: "site"}
    assert frozen["images"] == 0 and frozen["psi"] is None  # a new window, filled from the next image on
    assert samples(generate(registry), "gateway_input_drift") == {}

    feed(monitor, validation_pixels, site_scores(rng, 250, prevalence=0.1), start=500)  # the same site, later
    same_site = version_status(monitor)["psi"][PROBABILITY]
    gauges = samples(generate(registry), "gateway_input_drift")
    assert gauges[(("feature", PROBABILITY), ("model_version", str(SHIPPED)), ("reference", "site"))] == same_site
    assert {dict(k)["reference"] for k in gauges if dict(k)["feature"] != PROBABILITY} == {"validation"}
    assert same_site < NOTABLE, (against_validation, same_site)

    feed(monitor, validation_pixels, site_scores(rng, 250, prevalence=0.5), start=750)  # an outbreak
    outbreak = version_status(monitor)["psi"][PROBABILITY]
    assert outbreak > SIGNIFICANT, outbreak
    print(f"\nP(pneumonia) PSI of a 10% prevalence site: {against_validation:.2f} against validation, "
          f"{same_site:.3f} against its own baseline; 50% prevalence against the baseline: {outbreak:.2f}")


def acquisition_features() -> list[str]:
    return [name for name in FEATURES if name != PROBABILITY]


def test_the_baseline_is_kept_across_restarts(tmp_path: Path, shipped_model_dir: Path,
                                              validation_pixels: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    first = DriftMonitor(shipped_model_dir, window=20, registry=CollectorRegistry(), baseline_dir=tmp_path,
                         baseline_images=60, baseline_inputs=True)
    feed(first, validation_pixels, site_scores(rng, 60, 0.2))
    assert sorted(os.listdir(tmp_path)) == [f"site_baseline_v{SHIPPED}.json"]  # no temporary or partial file left
    saved = DriftReference.load(tmp_path / f"site_baseline_v{SHIPPED}.json")
    assert (saved.model_version, saved.n, set(saved.features)) == (SHIPPED, 60, set(FEATURES))

    registry = CollectorRegistry()
    restarted = DriftMonitor(shipped_model_dir, window=20, registry=registry, baseline_dir=tmp_path,
                             baseline_images=60, baseline_inputs=True)
    feed(restarted, validation_pixels, site_scores(rng, 20, 0.2), start=60)
    status = version_status(restarted)
    assert status["site_baseline"] == {"images": 60, "of": 60, "frozen": True}
    assert status["references"] == dict.fromkeys(FEATURES, "site") and status["images"] == 20
    assert {dict(k)["reference"] for k in samples(generate(registry), "gateway_input_drift")} == {"site"}
    assert samples(generate(registry), "gateway_drift_site_baseline_images") == {
        (("model_version", str(SHIPPED)),): 60}


def test_a_collection_in_progress_resumes_after_a_restart(tmp_path: Path, shipped_model_dir: Path,
                                                          validation_pixels: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    scores = site_scores(rng, 200, 0.2)
    first = DriftMonitor(shipped_model_dir, window=20, registry=CollectorRegistry(), baseline_dir=tmp_path,
                         baseline_images=200)
    feed(first, validation_pixels, scores[:130])
    assert version_status(first)["site_baseline"]["images"] == 130
    restarted = DriftMonitor(shipped_model_dir, window=20, registry=CollectorRegistry(), baseline_dir=tmp_path,
                             baseline_images=200)
    saved = 130 // SAVE_EVERY * SAVE_EVERY  # what the last save held: at most SAVE_EVERY images are lost
    feed(restarted, validation_pixels, scores[saved:200], start=saved)
    assert version_status(restarted)["site_baseline"] == {"images": 200, "of": 200, "frozen": True}
    frozen = DriftReference.load(tmp_path / f"site_baseline_v{SHIPPED}.json")
    expected = DriftMonitor(shipped_model_dir, window=20, registry=CollectorRegistry(), baseline_dir=tmp_path / "x",
                            baseline_images=200)
    feed(expected, validation_pixels, scores)  # the same 200 images without a restart
    once = DriftReference.load(tmp_path / "x" / f"site_baseline_v{SHIPPED}.json")
    for name in FEATURES:
        assert frozen.features[name].edges == pytest.approx(once.features[name].edges)


def test_an_unwritable_baseline_directory_keeps_the_baseline_in_memory(
    tmp_path: Path, shipped_model_dir: Path, validation_pixels: np.ndarray
) -> None:
    (tmp_path / "file").write_text("")
    monitor = DriftMonitor(shipped_model_dir, window=10, registry=CollectorRegistry(),
                           baseline_dir=tmp_path / "file" / "drift", baseline_images=10)
    feed(monitor, validation_pixels, np.linspace(0.05, 0.95, 20))
    status = version_status(monitor)
    assert status["site_baseline"]["frozen"] and status["references"][PROBABILITY] == "site"
    assert status["images"] == 10


def test_an_atomic_write_leaves_the_old_content_when_it_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "site_baseline_v5.json"
    write_atomically(path, b"old")

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == [path.name]


def test_an_atomic_write_is_readable_by_all_as_a_plain_write(tmp_path: Path) -> None:
    path = tmp_path / "drift_reference.json"
    write_atomically(path, b"{}")
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_gateway_reports_the_reference_in_use(
    tmp_path: Path, shipped_model: LoadedModel, shipped_model_dir: Path, validation_pixels: np.ndarray
) -> None:
    backend = ScoresBackend(shipped_model.metadata, SHIPPED, np.linspace(0.02, 0.4, 16))
    settings = Settings(model_dir=shipped_model_dir, drift_window=8, drift_baseline_dir=tmp_path,
                        drift_baseline_images=8)
    with TestClient(create_app(settings, backend=backend, registry=CollectorRegistry())) as client:
        for pixels in validation_pixels[:16]:
            response = client.post("/v1/predict", content=png(pixels), headers={"content-type": "image/png"})
            assert response.status_code == 200
        drift = client.get("/v1/drift").json()["versions"][str(SHIPPED)]
        text = client.get("/metrics").text
    assert drift["site_baseline"] == {"images": 8, "of": 8, "frozen": True} and drift["images"] == 8
    assert drift["references"][PROBABILITY] == "site"
    assert f'gateway_input_drift{{feature="probability",model_version="{SHIPPED}",reference="site"}}' in text
    assert (tmp_path / f"site_baseline_v{SHIPPED}.json").is_file()


def test_site_baseline_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert (Settings().drift_baseline_dir, Settings().drift_baseline_images, Settings().drift_baseline_inputs) == (
        None, 1000, False)
    monkeypatch.setenv("GATEWAY_DRIFT_BASELINE_DIR", str(tmp_path))
    monkeypatch.setenv("GATEWAY_DRIFT_BASELINE_IMAGES", "300")
    monkeypatch.setenv("GATEWAY_DRIFT_BASELINE_INPUTS", "true")
    assert (Settings().drift_baseline_dir, Settings().drift_baseline_images, Settings().drift_baseline_inputs) == (
        tmp_path, 300, True)


def test_a_baseline_folder_missing_on_a_fresh_volume_is_created(tmp_path: Path) -> None:
    folder = tmp_path / "spool" / "drift-baseline"  # as wired in k8s and compose: a folder not yet on the volume
    baseline = SiteBaseline(folder, SHIPPED, size=4, features=[PROBABILITY])
    baseline.open()
    assert baseline.add({PROBABILITY: np.array([0.1, 0.2, 0.7, 0.9])}) is not None
    assert DriftReference.load(folder / f"site_baseline_v{SHIPPED}.json").model_version == SHIPPED
