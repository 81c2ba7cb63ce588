"""Result UIDs derived from what they describe, never random: the same source instance scored by the same
model version gives the same SR (and SC) UIDs, so a resend or a retry replaces rather than duplicates."""

from __future__ import annotations

import hashlib

from pydicom.uid import generate_uid

_NAMESPACE = "pneumonia-xray-gateway"


def derived(*parts: str) -> str:
    """A `2.25.<integer>` UID (PS3.5 B.2) from a hash of `parts`."""
    return str(generate_uid(prefix=None, entropy_srcs=[_NAMESPACE, *parts]))


def result_series(study_instance_uid: str, model_name: str, model_version: int, kind: str) -> str:
    """One results series per study, model version and kind (`sr`, `sc`)."""
    return derived("series", kind, study_instance_uid, model_name, str(model_version))


def result_instance(sop_instance_uid: str, model_name: str, model_version: int, kind: str) -> str:
    return derived("instance", kind, sop_instance_uid, model_name, str(model_version))


def device(model_name: str, model_version: int) -> str:
    """The observer device: the model version that made the finding."""
    return derived("device", model_name, str(model_version))


def hashed(uid: str) -> str:
    """How audit records name a UID: a digest, never the UID itself."""
    return hashlib.sha256(uid.encode()).hexdigest()
