"""A first deploy that works from the docs: the model-load Job puts the model image's versions where TF Serving
looks for them (its publish script run here, with a real shell, on real folders), and the Secrets and settings the
manifests and compose need are the ones README and docs/deployment.md tell a user to create."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from k8s_policy import pod_spec
from k8s_render import container, one, render
from test_deploy_rollout import models_config

from devtools.live_servers import REPO

JOB = "k8s/jobs/model-load"


@pytest.fixture(scope="module")
def job() -> dict:
    return one(render(JOB), "Job", "model-load")


def publish(job: dict, source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """The Job's own command, with its two folders replaced by local ones."""
    c = pod_spec(job)["containers"][0]
    script, name, *_ = c["args"]
    return subprocess.run([*c["command"], script, name, str(source), str(target)],
                          capture_output=True, text=True, timeout=60)


def model_image(tmp_path: Path, versions: dict[str, str]) -> Path:
    source = tmp_path / "image"
    for version, content in versions.items():
        (source / version / "variables").mkdir(parents=True)
        (source / version / "saved_model.pb").write_text(content)
        (source / version / "variables" / "variables.index").write_text(content)
    return source


def test_the_job_publishes_into_servings_model_root(job: dict) -> None:
    c = pod_spec(job)["containers"][0]
    source, target = c["args"][2:]
    serving = container(render("k8s/overlays/production"), "Deployment", "tfserving")
    (serving_mount,) = [m for m in serving["volumeMounts"] if m["name"] == "models"]
    (job_mount,) = c["volumeMounts"]
    (volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == job_mount["name"]]
    assert volume["persistentVolumeClaim"] == {"claimName": "models"} and not job_mount.get("readOnly")
    base_path = models_config().base_path  # /models/pneumonia, under Serving's mount
    assert target == job_mount["mountPath"] + base_path.removeprefix(serving_mount["mountPath"])
    dockerfile = (REPO / "deploy/model/Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"^COPY \. {re.escape(source)}/?$", dockerfile, re.MULTILINE)
    assert pod_spec(job)["securityContext"]["runAsUser"] == pod_spec(
        one(render("k8s/overlays/production"), "Deployment", "tfserving"))["securityContext"]["runAsUser"]


def test_an_empty_volume_gets_every_version_and_a_second_run_changes_nothing(job: dict, tmp_path: Path) -> None:
    source = model_image(tmp_path, {"4": "four", "5": "five"})
    (source / "README").write_text("not a version")
    target = tmp_path / "volume" / "pneumonia"
    first = publish(job, source, target)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in target.iterdir()) == ["4", "5"]
    assert (target / "5" / "variables" / "variables.index").read_text() == "five"
    (target / "5" / "saved_model.pb").write_text("serving has this one loaded")
    second = publish(job, model_image(tmp_path / "next", {"5": "a different five", "6": "six"}), target)
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in target.iterdir()) == ["4", "5", "6"]
    assert (target / "5" / "saved_model.pb").read_text() == "serving has this one loaded"  # never overwritten
    assert "version 5: already on the volume" in second.stdout and "version 6: published" in second.stdout


def test_an_interrupted_copy_is_redone_and_a_broken_version_stops_the_job(job: dict, tmp_path: Path) -> None:
    source = model_image(tmp_path, {"5": "five"})
    target = tmp_path / "volume"
    (target / ".incoming-5").mkdir(parents=True)  # a pod killed in the middle of the copy
    (target / ".incoming-5" / "saved_model.pb").write_text("half")
    assert publish(job, source, target).returncode == 0
    assert sorted(p.name for p in target.iterdir()) == ["5"]
    assert (target / "5" / "saved_model.pb").read_text() == "five"

    broken = tmp_path / "broken"
    (broken / "5").mkdir(parents=True)  # someone's hand copy without its graph
    result = publish(job, source, broken)
    assert result.returncode != 0 and "5 exists without saved_model.pb" in result.stderr
    assert list((broken / "5").iterdir()) == []


INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """Compose's variable interpolation (${VAR}, ${VAR:-default}, ${VAR:?message}); returns the text and the
    messages of required variables left unset, as `docker compose config` would refuse them."""
    missing = []

    def value(match: re.Match[str]) -> str:
        name, kind, argument = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            missing.append(f"{name}: {argument}")
        return argument if kind == "-" else ""

    return INTERPOLATION.sub(value, text), missing


def dotenv(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#"))


def test_compose_env_gives_docker_compose_up_all_it_needs(tmp_path: Path) -> None:
    """scripts/compose-env, as the quick start runs it, writes .env and the API keys file: every required variable
    of docker-compose.yml is set, every secret file exists, and the key Orthanc sends is one the gateway accepts."""
    from serving.api.security import parse_keys

    result = subprocess.run([str(REPO / "scripts/compose-env"), str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    env = dotenv(tmp_path / ".env")
    text, missing = interpolate((REPO / "docker-compose.yml").read_text(encoding="utf-8"), env)
    assert missing == []
    compose = yaml.safe_load(text)
    for secret in compose["secrets"].values():
        assert set(secret) == {"file"} and (tmp_path / secret["file"]).is_file()
    keys = parse_keys((tmp_path / compose["secrets"]["gateway_api_keys"]["file"]).read_text(), "keys")
    assert env["GATEWAY_PACS_API_KEY"] in keys.values()
    assert set(dotenv(REPO / ".env.example")) == set(env)  # the example documents what the script writes
    again = subprocess.run([str(REPO / "scripts/compose-env"), str(tmp_path)], capture_output=True, text=True)
    assert again.returncode == 0 and dotenv(tmp_path / ".env") == env  # never overwrites


def test_without_the_env_compose_refuses_to_start() -> None:
    _, missing = interpolate((REPO / "docker-compose.yml").read_text(encoding="utf-8"), {})
    assert {m.split(":")[0] for m in missing} == set(dotenv(REPO / ".env.example"))


def test_compose_secrets_stay_out_of_git_and_images() -> None:
    from test_deploy_dockerfile import ignored

    gitignore = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/.env" in gitignore and "/.secrets/" in gitignore
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    assert ignored(".env", patterns) and ignored(".secrets/gateway_api_keys", patterns)


def secrets_created(markdown: str) -> set[str]:
    return set(re.findall(r"create secret (?:generic|tls) ([\w-]+)", markdown))


def referenced_secrets(resources: list[dict]) -> set[str]:
    found = set()
    for resource in resources:
        text = yaml.safe_dump(resource)
        found |= set(re.findall(r"secretName: ([\w-]+)", text))
        found |= set(re.findall(r"secretKeyRef:\n\s+key: \S+\n\s+name: ([\w-]+)", text))
        found |= set(re.findall(r"certificateRefs:\n\s+- kind: Secret\n\s+name: ([\w-]+)", text))
    return found


@pytest.mark.parametrize(("doc", "targets"), [
    ("README.md", ("k8s/overlays/production",)),
    ("docs/deployment.md", ("k8s/overlays/production", "k8s/jobs/batch-score", JOB)),
])
def test_the_docs_create_every_secret_the_manifests_need(doc: str, targets: tuple[str, ...]) -> None:
    needed = set().union(*(referenced_secrets(render(target)) for target in targets))
    assert needed >= {"gateway-api-keys", "gateway-tls", "pacs-results-credentials"}
    assert needed - secrets_created((REPO / doc).read_text(encoding="utf-8")) == set()
