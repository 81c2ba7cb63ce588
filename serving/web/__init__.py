"""The page for a person: `GET /` serves plain HTML/JS/CSS from `static/` (no build step), which
calls `/v1/predict` and `/v1/explain` like any client, and `/web/model` for the operating points."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel

from serving.api.deps import BackendDep, SettingsDep

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}

router = APIRouter(tags=["web"], include_in_schema=False)


class OperatingPointView(BaseModel):
    name: str
    threshold: float
    rule: str


class ModelView(BaseModel):
    model_name: str
    labels: tuple[str, str]
    operating_points: list[OperatingPointView]
    default_operating_point: str
    subtype_labels: tuple[str, ...]


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/web/model", response_model=ModelView)
async def model(backend: BackendDep, settings: SettingsDep) -> ModelView:
    """What the page's operating-point selector offers, read from the served model's metadata."""
    metadata = await backend.metadata()
    default = settings.operating_point or metadata.default_operating_point
    points = [
        OperatingPointView(name=name, threshold=point.threshold, rule=point.rule)
        for name, point in sorted(metadata.operating_points.items())
    ]
    return ModelView(
        model_name=settings.model_name,
        labels=metadata.labels,
        operating_points=points,
        default_operating_point=default,
        subtype_labels=metadata.subtype_labels,
    )


@router.get("/web/{asset}")
async def asset(asset: str) -> FileResponse:
    if asset not in ASSETS:  # a fixed list: no path from the request ever reaches the file system
        raise HTTPException(404, "no such web asset")
    return FileResponse(STATIC / asset, media_type=ASSETS[asset], headers={"Cache-Control": "no-cache"})
