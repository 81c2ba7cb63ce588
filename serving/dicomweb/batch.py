"""The scoring stage: a batch of spooled instances through the data plane of `/v1/predict` in one call (so the
inference backend gets them as one batch), then their results (SR, optionally SC) into the outbox.

Each instance is claimed first (moved from incoming/ to scoring/): a resend arriving meanwhile waits in incoming/
and is scored after, never deleted unscored. If the model backend fails, every claim is put back and the stage
pauses; an instance that cannot be scored, or whose result cannot be built, moves to failed/.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from pydicom.dataset import Dataset

from serving import errors
from serving.config import Settings
from serving.dicomweb import heatmap, intake, report, uids
from serving.dicomweb.spool import Spool
from serving.observability.audit import AuditLog
from serving.observability.logs import request_id_var
from serving.scoring import ExplainedVerdict, Scorer, Verdict

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 128 * 1024 * 1024
"""A batch stops growing past this many bytes of source files (uncompressed DX are 20-40 MB each)."""


@dataclass
class Claimed:
    key: str
    arrived: float
    path: Path
    data: bytes


@dataclass
class Scored:
    """What a batch did: results written (outbox name, the source's arrival time) and how many instances went to
    failed/."""

    results: list[tuple[str, float]]
    failed: int


class ScoringStage:
    def __init__(self, spool: Spool, scorer: Scorer, audit: AuditLog, settings: Settings) -> None:
        self.spool, self.scorer, self.audit, self.settings = spool, scorer, audit, settings
        self.model_turn = asyncio.Lock()
        """Held while a batch is decoded and scored: a full-size DX decode peaks at about 15x its file's size, so
        lanes take turns there, and overlap only the building and writing of results with the model."""

    async def run(self, batch: list[tuple[str, float]]) -> Scored:
        """Raises the backend's GatewayError (or any unexpected error) after putting every claim back."""
        claimed = await anyio.to_thread.run_sync(self._claim, batch)
        if not claimed:
            return Scored([], 0)
        request_id = uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            async with self.model_turn:  # one lane decodes and scores while the other builds its results
                verdicts = await self.scorer.score([item.data for item in claimed], None, request_id)
            good = [(item, v) for item, v in zip(claimed, verdicts, strict=True) if isinstance(v, Verdict)]
            unscorable = [item for item, v in zip(claimed, verdicts, strict=True) if not isinstance(v, Verdict)]
            for verdict in verdicts:
                if isinstance(verdict, errors.GatewayError):  # the intake decoded it: rare (a changed setting)
                    log.warning("a spooled instance cannot be scored (%s); moved to failed/", verdict.code)
            positive = (await self.scorer.backend.metadata(good[0][1].model_version)).positive_label if good else ""
            async with self.model_turn:
                explained = [await self._explain(item, request_id) for item, _ in good]
            written = await anyio.to_thread.run_sync(self._write, good, explained, unscorable, positive)
        except Exception:
            await anyio.to_thread.run_sync(self._release, claimed)  # those already scored are gone: no-op
            raise
        finally:
            request_id_var.reset(token)
        results: list[tuple[str, float]] = []
        for (item, verdict), (names, source, digest) in zip(good, written, strict=True):
            if source is not None:
                self._audit(request_id, digest, source, verdict)
                results.extend((name, item.arrived) for name in names)
        return Scored(results, len(claimed) - len(written) + sum(source is None for _, source, _ in written))

    def _claim(self, batch: list[tuple[str, float]]) -> list[Claimed]:
        claimed: list[Claimed] = []
        size = 0
        try:
            for key, arrived in batch:
                path = self.spool.claim(key)
                if path is None:  # scored meanwhile (it was queued twice), or moved away by an operator
                    continue
                claimed.append(Claimed(key, arrived, path, b""))
                claimed[-1].data = path.read_bytes()
                size += len(claimed[-1].data)
                if size > MAX_BATCH_BYTES:
                    break
        except OSError:
            self._release(claimed)
            raise
        return claimed

    def _release(self, items: list[Claimed]) -> None:
        for item in items:
            self.spool.release(item.key)

    async def _explain(self, item: Claimed, request_id: str) -> ExplainedVerdict | None:
        if not self.settings.results_heatmap:
            return None
        return await self.scorer.explain(item.data, None, request_id)

    def _write(
        self, good: list[tuple[Claimed, Verdict]], explained: list[ExplainedVerdict | None],
        unscorable: list[Claimed], positive_label: str,
    ) -> list[tuple[list[str], Dataset | None, str]]:
        """In a thread: the results built and written to the outbox (synced), then their claimed sources removed.
        Per scored instance: (outbox names; the source's header, None when it went to failed/; the image's sha256)."""
        for item in unscorable:
            self.spool.give_up(item.path)
        done: list[tuple[list[str], Dataset | None, str]] = []
        results: list[tuple[str, bytes]] = []
        for (item, verdict), explanation in zip(good, explained, strict=True):
            try:
                source, encoded = self._build(item.key, item.data, verdict, positive_label, explanation)
            except Exception as exc:  # highdicom refuses this header (e.g. a private SOP class): retrying is futile
                log.error("no result can be built for a spooled instance (%s); moved to failed/", type(exc).__name__)
                self.spool.give_up(item.path)
                done.append(([], None, ""))
                continue
            results.extend(encoded.items())
            done.append((list(encoded), source, hashlib.sha256(item.data).hexdigest()))
        self.spool.put_results(results)
        self.spool.scored([item.key for (item, _), (_, source, _) in zip(good, done, strict=True)
                           if source is not None])
        return done

    def _build(
        self, key: str, data: bytes, verdict: Verdict, positive_label: str, explained: ExplainedVerdict | None
    ) -> tuple[Dataset, dict[str, bytes]]:
        """(the source's header, the encoded results by outbox name)."""
        source = intake.read_header(data)
        built: dict[str, Dataset] = {"sr": report.build_sr(source, verdict, positive_label)}
        if explained is not None:
            built["sc"] = heatmap.build_sc(source, explained.pixels, explained.heatmap, verdict)
        encoded = {}
        for kind, instance in built.items():
            buffer = io.BytesIO()
            instance.save_as(buffer, enforce_file_format=True)
            encoded[self.spool.result_name(key, kind, str(instance.SOPInstanceUID))] = buffer.getvalue()
        return source, encoded

    def _audit(self, request_id: str, image_sha256: str, source: Dataset, verdict: Verdict) -> None:
        fields = {
            "event": "dicomweb_result",
            "request_id": request_id,
            **{name: value for name, value in vars(verdict).items() if name != "subtype"},
            "image_sha256": image_sha256,
            "study_uid_sha256": uids.hashed(str(source.StudyInstanceUID)),
            "sop_instance_uid_sha256": uids.hashed(str(source.SOPInstanceUID)),
        }
        self.audit.logger.info("dicomweb_result", extra={"fields": fields})
