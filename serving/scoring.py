"""The data plane: image bytes → verdicts. Every route (single, batch) goes through `Scorer`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio.to_thread
import numpy as np

from radiograph import imaging
from radiograph.contract import ModelMetadata, OperatingPoint
from serving import errors
from serving.config import Settings
from serving.inference.base import Explainer, InferenceBackend
from serving.observability.drift import DriftMonitor
from serving.observability.metrics import GatewayMetrics
from serving.verdict import ExplainedVerdict, Verdict

log = logging.getLogger(__name__)


class StartupRefused(RuntimeError):
    """The settings do not fit the model being served: the gateway must not start (every answer would fail)."""


class Scorer:
    def __init__(
        self,
        backend: InferenceBackend,
        settings: Settings,
        metrics: GatewayMetrics,
        drift: DriftMonitor | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.metrics = metrics
        self.drift = drift
        self.served_version: int | None = None
        """The model version that answered the last call (None before the first)."""

    async def check_settings(self) -> None:
        """Refuses (StartupRefused) a `GATEWAY_OPERATING_POINT` the served model does not have. A TF Serving
        that does not answer yet cannot be asked: the gateway then starts (not ready) without the check."""
        name = self.settings.operating_point
        if name is None:
            return
        try:
            metadata = await self.backend.metadata()
        except errors.GatewayError as exc:
            log.warning("GATEWAY_OPERATING_POINT not checked: the model's metadata is unavailable (%s)", exc.code)
            return
        if name not in metadata.operating_points:
            known = ", ".join(sorted(metadata.operating_points))
            raise StartupRefused(
                f"GATEWAY_OPERATING_POINT={name!r} is not an operating point of the model "
                f"{self.settings.model_name!r}; its operating points are: {known}"
            )

    async def score(
        self, images: list[bytes], operating_point: str | None, request_id: str
    ) -> list[Verdict | errors.GatewayError]:
        """One verdict per image, in order; a bad image yields its error without failing the rest.

        Backend failures (no verdict possible for any image) are raised.
        """
        with self._timed("total"):
            size = (await self._checked_metadata(operating_point)).input_height
            prepared = [await self._prepare(data, size) for data in images]
            good = [p for p in prepared if isinstance(p, np.ndarray)]
            verdicts = iter(await self._infer(good, operating_point, request_id) if good else [])
            return [p if isinstance(p, errors.GatewayError) else next(verdicts) for p in prepared]

    async def score_all(self, images: list[bytes], operating_point: str | None, request_id: str) -> list[Verdict]:
        """All or none, as the Open Inference Protocol answers a batch: the first image that cannot be scored
        is raised, its position in the batch named, before any model call."""
        with self._timed("total"):
            size = (await self._checked_metadata(operating_point)).input_height
            pixels = []
            for position, data in enumerate(images):
                prepared = await self._prepare(data, size)
                if isinstance(prepared, errors.GatewayError):
                    raise errors.in_batch(prepared, position)
                pixels.append(prepared)
            return await self._infer(pixels, operating_point, request_id)

    async def score_pixels(self, pixels: np.ndarray, operating_point: str | None, request_id: str) -> list[Verdict]:
        """uint8 [n, H, W] already at the model's input size, scored as sent (no decoding, no resizing)."""
        with self._timed("total"):
            metadata = await self._checked_metadata(operating_point)
            expected = (metadata.input_height, metadata.input_width)
            if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[1:] != expected:
                raise errors.BadRequest(
                    f"pixels must be uint8 [n, {expected[0]}, {expected[1]}] (the model's input size); "
                    f"got {pixels.dtype} {list(pixels.shape)}"
                )
            return await self._infer(list(pixels), operating_point, request_id)

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        """Observes the block's duration as `stage` when it completes (a failed call is not a latency)."""
        started = time.perf_counter()
        yield
        self.metrics.stage_latency.labels(stage).observe(time.perf_counter() - started)

    async def _checked_metadata(self, operating_point: str | None) -> ModelMetadata:
        """The served model's metadata; refuses a wrong operating point name before any work."""
        metadata = await self.backend.metadata()
        self._operating_point(metadata, operating_point)
        return metadata

    def _operating_point(
        self, metadata: ModelMetadata, requested: str | None
    ) -> tuple[str, OperatingPoint]:
        try:
            return metadata.operating_point(requested or self.settings.operating_point)
        except KeyError as exc:
            raise errors.UnknownOperatingPoint(exc.args[0]) from None

    async def _prepare(self, data: bytes, size: int) -> np.ndarray | errors.GatewayError:
        self.metrics.image_bytes.observe(len(data))
        max_pixels, modalities = self.settings.max_image_pixels, self.settings.dicom_modalities
        try:
            radiograph = await anyio.to_thread.run_sync(
                lambda: imaging.load_radiograph(data, size, max_pixels=max_pixels, modalities=modalities)
            )
        except imaging.ImageError as exc:
            return errors.from_image_error(exc)
        self.metrics.stage_latency.labels("decode").observe(radiograph.decode_s)
        self.metrics.stage_latency.labels("preprocess").observe(radiograph.preprocess_s)
        self.metrics.image_pixels.observe(radiograph.source_width * radiograph.source_height)
        return radiograph.pixels

    async def _infer(self, good: list[np.ndarray], operating_point: str | None, request_id: str) -> list[Verdict]:
        with self._timed("inference"):
            inference = await self.backend.predict(np.stack(good)[..., None], request_id)
        self.served_version = inference.model_version
        # thresholds and labels come from the version that answered
        metadata = await self.backend.metadata(inference.model_version)
        point_name, point = self._operating_point(metadata, operating_point)
        version = str(inference.model_version)
        self.metrics.serving_model(self.settings.model_name, inference.model_version, self.backend.name)
        subtypes = inference.subtype_probabilities
        verdicts = []
        for index, probability in enumerate(inference.probabilities.tolist()):
            label = metadata.label_for(probability, point.threshold)
            subtype = _subtype(metadata, label, None if subtypes is None else subtypes[index])
            self.metrics.probability.labels(version).observe(probability)
            self.metrics.predictions.labels(version, label).inc()
            verdicts.append(
                Verdict(
                    label, float(probability), point.threshold, point_name,
                    self.settings.model_name, inference.model_version, subtype,
                )
            )
        if self.drift is not None:  # label-free monitoring: after scoring, on a worker thread
            await anyio.to_thread.run_sync(
                self.drift.observe, inference.model_version, good, inference.probabilities
            )
        return verdicts

    async def explain(self, image: bytes, operating_point: str | None, request_id: str) -> ExplainedVerdict:
        """One image → its verdict and the model's heatmap (the `explain` signature)."""
        if not isinstance(self.backend, Explainer):
            raise errors.NotSupportedByBackend(f"the {self.backend.name} backend cannot explain predictions")
        metadata = await self._checked_metadata(operating_point)
        pixels = await self._prepare(image, metadata.input_height)
        if isinstance(pixels, errors.GatewayError):
            raise pixels
        explained = await self.backend.explain(pixels[None, ..., None], request_id)
        self.served_version = explained.model_version
        metadata = await self.backend.metadata(explained.model_version)
        point_name, point = self._operating_point(metadata, operating_point)
        probability = float(explained.probabilities[0])
        label = metadata.label_for(probability, point.threshold)
        verdict = Verdict(
            label, probability, point.threshold, point_name, self.settings.model_name, explained.model_version
        )
        return ExplainedVerdict(verdict, np.asarray(explained.heatmaps[0], np.float32), pixels)


def _subtype(metadata: ModelMetadata, label: str, row: np.ndarray | None) -> dict[str, float] | None:
    if row is None or label != metadata.positive_label or len(row) != len(metadata.subtype_labels):
        return None
    return {name: float(p) for name, p in zip(metadata.subtype_labels, row, strict=True)}
