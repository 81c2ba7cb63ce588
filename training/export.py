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
    WARMUP_FILE,
    ModelMetadata,
    model_versions,
)
from training.graph import TTA_TRANSFORMS, to_backbone_input, tta_transform
from training.train import Member

log = logging.getLogger(__name__)

# (signature, batch size) of the PredictLog records Serving replays at load: every signature the gateway calls
WARMUP_CALLS = ((SERVING_SIGNATURE, 1), (SERVING_SIGNATURE, 8), (EXPLAIN_SIGNATURE, 1))


class PneumoniaModule(tf.Module):
    """Frozen lower backbone + one or more members (fine-tuned top block, binary head, subtype
    head), with the contract's three signatures.

    Each member's features are its top block's pooled features averaged over the test-time
    transforms of each image (`TTA_TRANSFORMS`, one lower-backbone pass on the stacked transforms,
    shared by all members); the heads are linear, so this averages their logits over the transforms,
    and the members' logits are averaged too.

    A binary head is linear on average-pooled features, so its class activation map is the head's
    weights applied at each cell of the last feature grid (Zhou et al., 2016); the ensemble's map is
    the members' mean, which exactly decomposes the mean logit of the image as sent (the identity
    transform; the other transforms' grids cover other fields of view and are left out of it).
    """

    def __init__(self, bottom: keras.Model, members: list[Member], metadata: ModelMetadata) -> None:
        super().__init__(name="pneumonia")
        # three lists rather than the `Member`s, so that tf.Module tracks (and saves) their variables;
        # `tracked_parts` names the same attributes for reading them back
        self.bottom = bottom
        self.tops = [m.top for m in members]
        self.heads = [m.head for m in members]
        self.subtype_heads = [m.subtype_head for m in members]
        self._metadata_json = metadata.model_dump_json()
        image_spec = tf.TensorSpec([None, metadata.input_height, metadata.input_width, 1], tf.uint8, name=IMAGE_INPUT)
        self.serve = tf.function(self._serve, input_signature=[image_spec])
        self.explain = tf.function(self._explain, input_signature=[image_spec])
        self.metadata = tf.function(self._metadata, input_signature=[])

    def _grids(self, image: tf.Tensor) -> list[tf.Tensor]:
        """Per member, [transforms, b, h, w, c]: its last feature grid of each test-time transform."""
        stacked = tf.concat([tta_transform(image, name) for name in TTA_TRANSFORMS], axis=0)
        lower = self.bottom(to_backbone_input(stacked), training=False)
        grids = []
        for top in self.tops:
            grid = top(lower, training=False)
            shape = tf.concat([[len(TTA_TRANSFORMS), tf.shape(image)[0]], tf.shape(grid)[1:]], 0)
            grids.append(tf.reshape(grid, shape))
        return grids

    def _logits(self, grids: list[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """(binary logit [b], subtype logits [b, classes]), averaged over transforms and members."""
        features = [tf.reduce_mean(grid, axis=[0, 2, 3]) for grid in grids]
        logits = [head(f, training=False)[:, 0] for head, f in zip(self.heads, features, strict=True)]
        subtypes = [head(f, training=False) for head, f in zip(self.subtype_heads, features, strict=True)]
        return tf.reduce_mean(logits, axis=0), tf.reduce_mean(subtypes, axis=0)

    def _serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        logit, subtype_logits = self._logits(self._grids(image))
        return {PROBABILITY_OUTPUT: tf.sigmoid(logit), SUBTYPE_OUTPUT: tf.nn.softmax(subtype_logits, axis=-1)}

    def _explain(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        grids = self._grids(image)
        logit, _ = self._logits(grids)
        identity = TTA_TRANSFORMS.index("identity")
        cam = tf.nn.relu(tf.reduce_mean([
            tf.einsum("bhwc,c->bhw", grid[identity], head.get_layer("logit").kernel[:, 0])
            for head, grid in zip(self.heads, grids, strict=True)
        ], axis=0))
        peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
        return {PROBABILITY_OUTPUT: tf.sigmoid(logit), HEATMAP_OUTPUT: tf.math.divide_no_nan(cam, peak)}

    def _metadata(self) -> dict[str, tf.Tensor]:
        return {METADATA_OUTPUT: tf.constant(self._metadata_json)}


def tracked_parts(bottom: keras.Model, members: list[Member]) -> dict[str, object]:
    """The parts `PneumoniaModule` tracks, under its attribute names: a `tf.train.Checkpoint` of
    fresh models of the same architecture reads an exported model's variables back into them."""
    return {
        "bottom": bottom,
        "tops": [m.top for m in members],
        "heads": [m.head for m in members],
        "subtype_heads": [m.subtype_head for m in members],
    }


def legacy_tracked_parts(backbone: keras.Model, member: Member) -> dict[str, object]:
    """The same for versions 1–3, whose module tracked one unpooled `backbone` (the member's top
    block shares its layers) and two heads."""
    return {"backbone": backbone, "head": member.head, "subtype_head": member.subtype_head}


def read_variables(saved_model: Path, parts: dict[str, object]) -> None:
    """Restore an exported model's variables into `parts`; every part must be found in it."""
    status = tf.train.Checkpoint(**parts).read(str(saved_model / "variables" / "variables"))
    status.assert_existing_objects_matched().expect_partial()


def next_version(model_root: Path) -> int:
    versions = model_versions(model_root)
    return versions[-1] + 1 if versions else 1


def export(
    bottom: keras.Model,
    members: list[Member],
    metadata: ModelMetadata,
    model_root: Path,
    version: int | None = None,
    model_name: str = "pneumonia",
) -> Path:
    version = version or next_version(model_root)
    target = model_root / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists; versions are immutable")
    module = PneumoniaModule(bottom, members, metadata)
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
    """PredictionLog records TF Serving replays at load, so the first real request of each signature the
    gateway calls (`predict`, `explain`) is not a cold one."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path = target / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, batch in WARMUP_CALLS:
            images = np.full((batch, metadata.input_height, metadata.input_width, 1), 128, np.uint8)
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            request.inputs[IMAGE_INPUT].CopyFrom(tf.make_tensor_proto(images))
            record = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(record.SerializeToString())
