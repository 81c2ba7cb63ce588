"""Is a radiograph one the model was made for? Its header against the model's intended population
(`radiograph.contract.IntendedPopulation`, read from the served model's metadata).

Each rule looks at every place the header states the fact: body part in Body Part Examined and the Anatomic
Region Sequence's codes, projection in View Position and the View Code Sequence's codes, age in Patient Age or
else Patient Birth Date with the Study Date. Any statement outside the population refuses the instance; a
header that states nothing is refused or accepted as the `GATEWAY_INTAKE_UNKNOWN_*` settings say. A DX image
"FOR PROCESSING" (raw detector values, before the vendor's processing) is never what the model saw.

`deploy/orthanc/forward-to-gateway.lua` applies the same rules before forwarding; keep the two in step
(tests/dicomweb/test_dicomweb_population.py runs both on the same headers).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydicom.dataset import Dataset

from radiograph.contract import IntendedPopulation

Unknown = Literal["refuse", "accept"]
FOR_PROCESSING_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.1.3.1",  # Digital Intra-Oral X-Ray Image Storage - For Processing
})
REASONS = ("for_processing", "not_chest", "body_part_unknown", "not_frontal", "view_unknown", "age_out_of_range",
           "age_unknown")
"""Every refusal this module gives (the `result` label of `gateway_dicomweb_instances_total`)."""
_AGE = re.compile(r"(\d{3})([DWMY])")
_DATE = re.compile(r"\d{8}")
_DAYS_PER_MONTH = 365.2425 / 12
_DATES_SEEN = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
"""When the picture was taken, best first."""


@dataclass(frozen=True)
class Eligibility:
    population: IntendedPopulation
    unknown_body_part: Unknown = "refuse"
    unknown_view: Unknown = "refuse"
    unknown_age: Unknown = "refuse"


def refusal(header: Dataset, eligibility: Eligibility) -> str | None:
    """Why `header` is outside the population (one of `REASONS`), or None when it is inside."""
    population = eligibility.population
    if for_processing(header):
        return "for_processing"
    checks = (
        (is_chest(header, population), "not_chest", "body_part_unknown", eligibility.unknown_body_part),
        (is_frontal(header, population), "not_frontal", "view_unknown", eligibility.unknown_view),
        (age_in_range(header, population), "age_out_of_range", "age_unknown", eligibility.unknown_age),
    )
    for inside, outside_reason, unknown_reason, unknown in checks:
        if inside is False:
            return outside_reason
        if inside is None and unknown == "refuse":
            return unknown_reason
    return None


def for_processing(header: Dataset) -> bool:
    return (_text(header, "PresentationIntentType").upper() == "FOR PROCESSING"
            or _text(header, "SOPClassUID") in FOR_PROCESSING_SOP_CLASSES)


def is_chest(header: Dataset, population: IntendedPopulation) -> bool | None:
    """True: every statement of the body part is a chest; False: one is not; None: the header does not say."""
    stated = [_codes(header, "AnatomicRegionSequence", population.anatomic_regions)]
    if body_part := _text(header, "BodyPartExamined").upper():
        stated.append([body_part in population.body_parts])
    return _all_of(stated)


def is_frontal(header: Dataset, population: IntendedPopulation) -> bool | None:
    """As `is_chest`, for the projection (a lateral, oblique or decubitus view is not frontal)."""
    stated = [_codes(header, "ViewCodeSequence", population.view_codes)]
    if position := _text(header, "ViewPosition").upper():
        stated.append([position in population.view_positions])
    return _all_of(stated)


def age_in_range(header: Dataset, population: IntendedPopulation) -> bool | None:
    months = age_months(header)
    return None if months is None else population.min_age_months <= months <= population.max_age_months


def age_months(header: Dataset) -> int | None:
    """Age at the picture in completed months: Patient Age when it is well formed, else from the birth date and
    the study (or series, acquisition, content) date; None when neither says."""
    if match := _AGE.fullmatch(_text(header, "PatientAge").upper()):
        count, unit = int(match[1]), match[2]
        return {"Y": count * 12, "M": count, "W": int(count * 7 / _DAYS_PER_MONTH), "D": int(count / _DAYS_PER_MONTH)}[
            unit
        ]
    born = _date(header, "PatientBirthDate")
    seen = next((date for name in _DATES_SEEN if (date := _date(header, name)) is not None), None)
    if born is None or seen is None or born > seen:
        return None
    return (seen.year - born.year) * 12 + seen.month - born.month - (seen.day < born.day)


def _all_of(stated: Iterable[list[bool]]) -> bool | None:
    flat = [inside for group in stated for inside in group]
    return all(flat) if flat else None


def _codes(header: Dataset, keyword: str, allowed: tuple[str, ...]) -> list[bool]:
    """For each coded item of the sequence: is its `SCHEME:VALUE` among `allowed`."""
    found = []
    for item in _sequence(header, keyword):
        scheme = _text(item, "CodingSchemeDesignator").upper()
        value = _text(item, "CodeValue") or _text(item, "LongCodeValue") or _text(item, "URNCodeValue")
        if scheme or value:
            found.append(f"{scheme}:{value}" in allowed)
    return found


def _sequence(header: Dataset, keyword: str) -> list[Dataset]:
    try:
        return list(header.get(keyword) or [])
    except Exception:  # a malformed sequence reads as absent; its message could quote values
        return []


def _text(header: Dataset, keyword: str) -> str:
    try:
        value = header.get(keyword)
    except Exception:  # a value pydicom cannot convert reads as absent
        return ""
    return "" if value is None else str(value).strip()


def _date(header: Dataset, keyword: str) -> datetime.date | None:
    text = _text(header, keyword)
    try:
        return datetime.datetime.strptime(text, "%Y%m%d").date() if _DATE.fullmatch(text) else None
    except ValueError:  # 20240230
        return None
