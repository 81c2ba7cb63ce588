"""Images: every image a deployment pulls names its registry and a fixed tag (never `latest`) or a digest, and every
image compose builds is never pulled; TF Serving runs a version in which the shipped model versions were seen to
load and score alike (deploy/tfserving/serving-compat.json, written by scripts/check-serving-compat)."""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache

import pytest
from k8s_policy import pod_spec, workloads
from k8s_render import TARGETS, container, render
from test_deploy_dockerfile import lock
from test_deploy_rollout import models_config

from devtools.live_servers import REPO

COMPAT = REPO / "deploy/tfserving/serving-compat.json"
DOCKERFILES = ("Dockerfile", "deploy/model/Dockerfile", "deploy/orthanc/Dockerfile")
REFERENCE = re.compile(
    r"(?P<registry>localhost(:\d+)?|[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?)/(?P<path>[a-z0-9._-]+(/[a-z0-9._-]+)*)"
    r"(:(?P<tag>\w[\w.-]{0,127}))?(@sha256:(?P<digest>[0-9a-f]{64}))?"
)


def image_problems(image: str) -> list[str]:
    """Why `image` is not a reference that always pulls the same thing from a named registry."""
    match = REFERENCE.fullmatch(image)
    if match is None:
        return [f"{image}: no registry host (a short name resolves to whatever a registry search finds first)"]
    if match["tag"] in (None, "latest") and match["digest"] is None:
        return [f"{image}: no fixed tag or digest"]
    return []


def test_the_image_check_catches_each_fault() -> None:
    assert image_problems("docker.io/tensorflow/serving:2.20.0-gpu") == []
    assert image_problems("registry.example.com:5000/pneumonia/gateway@sha256:" + "a" * 64) == []
    assert image_problems("pneumonia-client:latest") == [
        "pneumonia-client:latest: no registry host (a short name resolves to whatever a registry search finds first)"]
    assert image_problems("tensorflow/serving:2.20.0") != []
    assert image_problems("docker.io/tensorflow/serving:latest") == [
        "docker.io/tensorflow/serving:latest: no fixed tag or digest"]
    assert image_problems("registry.example.com/pneumonia/gateway") != []


@cache
def rendered(target: str) -> list[dict]:
    return render(target)


@pytest.mark.parametrize("target", TARGETS)
def test_kubernetes_pulls_only_qualified_pinned_images(target: str) -> None:
    images = {c["image"] for w in workloads(rendered(target))
              for c in pod_spec(w).get("initContainers", []) + pod_spec(w)["containers"]}
    assert images and [p for image in sorted(images) for p in image_problems(image)] == []


def test_compose_pulls_only_qualified_pinned_images_and_never_pulls_what_it_builds(compose: dict) -> None:
    problems = []
    for name, service in compose["services"].items():
        if "build" in service:
            if service.get("pull_policy") != "build":
                problems.append(f"{name}: built here, but `docker compose pull` would look {service['image']} up")
        else:
            problems += image_problems(service["image"])
    assert problems == []


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfiles_build_from_qualified_pinned_bases(dockerfile: str) -> None:
    text = (REPO / dockerfile).read_text(encoding="utf-8")
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.MULTILINE))
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, re.MULTILINE)
    bases = {re.sub(r"\$\{(\w+)\}", lambda m: arguments[m[1]], base) for base, _ in stages}
    bases -= {name for _, name in stages if name}  # FROM an earlier stage
    assert bases and [p for base in sorted(bases) for p in image_problems(base)] == []


@cache
def compat() -> dict:
    return json.loads(COMPAT.read_text(encoding="utf-8"))


def serving_version() -> str:
    """The TF Serving version the shipped models were checked in (scripts/check-serving-compat)."""
    return compat()["serving_tensorflow"]


def test_serving_runs_the_version_the_models_were_checked_in(compose: dict) -> None:
    version = serving_version()
    expected = {"gpu": f"docker.io/tensorflow/serving:{version}-gpu", "cpu": f"docker.io/tensorflow/serving:{version}"}
    found = {
        "compose gpu": (compose["services"]["tfserving"]["image"], expected["gpu"]),
        "compose cpu": (compose["services"]["tfserving-cpu"]["image"], expected["cpu"]),
        "production": (container(rendered("k8s/overlays/production"), "Deployment", "tfserving")["image"],
                       expected["gpu"]),
        "cpu overlay": (container(rendered("k8s/overlays/cpu"), "Deployment", "tfserving")["image"], expected["cpu"]),
    }
    assert {where: image for where, (image, _) in found.items()} == {where: e for where, (_, e) in found.items()}


def graph_ops():  # scripts/serving_compat.py, the checker itself (a script, not a package)
    spec = importlib.util.spec_from_file_location("serving_compat", REPO / "scripts/serving_compat.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.graph_ops


def test_every_served_version_was_seen_to_load_and_score_alike_in_that_serving() -> None:
    """A SavedModel loads in an older TensorFlow only if every op (and attribute) it uses exists there: the record
    says each op was found in Serving's TensorFlow and the model scored the same there; the ops it lists must still
    be the ops of the model files (a re-exported version is checked again)."""
    record = compat()
    assert record["export_tensorflow"] == lock()["tensorflow-cpu"]
    listed = sorted(str(v) for v in models_config().model_version_policy.specific.versions)
    assert sorted(record["models"]) == listed
    list_ops = graph_ops()
    for version, checked in record["models"].items():
        assert checked["missing_ops"] == [], version
        assert checked["probability_max_abs_difference"] <= 1e-4, version
        assert {"serving_default", "explain", "metadata"} <= set(checked["signatures"])
        assert list_ops(REPO / "models/pneumonia" / version) == checked["ops"], f"version {version} changed"
