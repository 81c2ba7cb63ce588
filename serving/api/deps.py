"""Dependencies of the routes, as named `Annotated` aliases (tests swap them via the app state)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.config import Settings
from serving.inference.base import InferenceBackend
from serving.observability.audit import AuditLog
from serving.observability.metrics import GatewayMetrics
from serving.scoring import Scorer


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_backend(request: Request) -> InferenceBackend:
    return request.app.state.backend


def get_metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


def get_scorer(request: Request) -> Scorer:
    return request.app.state.scorer


def get_request_id(request: Request) -> str:
    return request.state.request_id


def get_audit(request: Request) -> AuditLog:
    return request.app.state.audit


def get_api_key_name(request: Request) -> str | None:
    """The caller's API key name, set by `security.authenticate` (None when the gateway runs open)."""
    return getattr(request.state, "api_key_name", None)


SettingsDep = Annotated[Settings, Depends(get_settings)]
BackendDep = Annotated[InferenceBackend, Depends(get_backend)]
MetricsDep = Annotated[GatewayMetrics, Depends(get_metrics)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
ApiKeyNameDep = Annotated[str | None, Depends(get_api_key_name)]
