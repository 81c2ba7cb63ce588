"""Acquisition changes a site can bring without any label changing: what the drift gauges must see.
Each takes the uint8 [224, 224] pictures the gateway scores and returns them as the gateway would
score the changed picture. Shared by tests/drift and `benchmarks/drift_scores.py`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from radiograph import imaging

WINDOW = 500
"""The gateway's default window (GATEWAY_DRIFT_WINDOW)."""
SHRUNK_SIDE = 96


def _each(change: Callable[[Image.Image], Image.Image | np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def apply(pixels: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(change(Image.fromarray(p)), np.uint8) for p in pixels])

    return apply


def _shrunk(image: Image.Image) -> np.ndarray:
    """Sent at 96×96 by software that shrank it: the gateway enlarges it to 224 and compresses it as
    the training pictures were made (its one preprocess path)."""
    small = image.resize((SHRUNK_SIDE, SHRUNK_SIDE), Image.Resampling.BICUBIC)
    return imaging.preprocess(small, image.width)


def _darkened(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(0.7)


def _blurred(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(1.5))


def _restretched(image: Image.Image) -> Image.Image:
    """Re-windowed to the full grey range with 2% clipped at each end (a PACS export's auto window)."""
    return ImageOps.autocontrast(image, cutoff=2)


DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "shrunk": _each(_shrunk),
    "blurred": _each(_blurred),
    "darkened": _each(_darkened),
    "re-stretched": _each(_restretched),
}
"""Name → change of a stack of pictures."""

TOUCHED: dict[str, tuple[str, ...]] = {
    "shrunk": ("sharpness",),
    "blurred": ("sharpness",),
    "darkened": ("brightness", "border", "contrast", "dynamic_range", "sharpness"),  # every level × 0.7
    "re-stretched": ("contrast", "dynamic_range", "dark_fraction", "bright_fraction"),
}
"""The features each change alters by construction, which must rise above 0.25 (measured figures:
`benchmarks/drift_scores.py`)."""
