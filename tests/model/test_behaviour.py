"""Behaviour of the shipped model on real radiographs (validation part of train/, never test/).

Small acquisition changes must not flip confident answers; the in-graph equalisation must make the
score invariant to monotonic exposure changes; the subtype and explanation outputs must be sane.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from radiograph.contract import SUBTYPE_OUTPUT
from radiograph.savedmodel import LoadedModel
from training.data import load_pixels
from training.evaluate import examples_for

CONFIDENT_MARGIN = 0.3  # |p - threshold| above which an answer counts as confident
N_PER_CLASS = 12


@pytest.fixture(scope="module")
def model(shipped_model_dir: Path) -> LoadedModel:
    return LoadedModel.from_dir(shipped_model_dir)


@pytest.fixture(scope="module")
def sample(model: LoadedModel, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    val = examples_for(data_dir, "val", model)
    chosen = [e for e in val if e.label == 0][:N_PER_CLASS] + [e for e in val if e.label == 1][:N_PER_CLASS]
    return load_pixels(chosen, model.metadata.input_height), np.array([e.label for e in chosen])


def altered(pixels: np.ndarray, change) -> np.ndarray:
    return np.stack([np.asarray(change(Image.fromarray(p)), dtype=np.uint8) for p in pixels])


def jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    encoded = io.BytesIO()
    image.save(encoded, "JPEG", quality=quality)
    return Image.open(io.BytesIO(encoded.getvalue()))


CHANGES = {
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.15),
    "darker": lambda im: ImageEnhance.Brightness(im).enhance(0.85),
    "more_contrast": lambda im: ImageEnhance.Contrast(im).enhance(1.2),
    "less_contrast": lambda im: ImageEnhance.Contrast(im).enhance(0.8),
    "rotate_+5": lambda im: im.rotate(5, resample=Image.Resampling.BICUBIC),
    "rotate_-5": lambda im: im.rotate(-5, resample=Image.Resampling.BICUBIC),
    "jpeg_q85": lambda im: jpeg_round_trip(im, 85),  # a PACS export at ordinary JPEG quality
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_small_changes_do_not_flip_confident_answers(model: LoadedModel, sample, change: str) -> None:
    pixels, _ = sample
    threshold = model.metadata.operating_point()[1].threshold
    before = model.predict(pixels[..., None])
    after = model.predict(altered(pixels, CHANGES[change])[..., None])
    confident = np.abs(before - threshold) > CONFIDENT_MARGIN
    assert confident.sum() >= len(pixels) // 3, "too few confident answers to test"
    flipped = (before >= threshold) != (after >= threshold)
    assert not np.any(flipped & confident), f"{change}: {before[flipped & confident]} → {after[flipped & confident]}"


def test_gamma_change_barely_moves_the_score(model: LoadedModel, sample) -> None:
    """A monotonic intensity map (gamma) leaves the equalised input nearly unchanged."""
    pixels, _ = sample
    gamma = np.clip(np.rint(255.0 * (pixels / 255.0) ** 0.7), 0, 255).astype(np.uint8)
    delta = np.abs(model.predict(pixels[..., None]) - model.predict(gamma[..., None]))
    assert float(np.median(delta)) < 0.02 and float(delta.max()) < 0.15


def test_separates_the_classes_on_validation(model: LoadedModel, sample) -> None:
    pixels, labels = sample
    p = model.predict(pixels[..., None])
    assert p[labels == 1].mean() - p[labels == 0].mean() > 0.4


def test_subtype_head_agrees_with_the_binary_answer(model: LoadedModel, sample) -> None:
    pixels, labels = sample
    subtypes = model.outputs(pixels[..., None])[SUBTYPE_OUTPUT]
    assert model.metadata.subtype_labels == ("normal", "bacteria", "virus")
    np.testing.assert_allclose(subtypes.sum(axis=1), 1.0, atol=1e-5)
    pneumonia_mass = subtypes[:, 1] + subtypes[:, 2]
    assert pneumonia_mass[labels == 1].mean() - pneumonia_mass[labels == 0].mean() > 0.4
