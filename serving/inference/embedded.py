"""Embedded backend: the SavedModel runs inside the gateway process (local runs, tests, small sites).

TensorFlow releases the GIL while it computes; calls run on worker threads so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import anyio.to_thread
import numpy as np

from radiograph.contract import ModelMetadata
from radiograph.savedmodel import LoadedModel
from serving import errors
from serving.inference.base import Inference

log = logging.getLogger(__name__)


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, model_dir: Path, timeout_s: float) -> None:
        self.model_dir = model_dir
        self.timeout_s = timeout_s
        self._model: LoadedModel | None = None

    async def start(self) -> None:
        self._model = await anyio.to_thread.run_sync(LoadedModel.from_dir, self.model_dir)
        await self.predict(self._model.blank_batch(), "warm-up")
        log.info("embedded backend loaded model version %d", self._model.version)

    def _loaded(self) -> LoadedModel:
        if self._model is None:
            raise errors.NotReady("the model is not loaded")
        return self._model

    async def predict(self, images: np.ndarray, request_id: str) -> Inference:
        model = self._loaded()
        try:
            with anyio.fail_after(self.timeout_s):
                probabilities = await anyio.to_thread.run_sync(model.predict, images, abandon_on_cancel=True)
        except TimeoutError as exc:
            raise errors.UpstreamTimeout(
                f"inference took longer than {self.timeout_s:g} s"
            ) from exc
        return Inference(probabilities, model.version)

    async def metadata(self, version: int | None = None) -> ModelMetadata:
        return self._loaded().metadata

    async def ready(self) -> bool:
        return self._model is not None

    async def close(self) -> None:
        self._model = None
        await asyncio.sleep(0)
