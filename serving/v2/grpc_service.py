"""inference.GRPCInferenceService, the Open Inference Protocol over gRPC, on `GATEWAY_GRPC_PORT` (off when unset).

A grpc.aio server on the gateway's own event loop, started and stopped in the app lifespan, over the same
`OpenInference` data plane as the REST routes. Its messages are tritonclient's generated ones (`grpc_service.proto`,
package `inference`), a superset of KServe's `grpc_predict_v2.proto` with the same wire format: tritonclient and
KServe's `InferenceGRPCClient` both speak to it. As on REST: API keys (`authorization: Bearer <key>` or `x-api-key`
metadata; ServerLive and ServerReady are open), the in-flight limit shared with REST, the body limit (the largest
message received), `x-request-id`, per-method request metrics. The service's other methods answer UNIMPLEMENTED.

    gateway status → gRPC status:  400, 415, 422 → INVALID_ARGUMENT   401 → UNAUTHENTICATED   403 → PERMISSION_DENIED
    404 → NOT_FOUND   413 → RESOURCE_EXHAUSTED   501 → UNIMPLEMENTED   503 → UNAVAILABLE   504 → DEADLINE_EXCEEDED
    other → INTERNAL
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from serving import errors
from serving.api.limits import InFlight
from serving.api.middleware import SAFE_REQUEST_ID
from serving.api.security import ApiKeys, presented_key
from serving.config import Settings
from serving.observability.audit import AuditLog
from serving.observability.logs import request_id_var
from serving.observability.metrics import GatewayMetrics
from serving.v2 import tensors
from serving.v2.dataplane import OpenInference
from serving.v2.tensors import InferRequest, Tensor

log = logging.getLogger(__name__)
Reply = TypeVar("Reply")

STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents",
}
"""Where `InferTensorContents` keeps each datatype's elements (BYTES: `bytes_contents`)."""


class InferenceService(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(
        self, v2: OpenInference, api_keys: ApiKeys, in_flight: InFlight, metrics: GatewayMetrics, audit: AuditLog
    ) -> None:
        self.v2, self.api_keys, self.in_flight, self.metrics, self.audit = v2, api_keys, in_flight, metrics, audit

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return service_pb2.ServerReadyResponse(ready=await self.v2.ready())

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def answer(request_id: str, api_key: str | None) -> Any:
            name, version, extensions = self.v2.server_metadata()
            return service_pb2.ServerMetadataResponse(name=name, version=version, extensions=extensions)

        return await self._call(context, "ServerMetadata", answer)

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def answer(request_id: str, api_key: str | None) -> Any:
            return service_pb2.ModelReadyResponse(ready=await self.v2.model_ready(request.name, request.version))

        return await self._call(context, "ModelReady", answer)

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def answer(request_id: str, api_key: str | None) -> Any:
            model = await self.v2.model_metadata(request.name, request.version)
            specs = service_pb2.ModelMetadataResponse.TensorMetadata
            return service_pb2.ModelMetadataResponse(
                name=model.name, versions=model.versions, platform=model.platform,
                inputs=[specs(name=s.name, datatype=s.datatype, shape=s.shape) for s in model.inputs],
                outputs=[specs(name=s.name, datatype=s.datatype, shape=s.shape) for s in model.outputs],
            )

        return await self._call(context, "ModelMetadata", answer)

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def answer(request_id: str, api_key: str | None) -> Any:
            scored = await self.v2.infer(request.model_name, request.model_version, _request(request), request_id)
            self.audit.predictions(scored.images, scored.verdicts, api_key)
            result = scored.response
            reply = service_pb2.ModelInferResponse(
                model_name=result.model_name, model_version=result.model_version, id=result.id
            )
            for key, value in result.parameters.items():
                reply.parameters[key].string_param = str(value)
            for tensor in result.outputs:
                reply.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
                reply.raw_output_contents.append(tensors.to_bytes(tensor))
            return reply

        return await self._call(context, "ModelInfer", answer)

    async def _call(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        answer: Callable[[str, str | None], Awaitable[Reply]],
    ) -> Reply:
        """Request ID, admission, API key, metrics and the status table around one call."""
        metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        given = metadata.get("x-request-id", "")
        request_id = given if SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        route, status, started = f"/inference.GRPCInferenceService/{method}", 500, time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            if not self.in_flight.admit():
                self.metrics.shed.inc()
                raise self.in_flight.overloaded()
            try:
                reply = await answer(request_id, self.api_keys.authorize(presented_key(metadata)))
            finally:
                self.in_flight.release()
            status = 200
            context.set_trailing_metadata((("x-request-id", request_id),))
            return reply
        except errors.GatewayError as exc:
            status = 400 if exc.status_code in (415, 422) else exc.status_code
            if status >= 500:
                log.warning("request failed: %s %s", exc.code, exc.message)
            await context.abort(STATUS.get(status, grpc.StatusCode.INTERNAL), exc.message)
            raise  # abort raises; this line is never reached
        except Exception:
            log.exception("unhandled error")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            raise
        finally:
            self.metrics.in_flight.dec()
            self.metrics.request_latency.labels(route).observe(time.perf_counter() - started)
            self.metrics.requests.labels(route, str(status), "").inc()
            request_id_var.reset(token)


def _unimplemented(method: str) -> Callable[..., Awaitable[None]]:
    async def refuse(self: InferenceService, request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not offered by this gateway")

    return refuse


# the service's other methods (model repository, statistics, shared memory, tracing, streaming) answer UNIMPLEMENTED
# at once, instead of the generated servicer's NotImplementedError and its logged traceback
for _method in dir(service_pb2_grpc.GRPCInferenceServiceServicer):
    if not _method.startswith("_") and _method not in vars(InferenceService):
        setattr(InferenceService, _method, _unimplemented(_method))


def _request(message: Any) -> InferRequest:
    raw = list(message.raw_input_contents)
    if raw and len(raw) != len(message.inputs):
        raise errors.BadRequest("raw_input_contents must hold one entry per input")
    inputs = [
        tensors.from_bytes(item.name, item.datatype, list(item.shape), raw[index]) if raw else _from_contents(item)
        for index, item in enumerate(message.inputs)
    ]
    parameters = {
        key: getattr(value, value.WhichOneof("parameter_choice") or "string_param")
        for key, value in message.parameters.items()
    }
    outputs = [output.name for output in message.outputs] or None
    return InferRequest(inputs, message.id, parameters, outputs)


def _from_contents(item: Any) -> Tensor:
    shape = list(item.shape)
    if item.datatype == "BYTES":
        return tensors.from_elements(item.name, shape, list(item.contents.bytes_contents))
    field = CONTENTS.get(item.datatype)
    if field is None:
        raise errors.BadRequest(f"input {item.name!r}: datatype {item.datatype!r} cannot be sent in `contents`")
    return tensors.from_values(item.name, item.datatype, shape, list(getattr(item.contents, field)))


async def start(
    settings: Settings, v2: OpenInference, api_keys: ApiKeys, in_flight: InFlight, metrics: GatewayMetrics,
    audit: AuditLog,
) -> grpc.aio.Server:
    """The gRPC server listening on GATEWAY_HOST:GATEWAY_GRPC_PORT; stop it with `await server.stop(grace)`."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", settings.max_body_bytes)])
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceService(v2, api_keys, in_flight, metrics, audit), server
    )
    server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    await server.start()
    log.info("Open Inference Protocol gRPC on %s:%s", settings.host, settings.grpc_port)
    return server
