"""SIGTERM drains: the gateway stops accepting, finishes the requests in flight, then exits; a
request that never finishes cannot hold the exit past GATEWAY_SHUTDOWN_GRACE_S."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from devtools.live_servers import GatewayProcess, gateway_process

CORPUS = Path(__file__).resolve().parent / "corpus"


def start_upload(gateway: GatewayProcess, data: bytes, sent: int) -> socket.socket:
    """A raw HTTP/1.1 upload of which only the first `sent` body bytes are on the wire."""
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=60)
    head = (
        "POST /v1/predict HTTP/1.1\r\nHost: gateway\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(data)}\r\nX-Request-ID: draining-1\r\n\r\n"
    )
    sock.sendall(head.encode() + data[:sent])
    return sock


def wait_in_flight(gateway: GatewayProcess, expected: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
        # the /metrics request itself is in flight too
        if f"gateway_in_flight_requests {expected + 1:.1f}" in text:
            return
        time.sleep(0.05)
    raise AssertionError(f"never saw {expected} request(s) in flight")


def read_response(sock: socket.socket) -> tuple[int, dict]:
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.timeout(240)
def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    data = (CORPUS / "reference.png").read_bytes()
    env = os.environ | {"GATEWAY_SHUTDOWN_GRACE_S": "60"}
    with gateway_process(env, tmp_path / "gateway.log", ready_s=120) as gateway:
        sock = start_upload(gateway, data, len(data) // 2)
        wait_in_flight(gateway, 1)
        gateway.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert gateway.process.poll() is None, "the gateway exited with a request in flight"
        with pytest.raises(httpx.ConnectError):  # no new connections while draining
            httpx.get(f"{gateway.url}/healthz", timeout=2)
        sock.sendall(data[len(data) // 2 :])
        status, body = read_response(sock)
        sock.close()
        assert status == 200 and body["request_id"] == "draining-1"
        # uvicorn re-raises the signal once drained: killed by SIGTERM, after the answer went out
        assert gateway.process.wait(timeout=30) in (0, -signal.SIGTERM)


@pytest.mark.timeout(240)
def test_grace_period_bounds_the_drain(tmp_path: Path) -> None:
    data = (CORPUS / "reference.png").read_bytes()
    env = os.environ | {"GATEWAY_SHUTDOWN_GRACE_S": "2"}
    with gateway_process(env, tmp_path / "gateway.log", ready_s=120) as gateway:
        sock = start_upload(gateway, data, 100)  # and never the rest
        wait_in_flight(gateway, 1)
        started = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        gateway.process.wait(timeout=30)
        assert time.monotonic() - started < 20
        sock.close()
