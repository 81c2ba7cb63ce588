"""The protocol's tensors and the model's description in its terms, shared by the REST and gRPC transports.

Inputs (one per request, batch dimension first):
    image   BYTES [n]           the encoded files: JPEG, PNG or DICOM Part 10 (CR/DX), as /v1 takes them
    pixels  UINT8 [n, H, W, 1]  grayscale already at the model's input size ([n, H, W] is taken too)
Outputs:
    probability            FP32 [n]     P(pneumonia)
    label                  BYTES [n]    the label at the operating point
    threshold              FP64 [n]     the operating point's threshold (as stored in the model)
    subtype_probabilities  FP32 [n, k]  (models with a subtype head) in the order of the metadata's
                                        `subtype_labels`; -1 in rows whose label is not positive (/v1: null)
Request parameter `operating_point` (a name stored in the model) chooses the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import prod

import numpy as np
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor, triton_to_np_dtype

from radiograph.contract import ModelMetadata
from serving import errors

IMAGE = "image"
PIXELS = "pixels"
PROBABILITY = "probability"
LABEL = "label"
THRESHOLD = "threshold"
SUBTYPES = "subtype_probabilities"
OPERATING_POINT = "operating_point"
NO_SUBTYPE = -1.0
PLATFORM = "pneumonia-xray-gateway"

Parameter = bool | int | float | str


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: list[bytes] | np.ndarray
    """BYTES: one bytes object per element, row-major; numeric: an array of `shape`."""


@dataclass(frozen=True)
class InferRequest:
    inputs: list[Tensor]
    id: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)
    outputs: list[str] | None = None
    """Names of the outputs asked for; None: all."""


@dataclass(frozen=True)
class InferResponse:
    model_name: str
    model_version: str
    outputs: list[Tensor]
    id: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: list[int]


@dataclass(frozen=True)
class ModelDescription:
    name: str
    versions: list[str]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    parameters: dict[str, Parameter]
    platform: str = PLATFORM


def describe(name: str, versions: list[str], metadata: ModelMetadata) -> ModelDescription:
    """The model as the protocol's metadata shows it, from the exported model's own metadata."""
    height, width = metadata.input_height, metadata.input_width
    outputs = [
        TensorSpec(PROBABILITY, "FP32", [-1]), TensorSpec(LABEL, "BYTES", [-1]), TensorSpec(THRESHOLD, "FP64", [-1])
    ]
    if metadata.subtype_labels:
        outputs.append(TensorSpec(SUBTYPES, "FP32", [-1, len(metadata.subtype_labels)]))
    parameters: dict[str, Parameter] = {
        "labels": ",".join(metadata.labels),
        "subtype_labels": ",".join(metadata.subtype_labels),
        "default_operating_point": metadata.default_operating_point,
        "operating_points": ",".join(sorted(metadata.operating_points)),
    }
    for point_name, point in sorted(metadata.operating_points.items()):
        parameters[f"threshold_{point_name}"] = point.threshold
    return ModelDescription(
        name,
        versions,
        inputs=[TensorSpec(IMAGE, "BYTES", [-1]), TensorSpec(PIXELS, "UINT8", [-1, height, width, 1])],
        outputs=outputs,
        parameters=parameters,
    )



def from_elements(name: str, shape: list[int], elements: list[bytes]) -> Tensor:
    """A BYTES tensor from its elements."""
    if len(elements) != prod(checked(name, shape)):
        raise errors.BadRequest(f"input {name!r}: {len(elements)} element(s) for shape {shape}")
    return Tensor(name, "BYTES", shape, elements)


def from_values(name: str, datatype: str, shape: list[int], values: Sequence[object]) -> Tensor:
    """A numeric tensor from its elements in row-major order (JSON `data`, gRPC `contents`)."""
    dtype = numeric_dtype(name, datatype)
    array = np.asarray(values) if len(values) else np.zeros(0, dtype)
    if len(values) != prod(checked(name, shape)) or array.dtype.kind not in "biuf":
        raise errors.BadRequest(f"input {name!r}: the data does not hold {prod(shape)} numbers for shape {shape}")
    if dtype.kind in "iu" and array.size and (
        array.dtype.kind == "f" or array.min() < np.iinfo(dtype).min or array.max() > np.iinfo(dtype).max
    ):
        raise errors.BadRequest(f"input {name!r}: values outside {datatype}")
    return Tensor(name, datatype, shape, array.astype(dtype).reshape(shape))


def from_bytes(name: str, datatype: str, shape: list[int], raw: bytes) -> Tensor:
    """A tensor from its raw bytes: little-endian row-major, a BYTES element as its uint32 length, then its bytes."""
    if datatype == "BYTES":
        try:
            elements = [bytes(item) for item in deserialize_bytes_tensor(raw)]
        except Exception:  # struct.error and friends: a length prefix that runs past the data
            raise errors.BadRequest(f"input {name!r}: malformed BYTES data (4-byte length, then bytes)") from None
        return from_elements(name, shape, elements)
    dtype = numeric_dtype(name, datatype)
    if len(raw) != prod(checked(name, shape)) * dtype.itemsize:
        raise errors.BadRequest(f"input {name!r}: {len(raw)} bytes are not {datatype} of shape {shape}")
    return Tensor(name, datatype, shape, np.frombuffer(raw, dtype.newbyteorder("<")).reshape(shape))


def to_bytes(tensor: Tensor) -> bytes:
    """The tensor's raw bytes (the inverse of `from_bytes`)."""
    if isinstance(tensor.data, np.ndarray):
        return tensor.data.astype(tensor.data.dtype.newbyteorder("<"), copy=False).tobytes()
    return bytes(serialize_byte_tensor(np.array(tensor.data, dtype=np.object_)).item()) if tensor.data else b""


def numeric_dtype(name: str, datatype: str) -> np.dtype:
    dtype = triton_to_np_dtype(datatype)
    if dtype is None or dtype is np.object_:
        raise errors.BadRequest(f"input {name!r}: unknown datatype {datatype!r}")
    return np.dtype(dtype)


def checked(name: str, shape: list[int]) -> list[int]:
    if any(dim < 0 for dim in shape):
        raise errors.BadRequest(f"input {name!r}: shape {shape} has a negative dimension")
    return shape
