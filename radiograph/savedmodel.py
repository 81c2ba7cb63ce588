"""Loading an exported SavedModel with TensorFlow and checking it against the contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radiograph.contract import (
    IMAGE_INPUT,
    METADATA_OUTPUT,
    METADATA_SIGNATURE,
    PROBABILITY_OUTPUT,
    SERVING_SIGNATURE,
    ModelMetadata,
    resolve_model_dir,
)


class LoadedModel:
    """A SavedModel loaded with TensorFlow, checked against the model contract."""

    def __init__(self, path: Path, version: int) -> None:
        import tensorflow as tf

        self.path, self.version = path, version
        self._tf = tf
        self._model = tf.saved_model.load(str(path))
        self._predict = self._model.signatures[SERVING_SIGNATURE]
        raw = self._model.signatures[METADATA_SIGNATURE]()[METADATA_OUTPUT].numpy()
        self.metadata = ModelMetadata.model_validate_json(raw)
        spec = self._predict.structured_input_signature[1][IMAGE_INPUT]
        expected = [None, self.metadata.input_height, self.metadata.input_width, 1]
        if spec.dtype != tf.uint8 or spec.shape.as_list() != expected:
            raise ValueError(f"{path}: input {spec} does not match the contract uint8 {expected}")

    @classmethod
    def from_dir(cls, model: Path, version: int | None = None) -> LoadedModel:
        return cls(*resolve_model_dir(model, version))

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.outputs(images)[PROBABILITY_OUTPUT]

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of `serving_default` (probability, subtype_probabilities) for uint8 [n, H, W, 1]."""
        out = self._predict(**{IMAGE_INPUT: self._tf.constant(images, dtype=self._tf.uint8)})
        return {name: tensor.numpy().astype(np.float32) for name, tensor in out.items()}

    def blank_batch(self, n: int = 1) -> np.ndarray:
        shape = (n, self.metadata.input_height, self.metadata.input_width, 1)
        return np.zeros(shape, np.uint8)
