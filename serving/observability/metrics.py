"""Prometheus metrics of the gateway, on an injected `CollectorRegistry` (tests get their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Per-stage latencies: decode of a large JPEG is ~5-50 ms, inference 40-400 ms on CPU, ~5-20 ms on GPU.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2, 5)
BYTES_BUCKETS = tuple(float(2**k) for k in range(10, 26, 1))  # 1 KiB … 32 MiB
PIXELS_BUCKETS = (5e4, 1e5, 2.5e5, 5e5, 1e6, 2e6, 4e6, 8e6, 1.6e7, 4e7)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
PROBABILITY_BUCKETS = tuple(round(0.05 * k, 2) for k in range(1, 21))


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by route, HTTP status and returned label ('' when none).",
            ["route", "status", "label"],
            registry=registry,
        )
        self.request_latency = Histogram(
            "gateway_request_duration_seconds",
            "Whole-request latency by route.",
            ["route"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.stage_latency = Histogram(
            "gateway_stage_duration_seconds",
            "Latency of one stage: decode, preprocess, inference, total.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "gateway_in_flight_requests", "Requests being processed now.", registry=registry
        )
        self.shed = Counter(
            "gateway_shed_requests",
            "Requests refused with 503 overloaded because GATEWAY_MAX_IN_FLIGHT were in flight.",
            registry=registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Failed inference calls to the backend, by gRPC status code.",
            ["code"],
            registry=registry,
        )
        self.image_bytes = Histogram(
            "gateway_image_bytes", "Size of received images.", buckets=BYTES_BUCKETS, registry=registry
        )
        self.image_pixels = Histogram(
            "gateway_image_source_pixels",
            "Width × height of received images before resizing.",
            buckets=PIXELS_BUCKETS,
            registry=registry,
        )
        self.probability = Histogram(
            "gateway_prediction_probability",
            "Returned P(pneumonia), by model version (drift monitoring).",
            ["model_version"],
            buckets=PROBABILITY_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            "gateway_predictions",
            "Predictions returned, by model version and label (positive-rate monitoring).",
            ["model_version", "label"],
            registry=registry,
        )
        self.model_info = Gauge(
            "gateway_model_info",
            "1 for the model version the gateway last served, with name and backend.",
            ["model_name", "model_version", "backend"],
            registry=registry,
        )
        self.ready = Gauge(
            "gateway_ready",
            "Result of the last /readyz check (1 ready, 0 not); probes call it every few seconds.",
            registry=registry,
        )
        self.batch_queue_images = Gauge(
            "gateway_batch_queue_images",
            "Images waiting for a model call in the embedded backend's micro-batching queue.",
            registry=registry,
        )
        self.batch_size = Histogram(
            "gateway_batch_size_images",
            "Images per model call of the embedded backend (concurrent requests merged by micro-batching).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.batch_refused = Counter(
            "gateway_batch_refused_requests",
            "Requests the micro-batching queue refused: queue_full (503 + Retry-After) or deadline (504).",
            ["reason"],
            registry=registry,
        )
        self.inference_runtime = Gauge(
            "gateway_inference_runtime_info",
            "1 for the runtime and numeric precision the embedded backend scores with.",
            ["runtime", "precision"],
            registry=registry,
        )
        self._current_model: tuple[str, str, str] | None = None

    def serving_model(self, name: str, version: int, backend: str) -> None:
        labels = (name, str(version), backend)
        if labels == self._current_model:
            return
        if self._current_model is not None:
            self.model_info.labels(*self._current_model).set(0)
        self.model_info.labels(*labels).set(1)
        self._current_model = labels
