"""Rebuilding `train` run folders (the weights `save_run` writes, and their training.json) from an
exported SavedModel, one per member named `seed<N>` after its seed (`member<i>-seed<N>` where seeds
repeat), so that a shipped model's members can join an ensemble without being retrained
(`python -m training rebuild-run`).

The variables are read by object path from the SavedModel's checkpoint (`training.export` knows both
module layouts: one member up to version 3, an ensemble since), and the rebuilt runs are checked:
exported again together, they must score a batch of images as the SavedModel does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from radiograph.contract import PROBABILITY_OUTPUT
from radiograph.savedmodel import LoadedModel
from training.export import PneumoniaModule, legacy_tracked_parts, read_variables, tracked_parts
from training.graph import build_backbone, split_backbone
from training.heads import HeadConfig
from training.runs import Member, load_members, pooling_of, save_run, untrained_member
from training.storage import member_stored_as, storage_of

SCORE_TOLERANCE = 1e-5
"""Largest difference of probability allowed between the rebuilt runs, exported again, and the SavedModel."""


def rebuild_runs(shipped: LoadedModel, weights: str, out_dir: Path) -> list[Path]:
    """One run folder per member of `shipped` under `out_dir`, named by `run_names`."""
    training = dict(shipped.metadata.training)
    legacy = "members" not in training  # version 3 and earlier recorded one member at top level
    recorded = [training] if legacy else training["members"]
    assert isinstance(recorded, list)
    backbone = build_backbone(shipped.metadata.input_height, weights)
    bottom, top = split_backbone(backbone)
    members = [  # up to version 3 the member's top block is the backbone's own (read as part of it)
        untrained_member(top if legacy else keras.models.clone_model(top), HeadConfig(**member["head"]),
                         pooling_of(member))
        for member in recorded
    ]
    if legacy:
        read_variables(shipped.path, legacy_tracked_parts(backbone, members[0]))
    else:
        read_stored_variables(shipped, bottom, members)
    run_dirs = []
    names = run_names([int(member["seed"]) for member in recorded])
    for name, member, rebuilt in zip(names, recorded, members, strict=True):
        summary = {
            "seed": member["seed"],
            "split": training["split"],
            "head": member["head"],
            "fine_tuning": member["fine_tuning"],
            "test_time_transforms": training["test_time_transforms"],
            "rebuilt_from": f"{shipped.path}",
        }
        if len(recorded) == 1:  # a single member's operating points are the model's
            summary["operating_points"] = {k: p.model_dump() for k, p in shipped.metadata.operating_points.items()}
        run_dir = out_dir / name
        save_run(run_dir, rebuilt.top, rebuilt.head, rebuilt.subtype_head, summary)
        run_dirs.append(run_dir)
    return run_dirs


def run_names(seeds: list[int]) -> list[str]:
    """`seed<N>` per member, or `member<i>-seed<N>` for all when two members share a seed."""
    if len(set(seeds)) == len(seeds):
        return [f"seed{seed}" for seed in seeds]
    return [f"member{i}-seed{seed}" for i, seed in enumerate(seeds, 1)]


def read_stored_variables(shipped: LoadedModel, bottom: keras.Model, members: list[Member]) -> None:
    """The SavedModel's variables into `bottom` and `members` (float32), the members' through copies
    of their storage when that is not float32."""
    storage = storage_of(shipped.metadata.training)
    stored_members = [member_stored_as(m, storage) for m in members]
    read_variables(shipped.path, tracked_parts(bottom, stored_members))
    if storage == "float32":
        return
    for stored, member in zip(stored_members, members, strict=True):
        for source, target in zip(stored.models, member.models, strict=True):
            target.set_weights(source.get_weights())


@dataclass(frozen=True)
class Rescored:
    """Probabilities of the same images from the rebuilt runs, exported again, and from the SavedModel."""

    rebuilt: np.ndarray
    shipped: np.ndarray

    @property
    def max_difference(self) -> float:
        return float(np.max(np.abs(self.rebuilt - self.shipped)))

    @property
    def agrees(self) -> bool:
        return bool(np.allclose(self.rebuilt, self.shipped, atol=SCORE_TOLERANCE))


def rescore(run_dirs: list[Path], weights: str, shipped: LoadedModel) -> Rescored:
    """The rebuilt runs, loaded as `export` loads them and exported again (in memory), and the
    SavedModel, on random and gradient images."""
    size = shipped.metadata.input_height
    module = PneumoniaModule(*load_members(run_dirs, weights, size), shipped.metadata)
    images = np.asarray(np.random.default_rng(0).integers(0, 256, (4, size, size, 1)), np.uint8)
    images[2:] = np.asarray(np.linspace(0, 255, size * size).reshape(1, size, size, 1), np.uint8)
    rebuilt = module.serve(tf.constant(images))[PROBABILITY_OUTPUT].numpy()
    return Rescored(rebuilt, shipped.predict(images))
