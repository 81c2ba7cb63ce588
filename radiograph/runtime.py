"""Which runtime and numeric precision score a model: one choice for the gateway's embedded backend and for
`python -m training evaluate`, so that evaluation scores exactly as the gateway serves.

- runtime `auto` (default): OpenVINO where it is installed and has a CPU device, else TensorFlow. OpenVINO
  gives the SavedModel's own outputs (checked at load) at about half TensorFlow's cost per image on a CPU, and
  computes bfloat16 natively where the CPU can (AMX, AVX512-BF16).
- precision `auto` (default): the fastest precision the runtime offers on this CPU whose operating points are
  validated (`radiograph.precision`): bfloat16 on OpenVINO with native bfloat16, else float32.
- An explicit runtime or precision that cannot be had is refused (`RuntimeRefused`), never silently replaced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from radiograph import openvino_model
from radiograph.contract import ModelMetadata
from radiograph.precision import BFLOAT16, FLOAT32, PrecisionPoints, refusal
from radiograph.savedmodel import LoadedModel

log = logging.getLogger(__name__)

Runtime = Literal["auto", "tensorflow", "openvino"]
Precision = Literal["auto", "float32", "bfloat16"]
TENSORFLOW, OPENVINO = "tensorflow", "openvino"
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pneumonia-openvino"
"""Where converted OpenVINO models are kept by default (outside the model repository, which may be read-only)."""


class RuntimeRefused(RuntimeError):
    """The runtime or precision asked for cannot score this model here."""


class ScoringModel(Protocol):
    """What scores images: `LoadedModel` (TensorFlow) or `OpenVinoModel`."""

    version: int
    metadata: ModelMetadata
    path: Path
    parallel_calls: int
    """Calls worth running at once (TensorFlow: 1, it uses every core per call; OpenVINO: one per stream)."""

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]: ...

    def predict(self, images: np.ndarray) -> np.ndarray: ...

    def warm_up(self, batch_sizes: Iterable[int]) -> None: ...


@dataclass(frozen=True)
class Scoring:
    """The chosen runtime and precision, the model that scores, and why (one line per candidate passed over)."""

    runtime: str
    precision: str
    model: ScoringModel
    passed_over: tuple[str, ...] = ()


def open_scoring(
    reference: LoadedModel, runtime: Runtime = "auto", precision: Precision = "auto", cache_dir: Path | None = None
) -> Scoring:
    """The model that scores `reference`'s `serving_default` with the runtime and precision asked for."""
    use_openvino = runtime == OPENVINO or (runtime == "auto" and openvino_model.available())
    if runtime == OPENVINO and not openvino_model.available():
        raise RuntimeRefused("the openvino runtime is not installed or has no CPU device")
    if not use_openvino:
        if precision == BFLOAT16:
            raise RuntimeRefused("bfloat16 is served by the openvino runtime only")
        return Scoring(TENSORFLOW, FLOAT32, reference)
    points = PrecisionPoints.read(reference.path)
    passed_over: list[str] = []
    for candidate in _candidates(precision):
        reason = refusal(reference.metadata, points, candidate)
        if reason is None:
            try:
                return Scoring(OPENVINO, candidate, openvino_model.OpenVinoModel(reference, candidate, cache_dir),
                               tuple(passed_over))
            except openvino_model.ConversionFailed as exc:
                reason = f"openvino {candidate}: {exc}"
        if precision != "auto" or (runtime == OPENVINO and candidate == FLOAT32):
            raise RuntimeRefused(f"model version {reference.version}: {reason}")
        log.warning("%s not used: %s", candidate, reason)
        passed_over.append(reason)
    return Scoring(TENSORFLOW, FLOAT32, reference, tuple(passed_over))


def _candidates(precision: Precision) -> list[str]:
    if precision != "auto":
        if precision == BFLOAT16 and not openvino_model.native_bfloat16():
            raise RuntimeRefused("this CPU has no native bfloat16 (AMX or AVX512-BF16)")
        return [precision]
    return [BFLOAT16, FLOAT32] if openvino_model.native_bfloat16() else [FLOAT32]
