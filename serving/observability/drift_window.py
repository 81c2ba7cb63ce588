"""The drift window of one model version: the reference bin of each feature of its last N scored images, and the
reference each feature is measured against (the model's validation split, or this site's frozen baseline)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from radiograph import acquisition
from radiograph.drift import PROBABILITY, DriftReference, FeatureReference, psi
from serving.observability.site_baseline import SiteBaseline

FEATURES = (*acquisition.FEATURES, PROBABILITY)
VALIDATION, SITE = "validation", "site"


class Window:
    """A ring of the last `size` images' bin indices under one reference per feature, with running bin counts."""

    def __init__(self, references: Mapping[str, FeatureReference], size: int) -> None:
        self.names = [name for name in FEATURES if name in references]
        self.references = [references[name] for name in self.names]
        self.size = size
        self.bins = np.zeros((size, len(self.names)), np.uint8)
        self.counts = np.zeros((len(self.names), max(len(r.proportions) for r in self.references)), np.int64)
        self.n = 0
        self._next = 0
        self._columns = np.arange(len(self.names))

    def bin_rows(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Feature values (name → [m]) → uint8 [m, features] bin indices; computed outside the lock."""
        return np.stack([r.bins_of(values[name]) for name, r in zip(self.names, self.references, strict=True)],
                        axis=1).astype(np.uint8)

    def add(self, rows: np.ndarray) -> None:
        for row in rows:
            if self.n == self.size:
                np.subtract.at(self.counts, (self._columns, self.bins[self._next]), 1)
            else:
                self.n += 1
            self.bins[self._next] = row
            np.add.at(self.counts, (self._columns, row), 1)
            self._next = (self._next + 1) % self.size

    def psi(self) -> dict[str, float]:
        return {
            name: psi(r.proportions, self.counts[i, : len(r.proportions)] / max(self.n, 1))
            for i, (name, r) in enumerate(zip(self.names, self.references, strict=True))
        }


class VersionDrift:
    """One model version: its validation reference, its site baseline, and the window under the references in use."""

    def __init__(self, validation: DriftReference | None, baseline: SiteBaseline | None) -> None:
        self.validation, self.baseline = validation, baseline
        self.window: Window | None = None
        self.sources: dict[str, str] = {}
        """Feature → the reference its drift is measured against (`validation` or `site`)."""

    def start_window(self, size: int, site_inputs: bool) -> None:
        site = self.baseline.frozen if self.baseline is not None else None
        references: dict[str, FeatureReference] = {}
        self.sources = {}
        for name in FEATURES:
            validation = self.validation.features.get(name) if self.validation else None
            if site is not None and (name == PROBABILITY or site_inputs or validation is None):
                references[name], self.sources[name] = site.features[name], SITE
            elif validation is not None:
                references[name], self.sources[name] = validation, VALIDATION
        self.window = Window(references, size) if references else None
