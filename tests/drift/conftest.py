"""Fixtures of the drift tests: the shipped model, its drift reference and the patient-grouped
validation pictures it was built from (carved as `training.evaluate.examples_for` carves them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devtools.drift_degradations import WINDOW
from radiograph.drift import DriftReference, reference_path
from radiograph.savedmodel import LoadedModel
from training.data import Example, load_pixels
from training.evaluate import examples_for


@pytest.fixture(scope="session")
def shipped_model(shipped_model_dir: Path) -> LoadedModel:
    return LoadedModel.from_dir(shipped_model_dir)


@pytest.fixture(scope="session")
def shipped_reference(shipped_model: LoadedModel) -> DriftReference:
    return DriftReference.load(reference_path(shipped_model.path))


@pytest.fixture(scope="session")
def validation(shipped_model: LoadedModel, data_dir: Path) -> list[Example]:
    return examples_for(data_dir, "val", shipped_model)


@pytest.fixture(scope="session")
def validation_pixels(shipped_model: LoadedModel, validation: list[Example]) -> np.ndarray:
    return load_pixels(validation, shipped_model.metadata.input_height)


@pytest.fixture(scope="session")
def window_indices(validation: list[Example]) -> np.ndarray:
    """A seeded window of `WINDOW` validation pictures, in random order (the split lists NORMAL first,
    so any prefix of it is a random sample too)."""
    return np.random.default_rng(0).permutation(len(validation))[:WINDOW]
