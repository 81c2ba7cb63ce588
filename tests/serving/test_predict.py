from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

PREDICTION_KEYS = {
    "label", "probability", "threshold", "operating_point", "model_name", "model_version", "request_id", "subtype"
}


def test_fullres_samples_multipart(gateway: TestClient, fullres_samples: list[tuple[Path, str]]) -> None:
    labels = {}
    for path, truth in fullres_samples:
        response = gateway.post("/v1/predict", files={"file": ("x.jpeg", path.read_bytes(), "image/jpeg")})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == PREDICTION_KEYS
        assert body["operating_point"] == "screening"
        assert body["label"] == ("PNEUMONIA" if body["probability"] >= body["threshold"] else "NORMAL")
        assert response.headers["x-request-id"] == body["request_id"]
        labels[path.name] = (truth, body["label"])
    assert all(pred == "PNEUMONIA" for truth, pred in labels.values() if truth == "PNEUMONIA"), labels


def test_raw_body_equals_multipart(gateway: TestClient, fullres_samples: list[tuple[Path, str]]) -> None:
    data = fullres_samples[0][0].read_bytes()
    raw = gateway.post("/v1/predict", content=data, headers={"content-type": "image/jpeg"}).json()
    multipart = gateway.post("/v1/predict", files={"file": ("a.jpg", data, "image/jpeg")}).json()
    assert raw["probability"] == multipart["probability"]


def test_request_id_is_taken_from_header(gateway: TestClient, fullres_samples: list[tuple[Path, str]]) -> None:
    data = fullres_samples[1][0].read_bytes()
    response = gateway.post(
        "/v1/predict", content=data, headers={"content-type": "image/jpeg", "x-request-id": "pacs-42"}
    )
    assert response.json()["request_id"] == "pacs-42"
    assert response.headers["x-request-id"] == "pacs-42"
