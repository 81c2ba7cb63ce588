from __future__ import annotations

import base64
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from radiograph.overlay import overlay_png
from serving.api.deps import ApiKeyNameDep, AuditDep, RequestIdDep, ScorerDep
from serving.api.routes.predict import ERRORS, OperatingPointQuery
from serving.api.schemas import Explanation
from serving.api.uploads import read_images, request_body_doc

router = APIRouter(prefix="/v1", tags=["explain"])

PNG = "image/png"
RESPONSES: dict[int | str, dict[str, Any]] = {**ERRORS, 501: ERRORS[415], 200: {"content": {PNG: {}}}}


def wants_png(request: Request) -> bool:
    """`Accept: image/png` (without application/json) asks for the overlay itself."""
    accepted = {part.split(";")[0].strip().lower() for part in request.headers.get("accept", "").split(",")}
    return PNG in accepted and "application/json" not in accepted


@router.post(
    "/explain",
    response_model=Explanation,
    responses=RESPONSES,
    openapi_extra=request_body_doc("file", many=False),
    summary="Where the model looked: a heatmap over the radiograph",
)
async def explain(
    request: Request,
    scorer: ScorerDep,
    request_id: RequestIdDep,
    audit: AuditDep,
    api_key: ApiKeyNameDep,
    operating_point: str | None = OperatingPointQuery,
) -> Response | Explanation:
    """The verdict with a class activation map from the model's `explain` signature: JSON with the
    low-resolution map and a base64 PNG overlay, or the PNG itself with `Accept: image/png`
    (the verdict then in `X-Label`, `X-Probability`, `X-Threshold`, `X-Model-Version` headers)."""
    (image,) = await read_images(request, "file", limit=1)
    explained = await scorer.explain(image, operating_point, request_id)
    verdict = explained.verdict
    audit.prediction(image, verdict, api_key)
    request.state.label = verdict.label
    png = await anyio.to_thread.run_sync(overlay_png, explained.pixels, explained.heatmap, verdict.probability)
    if wants_png(request):
        headers = {
            "X-Label": verdict.label,
            "X-Probability": f"{verdict.probability:.6f}",
            "X-Threshold": f"{verdict.threshold:.6f}",
            "X-Operating-Point": verdict.operating_point,
            "X-Model-Version": str(verdict.model_version),
        }
        return Response(png, media_type=PNG, headers=headers)
    fields = {name: value for name, value in vars(verdict).items() if name != "subtype"}
    return Explanation(
        **fields,
        request_id=request_id,
        heatmap=np.round(explained.heatmap.astype(np.float64), 4).tolist(),
        overlay_png=base64.b64encode(png).decode("ascii"),
    )
