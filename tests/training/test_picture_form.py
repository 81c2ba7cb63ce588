"""The shared decode path gives the model pictures in the form `train/` has: 224×224, JPEG quality 75."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from radiograph import imaging


def quantisation_at(quality: int) -> dict[int, list[int]]:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).quantization


def made_as_the_training_set(original: Path) -> bytes:
    """The data set's making, as its README states it: Pillow bicubic to 224×224, RGB, JPEG (default quality)."""
    buffer = io.BytesIO()
    Image.open(original).resize((224, 224), Image.Resampling.BICUBIC).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def test_training_files_are_pillow_jpegs_at_the_stated_quality(data_dir: Path) -> None:
    expected = quantisation_at(imaging.TRAINING_JPEG_QUALITY)
    assert expected != quantisation_at(imaging.TRAINING_JPEG_QUALITY + 5)
    files = sorted((data_dir / "train").glob("*/*.jpeg"))[::50]
    assert len(files) > 100
    for path in files:
        with Image.open(path) as image:
            assert (image.size, image.mode) == ((224, 224), "RGB"), path.name
            assert image.quantization == expected, path.name


def test_an_original_gives_the_pixels_the_training_set_would_hold(fullres_samples: list[tuple[Path, str]]) -> None:
    for path, _ in fullres_samples:
        ours = imaging.load_radiograph(path.read_bytes(), 224).pixels
        training_form = imaging.load_radiograph(made_as_the_training_set(path), 224).pixels
        resized_only = np.asarray(imaging.resized_gray(imaging.decode(path.read_bytes()), 224))
        assert np.array_equal(ours, training_form), path.name
        assert not np.array_equal(ours, resized_only), path.name  # the compression is there


def test_a_picture_at_the_model_size_is_taken_as_it_is(data_dir: Path) -> None:
    for path in sorted((data_dir / "train" / "PNEUMONIA").glob("*.jpeg"))[:3]:
        pixels = imaging.load_radiograph(path.read_bytes(), 224).pixels
        assert np.array_equal(pixels, np.asarray(Image.open(path).convert("L")))
        png = io.BytesIO()
        Image.fromarray(pixels).save(png, "PNG")
        assert np.array_equal(imaging.load_radiograph(png.getvalue(), 224).pixels, pixels)
