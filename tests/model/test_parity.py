"""Train/serve parity: the gateway and `evaluate`, both with their default settings, score with the same runtime
and precision (`radiograph.runtime.open_scoring`) and give the same probability for the same file."""

from __future__ import annotations

import csv
from pathlib import Path

from fastapi.testclient import TestClient

from radiograph.runtime import DEFAULT_CACHE_DIR, open_scoring
from radiograph.savedmodel import LoadedModel
from training.evaluate import evaluate, examples_for

PER_CLASS = 10


def test_gateway_matches_evaluate(gateway: TestClient, data_dir: Path, shipped_model_dir: Path, tmp_path: Path) -> None:
    model = LoadedModel.from_dir(shipped_model_dir)
    scoring = open_scoring(model, cache_dir=DEFAULT_CACHE_DIR)  # what `python -m training evaluate` uses by default
    served = gateway.app.state.backend.scoring  # type: ignore[attr-defined]
    assert (served.runtime, served.precision) == (scoring.runtime, scoring.precision)
    val = examples_for(data_dir, "val", model)
    chosen = [e for e in val if e.label == 0][:PER_CLASS] + [e for e in val if e.label == 1][:PER_CLASS]
    evaluate(scoring.model, chosen, tmp_path)
    with (tmp_path / "predictions.csv").open() as handle:
        offline = [float(row["probability"]) for row in csv.DictReader(handle)]
    for example, expected in zip(chosen, offline, strict=True):
        response = gateway.post("/v1/predict", files={"file": ("x.jpeg", example.path.read_bytes(), "image/jpeg")})
        assert response.status_code == 200
        assert abs(response.json()["probability"] - expected) <= 1e-4, example.path.name
