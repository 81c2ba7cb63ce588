"""Loading an exported SavedModel with TensorFlow, checking it against the contract, and running it.

`LoadedModel` is the only thing in the project that runs a SavedModel: the gateway's embedded backend,
the local TF Serving stand-in, training's evaluation, the benchmarks and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radiograph.contract import (
    EXPLAIN_SIGNATURE,
    HEATMAP_OUTPUT,
    IMAGE_INPUT,
    METADATA_OUTPUT,
    METADATA_SIGNATURE,
    PROBABILITY_OUTPUT,
    SERVING_SIGNATURE,
    ModelMetadata,
    resolve_model_dir,
)

IMAGE_SIGNATURES = {SERVING_SIGNATURE: (PROBABILITY_OUTPUT,), EXPLAIN_SIGNATURE: (PROBABILITY_OUTPUT, HEATMAP_OUTPUT)}
"""The signatures that take an `image` batch, and the outputs the contract requires of each."""


@dataclass(frozen=True)
class Signature:
    """One signature of the SavedModel: its inputs' `tf.TensorSpec`s and its outputs' names."""

    name: str
    inputs: Mapping[str, Any]
    outputs: tuple[str, ...]


class LoadedModel:
    """A SavedModel loaded with TensorFlow, checked against the model contract at load: `serving_default`
    and, when the model has it, `explain` take uint8 [batch, H, W, 1] at the metadata's input size and give
    the outputs the contract names."""

    parallel_calls = 1
    """Calls worth running at once: TensorFlow spreads one call over every core."""

    def __init__(self, path: Path, version: int) -> None:
        import tensorflow as tf

        self.path, self.version = path, version
        self._tf = tf
        self._root = tf.saved_model.load(str(path))  # holds the variables the signatures read
        self._functions = dict(self._root.signatures.items())
        self.signatures: dict[str, Signature] = {
            name: Signature(name, dict(fn.structured_input_signature[1]), tuple(sorted(fn.structured_outputs)))
            for name, fn in self._functions.items()
        }
        raw = self.call(METADATA_SIGNATURE, {})[METADATA_OUTPUT]
        self.metadata = ModelMetadata.model_validate_json(raw.item())
        self._check_contract()

    @classmethod
    def from_dir(cls, model: Path, version: int | None = None) -> LoadedModel:
        return cls(*resolve_model_dir(model, version))

    def _check_contract(self) -> None:
        expected = [None, self.metadata.input_height, self.metadata.input_width, 1]
        for name, required in IMAGE_SIGNATURES.items():
            if name not in self.signatures:
                if name == SERVING_SIGNATURE:
                    raise ValueError(f"{self.path}: no {name!r} signature")
                continue
            signature = self.signatures[name]
            spec = signature.inputs.get(IMAGE_INPUT)
            if spec is None or len(signature.inputs) != 1 or spec.dtype != self._tf.uint8 or (
                spec.shape.as_list() != expected
            ):
                raise ValueError(f"{self.path}: {name!r} inputs {signature.inputs} do not match the contract: "
                                 f"{IMAGE_INPUT!r} uint8 {expected}")
            if missing := sorted(set(required) - set(signature.outputs)):
                raise ValueError(f"{self.path}: {name!r} lacks the outputs {missing}")

    def call(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Any signature on any inputs, outputs as TensorFlow gives them (a string scalar is a 0-d array).
        Raises `KeyError` for a signature the model lacks, TensorFlow's errors for inputs it refuses."""
        function = self._functions[signature]
        out = function(**{key: self._tf.constant(value) for key, value in inputs.items()})
        return {name: _array(tensor.numpy()) for name, tensor in out.items()}

    def frozen(self, signature: str) -> tuple[bytes, str, dict[str, str]]:
        """`signature` as one self-contained graph, its variables folded into constants: (serialized `GraphDef`,
        its input's tensor name, contract output name → tensor name). What another runtime converts."""
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        function = self._functions[signature]
        frozen = convert_variables_to_constants_v2(function)
        (image,) = frozen.inputs
        names = self._tf.nest.flatten({name: name for name in function.structured_outputs})
        outputs = {name: tensor.name for name, tensor in zip(names, frozen.outputs, strict=True)}
        return frozen.graph.as_graph_def().SerializeToString(), image.name, outputs

    def run(self, signature: str, images: np.ndarray) -> dict[str, np.ndarray]:
        """An image signature (`serving_default`, `explain`) on uint8 [n, H, W, 1]: every output, float32."""
        if signature not in IMAGE_SIGNATURES or signature not in self.signatures:
            raise KeyError(f"{signature!r} is not an image signature of model version {self.version}")
        outputs = self.call(signature, {IMAGE_INPUT: np.asarray(images, np.uint8)})
        return {name: value.astype(np.float32) for name, value in outputs.items()}

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of `serving_default` (probability, subtype_probabilities) for uint8 [n, H, W, 1]."""
        return self.run(SERVING_SIGNATURE, images)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.outputs(images)[PROBABILITY_OUTPUT]

    def warm_up(self, batch_sizes: Iterable[int]) -> None:
        """One `serving_default` call of each size (tracing, first allocations), before any request."""
        for n in batch_sizes:
            self.outputs(self.blank_batch(n))

    def blank_batch(self, n: int = 1) -> np.ndarray:
        shape = (n, self.metadata.input_height, self.metadata.input_width, 1)
        return np.zeros(shape, np.uint8)


def _array(value: Any) -> np.ndarray:
    # a string scalar comes back as `bytes`: kept as a 0-d object array, as TensorFlow holds strings
    return np.asarray(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)
