"""The pod policy the project holds every rendered workload to (tests/deploy/test_deploy_kubernetes.py).
Returns violations as readable strings, so a test asserts an exact, empty list."""

from __future__ import annotations

from collections.abc import Iterator

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def pod_spec(resource: dict) -> dict:
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def workloads(resources: list[dict]) -> Iterator[dict]:
    return (r for r in resources if r["kind"] in WORKLOADS)


def violations(resource: dict) -> list[str]:
    """Every container: cpu and memory requests and limits; liveness and readiness probes (not batch Jobs,
    which have no traffic to gate); non-root; read-only root fs; no privilege escalation; all capabilities
    dropped; seccomp RuntimeDefault (pod or container level)."""
    pod = pod_spec(resource)
    pod_security = pod.get("securityContext", {})
    batch = resource["kind"] in {"Job", "CronJob"}
    found = []
    for container in pod.get("initContainers", []) + pod["containers"]:
        where = f"{resource['kind']}/{resource['metadata']['name']}/{container['name']}"
        security = container.get("securityContext", {})
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(kind, {}))
            if missing:
                found.append(f"{where}: no {kind} for {sorted(missing)}")
        if not batch:
            found += [f"{where}: no {probe}" for probe in ("livenessProbe", "readinessProbe") if probe not in container]
        run_as_non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        run_as_user = security.get("runAsUser", pod_security.get("runAsUser"))
        if run_as_non_root is not True or run_as_user in (None, 0):
            found.append(f"{where}: may run as root")
        if security.get("readOnlyRootFilesystem") is not True:
            found.append(f"{where}: root filesystem writable")
        if security.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: privilege escalation allowed")
        if "ALL" not in security.get("capabilities", {}).get("drop", []) or security.get("capabilities", {}).get("add"):
            found.append(f"{where}: capabilities not all dropped")
        seccomp = security.get("seccompProfile", pod_security.get("seccompProfile", {}))
        if seccomp.get("type") != "RuntimeDefault":
            found.append(f"{where}: seccomp not RuntimeDefault")
        if security.get("privileged"):
            found.append(f"{where}: privileged")
    return found
