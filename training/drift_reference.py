"""The drift reference of an exported model (`radiograph.drift`): the validation split's
acquisition traits and P(pneumonia), binned at their quantiles, written beside the SavedModel in
`<version>/assets.extra/drift_reference.json` so that it versions with the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radiograph import acquisition
from radiograph.drift import PROBABILITY, DriftReference, quantile_reference, reference_path
from radiograph.savedmodel import LoadedModel


def build_reference(
    pixels: np.ndarray, probabilities: np.ndarray, model_version: int, built_from: str = ""
) -> DriftReference:
    """uint8 [n, H, W] validation pictures (as the gateway decodes them) and the model's P for each."""
    if len(pixels) != len(probabilities):
        raise ValueError(f"{len(pixels)} pictures but {len(probabilities)} probabilities")
    values = acquisition.traits_of(pixels)
    features = {name: quantile_reference(values[:, i]) for i, name in enumerate(acquisition.FEATURES)}
    features[PROBABILITY] = quantile_reference(np.asarray(probabilities, np.float64))
    return DriftReference(features, model_version, len(pixels), built_from)


def write_drift_reference(model: LoadedModel, pixels: np.ndarray, probabilities: np.ndarray) -> Path:
    """Build the reference of `model` from its validation pictures and their scores; write it into the
    model's version folder and return its path."""
    reference = build_reference(
        pixels, probabilities, model.version,
        built_from=f"patient-grouped validation split ({len(pixels)} pictures), split settings "
        f"{model.metadata.training.get('split')}",
    )
    path = reference_path(model.path)
    reference.write(path)
    return path
