"""The STOW-RS wire format (PS3.18 10.5): a `multipart/related; type="application/dicom"` request body in,
a Store Instances Response in DICOM JSON out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from serving import errors

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
MULTIPART_RELATED = "multipart/related"

_PARAM = re.compile(r';\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True)
class Failure:
    """One instance not taken, with a Store Instances Response failure reason (PS3.18 Table 10.5.3-2)."""

    code: int
    reason: str
    """A short name for metrics and docs (never a header value of the file)."""
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None


CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
DATA_SET_DOES_NOT_MATCH = 0xA900
PROCESSING_FAILURE = 0x0110


def parameters(content_type: str) -> dict[str, str]:
    """`type`, `boundary`, ... of a Content-Type header, unquoted, names lower-cased."""
    params = {}
    for name, value in _PARAM.findall(content_type):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name.lower()] = value
    return params


def check_content_type(content_type: str) -> str:
    """The boundary of an acceptable STOW-RS request; 415 for another media type or part type, 400 without
    a boundary."""
    media = content_type.split(";")[0].strip().lower()
    params = parameters(content_type)
    part_type = params.get("type", DICOM).strip().lower()
    if media != MULTIPART_RELATED or part_type != DICOM:
        raise errors.UnsupportedMediaType(
            f"content type {media or '(none)'!r} (type={part_type!r}) is not accepted; "
            f'STOW-RS takes multipart/related; type="{DICOM}" (Part 10 instances)'
        )
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise errors.BadRequest("multipart/related without a usable boundary parameter")
    return boundary


@dataclass
class StoreResponse:
    stored: list[tuple[str, str]] = field(default_factory=list)
    """(SOP Class UID, SOP Instance UID) of each instance taken."""
    failed: list[Failure] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        """200 all taken, 202 some failed, 409 none taken (PS3.18 10.5.3)."""
        if not self.failed:
            return 200
        return 202 if self.stored else 409

    def to_json(self) -> dict[str, object]:
        response = Dataset()
        response.ReferencedSOPSequence = [_item(sop_class, sop_instance) for sop_class, sop_instance in self.stored]
        if self.failed:
            response.FailedSOPSequence = [self._failed_item(failure) for failure in self.failed]
        return response.to_json_dict()

    @staticmethod
    def _failed_item(failure: Failure) -> Dataset:
        item = _item(failure.sop_class_uid, failure.sop_instance_uid)
        item.FailureReason = failure.code
        return item


def _item(sop_class: str | None, sop_instance: str | None) -> Dataset:
    item = Dataset()
    if sop_class:
        item.ReferencedSOPClassUID = sop_class
    if sop_instance:
        item.ReferencedSOPInstanceUID = sop_instance
    return item
