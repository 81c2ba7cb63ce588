"""Kubernetes manifests: rendered by kustomize (kubectl's), validated offline against the Kubernetes OpenAPI
schemas (kubernetes-validate, strict), held to the pod policy, and checked for the objects the deployment
relies on (GPU scheduling, probes, headless Service, HPA, PDBs, NetworkPolicies, API-key Secret, Job). The PACS
intake's spool and wiring: test_deploy_pacs_intake.py."""

from __future__ import annotations

import copy
from collections import Counter

import kubernetes_validate
import pytest
from crd_schemas import custom_resource_errors
from k8s_policy import pod_spec, violations, workloads
from k8s_render import TARGETS, container, env_of, one, render

from serving.config import Settings

# oldest Kubernetes the manifests target (lifecycle.preStop.sleep is on by default from 1.30) and the newest
# the schemas know
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# Secrets the platform creates outside git (docs/deployment.md), referenced by name only
EXTERNAL_SECRETS = {"gateway-api-keys", "gateway-tls", "batch-score-api-key", "pacs-results-credentials"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {target: render(target) for target in TARGETS}


def schema_errors(resources: list[dict], version: str) -> list[str]:
    """Built-in kinds against the Kubernetes schemas, custom ones (Gateway API, Prometheus Operator) against their
    CRDs' (crd_schemas.py); a kind known to neither is an error."""
    errors = []
    for resource in resources:
        custom = custom_resource_errors(resource)
        if custom is not None:
            errors += custom
            continue
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.absolute_path)
            errors.append(f"{resource['kind']}/{resource['metadata']['name']} {path}: {exc.message}")
    return errors


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_manifests_match_the_kubernetes_schemas(rendered: dict, target: str, version: str) -> None:
    assert schema_errors(rendered[target], version) == []


def test_schema_validation_catches_a_typo(rendered: dict) -> None:
    deployment = one(rendered["k8s/overlays/production"], "Deployment", "gateway")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    errors = schema_errors([deployment], KUBERNETES_VERSIONS[0])
    del deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"]
    assert len(errors) == 1 and "'livenesProbe' was unexpected" in errors[0]


def test_schema_validation_catches_a_typo_in_a_custom_resource(rendered: dict) -> None:
    route = copy.deepcopy(one(rendered["k8s/overlays/production"], "HTTPRoute", "gateway"))
    route["spec"]["rules"][0]["backendRefs"][0]["prot"] = 80
    route["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"
    errors = " | ".join(schema_errors([route], KUBERNETES_VERSIONS[0]))
    assert errors.count(" | ") == 1 and "'prot' was unexpected" in errors and "'Prefix' is not one of" in errors


@pytest.mark.parametrize("target", TARGETS)
def test_every_workload_meets_the_pod_policy(rendered: dict, target: str) -> None:
    resources = rendered[target]
    assert list(workloads(resources))
    assert [v for workload in workloads(resources) for v in violations(workload)] == []


def test_the_policy_check_finds_each_violation() -> None:
    bad = {"kind": "Deployment", "metadata": {"name": "bad"},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}}}]}}}}
    assert violations(bad) == [
        "Deployment/bad/c: no requests for ['cpu', 'memory']",
        "Deployment/bad/c: no limits for ['memory']",
        "Deployment/bad/c: no livenessProbe",
        "Deployment/bad/c: no readinessProbe",
        "Deployment/bad/c: may run as root",
        "Deployment/bad/c: root filesystem writable",
        "Deployment/bad/c: privilege escalation allowed",
        "Deployment/bad/c: capabilities not all dropped",
        "Deployment/bad/c: seccomp not RuntimeDefault",
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_everything_lives_in_the_namespace(rendered: dict, target: str) -> None:
    namespaced = [r for r in rendered[target] if r["kind"] != "Namespace"]
    assert {r["metadata"].get("namespace") for r in namespaced} == {"pneumonia"}


@pytest.mark.parametrize("target", TARGETS)
def test_pods_reference_only_objects_that_exist(rendered: dict, target: str) -> None:
    """A Job applied beside the deployment may use its objects (the model volume)."""
    resources = rendered[target]
    beside = rendered["k8s/overlays/production"] if target.startswith("k8s/jobs/") else []
    present = {(r["kind"], r["metadata"]["name"]) for r in resources + beside}
    missing = set()
    for workload in workloads(resources):
        pod = pod_spec(workload)
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                missing.add(("ConfigMap", volume["configMap"]["name"]))
            if "persistentVolumeClaim" in volume:
                missing.add(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
            if "secret" in volume:
                missing.add(("Secret", volume["secret"]["secretName"]))
        for c in pod["containers"]:
            for env in c.get("env", []):
                if "secretKeyRef" in env.get("valueFrom", {}):
                    missing.add(("Secret", env["valueFrom"]["secretKeyRef"]["name"]))
                if "configMapKeyRef" in env.get("valueFrom", {}):
                    missing.add(("ConfigMap", env["valueFrom"]["configMapKeyRef"]["name"]))
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
            assert mounts <= {v["name"] for v in pod.get("volumes", [])} | claims
    external = {("Secret", name) for name in EXTERNAL_SECRETS}
    assert missing - present - external == set()


def test_serving_runs_on_gpu_nodes_with_patient_probes(rendered: dict) -> None:
    resources = rendered["k8s/overlays/production"]
    deployment = one(resources, "Deployment", "tfserving")
    pod = pod_spec(deployment)
    serving = pod["containers"][0]
    assert serving["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    startup = serving["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # model load + warm-up on a cold node
    assert {"readinessProbe", "livenessProbe"} <= set(serving)
    assert pod["terminationGracePeriodSeconds"] >= 30 and "preStop" in serving["lifecycle"]
    args = set(serving["args"])
    assert {"--enable_grpc_healthcheck_service=true", "--model_config_file=/etc/tfserving/models.config",
            "--batching_parameters_file=/etc/tfserving/batching.config",
            "--monitoring_config_file=/etc/tfserving/monitoring.config"} <= args
    mounts = {m["mountPath"]: m for m in serving["volumeMounts"]}
    assert mounts["/models"]["readOnly"] and mounts["/etc/tfserving"]["readOnly"]
    (config,) = [v["projected"]["sources"] for v in pod["volumes"] if v["name"] == mounts["/etc/tfserving"]["name"]]
    files = {name for source in config for name in one(resources, "ConfigMap", source["configMap"]["name"])["data"]}
    assert files == {"models.config", "batching.config", "monitoring.config"}


def test_the_cpu_overlay_asks_for_no_gpu(rendered: dict) -> None:
    pod = pod_spec(one(rendered["k8s/overlays/cpu"], "Deployment", "tfserving"))
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in pod and "tolerations" not in pod


def test_grpc_is_spread_over_serving_replicas(rendered: dict) -> None:
    """Headless Service (DNS lists every pod; the gateway's channel balances round robin) and Serving closing
    connections periodically so that clients re-resolve."""
    resources = rendered["k8s/overlays/production"]
    service = one(resources, "Service", "tfserving")
    assert service["spec"]["clusterIP"] == "None"
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["grpc"] == 8500
    address = env_of(container(resources, "Deployment", "gateway"))["GATEWAY_SERVING_ADDRESS"]
    assert address == f"dns:///tfserving.{service['metadata']['namespace']}.svc.cluster.local:8500"
    args = " ".join(container(resources, "Deployment", "tfserving")["args"])
    assert "grpc.max_connection_age_ms=" in args


def test_gateway_settings_are_real_and_keys_come_from_a_secret(rendered: dict) -> None:
    resources = rendered["k8s/overlays/production"]
    gateway = container(resources, "Deployment", "gateway")
    env = env_of(gateway)
    fields = {f"GATEWAY_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    keys_dir = env["GATEWAY_API_KEYS_FILE"].rsplit("/", 1)[0]
    mount = next(m for m in gateway["volumeMounts"] if m["mountPath"] == keys_dir)
    volume = next(v for v in pod_spec(one(resources, "Deployment", "gateway"))["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "gateway-api-keys" and mount["readOnly"]
    assert "GATEWAY_API_KEYS" not in env  # never a key in a manifest
    probes = {name: gateway[name]["httpGet"]["path"] for name in ("livenessProbe", "readinessProbe")}
    assert probes == {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}


def test_gateway_scales_and_survives_disruptions(rendered: dict) -> None:
    resources = rendered["k8s/overlays/production"]
    gateway = one(resources, "Deployment", "gateway")
    assert "replicas" not in gateway["spec"]  # the HPA's to set; `kubectl apply` would reset it
    hpa = one(resources, "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert hpa["spec"]["minReplicas"] >= 2
    budgets = [r for r in resources if r["kind"] == "PodDisruptionBudget"]
    covered = Counter()
    for workload in (r for r in resources if r["kind"] in {"Deployment", "StatefulSet"}):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        for budget in budgets:
            if budget["spec"]["selector"]["matchLabels"].items() <= labels.items():
                covered[workload["metadata"]["name"]] += 1
    assert covered == {"gateway": 1, "gateway-canary": 1, "tfserving": 1, "pacs-intake": 1}


def test_services_select_pods(rendered: dict) -> None:
    resources = rendered["k8s/overlays/production"]
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in workloads(resources)]
    for service in (r for r in resources if r["kind"] == "Service"):
        assert any(service["spec"]["selector"].items() <= labels.items() for labels in pod_labels)


def test_network_policies_isolate_serving_and_gateway(rendered: dict) -> None:
    resources = rendered["k8s/overlays/production"]
    policies = {r["metadata"]["name"]: r["spec"] for r in resources if r["kind"] == "NetworkPolicy"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    serving_in = policies["tfserving"]["ingress"]
    grpc_peers = [peer for rule in serving_in if {"port": 8500} in rule["ports"] for peer in rule["from"]]
    assert grpc_peers == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}}
                          for name in ("gateway", "pacs-intake")]
    gateway_in = [peer for rule in policies["gateway"]["ingress"] for peer in rule["from"]]
    namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in gateway_in
                  if "namespaceSelector" in p}
    assert namespaces == {"envoy-gateway-system", "monitoring"}  # the Gateway's proxies, Prometheus


def test_pods_are_annotated_for_prometheus(rendered: dict) -> None:
    resources = rendered["k8s/overlays/production"]
    annotations = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]
                   for d in resources if d["kind"] in {"Deployment", "StatefulSet"}}
    assert annotations["gateway"]["prometheus.io/path"] == "/metrics"
    assert annotations["pacs-intake"]["prometheus.io/path"] == "/metrics"
    assert annotations["tfserving"]["prometheus.io/path"] == "/monitoring/prometheus/metrics"
    assert {a["prometheus.io/scrape"] for a in annotations.values()} == {"true"}


def test_production_images_are_pinned(rendered: dict) -> None:
    images = [c["image"] for w in workloads(rendered["k8s/overlays/production"]) for c in pod_spec(w)["containers"]]
    assert images and all(":" in image and not image.endswith(":latest") for image in images), images


def test_batch_job_runs_the_client_cli_against_the_gateway(rendered: dict) -> None:
    resources = rendered["k8s/jobs/batch-score"]
    job = one(resources, "Job", "batch-score")
    score = pod_spec(job)["containers"][0]
    assert score["args"][0] == "score" and "--out" in score["args"]
    assert env_of(score)["XRAY_GATEWAY_URL"] == "http://gateway.pneumonia.svc.cluster.local"
    assert score["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "batch-score-api-key"
    assert pod_spec(job)["restartPolicy"] in {"OnFailure", "Never"} and job["spec"]["backoffLimit"] >= 1

