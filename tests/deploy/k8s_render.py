"""The Kubernetes targets rendered as the cluster would get them (kubectl's kustomize), and lookups into them,
shared by the Kubernetes tests."""

from __future__ import annotations

import subprocess

import yaml
from k8s_policy import pod_spec

from devtools.live_servers import REPO
from tests.deploy.tools import tool

TARGETS = ("k8s/overlays/production", "k8s/overlays/cpu", "k8s/jobs/batch-score", "k8s/jobs/model-load")


def render(target: str) -> list[dict]:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(REPO / target)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(resources: list[dict], kind: str, name: str) -> dict:
    (found,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def container(resources: list[dict], kind: str, name: str) -> dict:
    return pod_spec(one(resources, kind, name))["containers"][0]


def env_of(c: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}
