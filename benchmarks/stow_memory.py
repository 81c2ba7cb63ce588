"""Peak memory of a STOW-RS request of full-size radiographs: the gateway as a deployment runs it (`python -m serving`,
the shipped model, a spool), one request of K uncompressed 16-bit DX of 3000 x 3000 (18 MB each). The peak RSS is
reset (`/proc/<pid>/clear_refs`, Linux) before the request and read when it is answered, then once every instance is
scored (the worker decodes each too). Results go nowhere (no PACS): only the intake and the scoring are measured.
`--intake-only` holds the worker (a sitecustomize module replaces its loop): the request's own memory.

    .venv/bin/python -m benchmarks.stow_memory [--instances 4] [--intake-only]
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import numpy as np
import typer
from PIL import Image
from pydicom.uid import generate_uid

from benchmarks._samples import fullres
from benchmarks.model_cost import cpu_name
from devtools import dicom_files
from devtools.live_servers import gateway_process


def dx(gray: np.ndarray) -> bytes:
    """An uncompressed DX of the intended population: 12 bits stored in 16, as a detector writes them."""
    ds = dicom_files.windowed_12bit(gray)
    ds.StudyInstanceUID = generate_uid()  # one study per instance
    ds.BodyPartExamined, ds.ViewPosition, ds.PatientAge = "CHEST", "PA", "004Y"
    ds.PresentationIntentType = "FOR PRESENTATION"
    return dicom_files.to_bytes(ds)


def status_kib(pid: int, field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))  # type: ignore[union-attr]


def pending(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('gateway_dicomweb_outbox_items{state="scoring"}'))


HOLD_WORKER = """
import asyncio
import os
import sys

sys.path.insert(0, os.getcwd())  # the repository: `python -m serving` runs there
from serving.dicomweb import worker  # noqa: E402


async def held(self):
    await asyncio.Event().wait()


worker.Worker.run = held
"""


def main(
    count: Annotated[int, typer.Option("--instances", help="DX instances in the one request.")] = 4,
    intake_only: Annotated[bool, typer.Option(help="Hold the worker: nothing is scored.")] = False,
) -> None:
    gray = np.asarray(Image.open(io.BytesIO(fullres()[0])).convert("L").resize((3000, 3000)))
    parts = [dx(gray) for _ in range(count)]
    boundary = "stow-memory-boundary"
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
                    for part in parts) + b"--" + boundary.encode() + b"--\r\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    with tempfile.TemporaryDirectory(prefix="stow-memory-") as workdir:
        env |= {"GATEWAY_SPOOL_DIR": f"{workdir}/spool", "GATEWAY_RESULTS_DICOMWEB_URL": "http://127.0.0.1:9/dicom-web",
                "GATEWAY_MAX_BODY_BYTES": str(512 * 1024 * 1024), "GATEWAY_UPSTREAM_TIMEOUT_S": "120"}
        if intake_only:
            (Path(workdir) / "sitecustomize.py").write_text(HOLD_WORKER)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [workdir, env.get("PYTHONPATH")]))
        with gateway_process(env, Path(workdir) / "gateway.log") as gateway:
            pid = gateway.process.pid
            with httpx.Client(base_url=gateway.url, timeout=300) as client:
                time.sleep(5)  # settled after start
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
                before = status_kib(pid, "VmRSS")
                response = client.post("/dicomweb/studies", content=body, headers={
                    "content-type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
                answered = status_kib(pid, "VmHWM")
                assert response.status_code == 200, response.text
                while pending(client) and not intake_only:
                    time.sleep(0.5)
                scored = status_kib(pid, "VmHWM")
    body_mib, mib = len(body) / 2**20, 1024
    print(f"\none STOW-RS request of {count} x {len(parts[0]) / 1e6:.1f} MB DX ({body_mib:.0f} MiB); CPU: {cpu_name()}")
    print(f"RSS before {before / mib:.0f} MiB; peak growth until answered {(answered - before) / mib:.0f} MiB "
          f"({(answered - before) / mib / body_mib:.2f}x the body), until scored {(scored - before) / mib:.0f} MiB")


if __name__ == "__main__":
    typer.run(main)
