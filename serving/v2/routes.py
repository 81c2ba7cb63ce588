"""The Open Inference Protocol's REST routes under /v2. Errors are `{"error": "..."}` (`serving.errors.answer`);
API keys, the body limit and load shedding apply as on /v1 (health and readiness are open and never shed)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from serving import errors
from serving.api.deps import ApiKeyNameDep, AuditDep, RequestIdDep
from serving.observability.audit import AuditLog
from serving.v2 import tensors
from serving.v2.dataplane import OpenInference
from serving.v2.rest import BINARY_MEDIA_TYPE, HEADER_LENGTH, decode_request, encode_response
from serving.v2.schemas import (
    ErrorBody,
    InferRequestBody,
    InferResponseBody,
    MetadataTensor,
    ModelMetadataBody,
    ModelReadyBody,
    ServerLiveBody,
    ServerMetadataBody,
    ServerReadyBody,
    inline_schema,
)

router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"])

MODEL = "/models/{model_name}"
VERSION = "/models/{model_name}/versions/{model_version}"
_KEYED: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 503)}
MODEL_ERRORS: dict[int | str, dict[str, Any]] = {**_KEYED, **{code: {"model": ErrorBody} for code in (404, 502, 504)}}
INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    **MODEL_ERRORS,
    **{code: {"model": ErrorBody} for code in (400, 413, 501)},
    200: {"content": {BINARY_MEDIA_TYPE: {}}},
}
INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_schema(InferRequestBody)},
            BINARY_MEDIA_TYPE: {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": f"The binary tensor extension: the JSON request, its length in `{HEADER_LENGTH}`, "
                    "then the tensors' bytes.",
                }
            },
        },
    }
}


def get_open_inference(request: Request) -> OpenInference:
    return request.app.state.v2


OpenInferenceDep = Annotated[OpenInference, Depends(get_open_inference)]


@router.get("", response_model=ServerMetadataBody, responses=_KEYED, summary="Server metadata")
async def server_metadata(v2: OpenInferenceDep) -> ServerMetadataBody:
    name, version, extensions = v2.server_metadata()
    return ServerMetadataBody(name=name, version=version, extensions=extensions)


@router.get("/health/live", response_model=ServerLiveBody, summary="The server is alive")
async def server_live() -> ServerLiveBody:
    return ServerLiveBody(live=True)


@router.get(
    "/health/ready", response_model=ServerReadyBody, responses={503: {"model": ServerReadyBody}},
    summary="The model is loaded and answering",
)
async def server_ready(v2: OpenInferenceDep) -> JSONResponse:
    ready = await v2.ready()
    return JSONResponse(ServerReadyBody(ready=ready).model_dump(), status_code=200 if ready else 503)


async def _model_metadata(v2: OpenInference, name: str, version: str) -> ModelMetadataBody:
    model = await v2.model_metadata(name, version)
    return ModelMetadataBody(
        name=model.name,
        versions=model.versions,
        platform=model.platform,
        inputs=[MetadataTensor(**vars(spec)) for spec in model.inputs],
        outputs=[MetadataTensor(**vars(spec)) for spec in model.outputs],
        parameters=model.parameters,
    )


@router.get(MODEL, response_model=ModelMetadataBody, responses=MODEL_ERRORS, summary="Model metadata")
async def model_metadata(v2: OpenInferenceDep, model_name: str) -> ModelMetadataBody:
    return await _model_metadata(v2, model_name, "")


@router.get(VERSION, response_model=ModelMetadataBody, responses=MODEL_ERRORS, summary="Model version metadata")
async def model_version_metadata(v2: OpenInferenceDep, model_name: str, model_version: str) -> ModelMetadataBody:
    return await _model_metadata(v2, model_name, model_version)


async def _model_ready(v2: OpenInference, name: str, version: str) -> JSONResponse:
    ready = await v2.model_ready(name, version)
    return JSONResponse(ModelReadyBody(name=name, ready=ready).model_dump(), status_code=200 if ready else 503)


@router.get(MODEL + "/ready", response_model=ModelReadyBody, responses=MODEL_ERRORS, summary="Model readiness")
async def model_ready(v2: OpenInferenceDep, model_name: str) -> JSONResponse:
    return await _model_ready(v2, model_name, "")


@router.get(VERSION + "/ready", response_model=ModelReadyBody, responses=MODEL_ERRORS, summary="Version readiness")
async def model_version_ready(v2: OpenInferenceDep, model_name: str, model_version: str) -> JSONResponse:
    return await _model_ready(v2, model_name, model_version)


async def _infer(
    request: Request, v2: OpenInference, request_id: str, audit: AuditLog, api_key: str | None, name: str, version: str
) -> Response:
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise errors.UnsupportedMediaType("compressed request bodies (Content-Encoding) are not accepted")
    infer_request, binary = decode_request(await request.body(), request.headers.get(HEADER_LENGTH))
    scored = await v2.infer(name, version, infer_request, request_id)
    audit.predictions(scored.images, scored.verdicts, api_key)
    content, header_length = encode_response(scored.response, binary)
    if header_length is None:
        return Response(content, media_type="application/json")
    return Response(content, media_type=BINARY_MEDIA_TYPE, headers={HEADER_LENGTH: str(header_length)})


INFER_DOC = (
    f"Input `{tensors.IMAGE}` (BYTES [n]: encoded JPEG, PNG or DICOM files) or `{tensors.PIXELS}` (UINT8 [n, H, W, 1] "
    f"at the model's input size); outputs `{tensors.PROBABILITY}`, `{tensors.LABEL}`, `{tensors.THRESHOLD}`, "
    f"`{tensors.SUBTYPES}`. Parameter `{tensors.OPERATING_POINT}` chooses the threshold. A batch is scored whole or "
    "not at all: an image that cannot be scored fails the request (400 naming its position). docs/v2-protocol.md"
)


@router.post(
    MODEL + "/infer", response_model=InferResponseBody, responses=INFER_ERRORS, openapi_extra=INFER_BODY,
    summary="Score a batch of chest radiographs", description=INFER_DOC,
)
async def infer(
    request: Request, v2: OpenInferenceDep, request_id: RequestIdDep, audit: AuditDep, api_key: ApiKeyNameDep,
    model_name: str,
) -> Response:
    return await _infer(request, v2, request_id, audit, api_key, model_name, "")


@router.post(
    VERSION + "/infer", response_model=InferResponseBody, responses=INFER_ERRORS, openapi_extra=INFER_BODY,
    summary="Score a batch of chest radiographs with one model version", description=INFER_DOC,
)
async def infer_version(
    request: Request, v2: OpenInferenceDep, request_id: RequestIdDep, audit: AuditDep, api_key: ApiKeyNameDep,
    model_name: str, model_version: str,
) -> Response:
    return await _infer(request, v2, request_id, audit, api_key, model_name, model_version)
