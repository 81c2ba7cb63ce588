"""A `train` run: the head chosen on frozen features (`heads`), the top block fine-tuned with it
(`fine_tune`), the operating points chosen on validation scored as the exported model scores
(`thresholds`: averaged over the test-time transforms), the subtype head, and the run folder
(`runs`).

The head choice and the fine-tuning epochs are checkpointed under `<run_dir>/checkpoint`
(`selection.json`, `head.weights.h5`, `state.npz`); a stopped run resumes from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radiograph.contract import OperatingPoint
from training.data import labels_of
from training.features import load_grids, load_split, load_tta_grids
from training.fine_tune import FineTuneConfig, FineTuning, fine_tune
from training.graph import (
    INPUT_SIZE,
    TTA_TRANSFORMS,
    averaged_features,
    build_backbone,
    pooled_features,
    split_backbone,
)
from training.heads import HeadConfig, Selection, fit_subtype_head, select_and_fit, subtype_report, subtype_targets
from training.metrics import auc
from training.runs import save_run
from training.thresholds import operating_points, probabilities

L2_GRID = (1e-5, 1e-4, 1e-3)
"""The heads' L2 penalties tried; the best on hard validation is kept."""


@dataclass(frozen=True)
class TrainingSummary:
    """What a `train` run records in its training.json (`as_json`)."""

    seed: int
    head: HeadConfig
    selection: Selection
    fine_tuning: FineTuning
    split: dict[str, Any]
    operating_points: dict[str, OperatingPoint]
    subtype_validation: dict[str, dict[str, object]]
    test_time_averaging: dict[str, dict[str, float]]
    """Validation AUC per view, of the image as sent and averaged over the test-time transforms: whether
    the averaging pays."""
    test_time_transforms: tuple[str, ...] = TTA_TRANSFORMS

    def as_json(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "head": vars(self.head),
            "selection": self.selection,
            "fine_tuning": self.fine_tuning,
            "test_time_transforms": list(self.test_time_transforms),
            "split": self.split,
            "operating_points": {name: point.model_dump() for name, point in self.operating_points.items()},
            "subtype_validation": self.subtype_validation,
            "test_time_averaging": self.test_time_averaging,
        }


def train_run(
    weights: str, cache: Path, run_dir: Path, seed: int, epochs: int, tuning_config: FineTuneConfig
) -> TrainingSummary:
    """Fit the head on frozen features, fine-tune the top block with it; choose the head and the
    epoch on validation (single view), the thresholds on validation scored as the exported model
    scores (averaged over the test-time transforms). Writes the run to `run_dir`."""
    split = load_split(cache)
    grids = load_grids(cache)
    _, top = split_backbone(build_backbone(INPUT_SIZE, weights))
    pooling = tuning_config.pooling
    features = {key: pooled_features(top, grid, pooling=pooling) for key, grid in grids.items()}
    head_grid = [HeadConfig(l2=l2, epochs=epochs) for l2 in L2_GRID]
    checkpoint = run_dir / "checkpoint"
    head, config, selection = select_and_fit(features, split, head_grid, seed, checkpoint)
    train_keys, val_keys = selection["train_views"], selection["val_views"]
    y_val = labels_of(split["val"])
    tuning = fine_tune(
        top,
        head,
        ([grids[k] for k in train_keys], labels_of(split["train"])),
        ({k.removeprefix("val_"): grids[k] for k in val_keys}, y_val),
        tuning_config,
        seed,
        checkpoint,
    )
    if tuning["best_epoch"]:  # the top block changed: the subtype head needs its new training features
        features = {key: pooled_features(top, grids[key], pooling=pooling) for key in train_keys}
    val_features = {
        key.removeprefix("val_"): averaged_features(top, load_tta_grids(cache, key), pooling) for key in val_keys
    }
    scores = {name: probabilities(head, x) for name, x in val_features.items()}
    points = operating_points({name: (y_val, p) for name, p in scores.items()})
    kept = tuning["history"][tuning["best_epoch"]]  # fine-tuning scored each view as sent, with these weights
    averaging = {name: {"single_view": kept[name], "averaged": auc(y_val, p)} for name, p in scores.items()}
    subtypes_train = subtype_targets(split["train"])
    subtype_head = fit_subtype_head(
        np.concatenate([features[k] for k in train_keys]),
        np.concatenate([subtypes_train for _ in train_keys]),
        config.l2,
        epochs,
        seed,
    )
    subtypes_val = subtype_targets(split["val"])
    summary = TrainingSummary(
        seed=seed,
        head=config,
        selection=selection,
        fine_tuning=tuning,
        split=json.loads((cache / "split_settings.json").read_text()),
        operating_points=points,
        subtype_validation={
            name: subtype_report(subtype_head.predict(x, verbose=0), subtypes_val) for name, x in val_features.items()
        },
        test_time_averaging=averaging,
    )
    save_run(run_dir, top, head, subtype_head, summary.as_json())
    return summary
