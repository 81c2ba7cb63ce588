"""The drift reference stored with each exported model, and the population stability index (PSI).

`models/pneumonia/<version>/assets.extra/drift_reference.json` (TF Serving ignores `assets.extra`, so
the file versions with the model without touching the graph) holds, per feature of
`radiograph.acquisition` and for P(pneumonia) (`probability`), the validation split's quantile bin
edges and the share of validation pictures in each bin. `training.drift_reference` writes it; the
gateway bins its sliding window on the same edges and reports PSI = Σ (w - r) ln(w / r): 0.1 is a
notable shift, 0.25 a significant one. A model without the file serves; its drift is unavailable.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REFERENCE_FILE = "drift_reference.json"
REFERENCE_DIR = "assets.extra"
PROBABILITY = "probability"
"""The feature name of the model's own score."""
FORMAT = 1
BINS = 10
PROPORTION_FLOOR = 1e-4
"""Empty bins count as this share, so that PSI stays finite."""
NOTABLE, SIGNIFICANT = 0.1, 0.25


class DriftReferenceError(ValueError):
    """The reference file exists but cannot be used."""


@dataclass(frozen=True)
class FeatureReference:
    edges: np.ndarray
    """float64 [k - 1], increasing: bin i holds edges[i-1] < x <= edges[i]."""
    proportions: np.ndarray
    """float64 [k], the reference share of each bin (sums to 1)."""

    def bins_of(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, values, side="left")

    def shares(self, values: np.ndarray) -> np.ndarray:
        counts = np.bincount(self.bins_of(np.asarray(values, np.float64)), minlength=len(self.proportions))
        return counts / max(counts.sum(), 1)

    def psi(self, values: np.ndarray) -> float:
        return psi(self.proportions, self.shares(values))


def quantile_reference(values: np.ndarray, bins: int = BINS) -> FeatureReference:
    """Quantile bins of `values`; tied quantiles (e.g. many pictures with no clipped pixel) merge."""
    values = np.asarray(values, np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("a reference needs finite values")
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    reference = FeatureReference(edges, np.zeros(len(edges) + 1))
    return FeatureReference(edges, reference.shares(values))


def psi(reference: np.ndarray, window: np.ndarray) -> float:
    r = np.maximum(np.asarray(reference, np.float64), PROPORTION_FLOOR)
    w = np.maximum(np.asarray(window, np.float64), PROPORTION_FLOOR)
    return float(np.sum((w - r) * np.log(w / r)))


@dataclass(frozen=True)
class DriftReference:
    features: Mapping[str, FeatureReference]
    model_version: int
    n: int
    """Validation pictures the reference was built from."""
    built_from: str = ""

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "model_version": self.model_version,
            "n": self.n,
            "built_from": self.built_from,
            "features": {
                name: {"edges": ref.edges.tolist(), "proportions": ref.proportions.tolist()}
                for name, ref in self.features.items()
            },
        }
        return json.dumps(body, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DriftReference:
        try:
            body = json.loads(text)
            if body.get("format") != FORMAT:
                raise DriftReferenceError(f"unknown drift reference format {body.get('format')!r}")
            features = {
                name: FeatureReference(np.array(f["edges"], np.float64), np.array(f["proportions"], np.float64))
                for name, f in body["features"].items()
            }
            reference = cls(features, int(body["model_version"]), int(body["n"]), str(body.get("built_from", "")))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, DriftReferenceError):
                raise
            raise DriftReferenceError(f"malformed drift reference: {exc}") from exc
        for name, ref in features.items():
            if (len(ref.proportions) != len(ref.edges) + 1 or np.any(np.diff(ref.edges) <= 0)
                    or not math.isclose(float(ref.proportions.sum()), 1.0, abs_tol=1e-6)):
                raise DriftReferenceError(f"drift reference of {name!r}: edges and proportions do not match")
        return reference

    @classmethod
    def load(cls, path: Path) -> DriftReference:
        return cls.from_json(path.read_text(encoding="utf-8"))

    def write(self, path: Path) -> None:
        write_atomically(path, self.to_json().encode("utf-8"))


def write_atomically(path: Path, data: bytes) -> None:
    """`path` holds either its old content or all of `data`, whatever happens (a temporary file beside it,
    fsynced, renamed over it, the folder fsynced). Readable by all, as a plain write would leave it (a model's
    drift reference is read by whatever user the gateway's container runs as); `mkstemp` makes it owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def reference_path(version_dir: Path) -> Path:
    """Where the reference of the SavedModel in `version_dir` (`<root>/<version>/`) lives."""
    return version_dir / REFERENCE_DIR / REFERENCE_FILE
