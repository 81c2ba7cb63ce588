"""SavedModel export in the layout and with the signatures of `radiograph.contract`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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
    OperatingPoint,
    model_versions,
)
from training.data import LABELS, SUBTYPES
from training.graph import INPUT_SIZE, TTA_TRANSFORMS, pooled_cells, pooled_mask, to_backbone_input, tta_transform
from training.runs import Member, RunMismatch, load_run, member_dirs, pooling_of, read_summary
from training.storage import STORAGE_KEY, member_stored_as, storage_of

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
        self.poolings = [m.pooling for m in members]
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
        features = [
            tf.reduce_mean(pooled_cells(grid, pooling), axis=[0, 2, 3])
            for grid, pooling in zip(grids, self.poolings, strict=True)
        ]
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
        cam = tf.nn.relu(tf.reduce_mean([  # each member's map on the cells its score reads
            tf.einsum("bhwc,c->bhw", grid[identity], tf.cast(head.get_layer("logit").kernel[:, 0], grid.dtype))
            * pooled_mask(grid.shape[2], grid.shape[3], pooling)
            for head, grid, pooling in zip(self.heads, grids, self.poolings, strict=True)
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


def model_metadata(run_dir: Path, weights: str) -> ModelMetadata:
    """The metadata of a `train` or `ensemble` run's model: labels, input size, the run's operating
    points, how each member was trained and how its weights are stored. Raises `RunMismatch` when the
    run's thresholds were chosen for other test-time transforms than the exported graph averages."""
    summary = read_summary(run_dir)
    if summary.get("test_time_transforms") != list(TTA_TRANSFORMS):
        raise RunMismatch(
            f"{run_dir}: thresholds were chosen for test-time transforms {summary.get('test_time_transforms')}, "
            f"the exported graph averages {list(TTA_TRANSFORMS)}; re-run train",
            "--run-dir",
        )
    members = [read_summary(path) for path in member_dirs(run_dir)]
    epochs = "/".join(str(m["fine_tuning"]["best_epoch"]) for m in members)
    return ModelMetadata(
        labels=LABELS,
        input_height=INPUT_SIZE,
        input_width=INPUT_SIZE,
        operating_points={
            name: OperatingPoint(**point) for name, point in summary["operating_points"].items()
        },
        subtype_labels=SUBTYPES,
        description=f"ImageNet Xception on histogram-equalised input; {len(members)} member(s) (seeds), each "
        f"a top block fine-tuned for {epochs} epoch(s) with a logistic head on {_views(members)} of the Kermany "
        f"pediatric train/ split{_pooling(members)}; scores averaged over the members and over the image as sent, "
        "mirrored, and its central 90% enlarged.",
        training={
            "backbone": "xception" if weights != "tiny" else "tiny",
            "split": summary["split"],
            "members": [
                {
                    "seed": m["seed"],
                    "head": m["head"],
                    "fine_tuning": {k: v for k, v in m["fine_tuning"].items() if k != "history"},
                }
                for m in members
            ],
            "test_time_transforms": list(TTA_TRANSFORMS),
            STORAGE_KEY: storage_of(summary),
        },
    )


def _pooling(members: list[dict[str, Any]]) -> str:
    if all(pooling_of(m) == "whole" for m in members):
        return ""
    return ", the heads reading the inner cells of the top block's grid only (not its outermost ring)"


def _views(members: list[dict[str, Any]]) -> str:
    train_views = [k for m in members for k in m.get("selection", {}).get("train_views", [])]
    framed = bool(train_views) and all(k.startswith("train_frame") for k in train_views)
    return (
        "framed views (the anatomy's proportions drawn alike for both classes, zoom and crop) with acquisition "
        "shifts" if framed else "clean and shift-augmented views"
    )


def export_run(run_dir: Path, weights: str, model_root: Path, version: int | None = None) -> Path:
    """Export a `train` or `ensemble` run as version `version` (default: the next free) under `model_root`,
    its members' weights stored as the run says (`training.storage`)."""
    metadata = model_metadata(run_dir, weights)
    run = load_run(run_dir, weights, INPUT_SIZE)
    members = [member_stored_as(m, storage_of(run.summary)) for m in run.members]
    return export(run.bottom, members, metadata, model_root, version)


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
