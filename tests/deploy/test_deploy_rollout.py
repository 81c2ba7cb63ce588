"""Model rollout and rollback on the rendered manifests: every gateway and intake container asks TF Serving for a
version label (gateways and intake `stable`, the canary gateway `canary`), each label it asks for exists in
models.config, the canary runs the stable gateway's pod but for its label, and a models.config edit reaches the
running Serving pods without restarting them (a fixed ConfigMap name, Serving polling the file)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from k8s_policy import pod_spec, workloads
from k8s_render import container, env_of, one, render
from tensorflow_serving.config import model_server_config_pb2

from devtools.live_servers import REPO

OVERLAYS = ("k8s/overlays/production", "k8s/overlays/cpu")
LABEL = "GATEWAY_MODEL_VERSION_LABEL"
CALLERS = {("Deployment", "gateway"): "stable", ("StatefulSet", "pacs-intake"): "stable",
           ("Deployment", "gateway-canary"): "canary"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {target: render(target) for target in OVERLAYS}


def models_config(text: str | None = None) -> model_server_config_pb2.ModelConfig:
    text = text or (REPO / "deploy/tfserving/models.config").read_text(encoding="utf-8")
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    return model


def gateway_containers(resources: list[dict]) -> dict[tuple[str, str], dict]:
    """Every container that runs the gateway image (the REST gateway, its canary, the PACS intake)."""
    gateway_image = container(resources, "Deployment", "gateway")["image"]
    return {(w["kind"], w["metadata"]["name"]): c for w in workloads(resources)
            for c in pod_spec(w)["containers"] if c["image"] == gateway_image}


@pytest.mark.parametrize("target", OVERLAYS)
def test_every_gateway_and_intake_container_calls_its_label(rendered: dict, target: str) -> None:
    callers = gateway_containers(rendered[target])
    assert {kind_name: env_of(c).get(LABEL) for kind_name, c in callers.items()} == CALLERS


def test_the_labels_called_exist_and_name_served_versions(rendered: dict) -> None:
    model = models_config()
    listed = set(model.model_version_policy.specific.versions)
    for c in gateway_containers(rendered["k8s/overlays/production"]).values():
        assert model.version_labels[env_of(c)[LABEL]] in listed  # KeyError: a label Serving does not know


def test_compose_gateway_calls_stable(compose: dict) -> None:
    assert compose["services"]["gateway"]["environment"][LABEL] == "stable"


def without_track(deployment: dict) -> dict:
    """The Deployment less what may differ between the stable and the canary gateway."""
    d = copy.deepcopy(deployment)
    del d["metadata"]["name"]
    d["spec"].pop("replicas", None)  # the stable one's count is the HPA's
    for labels in (d["metadata"]["labels"], d["spec"]["selector"]["matchLabels"],
                   d["spec"]["template"]["metadata"]["labels"]):
        labels.pop("track", None)
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["env"] = [e for e in c["env"] if e["name"] != LABEL]
    return d


def test_the_canary_is_the_stable_gateway_but_for_its_label(rendered: dict) -> None:
    resources = rendered["k8s/overlays/production"]
    stable, canary = one(resources, "Deployment", "gateway"), one(resources, "Deployment", "gateway-canary")
    assert without_track(canary) == without_track(stable)
    assert canary["spec"]["replicas"] == 1
    # the two Deployments never claim each other's pods
    stable_pods, canary_pods = (d["spec"]["template"]["metadata"]["labels"] for d in (stable, canary))
    assert not stable["spec"]["selector"]["matchLabels"].items() <= canary_pods.items()
    assert not canary["spec"]["selector"]["matchLabels"].items() <= stable_pods.items()
    # the canary takes its share of the gateway Service's traffic, under the same NetworkPolicy, PDB and Serving access
    for kind in ("Service", "NetworkPolicy", "PodDisruptionBudget"):
        selector = one(resources, kind, "gateway")["spec"]
        selector = selector.get("selector", selector.get("podSelector"))
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= canary_pods.items() and selector.items() <= stable_pods.items(), kind
    hpa = one(resources, "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "gateway"  # the canary keeps its one pod


def copy_of_the_manifests(tmp_path: Path) -> Path:
    for folder in ("k8s", "deploy"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def serving_after(root: Path) -> tuple[dict, dict[str, dict]]:
    resources = render(str(root / "k8s/overlays/production"))
    maps = {r["metadata"]["name"]: r for r in resources if r["kind"] == "ConfigMap"}
    return one(resources, "Deployment", "tfserving"), maps


def test_a_models_config_edit_reaches_serving_without_a_restart(tmp_path: Path) -> None:
    """Moving a label changes the ConfigMap's data under the same name and leaves the Serving pod template as it
    was (no rollout: the kubelet updates the mounted file, Serving re-reads it); a batching change, read at start-up
    only, does roll Serving."""
    root = copy_of_the_manifests(tmp_path)
    before, maps_before = serving_after(root)
    config = root / "deploy/tfserving/models.config"
    edited = model_server_config_pb2.ModelServerConfig()
    edited.model_config_list.config.append(models_config())
    edited.model_config_list.config[0].version_labels["canary"] = 4
    config.write_text(text_format.MessageToString(edited), encoding="utf-8")
    after, maps_after = serving_after(root)
    (holder,) = [name for name, m in maps_after.items() if "models.config" in m["data"]]
    assert maps_after[holder]["data"] != maps_before[holder]["data"]
    assert models_config(maps_after[holder]["data"]["models.config"]).version_labels["canary"] == 4
    assert after["spec"]["template"] == before["spec"]["template"]

    batching = root / "deploy/tfserving/batching.config"
    batching.write_text(batching.read_text(encoding="utf-8").replace("{ value: 2000 }", "{ value: 3000 }"))
    rolled, _ = serving_after(root)
    assert rolled["spec"]["template"] != after["spec"]["template"]


def test_serving_polls_a_mount_the_kubelet_updates(rendered: dict) -> None:
    serving = container(rendered["k8s/overlays/production"], "Deployment", "tfserving")
    flags = dict(a.split("=", 1) for a in serving["args"] if "=" in a)
    assert int(flags["--model_config_file_poll_wait_seconds"]) > 0
    directory = flags["--model_config_file"].rsplit("/", 1)[0]
    (mount,) = [m for m in serving["volumeMounts"] if m["mountPath"] == directory]
    assert "subPath" not in mount  # a subPath mount is never updated
