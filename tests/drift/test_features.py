"""The acquisition traits and the reference format, on pictures whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radiograph import acquisition
from radiograph.drift import DriftReference, DriftReferenceError, FeatureReference, psi, quantile_reference

TRAIT = {name: i for i, name in enumerate(acquisition.FEATURES)}


def test_traits_of_a_flat_picture() -> None:
    values = acquisition.traits(np.full((224, 224), 120, np.uint8))
    assert values[TRAIT["brightness"]] == values[TRAIT["border"]] == 120
    assert values[TRAIT["contrast"]] == values[TRAIT["sharpness"]] == values[TRAIT["dynamic_range"]] == 0
    assert values[TRAIT["dark_fraction"]] == values[TRAIT["bright_fraction"]] == 0


def test_traits_match_direct_numpy_formulas() -> None:
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 256, (224, 224)).astype(np.uint8)
    values = acquisition.traits(picture)
    f = picture.astype(np.float64)
    lap = f[:-2, 1:-1] + f[2:, 1:-1] + f[1:-1, :-2] + f[1:-1, 2:] - 4 * f[1:-1, 1:-1]
    frame = np.ones_like(picture, bool)
    frame[16:-16, 16:-16] = False
    low, high = np.quantile(picture, acquisition.RANGE_QUANTILES, method="inverted_cdf")
    expected = {
        "brightness": f.mean(), "contrast": f.std(), "sharpness": lap.var(), "border": f[frame].mean(),
        "dark_fraction": np.mean(picture <= acquisition.DARK_LEVEL),
        "bright_fraction": np.mean(picture >= acquisition.BRIGHT_LEVEL),
        "dynamic_range": high - low,
    }
    assert {name: values[i] for name, i in TRAIT.items()} == pytest.approx(expected, rel=1e-5)


def test_clipping_and_border_are_seen() -> None:
    picture = np.full((224, 224), 128, np.uint8)
    picture[:16] = 0  # a black band along the top: clipped and in the frame
    values = acquisition.traits(picture)
    assert values[TRAIT["dark_fraction"]] == pytest.approx(16 / 224)
    assert values[TRAIT["border"]] < 128 * 0.8 and values[TRAIT["brightness"]] > 128 * 0.9


def test_traits_refuse_what_the_gateway_never_scores() -> None:
    with pytest.raises(ValueError):
        acquisition.traits(np.zeros((224, 224), np.float32))
    with pytest.raises(ValueError):
        acquisition.traits(np.zeros((224, 224, 1), np.uint8))


def test_psi_of_the_reference_itself_is_zero_and_grows_with_a_shift() -> None:
    values = np.random.default_rng(2).normal(size=5000)
    reference = quantile_reference(values)
    assert len(reference.proportions) == 10 and reference.proportions == pytest.approx(np.full(10, 0.1))
    assert reference.psi(values) == pytest.approx(0, abs=1e-12)
    assert reference.psi(values + 0.25) > 0.05 and reference.psi(values + 1.0) > 0.5


def test_psi_by_hand() -> None:
    expected = 0.3 * np.log(0.8 / 0.5) - 0.3 * np.log(0.2 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.8, 0.2])) == pytest.approx(expected)
    assert np.isfinite(psi(np.array([0.5, 0.5]), np.array([1.0, 0.0])))  # an empty bin counts as the floor


def test_tied_quantiles_merge_into_one_bin() -> None:
    values = np.concatenate([np.zeros(700), np.linspace(0.01, 1, 300)])  # 70% without clipped pixels
    reference = quantile_reference(values)
    assert reference.edges[0] == 0 and reference.proportions[0] == pytest.approx(0.7)
    assert reference.psi(values) == pytest.approx(0, abs=1e-12)
    assert reference.psi(np.zeros(100)) > 0.25  # every picture unclipped: a shift


def test_reference_json_round_trip_and_refusals() -> None:
    features = {"brightness": quantile_reference(np.arange(100.0))}
    reference = DriftReference(features, model_version=4, n=100, built_from="test")
    again = DriftReference.from_json(reference.to_json())
    assert (again.model_version, again.n, again.built_from) == (4, 100, "test")
    assert again.features["brightness"].edges == pytest.approx(features["brightness"].edges)
    body = json.loads(reference.to_json())
    with pytest.raises(DriftReferenceError, match="format"):
        DriftReference.from_json(json.dumps(body | {"format": 99}))
    body["features"]["brightness"]["proportions"] = [1.0]
    with pytest.raises(DriftReferenceError, match="do not match"):
        DriftReference.from_json(json.dumps(body))
    with pytest.raises(DriftReferenceError, match="malformed"):
        DriftReference.from_json('{"format": 1}')


def test_values_on_an_edge_fall_in_the_lower_bin() -> None:
    reference = FeatureReference(np.array([1.0, 2.0]), np.array([0.2, 0.3, 0.5]))
    assert reference.bins_of(np.array([0.5, 1.0, 1.5, 2.0, 9.0])).tolist() == [0, 0, 1, 1, 2]
