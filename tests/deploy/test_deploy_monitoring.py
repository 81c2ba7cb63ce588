"""Monitoring wired on the platforms people run. Kubernetes: PodMonitors that scrape every pod kind on the port and
path it serves metrics on, under the job names the rules select; a PrometheusRule carrying exactly the rule files
(rendered by scripts/render_prometheusrule.py); the Grafana dashboard as a sidecar ConfigMap under a fixed name.
Compose: Prometheus sends its alerts to an Alertmanager whose config amtool accepts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from k8s_policy import workloads
from k8s_render import one, render
from test_deploy_pacs_intake import admits

from devtools.live_servers import REPO
from tests.deploy.tools import tool

TARGET = "k8s/overlays/production"
RULES = REPO / "deploy/prometheus/rules"


@pytest.fixture(scope="module")
def resources() -> list[dict]:
    return render(TARGET)


def rule_jobs(alert_rules: dict) -> set[str]:
    return {value for group in alert_rules["groups"] for rule in group["rules"]
            for name, value in _matchers(rule["expr"]) if name == "job"}


def _matchers(expr: str) -> set[tuple[str, str]]:
    from promql_names import label_matchers

    return label_matchers(expr)


def selects(selector: dict, labels: dict) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_every_pod_kind_is_scraped_once_where_it_serves_metrics(resources: list[dict], alert_rules: dict) -> None:
    monitors = [r for r in resources if r["kind"] == "PodMonitor"]
    policies = [r["spec"] for r in resources if r["kind"] == "NetworkPolicy"]
    jobs = {}
    for workload in workloads(resources):
        template = workload["spec"]["template"]
        labels, annotations = template["metadata"]["labels"], template["metadata"].get("annotations", {})
        if "prometheus.io/path" not in annotations:
            continue
        (monitor,) = [m for m in monitors if selects(m["spec"]["selector"], labels)]
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        assert endpoint["path"] == annotations["prometheus.io/path"]
        assert ports[endpoint["port"]] == int(annotations["prometheus.io/port"])
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["pneumonia"]}
        jobs[workload["metadata"]["name"]] = labels[monitor["spec"]["jobLabel"]]
        # Prometheus (namespace monitoring) may reach that port
        allowed = any(admits(p.get("ingress", []), "from", {"namespace": "monitoring"}, ports[endpoint["port"]])
                      for p in policies if selects(p["podSelector"], labels))
        assert allowed, workload["metadata"]["name"]
    assert jobs == {"gateway": "gateway", "gateway-canary": "gateway", "pacs-intake": "pacs-intake",
                    "tfserving": "tfserving"}
    assert rule_jobs(alert_rules) <= set(jobs.values())


def test_the_prometheusrule_carries_exactly_the_rule_files(resources: list[dict], alert_rules: dict) -> None:
    rule = one(resources, "PrometheusRule", "pneumonia")
    assert rule["spec"] == alert_rules
    check = subprocess.run([sys.executable, str(REPO / "scripts/render_prometheusrule.py"), "--check"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_plain_rules_configmap_carries_every_rule_file(resources: list[dict]) -> None:
    configmap = one(resources, "ConfigMap", "prometheus-rules")  # for a Prometheus without the Operator
    assert set(configmap["data"]) == {p.name for p in RULES.glob("*.yml")}


def test_dashboards_are_a_sidecar_configmap_under_a_fixed_name(resources: list[dict]) -> None:
    dashboards = [r for r in resources if r["kind"] == "ConfigMap"
                  and r["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    assert [d["metadata"]["name"] for d in dashboards] == ["grafana-dashboards"]  # no hash suffix
    files = {p.name for p in (REPO / "deploy/grafana/dashboards").glob("*.json")}
    assert set(dashboards[0]["data"]) == files
    for text in dashboards[0]["data"].values():
        json.loads(text)


def test_compose_prometheus_sends_alerts_to_alertmanager(compose: dict) -> None:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    (manager,) = config["alerting"]["alertmanagers"]
    (target,) = manager["static_configs"][0]["targets"]
    host, port = target.split(":")
    alertmanager = compose["services"][host]
    assert set(alertmanager["profiles"]) == set(compose["services"]["prometheus"]["profiles"])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in alertmanager["volumes"]}
    (flag,) = [a for a in alertmanager["command"] if a.startswith("--config.file=")]
    config_file = REPO / mounts[flag.split("=", 1)[1]]
    result = subprocess.run([tool("amtool"), "check-config", str(config_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert port == "9093" and compose["services"]["prometheus"]["depends_on"][host]["condition"] == "service_healthy"


def test_amtool_rejects_a_broken_config(tmp_path) -> None:
    broken = tmp_path / "alertmanager.yml"
    broken.write_text("route:\n  receiver: nobody\nreceivers: []\n")
    assert subprocess.run([tool("amtool"), "check-config", str(broken)], capture_output=True).returncode != 0
