"""The site baseline: the first images a model version scores at this site after go-live, frozen into a drift
reference of their own.

The model's own reference comes from its validation split, about 74% PNEUMONIA, so against it the PSI of
P(pneumonia) measures a site's case mix as much as the model: a hospital with 10% positives alerts on day one.
Once `GATEWAY_DRIFT_BASELINE_IMAGES` images of a version have been scored, their quantile bins become the reference
of P (and, with `GATEWAY_DRIFT_BASELINE_INPUTS`, of the acquisition features): drift then means "no longer like this
site's own start". In `GATEWAY_DRIFT_BASELINE_DIR`, per version: `site_baseline_v<version>.json` (the frozen
reference, `radiograph.drift`'s format, written atomically) and, while collecting,
`site_baseline_v<version>.partial.npz` (the values so far, saved every `SAVE_EVERY` images, so a restart resumes
the count). Only feature values are kept: no image, no identifier.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from radiograph.drift import DriftReference, DriftReferenceError, quantile_reference, write_atomically

log = logging.getLogger(__name__)

SAVE_EVERY = 50
"""Images between two saves of a collection in progress (a restart loses at most these)."""


class SiteBaseline:
    """One model version's baseline: collecting until `size` images, then frozen. Not thread-safe: the drift
    monitor calls it under its lock."""

    def __init__(self, directory: Path, version: int, size: int, features: Sequence[str]) -> None:
        self.path = directory / f"site_baseline_v{version}.json"
        self.partial_path = directory / f"site_baseline_v{version}.partial.npz"
        self.version, self.size, self.features = version, size, list(features)
        self.frozen: DriftReference | None = None
        self._values = np.zeros((size, len(self.features)), np.float64)
        self.n = 0
        self._saved = 0

    def open(self) -> None:
        """Load the frozen baseline, or resume a collection in progress (a disk read: outside the monitor's lock)."""
        try:
            frozen = DriftReference.load(self.path)
            if frozen.model_version != self.version or not set(self.features) <= set(frozen.features):
                raise DriftReferenceError(f"it is version {frozen.model_version}'s or lacks features")
            self.frozen = frozen
            return
        except FileNotFoundError:
            pass
        except (OSError, DriftReferenceError) as exc:
            log.error("site baseline %s unusable (%s): collecting a new one", self.path, exc)
        try:
            with np.load(self.partial_path, allow_pickle=False) as saved:
                values, names = saved["values"], [str(name) for name in saved["names"]]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError) as exc:
            log.error("site baseline collection %s unusable (%s): starting over", self.partial_path, type(exc).__name__)
            return
        if names == self.features and values.ndim == 2:
            self.n = self._saved = min(len(values), self.size)
            self._values[: self.n] = values[: self.n]

    @property
    def images(self) -> int:
        return self.size if self.frozen is not None else self.n

    def add(self, values: Mapping[str, np.ndarray]) -> DriftReference | None:
        """Count scored images (feature name → values) toward the baseline; returns it the moment it freezes."""
        if self.frozen is not None:
            return None
        batch = np.stack([np.asarray(values[name], np.float64) for name in self.features], axis=1)
        taken = batch[: self.size - self.n]
        self._values[self.n : self.n + len(taken)] = taken
        self.n += len(taken)
        if self.n == self.size:
            return self._freeze()
        if self.n - self._saved >= SAVE_EVERY:
            self._save_partial()
        return None

    def _freeze(self) -> DriftReference:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        self.frozen = DriftReference(
            {name: quantile_reference(self._values[:, i]) for i, name in enumerate(self.features)},
            self.version, self.size, built_from=f"site baseline: the first {self.size} images scored, frozen {when}",
        )
        try:
            self.frozen.write(self.path)
            self.partial_path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("site baseline of version %d not saved (%s): in use until the next restart",
                      self.version, type(exc).__name__)
        log.info("site baseline of model version %d frozen from %d images", self.version, self.size)
        return self.frozen

    def _save_partial(self) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, values=self._values[: self.n], names=np.array(self.features))
        try:
            write_atomically(self.partial_path, buffer.getvalue())
            self._saved = self.n
        except OSError as exc:
            log.error("site baseline collection not saved (%s)", type(exc).__name__)

