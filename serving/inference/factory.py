from __future__ import annotations

from serving.config import Settings
from serving.inference.base import InferenceBackend
from serving.inference.embedded import EmbeddedBackend
from serving.observability.metrics import GatewayMetrics


def make_backend(settings: Settings, metrics: GatewayMetrics) -> InferenceBackend:
    """TF Serving over gRPC when an address is configured, else the SavedModel in-process."""
    if settings.serving_address:
        from serving.inference.tfserving import ServingBackend  # gRPC stack only where it is used

        return ServingBackend(settings, metrics)
    return EmbeddedBackend(settings, metrics)
