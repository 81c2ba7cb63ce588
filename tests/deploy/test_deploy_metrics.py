"""Every metric the dashboard and the alert rules query exists: in a real scrape of the running gateway, as a
recording rule, or in the short documented list of TF Serving's own metrics (no TF Serving runs here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from promql_names import label_matchers, metric_names

from devtools.live_servers import REPO, GatewayProcess
from serving.dicomweb.metrics import DicomwebMetrics

DASHBOARD = REPO / "deploy/grafana/dashboards/pneumonia-gateway.json"

# TF Serving's metrics as its Prometheus endpoint names them ('/' becomes ':'), from the TF Serving sources:
# servables/tensorflow/util.cc (request_count{model_name,status}, request_latency{model_name,API,entrypoint},
# runtime_latency; microseconds), batching/batching_util.h and batching/batching_session.cc (the
# --enable_batching session: batch sizes, padding, queueing). The only names not checked by a live scrape.
TF_SERVING_METRICS = {
    ":tensorflow:serving:request_count",
    *(f":tensorflow:serving:{histogram}_{suffix}"
      for histogram in (
          "request_latency", "runtime_latency",
          "batching_session:input_batch_size", "batching_session:processed_batch_size",
          "batching_session:padding_size", "batching_session:queuing_latency",
      )
      for suffix in ("bucket", "sum", "count")),
    ":tensorflow:serving:batching_session:wrapped_run_count",
}
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}  # Prometheus writes these
# Platform exporters the Kubernetes rules read (deploy/prometheus/rules/platform.rules.yml), not checked live: the
# kubelet's volume statistics (pkg/kubelet/metrics/collectors/volume_stats.go) and NVIDIA dcgm-exporter's default
# counters (etc/default-counters.csv).
KUBELET_METRICS = {"kubelet_volume_stats_available_bytes", "kubelet_volume_stats_capacity_bytes"}
DCGM_METRICS = {"DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
                "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def exposed_names(scrape: str) -> set[str]:
    """Every series name the scrape can carry: from the families' types, so a labelled metric with no sample
    yet (e.g. upstream errors on a healthy gateway) still counts."""
    names = set()
    for family in text_string_to_metric_families(scrape):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def dashboard_exprs(panels: list[dict] | None = None) -> Iterator[str]:
    for panel in panels if panels is not None else json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]:
        yield from (target["expr"] for target in panel.get("targets", []))
        yield from dashboard_exprs(panel.get("panels", []))


def rule_exprs(rules: dict) -> Iterator[str]:
    for group in rules["groups"]:
        yield from (rule["expr"] for rule in group["rules"])


def recorded(rules: dict) -> set[str]:
    return {rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule}


def unknown_metrics(exprs: list[str], known: set[str]) -> dict[str, set[str]]:
    unknown = {expr: metric_names(expr) - known for expr in exprs}
    return {expr: names for expr, names in unknown.items() if names}


@pytest.fixture(scope="module")
def scrape(running_gateway: GatewayProcess, fullres_samples: list[tuple[Path, str]]) -> str:
    """/metrics after the gateway has answered a prediction, a refused image and the probes."""
    path, _ = fullres_samples[0]
    with httpx.Client(base_url=running_gateway.url, timeout=60) as client:
        predicted = client.post("/v1/predict", files={"file": (path.name, path.read_bytes(), "image/jpeg")})
        refused = client.post("/v1/predict", files={"file": ("x.jpeg", b"not an image", "image/jpeg")})
        assert (predicted.status_code, refused.status_code) == (200, 415), (predicted.text, refused.text)
        assert client.get("/readyz").status_code == 200
        response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


def dicomweb_names() -> set[str]:
    """The DICOMweb intake's metrics, as its own metrics class exposes them (the scraped gateway has no spool)."""
    registry = CollectorRegistry()
    DicomwebMetrics(registry)
    return exposed_names(generate_latest(registry).decode())


@pytest.fixture(scope="module")
def known_metrics(scrape: str, alert_rules: dict) -> set[str]:
    return (exposed_names(scrape) | dicomweb_names() | recorded(alert_rules) | TF_SERVING_METRICS
            | PROMETHEUS_SERIES | KUBELET_METRICS | DCGM_METRICS)


def test_promql_names_are_found_in_known_expressions() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, stage) (rate(gateway_stage_duration_seconds_bucket{stage="total"}'
        '[$__rate_interval]))) / on() group_left max(gateway:ratio:5m offset 1h) > bool 1e6 or up{job="x"} == 0'
    )
    assert metric_names(expr) == {"gateway_stage_duration_seconds_bucket", "gateway:ratio:5m", "up"}
    assert label_matchers(expr) == {("stage", "total"), ("job", "x")}


def test_a_metric_the_gateway_does_not_export_is_reported(known_metrics: set[str]) -> None:
    exprs = ["sum(rate(gateway_requests_total[5m]))", "rate(gateway_request_count_total[5m])"]
    assert unknown_metrics(exprs, known_metrics) == {exprs[1]: {"gateway_request_count_total"}}


def test_the_scrape_has_the_gateway_metrics_with_samples(scrape: str) -> None:
    names = exposed_names(scrape)
    assert {"gateway_requests_total", "gateway_stage_duration_seconds_bucket", "gateway_predictions_total",
            "gateway_model_info", "gateway_ready", "gateway_upstream_errors_total"} <= names


def test_every_dashboard_metric_exists(known_metrics: set[str]) -> None:
    assert unknown_metrics(list(dashboard_exprs()), known_metrics) == {}


def test_every_rule_metric_exists(known_metrics: set[str], alert_rules: dict) -> None:
    assert unknown_metrics(list(rule_exprs(alert_rules)), known_metrics) == {}


def test_label_values_in_queries_are_the_models_labels(alert_rules: dict, shipped_model_dir: Path) -> None:
    """`label="PNEUMONIA"` (positive rate, drift) must be a label the model really returns."""
    from radiograph.savedmodel import LoadedModel

    labels = set(LoadedModel.from_dir(shipped_model_dir).metadata.labels)
    used = {value for expr in [*dashboard_exprs(), *rule_exprs(alert_rules)]
            for name, value in label_matchers(expr) if name == "label" and value}
    assert used and used <= labels, (used, labels)


def test_the_dashboard_shows_what_operators_need() -> None:
    used = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    required = {
        "gateway_requests_total", "gateway_stage_duration_seconds_bucket", "gateway_upstream_errors_total",
        "gateway_in_flight_requests", "gateway_predictions_total", "gateway_prediction_probability_bucket",
        "gateway_model_info", ":tensorflow:serving:request_latency_bucket",
        ":tensorflow:serving:batching_session:processed_batch_size_bucket",
    }
    assert required <= used, required - used
    stage_quantiles = {expr.split(",")[0] for expr in dashboard_exprs() if "gateway_stage_duration" in expr}
    assert stage_quantiles == {"histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"}


def test_every_panel_and_alert_says_what_to_do(alert_rules: dict) -> None:
    runbook = (REPO / "docs/runbook.md").read_text(encoding="utf-8")
    anchors = {line.lstrip("#").strip().lower().replace(" ", "-") for line in runbook.splitlines()
               if line.startswith("#")}
    panels = [p for p in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"] if p["type"] != "row"]
    assert all(len(panel.get("description", "")) > 40 for panel in panels), [p["title"] for p in panels]
    alerts = [rule for group in alert_rules["groups"] for rule in group["rules"] if "alert" in rule]
    assert {a["alert"] for a in alerts} >= {
        "GatewayHighErrorRate", "GatewayHighLatencyP99", "TFServingUnavailable", "TFServingDown", "GatewayNotReady",
        "PositiveRateDrift", "PacsIntakeDown", "DicomwebOutboxMissing", "SpoolVolumeFull", "GPUHardwareFault",
    }
    for alert in alerts:
        page, anchor = alert["annotations"]["runbook"].split("#")
        assert page == "docs/runbook.md" and anchor in anchors, alert["alert"]
        assert alert["labels"]["severity"] in {"page", "ticket"}
