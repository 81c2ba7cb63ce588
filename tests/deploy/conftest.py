"""Fixtures of the deployment tests: repo files parsed once, and a real gateway process on a free loopback port
(embedded backend on the shipped model) for the scrape tests. The external tools are found by `tools.tool`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import yaml

from devtools.live_servers import REPO, GatewayProcess, gateway_process


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def alert_rules() -> dict:
    """The groups of every rule file in deploy/prometheus/rules, as one rule file."""
    groups = []
    for path in sorted((REPO / "deploy/prometheus/rules").glob("*.yml")):
        groups += yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return {"groups": groups}


@pytest.fixture(scope="session")
def running_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """`python -m serving` as a deployment runs it: its own process, configured by GATEWAY_* only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {"GATEWAY_LOG_LEVEL": "WARNING"}
    with gateway_process(env, tmp_path_factory.mktemp("gateway") / "gateway.log") as gateway:
        yield gateway
