"""Label-free drift monitoring: the last `GATEWAY_DRIFT_WINDOW` scored images against a reference, exported
as PSI per feature on the gateway's registry.

The reference of each feature is the model's own (`radiograph.drift`, built from its validation split) or,
once frozen, this site's baseline (`site_baseline.py`: the first `GATEWAY_DRIFT_BASELINE_IMAGES` images the
version scored here), always for P(pneumonia) and, with `GATEWAY_DRIFT_BASELINE_INPUTS`, for the acquisition
features too. Each drift gauge says which in its `reference` label (`validation` or `site`), as `/v1/drift` does.

Per model version that answered, a window holds only the reference bin of each feature of each of its
last N images (uint8 [N, features]) and the bin counts; nothing else about an image is kept. The drift
gauges appear once a window is full, so a restart, a new version or a newly frozen baseline never reports
the noise of a handful of images. A version with no reference at all is served as usual and reported
unavailable (`gateway_drift_reference{model_version} 0`).
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
from radiograph.drift import PROBABILITY, DriftReference, DriftReferenceError, reference_path
from serving.observability.drift_window import FEATURES, VersionDrift, Window
from serving.observability.site_baseline import SiteBaseline

__all__ = ["FEATURES", "DriftMonitor", "Window"]

log = logging.getLogger(__name__)

MAX_VERSIONS = 3
"""Windows kept at once (a rollout or canary serves two versions); the least recently scored goes."""


class DriftMonitor:
    """Thread-safe: `observe` runs on worker threads, many at once."""

    def __init__(
        self,
        reference: Path | None,
        window: int,
        registry: CollectorRegistry,
        *,
        baseline_dir: Path | None = None,
        baseline_images: int = 1000,
        baseline_inputs: bool = False,
    ) -> None:
        self.reference = reference
        """A model root (`<version>/assets.extra/drift_reference.json` per version) or one reference file
        (used for the version it names); None: no validation reference."""
        self.window = window
        self.baseline_dir, self.baseline_images, self.baseline_inputs = baseline_dir, baseline_images, baseline_inputs
        self._lock = threading.Lock()
        self._versions: OrderedDict[int, VersionDrift] = OrderedDict()
        self.drift = Gauge(
            "gateway_input_drift",
            "Population stability index of the last GATEWAY_DRIFT_WINDOW images per feature (probability: "
            "P(pneumonia)) against `reference`: `validation` (the model's validation split, about 74% pneumonia) "
            "or `site` (this site's first GATEWAY_DRIFT_BASELINE_IMAGES images). 0.1 notable, 0.25 significant. "
            "Set once the window is full.",
            ["model_version", "feature", "reference"],
            registry=registry,
        )
        self.available = Gauge(
            "gateway_drift_reference",
            "1 when the model version has a drift reference (validation or site), 0 when its drift is unavailable.",
            ["model_version"],
            registry=registry,
        )
        self.images = Gauge(
            "gateway_drift_window_images",
            "Images in the drift window of a model version (drift is reported once it is full).",
            ["model_version"],
            registry=registry,
        )
        self.baseline_images_gauge = Gauge(
            "gateway_drift_site_baseline_images",
            "Images in the site baseline of a model version; it is frozen, and used, at GATEWAY_DRIFT_BASELINE_IMAGES.",
            ["model_version"],
            registry=registry,
        )

    def observe(self, version: int, pixels: Sequence[np.ndarray], probabilities: np.ndarray) -> None:
        """Add scored images (uint8 [H, W] each, as the model saw them) to the version's window and, until it is
        frozen, to its site baseline. Never raises: drift monitoring must not fail a request."""
        try:
            self._observe(version, pixels, np.asarray(probabilities, np.float64))
        except Exception:
            log.exception("drift monitoring failed for model version %d", version)

    def _observe(self, version: int, pixels: Sequence[np.ndarray], probabilities: np.ndarray) -> None:
        if self.window <= 0 or not len(pixels):
            return
        state = self._state(version)
        traits = acquisition.traits_of(np.stack(list(pixels)))
        values = {name: traits[:, i] for i, name in enumerate(acquisition.FEATURES)} | {PROBABILITY: probabilities}
        window = state.window
        rows = window.bin_rows(values) if window is not None else None
        label = str(version)
        with self._lock:
            if state.window is not window:  # a baseline froze meanwhile: these images belong to the old window
                return
            if state.baseline is not None and state.baseline.add(values) is not None:
                self._restart_window(version, state)
                return
            if state.baseline is not None:
                self.baseline_images_gauge.labels(label).set(state.baseline.images)
            if window is None or rows is None:
                return
            window.add(rows)
            self.images.labels(label).set(window.n)
            if window.n == window.size:
                for feature, value in window.psi().items():
                    self.drift.labels(label, feature, state.sources[feature]).set(value)

    def _restart_window(self, version: int, state: VersionDrift) -> None:
        """Under the lock: the site baseline froze; drift is measured against it from the next image on."""
        self._remove_drift_series(version, state)
        state.start_window(self.window, self.baseline_inputs)
        label = str(version)
        self.available.labels(label).set(1 if state.window else 0)
        self.images.labels(label).set(0)
        self.baseline_images_gauge.labels(label).set(self.baseline_images)

    def _state(self, version: int) -> VersionDrift:
        with self._lock:
            if version in self._versions:
                self._versions.move_to_end(version)
                return self._versions[version]
        state = VersionDrift(self._load(version), self._baseline(version))  # disk reads outside the lock
        state.start_window(self.window, self.baseline_inputs)
        with self._lock:
            if version not in self._versions:
                self._versions[version] = state
                label = str(version)
                self.available.labels(label).set(1 if state.window else 0)
                if state.baseline is not None:
                    self.baseline_images_gauge.labels(label).set(state.baseline.images)
                while len(self._versions) > MAX_VERSIONS:
                    self._forget(*self._versions.popitem(last=False))
            return self._versions[version]

    def _baseline(self, version: int) -> SiteBaseline | None:
        if self.baseline_dir is None:
            return None
        baseline = SiteBaseline(self.baseline_dir, version, self.baseline_images, FEATURES)
        baseline.open()
        return baseline

    def _remove_drift_series(self, version: int, state: VersionDrift) -> None:
        for feature, source in state.sources.items():
            with suppress(KeyError):  # a series never set
                self.drift.remove(str(version), feature, source)

    def _forget(self, version: int, state: VersionDrift) -> None:
        label = str(version)
        for gauge in (self.available, self.images, self.baseline_images_gauge):
            with suppress(KeyError):
                gauge.remove(label)
        self._remove_drift_series(version, state)

    def _load(self, version: int) -> DriftReference | None:
        if self.reference is None:
            log.warning("no drift reference configured (GATEWAY_DRIFT_REFERENCE): no validation reference")
            return None
        path = self.reference if self.reference.is_file() else reference_path(self.reference / str(version))
        try:
            reference = DriftReference.load(path)
        except FileNotFoundError:
            log.warning("model version %d has no drift reference (%s): no validation reference", version, path)
            return None
        except (OSError, DriftReferenceError) as exc:
            log.error("drift reference %s unusable, no validation reference for version %d: %s", path, version, exc)
            return None
        if reference.model_version != version:
            log.warning("drift reference %s is version %d's, not %d's: no validation reference for %d",
                        path, reference.model_version, version, version)
            return None
        return reference

    def status(self) -> dict[str, object]:
        """The window size and, per model version scored: a reference available, images in the window, the
        reference each feature is measured against, PSI per feature once the window is full, and the site
        baseline's progress (None when `GATEWAY_DRIFT_BASELINE_DIR` is unset)."""
        with self._lock:
            versions = {str(version): _version_status(state) for version, state in self._versions.items()}
        return {"window": self.window, "versions": versions}


def _version_status(state: VersionDrift) -> dict[str, object]:
    window, baseline = state.window, state.baseline
    return {
        "reference": window is not None,
        "images": window.n if window else 0,
        "psi": window.psi() if window and window.n == window.size else None,
        "references": dict(state.sources),
        "site_baseline": None if baseline is None else {
            "images": baseline.images, "of": baseline.size, "frozen": baseline.frozen is not None,
        },
    }
