"""SavedModel export in the layout and with the signatures of `radiograph.contract`."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from radiograph.contract import (
    IMAGE_INPUT,
    METADATA_OUTPUT,
    METADATA_SIGNATURE,
    PROBABILITY_OUTPUT,
    SERVING_SIGNATURE,
    ModelMetadata,
    model_versions,
)
from training.graph import to_backbone_input

log = logging.getLogger(__name__)

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 8)


class PneumoniaModule(tf.Module):
    def __init__(self, backbone: keras.Model, head: keras.Model, metadata: ModelMetadata) -> None:
        super().__init__(name="pneumonia")
        self.backbone = backbone
        self.head = head
        self._metadata_json = metadata.model_dump_json()
        size = (metadata.input_height, metadata.input_width)
        self.serve = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([None, *size, 1], tf.uint8, name=IMAGE_INPUT)],
        )
        self.metadata = tf.function(self._metadata, input_signature=[])

    def _serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        features = self.backbone(to_backbone_input(image), training=False)
        logit = self.head(features, training=False)[:, 0]
        return {PROBABILITY_OUTPUT: tf.sigmoid(logit)}

    def _metadata(self) -> dict[str, tf.Tensor]:
        return {METADATA_OUTPUT: tf.constant(self._metadata_json)}


def next_version(model_root: Path) -> int:
    versions = model_versions(model_root)
    return versions[-1] + 1 if versions else 1


def export(
    backbone: keras.Model,
    head: keras.Model,
    metadata: ModelMetadata,
    model_root: Path,
    version: int | None = None,
    model_name: str = "pneumonia",
) -> Path:
    version = version or next_version(model_root)
    target = model_root / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists; versions are immutable")
    module = PneumoniaModule(backbone, head, metadata)
    tf.saved_model.save(
        module,
        str(target),
        signatures={SERVING_SIGNATURE: module.serve, METADATA_SIGNATURE: module.metadata},
    )
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
