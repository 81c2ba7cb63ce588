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
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from radiograph.contract import SCREENING
from training import metrics
from training.data import labels_of
from training.features import load_split, load_tta_grids
from training.graph import averaged_features
from training.train import hard_auc, load_run, operating_points

VIEWS = ("val_clean", "val_shift0", "val_shift1")
INPUT_SIZE = 224


def run_logits(run_dir: Path, weights: str, grids: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    run = load_run(run_dir, weights, INPUT_SIZE)
    return {k: run.head.predict(averaged_features(run.top, grids[k]), verbose=0)[:, 0] for k in VIEWS}


def report(name: str, y: np.ndarray, logits: dict[str, np.ndarray]) -> None:
    p = {k.removeprefix("val_"): 1.0 / (1.0 + np.exp(-v)) for k, v in logits.items()}
    auc = {k: metrics.auc(y, v) for k, v in p.items()}
    screening = operating_points({k: (y, v) for k, v in p.items()})[SCREENING]
    figures = " ".join(
        f"{k}: {screening.validation[f'{k}_sensitivity']:.3f}/{screening.validation[f'{k}_specificity']:.3f}" for k in p
    )
    print(f"{name:32s} hard {hard_auc(auc):.4f} clean {auc['clean']:.4f} t={screening.threshold:.3f} {figures}")


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
