"""Structured logs for the servers (proxy, sandbox server): one JSON object per line.

Info level carries ids, counts and durations only — never keys, code, tool inputs or results.
The request id reaches log lines written deep in the container code through a context variable
that the app sets per request. uvicorn's own lines (startup, shutdown, errors, access) go through
the same formatter: a log collector reading JSON lines sees no plain text among them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "openptc_request_id", default=None
)

# Record attributes that are not extra fields; uvicorn's ``color_message`` is its message again,
# with terminal colours.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id current when it was logged (not when formatted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def install_request_ids(logger: logging.Logger) -> None:
    """Attach the filter once; logging is process-wide, so a second app must not add another."""
    if not any(isinstance(f, RequestIdFilter) for f in logger.filters):
        logger.addFilter(RequestIdFilter())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "info", name: str = "openptc.proxy") -> None:
    """JSON lines on stderr for one server's loggers and uvicorn's (``ptc serve`` and
    ``ptc sandbox-server`` call this, and give uvicorn ``log_config=None`` so that it keeps
    them)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for logger_name in (name, "uvicorn"):
        logger = logging.getLogger(logger_name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    for child in UVICORN_LOGGERS[1:]:  # through "uvicorn", even if something configured them
        logger = logging.getLogger(child)
        logger.handlers.clear()
        logger.propagate = True
