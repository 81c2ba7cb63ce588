"""Embedded backend: the SavedModel runs inside the gateway process (local runs, tests, CPU sites).

Scoring goes through the micro-batcher (`batching.py`) to the runtime and precision chosen at start
(`radiograph.runtime`: OpenVINO or TensorFlow, bfloat16 or float32; `GATEWAY_INFERENCE_RUNTIME`,
`GATEWAY_INFERENCE_PRECISION`). `explain`'s heatmap is the SavedModel's own signature run by TensorFlow (not
batched); its verdict's P is the served runtime's, as `/v1/predict` gives it. Model calls run on worker threads
(both runtimes release the GIL), so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import logging

import anyio.to_thread
import numpy as np

from radiograph.contract import (
    EXPLAIN_SIGNATURE,
    HEATMAP_OUTPUT,
    PROBABILITY_OUTPUT,
    SUBTYPE_OUTPUT,
    ModelMetadata,
)
from radiograph.runtime import RuntimeRefused, Scoring, open_scoring
from radiograph.savedmodel import LoadedModel
from serving import errors
from serving.config import Settings, inference_deadline_s
from serving.inference.base import Explanation, Inference
from serving.inference.batching import MicroBatcher
from serving.observability.metrics import GatewayMetrics
from serving.scoring import StartupRefused

log = logging.getLogger(__name__)


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._reference: LoadedModel | None = None
        self._scoring: Scoring | None = None
        self._batcher: MicroBatcher | None = None

    async def start(self) -> None:
        settings = self.settings
        reference = await anyio.to_thread.run_sync(LoadedModel.from_dir, settings.model_dir)
        try:
            scoring = await anyio.to_thread.run_sync(
                open_scoring, reference, settings.inference_runtime, settings.inference_precision,
                settings.openvino_cache_dir,
            )
        except RuntimeRefused as exc:
            raise StartupRefused(
                f"GATEWAY_INFERENCE_RUNTIME={settings.inference_runtime!r}, GATEWAY_INFERENCE_PRECISION="
                f"{settings.inference_precision!r} cannot be served: {exc}"
            ) from exc
        # warm-up (graph tracing, every stream's buffers for the largest batch) takes seconds: no deadline applies
        await anyio.to_thread.run_sync(scoring.model.warm_up, sorted({1, settings.batch_max_size}))
        if EXPLAIN_SIGNATURE in reference.signatures:
            await anyio.to_thread.run_sync(reference.run, EXPLAIN_SIGNATURE, reference.blank_batch())
        self._batcher = MicroBatcher(
            scoring.model.outputs, settings.batch_max_size, settings.batch_timeout_micros / 1e6,
            settings.batch_max_enqueued_images, settings.shed_retry_after_s, self.metrics, scoring.model.parallel_calls,
        )
        self._batcher.start()
        self._reference, self._scoring = reference, scoring
        self.metrics.inference_runtime.labels(scoring.runtime, scoring.precision).set(1)
        log.info("embedded backend loaded model version %d: %s %s%s", reference.version, scoring.runtime,
                 scoring.precision, "".join(f"; passed over: {reason}" for reason in scoring.passed_over))

    def _loaded(self) -> tuple[LoadedModel, Scoring, MicroBatcher]:
        if self._reference is None or self._scoring is None or self._batcher is None:
            raise errors.NotReady("the model is not loaded")
        return self._reference, self._scoring, self._batcher

    @property
    def scoring(self) -> Scoring | None:
        """The runtime and precision in use (None before `start`)."""
        return self._scoring

    async def predict(self, images: np.ndarray, request_id: str) -> Inference:
        _, scoring, batcher = self._loaded()
        outputs = await batcher.submit(images, self._deadline_s(images))
        return Inference(outputs[PROBABILITY_OUTPUT], scoring.model.version, outputs.get(SUBTYPE_OUTPUT))

    async def explain(self, images: np.ndarray, request_id: str) -> Explanation:
        reference, scoring, batcher = self._loaded()
        if EXPLAIN_SIGNATURE not in reference.signatures:
            raise errors.NotSupportedByBackend(
                f"model version {reference.version} has no {EXPLAIN_SIGNATURE!r} signature"
            )
        timeout_s = self._deadline_s(images)
        try:
            with anyio.fail_after(timeout_s):
                outputs = await anyio.to_thread.run_sync(
                    reference.run, EXPLAIN_SIGNATURE, images, abandon_on_cancel=True
                )
        except TimeoutError as exc:
            raise errors.UpstreamTimeout(f"inference took longer than {timeout_s:g} s") from exc
        probabilities = outputs[PROBABILITY_OUTPUT]
        if scoring.model is not reference:  # the verdict is the served runtime's and precision's, as on /v1/predict
            probabilities = (await batcher.submit(images, timeout_s))[PROBABILITY_OUTPUT]
        return Explanation(probabilities, outputs[HEATMAP_OUTPUT], reference.version)

    def _deadline_s(self, images: np.ndarray) -> float:
        settings = self.settings
        return inference_deadline_s(settings.upstream_timeout_s, settings.upstream_timeout_per_image_s, len(images))

    async def metadata(self, version: int | None = None) -> ModelMetadata:
        return self._loaded()[0].metadata

    async def ready(self) -> bool:
        return self._scoring is not None

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.close()
        self._reference = self._scoring = self._batcher = None
        await asyncio.sleep(0)
