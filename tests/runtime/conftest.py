"""Tiny exported models with the shipped graph's structure: histogram equalisation, the three test-time views and
two members sharing the frozen bottom (a small random CNN for the backbone), at 64×64 so that they build and
convert in seconds."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from radiograph.contract import ModelMetadata, OperatingPoint
from training.export import export
from training.graph import build_backbone, split_backbone
from training.heads import HeadConfig
from training.runs import untrained_member

SIZE = 64


def tiny_export(root: Path, seed: int, members: int = 2) -> Path:
    """Version 1 under `root`: random weights drawn from `seed`, thresholds 0.5 (`screening`) and 0.6."""
    bottom, template = split_backbone(build_backbone(SIZE, "tiny"))
    keras.utils.set_random_seed(seed)
    team = [untrained_member(keras.models.clone_model(template), HeadConfig(l2=1e-3)) for _ in range(members)]
    for member in team:  # the clones get fresh random weights; the bottom stays shared
        member.top.set_weights([w * 3 for w in member.top.get_weights()])
    metadata = ModelMetadata(
        labels=("NORMAL", "PNEUMONIA"), input_height=SIZE, input_width=SIZE,
        operating_points={
            "screening": OperatingPoint(threshold=0.5, rule="fixed for tests"),
            "balanced": OperatingPoint(threshold=0.6, rule="fixed for tests"),
        },
        subtype_labels=("normal", "bacteria", "virus"),
    )
    return export(bottom, team, metadata, root, 1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model root holding version 1 of the tiny two-member model."""
    root = tmp_path_factory.mktemp("tiny-model")
    tiny_export(root, seed=1)
    return root


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same architecture with other weights."""
    root = tmp_path_factory.mktemp("other-tiny-model")
    tiny_export(root, seed=2)
    return root
