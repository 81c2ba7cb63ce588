"""The durable outbox: plain files in `GATEWAY_SPOOL_DIR`, written atomically (temporary file, fsync, rename,
fsync of the folder), so what the gateway acknowledged survives a crash or a restart.

    incoming/<key>.dcm        received and acknowledged, not yet scored
    outbox/<key>.<kind>.dcm   a result (kind `sr` or `sc`) built, not yet stored in the PACS
    failed/...                given up on: the PACS refused it for good, or it could not be scored; kept for an
                              operator (move a file back to incoming/ or outbox/ to retry it)
    tmp/                      writes in progress (cleared at start)

A key is derived from the SOP Instance UID by a hash: file names carry no identifier, and a resent instance
replaces its pending copy instead of queueing twice.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

INCOMING, OUTBOX, FAILED, TMP = "incoming", "outbox", "failed", "tmp"


def key_for(sop_instance_uid: str) -> str:
    return hashlib.sha256(sop_instance_uid.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Item:
    path: Path
    received: float
    """Modification time: when the file was written (for the age of the oldest pending item)."""

    @property
    def key(self) -> str:
        return self.path.name.split(".")[0]


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def open(self) -> None:
        for folder in (INCOMING, OUTBOX, FAILED, TMP):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        for stale in (self.root / TMP).iterdir():  # a write cut short by a crash was never acknowledged
            stale.unlink(missing_ok=True)

    def _write(self, folder: str, name: str, data: bytes) -> Path:
        tmp = self.root / TMP / f"{name}.{uuid.uuid4().hex}"
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        target = self.root / folder / name
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        return target

    def receive(self, sop_instance_uid: str, data: bytes) -> Path:
        return self._write(INCOMING, f"{key_for(sop_instance_uid)}.dcm", data)

    def put_result(self, key: str, kind: str, data: bytes) -> Path:
        return self._write(OUTBOX, f"{key}.{kind}.dcm", data)

    def incoming(self) -> list[Item]:
        return self._items(INCOMING)

    def outbox(self) -> list[Item]:
        return self._items(OUTBOX)

    def failed(self) -> list[Item]:
        return self._items(FAILED)

    def _items(self, folder: str) -> list[Item]:
        items = []
        for path in (self.root / folder).glob("*.dcm"):
            try:
                items.append(Item(path, path.stat().st_mtime))
            except FileNotFoundError:  # taken away meanwhile (delivered, or replaced by a resend)
                continue
        return sorted(items, key=lambda item: (item.received, item.path.name))

    def done(self, item: Item) -> None:
        item.path.unlink(missing_ok=True)
        _fsync_dir(item.path.parent)

    def give_up(self, item: Item) -> None:
        target = self.root / FAILED / item.path.name
        try:
            os.replace(item.path, target)
        except FileNotFoundError:
            return
        _fsync_dir(target.parent)

    def oldest_pending_age_s(self) -> float:
        pending = [item.received for item in self.incoming() + self.outbox()]
        return max(0.0, time.time() - min(pending)) if pending else 0.0


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
