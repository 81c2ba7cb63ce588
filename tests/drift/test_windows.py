"""Windows of real validation pictures against the shipped model's drift reference: clean ones stay
below a notable shift (0.1) on every feature, degraded ones rise above a significant one (0.25) on the
features the change touches. `benchmarks/drift_scores.py` prints the full table."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from devtools.drift_degradations import DEGRADATIONS, TOUCHED, WINDOW
from radiograph import acquisition
from radiograph.contract import PROBABILITY_OUTPUT
from radiograph.drift import NOTABLE, PROBABILITY, SIGNIFICANT, DriftReference, reference_path
from radiograph.savedmodel import LoadedModel
from training.data import Example, grouped_split, index_split, load_pixels
from training.drift_reference import build_reference, write_drift_reference
from training.evaluate import score

SCORED = 200
"""Pictures of the clean window scored by the model for the probability check (about 0.2 s each on CPU)."""


def input_psi(reference: DriftReference, pixels: np.ndarray) -> dict[str, float]:
    traits = acquisition.traits_of(pixels)
    return {name: reference.features[name].psi(traits[:, i]) for i, name in enumerate(acquisition.FEATURES)}


def test_the_shipped_reference_is_built_from_the_validation_split(
    shipped_model: LoadedModel, shipped_reference: DriftReference, validation: list[Example],
    validation_pixels: np.ndarray,
) -> None:
    """Same pictures, same code: the builder reproduces the committed input bins exactly."""
    assert (shipped_reference.model_version, shipped_reference.n) == (shipped_model.version, len(validation))
    assert set(shipped_reference.features) == {*acquisition.FEATURES, PROBABILITY}
    rebuilt = build_reference(validation_pixels, np.zeros(len(validation_pixels)), shipped_model.version)
    for name in acquisition.FEATURES:
        assert rebuilt.features[name].edges == pytest.approx(shipped_reference.features[name].edges, rel=1e-9)
        assert rebuilt.features[name].proportions == pytest.approx(shipped_reference.features[name].proportions)


def test_a_clean_window_stays_below_a_notable_shift(
    shipped_reference: DriftReference, validation_pixels: np.ndarray, window_indices: np.ndarray
) -> None:
    psi = input_psi(shipped_reference, validation_pixels[window_indices])
    assert max(psi.values()) < NOTABLE, psi


def test_pictures_the_reference_never_saw_stay_below_a_notable_shift(
    shipped_model: LoadedModel, shipped_reference: DriftReference, data_dir: Path
) -> None:
    """Sampling noise alone, on other patients of the same source: a window from the training part of
    the split (acquisition traits do not depend on the model, so its pictures are as unseen as any)."""
    settings = shipped_model.metadata.training["split"]
    assert isinstance(settings, dict)
    training_part, _ = grouped_split(
        index_split(data_dir, "train"), float(settings["val_fraction"]), int(settings["seed"])
    )
    chosen = np.random.default_rng(0).choice(len(training_part), size=WINDOW, replace=False)
    pixels = load_pixels([training_part[i] for i in chosen], shipped_model.metadata.input_height)
    psi = input_psi(shipped_reference, pixels)
    assert max(psi.values()) < NOTABLE, psi


def test_the_scores_of_a_clean_window_stay_below_a_notable_shift(
    shipped_model: LoadedModel, shipped_reference: DriftReference, validation_pixels: np.ndarray,
    window_indices: np.ndarray,
) -> None:
    probabilities = score(shipped_model, validation_pixels[window_indices[:SCORED]])[PROBABILITY_OUTPUT]
    assert shipped_reference.features[PROBABILITY].psi(probabilities) < NOTABLE


@pytest.mark.parametrize("change", sorted(DEGRADATIONS))
def test_a_degraded_window_rises_above_a_significant_shift(
    change: str, shipped_reference: DriftReference, validation_pixels: np.ndarray, window_indices: np.ndarray
) -> None:
    psi = input_psi(shipped_reference, DEGRADATIONS[change](validation_pixels[window_indices]))
    touched = {name: psi[name] for name in TOUCHED[change]}
    assert min(touched.values()) > SIGNIFICANT, psi


def test_the_builder_writes_the_asset_beside_the_saved_model(tmp_path: Path, validation_pixels: np.ndarray) -> None:
    model = SimpleNamespace(path=tmp_path / "7", version=7, metadata=SimpleNamespace(training={"split": {"seed": 7}}))
    probabilities = np.linspace(0, 1, 100)
    path = write_drift_reference(model, validation_pixels[:100], probabilities)  # type: ignore[arg-type]
    assert path == reference_path(tmp_path / "7") == tmp_path / "7/assets.extra/drift_reference.json"
    written = DriftReference.load(path)
    assert (written.model_version, written.n) == (7, 100)
    assert written.features[PROBABILITY].psi(probabilities) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="probabilities"):
        build_reference(validation_pixels[:3], probabilities, 7)
