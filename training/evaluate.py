"""Scoring an exported SavedModel on a folder split, through the gateway's decode path."""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from radiograph.contract import PROBABILITY_OUTPUT, SUBTYPE_OUTPUT
from radiograph.runtime import ScoringModel
from training import augment, framing, metrics, plots
from training.data import PNEUMONIA_SUBTYPES, Example, grouped_split, index_split, labels_of, load_pixels

log = logging.getLogger(__name__)

VALIDATION = "val"


def examples_for(data_dir: Path, split: str, model: ScoringModel) -> list[Example]:
    """`val` is the patient-grouped validation part of `train/`, rebuilt from the split settings the
    model was trained with; any other name is a folder under `data_dir`, every file kept."""
    if split != VALIDATION:
        return index_split(data_dir, split, deduplicate=False)
    settings = model.metadata.training["split"]
    assert isinstance(settings, dict)
    _, val = grouped_split(
        index_split(data_dir, "train"), float(settings["val_fraction"]), int(settings["seed"])
    )
    return val


def score(model: ScoringModel, pixels: np.ndarray, batch: int = 8) -> dict[str, np.ndarray]:
    """All model outputs for uint8 [n, H, W], in calls of `batch` images (`model.parallel_calls` at once)."""
    chunks = [pixels[i : i + batch, ..., None] for i in range(0, len(pixels), batch)]
    with ThreadPoolExecutor(model.parallel_calls) as pool:
        parts = list(pool.map(model.outputs, chunks))
    if not parts:
        return {PROBABILITY_OUTPUT: np.zeros(0, np.float32)}
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def evaluate(
    model: ScoringModel,
    examples: Sequence[Example],
    out: Path,
    operating_point: str | None = None,
    shift_strength: float = 0.0,
    seed: int = 0,
    split_name: str = "",
    swap_proportions: bool = False,
    scored_by: str = "tensorflow float32",
) -> dict[str, object]:
    started = time.monotonic()
    size = model.metadata.input_height
    pixels = load_pixels(examples, size)
    y = labels_of(examples)
    if swap_proportions:
        pixels = framing.swapped_copies(pixels, y)
    if shift_strength > 0:
        pixels = augment.shifted_copies(pixels, seed=seed, strength=shift_strength)
    outputs = score(model, pixels)
    p = outputs[PROBABILITY_OUTPUT]
    report = build_report(model, examples, y, p, operating_point)
    if SUBTYPE_OUTPUT in outputs and model.metadata.subtype_labels:
        report["subtypes"] = subtype_figures(model.metadata.subtype_labels, examples, outputs[SUBTYPE_OUTPUT])
    report["shift_strength"] = shift_strength
    report["swap_proportions"] = swap_proportions
    report["split"] = split_name
    report["scored_by"] = scored_by
    report["seconds"] = round(time.monotonic() - started, 1)
    write_report(model, examples, y, p, report, out)
    return report


def subtype_figures(
    labels: tuple[str, ...], examples: Sequence[Example], probabilities: np.ndarray
) -> dict[str, object]:
    """Normal / bacterial / viral: per-class recall and precision and the confusion matrix (argmax)."""
    known = [i for i, e in enumerate(examples) if e.subtype in labels]
    truth = np.array([labels.index(examples[i].subtype) for i in known], dtype=int)
    predicted = np.argmax(probabilities[known], axis=1)
    confusion = np.zeros((len(labels), len(labels)), int)
    np.add.at(confusion, (truth, predicted), 1)
    per_class = {
        name: {
            "recall": float(confusion[k, k] / max(confusion[k].sum(), 1)),
            "precision": float(confusion[k, k] / max(confusion[:, k].sum(), 1)),
            "n": int(confusion[k].sum()),
        }
        for k, name in enumerate(labels)
    }
    accuracy = float(np.trace(confusion) / max(confusion.sum(), 1))
    return {"labels": list(labels), "accuracy": accuracy, "per_class": per_class, "confusion": confusion.tolist()}


def build_report(
    model: ScoringModel,
    examples: Sequence[Example],
    y: np.ndarray,
    p: np.ndarray,
    operating_point: str | None,
) -> dict[str, object]:
    chosen, point = model.metadata.operating_point(operating_point)
    points: dict[str, object] = {}
    for name, stored in model.metadata.operating_points.items():
        figures: dict[str, object] = dict(metrics.at_threshold(y, p, stored.threshold))
        figures["ci95"] = metrics.bootstrap_intervals(y, p, stored.threshold)
        subtypes = np.array([e.subtype for e in examples])
        figures["sensitivity_by_subtype"] = {
            subtype: float(np.mean(p[(y == 1) & (subtypes == subtype)] >= stored.threshold))
            for subtype in PNEUMONIA_SUBTYPES
            if np.any((y == 1) & (subtypes == subtype))
        }
        points[name] = figures
    main = points[chosen]
    assert isinstance(main, dict)
    return {
        "model_version": model.version,
        "n": len(y),
        "n_positive": int(np.sum(y == 1)),
        "n_negative": int(np.sum(y == 0)),
        "auc": metrics.auc(y, p),
        "operating_point": chosen,
        "threshold": point.threshold,
        **{key: main[key] for key in ("sensitivity", "specificity", "accuracy", "precision", "f1")},
        "ci95": main["ci95"],
        "operating_points": points,
    }


def write_report(
    model: ScoringModel,
    examples: Sequence[Example],
    y: np.ndarray,
    p: np.ndarray,
    report: dict[str, object],
    out: Path,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    with (out / "predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "probability"])
        for example, label, probability in zip(examples, y, p, strict=True):
            writer.writerow([f"{example.path.parent.name}/{example.path.name}", int(label), f"{probability:.6f}"])
    labels = model.metadata.labels
    thresholds = {name: op.threshold for name, op in model.metadata.operating_points.items()}
    points = report["operating_points"]
    assert isinstance(points, dict)
    for name, figures in points.items():
        title = f"v{model.version} {name} (t={thresholds[name]:.3f}), n={len(y)}"
        plots.confusion_matrix(figures, labels, title, out / f"confusion_{name}.png")
    plots.curves(y, p, thresholds, out, f"v{model.version}, n={len(y)}")
    plots.subtype_sensitivity(points, out, f"v{model.version}")
    if isinstance(subtypes := report.get("subtypes"), dict):
        plots.subtype_confusion(subtypes, out, f"v{model.version}, n={len(y)}")
