"""Nothing acknowledged is lost: the PACS down during write-back, the gateway killed with work pending. Then no
identifier in the logs, and hashed UIDs in the audit records (last: it reads what every test left)."""

from __future__ import annotations

import json

from serving.dicomweb.uids import hashed
from tests.clinical.dicom_files import PATIENT_TAGS
from tests.dicomweb.pacs import SR_WITHIN_S, Gateway, Orthanc, Picture, multipart, one_sr, poll, radiograph, to_bytes

SENT_STUDIES: list[str] = []


def stow(gateway: Gateway, data: bytes) -> None:
    body, content_type = multipart(data)
    with gateway.client() as client:
        response = client.post("/dicomweb/studies", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text


def test_write_back_waits_for_the_pacs_to_return(
    orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture
) -> None:
    source = radiograph(pneumonia_picture.gray)
    SENT_STUDIES.append(source.StudyInstanceUID)
    retried = dicomweb_gateway.metric("gateway_dicomweb_delivery_failures_total", kind="retriable")
    orthanc.stop()
    try:
        stow(dicomweb_gateway, to_bytes(source))
        poll(
            lambda: dicomweb_gateway.metric("gateway_dicomweb_delivery_failures_total", kind="retriable") > retried + 1,
            SR_WITHIN_S, "no failed write-back attempt while Orthanc is down",
        )
        assert dicomweb_gateway.metric("gateway_dicomweb_outbox_items", state="delivery") >= 1
        assert dicomweb_gateway.metric("gateway_dicomweb_outbox_oldest_age_seconds") > 0
    finally:
        orthanc.start()
    one_sr(orthanc, dicomweb_gateway, source.StudyInstanceUID)
    assert dicomweb_gateway.metric("gateway_dicomweb_outbox_oldest_age_seconds") == 0


def test_a_gateway_killed_with_work_pending_delivers_after_restart(
    orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture
) -> None:
    source = radiograph(pneumonia_picture.gray, "16bit")
    SENT_STUDIES.append(source.StudyInstanceUID)
    orthanc.stop()  # so the result cannot leave before the kill, wherever the worker is
    try:
        stow(dicomweb_gateway, to_bytes(source))  # answered: the instance is on disk
        dicomweb_gateway.kill()
    finally:
        orthanc.start()
        if dicomweb_gateway.process is None:
            dicomweb_gateway.start()
    one_sr(orthanc, dicomweb_gateway, source.StudyInstanceUID)
    assert not list((dicomweb_gateway.workdir / "spool" / "incoming").iterdir())
    assert not list((dicomweb_gateway.workdir / "spool" / "outbox").iterdir())


def test_no_identifier_in_logs_and_hashed_uids_in_audit(dicomweb_gateway: Gateway) -> None:
    log = dicomweb_gateway.log_path.read_text(errors="replace")
    audit = dicomweb_gateway.audit_path.read_text()
    for value in [*PATIENT_TAGS.values(), *SENT_STUDIES]:
        assert value not in log and value not in audit
    records = [json.loads(line) for line in audit.splitlines()]
    results = [r for r in records if r.get("event") == "dicomweb_result"]
    received = [r for r in records if r.get("event") == "dicomweb_received"]
    assert received and all(r["api_key"] == "pacs" for r in received)
    assert {hashed(study) for study in SENT_STUDIES} <= {r["study_uid_sha256"] for r in results}
    assert all(len(r["sop_instance_uid_sha256"]) == 64 and r["probability"] > 0 for r in results)
