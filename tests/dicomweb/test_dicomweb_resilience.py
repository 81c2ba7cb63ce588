"""Nothing acknowledged is lost: the PACS down during write-back, the gateway killed with work pending. Then no
identifier in the logs, and hashed UIDs in the audit records (last: it reads what every test left)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from devtools.dicom_files import PATIENT_TAGS
from devtools.pacs import SR_WITHIN_S, Gateway, Orthanc, Picture, multipart, one_sr, poll, radiograph, to_bytes
from serving.dicomweb.uids import hashed

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
    retried = dicomweb_gateway.metric("gateway_dicomweb_delivery_failures_total", kind="transient")
    orthanc.stop()
    try:
        stow(dicomweb_gateway, to_bytes(source))
        poll(
            lambda: dicomweb_gateway.metric("gateway_dicomweb_delivery_failures_total", kind="transient") > retried + 1,
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


def test_images_orthanc_receives_while_the_gateway_is_down_are_all_scored_once_it_is_back(
    orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture
) -> None:
    """deploy/orthanc's Lua forwards each image as a job; with the gateway stopped every job fails. Its retries
    must bring each one to the gateway once it is started again."""
    sources = [radiograph(pneumonia_picture.gray) for _ in range(3)]
    SENT_STUDIES.extend(source.StudyInstanceUID for source in sources)
    failed_before = len(failed_forwards(orthanc))
    dicomweb_gateway.stop()
    try:
        for source in sources:
            orthanc.upload(to_bytes(source))
        poll(lambda: len(failed_forwards(orthanc)) >= failed_before + 3, 60,
             "Orthanc's forwarding jobs did not fail while the gateway was down")
    finally:
        dicomweb_gateway.start()
    for source in sources:
        one_sr(orthanc, dicomweb_gateway, source.StudyInstanceUID)


def failed_forwards(orthanc: Orthanc) -> list[str]:
    """Orthanc's failed STOW-RS jobs (its /jobs history)."""
    with orthanc.client() as client:
        jobs = client.get("/jobs", params={"expand": ""}).json()
    return [job["ID"] for job in jobs if job["Type"] == "DicomWebStowClient" and job["State"] == "Failure"]


def test_a_forward_that_keeps_failing_is_given_up_visibly(tmp_path: Path, pneumonia_picture: Picture) -> None:
    """A bounded number of attempts; then the instance says so in its Orthanc metadata (and Orthanc's log)."""
    with socket.socket() as reserved:  # a gateway address nothing answers on
        reserved.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{reserved.getsockname()[1]}"
    retries = {"FORWARD_RETRY_ATTEMPTS": "3", "FORWARD_RETRY_FIRST_S": "0.2", "FORWARD_RETRY_MAX_S": "0.4"}
    lonely = Orthanc(tmp_path, nowhere, env=retries)
    lonely.start()
    try:
        instance = lonely.upload(to_bytes(radiograph(pneumonia_picture.gray)))

        def marked() -> str | None:
            with lonely.client() as client:
                response = client.get(f"/instances/{instance}/metadata/GatewayForwarding")
            return response.text if response.status_code == 200 else None

        assert poll(marked, 60, "the instance was not marked") == "failed after 3 attempts"
        assert f"gave up on instance {instance} after 3 attempts" in (tmp_path / "orthanc.log").read_text()
    finally:
        lonely.stop()


def test_a_rotated_pacs_password_pauses_delivery_until_it_is_fixed(
    orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture
) -> None:
    """The PACS answers 401: nothing moves to failed/, the `configuration` gauge (DicomwebDeliveryMisconfigured)
    rises, and once the password is right again the result is delivered without a restart of the gateway."""
    source = radiograph(pneumonia_picture.gray)
    SENT_STUDIES.append(source.StudyInstanceUID)
    refused = dicomweb_gateway.metric("gateway_dicomweb_delivery_failures_total", kind="configuration")
    failed = dicomweb_gateway.metric("gateway_dicomweb_outbox_items", state="failed")
    orthanc.stop()
    orthanc.env["ORTHANC_GATEWAY_PASSWORD"] = "rotated-password-0123"
    try:
        orthanc.start()
        stow(dicomweb_gateway, to_bytes(source))
        poll(lambda: dicomweb_gateway.metric("gateway_dicomweb_delivery_failures_total", kind="configuration")
             > refused + 1, SR_WITHIN_S, "no write-back refused for its credentials")
        assert dicomweb_gateway.metric("gateway_dicomweb_delivery_paused", cause="configuration") == 1
        assert dicomweb_gateway.metric("gateway_dicomweb_outbox_items", state="delivery") >= 1
        assert dicomweb_gateway.metric("gateway_dicomweb_outbox_items", state="failed") == failed
    finally:
        orthanc.stop()
        del orthanc.env["ORTHANC_GATEWAY_PASSWORD"]
        orthanc.start()
    one_sr(orthanc, dicomweb_gateway, source.StudyInstanceUID)
    assert dicomweb_gateway.metric("gateway_dicomweb_delivery_paused", cause="configuration") == 0


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
