"""Shortcut audit: how far P(pneumonia) moves under acquisition changes that carry no diagnosis.

A model that reads the class from how a picture was taken (its proportions, zoom, sharpness,
compression) instead of from the lungs fails where pictures are taken differently. For each change
below, the audit scores validation pictures of both classes before and after it, through the exported
SavedModel, and reports the mean and 10th/90th percentiles of ΔP and the share of labels that flip at
the model's default operating point. It also reports, within each class, the rank correlation of P
with the acquisition traits of `radiograph.acquisition` (the drift monitor's: exposure, contrast, clipping,
border level, sharpness; sharpness and border brightness differ by class in `train/`), so that a new model
starting to use them shows up.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy.stats import spearmanr

from radiograph import acquisition
from radiograph.contract import PROBABILITY_OUTPUT
from radiograph.savedmodel import LoadedModel
from training.data import Example, labels_of, load_pixels
from training.evaluate import score
from training.framing import reframe, swapped_copies

Change = Callable[[np.ndarray], np.ndarray]


def _pillow(pixels: np.ndarray, apply: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    return np.asarray(apply(Image.fromarray(pixels, mode="L")), dtype=np.uint8)


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer), dtype=np.uint8)


def _gamma(pixels: np.ndarray, gamma: float) -> np.ndarray:
    return np.rint(255.0 * (pixels / 255.0) ** gamma).astype(np.uint8)


def _noise(pixels: np.ndarray, sigma: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(np.rint(pixels + rng.normal(0.0, sigma * 255.0, pixels.shape)), 0, 255).astype(np.uint8)


def _half_resolution(pixels: np.ndarray) -> np.ndarray:
    size = pixels.shape[::-1]
    return _pillow(pixels, lambda im: im.resize((size[0] // 2, size[1] // 2), Image.Resampling.BILINEAR)
                   .resize(size, Image.Resampling.BICUBIC))


CHANGES: dict[str, Change] = {
    "vertical stretch 15%": lambda p: reframe(p, 1.15),
    "horizontal stretch 15%": lambda p: reframe(p, 1 / 1.15),
    "zoom in 20%": lambda p: reframe(p, 1.0, 1.2),
    "zoom out 15%": lambda p: reframe(p, 1.0, 1 / 1.15),
    "crop borders 5%": lambda p: reframe(p, 1.0, 1 / 0.9),
    "pad borders 5% (black)": lambda p: _pad_black(p, 0.05),
    "blur σ=1": lambda p: _pillow(p, lambda im: im.filter(ImageFilter.GaussianBlur(1.0))),
    "sharpen (unsharp mask)": lambda p: _pillow(p, lambda im: im.filter(ImageFilter.UnsharpMask(2, 100, 2))),
    "gamma 0.6": lambda p: _gamma(p, 0.6),
    "gamma 1.6": lambda p: _gamma(p, 1.6),
    "noise σ=0.02": lambda p: _noise(p, 0.02),
    "half resolution": _half_resolution,
    "JPEG q30": lambda p: _jpeg(p, 30),
}
"""Acquisition changes applied to each picture alone. `proportions of the other class` (which needs
the label) is added by `run`."""
OTHER_PROPORTIONS = "proportions of the other class"


def _pad_black(pixels: np.ndarray, share: float) -> np.ndarray:
    height, width = pixels.shape
    inner = (round(width * (1 - 2 * share)), round(height * (1 - 2 * share)))
    small = Image.fromarray(pixels, mode="L").resize(inner, Image.Resampling.BICUBIC)
    canvas = Image.new("L", (width, height), 0)
    canvas.paste(small, ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8)




def sample(examples: list[Example], per_class: int, seed: int) -> list[Example]:
    """Up to `per_class` examples of each label, seeded, in their original order."""
    rng = np.random.default_rng(seed)
    labels = labels_of(examples)
    chosen = np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:per_class] for k in (0, 1)])
    return [examples[i] for i in sorted(chosen)]


def _figures(delta: np.ndarray, flipped: np.ndarray) -> dict[str, float]:
    return {"mean_dp": float(delta.mean()), "p10_dp": float(np.percentile(delta, 10)),
            "p90_dp": float(np.percentile(delta, 90)), "flipped": float(flipped.mean())}


def _rank_correlation(trait: np.ndarray, p: np.ndarray) -> float | None:
    """Spearman ρ, or None where the trait or P does not vary (no ranking to correlate)."""
    if np.ptp(trait) == 0 or np.ptp(p) == 0:
        return None
    return float(spearmanr(trait, p).statistic)


def run(model: LoadedModel, examples: list[Example], operating_point: str | None = None) -> dict[str, object]:
    """The audit of `model` on `examples` (see the module docstring) as a JSON-ready report."""
    name, point = model.metadata.operating_point(operating_point)
    pixels = load_pixels(examples, model.metadata.input_height)
    y = labels_of(examples)

    def probability(batch: np.ndarray) -> np.ndarray:
        return score(model, batch)[PROBABILITY_OUTPUT]

    before = probability(pixels)
    changed = {OTHER_PROPORTIONS: swapped_copies(pixels, y)}
    changed |= {label: np.stack([change(p) for p in pixels]) for label, change in CHANGES.items()}
    changes: dict[str, object] = {}
    for label, moved in changed.items():
        after = probability(moved)
        flipped = (after >= point.threshold) != (before >= point.threshold)
        changes[label] = {cls: _figures(after[y == k] - before[y == k], flipped[y == k])
                          for k, cls in enumerate(model.metadata.labels)}
    measured = acquisition.traits_of(pixels)
    traits = {
        trait: {cls: _rank_correlation(measured[y == k, column], before[y == k])
                for k, cls in enumerate(model.metadata.labels)}
        for column, trait in enumerate(acquisition.FEATURES)
    }
    return {"model_version": model.version, "operating_point": name, "threshold": point.threshold,
            "n_per_class": {cls: int(np.sum(y == k)) for k, cls in enumerate(model.metadata.labels)},
            "changes": changes, "trait_rank_correlation": traits}


def write(report: dict[str, object], out: Path) -> None:
    """`audit.json` and a readable `audit.md` in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(report, indent=2))
    changes = report["changes"]
    traits = report["trait_rank_correlation"]
    per_class = report["n_per_class"]
    assert isinstance(changes, dict) and isinstance(traits, dict) and isinstance(per_class, dict)
    negative, positive = per_class  # the model's labels, in its order
    lines = [
        f"# Shortcut audit, model version {report['model_version']}",
        "",
        f"Validation pictures per class: {per_class}; labels at `{report['operating_point']}` "
        f"(threshold {report['threshold']}). ΔP = P(after) − P(before).",
        "",
        f"| change | {negative} mean ΔP | {negative} p90 ΔP | {negative} flipped | {positive} mean ΔP "
        f"| {positive} p10 ΔP | {positive} flipped |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, by_class in changes.items():
        n, p = by_class[negative], by_class[positive]
        lines.append(f"| {label} | {n['mean_dp']:+.3f} | {n['p90_dp']:+.3f} | {n['flipped']:.0%} "
                     f"| {p['mean_dp']:+.3f} | {p['p10_dp']:+.3f} | {p['flipped']:.0%} |")
    lines += ["", "Spearman ρ of P with acquisition traits, within each class (0: not used):", "",
              f"| trait | {negative} | {positive} |", "| --- | --- | --- |"]
    lines += [f"| {trait} | {_signed(r[negative])} | {_signed(r[positive])} |" for trait, r in traits.items()]
    (out / "audit.md").write_text("\n".join(lines) + "\n")


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"
