"""A heatmap drawn over the radiograph the model saw: what `/v1/explain` and the web page show.

The model's map is max-normalised per image, so even a confidently NORMAL image has a spot at 1.0
(the least unremarkable region, not a finding). The overlay's opacity is therefore also scaled by
`strength` (the gateway passes P(pneumonia)): a clear image stays nearly grey.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# A perceptually ordered blue → cyan → yellow → red ramp; alpha grows with the heat so that the
# parts the model ignored stay plain radiograph.
_STOPS = np.array([0.0, 0.35, 0.65, 1.0])
_COLOURS = np.array([[40, 60, 200], [0, 200, 220], [250, 220, 0], [230, 20, 20]], dtype=np.float64)
MAX_ALPHA = 0.55


def upsample(heatmap: np.ndarray, width: int, height: int) -> np.ndarray:
    """[h, w] map in [0, 1] → [height, width], bilinear (the CAM grid is coarse: 7×7 for 224 px)."""
    image = Image.fromarray(np.asarray(heatmap, np.float32))
    resized = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), np.float64)
    return np.clip(resized, 0.0, 1.0)


def colourise(heat: np.ndarray) -> np.ndarray:
    """[H, W] in [0, 1] → uint8 RGB [H, W, 3] on the ramp above."""
    channels = [np.interp(heat, _STOPS, _COLOURS[:, c]) for c in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def overlay(pixels: np.ndarray, heatmap: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """uint8 grayscale [H, W] + heatmap [h, w] in [0, 1] → uint8 RGB [H, W, 3]; `strength` in [0, 1]."""
    height, width = pixels.shape
    heat = upsample(heatmap, width, height)
    gray = np.repeat(pixels[..., None].astype(np.float64), 3, axis=-1)
    alpha = (MAX_ALPHA * float(np.clip(strength, 0.0, 1.0)) * heat)[..., None]
    blended = (1.0 - alpha) * gray + alpha * colourise(heat)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def overlay_png(pixels: np.ndarray, heatmap: np.ndarray, strength: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(overlay(pixels, heatmap, strength)).save(buffer, format="PNG")
    return buffer.getvalue()
