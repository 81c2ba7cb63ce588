"""Framing: the anatomy's proportions, zoom and crop of a radiograph, as a shortcut to take away.

`train/` was made by squashing each original to a 224×224 square, and the originals' shapes differ
by class (median width/height of the full-resolution samples: NORMAL 1.22, PNEUMONIA 1.50). A
squashed picture's anatomy is stretched vertically by its original's width/height, so the class is
partly written into its proportions, and a model can learn it from them (model 4 did).

`framed_copies` takes that away from training: each copy's vertical stretch of the anatomy is drawn
from one range for both classes (log-uniform in `TARGET_STRETCH`), by reframing each picture by
the ratio of the drawn stretch to its class's median, plus a zoom and an offset. `swapped_copies`
is the shortcut-balanced validation view: each picture given the proportions of the other class.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

ORIGINAL_ASPECT = (1.22, 1.50)
"""Median width/height of the originals, by label (NORMAL, PNEUMONIA): measured on
`fullres_samples/` (shapes only; nothing is chosen on those pictures)."""
TARGET_STRETCH = (1.0, 1.8)
"""Range of the anatomy's vertical stretch in a framed view, the same for both classes."""
ZOOM = (0.87, 1.2)
"""Range of the isotropic zoom of a framed view (below 1: zoomed out, borders padded): version 5's recipe."""
WIDE_ZOOM = (0.75, 1.33)
"""The wider zoom range of version 6's recipe (`features --zoom-range`): zoomed-out, padded framings and
tighter crops than the audit's ±15–20 %, so that scale carries no information either."""
ZOOM_VIEWS = {"zoomin": 1.25, "zoomout": 0.8}
"""The zoomed validation views (original proportions, centred): what the audit found fragile, in the hard set."""
OFFSET = 0.05
"""Largest shift of a framed view's centre, as a share of the side."""


def reframe(
    pixels: np.ndarray, vertical: float, zoom: float = 1.0, offset: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """uint8 [h, w] with its content stretched `vertical` times vertically relative to
    horizontally, zoomed `zoom` times and moved by `offset` (share of the side), same size.

    The content is enlarged along the axis that the stretch needs (no padding for the stretch
    itself); a zoom below 1 pads the borders with the picture's own border level."""
    image = Image.fromarray(pixels, mode="L")
    width, height = image.size
    sx = zoom * max(1.0, 1.0 / vertical)
    sy = zoom * max(1.0, vertical)
    cx, cy = width / 2, height / 2
    tx, ty = offset[0] * width, offset[1] * height
    # inverse map: output (x, y) → input (cx + (x - cx) / sx + tx, cy + (y - cy) / sy + ty)
    coefficients = (1 / sx, 0.0, cx - cx / sx + tx, 0.0, 1 / sy, cy - cy / sy + ty)
    fill = int(np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])))
    out = image.transform(image.size, Image.Transform.AFFINE, coefficients, Image.Resampling.BICUBIC,
                          fillcolor=fill)
    return np.asarray(out, dtype=np.uint8)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def framed_copies(
    pixels: np.ndarray, labels: np.ndarray, seed: int, zoom_range: tuple[float, float] = ZOOM
) -> np.ndarray:
    """One framed copy of each picture (uint8 [n, h, w]), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(pixels)
    for i, (picture, label) in enumerate(zip(pixels, labels, strict=True)):
        stretch = _log_uniform(rng, *TARGET_STRETCH)
        zoom = _log_uniform(rng, *zoom_range)
        offset = (float(rng.uniform(-OFFSET, OFFSET)), float(rng.uniform(-OFFSET, OFFSET)))
        out[i] = reframe(picture, stretch / ORIGINAL_ASPECT[int(label)], zoom, offset)
    return out


def swapped_copies(pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each picture with the proportions of the other class's originals (the shortcut-balanced view)."""
    out = np.empty_like(pixels)
    for i, (picture, label) in enumerate(zip(pixels, labels, strict=True)):
        out[i] = reframe(picture, ORIGINAL_ASPECT[1 - int(label)] / ORIGINAL_ASPECT[int(label)])
    return out


def zoomed_copies(pixels: np.ndarray, zoom: float) -> np.ndarray:
    """Each picture zoomed `zoom` times about its centre, proportions kept (a zoomed validation view)."""
    return np.stack([reframe(picture, 1.0, zoom) for picture in pixels])
