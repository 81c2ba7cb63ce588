from __future__ import annotations

from fastapi import APIRouter, Request

from serving.api.deps import ApiKeyNameDep, AuditDep, RequestIdDep, ScorerDep, SettingsDep
from serving.api.routes.predict import ERRORS, OperatingPointQuery, to_prediction
from serving.api.schemas import BatchPrediction, ErrorBody, ErrorDetail, Prediction
from serving.api.uploads import read_images, request_body_doc
from serving.errors import GatewayError
from serving.verdict import Verdict

router = APIRouter(prefix="/v1", tags=["predict"])


def to_item(result: Verdict | GatewayError, request_id: str) -> Prediction | ErrorBody:
    if isinstance(result, GatewayError):
        return ErrorBody(error=ErrorDetail(code=result.code, message=result.message, request_id=request_id))
    return to_prediction(result, request_id)


@router.post(
    "/predict/batch",
    response_model=BatchPrediction,
    responses=ERRORS,
    openapi_extra=request_body_doc("files", many=True),
    summary="Score several chest radiographs in one model call",
)
async def predict_batch(
    request: Request,
    scorer: ScorerDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    audit: AuditDep,
    api_key: ApiKeyNameDep,
    operating_point: str | None = OperatingPointQuery,
) -> BatchPrediction:
    """Send the images as repeated multipart field `files` (at most `GATEWAY_MAX_BATCH_IMAGES`).
    The answer has one item per image, in order; a bad image gets its own error item (same shape as
    an error answer) and does not fail the others. Failures of the model backend fail the whole request."""
    images = await read_images(request, "files", limit=settings.max_batch_images)
    results = await scorer.score(images, operating_point, request_id)
    audit.predictions(images, results, api_key)
    return BatchPrediction(results=[to_item(result, request_id) for result in results], request_id=request_id)
