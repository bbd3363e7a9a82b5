"""Logging as JSON lines for collectors, or plain lines for a console."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: Literal["json", "console"]) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    # uvicorn's own loggers too, so its errors and start-up lines are JSON lines like ours
    # (`caseclock serve` gives uvicorn no logging config of its own). No access log: a line
    # per request costs the ingest path dearly and says nothing /metrics does not.
    for name in ("caseclock", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler] if name in ("caseclock", "uvicorn") else []
        logger.setLevel(logging.INFO)
        logger.propagate = name == "uvicorn.error"
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
