"""The write-back stage: results from the outbox to the PACS, in arrival order, one STOW-RS request each
(delivery.py). It stops at the first result the PACS cannot take now; what the PACS answered decides the rest:
stored (deleted from the outbox), refused for good (failed/), or a pause with backoff (transient, or a
configuration error that also raises `gateway_dicomweb_delivery_paused{cause="configuration"}`)."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from pydicom import dcmread
from pydicom.dataset import Dataset

from serving.dicomweb.delivery import DeliveryError, ResultsStore
from serving.dicomweb.metrics import PAUSE_CAUSES, DicomwebMetrics
from serving.dicomweb.spool import Spool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    left: list[tuple[str, float]]
    """Not delivered: the PACS could not take the first of them now."""
    refused: int
    """Moved to failed/: the PACS will never take them."""


class WritebackStage:
    def __init__(self, spool: Spool, store: ResultsStore, metrics: DicomwebMetrics) -> None:
        self.spool, self.store, self.metrics = spool, store, metrics

    async def run(self, batch: list[tuple[str, float]], paused: Callable[[], float]) -> Delivered:
        """Delivers `batch` (outbox names, with their arrival times) until one cannot be stored now; then
        calls `paused()` (the stage's backoff, which returns the pause) and leaves the rest, that one first."""
        refused = 0
        for index, (name, _) in enumerate(batch):
            kind, path = name.split(".")[1], self.spool.result_path(name)
            try:
                instance = await anyio.to_thread.run_sync(_read, path)
                await anyio.to_thread.run_sync(self.store.store, instance, abandon_on_cancel=True)
            except FileNotFoundError:
                continue  # moved away by an operator
            except DeliveryError as exc:
                self.metrics.delivery_failures.labels(exc.outcome).inc()
                if exc.outcome == "refused":
                    log.error("write-back refused for good (%s); the result is kept in failed/", exc)
                    await anyio.to_thread.run_sync(self.spool.give_up, path)
                    refused += 1
                    continue
                cause = "configuration" if exc.outcome == "configuration" else "unavailable"
                self._paused(cause)
                pause = paused()
                if cause == "configuration":
                    log.error(
                        "write-back paused: the PACS refuses the gateway's configuration (%s); check "
                        "GATEWAY_RESULTS_DICOMWEB_URL and its credentials; retrying in %.1f s", exc, pause,
                    )
                else:
                    log.warning("write-back failed (%s); retrying in %.1f s", exc, pause)
                return Delivered(batch[index:], refused)
            await anyio.to_thread.run_sync(self.spool.delivered, name)
            self.metrics.delivered.labels(kind).inc()
            self._paused(None)
            log.info("result written back", extra={"fields": {"kind": kind}})
        return Delivered([], refused)

    def _paused(self, cause: str | None) -> None:
        for each in PAUSE_CAUSES:
            self.metrics.delivery_paused.labels(each).set(1 if each == cause else 0)


def _read(path: Path) -> Dataset:
    return dcmread(io.BytesIO(path.read_bytes()))
