"""Operating points validated per numeric precision, stored with each model version.

`<version>/assets.extra/precision_points.json` (beside the drift reference; TF Serving ignores `assets.extra`)
holds, for each precision the model was scored in on its validation split (`python -m training
precision-points`), the figures at each of the model's own thresholds and how far P moved from the SavedModel
run by TensorFlow in float32. A precision is served only when its figures are stored, were taken at the
thresholds the model's metadata has now, and keep every operating point's sensitivity target (`screening`:
0.98). float32 is the precision the thresholds were chosen in: it is validated by the model's metadata itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from radiograph.contract import ModelMetadata

POINTS_FILE = "assets.extra/precision_points.json"
FLOAT32, BFLOAT16 = "float32", "bfloat16"
PRECISIONS = (FLOAT32, BFLOAT16)


class PointFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    threshold: float
    sensitivity: float
    specificity: float
    flipped: int = Field(ge=0)
    """Validation pictures labelled otherwise than by TensorFlow float32 at this threshold."""


class PrecisionFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    runtime: str
    """What scored it: `openvino <version>` or `tensorflow <version>`."""
    auc: float
    max_abs_difference: float = Field(ge=0)
    """Largest |ΔP| against TensorFlow float32 on the split."""
    mean_abs_difference: float = Field(ge=0)
    operating_points: dict[str, PointFigures]


class PrecisionPoints(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_version: int
    split: str
    """What was scored, in words (the split and its settings)."""
    n_positive: int
    n_negative: int
    targets: dict[str, float]
    """Least sensitivity each operating point must keep (`screening`: 0.98), as training chose them."""
    precisions: dict[str, PrecisionFigures]

    @classmethod
    def read(cls, model_path: Path) -> PrecisionPoints | None:
        path = model_path / POINTS_FILE
        return cls.model_validate_json(path.read_text()) if path.is_file() else None

    def write(self, model_path: Path) -> Path:
        path = model_path / POINTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=1) + "\n")
        return path


def refusal(metadata: ModelMetadata, points: PrecisionPoints | None, precision: str) -> str | None:
    """Why `precision` may not be served with this model (None: it may)."""
    if precision == FLOAT32:
        return None
    figures = points.precisions.get(precision) if points else None
    if figures is None:
        return f"{precision} has no validated operating points ({POINTS_FILE}; `python -m training precision-points`)"
    for name, point in metadata.operating_points.items():
        stored = figures.operating_points.get(name)
        if stored is None or stored.threshold != point.threshold:
            return f"{precision}'s stored operating points were not taken at the model's {name!r} threshold"
    assert points is not None
    for name, target in points.targets.items():
        sensitivity = figures.operating_points[name].sensitivity
        if sensitivity < target:
            return (f"{precision} keeps a validation {name!r} sensitivity of {sensitivity:.3f}, below its target "
                    f"{target:g}")
    return None
