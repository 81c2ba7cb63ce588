"""The audit trail: one JSON record per prediction returned, on the dedicated `audit` logger.

A record says who (API key name), when, which model version, what it answered, and which image
(its sha256, so a disputed answer can be matched to the file the hospital kept without the gateway
storing any image). Nothing else about the patient or the file.

    {"ts": "...", "level": "INFO", "logger": "audit", "message": "prediction", "request_id": "...",
     "event": "prediction", "api_key": "pacs", "model_name": "pneumonia", "model_version": 4,
     "label": "PNEUMONIA", "probability": 0.93, "threshold": 0.43, "operating_point": "screening",
     "image_sha256": "9f86d0..."}

With `GATEWAY_AUDIT_LOG_FILE` set the records go to that file only; else they join the other
JSON lines on stderr.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from serving.observability.logs import JsonFormatter, request_id_var
from serving.verdict import Verdict

AUDIT_LOGGER = "audit"


class AuditLog:
    def __init__(self, path: Path | None = None) -> None:
        self.logger = logging.getLogger(AUDIT_LOGGER)
        self.path = path
        self._handler: logging.Handler | None = None

    def open(self) -> None:
        """Route records to the file, if one is configured (called in the app lifespan)."""
        self.logger.setLevel(logging.INFO)
        if self.path is not None:
            self._handler = logging.FileHandler(self.path, encoding="utf-8")
            self._handler.setFormatter(JsonFormatter())
            self.logger.addHandler(self._handler)
            self.logger.propagate = False

    def close(self) -> None:
        if self._handler is not None:
            self.logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
            self.logger.propagate = True

    def prediction(self, image: bytes, verdict: Verdict, api_key: str | None) -> None:
        fields = {
            "event": "prediction",
            "request_id": request_id_var.get(),
            "api_key": api_key,
            "model_name": verdict.model_name,
            "model_version": verdict.model_version,
            "label": verdict.label,
            "probability": verdict.probability,
            "threshold": verdict.threshold,
            "operating_point": verdict.operating_point,
            "image_sha256": hashlib.sha256(image).hexdigest(),
        }
        self.logger.info("prediction", extra={"fields": fields})

    def predictions(self, images: Sequence[bytes], results: Sequence[object], api_key: str | None) -> None:
        """One record per image that got a verdict (`results` in the order of `images`; errors skipped)."""
        for image, result in zip(images, results, strict=True):
            if isinstance(result, Verdict):
                self.prediction(image, result, api_key)
