"""KServe's Python SDK against a running gateway, in a process of its own; prints one JSON object of what it saw.

    python -m tests.v2.kserve_session HTTP_URL GRPC_ADDRESS API_KEY IMAGE...

A process of its own because kserve and tritonclient (whose gRPC stubs the gateway's gRPC service uses) each
register the `inference.*` protobuf messages, under different file names, and protobuf refuses the second. kserve
0.21's InferenceRESTClient has no metadata call: the model metadata is read with httpx (kserve's own HTTP client
library) and parsed with kserve's v2 data model, and over gRPC with kserve's generated stub.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import grpc
import httpx
import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from kserve.protocol.rest.v2_datamodels import ModelMetadataResponse

MODEL = "pneumonia"


def request(images: list[bytes], request_id: str) -> InferRequest:
    tensor = InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    return InferRequest(MODEL, [tensor], request_id=request_id, parameters={"operating_point": "screening"})


def scores(response: object) -> dict[str, list]:
    outputs = {output.name: output.as_numpy() for output in response.outputs}  # type: ignore[attr-defined]
    return {
        "probability": outputs["probability"].tolist(),
        "label": [item.decode() if isinstance(item, bytes) else str(item) for item in outputs["label"]],
    }


async def rest_session(url: str, key: str, images: list[bytes]) -> dict[str, object]:
    headers = {"x-api-key": key}
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
    try:
        seen: dict[str, object] = {
            "live": await client.is_server_live(url),
            "ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, MODEL, headers=headers),
        }
        metadata = httpx.get(f"{url}/v2/models/{MODEL}", headers=headers, timeout=30)
        seen["metadata"] = ModelMetadataResponse.model_validate_json(metadata.content).model_dump()
        response = await client.infer(url, request(images, "kserve-rest"), model_name=MODEL, headers=headers)
        seen |= scores(response)
        try:
            await client.infer(url, request(images[:1], "kserve-no-key"), model_name=MODEL)
            seen["without_key"] = 200
        except httpx.HTTPStatusError as exc:
            seen["without_key"] = exc.response.status_code
        return seen
    finally:
        await client.close()


async def grpc_session(address: str, key: str, images: list[bytes]) -> dict[str, object]:
    metadata = (("x-api-key", key),)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = GRPCInferenceServiceStub(channel)
        described = await stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL), metadata=metadata)
    client = InferenceGRPCClient(address, timeout=60)
    try:
        seen: dict[str, object] = {
            "ready": await client.is_server_ready(),
            "model_ready": await client.is_model_ready(MODEL, headers=metadata),
            "metadata": {"name": described.name, "versions": list(described.versions),
                         "inputs": [tensor.name for tensor in described.inputs],
                         "outputs": [tensor.name for tensor in described.outputs]},
        }
        seen |= scores(await client.infer(request(images, "kserve-grpc"), headers=metadata))
        return seen
    finally:
        await client.close()


async def main(url: str, address: str, key: str, paths: list[str]) -> None:
    images = [Path(path).read_bytes() for path in paths]
    seen = {"rest": await rest_session(url, key, images), "grpc": await grpc_session(address, key, images)}
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
