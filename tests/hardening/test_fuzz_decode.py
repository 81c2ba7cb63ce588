"""Property-based fuzzing of the shared decode path: whatever the bytes, `load_radiograph` returns a
[224, 224] uint8 image or raises an `ImageError` subclass, nothing else (no crash, no stray exception)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radiograph import imaging

CORPUS = Path(__file__).resolve().parent / "corpus"
SEED_FILES = ("baseline.jpg", "progressive.jpg", "reference.png", "palette.png")
SEEDS = {name: (CORPUS / name).read_bytes() for name in SEED_FILES}
SIZE = 224


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "duplicate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 256))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 512))]
    return bytes(data)


def decode_or_refuse(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in production: a warning is not a failure
        try:
            result = imaging.load_radiograph(data, SIZE)
        except imaging.ImageError:
            return
    assert result.pixels.shape == (SIZE, SIZE) and result.pixels.dtype == np.uint8
    assert result.source_width * result.source_height <= imaging.DEFAULT_MAX_PIXELS


@settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_images_decode_or_raise_image_error(data: bytes) -> None:
    decode_or_refuse(data)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_raise_image_error(data: bytes) -> None:
    decode_or_refuse(data)
