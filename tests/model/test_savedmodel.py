"""`LoadedModel` checks a SavedModel against the contract at load and runs its signatures; tiny SavedModels
built here (an 8×8 "model" whose probability is the mean pixel) stand for exports that break it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from radiograph.contract import ModelMetadata, OperatingPoint
from radiograph.savedmodel import LoadedModel

SIZE = 8
METADATA = ModelMetadata(
    labels=("NORMAL", "PNEUMONIA"), input_height=SIZE, input_width=SIZE,
    operating_points={"screening": OperatingPoint(threshold=0.5, rule="fixed")},
)


def export(path: Path, explain_dtype: tf.DType | None = tf.uint8, heatmap: bool = True) -> Path:
    """A version directory with `serving_default`, `metadata` and (unless `explain_dtype` is None) `explain`."""
    module = tf.Module()

    def probability(image: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.cast(image, tf.float32), axis=[1, 2, 3]) / 255.0

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 1], tf.uint8, name="image")])
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probability": probability(image)}

    @tf.function(input_signature=[])
    def metadata() -> dict[str, tf.Tensor]:
        return {"json": tf.constant(METADATA.model_dump_json())}

    signatures = {"serving_default": serve, "metadata": metadata}
    if explain_dtype is not None:
        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 1], explain_dtype, name="image")])
        def explain(image: tf.Tensor) -> dict[str, tf.Tensor]:
            outputs = {"probability": probability(image)}
            if heatmap:
                outputs["heatmap"] = tf.zeros([tf.shape(image)[0], 2, 2])
            return outputs

        signatures["explain"] = explain
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


def test_runs_the_image_signatures(tmp_path: Path) -> None:
    model = LoadedModel(export(tmp_path / "1"), 1)
    assert model.metadata == METADATA
    assert set(model.signatures) == {"serving_default", "explain", "metadata"}
    images = np.stack([np.full((SIZE, SIZE, 1), v, np.uint8) for v in (0, 51, 255)])
    np.testing.assert_allclose(model.predict(images), [0.0, 0.2, 1.0], atol=1e-6)
    explained = model.run("explain", images)
    assert explained["heatmap"].shape == (3, 2, 2) and explained["probability"].dtype == np.float32
    with pytest.raises(KeyError, match="'metadata' is not an image signature of model version 1"):
        model.run("metadata", images)


def test_a_model_without_explain_loads(tmp_path: Path) -> None:
    model = LoadedModel(export(tmp_path / "1", explain_dtype=None), 1)
    assert "explain" not in model.signatures
    with pytest.raises(KeyError, match="'explain' is not an image signature"):
        model.run("explain", model.blank_batch())


def test_an_explain_signature_off_the_contract_is_refused_at_load(tmp_path: Path) -> None:
    path = export(tmp_path / "1", explain_dtype=tf.float32)
    refused = r"'explain' inputs .* do not match the contract: 'image' uint8 \[None, 8, 8, 1\]"
    with pytest.raises(ValueError, match=refused):
        LoadedModel(path, 1)


def test_an_explain_signature_without_heatmap_is_refused_at_load(tmp_path: Path) -> None:
    path = export(tmp_path / "1", heatmap=False)
    with pytest.raises(ValueError, match=r"'explain' lacks the outputs \['heatmap'\]"):
        LoadedModel(path, 1)
