"""Result UIDs derived from what they describe, never random: the same source instance scored by the same
model version, with the same header and operating point, gives the same SR (and SC) UIDs, so a resend or a retry
replaces rather than duplicates; a corrected header or another operating point gives new ones."""

from __future__ import annotations

import hashlib
import uuid

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:pneumonia-xray-gateway:dicomweb")


def derived(*parts: str) -> str:
    """A UUID-derived UID (`2.25.<integer>`, PS3.5 B.2) from a name-based UUID (version 5) of `parts`. (Not
    pydicom's `generate_uid(prefix=None, ...)`: without a prefix it ignores its entropy sources.)"""
    return f"2.25.{uuid.uuid5(_NAMESPACE, chr(31).join(parts)).int}"


def result_series(study_instance_uid: str, model_name: str, model_version: int, kind: str) -> str:
    """One results series per study, model version and kind (`sr`, `sc`)."""
    return derived("series", kind, study_instance_uid, model_name, str(model_version))


def result_instance(sop_instance_uid: str, model_name: str, model_version: int, kind: str, content: str) -> str:
    """`content`: a digest of what the result says (report.content_key): it changes, the UID changes."""
    return derived("instance", kind, sop_instance_uid, model_name, str(model_version), content)


def device(model_name: str, model_version: int) -> str:
    """The observer device: the model version that made the finding."""
    return derived("device", model_name, str(model_version))


def hashed(uid: str) -> str:
    """How audit records name a UID: a digest, never the UID itself."""
    return hashlib.sha256(uid.encode()).hexdigest()
