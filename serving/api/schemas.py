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
    subtype: dict[str, float] | None = Field(
        None,
        description="When the label is PNEUMONIA and the model has a subtype head: probabilities of "
        "normal / bacteria / virus (a secondary output; the label above is the answer). Null otherwise.",
    )


class Explanation(BaseModel):
    label: str = Field(description="The verdict the map belongs to (as `/v1/predict`, without subtype).")
    probability: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    operating_point: str
    model_name: str
    model_version: int
    request_id: str
    heatmap: list[list[float]] = Field(
        description="Class activation map on the model's last feature grid (e.g. 7×7), rows top to bottom, in [0, 1]."
    )
    overlay_png: str = Field(
        description="Base64 PNG: the heatmap over the radiograph as the model saw it (its input size). "
        "Send `Accept: image/png` to get the PNG itself."
    )


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


class BatchPrediction(BaseModel):
    results: list[Prediction | ErrorBody] = Field(
        description="One item per image, in the order sent: a prediction, or the error for that image alone."
    )
    request_id: str
