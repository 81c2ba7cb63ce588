"""Binary classification figures, operating-point rules and bootstrap intervals."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def at_threshold(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = p >= threshold
    tp = int(np.sum(predicted & (y == 1)))
    tn = int(np.sum(~predicted & (y == 0)))
    fp = int(np.sum(predicted & (y == 0)))
    fn = int(np.sum(~predicted & (y == 1)))
    sensitivity = tp / max(tp + fn, 1)
    specificity = tn / max(tn + fp, 1)
    precision = tp / max(tp + fp, 1)
    f1 = 2 * precision * sensitivity / max(precision + sensitivity, 1e-12)
    return {
        "threshold": float(threshold),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "accuracy": (tp + tn) / max(len(y), 1),
        "precision": precision,
        "f1": f1,
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
    }


def auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def threshold_for_sensitivity(y: np.ndarray, p: np.ndarray, target: float) -> float:
    """The highest threshold whose sensitivity is still >= target."""
    positives = np.sort(p[y == 1])
    allowed_misses = int(np.floor((1.0 - target) * len(positives) + 1e-9))
    return float(positives[allowed_misses]) if len(positives) else 0.5


def youden_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Threshold maximising sensitivity + specificity - 1."""
    fpr, tpr, thresholds = roc_curve(y, p)
    return float(min(thresholds[int(np.argmax(tpr - fpr))], 1.0))


def bootstrap_intervals(
    y: np.ndarray, p: np.ndarray, threshold: float, rounds: int = 1000, seed: int = 0
) -> dict[str, list[float]]:
    """95% percentile intervals of AUC and the threshold figures, resampling images."""
    rng = np.random.default_rng(seed)
    keys = ("auc", "sensitivity", "specificity", "accuracy", "precision", "f1")
    samples: dict[str, list[float]] = {key: [] for key in keys}
    for _ in range(rounds):
        index = rng.integers(0, len(y), len(y))
        ys, ps = y[index], p[index]
        if len(np.unique(ys)) < 2:
            continue
        figures = at_threshold(ys, ps, threshold) | {"auc": auc(ys, ps)}
        for key in keys:
            samples[key].append(figures[key])
    return {
        key: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for key, v in samples.items()
    }
