"""A precision other than float32 is served only with operating points validated in it, at the model's thresholds,
keeping the screening sensitivity target; `auto` passes over one that does not; the gateway refuses to start
with one asked for explicitly. `training.precision_points` writes the figures the gateway reads."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from radiograph import openvino_model
from radiograph.precision import PointFigures, PrecisionFigures, PrecisionPoints, refusal
from radiograph.runtime import RuntimeRefused, open_scoring
from radiograph.savedmodel import LoadedModel
from serving.config import Settings
from serving.main import create_app
from serving.scoring import StartupRefused
from training.precision_points import precision_points

NATIVE_BF16 = openvino_model.native_bfloat16()
needs_native_bf16 = pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16")


@pytest.fixture
def model_copy(tiny_model: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model root whose version folder can take a points file."""
    shutil.copytree(tiny_model, tmp_path / "models")
    return tmp_path / "models"


def points(screening_sensitivity: float, screening_threshold: float = 0.5) -> PrecisionPoints:
    def figures(sensitivity: float, threshold: float) -> PointFigures:
        return PointFigures(threshold=threshold, sensitivity=sensitivity, specificity=0.9, flipped=0)

    bf16 = PrecisionFigures(
        runtime="openvino", auc=0.99, max_abs_difference=0.01, mean_abs_difference=0.001,
        operating_points={"screening": figures(screening_sensitivity, screening_threshold),
                          "balanced": figures(0.95, 0.6)},
    )
    return PrecisionPoints(model_version=1, split="test", n_positive=50, n_negative=50,
                           targets={"screening": 0.98}, precisions={"bfloat16": bf16})


def test_the_refusal_rule(model_copy: Path) -> None:
    metadata = LoadedModel.from_dir(model_copy).metadata
    assert refusal(metadata, None, "float32") is None  # the thresholds were chosen in float32
    assert "no validated operating points" in str(refusal(metadata, None, "bfloat16"))
    assert refusal(metadata, points(0.99), "bfloat16") is None
    assert refusal(metadata, points(0.98), "bfloat16") is None
    assert "sensitivity of 0.970, below its target 0.98" in str(refusal(metadata, points(0.97), "bfloat16"))
    assert "not taken at the model's 'screening' threshold" in str(refusal(metadata, points(0.99, 0.4), "bfloat16"))


def test_an_unvalidated_bfloat16_is_refused(model_copy: Path, tmp_path: Path) -> None:
    reference = LoadedModel.from_dir(model_copy)
    expected = "no validated operating points" if NATIVE_BF16 else "no native bfloat16"
    with pytest.raises(RuntimeRefused, match=expected):
        open_scoring(reference, "openvino", "bfloat16", tmp_path / "cache")
    with pytest.raises(RuntimeRefused, match="openvino runtime only"):
        open_scoring(reference, "tensorflow", "bfloat16", tmp_path / "cache")


@needs_native_bf16
def test_bfloat16_below_its_target_is_refused_and_auto_passes_it_over(model_copy: Path, tmp_path: Path) -> None:
    points(0.97).write(model_copy / "1")
    reference = LoadedModel.from_dir(model_copy)
    with pytest.raises(RuntimeRefused, match="below its target"):
        open_scoring(reference, "openvino", "bfloat16", tmp_path / "cache")
    chosen = open_scoring(reference, "auto", "auto", tmp_path / "cache")
    assert (chosen.runtime, chosen.precision) == ("openvino", "float32")
    assert any("below its target" in reason for reason in chosen.passed_over)


@needs_native_bf16
def test_auto_serves_a_validated_bfloat16(model_copy: Path, tmp_path: Path) -> None:
    points(0.99).write(model_copy / "1")
    chosen = open_scoring(LoadedModel.from_dir(model_copy), "auto", "auto", tmp_path / "cache")
    assert (chosen.runtime, chosen.precision) == ("openvino", "bfloat16")


def test_the_gateway_refuses_to_start_with_an_unvalidated_precision(model_copy: Path, tmp_path: Path) -> None:
    settings = Settings(model_dir=model_copy, inference_precision="bfloat16", openvino_cache_dir=tmp_path / "cache")
    app = create_app(settings, registry=CollectorRegistry())
    refusal_text = "GATEWAY_INFERENCE_PRECISION='bfloat16' cannot be served"
    with pytest.raises(StartupRefused, match=refusal_text), TestClient(app):
        pass


def test_precision_points_are_taken_at_the_models_thresholds(model_copy: Path, tmp_path: Path) -> None:
    reference = LoadedModel.from_dir(model_copy)
    pixels = np.asarray(np.random.default_rng(3).integers(0, 256, (24, 64, 64)), np.uint8)
    labels = np.array([0, 1] * 12)
    scored = precision_points(reference, pixels, labels, "random pictures", tmp_path / "cache")
    assert set(scored.precisions) == ({"float32", "bfloat16"} if NATIVE_BF16 else {"float32"})
    float32 = scored.precisions["float32"]
    assert float32.max_abs_difference <= 1e-4 and float32.operating_points["screening"].flipped == 0
    for figures in scored.precisions.values():
        thresholds = {name: p.threshold for name, p in figures.operating_points.items()}
        assert thresholds == {"screening": 0.5, "balanced": 0.6}
    assert scored.targets == {"screening": 0.98} and (scored.n_positive, scored.n_negative) == (12, 12)
    scored.write(reference.path)
    assert PrecisionPoints.read(reference.path) == scored
