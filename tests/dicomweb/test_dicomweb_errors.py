"""Every answer of the STOW-RS route: exact status codes, the Store Instances Response's sequences and failure
reasons, the service's one error shape, API keys, chunked bodies; and 503 when the intake is off."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from devtools.pacs import (
    REVOKED_KEY,
    STOW_LIMIT_BYTES,
    Gateway,
    Orthanc,
    Picture,
    multipart,
    one_sr,
    radiograph,
    to_bytes,
)
from serving.config import Settings
from serving.dicomweb import stow
from serving.main import create_app

REFERENCED, FAILED, REASON, SOP = "00081199", "00081198", "00081197", "00081155"


def post(gateway: Gateway, body: bytes | Iterator[bytes], content_type: str, path: str = "/dicomweb/studies",
         key: str | None = "default") -> tuple[int, dict]:
    with gateway.client() if key == "default" else gateway.client(key) as client:
        response = client.post(path, content=body, headers={"content-type": content_type,
                                                            "accept": "application/dicom+json"})
    return response.status_code, response.json()


def failures(answer: dict) -> list[tuple[str, int]]:
    return [(item[SOP]["Value"][0] if SOP in item else "", item[REASON]["Value"][0])
            for item in answer.get(FAILED, {}).get("Value", [])]


@pytest.fixture(scope="module")
def refused(pneumonia_picture: Picture) -> dict[str, Dataset]:
    """Instances the gateway does not score, by the reason it gives."""
    gray = pneumonia_picture.gray
    lateral, multi = radiograph(gray), radiograph(gray)
    lateral.ViewPosition = "LL"
    multi.NumberOfFrames = 2
    return {"ct": radiograph(gray, "ct"), "lateral": lateral, "multi_frame": multi}


def test_all_taken_200_some_refused_202_none_409(
    dicomweb_gateway: Gateway, pneumonia_picture: Picture, refused: dict[str, Dataset]
) -> None:
    good = radiograph(pneumonia_picture.gray)
    status, answer = post(dicomweb_gateway, *multipart(to_bytes(good)))
    assert status == 200 and FAILED not in answer
    assert answer[REFERENCED]["Value"][0][SOP]["Value"] == [good.SOPInstanceUID]

    body, content_type = multipart(to_bytes(good), *(to_bytes(ds) for ds in refused.values()), b"not dicom")
    status, answer = post(dicomweb_gateway, body, content_type)
    assert status == 202, answer
    assert failures(answer) == [
        (refused["ct"].SOPInstanceUID, stow.SOP_CLASS_NOT_SUPPORTED),
        (refused["lateral"].SOPInstanceUID, stow.DATA_SET_DOES_NOT_MATCH),
        (refused["multi_frame"].SOPInstanceUID, stow.DATA_SET_DOES_NOT_MATCH),
        ("", stow.CANNOT_UNDERSTAND),
    ]
    status, answer = post(dicomweb_gateway, *multipart(to_bytes(refused["ct"])))
    assert status == 409 and not answer.get(REFERENCED, {}).get("Value")


def test_study_in_the_path_must_match(dicomweb_gateway: Gateway, pneumonia_picture: Picture) -> None:
    instance = radiograph(pneumonia_picture.gray)
    status, answer = post(dicomweb_gateway, *multipart(to_bytes(instance)), path=f"/dicomweb/studies/{generate_uid()}")
    assert status == 409 and failures(answer) == [(instance.SOPInstanceUID, stow.DATA_SET_DOES_NOT_MATCH)]
    status, _ = post(dicomweb_gateway, *multipart(to_bytes(instance)),
                     path=f"/dicomweb/studies/{instance.StudyInstanceUID}")
    assert status == 200


def test_a_chunked_body_is_read(dicomweb_gateway: Gateway, pneumonia_picture: Picture) -> None:
    body, content_type = multipart(to_bytes(radiograph(pneumonia_picture.gray)))
    chunks = iter([body[i : i + 4096] for i in range(0, len(body), 4096)])  # no Content-Length: chunked
    assert post(dicomweb_gateway, chunks, content_type)[0] == 200


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"--x\r\n\r\nDICM", 'multipart/related; type="application/dicom"; boundary=x', 400, "bad_request"),
        (b"no delimiter", 'multipart/related; type="application/dicom"; boundary=x', 400, "bad_request"),
        (b"--x--\r\n", 'multipart/related; type="application/dicom"; boundary=x', 400, "bad_request"),
        (b"--x\r\n\r\n", 'multipart/related; type="application/dicom"', 400, "bad_request"),
        (b"{}", "application/json", 415, "unsupported_media_type"),
        (b"--x\r\n\r\n", 'multipart/related; type="application/dicom+xml"; boundary=x', 415, "unsupported_media_type"),
        (b"--x\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\r\n--x--", 'multipart/related; boundary=x', 415,
         "unsupported_media_type"),
    ],
)
def test_bad_requests_get_the_error_shape(
    dicomweb_gateway: Gateway, body: bytes, content_type: str, status: int, code: str
) -> None:
    got, answer = post(dicomweb_gateway, body, content_type)
    assert (got, answer["error"]["code"]) == (status, code)
    assert set(answer["error"]) == {"code", "message", "request_id"}


def test_a_study_of_full_size_radiographs_is_taken_over_the_v1_body_limit(
    orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture
) -> None:
    """Two uncompressed 16-bit DX of 3000 x 3000 (18 MB each) in one STOW-RS request: over /v1's 8 MiB limit
    (still 413 there), under STOW-RS's own; streamed to the spool and scored."""
    gray = np.asarray(Image.fromarray(pneumonia_picture.gray).resize((3000, 3000)))
    instances = [radiograph(gray, "16bit") for _ in range(2)]
    body, content_type = multipart(*(to_bytes(ds) for ds in instances))
    assert 8 * 1024 * 1024 < len(body) < STOW_LIMIT_BYTES
    status, answer = post(dicomweb_gateway, body, content_type)
    assert status == 200 and FAILED not in answer, answer
    for instance in instances:
        one_sr(orthanc, dicomweb_gateway, instance.StudyInstanceUID)
    with dicomweb_gateway.client() as client:
        response = client.post(
            "/v1/predict", content=to_bytes(instances[0]), headers={"content-type": "application/dicom"}
        )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "payload_too_large")


def test_the_stow_body_limit_is_413(dicomweb_gateway: Gateway) -> None:
    body, content_type = multipart(b"\0" * (STOW_LIMIT_BYTES + 1024))
    status, answer = post(dicomweb_gateway, body, content_type)
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")


def test_api_keys_apply(dicomweb_gateway: Gateway, pneumonia_picture: Picture) -> None:
    body, content_type = multipart(to_bytes(radiograph(pneumonia_picture.gray)))
    assert post(dicomweb_gateway, body, content_type, key=None)[0] == 401
    assert post(dicomweb_gateway, body, content_type, key="wrong-key-0123456789")[0] == 401
    assert post(dicomweb_gateway, body, content_type, key=REVOKED_KEY)[0] == 403


def test_intake_off_without_a_spool_is_503() -> None:
    client = TestClient(create_app(Settings()))  # no lifespan: no model needed to refuse
    body, content_type = multipart(to_bytes(radiograph(np.zeros((8, 8), np.uint8))))
    response = client.post("/dicomweb/studies", content=body, headers={"content-type": content_type})
    assert (response.status_code, response.json()["error"]["code"]) == (503, "not_ready")


def test_a_spool_without_a_results_url_is_refused_at_start(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="GATEWAY_RESULTS_DICOMWEB_URL"):
        create_app(Settings(spool_dir=tmp_path))  # type: ignore[arg-type]


def test_compose_wires_orthanc_and_the_gateway_as_the_tests_do() -> None:
    """docker-compose's Orthanc runs deploy/orthanc's config and script; the two point at each other."""
    import json

    import yaml

    from devtools.pacs import DEPLOY, REPO

    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    orthanc, gateway = services["orthanc"], services["gateway"]
    mounts = dict(v.split(":")[:2][::-1] for v in orthanc["volumes"] if v.startswith("."))
    config = json.loads((DEPLOY / "orthanc.json").read_text())
    assert mounts["/etc/orthanc/orthanc.json"] == "./deploy/orthanc/orthanc.json"
    assert mounts[config["LuaScripts"][0]] == "./deploy/orthanc/forward-to-gateway.lua"
    assert orthanc["build"] == {"context": "deploy/orthanc"}
    assert config["DicomWeb"]["Servers"]["gateway"]["Url"] == f"http://gateway:{gateway['environment']['GATEWAY_PORT']}/dicomweb/"
    env = gateway["environment"]
    assert env["GATEWAY_RESULTS_DICOMWEB_URL"] == f"http://orthanc:{config['HttpPort']}{config['DicomWeb']['Root']}".rstrip("/")
    assert env["GATEWAY_RESULTS_DICOMWEB_USERNAME"] in config["RegisteredUsers"]
    assert any(v.endswith(f":{env['GATEWAY_SPOOL_DIR']}") for v in gateway["volumes"])
