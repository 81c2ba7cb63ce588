"""Head training on cached backbone features: the binary head (one per configuration of the grid,
the best kept by the hard validation set) and the normal / bacterial / viral subtype head.

Selection never looks at the test split: it uses the patient-grouped validation part of `train/`,
clean and under strong acquisition shift (`shift*` views).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import keras
import numpy as np

from training import metrics
from training.data import SUBTYPES, Example, labels_of
from training.graph import build_head, build_subtype_head
from training.thresholds import hard_auc, probabilities

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    l2: float
    dropout: float = 0.3
    epochs: int = 30
    label_smoothing: float = 0.05
    learning_rate: float = 1e-3


class Trial(TypedDict):
    """One configuration of the grid and its validation AUCs."""

    config: dict[str, Any]
    val_auc: dict[str, float]
    hard_val_auc: float


class Selection(TypedDict):
    """How the head was chosen: the cached views it was fitted and ranked on, and every trial."""

    train_views: list[str]
    val_views: list[str]
    trials: list[Trial]


def balanced_class_weights(targets: np.ndarray, n_classes: int) -> dict[int, float]:
    """Class index → weight, so that every class carries the same total weight in the loss."""
    counts = np.bincount(targets, minlength=n_classes)
    return {k: len(targets) / (n_classes * max(int(c), 1)) for k, c in enumerate(counts)}


def fit_head(x: np.ndarray, y: np.ndarray, config: HeadConfig, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    head = build_head(x.shape[1], config.dropout, config.l2)
    head.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
    )
    # balanced classes: a missed NORMAL costs as much as a missed PNEUMONIA in training; the
    # screening threshold then moves the operating point towards sensitivity
    weights = balanced_class_weights(y, 2)
    head.fit(x, y.astype(np.float32), epochs=config.epochs, batch_size=64, class_weight=weights, verbose=0)
    return head


def select_and_fit(
    features: dict[str, np.ndarray],
    split: dict[str, list[Example]],
    grid: list[HeadConfig],
    seed: int,
    checkpoint: Path | None = None,
) -> tuple[keras.Model, HeadConfig, Selection]:
    """Fit one head per config on all train views, keep the best mean AUC over the hard validation
    views. With `checkpoint`, the choice is kept there and reused by a resumed run."""
    if checkpoint and (checkpoint / "selection.json").exists():
        chosen = json.loads((checkpoint / "selection.json").read_text())
        config = HeadConfig(**chosen["config"])
        head = build_head(next(iter(features.values())).shape[1], config.dropout, config.l2)
        head.load_weights(checkpoint / "head.weights.h5")
        log.info("head: resumed %s", config)
        resumed: Selection = chosen["selection"]
        return head, config, resumed
    y_train = labels_of(split["train"])
    y_val = labels_of(split["val"])
    train_views = sorted(k for k in features if k.startswith("train_"))
    val_views = sorted(k for k in features if k.startswith("val_"))
    x = np.concatenate([features[k] for k in train_views])
    y = np.concatenate([y_train for _ in train_views])
    trials: list[Trial] = []
    best: tuple[float, keras.Model, HeadConfig] | None = None
    for config in grid:
        head = fit_head(x, y, config, seed)
        aucs = {k: metrics.auc(y_val, probabilities(head, features[k])) for k in val_views}
        hard = hard_auc(aucs)
        trials.append({"config": vars(config), "val_auc": aucs, "hard_val_auc": hard})
        log.info("head %s: hard-val AUC %.4f %s", config, hard, aucs)
        if best is None or hard > best[0]:
            best = (hard, head, config)
    assert best is not None
    selection: Selection = {"train_views": train_views, "val_views": val_views, "trials": trials}
    if checkpoint:
        checkpoint.mkdir(parents=True, exist_ok=True)
        best[1].save_weights(checkpoint / "head.weights.h5")
        (checkpoint / "selection.json").write_text(json.dumps({"config": vars(best[2]), "selection": selection}))
    return best[1], best[2], selection


def subtype_targets(examples: list[Example]) -> np.ndarray:
    """Index into SUBTYPES, -1 where the file name does not say."""
    return np.array([SUBTYPES.index(e.subtype) if e.subtype in SUBTYPES else -1 for e in examples])


def fit_subtype_head(x: np.ndarray, targets: np.ndarray, l2: float, epochs: int, seed: int) -> keras.Model:
    """Normal / bacterial / viral softmax head on the same features (balanced class weights)."""
    keras.utils.set_random_seed(seed)
    known = targets >= 0
    x, targets = x[known], targets[known]
    head = build_subtype_head(x.shape[1], len(SUBTYPES), l2)
    head.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    weights = balanced_class_weights(targets, len(SUBTYPES))
    head.fit(x, targets, epochs=epochs, batch_size=64, class_weight=weights, verbose=0)
    return head


def subtype_report(logits: np.ndarray, targets: np.ndarray) -> dict[str, object]:
    """Accuracy and the confusion matrix of subtype logits [n, classes] against `subtype_targets`."""
    known = targets >= 0
    confusion = np.zeros((len(SUBTYPES), len(SUBTYPES)), int)
    np.add.at(confusion, (targets[known], np.argmax(logits[known], axis=1)), 1)
    return {"labels": list(SUBTYPES), "confusion": confusion.tolist(),
            "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1))}
