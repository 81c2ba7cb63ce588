"""Readiness per pod kind and resources sized from a measurement, on a real gateway process started with the PACS
intake's rendered environment, calling the local TF Serving stand-in (localserving: real gRPC, the shipped model)
over loopback, which the test then stops:

- with Serving down the intake's readiness probe still answers 200 and a STOW-RS instance is taken into its spool
  (the PACS keeps an endpoint to send to); the REST gateway's probe tolerates a Serving blip of 30 s before it takes
  the pod out of the Service (its own 503 with Retry-After beats the Gateway's bare one);
- uploads spool to TMPDIR: an upload of GATEWAY_MAX_BODY_BYTES held open, all of it received, is measured there
  (the file descriptors of the process under TMPDIR); /tmp's sizeLimit must hold GATEWAY_MAX_IN_FLIGHT of them, and
  the memory limit the process at rest plus, per request in flight, that spool (a memory-backed /tmp counts as the
  pod's memory), the body read into memory and the worst-case decode of docs/hardening.md
  (GATEWAY_MAX_IMAGE_PIXELS x 4 bytes)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from k8s_policy import pod_spec
from k8s_render import container, one, render
from test_deploy_pacs_intake import resolved_env

from devtools.live_servers import REPO, free_port, stop, wait_until_ok
from devtools.pacs import multipart, radiograph, to_bytes
from localserving import BackgroundServer
from serving.config import Settings
from tests.tfserving.harness import link_version

TARGET = "k8s/overlays/production"
GATEWAY_PODS = (("Deployment", "gateway"), ("Deployment", "gateway-canary"), ("StatefulSet", "pacs-intake"))
API_KEY = "pacs-router-key-for-sizing-tests"
MIB = 1024 * 1024


@dataclass
class Intake:
    process: subprocess.Popen[bytes]
    url: str
    tmpdir: Path
    spool: Path
    probe: dict

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024  # type: ignore[index]

    def spooled_bytes(self) -> int:
        """Bytes of the files the process holds open under TMPDIR (unnamed O_TMPFILE files included)."""
        total = 0
        for fd in os.listdir(f"/proc/{self.process.pid}/fd"):
            try:
                if os.readlink(f"/proc/{self.process.pid}/fd/{fd}").startswith(str(self.tmpdir)):
                    total += os.stat(f"/proc/{self.process.pid}/fd/{fd}").st_size
            except OSError:
                continue
        return total


@pytest.fixture(scope="module")
def resources() -> list[dict]:
    return render(TARGET)


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """The stand-in serving the shipped model under the label the intake calls, `stable`."""
    root = tmp_path_factory.mktemp("serving") / "pneumonia"
    root.mkdir()
    link_version(root, 5)
    server = BackgroundServer(root, "pneumonia", labels={"stable": 5})
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def intake(resources: list[dict], serving: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Intake]:
    """`python -m serving` with the intake pod's environment; what the pod mounts is replaced by local folders."""
    work = tmp_path_factory.mktemp("intake")
    c = container(resources, "StatefulSet", "pacs-intake")
    env = resolved_env(resources, c)
    keys = work / "api_keys"
    keys.write_text(f"pacs:{API_KEY}\n")
    port = free_port()
    env |= {
        "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_SERVING_ADDRESS": serving.address,
        "GATEWAY_SPOOL_DIR": str(work / "spool"), "GATEWAY_API_KEYS_FILE": str(keys),
        "GATEWAY_DRIFT_REFERENCE": str(REPO / "models/pneumonia"),
        "GATEWAY_RESULTS_DICOMWEB_URL": f"http://127.0.0.1:{free_port()}/dicom-web",
        "TMPDIR": str(work / "tmp"), "PATH": os.environ["PATH"],
    }
    (work / "tmp").mkdir()
    log = work / "intake.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "serving"], cwd=REPO, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    probe = c["readinessProbe"]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}{probe['httpGet']['path']}", process, timeout_s=180, log=log)
        yield Intake(process, url, work / "tmp", work / "spool", probe)
    finally:
        stop(process)


def store(intake: Intake, seed: int) -> httpx.Response:
    gray = np.random.default_rng(seed).integers(0, 256, (256, 256), dtype=np.uint8)
    body, content_type = multipart(to_bytes(radiograph(gray)))
    return httpx.post(f"{intake.url}/dicomweb/studies", content=body, timeout=60,
                      headers={"content-type": content_type, "x-api-key": API_KEY})


def test_the_intake_is_ready_and_takes_studies_while_serving_is_down(intake: Intake, serving: BackgroundServer
                                                                     ) -> None:
    wait_until_ok(f"{intake.url}/readyz", intake.process, timeout_s=120)  # Serving up: model metadata read
    assert store(intake, 1).status_code == 200
    serving.stop()
    deadline = time.monotonic() + 30
    while httpx.get(f"{intake.url}/readyz", timeout=10).status_code != 503:  # the gateway sees Serving down
        assert time.monotonic() < deadline
        time.sleep(0.5)
    before = set(intake.spool.rglob("*.dcm"))
    assert httpx.get(f"{intake.url}{intake.probe['httpGet']['path']}", timeout=10).status_code == 200
    stored = store(intake, 2)
    assert stored.status_code == 200, stored.text
    assert set(intake.spool.rglob("*.dcm")) - before  # on disk, to be scored when Serving is back


def test_the_gateway_stays_in_service_through_a_short_serving_blip(resources: list[dict]) -> None:
    for kind, name in GATEWAY_PODS[:2]:
        probe = container(resources, kind, name)["readinessProbe"]
        assert probe["httpGet"]["path"] == "/readyz"  # a gateway that cannot score leaves the Service...
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 30  # ...but not for a blip
        assert probe["timeoutSeconds"] > Settings().readiness_timeout_s


def hold_uploads(url: str, count: int, size: int) -> list[tuple[socket.socket, bytes]]:
    """`count` multipart batch uploads of `size` bytes, sent but for their last 100 bytes."""
    boundary = "sizing-b0undary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = head + os.urandom(size - len(head) - len(tail)) + tail
    host, port = url.removeprefix("http://").split(":")
    held = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=60)
        sock.sendall(f"POST /v1/predict/batch HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {API_KEY}\r\n"
                     f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode())
        sock.sendall(body[:-100])
        held.append((sock, body[-100:]))
    return held


def quantity(value: str) -> int:
    units = {"Ki": 1024, "Mi": MIB, "Gi": 1024 * MIB}
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", value).groups()  # type: ignore[union-attr]
    return int(number) * units.get(unit or "", 1)


def test_tmp_and_memory_hold_the_measured_worst_case(intake: Intake, resources: list[dict]) -> None:
    rest_mib = intake.rss_mib()
    env = Settings()  # the defaults, overridden below by each pod's own environment
    body_bytes = env.max_body_bytes
    held = hold_uploads(intake.url, 2, body_bytes)
    try:
        deadline = time.monotonic() + 60
        while intake.spooled_bytes() < 2 * body_bytes * 0.99 and time.monotonic() < deadline:
            time.sleep(0.2)
        per_upload = intake.spooled_bytes() / 2
    finally:
        for sock, rest in held:
            sock.sendall(rest)
            sock.recv(100)
            sock.close()
    print(f"gateway at rest {rest_mib:.0f} MiB RSS; one {body_bytes / MIB:.0f} MiB upload held: "
          f"{per_upload / MIB:.1f} MiB under TMPDIR")  # -s shows it
    assert per_upload >= 0.99 * body_bytes  # a part over 1 MiB is spooled whole
    tmpdir = re.search(r"TMPDIR=(\S+)", (REPO / "Dockerfile").read_text(encoding="utf-8").split(" AS gateway", 1)[1])
    for kind, name in GATEWAY_PODS:
        c, pod = container(resources, kind, name), pod_spec(one(resources, kind, name))
        settings = {e["name"].removeprefix("GATEWAY_").lower(): e["value"] for e in c["env"] if "value" in e}
        in_flight = int(settings.get("max_in_flight", env.max_in_flight))
        pixels = int(settings.get("max_image_pixels", env.max_image_pixels))
        (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == tmpdir[1]]  # type: ignore[index]
        (tmp,) = [v["emptyDir"] for v in pod["volumes"] if v["name"] == mount["name"]]
        assert quantity(tmp["sizeLimit"]) >= in_flight * per_upload, (name, in_flight)
        needed = rest_mib * MIB + in_flight * (body_bytes + pixels * 4)
        if tmp.get("medium") == "Memory":
            needed += quantity(tmp["sizeLimit"])
        limit = quantity(c["resources"]["limits"]["memory"])
        assert limit >= needed, f"{name}: limit {limit / MIB:.0f} MiB < {needed / MIB:.0f} MiB"
        assert quantity(c["resources"]["requests"]["memory"]) >= rest_mib * MIB
