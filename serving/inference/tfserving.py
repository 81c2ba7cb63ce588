"""TF Serving backend: the gateway's model calls go over gRPC to TensorFlow Serving.

One long-lived `grpc.aio` channel per process, opened in `start()` (inside the app lifespan, so after
any worker fork) and closed in `close()`. Every call has the `upstream_timeout_s` deadline (longer for
batches); retries and the gRPC status → HTTP table live in `retry.py` and `grpc_status.py`. The
version that answered is the one reported, and its metadata (labels, thresholds) is fetched from
Serving with the model's `metadata` signature and cached per version: a version rolled out by Serving
is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

import grpc
import numpy as np
from pydantic import ValidationError
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from radiograph.contract import (
    EXPLAIN_SIGNATURE,
    HEATMAP_OUTPUT,
    IMAGE_INPUT,
    METADATA_OUTPUT,
    METADATA_SIGNATURE,
    PROBABILITY_OUTPUT,
    SERVING_SIGNATURE,
    SUBTYPE_OUTPUT,
    ModelMetadata,
)
from serving import errors
from serving.config import Settings, inference_deadline_s
from serving.inference.base import Explanation, Inference
from serving.inference.retry import RetryPolicy, call_with_retries
from serving.inference.tensor_protos import to_array, uint8_tensor
from serving.observability.metrics import GatewayMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")
AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE


def channel_options(settings: Settings) -> list[tuple[str, int | str]]:
    return [
        ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        # pings only while calls are in flight: TF Serving's server refuses idle pings more often
        # than every 5 min (GOAWAY too_many_pings)
        ("grpc.keepalive_time_ms", int(settings.grpc_keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 0),
        # reconnect within a second of Serving coming back (gRPC's default backoff grows to 120 s)
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        # spread calls over every address a name resolves to (e.g. a headless Service of Serving pods)
        ("grpc.lb_policy_name", "round_robin"),
    ]


class ServingBackend:
    name = "tfserving"

    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        if not settings.serving_address:
            raise ValueError("the TF Serving backend needs GATEWAY_SERVING_ADDRESS")
        self.address = settings.serving_address
        self.settings = settings
        self.metrics = metrics
        self.retry = RetryPolicy(
            settings.upstream_retry_attempts, settings.upstream_backoff_s, settings.upstream_backoff_max_s
        )
        self._channel: grpc.aio.Channel | None = None
        self._predictions: prediction_service_pb2_grpc.PredictionServiceStub | None = None
        self._models: model_service_pb2_grpc.ModelServiceStub | None = None
        self._metadata: dict[int, ModelMetadata] = {}
        self._default_version: int | None = None
        """The version Serving last answered a request without a version with (label or default)."""
        self._readiness: tuple[float, bool] = (float("-inf"), False)

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.address, options=channel_options(self.settings))
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        try:  # warm the metadata cache; Serving may legitimately come up after the gateway
            await self.metadata()
            log.info("TF Serving at %s answers with version %s", self.address, self._default_version)
        except errors.UpstreamError as exc:
            log.warning("TF Serving at %s is not answering yet: %s", self.address, exc.code)

    async def predict(self, images: np.ndarray, request_id: str) -> Inference:
        request = self._request(SERVING_SIGNATURE, version=None)
        request.inputs[IMAGE_INPUT].CopyFrom(uint8_tensor(images))
        # no output_filter: the signature's outputs are all small, and which there are depends on the version
        response = await self._predict(request, request_id, len(images))
        probabilities = self._output(response, PROBABILITY_OUTPUT).astype(np.float32)
        if probabilities.shape != (len(images),):
            raise errors.UpstreamError(
                f"TF Serving returned {PROBABILITY_OUTPUT} of shape {probabilities.shape} for {len(images)} images"
            )
        subtypes = None
        if SUBTYPE_OUTPUT in response.outputs:
            subtypes = self._output(response, SUBTYPE_OUTPUT).astype(np.float32)
        version = self._answered_version(response)
        self._default_version = version
        return Inference(probabilities, version, subtypes)

    async def explain(self, images: np.ndarray, request_id: str) -> Explanation:
        request = self._request(EXPLAIN_SIGNATURE, version=None)
        request.inputs[IMAGE_INPUT].CopyFrom(uint8_tensor(images))
        request.output_filter.extend([PROBABILITY_OUTPUT, HEATMAP_OUTPUT])
        try:
            response = await self._predict(request, request_id, len(images))
        except errors.UpstreamError as exc:
            # Serving answers FAILED_PRECONDITION 'signature ... not found' for a model exported without it
            if exc.upstream_status == "FAILED_PRECONDITION" and EXPLAIN_SIGNATURE in exc.message:
                raise errors.NotSupportedByBackend(
                    f"the model served by TF Serving has no {EXPLAIN_SIGNATURE!r} signature"
                ) from None
            raise
        probabilities = self._output(response, PROBABILITY_OUTPUT).astype(np.float32)
        heatmaps = self._output(response, HEATMAP_OUTPUT).astype(np.float32)
        if probabilities.shape != (len(images),) or len(heatmaps) != len(images):
            raise errors.UpstreamError(f"TF Serving's explain answer does not match the {len(images)} images sent")
        return Explanation(probabilities, heatmaps, self._answered_version(response))

    async def metadata(self, version: int | None = None) -> ModelMetadata:
        version = version if version is not None else self._default_version
        if version is not None and version in self._metadata:
            return self._metadata[version]
        response = await self._predict(self._request(METADATA_SIGNATURE, version), request_id=None)
        answered = self._answered_version(response)
        raw = self._output(response, METADATA_OUTPUT).item()
        try:
            metadata = ModelMetadata.model_validate_json(raw)
        except ValidationError as exc:
            raise errors.UpstreamError(
                f"model version {answered} returned metadata that does not match the contract "
                f"({exc.error_count()} errors)"
            ) from None
        self._metadata[answered] = metadata
        if version is None:
            self._default_version = answered
        return metadata

    async def ready(self) -> bool:
        """True when Serving reports a version of the model AVAILABLE; answers are reused for
        `readiness_cache_s` so that probes cannot flood Serving."""
        loop = asyncio.get_running_loop()
        checked_at, ready = self._readiness
        if loop.time() - checked_at < self.settings.readiness_cache_s:
            return ready
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.settings.model_name
        try:
            response = await self._open(self._models).GetModelStatus(
                request, timeout=self.settings.readiness_timeout_s
            )
            ready = any(status.state == AVAILABLE for status in response.model_version_status)
        except grpc.aio.AioRpcError as exc:
            log.info("TF Serving readiness check failed: %s", exc.code().name)
            ready = False
        self._readiness = (loop.time(), ready)
        return ready

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._predictions = self._models = None

    @staticmethod
    def _open(stub: T | None) -> T:
        if stub is None:
            raise errors.NotReady("the TF Serving channel is not open")
        return stub

    def _request(self, signature: str, version: int | None) -> predict_pb2.PredictRequest:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.settings.model_name
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = version
        elif self.settings.model_version_label:
            request.model_spec.version_label = self.settings.model_version_label
        return request

    async def _predict(
        self, request: predict_pb2.PredictRequest, request_id: str | None, n_images: int = 1
    ) -> predict_pb2.PredictResponse:
        stub = self._open(self._predictions)
        call_metadata = (("x-request-id", request_id),) if request_id else None

        def attempt(remaining_s: float) -> grpc.aio.UnaryUnaryCall:
            return stub.Predict(request, timeout=remaining_s, metadata=call_metadata)

        return await call_with_retries(
            attempt,
            timeout_s=inference_deadline_s(
                self.settings.upstream_timeout_s, self.settings.upstream_timeout_per_image_s, n_images
            ),
            policy=self.retry,
            on_failure=lambda code: self.metrics.upstream_errors.labels(code.name).inc(),
        )

    @staticmethod
    def _output(response: predict_pb2.PredictResponse, name: str) -> np.ndarray:
        if name not in response.outputs:
            raise errors.UpstreamError(f"TF Serving's answer has no output {name!r}")
        return to_array(response.outputs[name])

    @staticmethod
    def _answered_version(response: predict_pb2.PredictResponse) -> int:
        if not response.model_spec.HasField("version"):
            raise errors.UpstreamError("TF Serving's answer does not say which model version answered")
        return response.model_spec.version.value
