"""Validated operating points per precision (`radiograph.precision`): the validation split scored by TensorFlow
float32 (the reference) and by OpenVINO at each precision, the figures taken at the model's own thresholds."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from radiograph import openvino_model
from radiograph.contract import PROBABILITY_OUTPUT
from radiograph.precision import FLOAT32, PRECISIONS, PointFigures, PrecisionFigures, PrecisionPoints
from radiograph.runtime import ScoringModel
from radiograph.savedmodel import LoadedModel
from training import metrics
from training.data import labels_of, load_pixels
from training.evaluate import VALIDATION, examples_for, score
from training.thresholds import SCREENING, SCREENING_SENSITIVITY

log = logging.getLogger(__name__)


def figures(
    model: ScoringModel, runtime: str, pixels: np.ndarray, y: np.ndarray, reference: np.ndarray
) -> PrecisionFigures:
    """`model`'s figures on uint8 [n, H, W] pictures labelled `y`, against the reference's P."""
    p = score(model, pixels)[PROBABILITY_OUTPUT]
    difference = np.abs(p - reference)
    points = {
        name: PointFigures(
            threshold=point.threshold,
            sensitivity=float(np.mean(p[y == 1] >= point.threshold)),
            specificity=float(np.mean(p[y == 0] < point.threshold)),
            flipped=int(np.sum((p >= point.threshold) != (reference >= point.threshold))),
        )
        for name, point in model.metadata.operating_points.items()
    }
    return PrecisionFigures(
        runtime=runtime, auc=metrics.auc(y, p), max_abs_difference=float(difference.max(initial=0.0)),
        mean_abs_difference=float(difference.mean()) if len(p) else 0.0, operating_points=points,
    )


def precision_points(
    reference: LoadedModel, pixels: np.ndarray, y: np.ndarray, split: str, cache_dir: Path | None
) -> PrecisionPoints:
    """Every precision this machine's OpenVINO can compute natively (float32 by TensorFlow when OpenVINO is
    not installed); bfloat16 is skipped, with a warning, on a CPU without native bfloat16."""
    import tensorflow as tf

    log.info("scoring %d pictures with tensorflow float32 (the reference)", len(pixels))
    p_reference = score(reference, pixels)[PROBABILITY_OUTPUT]
    scored: dict[str, PrecisionFigures] = {}
    if not openvino_model.available():
        log.warning("openvino is not installed: only float32 (tensorflow) is scored")
        scored[FLOAT32] = figures(reference, f"tensorflow {tf.__version__}", pixels, y, p_reference)
    else:
        import openvino as ov

        for precision in PRECISIONS:
            if precision != FLOAT32 and not openvino_model.native_bfloat16():
                log.warning("%s not scored: this CPU has no native %s", precision, precision)
                continue
            log.info("scoring %d pictures with openvino %s", len(pixels), precision)
            model = openvino_model.OpenVinoModel(reference, precision, cache_dir)
            scored[precision] = figures(model, f"openvino {ov.get_version()}", pixels, y, p_reference)
    return PrecisionPoints(
        model_version=reference.version, split=split, n_positive=int(np.sum(y == 1)), n_negative=int(np.sum(y == 0)),
        targets={SCREENING: SCREENING_SENSITIVITY}, precisions=scored,
    )


def validation_points(reference: LoadedModel, data_dir: Path, cache_dir: Path | None) -> PrecisionPoints:
    """`precision_points` on the model's patient-grouped validation split, rebuilt from its stored split settings."""
    examples = examples_for(data_dir, VALIDATION, reference)
    pixels = load_pixels(examples, reference.metadata.input_height)
    split = f"patient-grouped validation split, settings {reference.metadata.training.get('split')}"
    return precision_points(reference, pixels, labels_of(examples), split, cache_dir)
