"""Label-free acquisition traits of a radiograph as the model sees it (uint8 [H, W] grayscale, after
`imaging.preprocess`): what a new scanner, another PACS export setting or a re-windowing changes.

One implementation for the drift reference built at training time (`training.drift_reference`) and
the gateway's drift window (`serving.observability.drift`). All traits come from one 256-bin
histogram and one Laplacian pass: well under a millisecond for a 224×224 picture
(`benchmarks/drift_cost.py`). A picture's size and proportions are not here: every training picture
is 224×224, so the validation split cannot serve as their reference.
"""

from __future__ import annotations

import numpy as np

FEATURES = (
    "brightness", "contrast", "dynamic_range", "dark_fraction", "bright_fraction", "border", "sharpness"
)
"""Order of the values `traits` returns."""

DARK_LEVEL = 10
"""Pixels at or below this grey level count as clipped black."""
BRIGHT_LEVEL = 245
"""Pixels at or above this grey level count as clipped white."""
BORDER_FRACTION = 1 / 14
"""Width of the frame measured by `border`, as a share of the side (16 px of 224)."""
RANGE_QUANTILES = (0.01, 0.99)
"""`dynamic_range` is the distance between these quantiles of the grey levels."""

_LEVELS = np.arange(256, dtype=np.float64)


def traits(pixels: np.ndarray) -> np.ndarray:
    """uint8 [H, W] → float64 [len(FEATURES)]:

    - brightness: mean grey level (0-255), exposure;
    - contrast: standard deviation of the grey levels;
    - dynamic_range: 99th minus 1st percentile grey level (windowing, re-stretching);
    - dark_fraction / bright_fraction: share of clipped black / white pixels;
    - border: mean grey level of the outer frame (collimation, padding, burnt-in labels);
    - sharpness: variance of the 4-neighbour Laplacian (resolution, blur, compression noise).
    """
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 [H, W], got {pixels.dtype} {pixels.shape}")
    n = pixels.size
    histogram = np.bincount(pixels.ravel(), minlength=256).astype(np.float64)
    mean = float(histogram @ _LEVELS) / n
    variance = max(float(histogram @ (_LEVELS * _LEVELS)) / n - mean * mean, 0.0)
    cumulative = np.cumsum(histogram)
    low, high = np.searchsorted(cumulative, [q * n for q in RANGE_QUANTILES])
    height, width = pixels.shape
    k = max(1, round(min(height, width) * BORDER_FRACTION))
    frame = (
        int(pixels[:k].sum(dtype=np.int64)) + int(pixels[-k:].sum(dtype=np.int64))
        + int(pixels[k:-k, :k].sum(dtype=np.int64)) + int(pixels[k:-k, -k:].sum(dtype=np.int64))
    )
    frame_pixels = 2 * k * width + 2 * k * (height - 2 * k)
    p = pixels.astype(np.int16)
    laplacian = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * p[1:-1, 1:-1]
    return np.array(
        [
            mean,
            variance**0.5,
            float(high - low),
            float(cumulative[DARK_LEVEL]) / n,
            float(n - cumulative[BRIGHT_LEVEL - 1]) / n,
            frame / frame_pixels,
            float(laplacian.astype(np.float32).var()),
        ]
    )


def traits_of(pictures: np.ndarray) -> np.ndarray:
    """uint8 [n, H, W] → float64 [n, len(FEATURES)]."""
    return np.stack([traits(p) for p in pictures]) if len(pictures) else np.zeros((0, len(FEATURES)))
