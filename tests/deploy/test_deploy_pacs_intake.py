"""The PACS intake on Kubernetes (k8s/base/pacs-intake.yaml): a StatefulSet whose every pod keeps its DICOMweb
spool on its own PersistentVolumeClaim, so a restart loses nothing (docs/pacs.md), run with the gateway's own
settings, and let through by the NetworkPolicies: PACS -> intake, intake -> TF Serving and the results PACS.
Schema validation and the pod policy cover it with every other workload (test_deploy_kubernetes.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from k8s_policy import pod_spec
from k8s_render import container, env_of, one, render
from prometheus_client import CollectorRegistry

from serving.config import Settings
from serving.dicomweb.service import DicomwebService

OVERLAYS = ("k8s/overlays/production", "k8s/overlays/cpu")
INTAKE = "pacs-intake"
RESULTS_SETTINGS = {"GATEWAY_RESULTS_DICOMWEB_URL", "GATEWAY_RESULTS_DICOMWEB_USERNAME",
                    "GATEWAY_RESULTS_DICOMWEB_PASSWORD"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {target: render(target) for target in OVERLAYS}


def spool_problems(workload: dict) -> list[str]:
    """Why the workload's spool would not survive its pod, or would be shared: GATEWAY_SPOOL_DIR must be the
    writable mount of a volumeClaimTemplate (one claim per pod), never a pod volume (emptyDir, a shared claim)."""
    pod = pod_spec(workload)
    gateway = pod["containers"][0]
    spool_dir = env_of(gateway).get("GATEWAY_SPOOL_DIR")
    if not spool_dir:
        return ["GATEWAY_SPOOL_DIR unset"]
    mounts = [m for m in gateway.get("volumeMounts", []) if m["mountPath"] == spool_dir]
    if len(mounts) != 1:
        return [f"nothing mounted at {spool_dir}"]
    (mount,) = mounts
    found = []
    if mount.get("readOnly"):
        found.append("spool mounted read-only")
    if any(v["name"] == mount["name"] for v in pod.get("volumes", [])):
        found.append(f"spool is the pod volume {mount['name']!r}, not a claim of its own")
    claims = {t["metadata"]["name"]: t["spec"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    claim = claims.get(mount["name"])
    if claim is None:
        found.append(f"spool {mount['name']!r} is not a volumeClaimTemplate")
    else:
        if not set(claim["accessModes"]) <= {"ReadWriteOnce", "ReadWriteOncePod"}:
            found.append(f"spool claim shareable: {claim['accessModes']}")
        if "storage" not in claim.get("resources", {}).get("requests", {}):
            found.append("spool claim requests no storage")
    retention = workload["spec"].get("persistentVolumeClaimRetentionPolicy", {})
    found += [f"spool claims deleted {when}" for when in ("whenDeleted", "whenScaled")
              if retention.get(when, "Retain") != "Retain"]
    return found


@pytest.mark.parametrize("target", OVERLAYS)
def test_each_intake_pod_keeps_its_spool_on_its_own_claim(rendered: dict, target: str) -> None:
    intake = one(rendered[target], "StatefulSet", INTAKE)
    assert spool_problems(intake) == []
    assert intake["spec"]["replicas"] >= 2
    assert "GATEWAY_SPOOL_DIR" not in env_of(container(rendered[target], "Deployment", "gateway")), (
        "the REST gateway is a Deployment: a spool there would be lost with its pod")


def test_the_spool_check_finds_a_spool_that_dies_with_its_pod(rendered: dict) -> None:
    intake = copy.deepcopy(one(rendered["k8s/overlays/production"], "StatefulSet", INTAKE))
    del intake["spec"]["volumeClaimTemplates"]
    pod_spec(intake)["volumes"].append({"name": "spool", "emptyDir": {}})
    intake["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] = "Delete"
    assert spool_problems(intake) == [
        "spool is the pod volume 'spool', not a claim of its own",
        "spool 'spool' is not a volumeClaimTemplate",
        "spool claims deleted whenScaled",
    ]
    pod_spec(intake)["containers"][0]["env"] = [{"name": "GATEWAY_SPOOL_DIR", "value": "/elsewhere"}]
    assert spool_problems(intake) == ["nothing mounted at /elsewhere"]


def resolved_env(resources: list[dict], c: dict) -> dict[str, str]:
    """The container's environment as the kubelet would build it: ConfigMap keys looked up in the rendered
    ConfigMap (a missing key fails here), Secret values stood in for."""
    env = {}
    for item in c["env"]:
        ref = item.get("valueFrom", {})
        if "configMapKeyRef" in ref:
            config = one(resources, "ConfigMap", ref["configMapKeyRef"]["name"])
            env[item["name"]] = config["data"][ref["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in ref:
            env[item["name"]] = "from-a-secret"
        else:
            env[item["name"]] = item["value"]
    return env


def test_the_intake_runs_the_gateway_with_its_settings_and_a_results_pacs(
    rendered: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = rendered["k8s/overlays/production"]
    intake, gateway = container(resources, "StatefulSet", INTAKE), container(resources, "Deployment", "gateway")
    assert intake["image"] == gateway["image"]
    env = resolved_env(resources, intake)
    shared = {name: value for name, value in env.items() if name in env_of(gateway)}
    assert shared == env_of(gateway)  # same model, Serving address, keys file, drift reference
    assert set(env) - set(shared) == {"GATEWAY_SPOOL_DIR", "GATEWAY_DRIFT_BASELINE_DIR"} | RESULTS_SETTINGS
    # the site's drift baseline outlives the pod: it lives on the spool's volume
    assert Path(env["GATEWAY_DRIFT_BASELINE_DIR"]).is_relative_to(env["GATEWAY_SPOOL_DIR"])
    password = next(e for e in intake["env"] if e["name"] == "GATEWAY_RESULTS_DICOMWEB_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"] == {"name": "pacs-results-credentials", "key": "password"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.spool_dir == Path("/var/spool/gateway")
    assert settings.results_dicomweb_url == "http://orthanc.pacs.svc.cluster.local:8042/dicom-web"
    DicomwebService(settings, CollectorRegistry())  # refuses a spool without a results PACS
    probes = {name: intake[name]["httpGet"]["path"] for name in ("livenessProbe", "readinessProbe")}
    # ready without Serving: STOW-RS needs only the spool (test_deploy_pod_sizing.py)
    assert probes == {"livenessProbe": "/healthz", "readinessProbe": "/healthz"}


@pytest.mark.parametrize("workload", [("Deployment", "gateway"), ("StatefulSet", INTAKE)])
def test_drift_references_come_from_the_model_volume_read_only(rendered: dict, workload: tuple[str, str]) -> None:
    resources = rendered["k8s/overlays/production"]
    c, pod = container(resources, *workload), pod_spec(one(resources, *workload))
    reference = env_of(c)["GATEWAY_DRIFT_REFERENCE"]
    (mount,) = [m for m in c["volumeMounts"] if reference.startswith(m["mountPath"].rstrip("/") + "/")]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert mount["readOnly"] and volume["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}


def test_the_pacs_points_at_a_service_of_the_intake(rendered: dict) -> None:
    resources = rendered["k8s/overlays/production"]
    statefulset = one(resources, "StatefulSet", INTAKE)
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    service = one(resources, "Service", INTAKE)
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"].get("clusterIP") != "None"  # balanced: PACS routers send to one address
    ports = {p["name"] for p in container(resources, "StatefulSet", INTAKE)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    governing = one(resources, "Service", statefulset["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None" and governing["spec"]["selector"].items() <= labels.items()


def admits(rules: list[dict], side: str, peer: dict, port: int) -> bool:
    """Whether NetworkPolicy rules (`ingress` with side `from`, `egress` with `to`) admit a peer on a port. A peer
    is {"pod": labels} in the namespace or {"namespace": name}."""
    for rule in rules:
        if rule.get("ports") and not any(p["port"] == port for p in rule["ports"]):
            continue
        for selector in rule.get(side, []):
            if set(selector) == {"podSelector"} and "pod" in peer:
                matched = selector["podSelector"]["matchLabels"].items() <= peer["pod"].items()
            elif set(selector) == {"namespaceSelector"} and "namespace" in peer:
                matched = selector["namespaceSelector"]["matchLabels"] == {
                    "kubernetes.io/metadata.name": peer["namespace"]}
            else:
                matched = False
            if matched:
                return True
    return False


def test_network_policies_let_the_pacs_in_and_the_intake_out(rendered: dict) -> None:
    resources = rendered["k8s/overlays/production"]
    policies = [r["spec"] for r in resources if r["kind"] == "NetworkPolicy"]
    labels = one(resources, "StatefulSet", INTAKE)["spec"]["template"]["metadata"]["labels"]
    serving_labels = one(resources, "Deployment", "tfserving")["spec"]["template"]["metadata"]["labels"]

    def selecting(pod_labels: dict) -> list[dict]:
        return [p for p in policies if p["podSelector"].get("matchLabels", {}).items() <= pod_labels.items()]

    def allowed(pod_labels: dict, direction: str, peer: dict, port: int) -> bool:
        side = "from" if direction == "ingress" else "to"
        return any(admits(p.get(direction, []), side, peer, port) for p in selecting(pod_labels))

    env = resolved_env(resources, container(resources, "StatefulSet", INTAKE))
    results = urlsplit(env["GATEWAY_RESULTS_DICOMWEB_URL"])
    assert results.hostname and results.hostname.endswith(".svc.cluster.local"), "a PACS outside: add its ipBlock"
    pacs_namespace = results.hostname.split(".")[1]
    results_port = results.port or {"http": 80, "https": 443}[results.scheme]

    assert allowed(labels, "ingress", {"namespace": pacs_namespace}, 8080)  # the PACS pushes STOW-RS
    assert allowed(labels, "ingress", {"namespace": "monitoring"}, 8080)  # Prometheus scrapes /metrics
    assert allowed(labels, "egress", {"pod": serving_labels}, 8500)
    assert allowed(serving_labels, "ingress", {"pod": labels}, 8500)
    assert allowed(labels, "egress", {"namespace": pacs_namespace}, results_port)  # the write-back
    assert allowed(labels, "egress", {"namespace": "kube-system"}, 53)  # DNS
    assert not allowed(labels, "ingress", {"namespace": "envoy-gateway-system"}, 8080)  # not behind the Gateway
    assert not allowed(labels, "egress", {"namespace": pacs_namespace}, 22)
