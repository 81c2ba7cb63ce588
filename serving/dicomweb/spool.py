"""The durable outbox: plain files in `GATEWAY_SPOOL_DIR`, written atomically (temporary file, fsync, rename,
fsync of the folder), so what the gateway acknowledged survives a crash or a restart.

    incoming/<key>.dcm        received and acknowledged, not yet scored
    scoring/<key>.dcm         claimed by the worker (moved out of incoming/ by one rename), being scored
    outbox/<key>.<kind>.<tag>.dcm   a result (kind `sr` or `sc`; tag: from its own UID) built, not yet stored in
                              the PACS
    failed/...                given up on: the PACS refused it for good, or it could not be scored; kept for an
                              operator (move a file back to incoming/ or outbox/ to retry it) for
                              `GATEWAY_SPOOL_FAILED_RETENTION_DAYS`, then deleted
    tmp/                      writes in progress, STOW-RS parts being received (cleared at start)

A key is derived from the SOP Instance UID by a hash: file names carry no identifier, and a resent instance
replaces its pending copy instead of queueing twice. The worker scores its claimed copy in scoring/, so a resend
arriving meanwhile lands in incoming/ and is scored after it, never deleted unscored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

INCOMING, SCORING, OUTBOX, FAILED, TMP = "incoming", "scoring", "outbox", "failed", "tmp"


class SpoolFull(OSError):
    """Less than the reserve (`GATEWAY_SPOOL_MIN_FREE_BYTES`) would be left free on the spool's disk."""


def key_for(sop_instance_uid: str) -> str:
    return hashlib.sha256(sop_instance_uid.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Entry:
    """A file found when listing a folder: its name without `.dcm` (`<key>` or `<key>.<kind>`) and mtime."""

    name: str
    mtime: float


@dataclass(frozen=True)
class FailedStats:
    count: int
    size_bytes: int
    oldest_age_s: float


class Spool:
    def __init__(self, root: Path, min_free_bytes: int = 0) -> None:
        self.root = Path(root)
        self.min_free_bytes = min_free_bytes

    def open(self) -> None:
        """Creates the folders, clears tmp/, and puts back into incoming/ what a crash left claimed."""
        for folder in (INCOMING, SCORING, OUTBOX, FAILED, TMP):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        for stale in (self.root / TMP).iterdir():  # a write cut short by a crash was never acknowledged
            stale.unlink(missing_ok=True)
        for entry in self.entries(SCORING):
            self.release(entry.name)

    # -- writing -------------------------------------------------------------------------------------------------
    def temp_path(self) -> Path:
        """A fresh name in tmp/ (same file system as the folders: the final rename is atomic)."""
        return self.root / TMP / uuid.uuid4().hex

    def check_space(self, incoming_bytes: int) -> None:
        """Raises SpoolFull when writing `incoming_bytes` would leave less than the reserve free."""
        if shutil.disk_usage(self.root).free - incoming_bytes < self.min_free_bytes:
            raise SpoolFull("the spool's disk is full")

    def adopt(self, sop_instance_uid: str, temp: Path) -> str:
        """Moves a received part written to `temp` (see `temp_path`) into incoming/, durably; returns its key."""
        key = key_for(sop_instance_uid)
        _fsync_file(temp)
        self._commit(temp, self.root / INCOMING / f"{key}.dcm")
        return key

    def receive(self, sop_instance_uid: str, data: bytes) -> str:
        temp = self.temp_path()
        temp.write_bytes(data)
        return self.adopt(sop_instance_uid, temp)

    def put_results(self, results: list[tuple[str, bytes]]) -> None:
        """Writes results (outbox names, see `result_name`, and their bytes) durably, the folder synced once."""
        for name, data in results:
            temp = self.temp_path()
            with temp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.result_path(name))
        _fsync_dir(self.root / OUTBOX)

    def _commit(self, temp: Path, target: Path) -> Path:
        os.replace(temp, target)
        _fsync_dir(target.parent)
        return target

    # -- the scoring hand-off ------------------------------------------------------------------------------------
    def claim(self, key: str) -> Path | None:
        """Moves incoming/<key>.dcm to scoring/ (one rename); None when it is gone (already claimed or scored)."""
        target = self.root / SCORING / f"{key}.dcm"
        try:
            os.replace(self.root / INCOMING / f"{key}.dcm", target)
        except FileNotFoundError:
            return None
        return target

    def release(self, key: str) -> None:
        """Puts a claimed copy back into incoming/, unless a resend put a newer one there (the claimed copy then
        goes: the newer one is scored instead)."""
        claimed = self.root / SCORING / f"{key}.dcm"
        # a link never replaces: a newer copy stays (FileExistsError); nothing to put back (FileNotFoundError)
        with contextlib.suppress(FileExistsError, FileNotFoundError):
            os.link(claimed, self.root / INCOMING / f"{key}.dcm")
        claimed.unlink(missing_ok=True)
        _fsync_dir(self.root / INCOMING)

    def scored(self, keys: list[str]) -> None:
        """The claimed copies' results are in outbox/: they go (a resend in incoming/ is untouched)."""
        for key in keys:
            (self.root / SCORING / f"{key}.dcm").unlink(missing_ok=True)
        _fsync_dir(self.root / SCORING)

    @staticmethod
    def result_name(key: str, kind: str, result_uid: str) -> str:
        """A result's outbox name: a newer result of the same instance with other content (another UID) never
        replaces one being delivered; the same content keeps its name."""
        return f"{key}.{kind}.{hashlib.sha256(result_uid.encode()).hexdigest()[:16]}"

    def result_path(self, name: str) -> Path:
        return self.root / OUTBOX / f"{name}.dcm"

    def delivered(self, name: str) -> None:
        self._remove(self.result_path(name))

    def give_up(self, path: Path) -> None:
        """Moves a claimed instance or a result to failed/; its mtime becomes the time it failed (retention)."""
        target = self.root / FAILED / path.name
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return
        os.utime(target)
        _fsync_dir(target.parent)

    def _remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    # -- listing: at start and by the worker's periodic maintenance, never once per item ---------------------------
    def entries(self, folder: str) -> list[Entry]:
        """The folder's files, oldest first."""
        found = []
        with os.scandir(self.root / folder) as listing:
            for item in listing:
                if not item.name.endswith(".dcm"):
                    continue
                try:
                    found.append(Entry(item.name.removesuffix(".dcm"), item.stat().st_mtime))
                except FileNotFoundError:  # taken away meanwhile
                    continue
        return sorted(found, key=lambda entry: (entry.mtime, entry.name))

    def expire_failed(self, retention_s: float) -> FailedStats:
        """Deletes what has been in failed/ longer than `retention_s`; returns what is left."""
        now, count, size, oldest = time.time(), 0, 0, None
        with os.scandir(self.root / FAILED) as listing:
            for item in listing:
                try:
                    stat = item.stat()
                    if now - stat.st_mtime > retention_s:
                        os.unlink(item.path)
                        continue
                except FileNotFoundError:
                    continue
                count, size = count + 1, size + stat.st_size
                oldest = stat.st_mtime if oldest is None else min(oldest, stat.st_mtime)
        return FailedStats(count, size, max(0.0, now - oldest) if oldest is not None else 0.0)


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_dir(path: Path) -> None:
    _fsync_file(path)
