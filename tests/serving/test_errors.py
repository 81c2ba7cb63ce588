"""Every client mistake gets a 4xx with the one JSON error shape."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image


def error(response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return response.status_code, body["error"]["code"]


def jpeg_bytes(size: tuple[int, int] = (300, 300)) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, 90).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_empty_raw_body(gateway: TestClient) -> None:
    assert error(gateway.post("/v1/predict", content=b"", headers={"content-type": "image/jpeg"})) == (
        400,
        "empty_body",
    )


def test_empty_multipart_file(gateway: TestClient) -> None:
    assert error(gateway.post("/v1/predict", files={"file": ("a.jpg", b"", "image/jpeg")})) == (400, "empty_body")


def test_missing_multipart_field(gateway: TestClient) -> None:
    assert error(gateway.post("/v1/predict", files={"other": ("a.jpg", jpeg_bytes(), "image/jpeg")})) == (
        400,
        "bad_request",
    )


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "image/gif"])
def test_unsupported_content_type(gateway: TestClient, content_type: str) -> None:
    response = gateway.post("/v1/predict", content=jpeg_bytes(), headers={"content-type": content_type})
    assert error(response) == (415, "unsupported_media_type")


def test_text_sent_as_jpeg(gateway: TestClient) -> None:
    response = gateway.post("/v1/predict", content=b"hello, not an image", headers={"content-type": "image/jpeg"})
    assert error(response) == (415, "unsupported_media_type")


def test_gif_bytes_in_multipart(gateway: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("L", (64, 64)).save(buffer, format="GIF")
    response = gateway.post("/v1/predict", files={"file": ("a.gif", buffer.getvalue(), "image/gif")})
    assert error(response) == (415, "unsupported_media_type")


def test_truncated_jpeg(gateway: TestClient) -> None:
    data = jpeg_bytes((640, 640))
    response = gateway.post("/v1/predict", content=data[: len(data) // 2], headers={"content-type": "image/jpeg"})
    assert error(response) == (422, "undecodable_image")


def test_body_over_limit(gateway: TestClient) -> None:
    limit = gateway.app.state.settings.max_body_bytes
    response = gateway.post("/v1/predict", content=b"\xff" * (limit + 1), headers={"content-type": "image/jpeg"})
    assert error(response) == (413, "payload_too_large")


def test_unknown_operating_point(gateway: TestClient) -> None:
    response = gateway.post(
        "/v1/predict?operating_point=nonsense", content=jpeg_bytes(), headers={"content-type": "image/jpeg"}
    )
    assert error(response) == (422, "unknown_operating_point")


def test_unknown_route(gateway: TestClient) -> None:
    assert error(gateway.get("/v1/nothing")) == (404, "not_found")


def test_service_still_answers_after_errors(gateway: TestClient) -> None:
    gateway.post("/v1/predict", content=b"\x00" * 10, headers={"content-type": "image/png"})
    assert gateway.get("/healthz").json() == {"status": "ok"}
    response = gateway.post("/v1/predict", content=jpeg_bytes(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 200
