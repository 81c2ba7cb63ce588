"""Decode → grayscale → 224×224: our path (JPEG draft mode, DCT-domain downscaling) vs the naive path
(full decode at full size, then resize), per image; and how far the two move the shipped model's
probability.

    .venv/bin/python benchmarks/preprocess.py [--repeats 15]
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from benchmarks._samples import fullres, large
from radiograph import imaging
from radiograph.savedmodel import LoadedModel

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "pneumonia"
# Accepted difference between the paths: no label flips at any operating point stored in the model, and
# |Δ probability| <= 0.10. The training set was decoded by our (draft) path, so it is the reference.
TOLERANCE = 0.10


def per_image_ms(images: list[bytes], size: int, fast: bool, repeats: int) -> np.ndarray:
    """[images, repeats] milliseconds of `load_radiograph`."""
    times = np.empty((len(images), repeats))
    for i, data in enumerate(images):
        imaging.load_radiograph(data, size, fast=fast)  # warm
        for r in range(repeats):
            started = time.perf_counter()
            imaging.load_radiograph(data, size, fast=fast)
            times[i, r] = (time.perf_counter() - started) * 1e3
    return times


def report(name: str, images: list[bytes], size: int, repeats: int) -> None:
    ours, naive = per_image_ms(images, size, True, repeats), per_image_ms(images, size, False, repeats)
    ratio = np.median(naive, axis=1) / np.median(ours, axis=1)
    print(f"\n{name}: {len(images)} images × {repeats} repeats (ms per image)")
    print(f"  {'path':6s} {'median':>8s} {'p99':>8s}")
    for label, t in (("ours", ours), ("naive", naive)):
        print(f"  {label:6s} {np.median(t):8.2f} {np.percentile(t, 99):8.2f}")
    spread = f"min {ratio.min():.2f}×, max {ratio.max():.2f}×"
    print(f"  speed-up naive/ours: median of per-image ratios {np.median(ratio):.2f}× ({spread})")


def probability_change(images: list[bytes], model: LoadedModel, size: int) -> tuple[float, int]:
    ours = np.stack([imaging.load_radiograph(d, size).pixels for d in images])[..., None]
    naive = np.stack([imaging.load_radiograph(d, size, fast=False).pixels for d in images])[..., None]
    pixel_gap = np.abs(ours.astype(int) - naive.astype(int)).mean()
    p_ours, p_naive = model.predict(ours), model.predict(naive)
    gap = float(np.abs(p_ours - p_naive).max())
    flips = sum(
        int(((p_ours >= point.threshold) != (p_naive >= point.threshold)).sum())
        for point in model.metadata.operating_points.values()
    )
    print(f"  mean |Δ pixel| {pixel_gap:.2f} grey levels; max |Δ probability| {gap:.4f} (tolerance {TOLERANCE});")
    print(f"  label flips at the {len(model.metadata.operating_points)} stored operating points: {flips}")
    return gap, flips


def main(repeats: Annotated[int, typer.Option(help="Timed decodes per image and path.")] = 15) -> None:
    model = LoadedModel.from_dir(MODEL_DIR)
    size = model.metadata.input_height
    samples, big = fullres(), large()
    report("full-resolution samples (0.9-1.8k px)", samples, size, repeats)
    report("synthetic large radiographs (2-3k px)", big, size, max(repeats // 2, 3))
    print(f"\nmodel version {model.version}: probability, ours vs naive, all {len(samples) + len(big)} images")
    gap, flips = probability_change(samples + big, model, size)
    bomb = (Path(__file__).resolve().parent.parent / "tests/hardening/corpus/huge_dims.png").read_bytes()
    started = time.perf_counter()
    with contextlib.suppress(imaging.ImageTooLarge):
        imaging.load_radiograph(bomb, size)
    print(f"\n50,000×50,000 PNG bomb refused in {(time.perf_counter() - started) * 1e3:.2f} ms")
    if gap > TOLERANCE or flips:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
