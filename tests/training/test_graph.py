"""The fine-tuned top block must be the exported backbone's: `split_backbone` shares its layers."""

from __future__ import annotations

import numpy as np

from training.graph import build_backbone, split_backbone


def test_top_block_shares_layers_with_backbone() -> None:
    backbone = build_backbone(224, "tiny")
    bottom, top = split_backbone(backbone)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    np.testing.assert_allclose(top(bottom(images)), backbone(images), atol=1e-6)

    before = backbone(images).numpy()
    top.set_weights([w + 0.05 for w in top.get_weights()])  # what fine-tuning does, in spirit
    after = backbone(images).numpy()
    assert not np.allclose(before, after), "weights trained in the top block did not reach the backbone"
    np.testing.assert_allclose(top(bottom(images)), after, atol=1e-6)


def test_only_the_top_block_trains() -> None:
    bottom, top = split_backbone(build_backbone(224, "tiny"))
    assert top.trainable_weights and not bottom.trainable_weights


def test_inner_pooling_averages_the_inner_cells_only() -> None:
    from training.graph import pooled_features, pooled_mask

    _, top = split_backbone(build_backbone(224, "tiny"))
    grids = np.random.default_rng(0).random((3, *top.input_shape[1:])).astype(np.float32)
    out = np.asarray(top(grids))
    np.testing.assert_allclose(pooled_features(top, grids, pooling="inner"), out[:, 1:-1, 1:-1].mean(axis=(1, 2)),
                               rtol=1e-5)
    np.testing.assert_allclose(pooled_features(top, grids), out.mean(axis=(1, 2)), rtol=1e-5)
    mask = pooled_mask(7, 7, "inner")
    assert mask.sum() == 25 and mask[0].sum() == mask[:, -1].sum() == 0
