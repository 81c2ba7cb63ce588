#!/usr/bin/env python
"""Rebuild a `train` run folder (the weights `save_run` writes, and its training.json) from a single-member
exported SavedModel, so that a shipped model can be a member of an ensemble without being retrained:

    .venv/bin/python scripts/run-from-savedmodel.py --weights W --version 3 --run-dir runs/seed7

The variables are read by object path from the SavedModel's checkpoint (its module tracks `backbone`, `head`
and `subtype_head` up to version 3, `bottom`, `tops`, `heads`, `subtype_heads` since), and the rebuilt run is
checked: exported again, it scores a batch of images as the SavedModel does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from radiograph.contract import resolve_model_dir
from radiograph.savedmodel import LoadedModel
from training.data import SUBTYPES
from training.graph import build_backbone, build_head, build_subtype_head, split_backbone
from training.train import HeadConfig, save_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--model", type=Path, default=Path("models/pneumonia"))
    parser.add_argument("--version", type=int, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args()

    import tensorflow as tf

    path, version = resolve_model_dir(args.model, args.version)
    shipped = LoadedModel(path, version)
    training = dict(shipped.metadata.training)
    members = training.get("members", [training])  # version 3 and earlier recorded one member at top level
    if len(members) != 1:
        raise SystemExit(f"{path} is an ensemble of {len(members)}; this rebuilds single-member models only")
    (member,) = members
    config = HeadConfig(**member["head"])
    size = shipped.metadata.input_height
    backbone = build_backbone(size, args.weights)
    bottom, top = split_backbone(backbone)
    head = build_head(backbone.output_shape[-1], config.dropout, config.l2)
    subtype_head = build_subtype_head(backbone.output_shape[-1], len(SUBTYPES), config.l2)
    if "members" in training:  # the module as `training.export` writes it now
        tracked = {"bottom": bottom, "tops": [top], "heads": [head], "subtype_heads": [subtype_head]}
    else:  # version 3 and earlier: one unpooled backbone and two heads
        tracked = {"backbone": backbone, "head": head, "subtype_head": subtype_head}
    status = tf.train.Checkpoint(**tracked).read(str(path / "variables" / "variables"))
    status.assert_existing_objects_matched().expect_partial()

    summary = {
        "seed": member["seed"],
        "split": training["split"],
        "head": member["head"],
        "fine_tuning": member["fine_tuning"],
        "test_time_transforms": training["test_time_transforms"],
        "operating_points": {name: p.model_dump() for name, p in shipped.metadata.operating_points.items()},
        "rebuilt_from": f"{path}",
    }
    save_run(args.run_dir, top, head, subtype_head, summary)

    # check: the rebuilt run, exported again, scores as the SavedModel
    from training.export import PneumoniaModule
    from training.train import load_run

    run = load_run(args.run_dir, args.weights, size)
    module = PneumoniaModule(run.bottom, run.members, shipped.metadata)
    images = np.asarray(np.random.default_rng(0).integers(0, 256, (4, size, size, 1)), np.uint8)
    images[2:] = np.asarray(np.linspace(0, 255, size * size).reshape(1, size, size, 1), np.uint8)
    rebuilt = module.serve(tf.constant(images))["probability"].numpy()
    expected = shipped.predict(images)
    print(f"rebuilt vs shipped probabilities: max |difference| {np.max(np.abs(rebuilt - expected)):.2e}")
    if not np.allclose(rebuilt, expected, atol=1e-5):
        raise SystemExit(f"rebuilt run scores differently: {rebuilt} vs {expected}")


if __name__ == "__main__":
    main()
