"""Ensembles of `train` runs: members trained with different seeds on the same activation cache,
averaged on logits. They share the frozen lower backbone, so each extra member costs one top-block
pass per image. The operating points are chosen on validation scored as the exported ensemble
scores (test-time transforms and members averaged)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from radiograph.contract import SCREENING
from training import metrics
from training.data import labels_of
from training.features import load_split, load_tta_grids, view_keys
from training.graph import INPUT_SIZE, TTA_TRANSFORMS, averaged_features
from training.heads import subtype_report, subtype_targets
from training.runs import ENSEMBLE_MEMBERS, Member, RunMismatch, load_members, read_summary
from training.storage import STORAGE_KEY, WeightStorage, round_to_storage
from training.thresholds import hard_auc, operating_points, sigmoid

log = logging.getLogger(__name__)


class EnsembleValidation(TypedDict):
    """An ensemble's operating points and subtype report, and the validation AUCs of it and of each member."""

    operating_points: dict[str, dict[str, Any]]
    subtype_validation: dict[str, dict[str, object]]
    validation_auc: dict[str, dict[str, float]]


def ensemble_run(
    weights: str, members: list[Path], cache: Path, run_dir: Path, storage: WeightStorage = "float32"
) -> EnsembleValidation:
    """Average `train` runs on logits; choose the operating points on validation scored as the
    exported ensemble scores (test-time transforms and members averaged, the members' weights as
    `storage` keeps them). Writes the run to `run_dir`."""
    split = load_split(cache)
    val_keys = view_keys(cache, "val")
    for path in members:  # the views a member was selected on (rebuilt runs do not record them)
        recorded = read_summary(path).get("selection", {}).get("val_views")
        if recorded is not None and recorded != val_keys:
            raise RunMismatch(f"{path} was selected on {recorded}, the cache holds {val_keys}", "--member")
    grids = {key.removeprefix("val_"): load_tta_grids(cache, key) for key in val_keys}
    _, loaded = load_members(members, weights, INPUT_SIZE)
    for member in loaded:
        round_to_storage(member, storage)
    logits = {
        path.name: {view: member_logits(m, g) for view, g in grids.items()}
        for path, m in zip(members, loaded, strict=True)
    }
    validation = validation_summary(logits, labels_of(split["val"]), subtype_targets(split["val"]))
    write_ensemble(run_dir, members, validation, storage)
    return validation


def member_logits(member: Member, grids: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(binary logits [n], subtype logits [n, classes]) of one member on one cached view's
    activations under every test-time transform."""
    features = averaged_features(member.top, grids, member.pooling)
    return (
        member.head.predict(features, batch_size=1024, verbose=0)[:, 0],
        member.subtype_head.predict(features, batch_size=1024, verbose=0),
    )


def validation_summary(
    logits: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], y: np.ndarray, subtypes: np.ndarray
) -> EnsembleValidation:
    """`logits`: member name → validation view → `member_logits`. The ensemble's operating points
    and subtype report, and each member's and the ensemble's validation AUCs (for the record: the
    members are not chosen on them)."""
    views = list(next(iter(logits.values())))
    mean = {v: np.mean([m[v][0] for m in logits.values()], axis=0) for v in views}
    mean_subtype = {v: np.mean([m[v][1] for m in logits.values()], axis=0) for v in views}

    def aucs(per_view: dict[str, np.ndarray]) -> dict[str, float]:
        figures = {v: metrics.auc(y, sigmoid(per_view[v])) for v in views}
        return {**figures, "hard": hard_auc(figures)}

    points = operating_points({v: (y, sigmoid(mean[v])) for v in views})
    auc = {name: aucs({v: m[v][0] for v in views}) for name, m in logits.items()}
    auc["ensemble"] = aucs(mean)
    for name, figures in auc.items():
        log.info("validation AUC %s: %s", name, figures)
    log.info("ensemble %s: %s", SCREENING, points[SCREENING])
    return {
        "operating_points": {name: point.model_dump() for name, point in points.items()},
        "subtype_validation": {v: subtype_report(mean_subtype[v], subtypes) for v in views},
        "validation_auc": auc,
    }


def write_ensemble(
    run_dir: Path, members: list[Path], validation: EnsembleValidation, storage: WeightStorage = "float32"
) -> None:
    """The ensemble run: a copy of each member's run under `members/` and its training.json."""
    names = [path.name for path in members]
    if len(set(names)) != len(names):
        raise ValueError(f"member run folders need distinct names: {names}")
    summaries = [read_summary(path) for path in members]
    if any(s["split"] != summaries[0]["split"] for s in summaries):
        raise ValueError("members were trained on different validation splits")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    for path in members:
        shutil.copytree(path, run_dir / ENSEMBLE_MEMBERS / path.name)
    summary = {
        ENSEMBLE_MEMBERS: names,
        "split": summaries[0]["split"],
        "test_time_transforms": list(TTA_TRANSFORMS),
        STORAGE_KEY: storage,
        **validation,
    }
    (run_dir / "training.json").write_text(json.dumps(summary, indent=2, default=str))
