"""The stand-in answers like TF Serving: statuses, metadata, version choice and its error codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from localserving import BackgroundServer
from localserving.signatures import warmup_requests
from radiograph.contract import EXPLAIN_SIGNATURE, SERVING_SIGNATURE, resolve_model_dir
from serving.inference.tensor_protos import to_array, uint8_tensor

AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE


@pytest.fixture(scope="module")
def channel(local_serving: BackgroundServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(local_serving.address) as opened:
        yield opened


def predict_request(**spec: object) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = str(spec.pop("name", "pneumonia"))
    if "version" in spec:
        request.model_spec.version.value = int(spec.pop("version"))  # type: ignore[call-overload]
    if "label" in spec:
        request.model_spec.version_label = str(spec.pop("label"))
    request.model_spec.signature_name = str(spec.pop("signature", "serving_default"))
    request.inputs["image"].CopyFrom(uint8_tensor(np.zeros((2, 224, 224, 1), np.uint8)))
    return request


def test_model_status(channel: grpc.Channel) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "pneumonia"
    (status,) = stub.GetModelStatus(request, timeout=5).model_version_status
    assert (status.version, status.state, status.status.error_code) == (1, AVAILABLE, 0)
    request.model_spec.version.value = 9
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetModelStatus(request, timeout=5)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_model_metadata_lists_signatures(channel: grpc.Channel) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "pneumonia"
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=5)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "metadata"} <= set(signatures.signature_def)
    assert "image" in signatures.signature_def["serving_default"].inputs
    assert response.model_spec.version.value == 1


def test_predict_by_label_reports_the_version(channel: grpc.Channel) -> None:
    request = predict_request(label="stable")
    request.output_filter.append("probability")
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    assert response.model_spec.version.value == 1
    assert list(response.outputs) == ["probability"]
    assert to_array(response.outputs["probability"]).shape == (2,)


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"name": "other"}, grpc.StatusCode.NOT_FOUND),
        ({"version": 7}, grpc.StatusCode.NOT_FOUND),
        ({"label": "canary"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"signature": "nope"}, grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
def test_predict_errors(channel: grpc.Channel, spec: dict[str, object], code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(predict_request(**spec), timeout=10)
    assert raised.value.code() == code


def test_predict_refuses_wrong_dtype(channel: grpc.Channel) -> None:
    request = predict_request()
    request.inputs["image"].dtype = 1  # DT_FLOAT, with uint8 bytes
    with pytest.raises(grpc.RpcError) as raised:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_shipped_version_warms_every_signature_the_gateway_calls(shipped_model_dir: Path) -> None:
    """Serving replays these records at load, so neither a first predict nor a first explain is cold."""
    latest, _ = resolve_model_dir(shipped_model_dir)
    signatures = {request.model_spec.signature_name for request in warmup_requests(latest)}
    assert signatures == {SERVING_SIGNATURE, EXPLAIN_SIGNATURE}
