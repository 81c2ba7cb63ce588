"""The write-back sees every answer of the PACS (real dicomweb-client, real HTTP on loopback to a scripted fake
PACS): a 200 or 202 that lists failures is not a delivery, a configuration error (401/403/404) pauses delivery and
raises the alert's gauge without losing a result, a full PACS is retried, and only a "never" moves to failed/."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from devtools.pacs import radiograph, to_bytes
from serving.config import Settings
from serving.dicomweb import report
from serving.dicomweb.delivery import DeliveryError, ResultsStore
from serving.dicomweb.metrics import DicomwebMetrics
from serving.dicomweb.spool import Spool
from serving.dicomweb.worker import Worker
from serving.observability.audit import AuditLog
from serving.verdict import Verdict
from tests.dicomweb.fake_pacs import Answer, scripted_pacs
from tests.dicomweb.test_dicomweb_worker import FakeScorer, drive

GRAY = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
VERDICT = Verdict("PNEUMONIA", 0.75, 0.5, "screening", "pneumonia", 5)
FULL, PROCESSING, NOT_AUTHORIZED = 0xA700, 0x0110, 0x0124
SOP_CLASS_NOT_SUPPORTED, DOES_NOT_MATCH, CANNOT_UNDERSTAND = 0x0122, 0xA900, 0xC000


def store(url: str) -> ResultsStore:
    return ResultsStore(Settings(results_dicomweb_url=url, results_timeout_s=5))


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer(200), None),
        (Answer(200, content_type="application/dicom+json; charset=utf-8"), None),
        (Answer(200, stored=False), "transient"),  # a success that does not list ours: not stored
        (Answer(200, (FULL,), stored=False), "transient"),
        (Answer(200, (SOP_CLASS_NOT_SUPPORTED,), stored=False), "refused"),
        (Answer(200, (SOP_CLASS_NOT_SUPPORTED,), stored=False, content_type="application/dicom+json; charset=utf-8"),
         "refused"),
        (Answer(202, (DOES_NOT_MATCH,), stored=False), "refused"),
        (Answer(202, (PROCESSING,), stored=False), "transient"),
        (Answer(400, (FULL,)), "transient"),  # Orthanc's answer when its storage is full
        (Answer(400), "transient"),
        (Answer(409, (CANNOT_UNDERSTAND,)), "refused"),
        (Answer(409, (NOT_AUTHORIZED,)), "configuration"),
        (Answer(401), "configuration"),
        (Answer(403), "configuration"),
        (Answer(404), "configuration"),
        (Answer(503), "transient"),
        (Answer(429), "transient"),
    ],
)
def test_each_answer_of_the_pacs_is_classified(answer: Answer, outcome: str | None) -> None:
    sr = report.build_sr(radiograph(GRAY), VERDICT, "PNEUMONIA")
    with scripted_pacs(answer) as pacs:
        if outcome is None:
            store(pacs.url).store(sr)
        else:
            with pytest.raises(DeliveryError) as raised:
                store(pacs.url).store(sr)
            assert raised.value.outcome == outcome
    assert len(pacs.received) == 1


def test_an_unreachable_pacs_is_transient() -> None:
    with socket.socket() as reserved:  # a port nothing listens on
        reserved.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{reserved.getsockname()[1]}/dicom-web"
    with pytest.raises(DeliveryError) as raised:
        store(url).store(report.build_sr(radiograph(GRAY), VERDICT, "PNEUMONIA"))
    assert raised.value.outcome == "transient"


def worker_for(spool: Spool, url: str) -> Worker:
    settings = Settings(results_dicomweb_url=url, results_backoff_s=0.05, results_backoff_max_s=0.1)
    metrics = DicomwebMetrics(CollectorRegistry())
    return Worker(spool, ResultsStore(settings), FakeScorer(), AuditLog(), metrics, settings)  # type: ignore[arg-type]


def test_a_configuration_error_pauses_delivery_raises_the_gauge_and_resumes_once_fixed(tmp_path: Path) -> None:
    """A rotated password (401) must not send the pending results to failed/ at full speed: they wait, the
    `configuration` gauge says why, and once the PACS takes the credentials again they are delivered."""
    spool = Spool(tmp_path)
    spool.open()
    for _ in range(3):
        instance = radiograph(GRAY)
        spool.receive(instance.SOPInstanceUID, to_bytes(instance))
    with scripted_pacs(Answer(401), Answer(403), Answer(404), Answer(401), Answer(200)) as pacs:
        worker = worker_for(spool, pacs.url)
        paused = worker.metrics.delivery_paused.labels("configuration")
        seen_paused: list[float] = []

        def until() -> bool:
            seen_paused.append(paused._value.get())
            return worker.metrics.delivered.labels("sr")._value.get() == 3

        asyncio.run(drive(worker, until))
    assert max(seen_paused) == 1 and paused._value.get() == 0
    assert worker.metrics.delivery_failures.labels("configuration")._value.get() == 4
    assert not list((tmp_path / "failed").iterdir()) and not list((tmp_path / "outbox").iterdir())


def test_only_a_refusal_for_good_moves_a_result_to_failed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    for _ in range(2):
        instance = radiograph(GRAY)
        spool.receive(instance.SOPInstanceUID, to_bytes(instance))
    refused_then_full_then_ok = (Answer(409, (SOP_CLASS_NOT_SUPPORTED,)), Answer(400, (FULL,)), Answer(200))
    with scripted_pacs(*refused_then_full_then_ok) as pacs:
        worker = worker_for(spool, pacs.url)
        asyncio.run(drive(worker, lambda: worker.metrics.delivered.labels("sr")._value.get() == 1))
    assert len(list((tmp_path / "failed").iterdir())) == 1
    assert worker.metrics.delivery_failures.labels("refused")._value.get() == 1
    assert worker.metrics.delivery_failures.labels("transient")._value.get() == 1
