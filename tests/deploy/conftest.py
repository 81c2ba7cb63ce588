"""Fixtures of the deployment tests: repo files parsed once, the external tools (promtool, prometheus,
kubectl's kustomize, hadolint: installed by scripts/ci-tools and requirements/lock.txt), and a real gateway
process on a free loopback port (embedded backend on the shipped model) for the scrape tests."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.live_servers import REPO, GatewayProcess, gateway_process

VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """Path of a required tool; a clear failure (never a skip) when it is missing."""
    found = shutil.which(name) or shutil.which(name, path=str(VENV_BIN))
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/ci-tools (apt) and scripts/bootstrap (pip)")
    return found


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def alert_rules() -> dict:
    return yaml.safe_load((REPO / "deploy/prometheus/rules/gateway.rules.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def running_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """`python -m serving` as a deployment runs it: its own process, configured by GATEWAY_* only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {"GATEWAY_LOG_LEVEL": "WARNING"}
    with gateway_process(env, tmp_path_factory.mktemp("gateway") / "gateway.log") as gateway:
        yield gateway
