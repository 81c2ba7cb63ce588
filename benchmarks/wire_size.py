"""Bytes per image sent to TF Serving: our uint8 single-channel tensor vs the float32 RGB tensor a
typical Keras export takes (same 224×224 geometry), as serialized TensorProto and whole PredictRequest.

    .venv/bin/python benchmarks/wire_size.py
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

SIZE = 224


def request_bytes(batch: np.ndarray) -> tuple[int, int]:
    tensor = tf.make_tensor_proto(batch)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "pneumonia"
    request.model_spec.signature_name = "serving_default"
    request.inputs["image"].CopyFrom(tensor)
    return tensor.ByteSize(), request.ByteSize()


def main() -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (1, SIZE, SIZE, 1), dtype=np.uint8)
    rgb = np.repeat(gray, 3, axis=-1).astype(np.float32) / 255.0
    print(f"{'payload (1 image, 224×224)':34s} {'TensorProto':>12s} {'PredictRequest':>15s}")
    sizes = {}
    for name, batch in (("ours: uint8 [1,224,224,1]", gray), ("float32 RGB [1,224,224,3]", rgb)):
        sizes[name] = request_bytes(batch)
        print(f"{name:34s} {sizes[name][0]:12,d} {sizes[name][1]:15,d}")
    ours, theirs = sizes.values()
    print(f"ratio float32 RGB / ours: {theirs[1] / ours[1]:.1f}×")
    for n in (8, 32):
        print(f"batch of {n}: ours {request_bytes(np.repeat(gray, n, axis=0))[1]:,d} bytes")


if __name__ == "__main__":
    main()
