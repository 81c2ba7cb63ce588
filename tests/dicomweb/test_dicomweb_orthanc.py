"""End to end with a real Orthanc: instances stored into it are forwarded by deploy/orthanc's Lua script to the
gateway by STOW-RS, and the SR comes back into the same study, once, valued as /v1/predict answers."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ComputedRadiographyImageStorage
from pynetdicom import AE

from devtools.pacs import (
    Gateway,
    Orthanc,
    Picture,
    concept,
    content_items,
    one_sr,
    probability_of,
    radiograph,
    to_bytes,
)


def dciodvfy_errors(instance: Dataset, tmp_path: Path) -> list[str]:
    tool = shutil.which("dciodvfy")
    assert tool, "dciodvfy is required (Debian package dicom3tools; scripts/ci-tools installs it)"
    path = tmp_path / "instance.dcm"
    instance.save_as(path, enforce_file_format=True)
    output = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (output.stdout + output.stderr).splitlines() if line.startswith("Error")]


def test_orthanc_stow_to_the_gateway_gives_one_sr_valued_as_predict(
    orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture, tmp_path: Path
) -> None:
    """The issue's "done when": Orthanc's own `POST /dicom-web/servers/gateway/stow` of a CR instance (which the
    Lua route has also forwarded on upload: two sends) leads to exactly one SR, probability as /v1/predict's."""
    source = radiograph(pneumonia_picture.gray)
    data = to_bytes(source)
    started = time.monotonic()
    instance_id = orthanc.upload(data)
    with orthanc.client() as client:
        response = client.post("/dicom-web/servers/gateway/stow", json={"Resources": [instance_id]})
    assert response.status_code == 200, response.text
    sr = one_sr(orthanc, dicomweb_gateway, source.StudyInstanceUID)
    print(f"\nSR in Orthanc {time.monotonic() - started:.1f} s after the upload")
    predicted = dicomweb_gateway.predict(data)
    print(f"SR probability {probability_of(sr)!r}, /v1/predict {predicted['probability']!r}")
    assert probability_of(sr) == predicted["probability"]

    # in the source study, in a series of its own, referencing the source instance, with the patient's data
    assert sr.Modality == "SR" and sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert (sr.StudyInstanceUID, sr.PatientID, sr.PatientName) == (
        source.StudyInstanceUID, source.PatientID, source.PatientName
    )
    assert sr.SeriesInstanceUID != source.SeriesInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    items = content_items(sr)
    values = {concept(i): i for i in items}
    assert values["Decision threshold"].MeasuredValueSequence[0].FloatingPointValue == predicted["threshold"]
    assert values["Operating point"].TextValue == predicted["operating_point"]
    assert values["Algorithm Name"].TextValue == predicted["model_name"]
    assert values["Algorithm Version"].TextValue == str(predicted["model_version"])
    assert values["Device Observer Name"].TextValue == f"{predicted['model_name']} version {predicted['model_version']}"
    assert values["Pneumonia"].ConceptCodeSequence[0].CodeMeaning == (
        "Present" if predicted["label"] == "PNEUMONIA" else "Absent"
    )
    assert "Not a diagnostic device" in values["Comment"].TextValue
    assert predicted["label"] == "PNEUMONIA" and predicted["subtype"]
    subtypes = {concept(i): i.MeasuredValueSequence[0].FloatingPointValue for i in items if concept(i).startswith(
        "Probability of") and concept(i) != "Probability of pneumonia"}
    assert sorted(subtypes.values()) == sorted(predicted["subtype"].values())  # type: ignore[union-attr]
    image_refs = [i for i in items if i.ValueType == "IMAGE"]
    assert image_refs[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID

    assert dciodvfy_errors(sr, tmp_path) == []
    # the heatmap Secondary Capture (GATEWAY_RESULTS_HEATMAP=true here), burned-in annotation declared
    (sc,) = orthanc.results(source.StudyInstanceUID, modality="OT")
    assert sc.BurnedInAnnotation == "YES" and sc.pixel_array.ndim == 3
    assert dciodvfy_errors(sc, tmp_path) == []


def test_c_store_into_orthanc_is_forwarded_and_scored(
    orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture
) -> None:
    source = radiograph(pneumonia_picture.gray)
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ComputedRadiographyImageStorage, source.file_meta.TransferSyntaxUID)
    association = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title="ORTHANC")
    assert association.is_established
    try:
        status = association.send_c_store(source)
    finally:
        association.release()
    assert status.Status == 0x0000
    sr = one_sr(orthanc, dicomweb_gateway, source.StudyInstanceUID)
    assert probability_of(sr) == dicomweb_gateway.predict(to_bytes(source))["probability"]


@pytest.mark.parametrize("kind", ["monochrome1", "16bit", "jpeg"])
def test_pixel_encodings_score_as_predict(
    kind: str, orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture
) -> None:
    source = radiograph(pneumonia_picture.gray, kind, jpeg=pneumonia_picture.jpeg)
    data = to_bytes(source)
    orthanc.upload(data)
    sr = one_sr(orthanc, dicomweb_gateway, source.StudyInstanceUID)
    assert probability_of(sr) == dicomweb_gateway.predict(data)["probability"]


def test_the_same_instance_sent_twice_leaves_one_sr(
    orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture
) -> None:
    from devtools.pacs import multipart

    source = radiograph(pneumonia_picture.gray)
    body, content_type = multipart(to_bytes(source))
    delivered = dicomweb_gateway.metric("gateway_dicomweb_results_delivered_total", kind="sr")
    with dicomweb_gateway.client() as client:
        for _ in range(2):
            response = client.post("/dicomweb/studies", content=body, headers={"content-type": content_type})
            assert response.status_code == 200, response.text
            one_sr(orthanc, dicomweb_gateway, source.StudyInstanceUID)
    # written back twice (the second a retry of the same UIDs): Orthanc still holds one
    assert dicomweb_gateway.metric("gateway_dicomweb_results_delivered_total", kind="sr") == delivered + 2
