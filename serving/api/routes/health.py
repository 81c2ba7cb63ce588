from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.api.deps import BackendDep, MetricsDep, SettingsDep
from serving.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    summary="A model is loaded and answering",
)
async def readyz(backend: BackendDep, settings: SettingsDep, gateway_metrics: MetricsDep) -> JSONResponse:
    ready = await backend.ready()
    gateway_metrics.ready.set(1 if ready else 0)
    body = Readiness(ready=ready, backend=backend.name, model_name=settings.model_name)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
