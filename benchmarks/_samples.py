"""Benchmark inputs: the 16 full-resolution samples and larger synthetic radiographs made from them."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CHEST_XRAY_DIR", REPO.parent / "shared" / "data" / "chest_xray"))
LARGE_LONG_SIDES = (2048, 2560, 3072)


def fullres() -> list[bytes]:
    paths = sorted((DATA_DIR / "fullres_samples").glob("*/*.jpeg"))
    assert len(paths) == 16, f"expected the 16 full-resolution samples under {DATA_DIR}"
    return [path.read_bytes() for path in paths]


def large(count: int = 6) -> list[bytes]:
    """Samples upscaled (bicubic) to a 2k-3k px long side and re-encoded as JPEG quality 90, as a
    modern detector's export would be."""
    images = []
    for k, data in enumerate(fullres()[:count]):
        image = Image.open(io.BytesIO(data)).convert("L")
        side = LARGE_LONG_SIDES[k % len(LARGE_LONG_SIDES)]
        scale = side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        images.append(buffer.getvalue())
    return images
