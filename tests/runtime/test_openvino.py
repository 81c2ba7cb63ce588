"""OpenVINO scores the SavedModel's own graph (equalisation, test-time views, every member) as TensorFlow does; the
converted model is cached by the SavedModel's bytes and checked against the SavedModel at every load; a mismatch
is refused, or passed over for TensorFlow under `auto`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from radiograph import openvino_model
from radiograph.openvino_model import ConversionFailed, OpenVinoModel, model_key
from radiograph.runtime import RuntimeRefused, open_scoring
from radiograph.savedmodel import LoadedModel


@pytest.fixture(scope="module")
def reference(tiny_model: Path) -> LoadedModel:
    return LoadedModel.from_dir(tiny_model)


def pictures(n: int, seed: int = 0) -> np.ndarray:
    return np.asarray(np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 1)), np.uint8)


def test_openvino_float32_gives_the_savedmodels_outputs(reference: LoadedModel, tmp_path: Path) -> None:
    model = OpenVinoModel(reference, "float32", tmp_path)
    for n in (1, 5):
        images = pictures(n, seed=n)
        expected, got = reference.outputs(images), model.outputs(images)
        assert set(got) == {"probability", "subtype_probabilities"}
        for name in expected:
            assert got[name].shape == expected[name].shape
            np.testing.assert_allclose(got[name], expected[name], atol=1e-5)


def test_the_conversion_is_cached_under_the_savedmodels_bytes(
    reference: LoadedModel, other_tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    OpenVinoModel(reference, "float32", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [model_key(reference.path)]

    def no_conversion(_: LoadedModel) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(openvino_model, "convert", no_conversion)
    cached = OpenVinoModel(reference, "float32", tmp_path)  # read from the cache
    assert cached.probe_difference <= 1e-5
    assert model_key(LoadedModel.from_dir(other_tiny_model).path) != model_key(reference.path)


def test_a_cached_model_that_is_not_the_savedmodel_is_refused(
    reference: LoadedModel, other_tiny_model: Path, tmp_path: Path
) -> None:
    other = LoadedModel.from_dir(other_tiny_model)
    OpenVinoModel(other, "float32", tmp_path)
    # the other model's conversion planted under this model's key: what a stale or corrupted cache would give
    shutil.move(tmp_path / model_key(other.path), tmp_path / model_key(reference.path))
    with pytest.raises(ConversionFailed, match="differs from the SavedModel"):
        OpenVinoModel(reference, "float32", tmp_path)
    with pytest.raises(RuntimeRefused, match="differs from the SavedModel"):
        open_scoring(reference, "openvino", "float32", tmp_path)
    fallback = open_scoring(reference, "auto", "auto", tmp_path)
    assert (fallback.runtime, fallback.precision) == ("tensorflow", "float32")
    assert fallback.model is reference and "differs from the SavedModel" in fallback.passed_over[-1]


def test_openvino_is_installed_without_its_telemetry() -> None:
    """`import openvino` sends a usage event to Google Analytics when openvino-telemetry is installed."""
    from openvino.tools.ovc import telemetry_utils

    assert telemetry_utils.tm.__name__ == "openvino.tools.ovc.telemetry_stub"
