"""numpy ↔ `TensorProto` for the TF Serving API. Images travel as raw bytes in `tensor_content`
(one field, 50 KB per 224×224 image) — never as per-pixel `int_val` varints, which take up to twice
the bytes and a per-pixel loop to encode and decode."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2


def uint8_tensor(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A uint8 array as a TensorProto carrying its bytes in `tensor_content`."""
    contiguous = np.ascontiguousarray(array, dtype=np.uint8)
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in contiguous.shape]
    )
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_UINT8, tensor_shape=shape, tensor_content=contiguous.tobytes()
    )


def to_array(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Any TensorProto Serving returns (`tensor_content` or typed `*_val` fields) as numpy."""
    return tf.make_ndarray(proto)
