"""A training picture as the clinical tests use it (built by the `pictures` fixture in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Picture:
    name: str
    truth: str
    jpeg: bytes
    gray: np.ndarray
    """uint8 [H, W], the decoded JPEG (what a DICOM file of the same picture stores)."""
    probability: float
    """The gateway's answer for the JPEG."""
    threshold: float
