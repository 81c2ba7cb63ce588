"""The batch results file (CSV or JSON Lines): one row per input, appended and flushed as each completes.

Resuming keeps it at one row per path: `ResultsFile.resume()` drops what is not a finished success (failed rows,
earlier duplicates, a last line torn by a kill) by rewriting the file atomically, and returns the paths that are
done; the run then appends a row for each of the others. The last row of a path wins wherever rows disagree.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any

from client._exceptions import APIError
from client._models import Outcome


@dataclass(frozen=True)
class Row:
    path: str
    sha256: str | None = None
    label: str | None = None
    probability: float | None = None
    threshold: float | None = None
    operating_point: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    request_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.error and self.label is not None and self.probability is not None

    @classmethod
    def from_outcome(cls, path: str, outcome: Outcome[Any]) -> Row:
        if outcome.prediction is not None:
            found = outcome.prediction.model_dump(include={f.name for f in fields(cls)})
            return cls(path=path, sha256=outcome.sha256, **found)
        request_id = outcome.error.request_id if isinstance(outcome.error, APIError) else None
        return cls(path=path, sha256=outcome.sha256, request_id=request_id, error=describe(outcome.error))


COLUMNS = tuple(f.name for f in fields(Row))
_NUMBERS = {"probability": float, "threshold": float, "model_version": int}


def describe(error: BaseException | None) -> str:
    """One line for the `error` column: the gateway's code and message, or the exception type."""
    if isinstance(error, APIError):
        text = f"{error.code}: {error.message}"
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return " ".join(text.split())


def _typed(raw: dict[str, Any]) -> Row | None:
    """A row from parsed text, or None when it is malformed (wrong columns, bad numbers)."""
    if set(raw) != set(COLUMNS) or not raw["path"]:
        return None
    values: dict[str, Any] = {key: (None if value in ("", None) else value) for key, value in raw.items()}
    try:
        for key, kind in _NUMBERS.items():
            if values[key] is not None:
                values[key] = kind(values[key])
    except (TypeError, ValueError):
        return None
    return Row(**values)


class ResultsFile:
    def __init__(self, path: Path) -> None:
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".jsonl"):
            raise ValueError(f"results go to a .csv or .jsonl file, not {path.name!r}")
        self.path = path
        self.is_csv = suffix == ".csv"

    def read(self) -> dict[str, Row]:
        """The final complete row of each path, in file order of first appearance."""
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        complete = text[: text.rfind("\n") + 1]  # a line without its newline was torn by a kill
        rows: dict[str, Row] = {}
        for row in self._parse(complete):
            rows[row.path] = row
        return rows

    def resume(self) -> set[str]:
        """Keep only finished successes (one row each) and return their paths."""
        done = [row for row in self.read().values() if row.ok]
        compact = self._header() + "".join(self._line(row) for row in done) if done else ""
        current = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        if current != compact:
            staging = self.path.with_name(self.path.name + ".partial")
            staging.write_text(compact, encoding="utf-8", newline="")
            os.replace(staging, self.path)
        return {row.path for row in done}

    @contextmanager
    def appender(self) -> Iterator[Appender]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8", newline="") as stream:
            if stream.tell() == 0:
                stream.write(self._header())
            yield Appender(stream, self._line)

    def _header(self) -> str:
        return ",".join(COLUMNS) + "\n" if self.is_csv else ""

    def _line(self, row: Row) -> str:
        if not self.is_csv:
            return json.dumps(asdict(row), ensure_ascii=False) + "\n"
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(
            "" if value is None else repr(value) if isinstance(value, float) else value
            for value in asdict(row).values()
        )
        return buffer.getvalue()

    def _parse(self, text: str) -> Iterator[Row]:
        """Rows of complete lines; anything else means this is not our file, and we refuse to rewrite it."""
        if self.is_csv:
            lines = csv.reader(io.StringIO(text, newline=""))
            header = next(lines, None)
            if header is not None and tuple(header) != COLUMNS:
                raise NotAResultsFile(f"{self.path} does not start with the header {','.join(COLUMNS)}")
            records: Iterator[Any] = (
                dict(zip(COLUMNS, line, strict=True)) if len(line) == len(COLUMNS) else None for line in lines
            )
        else:
            records = (_json_or_none(line) for line in text.splitlines())
        for number, record in enumerate(records, start=2 if self.is_csv else 1):
            row = _typed(record) if isinstance(record, dict) else None
            if row is None:
                raise NotAResultsFile(f"line {number} of {self.path} is not a results row")
            yield row


class NotAResultsFile(ValueError):
    """The output file holds something this client did not write."""


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


class Appender:
    """Writes one row per call, flushed at once, so a killed run loses at most the row being written."""

    def __init__(self, stream: IO[str], line: Any) -> None:
        self._stream = stream
        self._line = line

    def append(self, row: Row) -> None:
        self._stream.write(self._line(row))
        self._stream.flush()
