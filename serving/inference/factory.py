from __future__ import annotations

from serving.config import Settings
from serving.inference.base import InferenceBackend
from serving.inference.embedded import EmbeddedBackend


def make_backend(settings: Settings) -> InferenceBackend:
    """TF Serving over gRPC when an address is configured, else the SavedModel in-process."""
    if settings.serving_address:
        raise NotImplementedError("the TF Serving backend is not built yet")
    return EmbeddedBackend(settings.model_dir, settings.upstream_timeout_s)
