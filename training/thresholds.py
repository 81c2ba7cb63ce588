"""The operating points, chosen on the patient-grouped validation part of `train/` (never the test
split), clean and under strong acquisition shift, and the hard-validation AUC that model selection
and fine-tuning rank by."""

from __future__ import annotations

import math

import keras
import numpy as np

from radiograph.contract import SCREENING, OperatingPoint
from training import metrics

SCREENING_SENSITIVITY = 0.98
THRESHOLD_MARGIN = 1e-5
"""Stored thresholds sit at least this far below the validation score they were chosen at."""
BALANCED = "balanced"


def hard_auc(aucs: dict[str, float]) -> float:
    """Mean AUC over the hard validation views: every view but the clean one (shift-augmented and
    shortcut-balanced); all views when there are no others."""
    return float(np.mean([v for k, v in aucs.items() if not k.endswith("clean")] or list(aucs.values())))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def probabilities(head: keras.Model, x: np.ndarray) -> np.ndarray:
    return sigmoid(head.predict(x, batch_size=1024, verbose=0)[:, 0])


def operating_points(views: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, OperatingPoint]:
    """`screening`: the threshold keeps sensitivity >= 0.98 on *every* validation view (clean, each
    shifted copy, each shortcut-balanced copy), so the margin for acquisition shift is built in.
    `balanced`: Youden's J on all views pooled."""
    screening = min(
        metrics.threshold_for_sensitivity(y, p, SCREENING_SENSITIVITY) for y, p in views.values()
    )
    y_all = np.concatenate([y for y, _ in views.values()])
    p_all = np.concatenate([p for _, p in views.values()])
    balanced = metrics.youden_threshold(y_all, p_all)

    def point(chosen: float, rule: str) -> OperatingPoint:
        # the chosen threshold equals a validation score; stored rounded *down* with a margin for the
        # float differences between cached-feature scores and the exported graph's, so no image at the
        # boundary changes side
        threshold = math.floor((chosen - THRESHOLD_MARGIN) * 1e5) / 1e5
        figures = {
            f"{name}_{key}": value
            for name, (y, p) in views.items()
            for key, value in metrics.at_threshold(y, p, threshold).items()
            if key in ("sensitivity", "specificity", "accuracy")
        }
        return OperatingPoint(threshold=threshold, rule=rule, validation=figures)

    return {
        SCREENING: point(
            screening,
            f"highest threshold with sensitivity >= {SCREENING_SENSITIVITY} on every patient-grouped "
            f"validation view ({', '.join(views)})",
        ),
        BALANCED: point(balanced, "Youden's J on all validation views pooled"),
    }
