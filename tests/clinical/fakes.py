"""Fakes for what cannot be had from the real model: a backend without the optional features."""

from __future__ import annotations

import numpy as np

from radiograph.contract import ModelMetadata
from serving.inference.base import Inference


class FixedBackend:
    """A fake backend (no TensorFlow): a fixed probability, no subtype head and no `explain`, as a
    TF Serving backend without those features would be."""

    name = "fake"

    def __init__(self, metadata: ModelMetadata, probability: float) -> None:
        self._metadata, self.probability = metadata, probability

    async def start(self) -> None:
        pass

    async def predict(self, images: np.ndarray, request_id: str) -> Inference:
        return Inference(np.full(len(images), self.probability, np.float32), 7)

    async def metadata(self, version: int | None = None) -> ModelMetadata:
        return self._metadata

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        pass
