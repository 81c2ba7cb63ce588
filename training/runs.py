"""Run folders: what `train` writes (`top.weights.h5`, `head.weights.h5`, `subtype.weights.h5` and
`training.json`), what `ensemble` writes (a copy of each member's run under `members/`, and its own
training.json), and reading them back as members sharing one frozen lower backbone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from training.data import SUBTYPES
from training.graph import build_backbone, build_head, build_subtype_head, split_backbone
from training.heads import HeadConfig

ENSEMBLE_MEMBERS = "members"
"""Folder of an ensemble run holding a copy of each member's run."""


class RunMismatch(ValueError):
    """A run folder that does not fit what it is used with: `option` names the command-line option
    that gave it."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Member:
    """One trained member: its fine-tuned top block and its two heads."""

    top: keras.Model
    head: keras.Model
    subtype_head: keras.Model
    pooling: str = "whole"
    """`graph.POOLINGS`: the cells of the top block's grid its heads see."""

    @property
    def models(self) -> tuple[keras.Model, keras.Model, keras.Model]:
        """(top, head, subtype_head): the parts that hold its weights."""
        return self.top, self.head, self.subtype_head


@dataclass(frozen=True)
class TrainedRun:
    """A `train` run (one member) or an `ensemble` run (several members sharing the frozen bottom)."""

    summary: dict[str, Any]
    bottom: keras.Model
    members: list[Member]


def read_summary(run_dir: Path) -> dict[str, Any]:
    """A run's training.json."""
    summary: dict[str, Any] = json.loads((run_dir / "training.json").read_text())
    return summary


def member_dirs(run_dir: Path) -> list[Path]:
    """The run folders of the members of a run: its own for a `train` run."""
    names = read_summary(run_dir).get(ENSEMBLE_MEMBERS)
    return [run_dir / ENSEMBLE_MEMBERS / name for name in names] if names else [run_dir]


def pooling_of(summary: dict[str, Any]) -> str:
    """The pooling a member's run was trained with (runs that predate the choice pooled every cell)."""
    return str(summary.get("fine_tuning", {}).get("config", {}).get("pooling", "whole"))


def untrained_member(top: keras.Model, config: HeadConfig, pooling: str = "whole") -> Member:
    """`top` with fresh heads of `config`'s architecture: a member for trained weights to be loaded into."""
    features = top.output_shape[-1]
    return Member(top, build_head(features, config.dropout, config.l2),
                  build_subtype_head(features, len(SUBTYPES), config.l2), pooling)


def load_members(run_dirs: list[Path], weights: str, size: int) -> tuple[keras.Model, list[Member]]:
    """(frozen bottom, members) of what `save_run` wrote: the backbone is built once; each member
    gets a top block of its own (a copy of the backbone's, so members do not share weights)."""
    bottom, template = split_backbone(build_backbone(size, weights))
    members = []
    for run_dir in run_dirs:
        summary = read_summary(run_dir)
        head = HeadConfig(**summary["head"])
        member = untrained_member(keras.models.clone_model(template), head, pooling_of(summary))
        member.top.load_weights(run_dir / "top.weights.h5")
        member.head.load_weights(run_dir / "head.weights.h5")
        member.subtype_head.load_weights(run_dir / "subtype.weights.h5")
        members.append(member)
    return bottom, members


def load_run(run_dir: Path, weights: str, size: int) -> TrainedRun:
    """A run as `export` needs it: the frozen bottom once, and every member."""
    bottom, members = load_members(member_dirs(run_dir), weights, size)
    return TrainedRun(read_summary(run_dir), bottom, members)


def save_run(
    run_dir: Path, top: keras.Model, head: keras.Model, subtype_head: keras.Model, summary: dict[str, object]
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    top.save_weights(run_dir / "top.weights.h5")
    head.save_weights(run_dir / "head.weights.h5")
    subtype_head.save_weights(run_dir / "subtype.weights.h5")
    (run_dir / "training.json").write_text(json.dumps(summary, indent=2, default=str))
