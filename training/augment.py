"""Acquisition-shift augmentation on uint8 radiographs.

The withheld test split and every hospital's data were acquired differently from `train/`: other
exposure, contrast, sharpness (blur and edge enhancement), resolution, compression and positioning.
`shift` draws one such difference per image; `strength` scales every range (1.0 for training, >1
for the hard validation set).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter


def shift(pixels: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    image = Image.fromarray(pixels, mode="L")
    size = image.size[0]
    image = _affine(image, rng, strength)
    if rng.random() < 0.5:
        low = int(size * max(0.35, 1 - 0.5 * strength))
        side = int(rng.integers(low, size))
        image = image.resize((side, side), Image.Resampling.BILINEAR).resize(
            (size, size), Image.Resampling.BICUBIC
        )
    sharpness = rng.random()
    if sharpness < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2 * strength))))
    elif sharpness < 0.6:
        # sharper detectors and edge-enhancing processing, as in some sites' exports
        radius, percent = float(rng.uniform(1.0, 3.0)), int(rng.uniform(40, 150 * strength))
        image = image.filter(ImageFilter.UnsharpMask(radius=radius, percent=percent, threshold=2))
    array = np.asarray(image, dtype=np.float32) / 255.0
    if rng.random() < 0.8:
        gamma = math.exp(rng.uniform(-0.5, 0.5) * strength)
        contrast = math.exp(rng.uniform(-0.3, 0.3) * strength)
        brightness = rng.uniform(-0.1, 0.1) * strength
        array = np.clip((array**gamma - 0.5) * contrast + 0.5 + brightness, 0.0, 1.0)
    if rng.random() < 0.4:
        array = array + rng.normal(0.0, rng.uniform(0.005, 0.03 * strength), array.shape)
    out = Image.fromarray(np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8), mode="L")
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        out.save(buffer, format="JPEG", quality=int(rng.integers(max(10, int(90 - 60 * strength)), 95)))
        out = Image.open(buffer)
        out.load()
    return np.asarray(out, dtype=np.uint8)


def _affine(image: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    size = image.size[0]
    angle = math.radians(rng.uniform(-8, 8) * strength)
    scale = math.exp(rng.uniform(-0.1, 0.1) * strength)
    tx, ty = rng.uniform(-0.06, 0.06, size=2) * strength * size
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    centre = size / 2
    # inverse map: output (x, y) → input
    a, b, d, e = cos, sin, -sin, cos
    c = centre - a * (centre + tx) - b * (centre + ty)
    f = centre - d * (centre + tx) - e * (centre + ty)
    return image.transform(
        image.size, Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BICUBIC
    )


def shifted_copies(
    pixels: np.ndarray, seed: int, strength: float = 1.0
) -> np.ndarray:
    """One shifted copy of each image in uint8 [n, h, w], reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return np.stack([shift(p, rng, strength) for p in pixels]) if len(pixels) else pixels.copy()
