"""What reaches the cluster from outside: only the Gateway API HTTPRoute to the gateway Service, on a TLS listener,
and only the API, the web page and the docs; `/metrics`, the probes and the DICOMweb routes stay internal (Prometheus
scrapes the pods directly). No Ingress, LoadBalancer or NodePort Service. Paths are matched as the Gateway API
specifies: Exact, or PathPrefix element by element (`/v1` matches `/v1/predict`, never `/v1metrics`)."""

from __future__ import annotations

import pytest
from k8s_render import one, render

TARGET = "k8s/overlays/production"
ROUTED = ["/", "/v1/predict", "/v1/predict/batch", "/v1/explain", "/v1/drift", "/v2/models/pneumonia/infer",
          "/web/app.js", "/web/model", "/docs", "/docs/oauth2-redirect", "/openapi.json"]
INTERNAL = ["/metrics", "/metrics/", "/readyz", "/healthz", "/dicomweb/studies", "/v1metrics", "/webmetrics",
            "/docsmetrics", "/openapi.json/metrics"]


@pytest.fixture(scope="module")
def resources() -> list[dict]:
    return render(TARGET)


def matches(match: dict, path: str) -> bool:
    kind, value = match["path"]["type"], match["path"]["value"]
    if kind == "Exact":
        return path == value
    assert kind == "PathPrefix", f"{kind} matching is implementation-specific"
    prefix = [p for p in value.split("/") if p]
    return [p for p in path.split("/") if p][:len(prefix)] == prefix


def routed(routes: list[dict], path: str) -> set[str]:
    """The Services a request for `path` reaches through the HTTPRoutes."""
    return {backend["name"] for route in routes for rule in route["spec"]["rules"]
            if any(matches(m, path) for m in rule["matches"]) for backend in rule["backendRefs"]}


def test_the_matcher_follows_the_gateway_api() -> None:
    assert matches({"path": {"type": "PathPrefix", "value": "/v1"}}, "/v1/predict")
    assert matches({"path": {"type": "PathPrefix", "value": "/v1/"}}, "/v1")
    assert not matches({"path": {"type": "PathPrefix", "value": "/v1"}}, "/v1metrics")
    assert matches({"path": {"type": "PathPrefix", "value": "/"}}, "/metrics")
    assert not matches({"path": {"type": "Exact", "value": "/"}}, "/metrics")


def test_metrics_and_probes_are_not_routed_from_outside(resources: list[dict]) -> None:
    routes = [r for r in resources if r["kind"] == "HTTPRoute"]
    assert routes
    assert {path: routed(routes, path) for path in ROUTED} == {path: {"gateway"} for path in ROUTED}
    assert {path: routed(routes, path) for path in INTERNAL} == {path: set() for path in INTERNAL}


def test_nothing_else_is_exposed(resources: list[dict]) -> None:
    assert [r["metadata"]["name"] for r in resources if r["kind"] == "Ingress"] == []
    exposed = [r["metadata"]["name"] for r in resources
               if r["kind"] == "Service" and r["spec"].get("type", "ClusterIP") != "ClusterIP"]
    assert exposed == []


def test_the_route_is_served_on_a_tls_listener_for_its_host(resources: list[dict]) -> None:
    route = one(resources, "HTTPRoute", "gateway")
    (parent,) = route["spec"]["parentRefs"]
    gateway = one(resources, "Gateway", parent["name"])
    (listener,) = [x for x in gateway["spec"]["listeners"] if x["name"] == parent["sectionName"]]
    assert listener["protocol"] == "HTTPS" and listener["tls"]["mode"] == "Terminate"
    assert listener["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "gateway-tls"}]
    assert route["spec"]["hostnames"] == [listener["hostname"]]
    assert listener["hostname"] != "pneumonia.example.com"  # the production overlay sets its own host
    (service_port,) = one(resources, "Service", "gateway")["spec"]["ports"]
    assert {b["port"] for rule in route["spec"]["rules"] for b in rule["backendRefs"]} == {service_port["port"]}
