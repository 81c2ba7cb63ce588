"""How fast the DICOMweb worker drains a burst and a backlog, against the model's own batched speed, all in one
process on the shipped model with the gateway's default backend, runtime and micro-batching:

  batched    `Scorer.score` (the data plane: decode, preprocess, model) on calls of GATEWAY_DICOMWEB_BATCH_IMAGES
             instances, back to back: the speed a drain cannot beat
  backlog    N instances already in the spool's incoming/ (the model backend or the gateway was down): worker
             started, until every SR is stored in the PACS
  burst      N instances arriving through the intake (DicomwebService.store: the STOW-RS route's code path, 8 per
             request, 4 requests at once, each instance examined and spooled), the worker running: from the first
             request until every SR is stored

The PACS is the Debian Orthanc (deploy/orthanc's configuration) on loopback: delivery costs what it costs there.
Each drain is compared with the batched speed measured just before and just after it, in every round.

    .venv/bin/python -m benchmarks.dicomweb_drain [--instances 64] [--rounds 2]
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image
from prometheus_client import CollectorRegistry
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian, generate_uid

from benchmarks._samples import fullres
from benchmarks.model_cost import cpu_name
from devtools.pacs import ORTHANC_PASSWORD, ORTHANC_USER, Orthanc, multipart
from serving.config import Settings
from serving.dicomweb.service import DicomwebService
from serving.inference.factory import make_backend
from serving.observability.audit import AuditLog
from serving.observability.logs import configure_logging
from serving.observability.metrics import GatewayMetrics
from serving.scoring import Scorer

PER_REQUEST, CONCURRENT_REQUESTS = 8, 4


def instance(gray: np.ndarray) -> bytes:
    """An uncompressed 8-bit CR of `gray` in a study of its own, inside the model's intended population."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = ComputedRadiographyImageStorage, ExplicitVRLittleEndian
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = ComputedRadiographyImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition, ds.PatientAge = "CR", "CHEST", "PA", "004Y"
    ds.PatientName, ds.PatientID, ds.StudyDate = "Bench^Mark", "BENCH-1", "20240229"
    ds.Rows, ds.Columns = gray.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = gray.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def instances(count: int) -> list[bytes]:
    grays = [np.asarray(Image.open(io.BytesIO(data)).convert("L")) for data in fullres()]
    return [instance(grays[k % len(grays)]) for k in range(count)]


async def batched_speed(scorer: Scorer, data: list[bytes], batch: int, calls: int) -> float:
    await scorer.score(data[:batch], None, "warm-up")
    started = time.perf_counter()
    for k in range(calls):
        chunk = [data[(k * batch + j) % len(data)] for j in range(batch)]
        await scorer.score(chunk, None, f"batched-{k}")
    return calls * batch / (time.perf_counter() - started)


def delivered(service: DicomwebService) -> float:
    return service.metrics.delivered.labels("sr")._value.get()


async def drained(service: DicomwebService, target: float, timeout_s: float = 600) -> None:
    """Until `target` SRs in all have been stored in the PACS."""
    deadline = time.monotonic() + timeout_s
    while delivered(service) < target:
        assert time.monotonic() < deadline, "the spool did not drain"
        await asyncio.sleep(0.05)


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    for offset in range(0, len(body), 65536):
        yield body[offset : offset + 65536]


async def measure(count: int, rounds: int, spool: Path, results_url: str) -> dict[str, list[float]]:
    """Per round: batched, backlog, batched, burst; a last batched after the rounds. Each drain is compared with
    the batched speeds measured just before and after it (the machine's other load changes over minutes)."""
    settings = Settings(
        spool_dir=spool, results_dicomweb_url=results_url, results_dicomweb_username=ORTHANC_USER,
        results_dicomweb_password=ORTHANC_PASSWORD, results_backoff_s=0.2, results_backoff_max_s=1,  # type: ignore[arg-type]
    )
    metrics = GatewayMetrics(CollectorRegistry())
    backend = make_backend(settings, metrics)
    await backend.start()
    figures: dict[str, list[float]] = {"batched": [], "backlog": [], "burst": []}
    try:
        scorer = Scorer(backend, settings, metrics)
        data = instances(count)

        async def batched() -> None:
            calls = max(4, count // settings.dicomweb_batch_images)
            figures["batched"].append(await batched_speed(scorer, data, settings.dicomweb_batch_images, calls))

        for _ in range(rounds):
            await batched()
            service = DicomwebService(settings, CollectorRegistry())  # its own counters
            assert service.spool is not None
            service.spool.open()
            for item in instances(count):  # the backlog: in incoming/ before the worker starts
                service.spool.receive(generate_uid(), item)  # fresh spool keys; the SR UIDs come from the headers
            started = time.perf_counter()
            await service.start(scorer, AuditLog())
            await drained(service, count)
            figures["backlog"].append(count / (time.perf_counter() - started))
            await batched()
            started = time.perf_counter()  # the burst: through the intake, the worker running
            await burst(service, instances(count))
            await drained(service, 2 * count)
            figures["burst"].append(count / (time.perf_counter() - started))
            await service.close()
        await batched()
    finally:
        await backend.close()
    return figures


async def burst(service: DicomwebService, data: list[bytes]) -> None:
    gate = asyncio.Semaphore(CONCURRENT_REQUESTS)

    async def send(parts: list[bytes]) -> None:
        body, content_type = multipart(*parts)
        async with gate:
            response = await service.store(chunks(body), len(body), content_type.split("boundary=")[1], None, None)
        assert response.status_code == 200, response.to_json()

    await asyncio.gather(*(send(data[k : k + PER_REQUEST]) for k in range(0, len(data), PER_REQUEST)))


def main(
    count: Annotated[int, typer.Option("--instances", help="Instances in each backlog and each burst.")] = 64,
    rounds: Annotated[int, typer.Option(help="Rounds of batched, backlog, batched, burst.")] = 2,
) -> None:
    configure_logging("WARNING")  # the worker's retries, should the PACS refuse
    with tempfile.TemporaryDirectory(prefix="dicomweb-drain-") as workdir:
        orthanc = Orthanc(Path(workdir), "http://127.0.0.1:9")
        orthanc.start()
        try:
            figures = asyncio.run(measure(count, rounds, Path(workdir) / "spool", f"{orthanc.url}/dicom-web"))
        finally:
            orthanc.stop()
    batched = figures["batched"]
    print(f"\n{count} CR instances per drain (the 16 full-resolution samples, uncompressed 8-bit), {rounds} rounds, "
          f"shipped model, default backend settings; PACS: Debian Orthanc on loopback; CPU: {cpu_name()}")
    print("model, batched through the data plane: " + ", ".join(f"{rate:.2f}" for rate in batched) + " instances/s")
    for name, first in (("backlog", 0), ("burst", 1)):
        ratios = [rate / ((batched[2 * k + first] + batched[2 * k + first + 1]) / 2)
                  for k, rate in enumerate(figures[name])]
        print(f"{name:7s} drained: " + ", ".join(f"{rate:.2f}" for rate in figures[name]) + " instances/s; "
              "against the batched speed just before and after: " + ", ".join(f"{r:.2f}" for r in ratios)
              + f" (mean {sum(ratios) / len(ratios):.2f})")


if __name__ == "__main__":
    typer.run(main)
