"""inference.GRPCInferenceService on the gateway's gRPC port, driven by tritonclient.grpc: metadata, readiness,
scores equal to /v1's, the status table, API keys and the limits shared with REST."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.v2.live import MODEL, LiveV2, Picture, key


def images_input(images: list[bytes]) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_))
    return tensor


@pytest.fixture(scope="module")
def triton(v2_gateway: LiveV2) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(v2_gateway.grpc_address)


def test_metadata_readiness_and_scores_over_grpc(
    v2_gateway: LiveV2, triton: grpcclient.InferenceServerClient, mixed_batch: list[Picture], v1_answers: list[dict]
) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(MODEL, headers=key())
    metadata = triton.get_model_metadata(MODEL, headers=key(), as_json=True)
    assert metadata["versions"] == [str(v1_answers[0]["model_version"])]
    assert [tensor["name"] for tensor in metadata["inputs"]] == ["image", "pixels"]
    assert [tensor["name"] for tensor in metadata["outputs"]] == [
        "probability", "label", "threshold", "subtype_probabilities"
    ]
    jpeg, dicom = mixed_batch[0], mixed_batch[2]
    result = triton.infer(MODEL, [images_input([dicom.data, jpeg.data])], headers=key())
    expected = [v1_answers[2], v1_answers[0]]
    np.testing.assert_allclose(result.as_numpy("probability"), [a["probability"] for a in expected], atol=1e-6)
    assert [label.decode() for label in result.as_numpy("label")] == [a["label"] for a in expected]
    assert result.get_response(as_json=True)["parameters"]["operating_point"]["string_param"] == "screening"
    metrics = v2_gateway.http.get("/metrics").text
    assert 'route="/inference.GRPCInferenceService/ModelInfer",status="200"' in metrics


def test_grpc_status_codes(triton: grpcclient.InferenceServerClient, mixed_batch: list[Picture]) -> None:
    refusals = [
        (lambda: triton.infer(MODEL, [images_input([mixed_batch[0].data])]), "StatusCode.UNAUTHENTICATED"),
        (lambda: triton.get_model_metadata("other-model", headers=key()), "StatusCode.NOT_FOUND"),
        (lambda: triton.get_model_config(MODEL, headers=key()), "StatusCode.UNIMPLEMENTED"),
        (
            lambda: triton.infer(MODEL, [images_input([mixed_batch[0].data, b"\x89PNG not really"])], headers=key()),
            "StatusCode.INVALID_ARGUMENT",
        ),
        (
            lambda: triton.infer(MODEL, [images_input([bytes(21 * 2**20)])], headers=key()),
            "StatusCode.RESOURCE_EXHAUSTED",
        ),
    ]
    for call, status in refusals:
        with pytest.raises(InferenceServerException) as refused:
            call()
        assert refused.value.status() == status, refused.value.message()
    with pytest.raises(InferenceServerException) as refused:
        triton.infer(MODEL, [images_input([mixed_batch[0].data, b"\x89PNG not really"])], headers=key())
    assert refused.value.message().startswith("image 1 of the batch: ")


def test_rest_and_grpc_shed_against_one_limit(v2_gateway: LiveV2, triton: grpcclient.InferenceServerClient) -> None:
    """With every in-flight slot taken, both transports answer overloaded at once; the probes still answer."""
    in_flight = v2_gateway.app.state.in_flight
    taken, in_flight.count = in_flight.count, in_flight.limit
    try:
        response = v2_gateway.http.post(f"/v2/models/{MODEL}/infer", json={"inputs": []})
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        message = f"the gateway is at its limit of {in_flight.limit} requests in flight; retry later"
        assert response.json() == {"error": message}
        assert v2_gateway.http.get("/v2/health/ready").json() == {"ready": True}
        with pytest.raises(InferenceServerException) as refused:
            triton.get_model_metadata(MODEL, headers=key())
        assert refused.value.status() == "StatusCode.UNAVAILABLE"
        assert triton.is_server_ready()
    finally:
        in_flight.count = taken


def test_rest_limits_and_routes(v2_gateway: LiveV2) -> None:
    too_large = v2_gateway.http.post(f"/v2/models/{MODEL}/infer", content=bytes(21 * 2**20))
    assert (too_large.status_code, list(too_large.json())) == (413, ["error"])
    assert v2_gateway.http.get("/v2/health/live", headers={"x-api-key": ""}).json() == {"live": True}
    paths = v2_gateway.http.get("/openapi.json").json()["paths"]
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{model_name}/infer",
                 "/v2/models/{model_name}/versions/{model_version}/infer", "/v2/models/{model_name}/ready"):
        assert path in paths
    assert 'route="/v2/models/{model_name}/infer",status="413"' in v2_gateway.http.get("/metrics").text
