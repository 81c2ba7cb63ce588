"""The Open Inference Protocol's REST API, driven by tritonclient.http (the binary tensor extension by default),
against a real gateway: metadata and readiness, a mixed batch scored as /v1 scores it, the operating point, the
pixels input, and the errors."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.v2.live import MODEL, LiveV2, Picture, key, png

SUBTYPES = ("normal", "bacteria", "virus")


def images_input(images: list[bytes]) -> httpclient.InferInput:
    tensor = httpclient.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_))
    return tensor


@pytest.fixture(scope="module")
def triton(v2_gateway: LiveV2) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(v2_gateway.address, network_timeout=120)


def test_metadata_and_readiness(triton: httpclient.InferenceServerClient, v1_answers: list[dict]) -> None:
    assert triton.is_server_live() and triton.is_server_ready()  # probes: open, no key
    assert triton.is_model_ready(MODEL, headers=key())
    assert "binary_tensor_data" in triton.get_server_metadata(headers=key())["extensions"]
    version = str(v1_answers[0]["model_version"])
    metadata = triton.get_model_metadata(MODEL, headers=key())
    assert (metadata["name"], metadata["versions"]) == (MODEL, [version])
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        ("image", "BYTES", [-1]), ("pixels", "UINT8", [-1, 224, 224, 1])
    ]
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["outputs"]] == [
        ("probability", "FP32", [-1]), ("label", "BYTES", [-1]), ("threshold", "FP64", [-1]),
        ("subtype_probabilities", "FP32", [-1, 3]),
    ]
    assert metadata["parameters"]["threshold_screening"] == v1_answers[0]["threshold"]
    assert metadata["parameters"]["subtype_labels"] == ",".join(SUBTYPES)
    assert triton.get_model_metadata(MODEL, model_version=version, headers=key()) == metadata
    assert triton.is_model_ready(MODEL, model_version=version, headers=key())
    for name, other_version in ((MODEL, "999"), ("other-model", "")):
        with pytest.raises(InferenceServerException) as refused:
            triton.get_model_metadata(name, model_version=other_version, headers=key())
        assert refused.value.status() == "404"
        assert not triton.is_model_ready(name, model_version=other_version, headers=key())


def test_a_mixed_batch_scores_as_v1_predict(
    triton: httpclient.InferenceServerClient, mixed_batch: list[Picture], v1_answers: list[dict]
) -> None:
    result = triton.infer(MODEL, [images_input([p.data for p in mixed_batch])], headers=key())
    np.testing.assert_allclose(result.as_numpy("probability"), [a["probability"] for a in v1_answers], atol=1e-6)
    assert [label.decode() for label in result.as_numpy("label")] == [a["label"] for a in v1_answers]
    assert result.as_numpy("threshold").tolist() == [a["threshold"] for a in v1_answers]
    for row, answer in zip(result.as_numpy("subtype_probabilities").tolist(), v1_answers, strict=True):
        expected = [answer["subtype"][name] for name in SUBTYPES] if answer["subtype"] else [-1.0] * 3
        np.testing.assert_allclose(row, expected, atol=1e-6)
    response = result.get_response()
    assert response["model_version"] == str(v1_answers[0]["model_version"])
    assert response["parameters"] == {"operating_point": "screening"}
    assert {answer["label"] for answer in v1_answers} == {"NORMAL", "PNEUMONIA"}  # the batch tests both


def test_the_operating_point_is_a_request_parameter(
    v2_gateway: LiveV2, triton: httpclient.InferenceServerClient, mixed_batch: list[Picture], v1_answers: list[dict]
) -> None:
    # a picture whose P lies between the two thresholds: its label depends on the point
    answers = [
        v2_gateway.http.post(
            "/v1/predict?operating_point=balanced", content=picture.data, headers={"content-type": picture.media_type}
        ).json()
        for picture in mixed_batch
    ]
    between = [i for i, (s, b) in enumerate(zip(v1_answers, answers, strict=True))
               if (s["label"], b["label"]) == ("PNEUMONIA", "NORMAL")]
    assert between, f"no picture of the batch scores between the thresholds: {[a['probability'] for a in answers]}"
    picture, balanced = mixed_batch[between[0]], answers[between[0]]
    names = ("probability", "label", "threshold")
    outputs = [httpclient.InferRequestedOutput(name, binary_data=False) for name in names]
    result = triton.infer(
        MODEL, [images_input([picture.data])], outputs=outputs, parameters={"operating_point": "balanced"},
        headers=key(),
    )
    assert result.get_response()["parameters"] == {"operating_point": "balanced"}
    assert [output["name"] for output in result.get_response()["outputs"]] == list(names)
    assert result.as_numpy("threshold").tolist() == [balanced["threshold"]]
    assert result.as_numpy("label").tolist() == ["NORMAL"]  # JSON output: a string
    assert abs(float(result.as_numpy("probability")[0]) - balanced["probability"]) <= 1e-6
    with pytest.raises(InferenceServerException) as refused:
        triton.infer(MODEL, [images_input([picture.data])], parameters={"operating_point": "lenient"}, headers=key())
    assert refused.value.status() == "400" and "'lenient'" in refused.value.message()


def test_pixels_at_the_model_input_size_are_scored_as_sent(
    v2_gateway: LiveV2, triton: httpclient.InferenceServerClient, mixed_batch: list[Picture]
) -> None:
    """A UINT8 tensor in JSON (not binary), against /v1 scoring the same pixels as a 224×224 PNG (taken as is)."""
    pixels = np.random.default_rng(7).integers(0, 256, (224, 224), dtype=np.uint8)
    v1 = v2_gateway.http.post("/v1/predict", content=png(pixels), headers={"content-type": "image/png"}).json()
    tensor = httpclient.InferInput("pixels", [1, 224, 224, 1], "UINT8")
    tensor.set_data_from_numpy(pixels[None, ..., None], binary_data=False)
    result = triton.infer(MODEL, [tensor], outputs=[httpclient.InferRequestedOutput("probability")], headers=key())
    assert abs(float(result.as_numpy("probability")[0]) - v1["probability"]) <= 1e-6
    small = httpclient.InferInput("pixels", [1, 100, 100, 1], "UINT8")
    small.set_data_from_numpy(np.zeros((1, 100, 100, 1), np.uint8))
    with pytest.raises(InferenceServerException) as refused:
        triton.infer(MODEL, [small], headers=key())
    assert refused.value.status() == "400" and "[n, 224, 224]" in refused.value.message()


def test_a_corrupt_image_fails_the_batch_and_is_named(
    v2_gateway: LiveV2, triton: httpclient.InferenceServerClient, mixed_batch: list[Picture]
) -> None:
    jpeg, corrupt = mixed_batch[0].data, mixed_batch[3].data[:3000]  # a JPEG cut short
    with pytest.raises(InferenceServerException) as refused:
        triton.infer(MODEL, [images_input([jpeg, mixed_batch[2].data, corrupt])], headers=key())
    assert refused.value.status() == "400"
    assert refused.value.message().startswith("image 2 of the batch: ")
    # the protocol's error shape, exactly; JSON with base64 elements (MLServer's convention) this time
    data = [base64.b64encode(item).decode() for item in (b"not an image", jpeg)]
    body = {"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "parameters": {"content_type": "base64"},
                        "data": data}]}
    response = v2_gateway.http.post(f"/v2/models/{MODEL}/infer", json=body)
    assert (response.status_code, list(response.json())) == (400, ["error"])
    assert response.json()["error"].startswith("image 0 of the batch: ")


def test_a_missing_or_wrong_key_is_401(triton: httpclient.InferenceServerClient, mixed_batch: list[Picture]) -> None:
    for headers in (None, {"x-api-key": "not-the-key-0123456789"}):
        with pytest.raises(InferenceServerException) as refused:
            triton.infer(MODEL, [images_input([mixed_batch[0].data])], headers=headers)
        assert refused.value.status() == "401" and "API key" in refused.value.message()
        with pytest.raises(InferenceServerException) as refused:
            triton.get_model_metadata(MODEL, headers=headers)
        assert refused.value.status() == "401"
