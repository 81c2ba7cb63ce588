"""Decode → grayscale → 224×224, per image: the product's path (full decode, bicubic resize, JPEG quality 75 as
`train/` was made) against the naive path (full decode, resize, nothing else: what the published apps do) and
against draft decoding (libjpeg's DCT-domain downscaling, then the product's resize and compression); and how far
draft decoding moves the shipped model's probability, against a stated tolerance.

    .venv/bin/python -m benchmarks.preprocess [--repeats 15]
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image, ImageOps

from benchmarks._samples import fullres, large
from radiograph import imaging
from radiograph.savedmodel import LoadedModel

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "pneumonia"
# What a faster decode may change: no label flip at any operating point stored in the model, |Δ probability|
# <= 0.10 against the product's path (which gives the training set's own pixels of an original).
TOLERANCE = 0.10
DRAFT_FACTOR = 2  # draft decoding: JPEGs decoded to >= 2× the target size before the resize


def draft_pixels(data: bytes, size: int) -> np.ndarray:
    """libjpeg's DCT-domain downscaling (`Image.draft`), then the product's resize and compression: faster,
    but not the training set's pixels; the product decodes in full."""
    encoded = Image.open(io.BytesIO(data))
    encoded.draft("L", (DRAFT_FACTOR * size,) * 2)
    encoded.load()
    return imaging.preprocess(ImageOps.exif_transpose(encoded), size)


PixelPath = Callable[[bytes, int], np.ndarray]
PATHS: dict[str, PixelPath] = {
    "ours": lambda data, size: imaging.load_radiograph(data, size).pixels,
    "naive": lambda data, size: np.asarray(imaging.resized_gray(imaging.decode(data), size)),
    "draft": draft_pixels,
}


def per_image_ms(images: list[bytes], size: int, path: PixelPath, repeats: int) -> np.ndarray:
    """[images, repeats] milliseconds of one path."""
    times = np.empty((len(images), repeats))
    for i, data in enumerate(images):
        path(data, size)  # warm
        for r in range(repeats):
            started = time.perf_counter()
            path(data, size)
            times[i, r] = (time.perf_counter() - started) * 1e3
    return times


def report(name: str, images: list[bytes], size: int, repeats: int) -> None:
    times = {label: per_image_ms(images, size, path, repeats) for label, path in PATHS.items()}
    print(f"\n{name}: {len(images)} images × {repeats} repeats (ms per image)")
    print(f"  {'path':6s} {'median':>8s} {'p99':>8s} {'speed-up over ours (median per image)':>42s}")
    ours = np.median(times["ours"], axis=1)
    for label, t in times.items():
        ratio = ours / np.median(t, axis=1)
        spread = f"{np.median(ratio):.2f}× ({ratio.min():.2f}–{ratio.max():.2f}×)"
        print(f"  {label:6s} {np.median(t):8.2f} {np.percentile(t, 99):8.2f} {spread:>42s}")


def draft_change(images: list[bytes], model: LoadedModel, size: int) -> None:
    ours = np.stack([PATHS["ours"](d, size) for d in images])[..., None]
    draft = np.stack([PATHS["draft"](d, size) for d in images])[..., None]
    pixel_gap = np.abs(ours.astype(int) - draft.astype(int)).mean()
    p_ours, p_draft = model.predict(ours), model.predict(draft)
    gap = float(np.abs(p_ours - p_draft).max())
    flips = sum(
        int(((p_ours >= point.threshold) != (p_draft >= point.threshold)).sum())
        for point in model.metadata.operating_points.values()
    )
    print(f"  mean |Δ pixel| {pixel_gap:.2f} grey levels; max |Δ probability| {gap:.4f} (tolerance {TOLERANCE});")
    print(f"  label flips at the {len(model.metadata.operating_points)} stored operating points: {flips}")
    verdict = "within" if gap <= TOLERANCE and not flips else "outside"
    print(f"  draft decoding is {verdict} the tolerance (the product decodes in full either way)")


def main(repeats: Annotated[int, typer.Option(help="Timed decodes per image and path.")] = 15) -> None:
    model = LoadedModel.from_dir(MODEL_DIR)
    size = model.metadata.input_height
    samples, big = fullres(), large()
    report("full-resolution samples (0.9-1.8k px)", samples, size, repeats)
    report("synthetic large radiographs (2-3k px)", big, size, max(repeats // 2, 3))
    print(f"\nmodel version {model.version}: probability, ours vs draft decoding, all {len(samples) + len(big)} images")
    draft_change(samples + big, model, size)
    bomb = (Path(__file__).resolve().parent.parent / "tests/hardening/corpus/huge_dims.png").read_bytes()
    started = time.perf_counter()
    with contextlib.suppress(imaging.ImageTooLarge):
        imaging.load_radiograph(bomb, size)
    print(f"\n50,000×50,000 PNG bomb refused in {(time.perf_counter() - started) * 1e3:.2f} ms")


if __name__ == "__main__":
    typer.run(main)
