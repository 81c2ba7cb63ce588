"""Only the model's intended population is scored (issue 26, item 1): each header rule of the intake, the same rules
in deploy/orthanc's Lua forwarder (run by the real Orthanc on the same headers), the population read from the
served model's metadata, and a knee film and an adult chest film refused end to end with a FailureReason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.uid import DigitalXRayImageStorageForProcessing

from devtools.pacs import Gateway, Orthanc, Picture, multipart, one_sr, radiograph, to_bytes
from radiograph.contract import IntendedPopulation, ModelMetadata
from serving import errors
from serving.config import Settings
from serving.dicomweb import intake, stow
from serving.dicomweb.population import REASONS, Eligibility, age_months
from serving.dicomweb.service import DicomwebService
from tests.dicomweb.test_dicomweb_errors import failures, post

GRAY = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
DEFAULT = Eligibility(IntendedPopulation())
# PATIENT_TAGS: born 2019-03-14, studied 2024-02-29 (59 months); radiograph() adds CHEST and PA


def code(scheme: str, value: str, meaning: str = "x") -> Dataset:
    item = Dataset()
    item.CodingSchemeDesignator, item.CodeValue, item.CodeMeaning = scheme, value, meaning
    return item


def without(*keywords: str) -> Callable[[Dataset], None]:
    return lambda ds: [delattr(ds, k) for k in keywords if k in ds]  # type: ignore[func-returns-value]


def setting(**values: object) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        with config.disable_value_validation():  # some cases are invalid on purpose
            for keyword, value in values.items():
                if keyword in ds:  # an element keeps the validation mode it was made with
                    delattr(ds, keyword)
                setattr(ds, keyword, value)
    return change


def both(*changes: Callable[[Dataset], None]) -> Callable[[Dataset], None]:
    return lambda ds: [change(ds) for change in changes]  # type: ignore[func-returns-value]


CHEST_CODE, THORAX_CODE, KNEE_CODE = code("SCT", "51185008"), code("SCT", "43799004"), code("SCT", "72696002")
AP_CODE, LATERAL_CODE = code("SCT", "399348003"), code("SCT", "399067008")
# name: (change to the eligible radiograph, the intake's reason or None when it is scored)
CASES: dict[str, tuple[Callable[[Dataset], None], str | None]] = {
    "pa_chest": (lambda ds: None, None),
    "chest_by_code_ap_by_code": (both(without("BodyPartExamined", "ViewPosition"),
                                      setting(AnatomicRegionSequence=[CHEST_CODE], ViewCodeSequence=[AP_CODE])), None),
    "thorax_code": (both(without("BodyPartExamined"), setting(AnatomicRegionSequence=[THORAX_CODE])), None),
    "legacy_snomed_rt": (both(without("BodyPartExamined", "ViewPosition"), setting(
        AnatomicRegionSequence=[code("SRT", "T-D3000")], ViewCodeSequence=[code("SRT", "R-10206")])), None),
    "lower_case_text": (setting(BodyPartExamined="chest", ViewPosition="ap"), None),
    "knee": (setting(BodyPartExamined="KNEE"), "not_chest"),
    "knee_by_code": (both(without("BodyPartExamined"), setting(AnatomicRegionSequence=[KNEE_CODE])), "not_chest"),
    "chest_text_knee_code": (setting(AnatomicRegionSequence=[KNEE_CODE]), "not_chest"),
    "abdomen": (setting(BodyPartExamined="ABDOMEN"), "not_chest"),
    "no_body_part": (without("BodyPartExamined"), "body_part_unknown"),
    "lateral": (setting(ViewPosition="LL"), "not_frontal"),
    "lateral_by_code": (both(without("ViewPosition"), setting(ViewCodeSequence=[LATERAL_CODE])), "not_frontal"),
    "pa_with_a_lateral_code": (setting(ViewCodeSequence=[LATERAL_CODE]), "not_frontal"),
    "oblique": (setting(ViewPosition="LAO"), "not_frontal"),
    "no_view": (without("ViewPosition"), "view_unknown"),
    "adult_by_birth_date": (setting(PatientBirthDate="19800101"), "age_out_of_range"),
    "adult_by_age": (setting(PatientAge="034Y"), "age_out_of_range"),
    "age_1y": (setting(PatientAge="001Y"), None),
    "age_5y": (setting(PatientAge="005Y"), None),
    "age_6y": (setting(PatientAge="006Y"), "age_out_of_range"),
    "age_11_months": (setting(PatientAge="011M"), "age_out_of_range"),
    "age_71_months": (setting(PatientAge="071M"), None),
    "age_72_months": (setting(PatientAge="072M"), "age_out_of_range"),
    "age_60_weeks": (setting(PatientAge="060W"), None),
    "age_300_days": (setting(PatientAge="300D"), "age_out_of_range"),
    "malformed_age_uses_the_dates": (setting(PatientAge="4 years"), None),
    "born_12_months_before": (setting(PatientBirthDate="20230228"), None),
    "born_11_months_before": (setting(PatientBirthDate="20230301"), "age_out_of_range"),
    "no_age": (without("PatientBirthDate"), "age_unknown"),
    "born_after_the_study": (setting(PatientBirthDate="20250101"), "age_unknown"),
    "impossible_birth_date": (setting(PatientBirthDate="20190230"), "age_unknown"),
    "no_study_date_acquisition_date": (both(without("StudyDate"), setting(AcquisitionDate="20240229")), None),
    "for_processing": (setting(PresentationIntentType="FOR PROCESSING"), "for_processing"),
    "for_presentation": (setting(PresentationIntentType="FOR PRESENTATION"), None),
    "for_processing_sop_class": (setting(SOPClassUID=DigitalXRayImageStorageForProcessing), "for_processing"),
    "ct": (setting(Modality="CT"), "unsupported_modality"),
    "multi_frame": (setting(NumberOfFrames=2), "multi_frame"),
}


def instance(case: str) -> Dataset:
    ds = radiograph(GRAY)
    CASES[case][0](ds)
    return ds


def verdict(ds: Dataset, eligibility: Eligibility = DEFAULT) -> str | None:
    settings = Settings()
    result = intake.examine(to_bytes(ds), modalities=settings.dicom_modalities, max_pixels=settings.max_image_pixels,
                            eligibility=eligibility)
    return None if isinstance(result, intake.Accepted) else result.reason


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_header_rule(case: str) -> None:
    assert verdict(instance(case)) == CASES[case][1]


@pytest.mark.parametrize(
    ("case", "setting_name"),
    [("no_body_part", "unknown_body_part"), ("no_view", "unknown_view"), ("no_age", "unknown_age")],
)
def test_a_header_that_does_not_say_is_scored_only_when_the_setting_accepts_it(case: str, setting_name: str) -> None:
    accepting = Eligibility(IntendedPopulation(), **{setting_name: "accept"})
    assert verdict(instance(case), accepting) is None
    assert verdict(instance("knee" if setting_name != "unknown_age" else "adult_by_age"), accepting) is not None


def test_ages_are_completed_months() -> None:
    ds = Dataset()
    ds.PatientBirthDate, ds.StudyDate = "20200131", "20200229"
    assert age_months(ds) == 0
    ds.StudyDate = "20200301"
    assert age_months(ds) == 1
    ds.PatientAge = "002Y"
    assert age_months(ds) == 24  # the stated age wins over the dates


def test_the_population_comes_from_the_served_models_metadata(tmp_path: object) -> None:
    """A model that states another population (adults, any view) is held to it; one whose metadata predates the
    field (versions 4 and 5) gets the contract's pediatric defaults; no metadata yet: 503, nothing taken."""
    settings = Settings(spool_dir=tmp_path, results_dicomweb_url="http://127.0.0.1:9")  # type: ignore[arg-type]
    shipped = ModelMetadata.model_validate_json(
        '{"labels": ["NORMAL", "PNEUMONIA"], "input_height": 224, "input_width": 224, "operating_points": {}}'
    )
    adults = shipped.model_copy(update={"intended_population": IntendedPopulation(
        min_age_months=216, max_age_months=1200, view_positions=("PA", "AP", "LL"))})

    def eligibility_for(metadata: ModelMetadata | Exception) -> Eligibility:
        async def answer(version: int | None = None) -> ModelMetadata:
            if isinstance(metadata, Exception):
                raise metadata
            return metadata

        service = DicomwebService(settings, CollectorRegistry())
        service.scorer = SimpleNamespace(backend=SimpleNamespace(metadata=answer))  # type: ignore[assignment]
        return asyncio.run(service.eligibility())

    assert shipped.intended_population == IntendedPopulation()
    pediatric, adult = eligibility_for(shipped), eligibility_for(adults)
    lateral_adult = instance("lateral")
    lateral_adult.PatientAge = "034Y"
    cases = [instance("adult_by_age"), lateral_adult, instance("age_5y")]
    assert [verdict(ds, pediatric) for ds in cases] == ["age_out_of_range", "not_frontal", None]
    assert [verdict(ds, adult) for ds in cases] == [None, None, "age_out_of_range"]
    with pytest.raises(errors.NotReady):
        eligibility_for(errors.UpstreamUnavailable("TF Serving is down"))


def test_the_lua_forwards_what_the_gateway_accepts(orthanc: Orthanc, dicomweb_gateway: Gateway) -> None:
    """deploy/orthanc's WhyNotForwarded, run by Orthanc on each case's tags as Orthanc stored them, gives the
    intake's reason (nil where the gateway scores it)."""
    lua_reasons = {}
    for case in sorted(CASES):
        instance_id = orthanc.upload(to_bytes(instance(case)))
        printed = orthanc.lua(
            f"local tags = ParseJson(RestApiGet('/instances/{instance_id}/simplified-tags'))\n"
            "print(WhyNotForwarded(tags) or 'forwarded')"
        )
        lua_reasons[case] = printed.strip()
    assert lua_reasons == {case: reason or "forwarded" for case, (_, reason) in CASES.items()}


def test_a_knee_and_an_adult_chest_get_a_failure_reason_and_no_sr(
    orthanc: Orthanc, dicomweb_gateway: Gateway, pneumonia_picture: Picture
) -> None:
    """Sent to the gateway, each is refused (0xA900) and counted by reason; stored into Orthanc, neither is
    forwarded (an eligible film stored after them is scored) and neither study gets an SR."""
    knee, adult = radiograph(pneumonia_picture.gray), radiograph(pneumonia_picture.gray)
    knee.BodyPartExamined = "KNEE"
    adult.PatientBirthDate = "19790605"
    counted = {r: dicomweb_gateway.metric("gateway_dicomweb_instances_total", result=r) for r in REASONS}
    status, answer = post(dicomweb_gateway, *multipart(to_bytes(knee), to_bytes(adult)))
    assert status == 409, answer
    assert failures(answer) == [(knee.SOPInstanceUID, stow.DATA_SET_DOES_NOT_MATCH),
                                (adult.SOPInstanceUID, stow.DATA_SET_DOES_NOT_MATCH)]
    after = {r: dicomweb_gateway.metric("gateway_dicomweb_instances_total", result=r) for r in REASONS}
    assert {r: after[r] - counted[r] for r in REASONS if after[r] != counted[r]} == {
        "not_chest": 1, "age_out_of_range": 1}

    eligible = radiograph(pneumonia_picture.gray)
    for ds in (knee, adult, eligible):
        orthanc.upload(to_bytes(ds))
    one_sr(orthanc, dicomweb_gateway, eligible.StudyInstanceUID)
    assert {r: dicomweb_gateway.metric("gateway_dicomweb_instances_total", result=r) for r in REASONS} == after
    assert orthanc.results(knee.StudyInstanceUID) == [] and orthanc.results(adult.StudyInstanceUID) == []
