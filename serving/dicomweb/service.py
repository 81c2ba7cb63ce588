"""The DICOMweb side of the gateway as one object the app holds: spool, worker, metrics. Off (routes answer
503) unless `GATEWAY_SPOOL_DIR` is set."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import anyio.to_thread
from prometheus_client import CollectorRegistry

from serving import errors
from serving.config import Settings
from serving.dicomweb import intake, population, stow, uids
from serving.dicomweb.delivery import ResultsStore
from serving.dicomweb.metrics import DicomwebMetrics
from serving.dicomweb.spool import Spool
from serving.dicomweb.worker import Worker
from serving.observability.audit import AuditLog
from serving.observability.logs import request_id_var
from serving.scoring import Scorer

log = logging.getLogger(__name__)


class DicomwebService:
    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.metrics = DicomwebMetrics(registry)
        for reason in population.REASONS:  # zero from the start, so that rates of refusals exist
            self.metrics.received.labels(reason)
        self.spool = Spool(settings.spool_dir) if settings.spool_dir is not None else None
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
        self.worker = Worker(spool, ResultsStore(self.settings), scorer, audit, self.metrics, self.settings)
        await anyio.to_thread.run_sync(self.worker.update_gauges)
        self._task = asyncio.create_task(self.worker.run(), name="dicomweb-worker")
        log.info(
            "DICOMweb intake on: %d instance(s) to score, %d result(s) to write back",
            len(await anyio.to_thread.run_sync(spool.incoming)), len(await anyio.to_thread.run_sync(spool.outbox)),
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def receive(
        self, parts: list[bytes], study_instance_uid: str | None, api_key: str | None
    ) -> stow.StoreResponse:
        """Examine each instance and spool those taken; returns once they are on disk."""
        if self.spool is None or self.worker is None:
            raise errors.NotReady("DICOMweb intake is off: set GATEWAY_SPOOL_DIR and GATEWAY_RESULTS_DICOMWEB_URL")
        spool, response = self.spool, stow.StoreResponse()
        settings = self.settings
        eligibility = await self.eligibility()
        for data in parts:
            examine = functools.partial(
                intake.examine, data, modalities=settings.dicom_modalities, max_pixels=settings.max_image_pixels,
                eligibility=eligibility, study_instance_uid=study_instance_uid,
            )
            verdict: intake.Accepted | stow.Failure = await anyio.to_thread.run_sync(examine)
            if isinstance(verdict, intake.Accepted):
                try:
                    await anyio.to_thread.run_sync(spool.receive, verdict.sop_instance_uid, data)
                except OSError as exc:
                    log.error("cannot write to the spool (%s)", type(exc).__name__)
                    verdict = stow.Failure(
                        stow.OUT_OF_RESOURCES, "spool_write_failed", verdict.sop_class_uid, verdict.sop_instance_uid
                    )
                else:
                    response.stored.append((verdict.sop_class_uid, verdict.sop_instance_uid))
                    self._audit_received(verdict, api_key)
                    self.metrics.received.labels("accepted").inc()
                    continue
            response.failed.append(verdict)
            self.metrics.received.labels(verdict.reason).inc()
        if response.stored:
            self.worker.wake.set()
            await anyio.to_thread.run_sync(self.worker.update_gauges)
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
