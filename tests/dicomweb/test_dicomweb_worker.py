"""The outbox worker with fakes (a real spool on disk, an in-memory PACS, a scorer that answers at once): one bad
instance must not stop the rest, and the spool is never listed on the event loop's thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydicom.dataset import Dataset

from serving.config import Settings
from serving.dicomweb.metrics import DicomwebMetrics
from serving.dicomweb.service import DicomwebService
from serving.dicomweb.spool import Spool
from serving.dicomweb.worker import Worker
from serving.observability.audit import AuditLog
from serving.verdict import Verdict
from tests.dicomweb.pacs import radiograph, to_bytes

GRAY = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)


class FakeScorer:
    def __init__(self) -> None:
        self.backend = SimpleNamespace(metadata=self._metadata)

    async def _metadata(self, version: int | None = None) -> SimpleNamespace:
        return SimpleNamespace(positive_label="PNEUMONIA")

    async def score(self, images: list[bytes], operating_point: str | None, request_id: str) -> list[Verdict]:
        return [Verdict("PNEUMONIA", 0.75, 0.5, "screening", "pneumonia", 5) for _ in images]


class MemoryPacs:
    def __init__(self) -> None:
        self.stored: list[Dataset] = []

    def store(self, instance: Dataset) -> None:
        self.stored.append(instance)


class WatchedSpool(Spool):
    """Records the threads the spool's folders are listed on."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.listed_on: set[int] = set()

    def _items(self, folder: str):  # type: ignore[no-untyped-def]
        self.listed_on.add(threading.get_ident())
        return super()._items(folder)


async def run_worker(spool: Spool, pacs: MemoryPacs, until: object, timeout_s: float = 20) -> Worker:
    settings = Settings(results_backoff_s=0.05, results_backoff_max_s=0.1)
    worker = Worker(spool, pacs, FakeScorer(), AuditLog(), DicomwebMetrics(CollectorRegistry()), settings)  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not until() and not task.done() and asyncio.get_running_loop().time() < deadline:  # type: ignore[operator]
            await asyncio.sleep(0.02)
        assert not task.done(), f"the worker stopped: {task.exception()!r}"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return worker


@pytest.mark.parametrize(
    "spoil",
    [
        lambda ds: setattr(ds, "PatientSex", "X"),  # highdicom refuses it: ValueError
        lambda ds: setattr(ds, "SOPClassUID", "1.2.826.0.1.3680043.9.9999.1"),  # a private SOP class: KeyError
    ],
)
def test_an_instance_whose_result_cannot_be_built_goes_to_failed_and_the_rest_are_delivered(
    tmp_path: Path, spoil: object
) -> None:
    spool, pacs = Spool(tmp_path), MemoryPacs()
    spool.open()
    bad, good = radiograph(GRAY), radiograph(GRAY)
    spoil(bad)  # type: ignore[operator]
    spool.receive(bad.SOPInstanceUID, to_bytes(bad))
    spool.receive(good.SOPInstanceUID, to_bytes(good))
    asyncio.run(run_worker(spool, pacs, until=lambda: pacs.stored))
    assert [str(sr.StudyInstanceUID) for sr in pacs.stored] == [good.StudyInstanceUID]
    assert len(spool.failed()) == 1 and not spool.incoming() and not spool.outbox()


def test_the_spool_is_never_listed_on_the_event_loop(tmp_path: Path) -> None:
    spool, pacs = WatchedSpool(tmp_path), MemoryPacs()
    spool.open()
    for _ in range(3):
        instance = radiograph(GRAY)
        spool.receive(instance.SOPInstanceUID, to_bytes(instance))

    async def scenario() -> int:
        await run_worker(spool, pacs, until=lambda: len(pacs.stored) == 3)
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert len(pacs.stored) == 3
    assert spool.listed_on and loop_thread not in spool.listed_on


class FlakyPacs(MemoryPacs):
    """Fails its first store with an error no one planned for (the write-back's own errors are DeliveryError)."""

    def store(self, instance: Dataset) -> None:
        if not hasattr(self, "failed_once"):
            self.failed_once = True
            raise RuntimeError("unexpected")
        super().store(instance)


def test_an_unexpected_error_pauses_the_stage_instead_of_ending_the_worker(tmp_path: Path) -> None:
    spool, pacs = Spool(tmp_path), FlakyPacs()
    spool.open()
    instance = radiograph(GRAY)
    spool.receive(instance.SOPInstanceUID, to_bytes(instance))
    asyncio.run(run_worker(spool, pacs, until=lambda: pacs.stored))
    assert len(pacs.stored) == 1 and not spool.outbox() and not spool.failed()


def test_the_intake_lists_the_spool_in_a_thread(tmp_path: Path) -> None:
    settings = Settings(spool_dir=tmp_path, results_dicomweb_url="http://127.0.0.1:9/dicom-web")
    service = DicomwebService(settings, CollectorRegistry())
    spool = service.spool = WatchedSpool(tmp_path)
    instance = radiograph(GRAY)

    async def scenario() -> int:
        await service.start(FakeScorer(), AuditLog())  # type: ignore[arg-type]
        try:
            response = await service.receive([to_bytes(instance)], None, None)
            assert response.status_code == 200
        finally:
            await service.close()
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert spool.listed_on and loop_thread not in spool.listed_on


def test_cancelling_the_worker_as_the_intake_wakes_it_stops_it(tmp_path: Path) -> None:
    """Python 3.11's `asyncio.wait_for` swallows a cancellation that arrives as the awaited event is set: the
    gateway's shutdown then waited for the worker forever."""
    spool = Spool(tmp_path)
    spool.open()
    settings = Settings()
    worker = Worker(spool, MemoryPacs(), FakeScorer(), AuditLog(), DicomwebMetrics(CollectorRegistry()), settings)  # type: ignore[arg-type]

    async def scenario() -> bool:
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.5)  # idle, waiting to be woken
        worker.wake.set()  # a STOW-RS request spooled an instance ...
        task.cancel()  # ... as the gateway shuts down
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            task.cancel()
        return bool(done)

    assert asyncio.run(scenario()), "the worker ignored its cancellation: shutdown would hang"
