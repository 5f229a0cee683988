"""Structured JSON logs on stderr, one object a line, with the request id and trace id of the
work at hand; never prompt or result bodies (unless `AIBROKER_LOG_BODIES`, for debugging)."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar

import orjson

from aibroker.telemetry import tracing

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The request (or record key) the current task works on; set by the worker per record and
by ingress per submission, read into every log line."""


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
"""uvicorn's loggers: left to propagate to the root handler, so they come out as JSON too."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (request_id := REQUEST_ID.get()) is not None:
            doc["request_id"] = request_id
        if (trace_id := tracing.trace_id()) is not None:
            doc["trace_id"] = trace_id
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def setup_logging(level: str, *, json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.Formatter.converter = time.gmtime
    for noisy in ("aiokafka", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for server in UVICORN_LOGGERS:  # ours, not uvicorn's own format (ingress passes no config)
        logger = logging.getLogger(server)
        logger.handlers.clear()
        logger.propagate = True
