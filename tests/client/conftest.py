"""Fixtures of the client tests: a real gateway (uvicorn on loopback, API keys required) and a small, fixed
sample of training images."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
API_KEY = "batch-job-key-0123456789"
REVOKED_KEY = "retired-key-0123456789ab"


@dataclass(frozen=True)
class LiveGateway:
    url: str
    api_key: str
    revoked_key: str
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, limit_s: float = 180.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the gateway was not ready within {limit_s:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """`python -m serving` on the shipped model, on a free loopback port, with one active and one revoked key."""
    port = free_port()
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    env = os.environ | {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_API_KEYS": f"batch:{API_KEY},retired:{REVOKED_KEY}",
        "GATEWAY_REVOKED_API_KEYS": "retired",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "serving"], cwd=REPO, env=env, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        yield LiveGateway(url, API_KEY, REVOKED_KEY, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def training_sample(data_dir: Path) -> list[Path]:
    """60 training images, 20 NORMAL and 40 PNEUMONIA, spread evenly over each sorted folder."""
    sample: list[Path] = []
    for label, count in (("NORMAL", 20), ("PNEUMONIA", 40)):
        files = sorted((data_dir / "train" / label).glob("*.jpeg"))
        sample += files[:: len(files) // count][:count]
    assert len(sample) == 60
    return sample
