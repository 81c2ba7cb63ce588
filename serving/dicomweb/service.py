"""The DICOMweb side of the gateway as one object the app holds: spool, worker, metrics. Off (routes answer
503) unless `GATEWAY_SPOOL_DIR` is set."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread
from prometheus_client import CollectorRegistry

from serving import errors
from serving.config import Settings
from serving.dicomweb import intake, multipart, population, stow, uids
from serving.dicomweb.delivery import ResultsStore
from serving.dicomweb.metrics import DicomwebMetrics
from serving.dicomweb.spool import Spool
from serving.dicomweb.worker import Worker
from serving.observability.audit import AuditLog
from serving.observability.logs import request_id_var
from serving.scoring import Scorer

log = logging.getLogger(__name__)

SPOOL_RETRY_AFTER_S = 30
"""Retry-After of a 503 for a full or failing spool disk."""


class DicomwebService:
    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.metrics = DicomwebMetrics(registry)
        for reason in population.REASONS:  # zero from the start, so that rates of refusals exist
            self.metrics.received.labels(reason)
        spool_dir = settings.spool_dir
        self.spool = Spool(spool_dir, settings.spool_min_free_bytes) if spool_dir is not None else None
        if self.spool is not None and not settings.results_dicomweb_url:
            raise ValueError("GATEWAY_SPOOL_DIR is set without GATEWAY_RESULTS_DICOMWEB_URL: results need a PACS")
        self.worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None
        self.audit: AuditLog | None = None
        self.scorer: Scorer | None = None

    async def start(self, scorer: Scorer, audit: AuditLog) -> None:
        if self.spool is None:
            return
        spool = self.spool
        await anyio.to_thread.run_sync(spool.open)
        self.audit, self.scorer = audit, scorer
        self.worker = worker = Worker(spool, ResultsStore(self.settings), scorer, audit, self.metrics, self.settings)
        await worker.load()
        worker.update_gauges()
        self._task = asyncio.create_task(worker.run(), name="dicomweb-worker")
        log.info(
            "DICOMweb intake on: %d instance(s) to score, %d result(s) to write back",
            len(worker.to_score), len(worker.to_deliver),
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def store(
        self, body: AsyncIterator[bytes], declared_bytes: int, boundary: str, study_instance_uid: str | None,
        api_key: str | None,
    ) -> stow.StoreResponse:
        """A STOW-RS request: its parts streamed to the spool's disk, examined, and spooled; returns once every
        instance taken is on disk. A full or failing disk: 503 with Retry-After (senders retry; a resend replaces)."""
        spool = self._spool()
        try:
            await anyio.to_thread.run_sync(spool.check_space, declared_bytes)
            parts = await multipart.receive_parts(body, boundary, spool.temp_path, spool.check_space)
        except OSError as exc:
            async for _ in body:  # read to its end (if it was not): the sender gets the answer, not a reset
                pass
            raise self._unavailable(exc) from None
        try:
            return await self.receive(parts, study_instance_uid, api_key)
        finally:
            await anyio.to_thread.run_sync(_remove, parts)  # those taken were moved into incoming/ already

    def _spool(self) -> Spool:
        if self.spool is None or self.worker is None:
            raise errors.NotReady("DICOMweb intake is off: set GATEWAY_SPOOL_DIR and GATEWAY_RESULTS_DICOMWEB_URL")
        return self.spool

    def _unavailable(self, exc: OSError) -> errors.SpoolUnavailable:
        self.metrics.received.labels("spool_unavailable").inc()
        log.error("cannot write to the spool (%s)", type(exc).__name__)
        return errors.SpoolUnavailable(
            "the gateway's spool disk is full or failing; nothing of this request was lost: send it again",
            headers={"Retry-After": str(SPOOL_RETRY_AFTER_S)},
        )

    async def receive(
        self, parts: list[Path], study_instance_uid: str | None, api_key: str | None
    ) -> stow.StoreResponse:
        """Examine each received instance (a file in the spool's tmp/) and spool those taken."""
        spool, response = self._spool(), stow.StoreResponse()
        assert self.worker is not None
        settings = self.settings
        eligibility = await self.eligibility()
        for part in parts:
            examine = functools.partial(
                intake.examine, modalities=settings.dicom_modalities, max_pixels=settings.max_image_pixels,
                eligibility=eligibility, study_instance_uid=study_instance_uid,
            )
            # in a thread, read from its file: one instance in memory at a time
            verdict: intake.Accepted | stow.Failure = await anyio.to_thread.run_sync(
                lambda: examine(part.read_bytes())  # noqa: B023 (awaited at once)
            )
            if isinstance(verdict, intake.Accepted):
                try:
                    key = await anyio.to_thread.run_sync(spool.adopt, verdict.sop_instance_uid, part)
                except OSError as exc:
                    raise self._unavailable(exc) from None
                self.worker.received(key)
                response.stored.append((verdict.sop_class_uid, verdict.sop_instance_uid))
                self._audit_received(verdict, api_key)
                self.metrics.received.labels("accepted").inc()
                continue
            response.failed.append(verdict)
            self.metrics.received.labels(verdict.reason).inc()
        if response.stored:
            self.worker.update_gauges()
        log.info(
            "STOW-RS request", extra={"fields": {"stored": len(response.stored), "failed": len(response.failed)}}
        )
        return response

    async def eligibility(self) -> population.Eligibility:
        """The served model's intended population (its metadata) with the settings for what headers omit.
        503 while the model's metadata cannot be had: nothing is taken that could not be checked."""
        assert self.scorer is not None
        try:
            metadata = await self.scorer.backend.metadata()
        except errors.GatewayError as exc:
            raise errors.NotReady(
                f"the model's intended population is unknown until its metadata can be read ({exc.code})",
                headers={"Retry-After": "10"},
            ) from None
        settings = self.settings
        return population.Eligibility(
            metadata.intended_population, settings.intake_unknown_body_part, settings.intake_unknown_view,
            settings.intake_unknown_age,
        )

    def _audit_received(self, accepted: intake.Accepted, api_key: str | None) -> None:
        if self.audit is None:
            return
        fields = {
            "event": "dicomweb_received",
            "request_id": request_id_var.get(),
            "api_key": api_key,
            "study_uid_sha256": uids.hashed(accepted.study_instance_uid),
            "sop_instance_uid_sha256": uids.hashed(accepted.sop_instance_uid),
        }
        self.audit.logger.info("dicomweb_received", extra={"fields": fields})


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
