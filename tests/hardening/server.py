"""A real gateway process on loopback (`python -m serving` under uvicorn), for load and shutdown tests.

It inherits the test's environment, so `GATEWAY_SERVING_ADDRESS=host:port` points it at TF Serving
instead of the embedded model; `extra_env` adds or overrides `GATEWAY_*` settings.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def gateway_process(
    tmp_path: Path, extra_env: dict[str, str] | None = None, ready_s: float = 120
) -> Iterator[GatewayProcess]:
    port = free_port()
    env = {**os.environ, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), **(extra_env or {})}
    log_path = tmp_path / f"gateway-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "serving"], cwd=REPO, env=env, stdout=log, stderr=log)
    gateway = GatewayProcess(process, port, log_path)
    try:
        deadline = time.monotonic() + ready_s
        while True:
            assert process.poll() is None, f"the gateway exited early:\n{gateway.log()[-3000:]}"
            try:
                if httpx.get(f"{gateway.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the gateway was not ready in {ready_s} s:\n{gateway.log()[-3000:]}"
            time.sleep(0.2)
        yield gateway
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
