"""The outbox worker: scores what the intake spooled, in batches through the data plane (batch.py), and writes the
results back to the PACS (writeback.py).

One task in the gateway's event loop; the blocking parts (file I/O, decode, SR building, the HTTP write-back) run in
threads. A pass takes one batch to score and a run of results to deliver from in-memory backlogs (backlog.py), so it
costs the same however much is waiting: the spool's folders are listed once at start and then once a minute by the
maintenance, which also picks up files an operator moved back and deletes what outlived the failed/ retention.
A failure pauses that stage with exponential backoff and jitter (scoring: the model backend is down; write-back: the
PACS is), forever: an acknowledged instance is never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

import anyio.to_thread

from serving import errors
from serving.config import Settings
from serving.dicomweb.backlog import Backlog
from serving.dicomweb.batch import ScoringStage
from serving.dicomweb.delivery import ResultsStore
from serving.dicomweb.metrics import DicomwebMetrics
from serving.dicomweb.spool import INCOMING, OUTBOX, Entry, FailedStats, Spool
from serving.dicomweb.writeback import WritebackStage
from serving.observability.audit import AuditLog
from serving.scoring import Scorer

log = logging.getLogger(__name__)

SCORING_LANES = 2
"""Batches scored at once: one batch's results are built and written (Python, in a thread) while the next batch is
in the model. Each lane claims its instances first, so no instance is scored twice at once."""
DELIVERIES_PER_PASS = 32
MAINTENANCE_S = 60.0
"""How often the spool's folders are listed (operator moves picked up, failed/ retention applied, its gauges)."""


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
        self.spool, self.metrics, self.settings = spool, metrics, settings
        self.wake = asyncio.Event()
        self.scoring = Backoff(settings.results_backoff_s, settings.results_backoff_max_s)
        self.delivery = Backoff(settings.results_backoff_s, settings.results_backoff_max_s)
        self.scoring_stage = ScoringStage(spool, scorer, audit, settings)
        self.writeback = WritebackStage(spool, store, metrics)
        self.to_score, self.to_deliver = Backlog(), Backlog()
        self.in_progress: list[list[tuple[str, float]]] = []
        """The batches being scored (one per lane at most)."""
        self.delivered = asyncio.Event()
        """Set when results join the delivery backlog."""
        self.failed_count, self.failed_bytes = 0, 0
        self.failed_since: float | None = None
        self.next_maintenance = 0.0

    async def load(self) -> None:
        """At start: what the spool holds, oldest first."""
        self._merge(*await anyio.to_thread.run_sync(self._survey))

    def received(self, key: str) -> None:
        """The intake spooled an instance (call on the event loop): it joins the backlog, the worker wakes."""
        self.to_score.add(key, time.time())
        self.wake.set()

    async def run(self) -> None:
        """Scoring lanes, the write-back and the maintenance, until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(SCORING_LANES):
                group.create_task(self._loop(self._score_batch, self.scoring, self.to_score, self.wake))
            group.create_task(self._loop(self._deliver_batch, self.delivery, self.to_deliver, self.delivered))
            group.create_task(self._maintain())

    async def _loop(
        self, step: Callable[[], Awaitable[bool]], backoff: Backoff, backlog: Backlog, wake: asyncio.Event
    ) -> None:
        while True:
            wake.clear()
            if backoff.ready() and backlog and await self._stage(step, backoff):
                continue
            # woken when there is work (the intake, a scored batch), else when the backoff ends (re-checked at least
            # every 5 s). Not `asyncio.wait_for`: on 3.11 it swallows a cancellation that comes as the event is set
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(5.0, backoff.wait_s()) or 5.0):
                    await wake.wait()

    async def _maintain(self) -> None:
        while True:
            if time.monotonic() >= self.next_maintenance:
                self._merge(*await anyio.to_thread.run_sync(self._survey))
                self.wake.set()
                self.delivered.set()
            self.update_gauges()
            await asyncio.sleep(min(5.0, max(0.0, self.next_maintenance - time.monotonic())))

    async def _stage(self, step: Callable[[], Awaitable[bool]], backoff: Backoff) -> bool:
        """A failure pauses the stage instead of ending the worker (nothing would be scored or written back until a
        restart). Only the error's type or code is logged: messages of pydicom and highdicom quote element values."""
        try:
            return await step()
        except errors.GatewayError as exc:  # the model backend failed: the instances stay, scoring pauses
            log.warning("scoring spooled instances failed (%s); retrying in %.1f s", exc.code, backoff.failed())
        except Exception as exc:
            log.error("the DICOMweb worker failed (%s); retrying in %.1f s", type(exc).__name__, backoff.failed())
        return False

    async def _score_batch(self) -> bool:
        batch = self.to_score.take(self.settings.dicomweb_batch_images)
        self.in_progress.append(batch)
        try:
            scored = await self.scoring_stage.run(batch)
        except Exception:
            self.to_score.put_back(batch)
            raise
        finally:
            self.in_progress.remove(batch)
            self.update_gauges()
        self.to_deliver.add_all(scored.results)
        self.delivered.set()
        self._gave_up(scored.failed)
        self.scoring.succeeded()
        return True

    async def _deliver_batch(self) -> bool:
        batch = self.to_deliver.take(DELIVERIES_PER_PASS)
        try:
            delivered = await self.writeback.run(batch, self.delivery.failed)
        except Exception:
            self.to_deliver.put_back(batch)  # those already delivered are gone from the outbox: skipped later
            raise
        self._gave_up(delivered.refused)
        self.to_deliver.put_back(delivered.left)
        self.update_gauges()
        if delivered.left:
            return False
        self.delivery.succeeded()
        return True

    def _gave_up(self, count: int) -> None:
        if count:
            self.failed_count += count
            self.failed_since = self.failed_since or time.time()

    def _survey(self) -> tuple[list[Entry], list[Entry], FailedStats]:
        """In a thread: the folders listed once, and failed/ past its retention deleted."""
        retention_s = self.settings.spool_failed_retention_days * 86400
        return self.spool.entries(INCOMING), self.spool.entries(OUTBOX), self.spool.expire_failed(retention_s)

    def _merge(self, incoming: list[Entry], outbox: list[Entry], failed: FailedStats) -> None:
        """On the event loop: files not yet known (at start, or moved back by an operator) join the backlogs."""
        self.next_maintenance = time.monotonic() + MAINTENANCE_S
        self.to_score.add_all((entry.name, entry.mtime) for entry in incoming)
        self.to_deliver.add_all((entry.name, entry.mtime) for entry in outbox)
        self.failed_count, self.failed_bytes = failed.count, failed.size_bytes
        self.failed_since = time.time() - failed.oldest_age_s if failed.count else None

    def update_gauges(self) -> None:
        """From the backlogs' counts: costs the same whatever is waiting."""
        now = time.time()
        self.metrics.outbox.labels("scoring").set(len(self.to_score) + sum(map(len, self.in_progress)))
        self.metrics.outbox.labels("delivery").set(len(self.to_deliver))
        self.metrics.outbox.labels("failed").set(self.failed_count)
        arrivals = [t for t in (self.to_score.oldest(), self.to_deliver.oldest()) if t is not None]
        arrivals += [batch[0][1] for batch in self.in_progress if batch]
        self.metrics.oldest_pending.set(max(0.0, now - min(arrivals)) if arrivals else 0.0)
        self.metrics.failed_bytes.set(self.failed_bytes)
        self.metrics.failed_oldest_age.set(now - self.failed_since if self.failed_since is not None else 0.0)
