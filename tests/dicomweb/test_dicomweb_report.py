"""The result's UID follows its content: the same instance, header and operating point give the same SR UID (a
resend replaces), a corrected header or another operating point a new one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pydicom.dataset import Dataset

from devtools.pacs import radiograph
from serving.dicomweb import heatmap, report
from serving.verdict import Verdict

GRAY = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
VERDICT = Verdict("PNEUMONIA", 0.75, 0.5, "screening", "pneumonia", 5)


def sr_uid(source: Dataset, verdict: Verdict = VERDICT) -> str:
    return str(report.build_sr(source, verdict, "PNEUMONIA").SOPInstanceUID)


def corrected(source: Dataset, **values: str) -> Dataset:
    changed = copy.deepcopy(source)
    for keyword, value in values.items():
        setattr(changed, keyword, value)
    return changed


@pytest.mark.parametrize(
    "change",
    [
        {"PatientName": "Corrected^Name"},
        {"PatientID": "PID-CORRECTED"},
        {"PatientBirthDate": "20190315"},
        {"AccessionNumber": "ACC-NEW"},
    ],
)
def test_a_corrected_header_gives_a_new_sr_uid(change: dict[str, str]) -> None:
    source = radiograph(GRAY)
    assert sr_uid(corrected(source, **change)) != sr_uid(source)


def test_another_operating_point_gives_a_new_sr_uid() -> None:
    source = radiograph(GRAY)
    balanced = Verdict("PNEUMONIA", 0.75, 0.3, "balanced", "pneumonia", 5)
    assert sr_uid(source, balanced) != sr_uid(source)


def test_the_same_content_keeps_its_uid() -> None:
    """A resend (a new parse of the same bytes), and a probability that differs in its last bits (batch sizes change
    the float rounding) keep the UID: the PACS keeps one SR."""
    source = radiograph(GRAY)
    jittered = Verdict("PNEUMONIA", 0.75 + 1e-7, 0.5, "screening", "pneumonia", 5)
    assert sr_uid(copy.deepcopy(source)) == sr_uid(source) == sr_uid(source, jittered)


def test_the_heatmap_follows_the_same_rule() -> None:
    source, pixels, heat = radiograph(GRAY), GRAY, np.zeros((7, 7), np.float32)

    def sc_uid(ds: Dataset) -> str:
        return str(heatmap.build_sc(ds, pixels, heat, VERDICT).SOPInstanceUID)

    assert sc_uid(source) == sc_uid(copy.deepcopy(source)) != sc_uid(corrected(source, PatientName="Corrected^Name"))
