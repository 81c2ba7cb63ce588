"""The Prometheus config and rules, checked by promtool, and a real Prometheus (Debian's) on loopback
scraping the running gateway with the shipped config (targets pointed at the test's ports)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from devtools.live_servers import REPO, GatewayProcess, free_port, stop, wait_until_ok
from tests.deploy.tools import tool

PROMETHEUS_DIR = REPO / "deploy/prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_config() -> None:
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    rules = sorted(str(p) for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    result = promtool("check", "rules", *rules)
    assert rules and result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_the_failures_they_name() -> None:
    """promtool unit tests (deploy/prometheus/tests): each alert fires on synthetic failing series and stays
    quiet on healthy ones."""
    tests = sorted(str(p) for p in (PROMETHEUS_DIR / "tests").glob("*.test.yml"))
    result = promtool("test", "rules", *tests)
    assert tests and result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(gateway_requests[5m\n")
    assert promtool("check", "rules", str(broken)).returncode != 0


def local_config(gateway_port: int, tmp_path: Path) -> Path:
    """The shipped prometheus.yml with compose targets replaced by loopback ports and a 1 s interval."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    config.pop("alerting")  # no Alertmanager here (test_deploy_monitoring.py checks that wiring)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"gateway", "tfserving"}
    jobs["gateway"]["static_configs"] = [{"targets": [f"127.0.0.1:{gateway_port}"]}]
    jobs["tfserving"]["static_configs"] = [{"targets": [f"127.0.0.1:{free_port()}"]}]  # nothing listens: up=0
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def prometheus(running_gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={local_config(running_gateway.port, tmp_path)}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/-/ready", process, timeout_s=30)
        yield url
    finally:
        stop(process)
        log.close()


def query_until(prometheus: str, promql: str, accept, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    result: list[dict] = []
    while time.monotonic() < deadline:
        body = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
        assert body["status"] == "success", body
        result = body["data"]["result"]
        if accept(result):
            return result
        time.sleep(0.5)
    raise AssertionError(f"{promql} never gave an accepted answer; last: {result}")


def test_prometheus_scrapes_the_gateways_request_counter(
    prometheus: str, running_gateway: GatewayProcess, fullres_samples: list[tuple[Path, str]]
) -> None:
    images = [path.read_bytes() for path, _ in fullres_samples[:3]]
    with httpx.Client(base_url=running_gateway.url, timeout=60) as client:
        before = float(client.get("/metrics").text.count("\n"))  # the gateway answers metrics at all
        statuses = [client.post("/v1/predict", content=data, headers={"content-type": "image/jpeg"}).status_code
                    for data in images]
        assert before > 0 and statuses == [200, 200, 200]
        expected = sum(
            float(line.rsplit(" ", 1)[1]) for line in client.get("/metrics").text.splitlines()
            if line.startswith('gateway_requests_total{') and 'route="/v1/predict"' in line and 'status="200"' in line
        )
    promql = 'sum(gateway_requests_total{job="gateway",route="/v1/predict",status="200"})'
    result = query_until(prometheus, promql, lambda r: r and float(r[0]["value"][1]) >= expected)
    assert float(result[0]["value"][1]) == expected >= 3
    ready = query_until(prometheus, 'gateway_ready{job="gateway"}', lambda r: bool(r))
    assert ready[0]["value"][1] == "1"  # set by the /readyz the fixture waited on
    up = query_until(prometheus, 'up{job="tfserving"}', lambda r: bool(r))
    assert up[0]["value"][1] == "0"  # the compose job is kept; nothing serves it here


def test_prometheus_evaluates_every_rule_without_error(prometheus: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules):
            break
        assert time.monotonic() < deadline, rules
        time.sleep(0.5)
    assert {rule["name"] for rule in rules if rule["type"] == "alerting"} >= {
        "GatewayHighErrorRate", "GatewayHighLatencyP99", "TFServingUnavailable", "GatewayNotReady",
        "PositiveRateDrift", "InputDrift", "ScoreDrift",
    }
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []
