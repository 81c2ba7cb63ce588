"""Embedded backend: the SavedModel runs inside the gateway process (local runs, tests, small sites).

TensorFlow releases the GIL while it computes; calls run on worker threads so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import anyio.to_thread
import numpy as np

from radiograph.contract import (
    EXPLAIN_SIGNATURE,
    HEATMAP_OUTPUT,
    PROBABILITY_OUTPUT,
    SERVING_SIGNATURE,
    SUBTYPE_OUTPUT,
    ModelMetadata,
)
from radiograph.savedmodel import LoadedModel
from serving import errors
from serving.config import inference_deadline_s
from serving.inference.base import Explanation, Inference

log = logging.getLogger(__name__)


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, model_dir: Path, timeout_s: float, timeout_per_image_s: float = 0.0) -> None:
        self.model_dir = model_dir
        self.timeout_s = timeout_s
        self.timeout_per_image_s = timeout_per_image_s
        self._model: LoadedModel | None = None

    async def start(self) -> None:
        self._model = await anyio.to_thread.run_sync(LoadedModel.from_dir, self.model_dir)
        # warm-up (graph tracing) takes seconds on a busy machine: no request deadline applies to it
        for signature in (SERVING_SIGNATURE, EXPLAIN_SIGNATURE):
            if signature in self._model.signatures:
                await self._run(self._model, signature, self._model.blank_batch(), timeout_s=None)
        log.info("embedded backend loaded model version %d", self._model.version)

    def _loaded(self) -> LoadedModel:
        if self._model is None:
            raise errors.NotReady("the model is not loaded")
        return self._model

    async def predict(self, images: np.ndarray, request_id: str) -> Inference:
        model = self._loaded()
        outputs = await self._run(model, SERVING_SIGNATURE, images, self._deadline_s(images))
        return Inference(outputs[PROBABILITY_OUTPUT], model.version, outputs.get(SUBTYPE_OUTPUT))

    async def explain(self, images: np.ndarray, request_id: str) -> Explanation:
        model = self._loaded()
        if EXPLAIN_SIGNATURE not in model.signatures:
            raise errors.NotSupportedByBackend(f"model version {model.version} has no {EXPLAIN_SIGNATURE!r} signature")
        outputs = await self._run(model, EXPLAIN_SIGNATURE, images, self._deadline_s(images))
        return Explanation(outputs[PROBABILITY_OUTPUT], outputs[HEATMAP_OUTPUT], model.version)

    def _deadline_s(self, images: np.ndarray) -> float:
        return inference_deadline_s(self.timeout_s, self.timeout_per_image_s, len(images))

    async def _run(
        self, model: LoadedModel, signature: str, images: np.ndarray, timeout_s: float | None
    ) -> dict[str, np.ndarray]:
        """Run a signature on a worker thread, abandoned after `timeout_s` (None: no limit)."""
        try:
            with anyio.fail_after(timeout_s):
                return await anyio.to_thread.run_sync(model.run, signature, images, abandon_on_cancel=True)
        except TimeoutError as exc:
            raise errors.UpstreamTimeout(f"inference took longer than {timeout_s:g} s") from exc

    async def metadata(self, version: int | None = None) -> ModelMetadata:
        return self._loaded().metadata

    async def ready(self) -> bool:
        return self._model is not None

    async def close(self) -> None:
        self._model = None
        await asyncio.sleep(0)

