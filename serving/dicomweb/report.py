"""The result as a DICOM Comprehensive SR after TID 1500 (Measurement Report), built with highdicom.

    Imaging Measurement Report                        (TID 1500; observer: the model as a device)
    └── Imaging Measurements
        └── Measurement Group                         (TID 1501; tracking UID, Algorithm Name/Version,
            │                                          source image: the scored instance)
            ├── Probability of pneumonia   NUM        exactly /v1/predict's P(pneumonia) (FloatingPointValue)
            ├── Decision threshold         NUM        the operating point's threshold
            ├── Probability of <subtype>   NUM        subtype probabilities, when positive
            ├── Pneumonia                  CODE       Present / Absent at the operating point
            ├── Operating point            TEXT       e.g. screening
            └── Comment                    TEXT       Not a diagnostic device ...

It sits in the source study (Patient and Study modules copied), in a results series of its own.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.valuerep import TM

from serving.dicomweb import uids
from serving.scoring import Verdict

# highdicom logs the UIDs of the datasets it copies from: identifiers stay out of the gateway's logs.
logging.getLogger("highdicom").propagate = False

MANUFACTURER = "pneumonia-xray gateway (research software)"
DISCLAIMER = (
    "Not a diagnostic device. Research-grade triage aid trained on one pediatric data set; "
    "it must be read by a qualified clinician."
)
SERIES_NUMBER = {"sr": 9901, "sc": 9902}
# The gateway's own concepts, in a private coding scheme (PS3.16 8.2: designators starting 99 are local).
SCHEME = "99PNEUXR"
PROBABILITY = hd.sr.CodedConcept("PNEU-P", SCHEME, "Probability of pneumonia")
THRESHOLD = hd.sr.CodedConcept("PNEU-THR", SCHEME, "Decision threshold")
OPERATING_POINT = hd.sr.CodedConcept("PNEU-OP", SCHEME, "Operating point")
SUBTYPE_MEANINGS = {"normal": "no pneumonia", "bacteria": "bacterial pneumonia", "virus": "viral pneumonia"}
PNEUMONIA = hd.sr.CodedConcept("233604007", "SCT", "Pneumonia")
CHEST_XRAY = hd.sr.CodedConcept("399208008", "SCT", "Plain chest X-ray")
COMMENT = hd.sr.CodedConcept("121106", "DCM", "Comment")
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
# Patient and Study module attributes carried over from the source, besides those highdicom sets itself.
CARRIED_OVER = (
    "IssuerOfPatientID", "OtherPatientIDsSequence", "PatientAge", "PatientSize", "PatientWeight",
    "StudyDescription", "IssuerOfAccessionNumberSequence", "PatientComments",
)
_TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
           "StudyDate", "StudyTime", "ReferringPhysicianName")


def subtype_concept(name: str) -> hd.sr.CodedConcept:
    meaning = SUBTYPE_MEANINGS.get(name, name)
    return hd.sr.CodedConcept(f"PNEU-{name.upper()[:8]}", SCHEME, f"Probability of {meaning}")


def evidence_of(source: Dataset) -> Dataset:
    """The source's header with every Type 2 attribute highdicom reads present (empty when the file lacks it), and
    the values highdicom refuses corrected (`m` -> `M`, `2019-03-04` -> `20190304`) or else left empty (legal for
    Type 2): a result is made for every instance the intake took."""
    evidence = Dataset()
    evidence.update(source)
    for keyword in _TYPE_2:
        value = evidence.get(keyword)
        repaired = _REPAIRS[keyword](value) if keyword in _REPAIRS and value not in (None, "") else value
        if keyword not in evidence or repaired is not value:
            if keyword in evidence:
                del evidence[keyword]  # a new element: the source's own stays as it was
            setattr(evidence, keyword, repaired)
    return evidence


def _sex(value: object) -> str | None:
    text = str(value).strip().upper()
    return text if text in ("M", "F", "O") else None


def _date(value: object) -> str | None:
    digits = re.sub(r"[-./ ]", "", str(value).strip())
    try:
        return datetime.datetime.strptime(digits, "%Y%m%d").strftime("%Y%m%d") if len(digits) == 8 else None
    except ValueError:
        return None


def _time(value: object) -> str | None:
    try:
        TM(str(value).strip())
    except ValueError:
        return None
    return str(value).strip()


_REPAIRS = {"PatientSex": _sex, "PatientBirthDate": _date, "StudyDate": _date, "StudyTime": _time}


def content_key(evidence: Dataset, verdict: Verdict) -> str:
    """What a result says besides its pixels and probabilities: the patient and study attributes it copies, the
    operating point and the finding. Part of its UID, so a corrected header or another operating point makes a new
    result, and a resend of the same instance the same one. (The probabilities are left out: the same pixels and
    model version give them again, up to the float rounding that batch sizes change.)"""
    copied = Dataset()
    for keyword in (*_TYPE_2, *CARRIED_OVER):
        if keyword in evidence:
            copied[keyword] = evidence[keyword]
    facts = [copied.to_json_dict(), verdict.operating_point, repr(verdict.threshold), verdict.label]
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def build_sr(source: Dataset, verdict: Verdict, positive_label: str) -> hd.sr.ComprehensiveSR:
    """`source`: the scored instance's header (pixels not needed)."""
    name, version = verdict.model_name, verdict.model_version
    algorithm = hd.sr.AlgorithmIdentification(name=name, version=str(version))
    measurements = [
        hd.sr.Measurement(PROBABILITY, verdict.probability, NO_UNITS, algorithm_id=algorithm),
        hd.sr.Measurement(THRESHOLD, verdict.threshold, NO_UNITS, algorithm_id=algorithm),
    ]
    for subtype, probability in (verdict.subtype or {}).items():
        measurements.append(hd.sr.Measurement(subtype_concept(subtype), probability, NO_UNITS, algorithm_id=algorithm))
    present = codes.SCT.Present if verdict.label == positive_label else codes.SCT.Absent
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=uids.derived("tracking", source.SOPInstanceUID, name, str(version)),
            identifier=f"{name} {version} result",
        ),
        finding_type=PNEUMONIA,
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(PNEUMONIA, present)],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    group[0].ContentSequence.extend([
        hd.sr.TextContentItem(OPERATING_POINT, verdict.operating_point, relationship_type=contains),
        hd.sr.TextContentItem(COMMENT, DISCLAIMER, relationship_type=contains),
    ])
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=uids.device(name, version), name=f"{name} version {version}", manufacturer_name=MANUFACTURER,
        model_name=name, serial_number=str(version),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_device_context=hd.sr.ObserverContext(codes.DCM.Device, device)
        ),
        procedure_reported=CHEST_XRAY,
        imaging_measurements=[group],
    )
    study, evidence = str(source.StudyInstanceUID), evidence_of(source)
    sr = hd.sr.ComprehensiveSR(
        evidence=[evidence],
        content=report,
        series_instance_uid=uids.result_series(study, name, version, "sr"),
        series_number=SERIES_NUMBER["sr"],
        sop_instance_uid=uids.result_instance(
            str(source.SOPInstanceUID), name, version, "sr", content_key(evidence, verdict)
        ),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description="AI result: pneumonia (not for diagnosis)",
    )
    carry_over(evidence, sr)
    return sr


def carry_over(source: Dataset, result: Dataset) -> None:
    for keyword in CARRIED_OVER:
        if keyword in source and keyword not in result:
            result[keyword] = source[keyword]
