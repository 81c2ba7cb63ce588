"""JSON-lines logging with the request ID on every line.

Privacy rule: no log line carries image bytes, file names (the multipart `filename` is never read
into a message), DICOM tags or any other patient data. The gateway's own messages are written to that
rule. Nobody else's are trusted: a record of any other logger (pydicom, highdicom, dicomweb-client,
pynetdicom, PIL, asyncio, ...) and every Python warning (routed into logging) keeps its logger, level,
category and source line, but its message is withheld (below WARNING it is dropped); an exception keeps
its traceback's frames and type, and its message only when the gateway raised it. highdicom's warning
about a person name without "^" quotes the name, pydicom's about an invalid value quotes the value:
neither reaches the output.
Library loggers that do not propagate get the same handler, and so does `logging.lastResort`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from contextvars import ContextVar
from types import TracebackType

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The current request's ID; set by the request middleware, copied into worker threads by anyio."""

QUIET_LOGGERS = {"python_multipart": logging.ERROR, "multipart": logging.ERROR, "PIL": logging.WARNING}
OWN_LOGGERS = ("serving", "radiograph", "training", "client", "localserving", "audit", "uvicorn")
"""Loggers whose messages are written to the privacy rule (uvicorn's: its access log is off)."""
LIBRARY_LOGGERS = ("pydicom", "highdicom", "dicomweb_client", "pynetdicom", "PIL", "requests", "urllib3", "httpx",
                   "asyncio", "py.warnings")
"""Given the gateway's handler explicitly: some are set not to propagate (they would reach `lastResort`)."""
_WARNING = re.compile(r"^(?P<path>.*?):(?P<line>\d+): (?P<category>\w+): ", re.DOTALL)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def is_own(logger_name: str) -> bool:
    return logger_name.split(".")[0] in OWN_LOGGERS


def withheld_message(record: logging.LogRecord) -> str:
    """What stays of a record from outside the gateway: who said it and where, never what."""
    if record.name == "py.warnings" and (match := _WARNING.match(str(record.msg))):
        where, what = f"{_short(match['path'])}:{match['line']}", match["category"]
    else:
        where, what = f"{_short(record.pathname)}:{record.lineno}", record.levelname.lower()
    return f"{what} from {record.name} at {where} (message withheld: it may quote DICOM header values)"


def safe_exception(exc_info: ExcInfo) -> str:
    """A traceback's frames and exception types; each message only for an exception the gateway raised."""
    lines: list[str] = []
    exc: BaseException | None = exc_info[1]
    while exc is not None:
        lines[:0] = [*traceback.format_tb(exc.__traceback__), f"{_exception_line(exc)}\n"]
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return "Traceback (most recent call last):\n" + "".join(lines).rstrip("\n")


def _exception_line(exc: BaseException) -> str:
    kind = type(exc)
    name = f"{kind.__module__}.{kind.__qualname__}"
    return f"{name}: {exc}" if is_own(kind.__module__) else f"{name} (message withheld)"


def _short(path: str) -> str:
    """A source path without the install prefix: `highdicom/sr/value_types.py`."""
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-3:])


class WithholdForeignMessages(logging.Filter):
    """Foreign records below WARNING are dropped (withheld, nothing of them is left to read); the others are
    withheld."""

    def filter(self, record: logging.LogRecord) -> bool:
        if is_own(record.name):
            return True
        record.msg, record.args = withheld_message(record), None
        return record.levelno >= logging.WARNING


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = safe_exception(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of writing (test capture swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str) -> None:
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(WithholdForeignMessages())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.propagate = False
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, logging.getLevelName(level)))
    logging.lastResort = handler
    logging.captureWarnings(True)  # warnings.warn → the `py.warnings` logger, not `sys.stderr`
