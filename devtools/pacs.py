"""A real Orthanc (Debian's `orthanc` + `orthanc-dicomweb`) on loopback, configured from deploy/orthanc, and
the gateway as its own process with DICOMweb on, plus the DICOM files the tests send."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ComputedRadiographyImageStorage, generate_uid

from devtools import dicom_files
from devtools.live_servers import GENEROUS_UPSTREAM_TIMEOUT_S, free_port, stop, wait_until_ok

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy" / "orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_USER, ORTHANC_PASSWORD = "gateway", "orthanc-test-password-1"
PACS_KEY, REVOKED_KEY = "pacs-test-key-0123456789", "revoked-key-0123456789"
STOW_LIMIT_BYTES = 96 * 1024 * 1024
FORWARD_RETRY = {"FORWARD_RETRY_FIRST_S": "1", "FORWARD_RETRY_MAX_S": "4", "FORWARD_RETRY_ATTEMPTS": "100"}
"""The Lua script's retries, quick (a gateway restart takes up to a minute here; the shipped pause grows to 60 s)."""
T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.2) -> T:
    """`check()` until it returns something other than None (or False), at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        time.sleep(interval_s)


SR_WITHIN_S = 90  # a cold first scoring on a loaded 2-core machine; typically a second or two


def one_sr(orthanc: Orthanc, gateway: Gateway, study_uid: str) -> Dataset:
    """Waits for the SR, then for the gateway to have nothing pending, and returns the study's only SR."""
    poll(lambda: orthanc.results(study_uid) or None, SR_WITHIN_S, "no SR in the study")
    poll(gateway.idle, SR_WITHIN_S, "the gateway still has work pending")
    results = orthanc.results(study_uid)
    assert len(results) == 1, f"{len(results)} SRs in the study"
    return results[0]


def orthanc_binary() -> str:
    binary = shutil.which("Orthanc")
    assert binary and DICOMWEB_PLUGIN.exists(), (
        "Orthanc with its DICOMweb plugin is required (Debian packages `orthanc` and `orthanc-dicomweb`); "
        "run scripts/ci-tools as root to install them"
    )
    return binary


@dataclass
class Orthanc:
    workdir: Path
    gateway_url: str
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(FORWARD_RETRY))
    """Orthanc's environment besides the passwords (the Lua script's retry settings)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config(self) -> dict[str, object]:
        """deploy/orthanc/orthanc.json with ports, storage, plugin, script and gateway address of this test."""
        config = json.loads((DEPLOY / "orthanc.json").read_text())
        storage = str(self.workdir / "db")
        config |= {
            "StorageDirectory": storage, "IndexDirectory": storage, "HttpPort": self.http_port,
            "DicomPort": self.dicom_port, "RemoteAccessAllowed": False, "Plugins": [str(DICOMWEB_PLUGIN)],
            "LuaScripts": [str(DEPLOY / "forward-to-gateway.lua")],
            "ExecuteLuaEnabled": True,  # tests call the script's functions through /tools/execute-script
        }
        config["DicomWeb"]["Servers"]["gateway"]["Url"] = f"{self.gateway_url}/dicomweb/"  # type: ignore[index]
        return config

    def start(self) -> None:
        path = self.workdir / "orthanc.json"
        path.write_text(json.dumps(self.config(), indent=2))
        env = {**os.environ, "ORTHANC_GATEWAY_PASSWORD": ORTHANC_PASSWORD, "GATEWAY_PACS_API_KEY": PACS_KEY, **self.env}
        with (self.workdir / "orthanc.log").open("ab") as log:
            self.process = subprocess.Popen([orthanc_binary(), str(path)], env=env, stdout=log, stderr=log)
        poll(self._answers, 30, "Orthanc did not answer")

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, (
            f"Orthanc exited: {(self.workdir / 'orthanc.log').read_text()[-3000:]}"
        )
        try:
            with self.client() as client:
                return client.get("/system").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def client(self) -> httpx.Client:
        password = self.env.get("ORTHANC_GATEWAY_PASSWORD", ORTHANC_PASSWORD)  # a test may rotate it
        return httpx.Client(base_url=self.url, auth=(ORTHANC_USER, password), timeout=30)

    def upload(self, data: bytes) -> str:
        with self.client() as client:
            response = client.post("/instances", content=data)
        assert response.status_code == 200, response.text
        return response.json()["ID"]

    def lua(self, script: str) -> str:
        """What a Lua `script` prints, run in Orthanc's own Lua context (the forwarding script's globals)."""
        with self.client() as client:
            response = client.post("/tools/execute-script", content=script)
        assert response.status_code == 200, response.text
        return response.text

    def results(self, study_uid: str, modality: str = "SR") -> list[Dataset]:
        """The instances of `modality` in the study, as Orthanc stores them."""
        with self.client() as client:
            found = client.post("/tools/find", json={"Level": "Study", "Query": {"StudyInstanceUID": study_uid}})
            datasets: list[Dataset] = []
            for study in found.json():
                for series in client.get(f"/studies/{study}/series").json():
                    if series["MainDicomTags"].get("Modality") != modality:
                        continue
                    for instance in series["Instances"]:
                        datasets.append(dcmread(io.BytesIO(client.get(f"/instances/{instance}/file").content)))
        return datasets


@dataclass
class Gateway:
    workdir: Path
    results_url: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    @property
    def audit_path(self) -> Path:
        return self.workdir / "audit.jsonl"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port),
            "GATEWAY_API_KEYS": f"pacs:{PACS_KEY},old:{REVOKED_KEY}", "GATEWAY_REVOKED_API_KEYS": "old",
            "GATEWAY_SPOOL_DIR": str(self.workdir / "spool"),
            "GATEWAY_RESULTS_DICOMWEB_URL": self.results_url,
            "GATEWAY_RESULTS_DICOMWEB_USERNAME": ORTHANC_USER, "GATEWAY_RESULTS_DICOMWEB_PASSWORD": ORTHANC_PASSWORD,
            "GATEWAY_RESULTS_TIMEOUT_S": "5", "GATEWAY_RESULTS_BACKOFF_S": "0.2", "GATEWAY_RESULTS_BACKOFF_MAX_S": "1",
            "GATEWAY_RESULTS_HEATMAP": "true",
            "GATEWAY_MAX_BODY_BYTES": str(8 * 1024 * 1024),  # /v1; STOW-RS has its own limit:
            "GATEWAY_DICOMWEB_MAX_BODY_BYTES": str(STOW_LIMIT_BYTES),
            "GATEWAY_UPSTREAM_TIMEOUT_S": str(GENEROUS_UPSTREAM_TIMEOUT_S),
            "GATEWAY_AUDIT_LOG_FILE": str(self.audit_path),
        }

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "serving"], cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        wait_until_ok(f"{self.url}/readyz", self.process, 180, self.log_path)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; what the spool holds must be enough."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def client(self, key: str | None = PACS_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": key} if key else {}, timeout=60)

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        with self.client() as client:
            text = client.get("/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def idle(self) -> bool:
        """Nothing left to score or write back."""
        return all(self.metric("gateway_dicomweb_outbox_items", state=s) == 0 for s in ("scoring", "delivery"))

    def predict(self, data: bytes) -> dict[str, object]:
        with self.client() as client:
            response = client.post("/v1/predict", content=data, headers={"content-type": "application/dicom"})
        assert response.status_code == 200, response.text
        return response.json()


@dataclass(frozen=True)
class Picture:
    jpeg: bytes
    gray: np.ndarray


def radiograph(gray: np.ndarray, kind: str = "cr", jpeg: bytes | None = None) -> Dataset:
    """A CR (or another kind's) instance of `gray` in a study of its own, with the sentinel patient data."""
    builders: dict[str, Callable[[], Dataset]] = {
        "cr": lambda: dicom_files.monochrome2_8bit(gray, modality="CR"),
        "monochrome1": lambda: dicom_files.monochrome1_8bit(gray),
        "16bit": lambda: dicom_files.rescaled_16bit(gray),
        "jpeg": lambda: dicom_files.jpeg_baseline(jpeg or b"", *gray.shape),
        "ct": lambda: dicom_files.monochrome2_8bit(gray, modality="CT"),
    }
    ds = builders[kind]()
    if ds.Modality == "CR":
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    ds.StudyInstanceUID = generate_uid()
    ds.BodyPartExamined, ds.ViewPosition = "CHEST", "PA"  # aged 4 by PATIENT_TAGS' dates: the intended population
    return ds


def to_bytes(ds: Dataset) -> bytes:
    return dicom_files.to_bytes(ds)


def multipart(*instances: bytes, boundary: str = "b0undary-3f9a") -> tuple[bytes, str]:
    """A STOW-RS body and its Content-Type."""
    delimiter = b"--" + boundary.encode()
    body = b"".join(delimiter + b"\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n" for data in instances)
    return body + delimiter + b"--\r\n", f'multipart/related; type="application/dicom"; boundary={boundary}'


def probability_of(sr: Dataset) -> float:
    """The FloatingPointValue of the NUM item whose concept name contains "Probability of pneumonia"."""
    (item,) = [i for i in content_items(sr) if i.ValueType == "NUM" and concept(i) == "Probability of pneumonia"]
    return float(item.MeasuredValueSequence[0].FloatingPointValue)


def concept(item: Dataset) -> str:
    return str(item.ConceptNameCodeSequence[0].CodeMeaning)


def content_items(ds: Dataset) -> list[Dataset]:
    items = []
    for item in getattr(ds, "ContentSequence", []):
        items.append(item)
        items.extend(content_items(item))
    return items
