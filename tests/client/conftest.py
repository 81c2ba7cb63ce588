"""Fixtures of the client tests: a real gateway (uvicorn on loopback, API keys required) and a small, fixed
sample of training images."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.live_servers import GENEROUS_UPSTREAM_TIMEOUT_S, gateway_process
from tests.client.live_gateway import LiveGateway

API_KEY = "batch-job-key-0123456789"
REVOKED_KEY = "retired-key-0123456789ab"


@pytest.fixture(scope="session")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """`python -m serving` on the shipped model, on a free loopback port, with one active and one revoked key."""
    env = os.environ | {
        "GATEWAY_API_KEYS": f"batch:{API_KEY},retired:{REVOKED_KEY}",
        "GATEWAY_REVOKED_API_KEYS": "retired",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_UPSTREAM_TIMEOUT_S": str(GENEROUS_UPSTREAM_TIMEOUT_S),  # concurrent SDK calls share 2 cores
    }
    with gateway_process(env, tmp_path_factory.mktemp("gateway") / "gateway.log") as gateway:
        yield LiveGateway(gateway.url, API_KEY, REVOKED_KEY, gateway.log_path)


@pytest.fixture(scope="session")
def training_sample(data_dir: Path) -> list[Path]:
    """60 training images, 20 NORMAL and 40 PNEUMONIA, spread evenly over each sorted folder."""
    sample: list[Path] = []
    for label, count in (("NORMAL", 20), ("PNEUMONIA", 40)):
        files = sorted((data_dir / "train" / label).glob("*.jpeg"))
        sample += files[:: len(files) // count][:count]
    assert len(sample) == 60
    return sample
