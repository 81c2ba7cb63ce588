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
OUT_OF_RESOURCES = 0xA700
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


def split_parts(body: bytes, boundary: str) -> list[bytes]:
    """The parts' contents, in order (RFC 2046 5.1.1); 400 when the framing is broken or there is no part,
    415 when a part declares a media type other than application/dicom."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        raise errors.BadRequest("malformed multipart body: no boundary delimiter found")
    parts: list[bytes] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the close delimiter; what follows is the epilogue
        line_end = chunk.find(b"\r\n")
        header_end = chunk.find(b"\r\n\r\n", max(line_end, 0))
        if line_end < 0 or chunk[:line_end].strip(b" \t") or header_end < 0:
            raise errors.BadRequest("malformed multipart body: a part has no header block")
        _check_part_type(chunk[line_end + 2 : header_end + 2])
        parts.append(chunk[header_end + 4 :])
    else:
        raise errors.BadRequest("malformed multipart body: no close delimiter")
    if not parts:
        raise errors.BadRequest("the multipart body has no part")
    return parts


def _check_part_type(headers: bytes) -> None:
    for line in headers.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "content-type":
            media = value.split(";")[0].strip().lower()
            if media != DICOM:
                raise errors.UnsupportedMediaType(f"a part is {media!r}; each part must be {DICOM}")


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
