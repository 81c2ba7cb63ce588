"""The outbox worker: scores what the intake spooled, builds the results, writes them back to the PACS.

One task in the gateway's event loop; the blocking parts (decode, SR building, the HTTP write-back) run in
threads. Items go one at a time in arrival order, so a burst of studies cannot starve the `/v1` routes of
the model. A failure pauses that stage with exponential backoff and jitter (scoring: the model backend is
down; write-back: the PACS is), forever: an acknowledged instance is never dropped. An instance that cannot
be scored, or a result the PACS refuses outright, moves to `failed/` and shows in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable

import anyio.to_thread
from pydicom import dcmread
from pydicom.dataset import Dataset

from serving import errors
from serving.config import Settings
from serving.dicomweb import heatmap, intake, report, uids
from serving.dicomweb.delivery import DeliveryError, ResultsStore
from serving.dicomweb.metrics import DicomwebMetrics
from serving.dicomweb.spool import Item, Spool
from serving.observability.audit import AuditLog
from serving.observability.logs import request_id_var
from serving.scoring import ExplainedVerdict, Scorer, Verdict

log = logging.getLogger(__name__)


class Backoff:
    def __init__(self, first_s: float, max_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.first_s, self.max_s, self.clock = first_s, max_s, clock
        self.failures = 0
        self.ready_at = 0.0

    def ready(self) -> bool:
        return self.clock() >= self.ready_at

    def wait_s(self) -> float:
        return max(0.0, self.ready_at - self.clock())

    def failed(self) -> float:
        self.failures += 1
        pause = min(self.max_s, self.first_s * 2 ** (self.failures - 1)) * random.uniform(0.8, 1.0)
        self.ready_at = self.clock() + pause
        return pause

    def succeeded(self) -> None:
        self.failures, self.ready_at = 0, 0.0


class Worker:
    def __init__(
        self, spool: Spool, store: ResultsStore, scorer: Scorer, audit: AuditLog, metrics: DicomwebMetrics,
        settings: Settings,
    ) -> None:
        self.spool, self.store, self.scorer, self.audit = spool, store, scorer, audit
        self.metrics, self.settings = metrics, settings
        self.wake = asyncio.Event()
        self.scoring = Backoff(settings.results_backoff_s, settings.results_backoff_max_s)
        self.delivery = Backoff(settings.results_backoff_s, settings.results_backoff_max_s)

    async def run(self) -> None:
        while True:
            self.wake.clear()
            worked = False
            # the spool is listed in a thread: with a backlog of thousands of files it takes a while
            if self.scoring.ready() and (pending := await anyio.to_thread.run_sync(self.spool.incoming)):
                worked |= await self._stage(self._score, pending[0], self.scoring)
            if self.delivery.ready() and (results := await anyio.to_thread.run_sync(self.spool.outbox)):
                worked |= await self._stage(self._deliver, results[0], self.delivery)
            await anyio.to_thread.run_sync(self.update_gauges)
            if not worked:
                waits = [b.wait_s() for b in (self.scoring, self.delivery) if not b.ready()]
                # woken by the intake at once; else when a backoff ends (re-checked at least every 5 s). Not
                # `asyncio.wait_for`: on 3.11 it swallows a cancellation that comes as the event is set (hung shutdown)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min([5.0, *waits]) or 0.01):
                        await self.wake.wait()

    async def _stage(self, step: Callable[[Item], Awaitable[bool]], item: Item, backoff: Backoff) -> bool:
        """An unexpected error pauses the stage instead of ending the worker (nothing would be scored or written
        back until a restart). Only its type is logged: messages of pydicom and highdicom quote element values."""
        try:
            return await step(item)
        except Exception as exc:
            pause = backoff.failed()
            log.error("the DICOMweb worker failed (%s); retrying in %.1f s", type(exc).__name__, pause)
            return False

    def update_gauges(self) -> None:
        """Lists the spool's folders: call it in a thread."""
        self.metrics.outbox.labels("scoring").set(len(self.spool.incoming()))
        self.metrics.outbox.labels("delivery").set(len(self.spool.outbox()))
        self.metrics.outbox.labels("failed").set(len(self.spool.failed()))
        self.metrics.oldest_pending.set(self.spool.oldest_pending_age_s())

    async def _score(self, item: Item) -> bool:
        request_id = uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            data = await anyio.to_thread.run_sync(item.path.read_bytes)
            (result,) = await self.scorer.score([data], None, request_id)
            if isinstance(result, errors.GatewayError):  # the intake decoded it: this is rare (a changed setting)
                log.warning("a spooled instance cannot be scored (%s); moved to failed/", result.code)
                await anyio.to_thread.run_sync(self.spool.give_up, item)
                return True
            metadata = await self.scorer.backend.metadata(result.model_version)
            explained = await self.scorer.explain(data, None, request_id) if self.settings.results_heatmap else None
            try:
                source, built = await anyio.to_thread.run_sync(
                    lambda: self._build(data, result, metadata.positive_label, explained)
                )
            except Exception as exc:  # highdicom refuses this header (e.g. PatientSex "X"): retrying is futile
                log.error("no result can be built for a spooled instance (%s); moved to failed/", type(exc).__name__)
                await anyio.to_thread.run_sync(self.spool.give_up, item)
                return True
            for kind, encoded in built.items():
                await anyio.to_thread.run_sync(self.spool.put_result, item.key, kind, encoded)
            await anyio.to_thread.run_sync(self.spool.done, item)
            self._audit(data, source, result)
            self.scoring.succeeded()
            return True
        except FileNotFoundError:
            return True  # replaced by a resend meanwhile: its copy is next
        except errors.GatewayError as exc:  # the model backend failed: the item stays, scoring pauses
            pause = self.scoring.failed()
            log.warning("scoring a spooled instance failed (%s); retrying in %.1f s", exc.code, pause)
            return False
        finally:
            request_id_var.reset(token)

    def _build(
        self, data: bytes, verdict: Verdict, positive_label: str, explained: ExplainedVerdict | None
    ) -> tuple[Dataset, dict[str, bytes]]:
        """(the source's header, the encoded results by kind)."""
        source = intake.read_header(data)
        built: dict[str, Dataset] = {"sr": report.build_sr(source, verdict, positive_label)}
        if explained is not None:
            built["sc"] = heatmap.build_sc(source, explained.pixels, explained.heatmap, verdict)
        encoded = {}
        for kind, instance in built.items():
            buffer = io.BytesIO()
            instance.save_as(buffer, enforce_file_format=True)
            encoded[kind] = buffer.getvalue()
        return source, encoded

    def _audit(self, data: bytes, source: Dataset, verdict: Verdict) -> None:
        fields = {
            "event": "dicomweb_result",
            "request_id": request_id_var.get(),
            **{name: value for name, value in vars(verdict).items() if name != "subtype"},
            "image_sha256": hashlib.sha256(data).hexdigest(),
            "study_uid_sha256": uids.hashed(str(source.StudyInstanceUID)),
            "sop_instance_uid_sha256": uids.hashed(str(source.SOPInstanceUID)),
        }
        self.audit.logger.info("dicomweb_result", extra={"fields": fields})

    async def _deliver(self, item: Item) -> bool:
        kind = item.path.name.split(".")[1]
        try:
            instance = await anyio.to_thread.run_sync(lambda: dcmread(io.BytesIO(item.path.read_bytes())))
            await anyio.to_thread.run_sync(self.store.store, instance, abandon_on_cancel=True)
        except FileNotFoundError:
            return True
        except DeliveryError as exc:
            if exc.permanent:
                self.metrics.delivery_failures.labels("permanent").inc()
                log.error("write-back refused for good (%s); the result is kept in failed/", exc)
                await anyio.to_thread.run_sync(self.spool.give_up, item)
                return True
            self.metrics.delivery_failures.labels("retriable").inc()
            pause = self.delivery.failed()
            log.warning("write-back failed (%s); retrying in %.1f s", exc, pause)
            return False
        await anyio.to_thread.run_sync(self.spool.done, item)
        self.metrics.delivered.labels(kind).inc()
        self.delivery.succeeded()
        log.info("result written back", extra={"fields": {"kind": kind}})
        return True
