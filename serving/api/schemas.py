"""Response bodies of the gateway's REST API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    label: str = Field(description="PNEUMONIA or NORMAL: `probability` compared with `threshold`.")
    probability: float = Field(ge=0, le=1, description="P(pneumonia) from the model.")
    threshold: float = Field(ge=0, le=1, description="Decision threshold of the operating point used.")
    operating_point: str = Field(description="Named threshold stored in the model, e.g. screening.")
    model_name: str
    model_version: int = Field(description="The model version that answered.")
    request_id: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable error code.")
    message: str
    request_id: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    backend: str
    model_name: str
