#!/usr/bin/env python
"""Experiment (not part of the shipped pipeline): validation figures of training runs alone and averaged on
logits, scored as the exported model scores (test-time averaging on the cached validation activations).

    .venv/bin/python scripts/ensemble-validation.py --weights W --cache cache runs/latest runs/seed8

Prints, per run and per combination: hard-validation AUC (mean of the shifted views), clean AUC, the
`screening` threshold by the shipped rule, and sensitivity / specificity on each validation view.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training import metrics
from training.data import labels_of
from training.features import load_split, load_tta_grids
from training.graph import averaged_features, build_backbone, build_head, split_backbone
from training.train import SCREENING_SENSITIVITY, HeadConfig

VIEWS = ("val_clean", "val_shift0", "val_shift1")


def run_logits(run: Path, weights: str, grids: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    config = HeadConfig(**json.loads((run / "training.json").read_text())["head"])
    _, top = split_backbone(build_backbone(224, weights))
    top.load_weights(run / "top.weights.h5")
    head = build_head(top.output_shape[-1], config.dropout, config.l2)
    head.load_weights(run / "head.weights.h5")
    return {k: head.predict(averaged_features(top, grids[k]), verbose=0)[:, 0] for k in VIEWS}


def report(name: str, y: np.ndarray, logits: dict[str, np.ndarray]) -> None:
    p = {k: 1.0 / (1.0 + np.exp(-v)) for k, v in logits.items()}
    auc = {k: metrics.auc(y, p[k]) for k in VIEWS}
    threshold = min(metrics.threshold_for_sensitivity(y, p[k], SCREENING_SENSITIVITY) for k in VIEWS)
    at = {k: metrics.at_threshold(y, p[k], threshold) for k in VIEWS}
    hard = np.mean([auc["val_shift0"], auc["val_shift1"]])
    figures = " ".join(f"{k[4:]}: {at[k]['sensitivity']:.3f}/{at[k]['specificity']:.3f}" for k in VIEWS)
    print(f"{name:32s} hard {hard:.4f} clean {auc['val_clean']:.4f} t={threshold:.3f} {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    y = labels_of(load_split(args.cache)["val"])
    grids = {k: load_tta_grids(args.cache, k) for k in VIEWS}
    logits = {run.name: run_logits(run, args.weights, grids) for run in args.runs}
    for n in range(1, len(logits) + 1):
        for combo in itertools.combinations(logits, n):
            report("+".join(combo), y, {k: np.mean([logits[r][k] for r in combo], axis=0) for k in VIEWS})


if __name__ == "__main__":
    main()
