from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["ops"])


@router.get("/v1/drift", summary="Label-free drift of the recent inputs and scores against the model's reference")
async def drift(request: Request) -> dict[str, Any]:
    """Per model version this gateway has scored: whether it has a drift reference (false: drift
    unavailable), the images in its window, the reference each feature is measured against
    (`validation` or `site`), the PSI per feature once the window is full (as `gateway_input_drift`),
    and the site baseline's progress (`images`, `of`, `frozen`; null when `GATEWAY_DRIFT_BASELINE_DIR`
    is unset)."""
    return request.app.state.drift.status()
