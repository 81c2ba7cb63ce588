"""Framing augmentation: proportions change as intended, and framed training views carry no class
information in the anatomy's proportions."""

from __future__ import annotations

import numpy as np
import pytest

from training.framing import (
    ORIGINAL_ASPECT,
    TARGET_STRETCH,
    WIDE_ZOOM,
    ZOOM,
    ZOOM_VIEWS,
    framed_copies,
    reframe,
    swapped_copies,
    zoomed_copies,
)

SIZE = 224


def disc(radius: int = 40) -> np.ndarray:
    """A bright disc on a dark square: its height/width is the picture's proportions."""
    y, x = np.mgrid[:SIZE, :SIZE]
    inside = (x - SIZE / 2 + 0.5) ** 2 + (y - SIZE / 2 + 0.5) ** 2 <= radius**2
    return np.where(inside, 220, 20).astype(np.uint8)


def height_over_width(picture: np.ndarray) -> float:
    rows, cols = np.nonzero(picture > 120)
    return (rows.max() - rows.min() + 1) / (cols.max() - cols.min() + 1)


def test_reframe_without_change_keeps_the_picture() -> None:
    picture = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    np.testing.assert_array_equal(reframe(picture, 1.0), picture)


@pytest.mark.parametrize("vertical", [0.8, 1.25, 1.5])
def test_reframe_stretches_the_content_vertically(vertical: float) -> None:
    assert height_over_width(reframe(disc(), vertical)) == pytest.approx(vertical, rel=0.04)


def test_zoom_enlarges_and_shrinks_the_content() -> None:
    width = lambda picture: np.ptp(np.nonzero(picture > 120)[1]) + 1  # noqa: E731
    assert width(reframe(disc(), 1.0, zoom=1.2)) == pytest.approx(1.2 * width(disc()), rel=0.04)
    assert width(reframe(disc(), 1.0, zoom=0.87)) == pytest.approx(0.87 * width(disc()), rel=0.04)


def test_swapped_view_gives_each_class_the_others_proportions() -> None:
    pictures = np.stack([disc(), disc()])
    swapped = swapped_copies(pictures, np.array([0, 1]))
    normal, pneumonia = ORIGINAL_ASPECT
    assert height_over_width(swapped[0]) == pytest.approx(pneumonia / normal, rel=0.04)  # NORMAL: taller
    assert height_over_width(swapped[1]) == pytest.approx(normal / pneumonia, rel=0.04)  # PNEUMONIA: wider


def test_framed_views_draw_the_anatomys_stretch_alike_for_both_classes() -> None:
    # a squashed original of width/height r shows its anatomy stretched r times vertically; the framed
    # copy multiplies that by its own stretch, so r × (copy's h/w) is what the model sees
    n = 200
    pictures = np.repeat(disc(30)[None], 2 * n, axis=0)
    labels = np.repeat([0, 1], n)
    framed = framed_copies(pictures, labels, seed=3)
    seen = np.array([ORIGINAL_ASPECT[label] * height_over_width(p) for p, label in zip(framed, labels, strict=True)])
    normal, pneumonia = seen[:n], seen[n:]
    assert np.median(normal) == pytest.approx(np.median(pneumonia), rel=0.05)
    for stretch in (normal, pneumonia):
        assert stretch.min() >= TARGET_STRETCH[0] * 0.95 and stretch.max() <= TARGET_STRETCH[1] * 1.05
    # without framing the two classes' stretches would be 1.22 and 1.50: ranks would separate them fully
    separation = np.mean(pneumonia[:, None] > normal[None, :])
    assert 0.4 < separation < 0.6


def test_framed_copies_are_reproducible_from_the_seed() -> None:
    pictures = np.stack([disc(), disc(50)])
    labels = np.array([0, 1])
    np.testing.assert_array_equal(framed_copies(pictures, labels, 5), framed_copies(pictures, labels, 5))
    assert not np.array_equal(framed_copies(pictures, labels, 5), framed_copies(pictures, labels, 6))


def test_zoomed_views_scale_the_anatomy_and_keep_its_proportions() -> None:
    picture = disc(40)
    for name, zoom in ZOOM_VIEWS.items():
        zoomed = zoomed_copies(picture[None], zoom)[0]
        cols = np.nonzero(zoomed > 120)[1]
        assert (cols.max() - cols.min() + 1) == pytest.approx(81 * zoom, abs=3), name
        assert height_over_width(zoomed) == pytest.approx(1.0, abs=0.05), name


def test_the_wide_zoom_range_draws_zooms_outside_version_5s() -> None:
    pictures = np.stack([disc(40)] * 64)
    labels = np.zeros(64, np.int64)  # NORMAL: vertical stretch drawn 1.0–1.8 relative to 1.22
    narrow = framed_copies(pictures, labels, seed=3)
    wide = framed_copies(pictures, labels, seed=3, zoom_range=WIDE_ZOOM)

    def widths(copies: np.ndarray) -> np.ndarray:
        return np.array([np.ptp(np.nonzero(c > 120)[1]) + 1 for c in copies])

    # the stretch never narrows the anatomy, so the narrowest copy shows the smallest zoom drawn
    assert widths(narrow).min() >= 81 * ZOOM[0] - 3
    assert widths(wide).min() < 81 * ZOOM[0] - 3  # some zoomed further out than version 5's recipe reached


def test_error_review_places_the_evidence() -> None:
    from training.error_review import outside_share, peak_region

    ring = np.zeros((7, 7))
    ring[0, 3] = 1.0  # all the evidence on the neck
    lungs = np.zeros((7, 7))
    lungs[3, 1] = lungs[3, 5] = 1.0
    np.testing.assert_allclose(outside_share(np.stack([ring, lungs, np.zeros((7, 7))])), [1.0, 0.0, np.nan])
    assert [peak_region(m) for m in (ring, lungs, np.zeros((7, 7)))] == ["top", "lungs", "none"]
    side, centre = np.zeros((7, 7)), np.zeros((7, 7))
    side[2, 6], centre[4, 3] = 1.0, 1.0
    assert [peak_region(m) for m in (side, centre)] == ["side", "centre"]
