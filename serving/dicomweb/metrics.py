"""Prometheus metrics of the DICOMweb intake and outbox, on the gateway's injected registry. Labels are
reasons and states, never an identifier."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

OUTBOX_STATES = ("scoring", "delivery", "failed")


class DicomwebMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "gateway_dicomweb_instances",
            "Instances received by STOW-RS: result `accepted` (spooled) or the reason they were refused.",
            ["result"],
            registry=registry,
        )
        self.outbox = Gauge(
            "gateway_dicomweb_outbox_items",
            "Items in the spool: waiting to be scored, results waiting for write-back, and failed (kept for an "
            "operator).",
            ["state"],
            registry=registry,
        )
        self.oldest_pending = Gauge(
            "gateway_dicomweb_outbox_oldest_age_seconds",
            "Age of the oldest item not yet written back (0 when none): grows while the PACS is down.",
            registry=registry,
        )
        self.delivered = Counter(
            "gateway_dicomweb_results_delivered",
            "Result instances stored in the PACS, by kind (sr, sc).",
            ["kind"],
            registry=registry,
        )
        self.delivery_failures = Counter(
            "gateway_dicomweb_delivery_failures",
            "Failed write-back attempts: retriable (retried with backoff) or permanent (moved to failed/).",
            ["kind"],
            registry=registry,
        )
        for state in OUTBOX_STATES:
            self.outbox.labels(state).set(0)
        for kind in ("retriable", "permanent"):
            self.delivery_failures.labels(kind)
