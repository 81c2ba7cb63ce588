from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

PREDICTION_KEYS = {
    "label", "probability", "threshold", "operating_point", "model_name", "model_version", "request_id", "subtype"
}


@pytest.fixture(scope="module")
def fullres_answers(gateway: TestClient, fullres_samples: list[tuple[Path, str]]) -> list[tuple[str, dict]]:
    """(true label, response body) of each full-resolution original, sent as multipart."""
    answers = []
    for path, truth in fullres_samples:
        response = gateway.post("/v1/predict", files={"file": ("x.jpeg", path.read_bytes(), "image/jpeg")})
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == response.json()["request_id"]
        answers.append((truth, response.json()))
    return answers


def test_fullres_samples_multipart(fullres_answers: list[tuple[str, dict]]) -> None:
    for _, body in fullres_answers:
        assert set(body) == PREDICTION_KEYS
        assert body["operating_point"] == "screening"
        assert body["label"] == ("PNEUMONIA" if body["probability"] >= body["threshold"] else "NORMAL")
    positives = [body["probability"] for truth, body in fullres_answers if truth == "PNEUMONIA"]
    negatives = [body["probability"] for truth, body in fullres_answers if truth == "NORMAL"]
    assert np.median(positives) > np.median(negatives)


def test_fullres_pneumonia_all_flagged(fullres_answers: list[tuple[str, dict]]) -> None:
    missed = [round(b["probability"], 3) for truth, b in fullres_answers if truth == "PNEUMONIA" != b["label"]]
    false_alarms = [round(b["probability"], 3) for truth, b in fullres_answers if truth == "NORMAL" != b["label"]]
    assert not missed, f"PNEUMONIA originals under the threshold: {missed}; NORMAL ones over it: {false_alarms}"


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
