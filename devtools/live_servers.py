"""Real servers on loopback for the tests and the benchmarks: the gateway on uvicorn in a thread of this process
(`gateway_thread`) or as its own `python -m serving` process (`gateway_process`), plus free ports,
waiting for a server to answer and stopping a process."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from fastapi import FastAPI

    from serving.config import Settings

REPO = Path(__file__).resolve().parents[1]
GENEROUS_UPSTREAM_TIMEOUT_S = 10.0
"""Upstream deadline for gateways of tests that are not about deadlines (those are tested with the default):
concurrent CPU inference on a shared 2-core machine can take longer than the default 2 s."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ok(url: str, process: subprocess.Popen[bytes], timeout_s: float, log: Path | None = None) -> None:
    """Until GET `url` answers 200; fails at once, with the end of `log`, if the process exits first."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            program, code = _program(process), process.returncode
            raise RuntimeError(f"{program} exited with {code} before {url} answered{_tail(log)}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout_s:g} s{_tail(log)}")
        time.sleep(0.2)


def _program(process: subprocess.Popen[bytes]) -> str:
    """The program a process runs, for messages (`args` is a sequence or one command string)."""
    args = process.args
    first = args if isinstance(args, (str, bytes, os.PathLike)) else args[0]
    return os.fsdecode(first)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `timeout_s`; nothing if it already has."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log: Path | None) -> str:
    return f":\n{log.read_text(errors='replace')[-3000:]}" if log is not None and log.exists() else ""


@dataclass(frozen=True)
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
def gateway_process(env: Mapping[str, str], log_path: Path, ready_s: float = 180) -> Iterator[GatewayProcess]:
    """`python -m serving` as a deployment runs it, configured by `env` alone (GATEWAY_HOST/PORT are set here
    to a free loopback port), its output in `log_path`; yields once `/readyz` answers 200, stops it after."""
    port = free_port()
    env = {**env, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    gateway = GatewayProcess(process, port, log_path)
    try:
        wait_until_ok(f"{gateway.url}/readyz", process, ready_s, log_path)
        yield gateway
    finally:
        stop(process)


@contextmanager
def gateway_thread(settings: Settings, ready_s: float = 60, app: FastAPI | None = None) -> Iterator[httpx.Client]:
    """The gateway app (`app`, else one made from `settings`) on a real uvicorn on a free loopback port, in a thread
    of this process (its event loop, and so a TF Serving backend's gRPC channel and the gateway's own gRPC server,
    live on that thread); yields a client pointed at it."""
    import uvicorn
    from prometheus_client import CollectorRegistry

    from serving.main import create_app

    app = app or create_app(settings, registry=CollectorRegistry())
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_s
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)
