"""JSON bodies of the Open Inference Protocol's REST API (as its specification writes them), for parsing and
for the OpenAPI page."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from serving.v2.tensors import Parameter

Parameters = dict[str, Parameter]


class RequestInput(BaseModel):
    name: str = Field(description="`image` (BYTES: encoded files) or `pixels` (UINT8 at the model's input size).")
    shape: list[int] = Field(description="Batch first: `[n]` for `image`, `[n, H, W, 1]` for `pixels`.")
    datatype: str
    parameters: Parameters | None = Field(
        None,
        description="`binary_data_size`: the tensor is in the binary part of the body; `content_type: base64`: "
        "BYTES elements in `data` are base64.",
    )
    data: list[Any] | None = Field(None, description="The elements, row-major (flat or nested).")


class RequestOutput(BaseModel):
    name: str
    parameters: Parameters | None = Field(None, description="`binary_data: true` to get the tensor in binary.")


class InferRequestBody(BaseModel):
    id: str | None = None
    parameters: Parameters | None = Field(
        None,
        description="`operating_point`: a threshold name stored in the model (e.g. screening, balanced); "
        "`binary_data_output: true`: every output in binary.",
    )
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = Field(None, description="The outputs wanted; absent: all.")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[float | int | str] | None = None


class InferResponseBody(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataBody(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: Parameters = Field(
        description="labels, subtype_labels (the columns of subtype_probabilities), the operating points and "
        "their thresholds, as stored in the model."
    )


class ServerMetadataBody(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLiveBody(BaseModel):
    live: bool


class ServerReadyBody(BaseModel):
    ready: bool


class ModelReadyBody(BaseModel):
    name: str
    ready: bool


class ErrorBody(BaseModel):
    error: str


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with its `$defs` put in place (for an OpenAPI `requestBody` written by hand)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)
