"""Optional: the heatmap overlay as a Secondary Capture image, for viewers that do not render SR. The words
NOT FOR DIAGNOSIS are burned into the pixels (and Burned In Annotation says so)."""

from __future__ import annotations

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from radiograph.overlay import overlay
from serving.dicomweb import uids
from serving.dicomweb.report import MANUFACTURER, SERIES_NUMBER, carry_over, content_key, evidence_of
from serving.scoring import Verdict

BANNER = "NOT FOR DIAGNOSIS"
MIN_SIDE = 448
"""The model sees 224 px: the overlay is enlarged so the burned-in text stays legible."""


def annotated(pixels: np.ndarray, heatmap: np.ndarray, verdict: Verdict) -> np.ndarray:
    """uint8 RGB [H, W, 3]: the overlay, enlarged, with the banner and the verdict burned in."""
    rgb = Image.fromarray(overlay(pixels, heatmap, verdict.probability))
    scale = max(1, -(-MIN_SIDE // min(rgb.size)))
    rgb = rgb.resize((rgb.width * scale, rgb.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(rgb)
    lines = [BANNER, f"{verdict.model_name} v{verdict.model_version}: P(pneumonia) {verdict.probability:.3f}"]
    font_size = max(12, rgb.width // 28)
    y = 4.0
    for line in lines:
        box = draw.textbbox((6, y), line, font_size=font_size)
        draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=(0, 0, 0))
        draw.text((6, y), line, fill=(255, 255, 0), font_size=font_size)
        y = box[3] + 8
    return np.asarray(rgb, dtype=np.uint8)


def orientation(source: Dataset) -> tuple[str, str]:
    """The source's Patient Orientation (the overlay keeps its geometry); else a chest film's usual display."""
    given = [str(value) for value in getattr(source, "PatientOrientation", None) or []]
    valid = {member.value for member in hd.PatientOrientationValuesBiped}
    if len(given) == 2 and all(value in valid for value in given):
        return given[0], given[1]
    return "L", "F"


def build_sc(source: Dataset, pixels: np.ndarray, heatmap: np.ndarray, verdict: Verdict) -> hd.sc.SCImage:
    name, version, evidence = verdict.model_name, verdict.model_version, evidence_of(source)
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=evidence,
        pixel_array=annotated(pixels, heatmap, verdict),
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=uids.result_series(str(source.StudyInstanceUID), name, version, "sc"),
        series_number=SERIES_NUMBER["sc"],
        sop_instance_uid=uids.result_instance(
            str(source.SOPInstanceUID), name, version, "sc", content_key(evidence, verdict)
        ),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=orientation(source),
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    image.BurnedInAnnotation = "YES"
    if "Laterality" not in image:
        image.Laterality = None  # type: ignore[assignment]  # Type 2C: present, empty (the chest is not a paired structure)
    image.SeriesDescription = "AI heatmap: pneumonia (NOT FOR DIAGNOSIS)"
    image.ImageComments = BANNER
    carry_over(evidence, image)
    return image
