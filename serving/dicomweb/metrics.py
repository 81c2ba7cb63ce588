"""Prometheus metrics of the DICOMweb intake and outbox, on the gateway's injected registry. Labels are
reasons and states, never an identifier."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

OUTBOX_STATES = ("scoring", "delivery", "failed")
DELIVERY_OUTCOMES = ("transient", "configuration", "refused")
PAUSE_CAUSES = ("configuration", "unavailable")


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
            "Failed write-back attempts by outcome: transient (retried with backoff), configuration (delivery "
            "paused, retried with backoff) or refused (the PACS will never take it: moved to failed/).",
            ["kind"],
            registry=registry,
        )
        self.delivery_paused = Gauge(
            "gateway_dicomweb_delivery_paused",
            "1 while write-back is paused: cause `configuration` (the PACS refuses the gateway's URL or credentials: "
            "401/403/404...) or `unavailable` (unreachable, 5xx, full); 0 once a result is stored.",
            ["cause"],
            registry=registry,
        )
        self.failed_bytes = Gauge(
            "gateway_dicomweb_failed_bytes",
            "Size of the spool's failed/ folder (source images carry patient data; kept for the retention period).",
            registry=registry,
        )
        self.failed_oldest_age = Gauge(
            "gateway_dicomweb_failed_oldest_age_seconds",
            "How long the oldest item has been in failed/ (0 when empty); deleted past the retention period.",
            registry=registry,
        )
        for state in OUTBOX_STATES:
            self.outbox.labels(state).set(0)
        for kind in DELIVERY_OUTCOMES:
            self.delivery_failures.labels(kind)
        for cause in PAUSE_CAUSES:
            self.delivery_paused.labels(cause).set(0)
