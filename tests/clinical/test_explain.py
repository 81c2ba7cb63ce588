"""`POST /v1/explain`: the class activation map from the model's `explain` signature, and its overlay."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from devtools import dicom_files
from radiograph.contract import ModelMetadata
from radiograph.overlay import overlay
from tests.clinical.pictures import Picture

FEATURE_STRIDE = 32  # the backbone's total stride: a 224 px input gives a 7×7 feature grid


def explain(gateway: TestClient, data: bytes, media: str = "image/jpeg", **headers: str) -> dict[str, object]:
    response = gateway.post("/v1/explain", content=data, headers={"content-type": media, **headers})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def extremes(pictures: list[Picture]) -> tuple[Picture, Picture]:
    """The most confidently NORMAL and the most confidently PNEUMONIA of the sample pictures."""
    normal = min((p for p in pictures if p.truth == "NORMAL"), key=lambda p: p.probability)
    pneumonia = max((p for p in pictures if p.truth == "PNEUMONIA"), key=lambda p: p.probability)
    return normal, pneumonia


def test_map_shape_range_and_verdict(
    gateway: TestClient, extremes: tuple[Picture, Picture], model_metadata: ModelMetadata
) -> None:
    grid = (model_metadata.input_height // FEATURE_STRIDE, model_metadata.input_width // FEATURE_STRIDE)
    for picture in extremes:
        body = explain(gateway, picture.jpeg)
        assert set(body) == {
            "label", "probability", "threshold", "operating_point", "model_name", "model_version", "request_id",
            "heatmap", "overlay_png",
        }
        heatmap = np.array(body["heatmap"])
        assert heatmap.shape == grid and heatmap.min() >= 0.0
        if heatmap.max() == 0.0:  # no cell holds evidence for pneumonia: only a film read as NORMAL may say so
            assert body["label"] == "NORMAL"
        else:
            assert heatmap.max() == pytest.approx(1.0, abs=1e-4)  # max-normalised
            assert heatmap.std() > 0.05, "a uniform map says nothing"
        assert body["probability"] == pytest.approx(picture.probability, abs=1e-5)  # same model, same answer
        assert body["label"] == ("PNEUMONIA" if body["probability"] >= body["threshold"] else "NORMAL")


def test_deterministic(gateway: TestClient, extremes: tuple[Picture, Picture]) -> None:
    first, second = (explain(gateway, extremes[1].jpeg) for _ in range(2))
    assert first["heatmap"] == second["heatmap"]
    assert first["overlay_png"] == second["overlay_png"]


def test_normal_and_pneumonia_maps_differ(gateway: TestClient, extremes: tuple[Picture, Picture]) -> None:
    normal, pneumonia = (np.array(explain(gateway, p.jpeg)["heatmap"]) for p in extremes)
    assert np.abs(normal - pneumonia).mean() > 0.05


def test_overlay_is_the_radiograph_with_colour_where_the_model_looked(
    gateway: TestClient, extremes: tuple[Picture, Picture], model_metadata: ModelMetadata
) -> None:
    body = explain(gateway, extremes[1].jpeg)
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["overlay_png"]))).convert("RGB")).astype(int)
    assert overlay.shape == (model_metadata.input_height, model_metadata.input_width, 3)
    heatmap = np.array(body["heatmap"])
    hot = np.unravel_index(heatmap.argmax(), heatmap.shape)
    cold = np.unravel_index(heatmap.argmin(), heatmap.shape)

    def colourfulness(cell: tuple[int, ...]) -> float:
        block = overlay[cell[0] * FEATURE_STRIDE : (cell[0] + 1) * FEATURE_STRIDE,
                        cell[1] * FEATURE_STRIDE : (cell[1] + 1) * FEATURE_STRIDE]
        return float((block.max(axis=-1) - block.min(axis=-1)).mean())

    assert colourfulness(hot) > 40 > colourfulness(cold)  # grey stays grey where the map is cold


def test_png_by_accept_header(gateway: TestClient, extremes: tuple[Picture, Picture]) -> None:
    data = extremes[1].jpeg
    as_json = explain(gateway, data)
    response = gateway.post("/v1/explain", content=data, headers={"content-type": "image/jpeg", "accept": "image/png"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == base64.b64decode(as_json["overlay_png"])
    assert response.headers["x-label"] == as_json["label"]
    assert float(response.headers["x-probability"]) == pytest.approx(as_json["probability"], abs=1e-6)
    assert float(response.headers["x-threshold"]) == pytest.approx(as_json["threshold"], abs=1e-6)
    assert response.headers["x-operating-point"] == as_json["operating_point"]
    assert response.headers["x-model-version"] == str(as_json["model_version"])


def test_clear_film_overlay_stays_grey(
    gateway: TestClient, extremes: tuple[Picture, Picture], tmp_path: Path
) -> None:
    """The overlay's colour scales with P(pneumonia): the clearest NORMAL film is far less coloured than the
    most certain PNEUMONIA one. Saves both side by side (`WEB_SCREENSHOT_DIR=reports/clinical` refreshes
    the figure in docs/clinical.md and the README)."""
    headers = {"content-type": "image/jpeg", "accept": "image/png"}
    responses = [gateway.post("/v1/explain", content=p.jpeg, headers=headers) for p in extremes]
    overlays = [Image.open(io.BytesIO(r.content)).convert("RGB") for r in responses]
    colour = [float(np.ptp(np.asarray(o, dtype=int), axis=-1).mean()) for o in overlays]
    assert colour[0] * 3 < colour[1], colour
    scale, caption = 2, 24
    width, height = overlays[0].width * scale, overlays[0].height * scale
    figure = Image.new("RGB", (2 * width + 8, height + caption), "white")
    draw = ImageDraw.Draw(figure)
    for index, (picture, response, shown) in enumerate(zip(extremes, responses, overlays, strict=True)):
        left = index * (width + 8)
        figure.paste(shown.resize((width, height), Image.Resampling.BICUBIC), (left, caption))
        verdict = response.headers
        text = (f"{picture.truth} sample: {verdict['x-label']}, P(pneumonia)="
                f"{float(verdict['x-probability']):.3f}, threshold {float(verdict['x-threshold']):.3f}")
        draw.text((left + 4, 6), text, fill="black")
    out = Path(os.environ.get("WEB_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    figure.save(out / "heatmaps.png")


def test_dicom_explains_like_its_jpeg(gateway: TestClient, extremes: tuple[Picture, Picture]) -> None:
    picture = extremes[1]
    dicom = explain(gateway, dicom_files.to_bytes(dicom_files.monochrome1_8bit(picture.gray)), "application/dicom")
    assert dicom["heatmap"] == explain(gateway, picture.jpeg)["heatmap"]


def test_operating_point_applies(
    gateway: TestClient, extremes: tuple[Picture, Picture], model_metadata: ModelMetadata
) -> None:
    response = gateway.post(
        "/v1/explain?operating_point=balanced", content=extremes[0].jpeg, headers={"content-type": "image/jpeg"}
    )
    body = response.json()
    assert body["operating_point"] == "balanced"
    assert body["threshold"] == model_metadata.operating_points["balanced"].threshold


def test_bad_input_is_a_json_4xx(gateway: TestClient) -> None:
    response = gateway.post("/v1/explain", content=b"not an image", headers={"content-type": "image/png"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    unknown = gateway.post("/v1/explain?operating_point=nope", content=b"x", headers={"content-type": "image/png"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "unknown_operating_point")


def test_overlay_fades_with_strength() -> None:
    pixels = np.full((224, 224), 100, np.uint8)
    heatmap = np.zeros((7, 7), np.float32)
    heatmap[3, 3] = 1.0
    assert (overlay(pixels, heatmap, strength=0.0) == 100).all()
    full = overlay(pixels, heatmap, strength=1.0).astype(int)
    assert (full[0, 0] == 100).all()  # cold: the radiograph as it is
    red, green, blue = full[112, 112]
    assert red > 150 > blue and red > green  # hottest cell: red over the grey
    half = overlay(pixels, heatmap, strength=0.5).astype(int)
    assert 100 < half[112, 112, 0] < red
