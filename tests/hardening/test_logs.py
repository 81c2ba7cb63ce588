"""Logs are JSON lines carrying the request ID and no patient data; one audit record per prediction."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from serving.config import Settings
from serving.main import create_app

CORPUS = Path(__file__).resolve().parent / "corpus"
SECRETS = ("SMITH^JOHN", "MRN-4711", "DOE^JANE", "MRN-9999", "1961-02-03")
AUDIT_FIELDS = {
    "ts", "level", "logger", "message", "event", "request_id", "api_key", "model_name", "model_version",
    "label", "probability", "threshold", "operating_point", "image_sha256",
}


def dicom_with_patient() -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR image storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "DOE^JANE", "MRN-9999", "19610203"
    ds.Modality, ds.SOPClassUID, ds.SOPInstanceUID = "CR", meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 256, 256, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(256 * 256, dtype=np.uint16).reshape(256, 256) % 4096).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def session_log() -> dict:
    """One gateway at DEBUG: a named upload, a batch with a bad image, a DICOM with patient tags."""
    png = (CORPUS / "reference.png").read_bytes()
    jpeg = (CORPUS / "baseline.jpg").read_bytes()
    dcm = dicom_with_patient()
    stream = io.StringIO()
    real_stderr, sys.stderr = sys.stderr, stream
    try:
        with TestClient(create_app(Settings(log_level="DEBUG"), registry=CollectorRegistry())) as client:
            single = client.post(
                "/v1/predict", files={"file": ("SMITH^JOHN_MRN-4711_1961-02-03.png", png, "image/png")},
                headers={"x-request-id": "single-1"},
            )
            batch = client.post(
                "/v1/predict/batch",
                files=[
                    ("files", ("SMITH^JOHN_a.png", png, "image/png")),
                    ("files", ("SMITH^JOHN_b.jpg", b"\xff\xd8 broken MRN-4711", "image/jpeg")),
                    ("files", ("SMITH^JOHN_c.jpg", jpeg, "image/jpeg")),
                ],
                headers={"x-request-id": "batch-1"},
            )
            dicom = client.post(
                "/v1/predict", files={"file": ("DOE^JANE.dcm", dcm, "application/dicom")},
                headers={"x-request-id": "dicom-1"},
            )
    finally:
        sys.stderr = real_stderr
    answers = {"single": single, "batch": batch, "dicom": dicom}
    return answers | {"text": stream.getvalue(), "png": png, "jpeg": jpeg, "dcm": dcm}


def test_no_patient_data_in_logs(session_log: dict) -> None:
    assert session_log["single"].status_code == 200 and session_log["batch"].status_code == 200
    assert session_log["dicom"].status_code == 200, session_log["dicom"].text  # a valid CR radiograph: scored
    text = session_log["text"]
    assert text, "nothing was logged"
    for secret in SECRETS:
        assert secret not in text
    assert "19610203" not in text


def test_every_request_line_has_its_request_id(session_log: dict) -> None:
    lines = json_lines(session_log["text"])
    access = [line for line in lines if line["logger"] == "serving.access"]
    assert {line["request_id"] for line in access} >= {"single-1", "batch-1", "dicom-1"}
    assert all(set(line) >= {"ts", "level", "method", "route", "status", "ms"} for line in access)


def test_one_audit_record_per_prediction(session_log: dict) -> None:
    audit = [line for line in json_lines(session_log["text"]) if line["logger"] == "audit"]
    by_request: dict[str, list[dict]] = {}
    for record in audit:
        assert set(record) == AUDIT_FIELDS
        by_request.setdefault(record["request_id"], []).append(record)
    for request_id, answer, image in (("single-1", "single", "png"), ("dicom-1", "dicom", "dcm")):
        (record,) = by_request[request_id]
        assert record["image_sha256"] == hashlib.sha256(session_log[image]).hexdigest()
        assert record["api_key"] is None  # open gateway
        body = session_log[answer].json()
        for field in ("label", "probability", "threshold", "operating_point", "model_name", "model_version"):
            assert record[field] == body[field]
    batch = by_request["batch-1"]
    assert [r["image_sha256"] for r in batch] == [
        hashlib.sha256(session_log["png"]).hexdigest(), hashlib.sha256(session_log["jpeg"]).hexdigest()
    ]
