#!/usr/bin/env python
"""Rebuild `train` run folders (the weights `save_run` writes, and their training.json) from an exported
SavedModel, one per member, so that a shipped model's members can join an ensemble without being retrained:

    .venv/bin/python scripts/run-from-savedmodel.py --weights W --version 4 --out-dir runs
    # → runs/seed7, runs/seed8 (one folder per member, named by its seed)

The variables are read by object path from the SavedModel's checkpoint (`training.export` knows both module
layouts: one member up to version 3, an ensemble since), and the rebuilt runs are checked: exported again
together, they score a batch of images as the SavedModel does (the script exits 1 otherwise).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from radiograph.contract import resolve_model_dir
from radiograph.savedmodel import LoadedModel
from training.export import PneumoniaModule, legacy_tracked_parts, read_variables, tracked_parts
from training.graph import build_backbone, split_backbone
from training.train import HeadConfig, load_members, save_run, untrained_member


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--model", type=Path, default=Path("models/pneumonia"))
    parser.add_argument("--version", type=int, required=True)
    parser.add_argument("--out-dir", type=Path, required=True, help="gets one run folder per member, seed<N>")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    path, version = resolve_model_dir(args.model, args.version)
    shipped = LoadedModel(path, version)
    training = dict(shipped.metadata.training)
    legacy = "members" not in training  # version 3 and earlier recorded one member at top level
    recorded = [training] if legacy else training["members"]
    size = shipped.metadata.input_height
    backbone = build_backbone(size, args.weights)
    bottom, top = split_backbone(backbone)
    members = [  # up to version 3 the member's top block is the backbone's own (read as part of it)
        untrained_member(top if legacy else keras.models.clone_model(top), HeadConfig(**member["head"]))
        for member in recorded
    ]
    read_variables(path, legacy_tracked_parts(backbone, members[0]) if legacy else tracked_parts(bottom, members))

    run_dirs = []
    for member, rebuilt in zip(recorded, members, strict=True):
        summary = {
            "seed": member["seed"],
            "split": training["split"],
            "head": member["head"],
            "fine_tuning": member["fine_tuning"],
            "test_time_transforms": training["test_time_transforms"],
            "rebuilt_from": f"{path}",
        }
        if len(recorded) == 1:  # a single member's operating points are the model's
            summary["operating_points"] = {k: p.model_dump() for k, p in shipped.metadata.operating_points.items()}
        run_dir = args.out_dir / f"seed{member['seed']}"
        save_run(run_dir, rebuilt.top, rebuilt.head, rebuilt.subtype_head, summary)
        run_dirs.append(run_dir)
        print(run_dir)

    # check: the rebuilt runs, loaded as `export` loads them and exported again, score as the SavedModel
    module = PneumoniaModule(*load_members(run_dirs, args.weights, size), shipped.metadata)
    images = np.asarray(np.random.default_rng(0).integers(0, 256, (4, size, size, 1)), np.uint8)
    images[2:] = np.asarray(np.linspace(0, 255, size * size).reshape(1, size, size, 1), np.uint8)
    rebuilt_scores = module.serve(tf.constant(images))["probability"].numpy()
    expected = shipped.predict(images)
    print(f"rebuilt vs shipped probabilities: max |difference| {np.max(np.abs(rebuilt_scores - expected)):.2e}")
    if not np.allclose(rebuilt_scores, expected, atol=1e-5):
        raise SystemExit(f"rebuilt runs score differently: {rebuilt_scores} vs {expected}")


if __name__ == "__main__":
    main()
