"""`score`'s loop: the paths not yet done → predictions → one flushed row each, with a progress bar."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from tqdm import tqdm

from client._client import Client
from client._exceptions import (
    Forbidden,
    GatewayTimeout,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
)
from client._results import ResultsFile, Row

SERVICE_ERRORS = (TransportError, Unauthorized, Forbidden, NotFound, RateLimited, ServiceUnavailable, GatewayTimeout)
"""Failures that are about the gateway, not the image: when every recent image got one, the run stops."""


@dataclass
class Summary:
    skipped: int = 0
    """Paths already done in the results file, not sent again."""
    scored: int = 0
    failed: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    stopped: str | None = None
    """Why the run stopped before the end, if it did."""

    @property
    def images_per_s(self) -> float:
        return (self.scored + self.failed) / self.wall_s if self.wall_s else 0.0

    def lines(self) -> list[str]:
        done = self.scored + self.failed
        lines = [
            f"sent {done} images in {self.wall_s:.1f} s ({self.images_per_s:.1f} images/s): "
            f"{self.scored} scored, {self.failed} failed; {self.skipped} already done",
        ]
        if self.labels:
            lines.append("labels: " + ", ".join(f"{label} {n}" for label, n in sorted(self.labels.items())))
        if self.errors:
            lines.append("failures: " + ", ".join(f"{code} {n}" for code, n in self.errors.most_common()))
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        return lines


def error_kind(row: Row) -> str:
    return (row.error or "").split(":", 1)[0]


def score_paths(
    client: Client,
    paths: list[str],
    results: ResultsFile,
    *,
    concurrency: int,
    operating_point: str | None = None,
    progress: bool = True,
) -> Summary:
    """Stops early, leaving the rest for a re-run, once `2 × concurrency` images in a row failed for a reason that
    is the gateway's (down, overloaded, refusing the key), so a dead gateway does not fill the file with failures."""
    done = results.resume()
    todo = [path for path in paths if path not in done]
    summary = Summary(skipped=len(paths) - len(todo))
    started, service_failures = time.perf_counter(), 0
    with results.appender() as out, tqdm(total=len(todo), unit="img", disable=not progress, smoothing=0.1) as bar:
        for outcome in client.predict_many(todo, concurrency=concurrency, operating_point=operating_point):
            row = Row.from_outcome(outcome.item, outcome)
            out.append(row)
            if row.ok:
                summary.scored += 1
                summary.labels[row.label or ""] += 1
            else:
                summary.failed += 1
                summary.errors[error_kind(row)] += 1
            bar.update()
            service_failures = service_failures + 1 if isinstance(outcome.error, SERVICE_ERRORS) else 0
            if service_failures >= 2 * concurrency:
                summary.stopped = f"the last {service_failures} images failed at the gateway ({row.error})"
                break
    summary.wall_s = time.perf_counter() - started
    return summary
