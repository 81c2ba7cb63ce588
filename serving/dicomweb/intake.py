"""Is a received instance one the gateway scores? A single-frame CR/DX radiograph of the model's intended
population (`population.py`: chest, frontal, the age range) whose pixels the `/v1/predict` decode path reads.
Everything else gets a Store Instances Response failure with a reason.

The full decode runs here, not only a header check, so a file the worker could not score is refused while
the sender still waits for the answer instead of ending up in the spool's `failed/` folder.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from dataclasses import dataclass

from pydicom import dcmread
from pydicom.dataset import Dataset

from radiograph import dicom, imaging
from radiograph.warning_filters import warning_filter
from serving.dicomweb import population, stow


@dataclass(frozen=True)
class Accepted:
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str


def examine(
    data: bytes,
    *,
    modalities: Collection[str],
    max_pixels: int,
    eligibility: population.Eligibility,
    study_instance_uid: str | None = None,
) -> Accepted | stow.Failure:
    """`eligibility`: the served model's intended population and what to do when the header does not say;
    `study_instance_uid`: the study named in the request path; instances of another study are refused."""
    if not dicom.is_dicom(data):
        return stow.Failure(stow.CANNOT_UNDERSTAND, "not_dicom_part10")
    try:
        header = read_header(data)
        sop_class, sop_instance = str(header.SOPClassUID), str(header.SOPInstanceUID)
        study = str(header.StudyInstanceUID)
    except Exception:  # malformed files raise many types; their messages can quote values
        return stow.Failure(stow.CANNOT_UNDERSTAND, "unreadable_header")
    if not (sop_instance and study and str(getattr(header, "SeriesInstanceUID", ""))):
        return stow.Failure(stow.CANNOT_UNDERSTAND, "missing_uids", sop_class, sop_instance)

    def refused(code: int, reason: str) -> stow.Failure:
        return stow.Failure(code, reason, sop_class, sop_instance)

    if study_instance_uid is not None and study != study_instance_uid:
        return refused(stow.DATA_SET_DOES_NOT_MATCH, "study_mismatch")
    if str(getattr(header, "Modality", "")).upper() not in modalities:
        return refused(stow.SOP_CLASS_NOT_SUPPORTED, "unsupported_modality")
    if int(getattr(header, "NumberOfFrames", 1) or 1) != 1:
        return refused(stow.DATA_SET_DOES_NOT_MATCH, "multi_frame")
    if reason := population.refusal(header, eligibility):
        return refused(stow.DATA_SET_DOES_NOT_MATCH, reason)
    try:
        dicom.decode_dicom(data, max_pixels=max_pixels, modalities=modalities)
    except dicom.UnsupportedTransferSyntax:
        return refused(stow.TRANSFER_SYNTAX_NOT_SUPPORTED, "unsupported_transfer_syntax")
    except imaging.ImageTooLarge:
        return refused(stow.DATA_SET_DOES_NOT_MATCH, "image_too_large")
    except imaging.ImageError:
        return refused(stow.CANNOT_UNDERSTAND, "undecodable_pixels")
    return Accepted(sop_class, sop_instance, study)


def read_header(data: bytes) -> Dataset:
    """A Part 10 file's data set without its pixel data; pydicom's warnings (they quote element values) muted.
    Every element is converted here, inside the mute, rather than on first access (pydicom reads lazily)."""
    with warning_filter("ignore"):
        header = dcmread(io.BytesIO(data), stop_before_pixels=True)
        header.walk(lambda _dataset, _element: None)
        return header

