"""SavedModel export in the layout and with the signatures of `radiograph.contract`."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from radiograph.contract import (
    EXPLAIN_SIGNATURE,
    HEATMAP_OUTPUT,
    IMAGE_INPUT,
    METADATA_OUTPUT,
    METADATA_SIGNATURE,
    PROBABILITY_OUTPUT,
    SERVING_SIGNATURE,
    SUBTYPE_OUTPUT,
    ModelMetadata,
    model_versions,
)
from training.graph import TTA_TRANSFORMS, to_backbone_input, tta_transform

log = logging.getLogger(__name__)

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 8)


class PneumoniaModule(tf.Module):
    """Backbone (unpooled) + binary head + subtype head, with the contract's three signatures.

    Features are the backbone's pooled features averaged over the test-time transforms of each
    image (`TTA_TRANSFORMS`, one backbone pass on the stacked transforms); both heads are linear,
    so this averages their logits.

    The binary head is linear on average-pooled features, so its class activation map is the
    head's weights applied at each cell of the last feature grid (Zhou et al., 2016): the map
    costs one matrix product and exactly decomposes the logit of the image as sent (the identity
    transform; the other transforms' grids cover other fields of view and are left out of it).
    """

    def __init__(
        self, backbone: keras.Model, head: keras.Model, subtype_head: keras.Model, metadata: ModelMetadata
    ) -> None:
        super().__init__(name="pneumonia")
        self.backbone = backbone
        self.head = head
        self.subtype_head = subtype_head
        self._metadata_json = metadata.model_dump_json()
        image_spec = tf.TensorSpec([None, metadata.input_height, metadata.input_width, 1], tf.uint8, name=IMAGE_INPUT)
        self.serve = tf.function(self._serve, input_signature=[image_spec])
        self.explain = tf.function(self._explain, input_signature=[image_spec])
        self.metadata = tf.function(self._metadata, input_signature=[])

    def _grids(self, image: tf.Tensor) -> tf.Tensor:
        """[transforms, b, h, w, c]: the last feature grid of each test-time transform."""
        stacked = tf.concat([tta_transform(image, name) for name in TTA_TRANSFORMS], axis=0)
        grids = self.backbone(to_backbone_input(stacked), training=False)
        return tf.reshape(grids, tf.concat([[len(TTA_TRANSFORMS), tf.shape(image)[0]], tf.shape(grids)[1:]], 0))

    def _serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        features = tf.reduce_mean(self._grids(image), axis=[0, 2, 3])
        logit = self.head(features, training=False)[:, 0]
        subtype_logits = self.subtype_head(features, training=False)
        return {PROBABILITY_OUTPUT: tf.sigmoid(logit), SUBTYPE_OUTPUT: tf.nn.softmax(subtype_logits, axis=-1)}

    def _explain(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        grids = self._grids(image)
        logit = self.head(tf.reduce_mean(grids, axis=[0, 2, 3]), training=False)[:, 0]
        grid = grids[TTA_TRANSFORMS.index("identity")]
        kernel = self.head.get_layer("logit").kernel  # [features, 1]
        cam = tf.nn.relu(tf.einsum("bhwc,c->bhw", grid, kernel[:, 0]))
        peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
        return {PROBABILITY_OUTPUT: tf.sigmoid(logit), HEATMAP_OUTPUT: tf.math.divide_no_nan(cam, peak)}

    def _metadata(self) -> dict[str, tf.Tensor]:
        return {METADATA_OUTPUT: tf.constant(self._metadata_json)}


def next_version(model_root: Path) -> int:
    versions = model_versions(model_root)
    return versions[-1] + 1 if versions else 1


def export(
    backbone: keras.Model,
    head: keras.Model,
    subtype_head: keras.Model,
    metadata: ModelMetadata,
    model_root: Path,
    version: int | None = None,
    model_name: str = "pneumonia",
) -> Path:
    version = version or next_version(model_root)
    target = model_root / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists; versions are immutable")
    module = PneumoniaModule(backbone, head, subtype_head, metadata)
    signatures = {
        SERVING_SIGNATURE: module.serve,
        EXPLAIN_SIGNATURE: module.explain,
        METADATA_SIGNATURE: module.metadata,
    }
    tf.saved_model.save(module, str(target), signatures=signatures)
    write_warmup(target, metadata, model_name)
    log.info("exported %s", target)
    return target


def write_warmup(target: Path, metadata: ModelMetadata, model_name: str) -> None:
    """PredictionLog records TF Serving replays at load, so the first real request is not cold."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path = target / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in WARMUP_BATCH_SIZES:
            images = np.full((batch, metadata.input_height, metadata.input_width, 1), 128, np.uint8)
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SERVING_SIGNATURE)
            )
            request.inputs[IMAGE_INPUT].CopyFrom(tf.make_tensor_proto(images))
            record = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(record.SerializeToString())
