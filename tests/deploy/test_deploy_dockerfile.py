"""The Dockerfile, linted by hadolint and checked for what the project needs (no Docker engine here): stages,
pinned base, non-root, HEALTHCHECK, the dependency list against the code's imports and the lock, and a
.dockerignore that keeps data, models, reports and virtualenvs out of the build context."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from devtools.live_servers import REPO
from tests.deploy.tools import tool

DOCKERFILE = REPO / "Dockerfile"
# which stage installs the dependencies of which code
DEPENDENCY_STAGES = {"gateway-deps": ("radiograph", "serving"), "client-deps": ("client",)}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            if current.strip():
                keyword, _, args = current.strip().partition(" ")
                logical.append((keyword.upper(), " ".join(args.split())))
            current = ""
    return logical


def stages() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for keyword, args in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "FROM":
            name = args.split(" AS ")[-1] if " AS " in args else str(len(found))
            found[name] = []
        if found:
            found[list(found)[-1]].append((keyword, args))
    return found


def installed_packages(stage: str) -> set[str]:
    """The direct dependencies a stage installs: the `.in` list whose hashed lock (scripts/lock) its RUN installs."""
    (run,) = [args for keyword, args in stages()[stage] if keyword == "RUN" and "pip install" in args]
    (hashed,) = re.findall(r"--require-hashes -r requirements/(\w+)\.hashes\.txt", run)
    text = (REPO / "requirements" / f"{hashed}.in").read_text(encoding="utf-8")
    return {norm(line.strip()) for line in text.splitlines() if line.strip() and not line.startswith("#")}


def pins_in(name: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements" / name).read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            package, version = line.split("==")
            pins[norm(package)] = version.strip()
    return pins


def lock() -> dict[str, str]:
    return pins_in("lock.txt") | pins_in("no-deps.txt")


def no_deps_pins() -> dict[str, str]:
    """What the gateway-deps stage installs from requirements/no-deps.txt (without their declared dependencies)."""
    return pins_in("no-deps.txt")


def third_party_imports(folders: tuple[str, ...]) -> set[str]:
    local = {p.name for p in REPO.iterdir() if p.is_dir()}
    modules = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m not in local and m != "__future__"}


def closure(packages: set[str]) -> set[str]:
    """The packages and everything they require (markers evaluated here), from the installed metadata."""
    seen, todo = set(), list(packages)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(norm(requirement.name))
    return seen


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "")


def test_hadolint_flags_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install fastapi\nCMD python -m serving\n")
    result = subprocess.run([tool("hadolint"), "--no-color", str(careless)], capture_output=True, text=True)
    assert result.returncode != 0
    assert {"DL3007", "DL3013", "DL3025"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_stages_and_pinned_base() -> None:
    assert list(stages()) == ["gateway-deps", "client-deps", "client", "gateway"]  # gateway: the default target
    (base,) = re.findall(r"ARG PYTHON_IMAGE=(\S+)", DOCKERFILE.read_text(encoding="utf-8"))
    assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-\w+", base), base  # requires-python 3.11


@pytest.mark.parametrize("stage", ["gateway", "client"])
def test_images_run_as_non_root_without_writing_their_root_fs(stage: str) -> None:
    steps = stages()[stage]
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users == ["10001:10001"]
    env = " ".join(args for keyword, args in steps if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env  # /tmp is the only writable place
    copied = {args.split()[0] for keyword, args in steps if keyword == "COPY" and "--from" not in args}
    assert copied <= {"radiograph/", "serving/", "client/"}  # no model, data or tests in an image


def test_gateway_image_health_and_command() -> None:
    steps = dict(reversed(stages()["gateway"]))  # first occurrence of each instruction
    assert "/healthz" in steps["HEALTHCHECK"] and steps["HEALTHCHECK"].startswith("--interval")
    assert steps["CMD"] == '["python", "-m", "serving"]'
    assert steps["EXPOSE"] == "8080"
    assert "GATEWAY_HOST=0.0.0.0" in " ".join(a for k, a in stages()["gateway"] if k == "ENV")


@pytest.mark.parametrize("stage", list(DEPENDENCY_STAGES))
def test_images_install_what_the_code_imports(stage: str) -> None:
    packages = installed_packages(stage) | (set(no_deps_pins()) if stage == "gateway-deps" else set())
    distributions = metadata.packages_distributions()
    missing = {module for module in third_party_imports(DEPENDENCY_STAGES[stage])
               if not {norm(d) for d in distributions.get(module, [module])} & packages}
    assert missing == set(), f"{stage} does not install the packages of these imports: {missing}"


@pytest.mark.parametrize("stage", list(DEPENDENCY_STAGES))
def test_every_installed_package_is_pinned_by_the_lock(stage: str) -> None:
    pins = lock()
    unpinned = closure(installed_packages(stage)) - set(pins)
    assert unpinned == set()


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a pattern matching a parent folder
    matches what is inside it."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = re.escape(pattern.lstrip("!").rstrip("/"))
        regex = regex.replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            result = not negate
    return result


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    kept_out = ["models/pneumonia/1/saved_model.pb", ".venv/bin/python", "data/chest_xray/x.jpeg",
                "reports/metrics.json", "runs/1/log.txt", "cache/x.npy", "tests/conftest.py", ".git/HEAD",
                "serving/__pycache__/main.cpython-311.pyc", ".env", "training/train.py"]
    assert [p for p in kept_out if not ignored(p, patterns)] == []
    sources = {args.split()[0] for steps in stages().values() for keyword, args in steps
               if keyword == "COPY" and "--from" not in args}
    needed = [s.rstrip("/") + ("/__init__.py" if s.endswith("/") else "") for s in " ".join(sources).split()]
    assert [p for p in needed if ignored(p, patterns)] == []
    assert all((REPO / p).exists() for p in needed), needed
