"""The seam between the gateway and whatever runs the model.

Two implementations: `EmbeddedBackend` (the SavedModel in this process) and `ServingBackend`
(TensorFlow Serving over gRPC). Both speak the model contract in `radiograph.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from radiograph.contract import ModelMetadata


@dataclass(frozen=True)
class Inference:
    probabilities: np.ndarray
    """float32 [n], P(positive label) per image."""
    model_version: int
    """The version that answered."""
    subtype_probabilities: np.ndarray | None = None
    """float32 [n, len(metadata.subtype_labels)] when the model has a subtype head, else None."""


@dataclass(frozen=True)
class Explanation:
    probabilities: np.ndarray
    """float32 [n], P(positive label) per image (the `explain` signature's own `probability`)."""
    heatmaps: np.ndarray
    """float32 [n, h, w] in [0, 1]: where the model looked (class activation map, max-normalised)."""
    model_version: int


class InferenceBackend(Protocol):
    name: str
    """`embedded` or `tfserving`, as reported in metrics."""

    async def start(self) -> None:
        """Load or connect; raise if the model cannot be served."""

    async def predict(self, images: np.ndarray, request_id: str) -> Inference:
        """uint8 [n, H, W, 1] → probabilities. Raises `serving.errors.UpstreamError` subclasses."""

    async def metadata(self, version: int | None = None) -> ModelMetadata:
        """The metadata stored in `version` (None: the version served by default)."""

    async def ready(self) -> bool:
        """True when a model version is loaded and answering."""

    async def close(self) -> None:
        """Release connections and memory."""


@runtime_checkable
class Explainer(Protocol):
    """Optional beside `InferenceBackend`: a backend that can run the model's `explain` signature.
    A backend without it (or serving a model without the signature) gets 501 on `/v1/explain`."""

    async def explain(self, images: np.ndarray, request_id: str) -> Explanation:
        """uint8 [n, H, W, 1] → probabilities and heatmaps. Raises `serving.errors.NotSupportedByBackend`
        when the served model has no `explain` signature, `UpstreamError` subclasses on failure."""
