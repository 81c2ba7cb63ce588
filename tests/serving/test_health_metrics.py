from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_health_and_readiness(gateway: TestClient) -> None:
    assert gateway.get("/healthz").json() == {"status": "ok"}
    ready = gateway.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "backend": "embedded", "model_name": "pneumonia"}


def test_metrics_move_with_requests(gateway: TestClient, fullres_samples) -> None:
    before = gateway.get("/metrics").text
    data = fullres_samples[-1][0].read_bytes()
    label = gateway.post("/v1/predict", content=data, headers={"content-type": "image/jpeg"}).json()["label"]
    gateway.post("/v1/predict", content=b"junk", headers={"content-type": "image/jpeg"})
    after = gateway.get("/metrics").text
    route = {"route": "/v1/predict"}
    ok = route | {"status": "200", "label": label}
    assert sample(after, "gateway_requests_total", ok) == sample(before, "gateway_requests_total", ok) + 1
    bad = route | {"status": "415", "label": ""}
    assert sample(after, "gateway_requests_total", bad) == sample(before, "gateway_requests_total", bad) + 1
    for stage in ("decode", "preprocess", "inference", "total"):
        key = {"stage": stage}
        assert sample(after, "gateway_stage_duration_seconds_count", key) > sample(
            before, "gateway_stage_duration_seconds_count", key
        )
    assert sample(after, "gateway_model_info", {"backend": "embedded", "model_name": "pneumonia"}) == 1


def test_openapi_documents_predict(gateway: TestClient) -> None:
    schema = gateway.get("/openapi.json").json()
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/jpeg", "image/png"} <= set(body)
    assert gateway.get("/docs").status_code == 200
