"""DICOM input: the same picture as DICOM and as JPEG gets the same answer; what cannot be read is refused."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset
from pydicom.uid import MPEG4HP41, JPEG2000Lossless, RLELossless

from devtools import dicom_files
from radiograph import dicom, imaging
from serving.config import Settings
from tests.clinical.pictures import Picture

PROBABILITY_TOLERANCE = 1e-4
"""|P(DICOM) − P(JPEG)| allowed when the DICOM file stores the JPEG's decoded pixels (any bit depth, window,
rescale, polarity or lossless compression) or the JPEG itself: the model input is then identical, so the answer
is too."""

BUILDERS: dict[str, Callable[[np.ndarray], Dataset]] = {
    "monochrome2-8bit": dicom_files.monochrome2_8bit,
    "monochrome1-inverted": dicom_files.monochrome1_8bit,
    "12bit-windowed": dicom_files.windowed_12bit,
    "16bit-rescaled-windowed": dicom_files.rescaled_16bit,
    "rle-lossless": lambda gray: dicom_files.compressed(gray, RLELossless),
    "jpeg2000-lossless": lambda gray: dicom_files.compressed(gray, JPEG2000Lossless),
}


def error_of(response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}, body
    return response.status_code, body["error"]["code"]


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_decoded_pixels_match_the_jpeg_path(pictures: list[Picture], kind: str) -> None:
    for picture in pictures[:: len(pictures) - 1]:  # one of each class
        dataset = dicom_files.windowed_12bit(picture.gray, marker=True) if kind == "12bit-windowed" else None
        decoded = imaging.load_radiograph(dicom_files.to_bytes(dataset or BUILDERS[kind](picture.gray)), 224)
        assert (decoded.source_width, decoded.source_height) == (224, 224)
        pixels = decoded.pixels.astype(int)
        expected = imaging.load_radiograph(picture.jpeg, 224).pixels.astype(int)
        if kind == "12bit-windowed":  # the burned-in marker saturates, the rest is the picture
            assert (pixels[:4, :4] == 255).all()
            pixels[:8, :8] = expected[:8, :8]
        assert np.abs(pixels - expected).max() == 0


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_same_answer_as_the_jpeg(gateway: TestClient, pictures: list[Picture], kind: str) -> None:
    for picture in pictures:
        data = dicom_files.to_bytes(BUILDERS[kind](picture.gray))
        response = gateway.post("/v1/predict", content=data, headers={"content-type": "application/dicom"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert abs(body["probability"] - picture.probability) <= PROBABILITY_TOLERANCE, (kind, picture.truth)
        if abs(picture.probability - picture.threshold) > PROBABILITY_TOLERANCE:
            expected = "PNEUMONIA" if picture.probability >= picture.threshold else "NORMAL"
            assert body["label"] == expected


def test_jpeg_baseline_dicom_of_a_fullsize_radiograph(
    gateway: TestClient, fullres_samples: list[tuple[Path, str]]
) -> None:
    """A PACS-style lossy JPEG DICOM (the original JPEG's bytes encapsulated) scores as the JPEG itself: its
    frame is decoded by the same decoder, so the model input is identical."""
    for path, _ in fullres_samples[:: len(fullres_samples) - 1]:
        jpeg = path.read_bytes()
        reference = gateway.post("/v1/predict", content=jpeg, headers={"content-type": "image/jpeg"}).json()
        rows, columns = np.asarray(imaging.decode(jpeg)).shape
        data = dicom_files.to_bytes(dicom_files.jpeg_baseline(jpeg, rows, columns))
        body = gateway.post("/v1/predict", files={"file": ("x.dcm", data, "application/dicom")}).json()
        assert abs(body["probability"] - reference["probability"]) <= PROBABILITY_TOLERANCE
        assert body["label"] == reference["label"]


@pytest.mark.parametrize("part_type", ["application/dicom", "application/octet-stream"])
def test_multipart_dicom_part_is_told_by_its_bytes(
    gateway: TestClient, pictures: list[Picture], part_type: str
) -> None:
    picture = pictures[-1]
    data = dicom_files.to_bytes(dicom_files.monochrome2_8bit(picture.gray))
    response = gateway.post("/v1/predict", files={"file": ("image.dcm", data, part_type)})
    assert response.status_code == 200, response.text
    assert response.json()["probability"] == pytest.approx(picture.probability, abs=1e-6)


def test_undecodable_transfer_syntax_is_415_naming_it(gateway: TestClient, pictures: list[Picture]) -> None:
    data = dicom_files.to_bytes(dicom_files.encapsulated(pictures[0].gray, MPEG4HP41))
    response = gateway.post("/v1/predict", content=data, headers={"content-type": "application/dicom"})
    assert error_of(response) == (415, "unsupported_media_type")
    message = response.json()["error"]["message"]
    assert "MPEG-4 AVC/H.264 High Profile / Level 4.1" in message and str(MPEG4HP41) in message


def test_ct_modality_is_422(gateway: TestClient, pictures: list[Picture]) -> None:
    data = dicom_files.to_bytes(dicom_files.monochrome2_8bit(pictures[0].gray, modality="CT"))
    response = gateway.post("/v1/predict", content=data, headers={"content-type": "application/dicom"})
    assert error_of(response) == (422, "unsupported_modality")
    assert response.json()["error"]["message"] == (
        "DICOM modality 'CT' is not a radiograph this model reads; accepted: CR, DR, DX"
    )


def test_modalities_are_configurable(monkeypatch: pytest.MonkeyPatch, pictures: list[Picture]) -> None:
    monkeypatch.setenv("GATEWAY_DICOM_MODALITIES", '["CR", "DX", "DR", "CT"]')
    allowed = Settings().dicom_modalities
    assert allowed == {"CR", "DX", "DR", "CT"}
    data = dicom_files.to_bytes(dicom_files.monochrome2_8bit(pictures[0].gray, modality="CT"))
    assert imaging.load_radiograph(data, 224, modalities=allowed).pixels.shape == (224, 224)
    with pytest.raises(dicom.UnsupportedModality):
        imaging.load_radiograph(data, 224)


def _multiframe(gray: np.ndarray) -> Dataset:
    ds = dicom_files.monochrome2_8bit(np.concatenate([gray, gray]))
    ds.Rows, ds.NumberOfFrames = gray.shape[0], 2
    return ds


def _colour(gray: np.ndarray) -> Dataset:
    ds = dicom_files.monochrome2_8bit(gray)
    ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
    ds.PixelData = np.repeat(gray[..., None], 3, axis=-1).tobytes()
    return ds


def _truncated(gray: np.ndarray) -> bytes:
    return dicom_files.to_bytes(dicom_files.monochrome2_8bit(gray))[:5000]


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda g: dicom_files.to_bytes(_multiframe(g)), 422, "undecodable_image"),
        (lambda g: dicom_files.to_bytes(_colour(g)), 422, "undecodable_image"),
        (_truncated, 422, "undecodable_image"),
        (lambda g: dicom_files.to_bytes(dicom_files.monochrome2_8bit(g, modality="")), 422, "unsupported_modality"),
        (lambda g: b"\x00" * 128 + b"DICM" + b"\xff" * 64, 422, "undecodable_image"),
    ],
    ids=["multiframe", "rgb", "truncated", "no-modality", "garbage-after-magic"],
)
def test_bad_dicom_is_a_clear_4xx(
    gateway: TestClient, pictures: list[Picture], make: Callable[[np.ndarray], bytes], status: int, code: str
) -> None:
    data = make(pictures[0].gray)
    response = gateway.post("/v1/predict", content=data, headers={"content-type": "application/dicom"})
    assert error_of(response) == (status, code)


def test_unknown_transfer_syntax_is_415(gateway: TestClient, pictures: list[Picture]) -> None:
    data = dicom_files.to_bytes(dicom_files.encapsulated(pictures[0].gray, "1.2.826.0.1.3680043.8.498.1"))
    response = gateway.post("/v1/predict", content=data, headers={"content-type": "application/dicom"})
    assert error_of(response) == (415, "unsupported_media_type")
    assert "transfer syntax unknown ('1.2.826.0.1.3680043.8.498.1')" in response.json()["error"]["message"]


def test_free_text_in_modality_is_not_echoed(gateway: TestClient, pictures: list[Picture]) -> None:
    data = dicom_files.to_bytes(dicom_files.monochrome2_8bit(pictures[0].gray, modality="DOE JOHN"))
    response = gateway.post("/v1/predict", content=data, headers={"content-type": "application/dicom"})
    assert error_of(response) == (422, "unsupported_modality")
    assert response.json()["error"]["message"].startswith("DICOM modality (malformed) is not a radiograph")


def test_dicom_content_type_without_dicom_bytes_is_415(gateway: TestClient) -> None:
    response = gateway.post("/v1/predict", content=b"plain text", headers={"content-type": "application/dicom"})
    assert error_of(response) == (415, "unsupported_media_type")
    assert "DICOM Part 10" in response.json()["error"]["message"]


def test_no_dicom_tag_reaches_logs_or_responses(
    gateway: TestClient, pictures: list[Picture], caplog: pytest.LogCaptureFixture
) -> None:
    gray = pictures[-1].gray
    files = [
        dicom_files.to_bytes(dicom_files.windowed_12bit(gray)),
        dicom_files.to_bytes(dicom_files.monochrome2_8bit(gray, modality="CT")),
        dicom_files.to_bytes(dicom_files.encapsulated(gray, MPEG4HP41)),
        _truncated(gray),
        dicom_files.to_bytes(_multiframe(gray)),
    ]
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for data in files:
            for route in ("/v1/predict", "/v1/explain"):
                response = gateway.post(route, content=data, headers={"content-type": "application/dicom"})
                assert response.status_code < 500, response.text
                seen += [response.text, *(f"{k}: {v}" for k, v in response.headers.items())]
    seen += [record.getMessage() + repr(getattr(record, "fields", "")) for record in caplog.records]
    assert any("prediction" in line for line in seen)  # the logs were captured: the audit line is there
    text = "\n".join(seen)
    for value in dicom_files.PATIENT_TAGS.values():
        for fragment in {value, *value.split("^")} - {"Q"}:
            assert fragment not in text
