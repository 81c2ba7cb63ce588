"""The gateway's TF Serving path end to end: REST → gateway → gRPC → stand-in → SavedModel."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from devtools.live_servers import gateway_thread
from localserving import BackgroundServer
from tests.tfserving.harness import (
    TIMEOUT_S,
    embedded_tolerance,
    gateway_settings,
    metric,
    same_verdict,
    wait_for,
)

UPSTREAM_ERRORS = "gateway_upstream_errors_total"


def post_image(client: httpx.Client | TestClient, data: bytes, request_id: str | None = None) -> httpx.Response:
    headers = {"content-type": "image/jpeg"} | ({"x-request-id": request_id} if request_id else {})
    return client.post("/v1/predict", content=data, headers=headers)


def test_same_answer_as_embedded(
    grpc_gateway: httpx.Client, gateway: TestClient, fullres_samples: list[tuple[Path, str]]
) -> None:
    for path, _ in fullres_samples[::5]:
        data = path.read_bytes()
        remote, local = post_image(grpc_gateway, data).json(), post_image(gateway, data).json()
        tolerance = embedded_tolerance(gateway)  # the embedded gateway's runtime and precision
        assert same_verdict(remote, local, tolerance), (remote, local)
        assert {k: remote[k] for k in ("threshold", "operating_point", "model_name")} == {
            k: local[k] for k in ("threshold", "operating_point", "model_name")
        }
        assert remote["model_version"] == 1
        assert (remote["subtype"] is None) == (remote["label"] == "NORMAL")
        assert (local["subtype"] is None) == (local["label"] == "NORMAL")
        if remote["subtype"] and local["subtype"]:
            assert set(remote["subtype"]) == set(local["subtype"])
            if tolerance <= 1e-4:  # float32: the same subtype probabilities too
                assert all(abs(remote["subtype"][k] - v) <= 1e-4 for k, v in local["subtype"].items())


def test_explain_over_grpc_matches_embedded(
    grpc_gateway: httpx.Client, gateway: TestClient, fullres_samples: list[tuple[Path, str]]
) -> None:
    data = fullres_samples[-1][0].read_bytes()
    headers = {"content-type": "image/jpeg"}
    remote = grpc_gateway.post("/v1/explain", content=data, headers=headers)
    local = gateway.post("/v1/explain", content=data, headers=headers)
    assert remote.status_code == local.status_code == 200, remote.text
    remote_map, local_map = np.array(remote.json()["heatmap"]), np.array(local.json()["heatmap"])
    assert remote_map.shape == local_map.shape and remote_map.size > 1
    assert np.abs(remote_map - local_map).max() <= 1e-3  # both TensorFlow's explain, rounded to 4 decimals
    assert same_verdict(remote.json(), local.json(), embedded_tolerance(gateway))  # P: the served precision's


def test_explain_on_a_model_without_the_signature_is_501(
    grpc_gateway: httpx.Client, fullres_samples: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the stand-in answers as Serving does for a signature the served version lacks: FAILED_PRECONDITION
    monkeypatch.setattr("serving.inference.tfserving.EXPLAIN_SIGNATURE", "explain_v0")
    data = fullres_samples[0][0].read_bytes()
    response = grpc_gateway.post("/v1/explain", content=data, headers={"content-type": "image/jpeg"})
    assert response.status_code == 501, response.text
    assert response.json()["error"]["code"] == "not_supported"
    assert grpc_gateway.post("/v1/predict", content=data, headers={"content-type": "image/jpeg"}).status_code == 200


def test_readiness_and_info_name_the_backend(grpc_gateway: httpx.Client, fullres_samples) -> None:
    assert grpc_gateway.get("/readyz").json() == {"ready": True, "backend": "tfserving", "model_name": "pneumonia"}
    post_image(grpc_gateway, fullres_samples[0][0].read_bytes())
    info = {"backend": "tfserving", "model_name": "pneumonia", "model_version": "1"}
    assert metric(grpc_gateway, "gateway_model_info", info) == 1


def test_request_id_travels_to_serving(grpc_gateway: httpx.Client, serving: BackgroundServer, fullres_samples) -> None:
    response = post_image(grpc_gateway, fullres_samples[1][0].read_bytes(), request_id="pacs-4711")
    assert response.status_code == 200
    assert "pacs-4711" in serving.request_ids


def test_stopped_server_503_then_recovery(
    grpc_gateway: httpx.Client, serving: BackgroundServer, fullres_samples
) -> None:
    data = fullres_samples[2][0].read_bytes()
    assert post_image(grpc_gateway, data).status_code == 200
    serving.stop()
    started = time.monotonic()
    response = post_image(grpc_gateway, data, request_id="down-1")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["error"]["code"] == "upstream_unavailable"
    assert body["error"]["message"].startswith("TF Serving answered UNAVAILABLE")
    assert body["error"]["request_id"] == "down-1"
    assert elapsed <= TIMEOUT_S + 0.5, elapsed
    wait_for(lambda: grpc_gateway.get("/readyz").status_code == 503, 3, "/readyz to turn false")
    assert grpc_gateway.get("/readyz").json()["ready"] is False
    assert grpc_gateway.get("/healthz").json() == {"status": "ok"}

    serving.start()  # same port; the gateway is not touched
    wait_for(lambda: post_image(grpc_gateway, data).status_code == 200, 10, "the gateway to recover")
    wait_for(lambda: grpc_gateway.get("/readyz").status_code == 200, 3, "/readyz to turn true")


def test_slow_server_504_at_the_deadline(
    grpc_gateway: httpx.Client, serving: BackgroundServer, fullres_samples
) -> None:
    data = fullres_samples[3][0].read_bytes()
    assert post_image(grpc_gateway, data).status_code == 200  # metadata cached: only Predict is slow
    before = metric(grpc_gateway, UPSTREAM_ERRORS, {"code": "DEADLINE_EXCEEDED"})
    serving.faults.delay_s = TIMEOUT_S + 1.0
    started = time.monotonic()
    response = post_image(grpc_gateway, data)
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert "DEADLINE_EXCEEDED" in response.json()["error"]["message"]
    assert TIMEOUT_S - 0.05 <= elapsed <= TIMEOUT_S + 0.5, elapsed
    assert metric(grpc_gateway, UPSTREAM_ERRORS, {"code": "DEADLINE_EXCEEDED"}) == before + 1


def test_overloaded_server_retried_then_503(
    grpc_gateway: httpx.Client, serving: BackgroundServer, fullres_samples
) -> None:
    data = fullres_samples[4][0].read_bytes()
    assert post_image(grpc_gateway, data).status_code == 200
    before = metric(grpc_gateway, UPSTREAM_ERRORS, {"code": "RESOURCE_EXHAUSTED"})
    serving.faults.fail_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    response = post_image(grpc_gateway, data, request_id="busy-1")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "error": {
            "code": "upstream_overloaded",
            "message": "TF Serving answered RESOURCE_EXHAUSTED: fault injected by the local stand-in",
            "request_id": "busy-1",
        }
    }
    attempts = 3  # Settings.upstream_retry_attempts
    assert serving.request_ids.count("busy-1") == attempts
    assert metric(grpc_gateway, UPSTREAM_ERRORS, {"code": "RESOURCE_EXHAUSTED"}) == before + attempts


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION])
def test_rejected_request_502_not_retried(
    grpc_gateway: httpx.Client, serving: BackgroundServer, fullres_samples, code: grpc.StatusCode
) -> None:
    data = fullres_samples[5][0].read_bytes()
    assert post_image(grpc_gateway, data).status_code == 200
    before = metric(grpc_gateway, UPSTREAM_ERRORS, {"code": code.name})
    serving.faults.fail_code = code
    response = post_image(grpc_gateway, data, request_id=f"reject-{code.name}")
    assert response.status_code == 502
    assert "retry-after" not in response.headers
    assert response.json()["error"] == {
        "code": "upstream_error",
        "message": f"TF Serving answered {code.name}: fault injected by the local stand-in",
        "request_id": f"reject-{code.name}",
    }
    assert serving.request_ids.count(f"reject-{code.name}") == 1
    assert metric(grpc_gateway, UPSTREAM_ERRORS, {"code": code.name}) == before + 1


def test_unknown_model_502_and_not_ready(local_serving: BackgroundServer, fullres_samples) -> None:
    with gateway_thread(gateway_settings(local_serving.address, model_name="xray-missing")) as client:
        assert client.get("/readyz").json() == {"ready": False, "backend": "tfserving", "model_name": "xray-missing"}
        response = post_image(client, fullres_samples[0][0].read_bytes())
        assert response.status_code == 502
        error = response.json()["error"]
        assert error["code"] == "upstream_error"
        assert error["message"] == "TF Serving answered NOT_FOUND: Could not find any versions of model xray-missing"
        assert metric(client, UPSTREAM_ERRORS, {"code": "NOT_FOUND"}) >= 1
        assert client.get("/healthz").status_code == 200
