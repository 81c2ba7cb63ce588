"""Label-free drift monitoring: the last `GATEWAY_DRIFT_WINDOW` scored images against the model's own
reference (`radiograph.drift`), exported as PSI per feature on the gateway's registry.

Per model version that answered, a window holds only the reference bin of each feature of each of its
last N images (uint8 [N, features]) and the bin counts; nothing else about an image is kept. The drift
gauges appear once a window is full, so a restart or a new version never reports the noise of a
handful of images. A version without a reference is served as usual and reported unavailable
(`gateway_drift_reference{model_version} 0`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Gauge

from radiograph import acquisition
from radiograph.drift import PROBABILITY, DriftReference, DriftReferenceError, psi, reference_path

log = logging.getLogger(__name__)

MAX_VERSIONS = 3
"""Windows kept at once (a rollout or canary serves two versions); the least recently scored goes."""
FEATURES = (*acquisition.FEATURES, PROBABILITY)


class Window:
    """A ring of the last `size` images' bin indices under one reference, with running bin counts."""

    def __init__(self, reference: DriftReference, size: int) -> None:
        self.names = [name for name in FEATURES if name in reference.features]
        self.references = [reference.features[name] for name in self.names]
        self.size = size
        self.bins = np.zeros((size, len(self.names)), np.uint8)
        self.counts = np.zeros((len(self.names), max(len(r.proportions) for r in self.references)), np.int64)
        self.n = 0
        self._next = 0
        self._columns = np.arange(len(self.names))

    def bin_rows(self, values: dict[str, np.ndarray]) -> np.ndarray:
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


class DriftMonitor:
    """Thread-safe: `observe` runs on worker threads, many at once."""

    def __init__(self, reference: Path | None, window: int, registry: CollectorRegistry) -> None:
        self.reference = reference
        """A model root (`<version>/assets.extra/drift_reference.json` per version) or one reference file
        (used for the version it names); None: drift unavailable."""
        self.window = window
        self._lock = threading.Lock()
        self._windows: OrderedDict[int, Window | None] = OrderedDict()
        self.drift = Gauge(
            "gateway_input_drift",
            "Population stability index of the last GATEWAY_DRIFT_WINDOW images against the model's validation "
            "reference, per feature (probability: P(pneumonia)); 0.1 notable, 0.25 significant. Set once the "
            "window is full.",
            ["model_version", "feature"],
            registry=registry,
        )
        self.available = Gauge(
            "gateway_drift_reference",
            "1 when the model version has a drift reference, 0 when its drift is unavailable.",
            ["model_version"],
            registry=registry,
        )
        self.images = Gauge(
            "gateway_drift_window_images",
            "Images in the drift window of a model version (drift is reported once it is full).",
            ["model_version"],
            registry=registry,
        )

    def observe(self, version: int, pixels: Sequence[np.ndarray], probabilities: np.ndarray) -> None:
        """Add scored images (uint8 [H, W] each, as the model saw them) to the version's window. Never
        raises: drift monitoring must not fail a request."""
        try:
            self._observe(version, pixels, np.asarray(probabilities, np.float64))
        except Exception:
            log.exception("drift monitoring failed for model version %d", version)

    def _observe(self, version: int, pixels: Sequence[np.ndarray], probabilities: np.ndarray) -> None:
        if self.window <= 0 or not len(pixels):
            return
        window = self._window(version)
        if window is None:
            return
        traits = acquisition.traits_of(np.stack(list(pixels)))
        values = {name: traits[:, i] for i, name in enumerate(acquisition.FEATURES)} | {PROBABILITY: probabilities}
        rows = window.bin_rows(values)
        label = str(version)
        with self._lock:
            window.add(rows)
            self.images.labels(label).set(window.n)
            if window.n == window.size:
                for feature, value in window.psi().items():
                    self.drift.labels(label, feature).set(value)

    def _window(self, version: int) -> Window | None:
        with self._lock:
            if version in self._windows:
                self._windows.move_to_end(version)
                return self._windows[version]
        reference = self._load(version)  # disk read outside the lock
        with self._lock:
            if version not in self._windows:
                self._windows[version] = Window(reference, self.window) if reference else None
                self.available.labels(str(version)).set(1 if reference else 0)
                while len(self._windows) > MAX_VERSIONS:
                    self._forget(self._windows.popitem(last=False))
            return self._windows[version]

    def _forget(self, item: tuple[int, Window | None]) -> None:
        version, window = item
        label = str(version)
        with suppress(KeyError):  # a series never set
            self.available.remove(label)
        with suppress(KeyError):
            self.images.remove(label)
        for feature in window.names if window else ():
            with suppress(KeyError):
                self.drift.remove(label, feature)

    def _load(self, version: int) -> DriftReference | None:
        if self.reference is None:
            log.warning("no drift reference configured (GATEWAY_DRIFT_REFERENCE): drift unavailable")
            return None
        path = self.reference if self.reference.is_file() else reference_path(self.reference / str(version))
        try:
            reference = DriftReference.load(path)
        except FileNotFoundError:
            log.warning("model version %d has no drift reference (%s): drift unavailable", version, path)
            return None
        except (OSError, DriftReferenceError) as exc:
            log.error("drift reference %s unusable, drift unavailable for version %d: %s", path, version, exc)
            return None
        if reference.model_version != version:
            log.warning("drift reference %s is version %d's, not %d's: drift unavailable for %d",
                        path, reference.model_version, version, version)
            return None
        return reference

    def status(self) -> dict[str, object]:
        """The window size and, per model version scored: reference available, images in the window,
        PSI per feature once it is full."""
        with self._lock:
            versions = {
                str(version): {
                    "reference": window is not None,
                    "images": window.n if window else 0,
                    "psi": window.psi() if window and window.n == window.size else None,
                }
                for version, window in self._windows.items()
            }
        return {"window": self.window, "versions": versions}
