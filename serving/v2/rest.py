"""The REST encoding of tensors: JSON, and the binary tensor extension (`binary_tensor_data`, which tritonclient
uses by default): the JSON header is the first `Inference-Header-Content-Length` bytes of the body, then each
tensor with a `binary_data_size` parameter follows in order, in little-endian row-major bytes (a BYTES element as
its uint32 length, then its bytes). Answers use the same form when an output is asked for in binary.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from serving import errors
from serving.v2 import tensors
from serving.v2.schemas import InferRequestBody, RequestInput
from serving.v2.tensors import InferRequest, InferResponse, Tensor

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class BinaryChoice:
    """Which outputs go in binary: a per-output `binary_data`, else the request's `binary_data_output`."""

    default: bool
    per_output: dict[str, bool]

    def __call__(self, name: str) -> bool:
        return self.per_output.get(name, self.default)


def decode_request(body: bytes, header_length: str | None) -> tuple[InferRequest, BinaryChoice]:
    header, binary = body, b""
    if header_length is not None:
        if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
            raise errors.BadRequest(f"{HEADER_LENGTH} must be a length within the body ({len(body)} bytes)")
        header, binary = body[: int(header_length)], body[int(header_length) :]
    try:
        parsed = InferRequestBody.model_validate_json(header)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
        raise errors.BadRequest(f"not an inference request: {details}") from None
    inputs, offset = [], 0
    for item in parsed.inputs:
        size = (item.parameters or {}).get("binary_data_size")
        if size is None:
            inputs.append(_from_json(item))
            continue
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= len(binary) - offset:
            raise errors.BadRequest(f"input {item.name!r}: binary_data_size {size!r} is not within the binary data")
        inputs.append(_from_bytes(item, binary[offset : offset + size]))
        offset += size
    if offset != len(binary):
        raise errors.BadRequest(f"{len(binary) - offset} byte(s) of binary data belong to no input")
    parameters = parsed.parameters or {}
    requested = parsed.outputs or []
    per_output = {
        out.name: asked["binary_data"] is True for out in requested if "binary_data" in (asked := out.parameters or {})
    }
    choice = BinaryChoice(parameters.get("binary_data_output") is True, per_output)
    outputs = [out.name for out in requested] or None
    return InferRequest(inputs, parsed.id or "", parameters, outputs), choice


def encode_response(response: InferResponse, binary: BinaryChoice) -> tuple[bytes, int | None]:
    """The body, and the JSON header's length when binary data follows it (else None)."""
    outputs, chunks = [], []
    for tensor in response.outputs:
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if binary(tensor.name):
            raw = tensors.to_bytes(tensor)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif isinstance(tensor.data, np.ndarray):
            entry["data"] = tensor.data.ravel().tolist()
        else:
            entry["data"] = [item.decode("utf-8", "replace") for item in tensor.data]
        outputs.append(entry)
    header: dict[str, Any] = {"model_name": response.model_name, "model_version": response.model_version}
    if response.id:
        header["id"] = response.id
    if response.parameters:
        header["parameters"] = response.parameters
    header["outputs"] = outputs
    text = json.dumps(header).encode()
    return (text, None) if not chunks else (text + b"".join(chunks), len(text))


def _from_bytes(item: RequestInput, raw: bytes) -> Tensor:
    return tensors.from_bytes(item.name, item.datatype, item.shape, raw)


def _from_json(item: RequestInput) -> Tensor:
    if item.data is None:
        raise errors.BadRequest(f"input {item.name!r} has neither `data` nor `binary_data_size`")
    flat = list(_flatten(item.data))
    if item.datatype != "BYTES":
        return tensors.from_values(item.name, item.datatype, item.shape, flat)
    if not all(isinstance(element, str) for element in flat):
        raise errors.BadRequest(f"input {item.name!r}: BYTES elements in JSON are strings")
    if (item.parameters or {}).get("content_type") != "base64":
        return tensors.from_elements(item.name, item.shape, [element.encode() for element in flat])
    try:
        return tensors.from_elements(item.name, item.shape, [base64.b64decode(e, validate=True) for e in flat])
    except binascii.Error:
        raise errors.BadRequest(f"input {item.name!r}: an element is not valid base64") from None


def _flatten(data: list[Any]) -> Iterator[Any]:
    for element in data:
        if isinstance(element, list):
            yield from _flatten(element)
        else:
            yield element
