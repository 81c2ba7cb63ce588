"""The model contract: what every exported SavedModel provides and every consumer relies on.

Layout (TensorFlow Serving's): `<model_root>/<version>/saved_model.pb` + `variables/`, version a
positive integer.

Signatures:
- `serving_default`: `image` uint8 [batch, H, W, 1] → `probability` float32 [batch] = P(positive label)
  and `subtype_probabilities` float32 [batch, len(subtype_labels)].
  Casting, intensity normalisation, scaling and channel tiling all happen inside the graph.
- `explain`: `image` → `probability` and `heatmap` float32 [batch, h, w] in [0, 1], a class
  activation map of the positive class on the backbone's last feature grid (7×7), max-normalised.
- `metadata`: no inputs → `json` string scalar, a `ModelMetadata` document. Labels, input geometry,
  operating-point thresholds and the intended population are read from here, never re-typed by a consumer.

Models exported before `intended_population` existed (versions 4 and 5) get `IntendedPopulation()`'s defaults,
which describe the data set every version so far was trained on: frontal pediatric chest radiographs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SERVING_SIGNATURE = "serving_default"
METADATA_SIGNATURE = "metadata"
EXPLAIN_SIGNATURE = "explain"
# PredictionLog records TF Serving replays when it loads a version (its own name for the file)
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
IMAGE_INPUT = "image"
PROBABILITY_OUTPUT = "probability"
SUBTYPE_OUTPUT = "subtype_probabilities"
HEATMAP_OUTPUT = "heatmap"
METADATA_OUTPUT = "json"
SCREENING = "screening"


class OperatingPoint(BaseModel):
    """A decision threshold and the validation figures it was chosen with."""

    model_config = ConfigDict(frozen=True)

    threshold: float = Field(ge=0.0, le=1.0)
    rule: str
    """How the threshold was chosen, in words."""
    validation: dict[str, float] = Field(default_factory=dict)
    """Validation metrics at this threshold (sensitivity, specificity, ...)."""


class IntendedPopulation(BaseModel):
    """Which radiographs the model was made for, in the DICOM header's terms. The PACS intake refuses any other
    (`serving/dicomweb/population.py`); the defaults are the Kermany pediatric data set's (MODEL_CARD.md)."""

    model_config = ConfigDict(frozen=True)

    body_parts: tuple[str, ...] = ("CHEST", "THORAX")
    """Body Part Examined (0018,0015) values, upper case."""
    anatomic_regions: tuple[str, ...] = (
        "SCT:51185008", "SCT:43799004", "SCT:816094009", "SRT:T-D3000", "SRT:T-D3200"
    )
    """Anatomic Region Sequence codes as `SCHEME:VALUE`: thoracic structure, chest (cavity), chest; the legacy
    SNOMED-RT forms of the first two."""
    view_positions: tuple[str, ...] = ("PA", "AP")
    """View Position (0018,5101) values: the frontal projections."""
    view_codes: tuple[str, ...] = (
        "SCT:272479007", "SCT:399348003", "SCT:399033003", "SRT:R-10214", "SRT:R-10206"
    )
    """View Code Sequence codes (CID 4010) as `SCHEME:VALUE`: postero-anterior, antero-posterior, frontal; the
    legacy SNOMED-RT forms of the first two."""
    min_age_months: int = Field(12, ge=0)
    max_age_months: int = Field(71, ge=0)
    """Inclusive: 12–71 months is "aged 1–5" in completed years, as the data set states its ages."""

    @model_validator(mode="after")
    def _ages_in_order(self) -> IntendedPopulation:
        if self.min_age_months > self.max_age_months:
            raise ValueError("min_age_months is above max_age_months")
        return self


class ModelMetadata(BaseModel):
    model_config = ConfigDict(frozen=True)

    labels: tuple[str, str]
    """(negative, positive) class names; `probability` is P(labels[1])."""
    input_height: int = Field(gt=0)
    input_width: int = Field(gt=0)
    input_channels: Literal[1] = 1
    input_dtype: Literal["uint8"] = "uint8"
    operating_points: dict[str, OperatingPoint]
    subtype_labels: tuple[str, ...] = ()
    """Order of `subtype_probabilities` (e.g. normal, bacteria, virus); empty when the model has none."""
    default_operating_point: str = SCREENING
    description: str = ""
    training: dict[str, object] = Field(default_factory=dict)
    """Provenance: data, seed, backbone, validation figures."""
    intended_population: IntendedPopulation = Field(default_factory=IntendedPopulation)
    """Who the model is for; absent from models exported before it existed, which get the defaults."""

    @property
    def negative_label(self) -> str:
        return self.labels[0]

    @property
    def positive_label(self) -> str:
        return self.labels[1]

    def operating_point(self, name: str | None = None) -> tuple[str, OperatingPoint]:
        chosen = name or self.default_operating_point
        try:
            return chosen, self.operating_points[chosen]
        except KeyError:
            known = ", ".join(sorted(self.operating_points))
            raise KeyError(f"unknown operating point {chosen!r}; the model has: {known}") from None

    def label_for(self, probability: float, threshold: float) -> str:
        return self.positive_label if probability >= threshold else self.negative_label


def model_versions(model_root: Path) -> list[int]:
    """Versions under `model_root` that hold a SavedModel, ascending."""
    if not model_root.is_dir():
        return []
    return sorted(
        int(child.name)
        for child in model_root.iterdir()
        if child.name.isdigit() and int(child.name) > 0 and (child / "saved_model.pb").is_file()
    )


def resolve_model_dir(model: Path, version: int | None = None) -> tuple[Path, int]:
    """Accept a model root (newest or given version) or a version directory itself."""
    if (model / "saved_model.pb").is_file() and model.name.isdigit():
        return model, int(model.name)
    versions = model_versions(model)
    if version is None:
        if not versions:
            raise FileNotFoundError(f"no SavedModel version under {model}")
        version = versions[-1]
    elif version not in versions:
        raise FileNotFoundError(f"version {version} not found under {model} (have {versions})")
    return model / str(version), version
