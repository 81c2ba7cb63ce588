"""The TF Serving API methods, answered from a `ModelRepository` the way TF Serving answers them."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from localserving.repository import ModelRepository
from localserving.servable import ServableError
from localserving.signatures import run_signature

log = logging.getLogger(__name__)


@dataclass
class Faults:
    """Fault injection for tests; change the fields while the server runs."""

    delay_s: float = 0.0
    """Added before every Predict is answered: a slow or saturated GPU node."""
    fail_code: grpc.StatusCode | None = None
    """Every Predict fails with this status, e.g. UNAVAILABLE (Serving's batch queue is full)."""


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, repository: ModelRepository, faults: Faults) -> None:
        self.repository = repository
        self.faults = faults
        self.request_ids: deque[str | None] = deque(maxlen=256)
        """`x-request-id` of the latest Predict calls (tests check that the gateway sends it)."""

    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        self.request_ids.append(dict(context.invocation_metadata() or ()).get("x-request-id"))
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        if self.faults.fail_code is not None:
            await context.abort(self.faults.fail_code, "fault injected by the local stand-in")
        try:
            servable = self.repository.resolve(request.model_spec)
            return await asyncio.to_thread(run_signature, servable, request)
        except ServableError as exc:
            await context.abort(exc.code, str(exc))
            raise  # unreachable: abort raises

    async def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if list(request.metadata_field) != ["signature_def"]:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "metadata_field must be ['signature_def']")
        try:
            servable = self.repository.resolve(request.model_spec)
        except ServableError as exc:
            await context.abort(exc.code, str(exc))
            raise
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signatures.signature_def[key].CopyFrom(value)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(signatures)
        return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    async def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.aio.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        try:
            statuses = self.repository.statuses(request.model_spec)
        except ServableError as exc:
            await context.abort(exc.code, str(exc))
            raise
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=statuses)
