from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from serving.api.deps import ApiKeyNameDep, AuditDep, RequestIdDep, ScorerDep
from serving.api.schemas import ErrorBody, Prediction
from serving.api.uploads import read_images, request_body_doc
from serving.verdict import Verdict

router = APIRouter(prefix="/v1", tags=["predict"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 413, 415, 422, 429, 502, 503, 504)
}
OperatingPointQuery = Query(
    None, description="Name of a threshold stored in the model (screening, balanced); default from settings."
)


def to_prediction(verdict: Verdict, request_id: str) -> Prediction:
    return Prediction(**vars(verdict), request_id=request_id)


@router.post(
    "/predict",
    response_model=Prediction,
    responses=ERRORS,
    openapi_extra=request_body_doc("file", many=False),
    summary="Score one chest radiograph",
)
async def predict(
    request: Request,
    scorer: ScorerDep,
    request_id: RequestIdDep,
    audit: AuditDep,
    api_key: ApiKeyNameDep,
    operating_point: str | None = OperatingPointQuery,
) -> Prediction:
    """Send the image as multipart field `file`, or as the raw body (`image/jpeg`, `image/png`)."""
    (image,) = await read_images(request, "file", limit=1)
    (result,) = await scorer.score([image], operating_point, request_id)
    audit.predictions([image], [result], api_key)
    if isinstance(result, Exception):
        raise result
    request.state.label = result.label
    return to_prediction(result, request_id)
