"""What scoring answers: a verdict per image (and, for `/v1/explain`, the map behind it). A leaf module: the data
plane (`serving.scoring`) makes these, routes, the audit log and the DICOMweb results read them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Verdict:
    label: str
    probability: float
    threshold: float
    operating_point: str
    model_name: str
    model_version: int
    subtype: dict[str, float] | None = None
    """Subtype probabilities (normal, bacteria, virus) when the label is positive and the model has them."""


@dataclass(frozen=True)
class ExplainedVerdict:
    verdict: Verdict
    heatmap: np.ndarray
    """float32 [h, w] in [0, 1], the model's low-resolution map."""
    pixels: np.ndarray
    """uint8 [H, W], the radiograph as the model saw it."""
