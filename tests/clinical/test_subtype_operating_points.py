"""Subtype probabilities beside the binary answer, and operating points chosen per request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from radiograph.contract import ModelMetadata
from serving.config import Settings
from serving.main import create_app
from tests.clinical.fakes import FixedBackend
from tests.clinical.pictures import Picture


def predict(gateway: TestClient, data: bytes, query: str = "") -> dict[str, object]:
    response = gateway.post(f"/v1/predict{query}", content=data, headers={"content-type": "image/jpeg"})
    assert response.status_code == 200, response.text
    return response.json()


def test_subtype_only_for_pneumonia(
    gateway: TestClient, pictures: list[Picture], model_metadata: ModelMetadata
) -> None:
    assert model_metadata.subtype_labels, "the shipped model is expected to have a subtype head"
    labels = set()
    for picture in pictures:
        body = predict(gateway, picture.jpeg)
        labels.add(body["label"])
        if body["label"] == model_metadata.positive_label:
            subtype = body["subtype"]
            assert list(subtype) == list(model_metadata.subtype_labels)
            assert sum(subtype.values()) == pytest.approx(1.0, abs=1e-4)
        else:
            assert body["subtype"] is None
    assert labels == set(model_metadata.labels), "the samples should cover both answers"


def test_subtype_agrees_with_the_file_names(gateway: TestClient, pictures: list[Picture]) -> None:
    """The training files are named `personN_bacteria_M` / `personN_virus_M`: most should agree."""
    pneumonia = [p for p in pictures if p.truth == "PNEUMONIA"]
    named = ["virus" if "_virus_" in p.name else "bacteria" for p in pneumonia]
    assert set(named) == {"bacteria", "virus"}, "the samples should hold both subtypes"
    subtypes = [predict(gateway, p.jpeg)["subtype"] or {} for p in pneumonia]
    agree = [bool(s) and max(s, key=s.get) == name for s, name in zip(subtypes, named, strict=True)]
    assert sum(agree) >= len(agree) - 1, list(zip(named, subtypes, strict=True))


@pytest.mark.parametrize("name", ["screening", "balanced"])
def test_operating_point_thresholds_come_from_the_model(
    gateway: TestClient, pictures: list[Picture], model_metadata: ModelMetadata, name: str
) -> None:
    expected = model_metadata.operating_points[name].threshold
    for picture in pictures:
        body = predict(gateway, picture.jpeg, f"?operating_point={name}")
        assert (body["operating_point"], body["threshold"]) == (name, expected)
        assert body["label"] == model_metadata.label_for(body["probability"], expected)


def test_default_operating_point_is_the_models(
    gateway: TestClient, pictures: list[Picture], model_metadata: ModelMetadata
) -> None:
    body = predict(gateway, pictures[0].jpeg)
    default = model_metadata.default_operating_point
    assert (body["operating_point"], body["threshold"]) == (default, model_metadata.operating_points[default].threshold)


def test_screening_is_at_least_as_sensitive_as_balanced(model_metadata: ModelMetadata) -> None:
    points = model_metadata.operating_points
    assert points["screening"].threshold <= points["balanced"].threshold


def test_unknown_operating_point_is_422(gateway: TestClient, pictures: list[Picture]) -> None:
    response = gateway.post(
        "/v1/predict?operating_point=aggressive", content=pictures[0].jpeg, headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_operating_point"
    assert "balanced" in response.json()["error"]["message"]


@pytest.fixture(scope="module")
def fake_gateway(model_metadata: ModelMetadata) -> Iterator[TestClient]:
    app = create_app(Settings(), backend=FixedBackend(model_metadata, 0.99), registry=CollectorRegistry())
    with TestClient(app) as client:
        yield client


def test_without_subtype_head_subtype_is_null(fake_gateway: TestClient, pictures: list[Picture]) -> None:
    body = predict(fake_gateway, pictures[0].jpeg)
    assert (body["label"], body["model_version"], body["subtype"]) == ("PNEUMONIA", 7, None)


def test_backend_without_explain_is_501(fake_gateway: TestClient, pictures: list[Picture]) -> None:
    response = fake_gateway.post(
        "/v1/explain", content=pictures[0].jpeg, headers={"content-type": "image/jpeg", "x-request-id": "r-501"}
    )
    assert response.status_code == 501
    assert response.json() == {
        "error": {
            "code": "not_supported",
            "message": "the fake backend cannot explain predictions",
            "request_id": "r-501",
        }
    }
