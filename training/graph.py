"""The numeric graph shared by activation caching, training and export.

uint8 [b, H, W, 1] → per-image histogram equalisation → [-1, 1] → 3 channels → Xception (blocks
1–13 frozen, block 14 fine-tuned) → pooled features. Histogram equalisation makes the input
invariant to any monotonic change of exposure, contrast or gamma, the largest acquisition
differences between sites.

The exported model averages the pooled features of a few test-time transforms of each image
(test-time augmentation, `TTA_TRANSFORMS`); the heads are linear, so this averages their logits. Training chooses
the operating points on the same average.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

INPUT_SIZE = 224
"""Side of the square uint8 pictures the backbone takes, and the exported model's input size."""


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


TTA_TRANSFORMS = ("identity", "flip", "zoom90")
"""Views of each image the exported model averages over: as sent, mirrored left–right, and the
central 90% enlarged to full size (framing and magnification differ between sites)."""


def tta_transform(images: tf.Tensor, name: str) -> tf.Tensor:
    """One of `TTA_TRANSFORMS` of uint8 [b, h, w, 1] images, as uint8 of the same shape."""
    if name == "identity":
        return images
    if name == "flip":
        return tf.image.flip_left_right(images)
    if name.startswith("zoom"):
        margin = (1.0 - int(name.removeprefix("zoom")) / 100) / 2
        batch, size = tf.shape(images)[0], tf.shape(images)[1:3]
        box = tf.constant([[margin, margin, 1.0 - margin, 1.0 - margin]], tf.float32)
        crops = tf.image.crop_and_resize(
            tf.cast(images, tf.float32), tf.tile(box, [batch, 1]), tf.range(batch), size
        )
        return tf.cast(tf.clip_by_value(tf.round(crops), 0.0, 255.0), tf.uint8)
    raise ValueError(f"unknown test-time transform {name!r}")


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
    """Batched uint8 images → the frozen lower backbone's activations (the top block's input), of
    the images as given or of one of their test-time transforms."""

    def __init__(self, bottom: keras.Model) -> None:
        self.bottom = bottom
        self._runs = {
            name: tf.function(
                lambda images, name=name: bottom(to_backbone_input(tta_transform(images, name)), training=False),
                input_signature=[tf.TensorSpec([None, None, None, 1], tf.uint8)],
            )
            for name in TTA_TRANSFORMS
        }

    def __call__(self, images: tf.Tensor, transform: str = "identity") -> tf.Tensor:
        return self._runs[transform](images)


POOLINGS = ("whole", "inner")
"""How the top block's last feature grid is average-pooled into the heads' features: `whole` (every cell;
versions up to 5) or `inner` (the outermost ring of cells left out: on a chest film it holds the neck and
shoulders, the abdomen, the borders and arms, where version 5's false positives put their evidence, so the
score cannot rest on them)."""


def pooled_cells(grid: tf.Tensor, pooling: str) -> tf.Tensor:
    """The cells of [..., h, w, c] grids that `pooling` averages."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is not one of {POOLINGS}")
    return grid[..., 1:-1, 1:-1, :] if pooling == "inner" else grid


def pooled_mask(height: int, width: int, pooling: str) -> np.ndarray:
    """float32 [h, w]: 1 on the cells that `pooling` averages, 0 elsewhere (what a class activation map keeps)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is not one of {POOLINGS}")
    if pooling == "whole":
        return np.ones((height, width), np.float32)
    return np.pad(np.ones((height - 2, width - 2), np.float32), 1)


def pooling_layers(pooling: str) -> list[keras.layers.Layer]:
    """The Keras layers of `pooled_cells` + average, for training graphs."""
    crop = [keras.layers.Cropping2D(1)] if pooling == "inner" else []
    return [*crop, keras.layers.GlobalAveragePooling2D()]


def pooled_features(top: keras.Model, grids: np.ndarray, batch: int = 256, pooling: str = "whole") -> np.ndarray:
    """Top block on cached lower activations, average-pooled over the cells of `pooling`: the heads' input."""
    pooled = [
        tf.reduce_mean(pooled_cells(top(np.asarray(grids[s : s + batch], np.float32), training=False), pooling),
                       axis=[1, 2]).numpy()
        for s in range(0, len(grids), batch)
    ]
    return np.concatenate(pooled) if pooled else np.zeros((0, top.output_shape[-1]), np.float32)


def averaged_features(top: keras.Model, grids: dict[str, np.ndarray], pooling: str = "whole") -> np.ndarray:
    """The exported model's features on cached activations: `pooled_features` averaged over the
    test-time transforms (`grids`: transform name → activations of that transform)."""
    missing = set(TTA_TRANSFORMS) - set(grids)
    if missing:
        raise ValueError(f"activations of the test-time transforms {sorted(missing)} are not cached")
    return np.mean([pooled_features(top, grids[name], pooling=pooling) for name in TTA_TRANSFORMS], axis=0)
