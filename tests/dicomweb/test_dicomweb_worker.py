"""The outbox worker with fakes (a real spool on disk, an in-memory PACS, a scorer that answers at once): one bad
instance must not stop the rest, headers highdicom refuses still get an SR, a resend during scoring is scored too,
batches go through the data plane, a pass costs the same whatever the backlog, failed/ is kept only so long, and
the spool is never listed on the event loop's thread."""

from __future__ import annotations

import asyncio
import copy
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydicom.dataset import Dataset

from devtools.pacs import radiograph, to_bytes
from serving.config import Settings
from serving.dicomweb.metrics import DicomwebMetrics
from serving.dicomweb.spool import Spool
from serving.dicomweb.worker import Worker
from serving.observability.audit import AuditLog
from serving.verdict import Verdict

GRAY = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)


class FakeScorer:
    """Answers at once; records the size of each call (a batch) and can run `during_score` inside one."""

    def __init__(self) -> None:
        self.backend = SimpleNamespace(metadata=self._metadata)
        self.batches: list[int] = []
        self.during_score: Callable[[], None] | None = None

    async def _metadata(self, version: int | None = None) -> SimpleNamespace:
        return SimpleNamespace(positive_label="PNEUMONIA")

    async def score(self, images: list[bytes], operating_point: str | None, request_id: str) -> list[Verdict]:
        self.batches.append(len(images))
        if self.during_score is not None:
            self.during_score()
            self.during_score = None
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

    def entries(self, folder: str):  # type: ignore[no-untyped-def]
        self.listed_on.add(threading.get_ident())
        return super().entries(folder)


def make_worker(spool: Spool, pacs: MemoryPacs, scorer: FakeScorer | None = None, **settings: object) -> Worker:
    config = Settings(results_backoff_s=0.05, results_backoff_max_s=0.1, **settings)  # type: ignore[arg-type]
    return Worker(spool, pacs, scorer or FakeScorer(), AuditLog(), DicomwebMetrics(CollectorRegistry()), config)  # type: ignore[arg-type]


async def drive(worker: Worker, until: Callable[[], object], timeout_s: float = 20) -> Worker:
    task = asyncio.create_task(worker.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not until() and not task.done() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert not task.done(), f"the worker stopped: {task.exception()!r}"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return worker


async def run_worker(
    spool: Spool, pacs: MemoryPacs, until: Callable[[], object], scorer: FakeScorer | None = None, **settings: object
) -> Worker:
    return await drive(make_worker(spool, pacs, scorer, **settings), until)


def spooled(tmp_path: Path, *instances: Dataset, spool: Spool | None = None) -> Spool:
    spool = spool or Spool(tmp_path)
    spool.open()
    for instance in instances:
        spool.receive(instance.SOPInstanceUID, to_bytes(instance))
    return spool


def test_an_instance_whose_result_cannot_be_built_goes_to_failed_and_the_rest_are_delivered(tmp_path: Path) -> None:
    bad, good = radiograph(GRAY), radiograph(GRAY)
    bad.SOPClassUID = "1.2.826.0.1.3680043.9.9999.1"  # a private SOP class: highdicom cannot reference it
    spool, pacs = spooled(tmp_path, bad, good), MemoryPacs()
    asyncio.run(run_worker(spool, pacs, until=lambda: pacs.stored))
    assert [str(sr.StudyInstanceUID) for sr in pacs.stored] == [good.StudyInstanceUID]
    assert len(list((tmp_path / "failed").iterdir())) == 1
    assert not list((tmp_path / "incoming").iterdir()) and not list((tmp_path / "outbox").iterdir())


@pytest.mark.parametrize(
    ("keyword", "sent", "in_sr"),
    [
        ("PatientSex", "U", ""),  # not one of M, F, O: highdicom refuses it
        ("PatientSex", "X", ""),
        ("PatientSex", "m", "M"),
        ("PatientBirthDate", "20231345", ""),  # month 13
        ("PatientBirthDate", "2019-03-14", "20190314"),
        ("StudyDate", "20240230", ""),  # February 30th
        ("StudyTime", "256199", ""),
    ],
)
def test_header_values_highdicom_refuses_are_blanked_or_corrected_in_the_sr(
    tmp_path: Path, keyword: str, sent: str, in_sr: str
) -> None:
    """The intake answered 200 for these: an SR must follow, with the value corrected or empty (legal in Type 2)."""
    instance = radiograph(GRAY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the invalid value: the point of the test
        setattr(instance, keyword, sent)
    spool, pacs = spooled(tmp_path, instance), MemoryPacs()
    asyncio.run(run_worker(spool, pacs, until=lambda: pacs.stored))
    (sr,) = pacs.stored
    assert keyword in sr and str(sr.get(keyword) or "") == in_sr
    assert sr.PatientID == instance.PatientID and not list((tmp_path / "failed").iterdir())


def test_a_resend_arriving_while_the_old_copy_is_scored_is_scored_too(tmp_path: Path) -> None:
    """The PACS corrects the patient's name and sends the instance again while the worker scores the first copy:
    the corrected copy must be scored (its own SR), not deleted with the old one."""
    first = radiograph(GRAY)
    corrected = copy.deepcopy(first)
    corrected.PatientName = "Corrected^Name"
    spool, pacs, scorer = spooled(tmp_path, first), MemoryPacs(), FakeScorer()
    worker = make_worker(spool, pacs, scorer)

    def resend() -> None:  # what the intake does for a STOW-RS of the corrected copy
        worker.received(spool.receive(corrected.SOPInstanceUID, to_bytes(corrected)))

    scorer.during_score = resend
    asyncio.run(drive(worker, until=lambda: len(pacs.stored) >= 2))
    assert sorted(str(sr.PatientName) for sr in pacs.stored) == ["Corrected^Name", str(first.PatientName)]
    assert len({sr.SOPInstanceUID for sr in pacs.stored}) == 2  # the content changed: so did the SR's UID
    for folder in ("incoming", "scoring", "outbox", "failed"):
        assert not list((tmp_path / folder).iterdir()), folder


class CountedListing:
    """Counts directory listings of the spool's folders (whatever the spool uses: scandir, glob, iterdir)."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count, root_text = 0, str(root)
        real_scandir, real_glob, real_iterdir = os.scandir, Path.glob, Path.iterdir

        def scandir(path: object = ".") -> object:
            self.count += str(path).startswith(root_text)
            return real_scandir(path)  # type: ignore[call-overload]

        def glob(path: Path, *args: object, **kwargs: object) -> object:
            self.count += str(path).startswith(root_text)
            return real_glob(path, *args, **kwargs)  # type: ignore[arg-type]

        def iterdir(path: Path) -> object:
            self.count += str(path).startswith(root_text)
            return real_iterdir(path)

        monkeypatch.setattr(os, "scandir", scandir)
        monkeypatch.setattr(Path, "glob", glob)
        monkeypatch.setattr(Path, "iterdir", iterdir)


@pytest.mark.parametrize("backlog", [8, 32])
def test_a_backlog_is_scored_in_batches_listing_the_spool_a_fixed_number_of_times(
    tmp_path: Path, backlog: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of GATEWAY_DICOMWEB_BATCH_IMAGES through the data plane, and the folders listed only by the start-up
    survey, however many instances wait (a listing per pass made a backlog of n cost n²)."""
    instances = [radiograph(GRAY) for _ in range(backlog)]
    spool, pacs, scorer = spooled(tmp_path, *instances), MemoryPacs(), FakeScorer()
    listings = CountedListing(tmp_path, monkeypatch)
    asyncio.run(run_worker(spool, pacs, until=lambda: len(pacs.stored) == backlog, scorer=scorer,
                           dicomweb_batch_images=8))
    assert scorer.batches == [8] * (backlog // 8)
    assert len(pacs.stored) == backlog
    assert listings.count <= 3, f"{listings.count} listings of the spool's folders for {backlog} instances"


def test_failed_items_are_deleted_after_the_retention_and_their_size_and_age_are_gauged(tmp_path: Path) -> None:
    spool = spooled(tmp_path)
    old, recent = tmp_path / "failed" / "old.dcm", tmp_path / "failed" / "recent.sr.dcm"
    old.write_bytes(b"x" * 1000)
    recent.write_bytes(b"y" * 300)
    now = time.time()
    os.utime(old, (now - 8 * 86400, now - 8 * 86400))
    os.utime(recent, (now - 3 * 86400, now - 3 * 86400))
    worker = asyncio.run(run_worker(spool, MemoryPacs(), until=lambda: not old.exists(),
                                    spool_failed_retention_days=7))
    assert not old.exists() and recent.exists()
    worker.update_gauges()
    metrics = worker.metrics
    assert metrics.failed_bytes._value.get() == 300
    assert 3 * 86400 - 60 < metrics.failed_oldest_age._value.get() < 3 * 86400 + 60
    assert metrics.outbox.labels("failed")._value.get() == 1


def test_the_spool_is_never_listed_on_the_event_loop(tmp_path: Path) -> None:
    spool, pacs = WatchedSpool(tmp_path), MemoryPacs()
    spooled(tmp_path, *(radiograph(GRAY) for _ in range(3)), spool=spool)
    spool.listed_on.clear()  # open() listed scoring/ before the loop ran (on the same thread)

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
    spool, pacs = spooled(tmp_path, radiograph(GRAY)), FlakyPacs()
    asyncio.run(run_worker(spool, pacs, until=lambda: pacs.stored))
    assert len(pacs.stored) == 1
    assert not list((tmp_path / "outbox").iterdir()) and not list((tmp_path / "failed").iterdir())


def test_cancelling_the_worker_as_the_intake_wakes_it_stops_it(tmp_path: Path) -> None:
    """Python 3.11's `asyncio.wait_for` swallows a cancellation that arrives as the awaited event is set: the
    gateway's shutdown then waited for the worker forever."""
    spool = spooled(tmp_path)
    worker = Worker(spool, MemoryPacs(), FakeScorer(), AuditLog(), DicomwebMetrics(CollectorRegistry()), Settings())  # type: ignore[arg-type]

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
