"""docker-compose.yml, parsed and checked (no Docker engine here): the services and their wiring, GPU and CPU
profiles, health-gated start order, every mounted file present in the repo, and no secret in the file."""

from __future__ import annotations

import re

import pytest
import yaml
from k8s_render import render

from devtools.live_servers import REPO
from serving.config import Settings

SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEYS?$|CREDENTIAL", re.IGNORECASE)


def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def bind_mounts(service: dict) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts.append((source, target))
    return mounts


def test_the_stack_has_its_services(compose: dict) -> None:
    assert set(services(compose)) == {"tfserving", "tfserving-cpu", "gateway", "orthanc", "prometheus", "alertmanager",
                                      "grafana"}
    profiles = {name: set(s["profiles"]) for name, s in services(compose).items()}
    assert profiles["tfserving"] == {"gpu"} and profiles["tfserving-cpu"] == {"cpu"}
    assert all(profiles[name] == {"gpu", "cpu"} for name in ("gateway", "orthanc", "prometheus", "alertmanager",
                                                             "grafana"))


def test_serving_runs_with_its_config_files(compose: dict) -> None:
    """Which Serving image: test_deploy_images.py."""
    gpu, cpu = services(compose)["tfserving"], services(compose)["tfserving-cpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["driver"] == "nvidia"
    assert "deploy" not in cpu
    mounted = {target: source for source, target in bind_mounts(gpu)}
    flags = dict(arg.split("=", 1) for arg in gpu["command"])
    for flag in ("--model_config_file", "--batching_parameters_file", "--monitoring_config_file"):
        folder, name = flags[flag].rsplit("/", 1)
        # the folder is mounted, not the file: an edit saved as a new file still reaches Serving
        assert mounted[folder] == "./deploy/tfserving" and (REPO / "deploy/tfserving" / name).is_file(), flag
    assert flags["--enable_grpc_healthcheck_service"] == "true"
    assert gpu["entrypoint"] == ["tensorflow_model_server"]
    assert mounted["/models"] == "./models"
    # each model in models.config is found under the mounted repository
    models_config = (REPO / "deploy/tfserving/models.config").read_text(encoding="utf-8")
    base_paths = re.findall(r'base_path\s*:\s*"([^"]+)"', models_config)
    assert base_paths and all(path.startswith("/models/") for path in base_paths), base_paths
    assert all(list((REPO / "models" / path.removeprefix("/models/")).glob("*/saved_model.pb")) for path in base_paths)


def test_compose_and_kubernetes_start_serving_the_same_way(compose: dict) -> None:
    """Same flags except the Kubernetes-only connection-age setting (headless Service balancing)."""
    resources = render("k8s/overlays/production")
    (deployment,) = [r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == "tfserving"]
    k8s_args = {a for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
                if not a.startswith("--grpc_channel_arguments")}
    assert set(services(compose)["tfserving"]["command"]) == k8s_args


@pytest.mark.parametrize("name", ["tfserving", "tfserving-cpu", "orthanc", "prometheus", "alertmanager", "grafana"])
def test_every_mounted_file_exists_in_the_repo(compose: dict, name: str) -> None:
    mounts = bind_mounts(services(compose)[name])
    missing = [source for source, _ in mounts if not (REPO / source).exists()]
    assert mounts and missing == [], f"{name} mounts files that are not in the repo: {missing}"


def test_start_order_is_health_gated(compose: dict) -> None:
    s = services(compose)
    for name in ("tfserving", "tfserving-cpu", "gateway", "prometheus", "alertmanager"):
        assert s[name]["healthcheck"]["test"][0] == "CMD", name
    gateway_deps = s["gateway"]["depends_on"]
    assert gateway_deps == {
        "tfserving": {"condition": "service_healthy", "required": False},
        "tfserving-cpu": {"condition": "service_healthy", "required": False},
    }
    assert s["prometheus"]["depends_on"]["gateway"]["condition"] == "service_healthy"
    assert s["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_gateway_is_wired_to_serving_and_locked_down(compose: dict) -> None:
    gateway = services(compose)["gateway"]
    env = gateway["environment"]
    assert set(env) <= {f"GATEWAY_{name.upper()}" for name in Settings.model_fields}
    host, port = env["GATEWAY_SERVING_ADDRESS"].split(":")
    assert host == "tfserving" and port == "8500"
    assert "tfserving" in services(compose)["tfserving-cpu"]["networks"]["default"]["aliases"]
    assert gateway["ports"] == [f"127.0.0.1:{env['GATEWAY_PORT']}:{env['GATEWAY_PORT']}"]
    assert gateway["build"] == {"context": ".", "target": "gateway"}
    assert gateway["read_only"] is True and gateway["tmpfs"] == ["/tmp"] and gateway["cap_drop"] == ["ALL"]
    assert env["GATEWAY_API_KEYS_FILE"] == f"/run/secrets/{gateway['secrets'][0]}"


def test_the_spool_is_a_named_volume_the_gateway_can_write(compose: dict) -> None:
    """The DICOMweb spool outlives the container (a named volume, not the container's layer or a tmpfs), and the
    image creates its mount point owned by the gateway's uid: Docker gives a new named volume that owner."""
    gateway = services(compose)["gateway"]
    spool = gateway["environment"]["GATEWAY_SPOOL_DIR"]
    assert [v.split(":")[0] for v in gateway["volumes"] if v.split(":")[1] == spool] == ["gateway-spool"]
    assert spool not in gateway["tmpfs"] and "gateway-spool" in compose["volumes"]
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8").split(" AS gateway", 1)[1]
    assert re.search(rf"install -d -o 10001 -g 10001 (-m \d+ )?{re.escape(spool)}\b", dockerfile)


def test_prometheus_and_grafana_load_the_repos_config(compose: dict) -> None:
    prometheus = dict((t, s) for s, t in bind_mounts(services(compose)["prometheus"]))
    assert prometheus["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert prometheus["/etc/prometheus/rules"] == "./deploy/prometheus/rules"
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    targets = {job["job_name"]: (job["metrics_path"], job["static_configs"][0]["targets"])
               for job in config["scrape_configs"]}
    assert targets == {"gateway": ("/metrics", ["gateway:8080"]),
                       "tfserving": ("/monitoring/prometheus/metrics", ["tfserving:8501"])}
    grafana = dict((t, s) for s, t in bind_mounts(services(compose)["grafana"]))
    provider = yaml.safe_load(
        (REPO / grafana["/etc/grafana/provisioning"] / "dashboards/pneumonia.yml").read_text(encoding="utf-8")
    )
    assert provider["providers"][0]["options"]["path"] in grafana
    datasource = yaml.safe_load(
        (REPO / grafana["/etc/grafana/provisioning"] / "datasources/prometheus.yml").read_text(encoding="utf-8")
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_named_volumes_and_no_secrets_in_the_file(compose: dict) -> None:
    used = {v.split(":")[0] for s in services(compose).values() for v in s.get("volumes", [])
            if not v.startswith(".")}
    assert used == set(compose["volumes"]) == {"prometheus-data", "grafana-data", "gateway-spool", "orthanc-data",
                                               "alertmanager-data"}
    for name, service in services(compose).items():
        for key, value in service.get("environment", {}).items():
            if SECRET_WORDS.search(key):
                assert str(value).startswith("${") or key.endswith("_FILE"), f"{name}: {key} is set in the file"
    # a file outside git, written by scripts/compose-env (test_deploy_first_deploy.py)
    assert compose["secrets"]["gateway_api_keys"] == {"file": "./.secrets/gateway_api_keys"}


def test_images_are_pinned(compose: dict) -> None:
    images = [s["image"] for s in services(compose).values()]
    assert all(re.search(r":v?\d+\.\d+", image) or image.endswith(":local") for image in images), images
