"""STOW-RS routes (PS3.18 10.5): the PACS pushes studies, the gateway answers once they are spooled."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from serving.api.deps import ApiKeyNameDep
from serving.api.schemas import ErrorBody
from serving.dicomweb import stow
from serving.dicomweb.service import DicomwebService

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])

UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"
STORE_RESPONSE = {"description": "Store Instances Response (DICOM JSON)", "content": {stow.DICOM_JSON: {}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: STORE_RESPONSE,
    202: {**STORE_RESPONSE, "description": "Some instances were refused (FailedSOPSequence says why)"},
    409: {**STORE_RESPONSE, "description": "No instance was taken (FailedSOPSequence says why)"},
    **{code: {"model": ErrorBody} for code in (400, 401, 403, 413, 415, 503)},
}
BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            f'{stow.MULTIPART_RELATED}; type="{stow.DICOM}"': {
                "schema": {"type": "string", "format": "binary", "description": "DICOM Part 10 instances, one per part"}
            }
        },
    }
}


def get_dicomweb(request: Request) -> DicomwebService:
    return request.app.state.dicomweb


DicomwebDep = Annotated[DicomwebService, Depends(get_dicomweb)]


async def _store(request: Request, service: DicomwebService, api_key: str | None, study: str | None) -> JSONResponse:
    boundary = stow.check_content_type(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length", "")
    response = await service.store(
        request.stream(), int(declared) if declared.isdigit() else 0, boundary, study, api_key
    )
    return JSONResponse(response.to_json(), status_code=response.status_code, media_type=stow.DICOM_JSON)


@router.post("/studies", responses=RESPONSES, openapi_extra=BODY_DOC, summary="Store instances (STOW-RS)")
async def store_instances(request: Request, service: DicomwebDep, api_key: ApiKeyNameDep) -> JSONResponse:
    """CR/DX instances are scored; each result comes back into its study as a DICOM SR (docs/pacs.md)."""
    return await _store(request, service, api_key, None)


@router.post(
    "/studies/{StudyInstanceUID}",
    responses=RESPONSES,
    openapi_extra=BODY_DOC,
    summary="Store instances of one study (STOW-RS)",
)
async def store_study_instances(
    request: Request,
    service: DicomwebDep,
    api_key: ApiKeyNameDep,
    study: Annotated[str, Path(alias="StudyInstanceUID", pattern=UID_PATTERN, max_length=64)],
) -> JSONResponse:
    """As `POST /dicomweb/studies`; instances of another study are refused (FailureReason 0xA900)."""
    return await _store(request, service, api_key, study)
