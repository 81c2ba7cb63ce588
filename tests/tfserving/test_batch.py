"""`POST /v1/predict/batch`: one backend call, one item per image in order, per-image errors."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from devtools.live_servers import gateway_thread
from localserving import BackgroundServer
from tests.tfserving.harness import TIMEOUT_S, embedded_tolerance, gateway_settings, same_verdict

JUNK = b"not an image at all"


def batch(client: httpx.Client | TestClient, images: list[bytes], request_id: str) -> httpx.Response:
    files = [("files", (f"{i}.jpeg", data, "image/jpeg")) for i, data in enumerate(images)]
    return client.post("/v1/predict/batch", files=files, headers={"x-request-id": request_id})


def single(client: httpx.Client | TestClient, data: bytes, request_id: str) -> httpx.Response:
    files = {"file": ("x.jpeg", data, "image/jpeg")}
    return client.post("/v1/predict", files=files, headers={"x-request-id": request_id})


def test_bad_image_in_the_middle(grpc_gateway: httpx.Client, serving: BackgroundServer, fullres_samples) -> None:
    first, last = (fullres_samples[i][0].read_bytes() for i in (0, -1))
    response = batch(grpc_gateway, [first, JUNK, last], "batch-1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == "batch-1"
    assert len(body["results"]) == 3
    junk_alone = single(grpc_gateway, JUNK, "batch-1")
    assert junk_alone.status_code in (415, 422)
    assert body["results"][1] == junk_alone.json()  # the same error, in the same shape
    for item, data in zip((body["results"][0], body["results"][2]), (first, last), strict=True):
        alone = single(grpc_gateway, data, "batch-1-alone").json()
        assert set(item) == set(alone)  # the same prediction shape as the single-image route
        assert abs(item["probability"] - alone["probability"]) <= 1e-5
        assert item["label"] == alone["label"] and item["request_id"] == "batch-1"
    assert serving.request_ids.count("batch-1") == 1  # both good images went in one Predict call


def test_same_as_embedded(grpc_gateway: httpx.Client, gateway: TestClient, fullres_samples) -> None:
    images = [path.read_bytes() for path, _ in fullres_samples[:3]] + [JUNK]
    remote = batch(grpc_gateway, images, "cmp").json()["results"]
    local = batch(gateway, images, "cmp").json()["results"]
    assert remote[3] == local[3]
    for r, e in zip(remote[:3], local[:3], strict=True):
        assert same_verdict(r, e, embedded_tolerance(gateway)), (r, e)


def test_all_bad_images_need_no_model_call(grpc_gateway: httpx.Client, serving: BackgroundServer) -> None:
    response = batch(grpc_gateway, [JUNK, b""], "all-bad")
    assert response.status_code == 200
    assert [list(item) for item in response.json()["results"]] == [["error"], ["error"]]
    assert "all-bad" not in serving.request_ids


def test_too_many_images(grpc_gateway: httpx.Client, fullres_samples) -> None:
    data = fullres_samples[0][0].read_bytes()
    response = batch(grpc_gateway, [data] * 5, "too-many")  # the test gateway allows 4
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["request_id"]) == ("bad_request", "too-many")
    assert "at most 4 image(s) per request" in error["message"]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"files": {"file": ("a.jpeg", b"x", "image/jpeg")}}, 400, "bad_request"),
        ({"content": b"x", "headers": {"content-type": "image/jpeg"}}, 415, "unsupported_media_type"),
    ],
)
def test_refused_requests(grpc_gateway: httpx.Client, kwargs: dict, status: int, code: str) -> None:
    response = grpc_gateway.post("/v1/predict/batch", **kwargs)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_openapi_documents_the_batch_route(grpc_gateway: httpx.Client) -> None:
    route = grpc_gateway.get("/openapi.json").json()["paths"]["/v1/predict/batch"]["post"]
    files = route["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["files"]
    assert files["type"] == "array"


def test_batch_deadline_grows_with_its_images(serving: BackgroundServer, fullres_samples) -> None:
    """A slow answer that cuts off one image (deadline 2 s) must not cut off a batch, whose deadline
    grows by `upstream_timeout_per_image_s` per further image."""
    images = [path.read_bytes() for path, _ in fullres_samples[:4]]
    # 4 images: 2 + 3 × 3 = 11 s, room for four full-size images on a slow or busy 2-core machine
    settings = gateway_settings(serving.address, upstream_timeout_per_image_s=3.0)
    with gateway_thread(settings) as gateway:
        assert single(gateway, images[0], "warm").status_code == 200  # metadata cached
        serving.faults.delay_s = TIMEOUT_S + 0.5
        assert single(gateway, images[0], "one-slow").json()["error"]["code"] == "upstream_timeout"
        response = batch(gateway, images, "four-slow")
        assert response.status_code == 200, response.text
        assert all("label" in item for item in response.json()["results"])  # no item cut off
