"""The numeric graph shared by activation caching, training and export.

uint8 [b, H, W, 1] → per-image histogram equalisation → [-1, 1] → 3 channels → Xception (blocks
1–13 frozen, block 14 fine-tuned) → pooled features. Histogram equalisation makes the input
invariant to any monotonic change of exposure, contrast or gamma, the largest acquisition
differences between sites.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


def equalize(images: tf.Tensor) -> tf.Tensor:
    """Per-image histogram equalisation of uint8 [b, h, w, 1] → float32 [b, h, w, 1] in [0, 1]."""
    pixels = tf.cast(images[..., 0], tf.int32)
    batch = tf.shape(pixels)[0]
    flat = tf.reshape(pixels, [batch, -1])
    offsets = tf.range(batch)[:, None] * 256
    hist = tf.math.bincount(
        tf.reshape(flat + offsets, [-1]), minlength=batch * 256, maxlength=batch * 256
    )
    cdf = tf.cast(tf.cumsum(tf.reshape(hist, [batch, 256]), axis=1), tf.float32)
    n_pixels = tf.cast(tf.shape(flat)[1], tf.float32)
    # the cdf of the darkest used level maps to 0, the brightest to 1
    cdf_min = tf.reduce_min(tf.where(cdf > 0, cdf, n_pixels), axis=1, keepdims=True)
    lut = tf.math.divide_no_nan(cdf - cdf_min, n_pixels - cdf_min)
    equalized = tf.gather(lut, flat, batch_dims=1)
    return tf.reshape(equalized, tf.shape(images))


def to_backbone_input(images: tf.Tensor) -> tf.Tensor:
    """uint8 [b, h, w, 1] → float32 [b, h, w, 3] in [-1, 1], what Xception was trained on."""
    scaled = equalize(images) * 2.0 - 1.0
    return tf.tile(scaled, [1, 1, 1, 3])


def build_backbone(size: int, weights: str | Path | None) -> keras.Model:
    """Frozen Xception up to its last feature grid (unpooled).
    `weights`: a .h5 path, "imagenet", None (random), or "tiny" (a small random CNN for tests)."""
    if weights == "tiny":
        return _tiny_backbone(size)
    base = keras.applications.Xception(
        weights="imagenet" if weights == "imagenet" else None, include_top=False, input_shape=(size, size, 3)
    )
    if weights not in (None, "imagenet"):
        base.load_weights(str(weights))
    base.trainable = False
    return base


def _tiny_backbone(size: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 5, strides=4, activation="relu")(inputs)
    outputs = keras.layers.Conv2D(16, 3, strides=4, activation="relu", name="tiny_top")(x)
    backbone = keras.Model(inputs, outputs, name="tiny")
    backbone.trainable = False
    return backbone


TOP_BLOCK_START = {"xception": "block14_sepconv1", "tiny": "tiny_top"}
"""First layer of the block that training fine-tunes; everything before it stays frozen."""


def split_backbone(backbone: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(bottom, top): the frozen lower part up to the top block's input, and the top block as a
    model of its own that *shares* its layers with `backbone`, so weights trained in `top` are the
    backbone's. The top block must be a plain chain of layers (Xception's block 14 is)."""
    start = backbone.get_layer(TOP_BLOCK_START[backbone.name])
    bottom = keras.Model(backbone.input, start.input, name="bottom")
    grid = keras.Input(start.input.shape[1:])
    x = grid
    for layer in backbone.layers[backbone.layers.index(start) :]:
        x = layer(x)
    top = keras.Model(grid, x, name="top")
    for layer in top.layers:
        # convolutions learn; batch-norm keeps its ImageNet statistics (inference mode)
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    return bottom, top


def build_head(feature_dim: int, dropout: float, l2: float) -> keras.Model:
    features = keras.Input((feature_dim,), name="features")
    x = keras.layers.Dropout(dropout)(features)
    logit = keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(l2), name="logit")(x)
    return keras.Model(features, logit, name="head")


def build_subtype_head(feature_dim: int, n_classes: int, l2: float) -> keras.Model:
    features = keras.Input((feature_dim,), name="features")
    logits = keras.layers.Dense(n_classes, kernel_regularizer=keras.regularizers.L2(l2), name="subtype")(features)
    return keras.Model(features, logits, name="subtype_head")


class BottomExtractor:
    """Batched uint8 images → the frozen lower backbone's activations (the top block's input)."""

    def __init__(self, bottom: keras.Model) -> None:
        self.bottom = bottom
        self._run = tf.function(
            lambda images: bottom(to_backbone_input(images), training=False),
            input_signature=[tf.TensorSpec([None, None, None, 1], tf.uint8)],
        )

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        return self._run(images)


def pooled_features(top: keras.Model, grids: np.ndarray, batch: int = 256) -> np.ndarray:
    """Top block on cached lower activations, globally average-pooled: the heads' input."""
    pooled = [
        tf.reduce_mean(top(np.asarray(grids[s : s + batch], np.float32), training=False), axis=[1, 2]).numpy()
        for s in range(0, len(grids), batch)
    ]
    return np.concatenate(pooled) if pooled else np.zeros((0, top.output_shape[-1]), np.float32)
