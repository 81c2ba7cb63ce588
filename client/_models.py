"""What the gateway answers, typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Prediction(BaseModel):
    """One scored image, as `POST /v1/predict` answers it. Fields a newer gateway adds are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    label: str
    """PNEUMONIA or NORMAL: `probability` compared with `threshold`."""
    probability: float
    """P(pneumonia) from the model."""
    threshold: float
    """Decision threshold of the operating point used."""
    operating_point: str
    model_name: str
    model_version: int
    request_id: str
    """The gateway's request ID: quote it when reporting a problem."""
    subtype: dict[str, float] | None = None
    """When the label is PNEUMONIA and the model has a subtype head: bacterial / viral probabilities
    (they sum to 1). None otherwise, and from gateways that predate it."""


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """One item of `predict_many`: the item as given, and either its prediction or the error it got.
    `sha256` is the hash of the bytes sent (None when they could not be read)."""

    item: T
    prediction: Prediction | None = None
    error: Exception | None = None
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None
