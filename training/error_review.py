"""Where the model puts its evidence for the validation pictures it gets wrong.

A model that learnt the framing or the equipment rather than the disease puts its evidence outside the
lung fields: the neck and shoulders (top row of the 7×7 evidence grid), the abdomen (bottom row), the
borders and arms (outer columns). This scores the patient-grouped validation split, takes the pictures
misread at the `screening` operating point (false positives and false negatives) and, as a baseline, the
correctly read ones, and reports the share of each picture's class-activation mass outside the inner 5×5
cells (a coarse box, not a lung segmentation), where its peak cell lies, and a contact sheet of the errors
with their heatmaps for a person to read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from radiograph.contract import EXPLAIN_SIGNATURE, HEATMAP_OUTPUT, PROBABILITY_OUTPUT, SCREENING
from radiograph.overlay import overlay
from radiograph.savedmodel import LoadedModel
from training.data import Example, labels_of, load_pixels
from training.evaluate import examples_for

SHEET_COLUMNS = 8
TILE = 160


def outside_share(heatmaps: np.ndarray) -> np.ndarray:
    """Per map [n, h, w]: the share of its mass on the outermost ring of cells (NaN for an all-zero map: a picture
    with no cell of evidence for pneumonia)."""
    total = heatmaps.sum(axis=(1, 2))
    inner = heatmaps[:, 1:-1, 1:-1].sum(axis=(1, 2))
    return np.where(total > 0, 1.0 - inner / np.maximum(total, 1e-12), np.nan)


def peak_region(heatmap: np.ndarray) -> str:
    """Where the hottest cell lies: `top` (neck, shoulders), `bottom` (abdomen), `side` (borders, arms),
    `centre` (mediastinum, spine: the middle column) or `lungs`; `none` for an all-zero map."""
    if not heatmap.max() > 0:
        return "none"
    rows, cols = heatmap.shape
    r, c = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    if r == 0:
        return "top"
    if r == rows - 1:
        return "bottom"
    if c in (0, cols - 1):
        return "side"
    return "centre" if c == cols // 2 else "lungs"


def explain(model: LoadedModel, pixels: np.ndarray, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    parts = [model.run(EXPLAIN_SIGNATURE, pixels[i : i + batch, ..., None]) for i in range(0, len(pixels), batch)]
    return (np.concatenate([p[PROBABILITY_OUTPUT] for p in parts]), np.concatenate([p[HEATMAP_OUTPUT] for p in parts]))


def _group(name: str, index: np.ndarray, p: np.ndarray, heat: np.ndarray) -> dict[str, object]:
    shares = outside_share(heat[index])
    shares = shares[~np.isnan(shares)]  # pictures without evidence have no share
    regions = [peak_region(h) for h in heat[index]]
    return {
        "pictures": len(index),
        "no_evidence": regions.count("none"),
        "outside_share_mean": round(float(shares.mean()), 4) if len(shares) else None,
        "outside_share_median": round(float(np.median(shares)), 4) if len(shares) else None,
        "peak_region": {r: regions.count(r) for r in ("lungs", "centre", "top", "bottom", "side", "none")},
        "probability_median": round(float(np.median(p[index])), 4) if len(index) else None,
    }


def contact_sheet(pixels: np.ndarray, heat: np.ndarray, p: np.ndarray, index: np.ndarray, title: str) -> Image.Image:
    rows = max(1, -(-len(index) // SHEET_COLUMNS))
    sheet = Image.new("RGB", (SHEET_COLUMNS * TILE, rows * TILE + 20), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill="black")
    for k, i in enumerate(index):
        tile = Image.fromarray(overlay(pixels[i], heat[i], strength=1.0)).resize((TILE, TILE))
        ImageDraw.Draw(tile).text((3, 3), f"P {p[i]:.2f}", fill="yellow")
        sheet.paste(tile, ((k % SHEET_COLUMNS) * TILE, 20 + (k // SHEET_COLUMNS) * TILE))
    return sheet


def review(model: LoadedModel, data_dir: Path, out: Path, limit: int = 48) -> dict[str, object]:
    """Writes `errors.json` and contact sheets of the false positives and false negatives to `out`."""
    examples: list[Example] = examples_for(data_dir, "val", model)
    pixels = load_pixels(examples, model.metadata.input_height)
    y = labels_of(examples)
    p, heat = explain(model, pixels)
    threshold = model.metadata.operating_points[SCREENING].threshold
    flagged = p >= threshold
    groups = {
        "false_positive": np.flatnonzero(flagged & (y == 0)),
        "false_negative": np.flatnonzero(~flagged & (y == 1)),
        "true_negative": np.flatnonzero(~flagged & (y == 0)),
        "true_positive": np.flatnonzero(flagged & (y == 1)),
    }
    report = {
        "model_version": model.version,
        "threshold": threshold,
        "region_rule": "outside = outermost ring of the 7x7 evidence grid (a coarse box, not a lung segmentation)",
        **{name: _group(name, index, p, heat) for name, index in groups.items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "errors.json").write_text(json.dumps(report, indent=1))
    for name in ("false_positive", "false_negative"):
        index = groups[name][np.argsort(-np.abs(p[groups[name]] - threshold))][:limit]  # the surest errors first
        title = f"version {model.version}: {name.replace('_', ' ')}s at screening {threshold} (surest first)"
        contact_sheet(pixels, heat, p, index, title).save(out / f"{name}.png")
    return report
